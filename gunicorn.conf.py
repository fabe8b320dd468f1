"""gunicorn settings for the web app in production. Run the outbox with `kyc-bridge worker`
processes beside it (the web processes never call FluentCRM or n8n themselves)."""

import logging
import multiprocessing
import os

from bridge.heap import freeze_startup_objects
from bridge.logs import RedactEmails

wsgi_app = "bridge.wsgi:app"
bind = os.environ.get("BRIDGE_BIND", "0.0.0.0:8000")
# A webhook request mostly waits for its group commit (bridge/group_commit.py): one process per core
# with many threads lets many events share one transaction; more processes only split the batches.
workers = int(os.environ.get("BRIDGE_WEB_WORKERS", multiprocessing.cpu_count()))
worker_class = "gthread"
threads = int(os.environ.get("BRIDGE_WEB_THREADS", 16))
# Persona gives up on a delivery after 5 s; a request still running at 30 s is stuck.
timeout = 30
graceful_timeout = 20
keepalive = 5
# %(U)s is the path without the query string; the email filter below masks what a path could carry.
accesslog = os.environ.get("BRIDGE_ACCESS_LOG", "-") or None
access_log_format = '%(h)s "%(m)s %(U)s" %(s)s %(b)s %(M)sms'
errorlog = "-"
loglevel = os.environ.get("BRIDGE_LOG_LEVEL", "info")


def _redact_gunicorn_logs() -> None:
    for name in ("gunicorn.access", "gunicorn.error"):
        logger = logging.getLogger(name)
        if not any(isinstance(f, RedactEmails) for f in logger.filters):
            logger.addFilter(RedactEmails())


def on_starting(server):  # noqa: ARG001 - gunicorn hook signature
    _redact_gunicorn_logs()


def post_fork(server, worker):  # noqa: ARG001 - gunicorn hook signature
    _redact_gunicorn_logs()


def post_worker_init(worker):  # noqa: ARG001 - gunicorn hook signature; runs after the app is loaded
    freeze_startup_objects()
