"""`kyc-bridge healthcheck`: one HEALTHCHECK for both roles of the Docker image.

- web (gunicorn or `serve`): GET /healthz on the address gunicorn binds (BRIDGE_BIND).
- worker (`kyc-bridge worker`): the worker touches a heartbeat file on every poll and before every
  job; it must be fresher than --max-age. The web port means nothing in a worker container.

The role comes from --role or BRIDGE_ROLE; without either, from the container's main process
(PID 1's command line names `worker` or not), so `docker run IMAGE kyc-bridge worker` just works.
"""

from __future__ import annotations

import http.client
import logging
import os
import socket
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path

DEFAULT_BIND = "0.0.0.0:8000"  # gunicorn_conf's default too
HEARTBEAT_NAME = "kyc-bridge-worker.heartbeat"
ROLES = ("web", "worker")

log = logging.getLogger(__name__)


def heartbeat_path(environ: Mapping[str, str]) -> Path:
    configured = environ.get("BRIDGE_HEARTBEAT_FILE", "").strip()
    return Path(configured) if configured else Path(tempfile.gettempdir()) / HEARTBEAT_NAME


class Heartbeat:
    """What a worker calls to say it is alive: touches the file (its mtime is the beat)."""

    def __init__(self, path: Path):
        self.path = path
        self._warned = False

    def beat(self) -> None:
        try:
            self.path.touch()
            os.utime(self.path)
        except OSError as exc:
            if not self._warned:  # the health check will say unhealthy; say why once
                log.warning("cannot write the worker heartbeat %s: %s", self.path, exc.strerror)
                self._warned = True


def role_from_command_line(cmdline: bytes) -> str:
    """`worker` when the container's main process is `kyc-bridge worker` (directly or via sh -c)."""
    words = b" ".join(cmdline.split(b"\0")).split()
    return "worker" if b"worker" in words else "web"


def detect_role(environ: Mapping[str, str], proc_one: Path = Path("/proc/1/cmdline")) -> str:
    role = environ.get("BRIDGE_ROLE", "").strip().lower()
    if role:
        return role
    try:
        return role_from_command_line(proc_one.read_bytes())
    except OSError:
        return "web"


def _target(bind: str) -> tuple[str, str | int]:
    """(host, port) to reach a server bound to `bind`, or ("unix", path)."""
    if bind.startswith("unix:"):
        return "unix", bind[len("unix:"):]
    host, _, port = bind.rpartition(":")
    if not host or not port.isdigit():
        raise ValueError(f"BRIDGE_BIND={bind!r} is not HOST:PORT or unix:PATH")
    host = host.strip("[]")
    if host in ("", "0.0.0.0"):
        host = "127.0.0.1"
    elif host == "::":
        host = "::1"
    return host, int(port)


class _UnixHTTPConnection(http.client.HTTPConnection):
    def __init__(self, path: str, timeout: float):
        super().__init__("localhost", timeout=timeout)
        self.unix_path = path

    def connect(self) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(self.timeout)
        self.sock.connect(self.unix_path)


def check_web(bind: str, timeout: float = 3.0) -> str | None:
    """None when GET /healthz answers 200, else what went wrong (one line)."""
    try:
        host, port = _target(bind)
    except ValueError as exc:
        return str(exc)
    connection = (_UnixHTTPConnection(str(port), timeout) if host == "unix"
                  else http.client.HTTPConnection(host, int(port), timeout=timeout))
    where = f"unix:{port}" if host == "unix" else f"{host}:{port}"
    try:
        connection.request("GET", "/healthz")
        status = connection.getresponse().status
    except OSError as exc:
        return f"web: no answer from {where}/healthz ({exc.strerror or type(exc).__name__})"
    finally:
        connection.close()
    return None if status == 200 else f"web: {where}/healthz answered {status}"


def check_worker(path: Path, max_age_seconds: float, now: float | None = None) -> str | None:
    """None when the worker's heartbeat is fresher than `max_age_seconds`."""
    try:
        age = (time.time() if now is None else now) - path.stat().st_mtime
    except FileNotFoundError:
        return f"worker: no heartbeat at {path} (is `kyc-bridge worker` running in this container?)"
    if age > max_age_seconds:
        return f"worker: last heartbeat {age:.0f} s ago (more than {max_age_seconds:.0f} s)"
    return None


def check(environ: Mapping[str, str], role: str | None, max_age_seconds: float) -> tuple[str, str | None]:
    """(role, problem or None)."""
    role = role or detect_role(environ)
    if role not in ROLES:
        return role, f"unknown role {role!r} (expected web or worker)"
    if role == "worker":
        return role, check_worker(heartbeat_path(environ), max_age_seconds)
    return role, check_web(environ.get("BRIDGE_BIND", "").strip() or DEFAULT_BIND)
