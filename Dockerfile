# kyc-bridge: one image, two roles.
#   web (default):  docker run … IMAGE                      (migrations, then gunicorn)
#   worker:         docker run … IMAGE kyc-bridge worker    (the outbox)
# `kyc-bridge healthcheck` tells the two apart (BRIDGE_ROLE, else the container's command).
# Secrets come from the environment at run time; none are baked into the image.

# Build stage: the source tree stays here; only the wheel goes on.
FROM python:3.11-slim-bookworm AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
COPY pyproject.toml README.md ./
COPY bridge ./bridge
COPY migrations ./migrations
RUN pip wheel --no-deps --wheel-dir /wheels .

FROM python:3.11-slim-bookworm
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    BRIDGE_DATABASE_URL=sqlite:////data/kyc-bridge.db

RUN groupadd --system bridge && useradd --system --gid bridge --home-dir /data --shell /usr/sbin/nologin bridge
COPY --from=build /wheels /tmp/wheels
RUN pip install /tmp/wheels/*.whl && rm -rf /tmp/wheels \
    && mkdir -p /data && chown bridge:bridge /data

# SQLite (the default above) keeps its file here: one container running `serve`, or web and worker
# containers on one host sharing this volume. For several hosts or replicas set BRIDGE_DATABASE_URL
# to MariaDB/MySQL or PostgreSQL; the volume then stays empty.
VOLUME /data
WORKDIR /data
USER bridge
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s CMD ["kyc-bridge", "healthcheck"]

# Migrations first (replicas starting at once take turns on a database lock), then gunicorn with
# the settings shipped in the package (bind: BRIDGE_BIND, default 0.0.0.0:8000).
CMD ["sh", "-c", "kyc-bridge db upgrade && exec gunicorn -c python:bridge.app.gunicorn_conf"]
