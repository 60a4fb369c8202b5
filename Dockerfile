# One image for every process (composer, backend, frontend, relay, worker):
# the command chooses which one runs.
FROM python:3.11-slim-bookworm
RUN apt-get update \
 && apt-get install -y --no-install-recommends curl openssl ca-certificates mmdebstrap e2fsprogs dosfstools mtools fdisk \
    systemd-boot-efi qemu-utils \
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
