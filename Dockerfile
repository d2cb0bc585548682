# syntax=docker/dockerfile:1
#
# cvsync container image: `docker build -t cvsync:dev .`
#
# Stages: `base` pins the Python image; `builder` installs cvsync and its dependencies
# into a virtual environment at /opt/venv; `runtime` copies only that environment onto
# the same base, adds git and openssh-client, and has nothing to compile with.
#
# Run-time contract: UID/GID 65532, read-only root filesystem, /tmp mounted writable
# (an emptyDir in Kubernetes). HOME, TMPDIR and the agent's work tree all live under /tmp.
#
# The base image is pinned by exact version, in one place: both stages start from `base`,
# so the virtual environment's link to /usr/local/bin/python3 stays valid. To pin it by
# digest as well (recommended for release builds), look up the multi-platform index digest
#   docker buildx imagetools inspect python:3.11.14-slim-bookworm    # "Digest: sha256:..."
# and append it to the tag: `FROM python:3.11.14-slim-bookworm@sha256:<digest> AS base`.
FROM python:3.11.14-slim-bookworm AS base

FROM base AS builder

ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1

# Every dependency ships wheels for linux/amd64 and linux/arm64, so no compiler is needed
# here either. pip compiles the bytecode now, at build time: the running container never
# writes .pyc files (PYTHONDONTWRITEBYTECODE=1 below, and its root filesystem is read-only).
WORKDIR /src
COPY pyproject.toml README.md ./
COPY agent/ agent/
RUN python -m venv /opt/venv \
 && /opt/venv/bin/pip install --no-cache-dir . \
 && /opt/venv/bin/cvsync --version


FROM base AS runtime

# VERSION's default is the version in pyproject.toml (tests/test_dockerfile.py keeps the
# two equal); SOURCE_URL is the repository the image is built from. Set both at build time
# with --build-arg.
ARG VERSION=0.1.0
ARG SOURCE_URL=

LABEL org.opencontainers.image.title="cvsync" \
      org.opencontainers.image.description="GitOps agent for OpenShift ClusterVersion: validate, diff, apply and report upgrades from git" \
      org.opencontainers.image.source="${SOURCE_URL}" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.version="${VERSION}"

# git for the agent's own clone and status commits; openssh-client for ssh:// remotes.
# ca-certificates (for https remotes) is already in the base image.
# ssh refuses to start for a UID that has no passwd entry, so the UID gets one.
RUN apt-get update \
 && apt-get install -y --no-install-recommends git openssh-client \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --gid 65532 cvsync \
 && useradd --no-log-init --uid 65532 --gid 65532 --home-dir /tmp \
      --no-create-home --shell /usr/sbin/nologin cvsync

COPY --from=builder /opt/venv /opt/venv

# Everything cvsync, git and ssh write goes under /tmp: mount it writable (an emptyDir)
# and the root filesystem can be read-only. HOME=/tmp because git reads ~/.gitconfig and
# ssh writes ~/.ssh there, and /tmp is the one directory that exists on a fresh mount.
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    HOME=/tmp \
    TMPDIR=/tmp \
    CVSYNC_WORKDIR=/tmp/cvsync \
    CVSYNC_HTTP_ADDRESS=0.0.0.0:8080

VOLUME ["/tmp"]
WORKDIR /tmp
EXPOSE 8080

USER 65532:65532

ENTRYPOINT ["cvsync"]
CMD ["run"]
