"""WSGI entry point for gunicorn: `gunicorn -c gunicorn.conf.py` (see gunicorn.conf.py)."""

import os

from bridge import logs
from bridge.web import create_app

logs.configure(os.environ.get("BRIDGE_LOG_LEVEL", "INFO").upper())
app = create_app()
