# kyc-bridge web app (gunicorn). Run the outbox worker from the same image with
#   docker run … kyc-bridge worker
# Secrets come from the environment at run time; none are baked into the image.
FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app
RUN groupadd --system bridge && useradd --system --gid bridge --home-dir /app --shell /usr/sbin/nologin bridge

COPY pyproject.toml README.md alembic.ini gunicorn.conf.py ./
COPY bridge ./bridge
COPY migrations ./migrations
RUN pip install -e . && chown -R bridge:bridge /app

USER bridge
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=3s CMD python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=2)"

# Migrations first (idempotent), then gunicorn with the settings in gunicorn.conf.py.
CMD ["sh", "-c", "kyc-bridge db upgrade && exec gunicorn -c gunicorn.conf.py"]
