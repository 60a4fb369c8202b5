"""Debian package metadata, cached on disk: what the workers' depsolve and the backend's package search read.

Both layers above may import it (services and workers are peers and may not
import each other); it imports only the domain. ``root`` keeps a private apt
root per (distribution, repositories, architecture) with its downloaded
lists; ``search`` answers package searches from those lists.
"""
