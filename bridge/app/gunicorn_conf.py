"""gunicorn settings for the web app in production, from the installed package:

    gunicorn -c python:bridge.app.gunicorn_conf

(a checkout's top-level gunicorn.conf.py loads this module too). Run the outbox with
`kyc-bridge worker` processes beside it (the web processes never call FluentCRM or n8n themselves)."""

import logging
import multiprocessing
import os
import tempfile
from pathlib import Path

# /metrics sums the counters of all web processes (bridge/web/metrics.py): each process writes its
# own to this directory. Set before anything imports prometheus_client; emptied at start.
os.environ.setdefault("PROMETHEUS_MULTIPROC_DIR", tempfile.mkdtemp(prefix="kyc-bridge-metrics-"))

from bridge.app.healthcheck import DEFAULT_BIND
from bridge.app.heap import freeze_startup_objects
from bridge.app.intake_process import WriterProcess
from bridge.logs import LogLevelError, RedactEmails, level_named

wsgi_app = "bridge.app.wsgi:app"
bind = os.environ.get("BRIDGE_BIND", "").strip() or DEFAULT_BIND
# A webhook request mostly waits for the intake writer's commit (below): one process per core, with
# enough threads that a request never waits for a free thread while others wait for a commit.
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
# A bad level is refused by on_starting in one line (the web processes would each fail to boot on
# it with a traceback); until then gunicorn logs at info.
try:
    loglevel, _log_level_problem = level_named(os.environ.get("BRIDGE_LOG_LEVEL", "info")).lower(), None
except LogLevelError as exc:
    loglevel, _log_level_problem = "info", f"BRIDGE_LOG_LEVEL: {exc}"


def _redact_gunicorn_logs() -> None:
    for name in ("gunicorn.access", "gunicorn.error"):
        logger = logging.getLogger(name)
        if not any(isinstance(f, RedactEmails) for f in logger.filters):
            logger.addFilter(RedactEmails())


# All web processes hand their webhooks to one intake writer process, which commits them in shared
# transactions (bridge/intake/writer.py). Started before the web processes fork, so they inherit
# its socket path; stopped after they have exited.
_intake_writer = WriterProcess()


def _refuse_a_schema_behind_the_code() -> None:
    """Like `kyc-bridge serve`: a database behind the code would answer every webhook 503. A store
    that cannot be reached yet is no reason to refuse: /readyz says 503 until it is back."""
    from bridge.app.startup import schema_problem

    problem = schema_problem(os.environ, warn=logging.getLogger("gunicorn.error").warning)
    if problem:
        raise RuntimeError(problem)  # gunicorn prints "Error: <message>" and exits 1


def on_starting(server):
    if _log_level_problem:
        raise RuntimeError(_log_level_problem)  # gunicorn prints "Error: <message>" and exits 1
    _redact_gunicorn_logs()
    for stale in Path(os.environ["PROMETHEUS_MULTIPROC_DIR"]).glob("*.db"):  # a previous run's counts
        stale.unlink()
    if getattr(server.app, "app_uri", None) != wsgi_app:
        return  # another app under these settings (the benchmark's bare receiver) has no webhooks to store
    _refuse_a_schema_behind_the_code()
    reap_workers = server.reap_workers

    def reap_children():  # the master's waitpid(-1) would take the writer's exit status from its supervisor
        _intake_writer.note_exit()
        reap_workers()

    server.reap_workers = reap_children
    if not _intake_writer.start():
        server.log.error("intake writer not ready; web processes commit their own webhooks until it is")
    os.environ["BRIDGE_INTAKE_SOCKET"] = _intake_writer.path


def on_exit(server):  # noqa: ARG001 - gunicorn hook signature
    _intake_writer.stop()


def post_fork(server, worker):  # noqa: ARG001 - gunicorn hook signature
    _redact_gunicorn_logs()


def post_worker_init(worker):  # noqa: ARG001 - gunicorn hook signature; runs after the app is loaded
    freeze_startup_objects()


def child_exit(server, worker):  # noqa: ARG001 - gunicorn hook signature
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)
