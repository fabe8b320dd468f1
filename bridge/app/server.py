"""`kyc-bridge serve` / `demo`: gunicorn in one process (gthread) with the outbox worker in a thread.

Production runs `gunicorn -c python:bridge.app.gunicorn_conf` plus separate `kyc-bridge worker` processes instead.
"""

from __future__ import annotations

from typing import Any, Callable

from gunicorn.app.base import BaseApplication

from bridge.app import heap
from bridge import logs


class SingleProcessServer(BaseApplication):
    def __init__(self, app_factory: Callable[[], Any], host: str, port: int, *,
                 when_ready: Callable[[Any], None] | None = None, threads: int = 8):
        self.app_factory = app_factory
        self.options: dict[str, Any] = {
            "bind": f"{host}:{port}", "workers": 1, "worker_class": "gthread", "threads": threads,
            "timeout": 30, "graceful_timeout": 10, "accesslog": None, "loglevel": "warning",
            "post_worker_init": _start_outbox_worker,
        }
        if when_ready:
            self.options["when_ready"] = when_ready
        super().__init__()

    def load_config(self) -> None:
        for key, value in self.options.items():
            self.cfg.set(key, value)

    def load(self) -> Any:
        return self.app_factory()


def _start_outbox_worker(worker: Any) -> None:
    from bridge.outbox.worker import start_in_thread

    logs.configure()
    start_in_thread(worker.wsgi.extensions["kyc_bridge"])
    heap.freeze_startup_objects()
