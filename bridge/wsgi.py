"""WSGI entry point for gunicorn: `gunicorn -c gunicorn.conf.py` (see gunicorn.conf.py)."""

from bridge import logs
from bridge.web import create_app

logs.configure()
app = create_app()
