"""`kyc-bridge healthcheck` (the Docker HEALTHCHECK): web containers answer /healthz on BRIDGE_BIND,
worker containers keep a fresh heartbeat; the role comes from BRIDGE_ROLE or the container's command."""

from __future__ import annotations

import http.server
import os
import socketserver
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from bridge.app import healthcheck
from bridge.outbox.worker import Worker
from conftest import WEBHOOK_SECRET, free_port, wait_until


class _Answer(http.server.BaseHTTPRequestHandler):
    status = 200

    def do_GET(self):  # noqa: N802 - http.server's naming
        self.send_response(self.status if self.path == "/healthz" else 404)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):  # quiet, and unix sockets have no client address to log
        pass


@pytest.fixture
def web_server():
    servers = []

    def start(status: int = 200, unix_path: Path | None = None) -> str:
        handler = type("Answer", (_Answer,), {"status": status})
        if unix_path is not None:
            server = socketserver.UnixStreamServer(str(unix_path), handler)
            bind = f"unix:{unix_path}"
        else:
            server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
            bind = f"0.0.0.0:{server.server_address[1]}"  # as gunicorn binds in the image
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return bind

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


def healthcheck_cli(*args: str, **env: str) -> subprocess.CompletedProcess:
    # No secrets in the environment: a health check needs none.
    base = {k: v for k, v in os.environ.items() if not k.startswith(("BRIDGE_", "PERSONA_", "FLUENTCRM_", "N8N_"))}
    return subprocess.run([sys.executable, "-m", "bridge.app.cli", "healthcheck", *args], env={**base, **env},
                          capture_output=True, text=True, timeout=60)


def test_web_is_healthy_when_healthz_answers_on_the_bind_address(web_server, tmp_path):
    bind = web_server()
    assert healthcheck.check_web(bind) is None
    assert healthcheck.check_web(web_server(unix_path=tmp_path / "web.sock")) is None
    result = healthcheck_cli("--role", "web", BRIDGE_BIND=bind)
    assert (result.returncode, result.stdout.strip()) == (0, "healthy (web)"), result.stderr


def test_web_is_unhealthy_without_an_answer_or_with_an_error(web_server):
    assert healthcheck.check_web(web_server(status=500)).endswith("/healthz answered 500")
    port = free_port()
    assert healthcheck.check_web(f"127.0.0.1:{port}").startswith(f"web: no answer from 127.0.0.1:{port}/healthz")
    result = healthcheck_cli(BRIDGE_ROLE="web", BRIDGE_BIND=f"127.0.0.1:{port}")
    assert result.returncode == 1 and result.stderr.startswith("unhealthy: web: no answer"), result.stderr
    assert healthcheck.check_web("nonsense") == "BRIDGE_BIND='nonsense' is not HOST:PORT or unix:PATH"


@pytest.mark.parametrize("backend", ["sqlite"])
def test_worker_health_follows_its_heartbeat(runtime, tmp_path):
    path = tmp_path / "worker.heartbeat"
    assert "no heartbeat" in healthcheck.check_worker(path, 120)
    stop = threading.Event()
    worker = Worker(runtime, alive=healthcheck.Heartbeat(path).beat)
    thread = threading.Thread(target=worker.run_forever, args=(stop,), daemon=True)
    thread.start()
    try:
        wait_until(path.exists, "the worker's heartbeat")
    finally:
        stop.set()
        thread.join(30)
    assert healthcheck.check_worker(path, 120) is None
    stale = healthcheck.check_worker(path, 120, now=path.stat().st_mtime + 300)
    assert stale == "worker: last heartbeat 300 s ago (more than 120 s)"
    assert healthcheck_cli("--role", "worker", BRIDGE_HEARTBEAT_FILE=str(path)).returncode == 0
    result = healthcheck_cli("--role", "worker", "--max-age", "0.001", BRIDGE_HEARTBEAT_FILE=str(path))
    assert result.returncode == 1 and "last heartbeat" in result.stderr


@pytest.mark.parametrize("backend", ["sqlite"])
def test_a_running_worker_process_passes_the_worker_check(database_url, tmp_path):
    heartbeat = tmp_path / "hb"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("BRIDGE_", "PERSONA_", "FLUENTCRM_", "N8N_"))}
    env.update(BRIDGE_DATABASE_URL=database_url, BRIDGE_SECRET_KEY="k", BRIDGE_ADMIN_TOKEN="t",
               PERSONA_WEBHOOK_SECRETS=WEBHOOK_SECRET, BRIDGE_HEARTBEAT_FILE=str(heartbeat))
    worker = subprocess.Popen([sys.executable, "-m", "bridge.app.cli", "worker"], env=env, cwd=tmp_path,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_until(lambda: heartbeat.exists() or worker.poll() is not None, "the worker's heartbeat")
        assert worker.poll() is None, "the worker exited"
        result = healthcheck_cli(BRIDGE_ROLE="worker", BRIDGE_HEARTBEAT_FILE=str(heartbeat))
        assert (result.returncode, result.stdout.strip()) == (0, "healthy (worker)"), result.stderr
    finally:
        worker.terminate()
        worker.wait(30)


@pytest.mark.parametrize("cmdline, role", [
    (b"kyc-bridge\0worker\0", "worker"),
    (b"/usr/local/bin/python\0/usr/local/bin/kyc-bridge\0worker\0--migrate\0", "worker"),
    (b"sh\0-c\0kyc-bridge db upgrade && exec kyc-bridge worker\0", "worker"),
    (b"sh\0-c\0kyc-bridge db upgrade && exec gunicorn -c python:bridge.app.gunicorn_conf\0", "web"),
    (b"kyc-bridge\0serve\0--host\0000.0.0.0\0", "web"),
])
def test_the_role_is_read_from_the_containers_command(cmdline, role, tmp_path):
    assert healthcheck.role_from_command_line(cmdline) == role
    proc_one = tmp_path / "cmdline"
    proc_one.write_bytes(cmdline)
    assert healthcheck.detect_role({}, proc_one) == role
    assert healthcheck.detect_role({"BRIDGE_ROLE": "web"}, proc_one) == "web"  # said outright, it wins
