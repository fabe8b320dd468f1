"""What every fake remote service here shares: a werkzeug server on 127.0.0.1 in a background thread,
and the faults tests inject into it (queued error answers, slow answers, rejected credentials).

A double subclasses LoopbackDouble, calls `super().__init__()` and implements two methods:

- `_respond(request)`: answer one request (in a server thread). It calls `_maybe_delay(method, route)`
  before doing any work, and `_take_fault()` under `self._lock` before routing (a fault answers in
  place of the route); its credential check fails while `self._reject_auth` is set. It appends what
  it answered to `self.requests` in its own record shape.
- `_fault_body(status)`: the body `inject()` answers with when given none (the service's own error).

What stays in each double: its routes, state, error bodies, content types and RecordedRequest.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Generic, Self, TypeVar

from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server
from werkzeug.wrappers import Request, Response

RecordT = TypeVar("RecordT")


@dataclass
class Fault:
    status: int
    body: Any  # dict → JSON, str → HTML (unless content_type says otherwise)
    remaining: int | None  # None: until cleared
    headers: dict[str, str] = field(default_factory=dict)
    content_type: str | None = None  # None: the double picks one from the body


class QuietHandler(WSGIRequestHandler):
    def log(self, type: str, message: str, *args: Any) -> None:  # noqa: A002 - werkzeug's signature
        # werkzeug logs request lines, and those hold emails and ids: keep test output clean.
        pass


def parse_json(request: Request, raw: bytes) -> tuple[Any, bool]:
    """The JSON body (None when empty or not application/json), and whether it failed to parse."""
    if request.mimetype != "application/json" or not raw.strip():
        return None, False
    try:
        return json.loads(raw), False
    except ValueError:
        return None, True


class LoopbackDouble(Generic[RecordT]):
    """A fake HTTP service on 127.0.0.1; a context manager that starts and stops it."""

    _thread_name = "fake-service"

    def __init__(self) -> None:
        self._lock = threading.RLock()  # guards the double's state, faults, delay and `requests`
        self._idle = threading.Condition(self._lock)
        self._inflight = 0
        self._faults: list[Fault] = []
        self._delay = 0.0
        self._delay_remaining: int | None = None
        self._delay_route: tuple[str | None, str | None] = (None, None)
        self._reject_auth = False
        self._stopping = threading.Event()
        self._server: BaseWSGIServer | None = None
        self._thread: threading.Thread | None = None
        self.requests: list[RecordT] = []

    # ------------------------------------------------------------------ to implement

    def _respond(self, request: Request) -> Response:
        raise NotImplementedError

    def _fault_body(self, status: int) -> Any:
        raise NotImplementedError

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> Self:
        self._stopping.clear()
        self._server = make_server("127.0.0.1", 0, self._wsgi, threaded=True, request_handler=QuietHandler)
        # A short poll interval keeps stop() fast (serve_forever checks for shutdown between polls).
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.02},
                                        name=self._thread_name, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()  # wakes delayed requests
        with self._idle:  # let them answer and be recorded before anyone inspects `requests`
            self._idle.wait_for(lambda: self._inflight == 0, timeout=5)
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._server = None
        self._thread = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError(f"{type(self).__name__} is not running")
        return self._server.server_port

    def clear_requests(self) -> None:
        with self._lock:
            self.requests.clear()

    # ------------------------------------------------------------------ faults

    def inject(self, status: int, body: Any = None, *, count: int | None = 1,
               headers: dict[str, str] | None = None) -> None:
        """Answer the next `count` requests (None: all until clear_faults) with `status`/`body`
        (a dict is sent as JSON, a str as HTML). Without a body: the service's own error page or
        JSON for that status (see the double's `_fault_body`)."""
        self._queue_fault(status, body, count=count, headers=headers)

    def fail_next(self, count: int, status: int = 503) -> None:
        self.inject(status, count=count)

    def go_down(self, status: int = 503) -> None:
        """Answer every request with `status` until come_back_up()."""
        self.inject(status, count=None)

    def come_back_up(self) -> None:
        self.clear_faults()

    def clear_faults(self) -> None:
        with self._lock:
            self._faults.clear()

    def delay_responses(self, seconds: float, count: int | None = None, *,
                        method: str | None = None, path: str | None = None) -> None:
        """Hold each of the next `count` requests (None: all until cleared), optionally only those
        with this method and route (the path below the API prefix, e.g. "POST", "/subscribers"),
        for `seconds` before handling it: the request is still applied afterwards, as on a slow
        real server."""
        with self._lock:
            self._delay, self._delay_remaining = seconds, count
            self._delay_route = (method, path)

    def clear_delay(self) -> None:
        self.delay_responses(0.0, None)

    def reject_auth(self, on: bool = True) -> None:
        """Make every credential check fail (401), as if the credentials had been revoked."""
        with self._lock:
            self._reject_auth = on

    # ------------------------------------------------------------------ for the doubles

    def _wsgi(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        with self._idle:
            self._inflight += 1
        try:
            return self._respond(Request(environ))(environ, start_response)
        finally:
            with self._idle:
                self._inflight -= 1
                self._idle.notify_all()

    def _queue_fault(self, status: int, body: Any, *, count: int | None, headers: dict[str, str] | None,
                     content_type: str | None = None) -> None:
        if body is None:
            body = self._fault_body(status)
        with self._lock:
            self._faults.append(Fault(status, body, count, dict(headers or {}), content_type))

    def _take_fault(self) -> Fault | None:
        """The fault that answers this request instead of its route, if any (counted down)."""
        with self._lock:
            if not self._faults:
                return None
            fault = self._faults[0]
            if fault.remaining is not None:
                fault.remaining -= 1
                if fault.remaining <= 0:
                    self._faults.pop(0)
            return fault

    def _maybe_delay(self, method: str, route: str | None) -> None:
        """Hold this request while a delay_responses() applies to it (stop() cuts it short)."""
        with self._lock:
            only_method, only_route = self._delay_route
            if (only_method and only_method != method) or (only_route and only_route != route):
                return
            seconds = self._delay
            if seconds and self._delay_remaining is not None:
                self._delay_remaining -= 1
                if self._delay_remaining <= 0:
                    self._delay, self._delay_remaining = 0.0, None
        if seconds:
            self._stopping.wait(seconds)
