# One image for every Skyline daemon; docker-compose.yml runs one container per daemon.
# It uses the same install steps as `make run` (make install: the package into a .venv, pinned by requirements.txt).
FROM python:3.11-slim

RUN apt-get update \
    && apt-get install -y --no-install-recommends make gcc libc6-dev \
    && rm -rf /var/lib/apt/lists/*

RUN useradd --create-home --home-dir /opt/skyline skyline
WORKDIR /opt/skyline
COPY --chown=skyline:skyline requirements.txt requirements-test.txt pyproject.toml setup.py Makefile README.md ./
COPY --chown=skyline:skyline skyline ./skyline
COPY --chown=skyline:skyline bin ./bin
COPY --chown=skyline:skyline etc ./etc
USER skyline
RUN make install

ENV PATH=/opt/skyline/.venv/bin:$PATH \
    OPENBLAS_NUM_THREADS=1 \
    SKYLINE__SKYLINE__VAR_DIR=/opt/skyline/var
VOLUME ["/opt/skyline/var"]
# The service's command names the daemon, e.g. `python -m skyline.runtime thunder --foreground`.
CMD ["skyline", "status"]
