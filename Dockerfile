# One image for every Skyline daemon; docker-compose.yml runs one container per daemon.
# Two stages: the build stage has the compiler and builds the venv; the final image
# gets only the venv, the scripts and the settings (no compiler, no pip cache).
# BASE: any Debian-based image with Python 3.11 and its venv module (see docs/deploy.md).
ARG BASE=python:3.11-slim

FROM ${BASE} AS build
RUN apt-get update \
    && apt-get install -y --no-install-recommends gcc libc6-dev \
    && rm -rf /var/lib/apt/lists/*
RUN python3 -m venv /opt/skyline/.venv
ENV PATH=/opt/skyline/.venv/bin:$PATH PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
# The pinned dependencies first, in a layer of their own: a code change does not
# reinstall them.
COPY requirements.txt ./
RUN pip install -r requirements.txt
COPY pyproject.toml setup.py README.md ./
COPY skyline ./skyline
RUN pip install --no-deps . && skyline config check

FROM ${BASE}
RUN useradd --create-home --home-dir /opt/skyline skyline
COPY --from=build /opt/skyline/.venv /opt/skyline/.venv
WORKDIR /opt/skyline
COPY --chown=skyline:skyline bin ./bin
COPY --chown=skyline:skyline etc ./etc
USER skyline
ENV PATH=/opt/skyline/.venv/bin:$PATH \
    OPENBLAS_NUM_THREADS=1 \
    SKYLINE__SKYLINE__VAR_DIR=/opt/skyline/var
VOLUME ["/opt/skyline/var"]
# Healthy while the daemon's heartbeat is in Redis (refreshed every run; its TTL is
# [skyline] heartbeat_ttl).  SKYLINE_DAEMON names the container's daemon.
HEALTHCHECK --interval=30s --timeout=10s --start-period=60s --retries=3 \
    CMD skyline status "${SKYLINE_DAEMON:-all}" --heartbeat > /dev/null || exit 1
# The service's command names the daemon: python -m skyline.runtime NAME --foreground
CMD ["skyline", "status", "--heartbeat"]
