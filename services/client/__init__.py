"""The command-line client: ``image-builder compose ...`` and ``image-builder blueprint ...``.

It talks to the backend's HTTP API (``/api/image-builder/v1``) only, as any
script would: with a bearer token, or an OAuth2 client's credentials. It
imports no server code (a layer contract in pyproject.toml checks that), only
the domain's osbuild TOML mapping, to read blueprint files.

- ``settings``: the connection, from flags and ``IMAGE_BUILDER_*`` variables
- ``session``: the HTTP session, tokens, and the API's errors as exceptions
- ``blueprint_files``: a TOML or JSON blueprint file as the API's body
- ``blueprint_commands``, ``compose_commands``: the subcommands
- ``output``: tables, JSON, progress lines
- ``commands``: the subcommands' arguments, and errors turned into exit codes
"""
