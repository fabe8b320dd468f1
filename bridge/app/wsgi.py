"""WSGI entry point for gunicorn: `gunicorn -c python:bridge.app.gunicorn_conf` (see bridge/app/gunicorn_conf.py)."""

import os

from bridge import logs
from bridge.web import create_app

logs.configure(os.environ.get("BRIDGE_LOG_LEVEL", "INFO").upper())
app = create_app()
