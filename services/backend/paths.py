"""Where the backend's API lives."""

PREFIX = "/api/image-builder/v1"
