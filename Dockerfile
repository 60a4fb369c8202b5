# One image for every process (issuer, composer, backend, frontend, relay,
# worker): the command chooses which one runs (`image-builder <command>`).
# The workers' build tools (workers/build/tools.py) come from Debian: apt, dpkg,
# tar and util-linux (unshare, setpriv) are in the Debian base already, the
# rest is installed here; the archive keyring verifies the mirror's Release files.
FROM python:3.11-slim-bookworm
RUN apt-get update \
 && apt-get install -y --no-install-recommends curl openssl ca-certificates debian-archive-keyring mmdebstrap \
    e2fsprogs dosfstools mtools fdisk systemd-boot-efi qemu-utils \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY pyproject.toml README.md ./
COPY domain domain
COPY events events
COPY services services
COPY workers workers
COPY aptcache aptcache
COPY alembic alembic
RUN pip install --no-cache-dir -e .
ENTRYPOINT ["image-builder"]
