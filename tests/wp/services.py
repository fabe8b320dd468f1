"""Real processes and test doubles for the WordPress and browser tests.

- `PersonaStandIn`: a local test double of Persona's hosted flow page (`/verify`, records the query
  of every visit) and of Persona's embedded JS client (`/persona-standin.js`), over HTTP and HTTPS
  (self-signed). Nothing in the tests reaches Persona's CDN or hosted flow.
- `BridgeServer`: `kyc-bridge serve` on a free port with a temporary SQLite store and a TOML copied
  from the bundled default whose `[persona] hosted_flow_url` points at the stand-in.
- `chromium()`: Playwright driving Debian's Chromium (never a downloaded browser).
"""

from __future__ import annotations

import json
import os
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time
import urllib.parse
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import requests

from bridge.persona import samples, signature

REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO / "artifacts"
HERE = Path(__file__).resolve().parent
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
WEBHOOK_SECRET = "wbhsec_wptest_" + "b" * 24
ADMIN_TOKEN = "wp-test-bridge-token-" + "c" * 16


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_http(url: str, timeout: float = 60.0, process: subprocess.Popen | None = None, **kwargs) -> None:
    deadline = time.monotonic() + timeout
    last: object = None
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"process for {url} exited with {process.returncode}")
        try:
            answer = requests.get(url, timeout=5, **kwargs)
            if answer.status_code < 500:
                return
            last = answer.status_code
        except requests.RequestException as exc:
            last = exc
        time.sleep(0.2)
    raise RuntimeError(f"{url} did not come up: {last}")


def stop_process(process: subprocess.Popen, *, group: bool = False) -> None:
    """Stop one process we started (its own process group when `group`), TERM then KILL."""
    if process.poll() is not None:
        return
    try:
        if group:
            os.killpg(process.pid, signal.SIGTERM)
        else:
            process.terminate()
        process.wait(15)
    except (subprocess.TimeoutExpired, ProcessLookupError):
        try:
            if group:
                os.killpg(process.pid, signal.SIGKILL)
            else:
                process.kill()
        except ProcessLookupError:
            pass
        process.wait(5)


# --- Persona stand-in --------------------------------------------------------------------------

HOSTED_PAGE = """<!doctype html><html lang="en"><head><meta charset="utf-8">
<title>Persona hosted flow (test double)</title></head><body>
<h1>Persona hosted flow (test double)</h1>
<dl><dt>template</dt><dd id="template-id">{template}</dd>
<dt>reference</dt><dd id="reference-id">{reference}</dd>
<dt>environment</dt><dd id="environment-id">{environment}</dd></dl>
</body></html>"""


class PersonaStandIn:
    """Records every hosted-flow visit and every fetch of the embedded client script."""

    def __init__(self, workdir: Path):
        self.visits: list[dict[str, str]] = []
        self.script_fetches: list[str] = []
        self._servers: list[ThreadingHTTPServer] = []
        self.http_url = self._serve(None)
        self.https_url = self._serve(self._tls_context(workdir))

    @staticmethod
    def _tls_context(workdir: Path) -> ssl.SSLContext:
        key, cert = workdir / "standin.key", workdir / "standin.crt"
        subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                        "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
                        "-keyout", str(key), "-out", str(cert)], check=True, capture_output=True)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(cert, key)
        return context

    def _serve(self, context: ssl.SSLContext | None) -> str:
        standin = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:  # quiet
                pass

            def do_GET(self) -> None:  # noqa: N802
                url = urllib.parse.urlsplit(self.path)
                if url.path == "/verify":
                    query = dict(urllib.parse.parse_qsl(url.query))
                    standin.visits.append(query)
                    template = query.get("inquiry-template-id") or query.get("template-id") or ""
                    body = HOSTED_PAGE.format(template=template, reference=query.get("reference-id", ""),
                                              environment=query.get("environment-id", ""))
                    self._send(200, "text/html; charset=utf-8", body.encode())
                elif url.path == "/persona-standin.js":
                    standin.script_fetches.append(self.path)
                    self._send(200, "application/javascript", (HERE / "persona-standin.js").read_bytes())
                else:
                    self._send(404, "text/plain", b"not found")

            def _send(self, status: int, kind: str, body: bytes) -> None:
                self.send_response(status)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(body)))
                self.send_header("Access-Control-Allow-Origin", "*")
                self.end_headers()
                self.wfile.write(body)

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        server.daemon_threads = True
        if context is not None:
            server.socket = context.wrap_socket(server.socket, server_side=True)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        self._servers.append(server)
        scheme = "https" if context is not None else "http"
        return f"{scheme}://127.0.0.1:{server.server_address[1]}"

    def close(self) -> None:
        for server in self._servers:
            server.shutdown()
            server.server_close()


# --- the bridge ---------------------------------------------------------------------------------


class BridgeServer:
    """`kyc-bridge serve` on a temporary SQLite store; seeds inquiries through its webhook endpoint."""

    def __init__(self, workdir: Path, hosted_flow_url: str):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.token = ADMIN_TOKEN
        self.read_token = "wp-test-read-token"  # BRIDGE_READ_TOKEN: lookups, links and sessions only
        self.db_path = workdir / "bridge.db"
        workdir.mkdir(parents=True, exist_ok=True)
        default = (REPO / "bridge" / "default_config.toml").read_text()
        config = default.replace('public_url = "http://127.0.0.1:8000"', f'public_url = "{self.url}"')
        config = config.replace('hosted_flow_url = "https://inquiry.withpersona.com/verify"',
                                f'hosted_flow_url = "{hosted_flow_url}"')
        # Enhanced reviews get a target of their own, so the admin page shows the bridge's targets (not a constant).
        config = config.replace("target_hours = { basic = 24, enhanced = 24 }", "target_hours = { basic = 24, enhanced = 36 }")
        assert self.url in config and hosted_flow_url in config and "enhanced = 36" in config, \
            "default_config.toml changed its defaults"
        (workdir / "bridge.toml").write_text(config)
        self.env = {
            **{k: v for k, v in os.environ.items() if not k.startswith(("FLUENTCRM_", "N8N_", "BRIDGE_", "PERSONA_"))},
            "BRIDGE_DATABASE_URL": f"sqlite:///{workdir / 'bridge.db'}",
            "BRIDGE_SECRET_KEY": "wp-test-secret-key",
            "BRIDGE_ADMIN_TOKEN": self.token,
            "BRIDGE_READ_TOKEN": self.read_token,
            "PERSONA_WEBHOOK_SECRETS": WEBHOOK_SECRET,
            "BRIDGE_CONFIG_FILE": str(workdir / "bridge.toml"),
        }
        subprocess.run([sys.executable, "-m", "bridge.app.cli", "db", "upgrade"], env=self.env, check=True,
                       capture_output=True, cwd=workdir)
        self.log = open(workdir / "bridge.log", "ab")  # noqa: SIM115
        self.process = subprocess.Popen(
            [sys.executable, "-m", "bridge.app.cli", "serve", "--host", "127.0.0.1", "--port", str(self.port)],
            env=self.env, cwd=workdir, stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            wait_http(self.url + "/readyz", process=self.process)
        except Exception:
            self.close()
            raise
        self._event_seq = 0

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    def empty(self) -> None:
        """Forget every person (the bridge is shared by the session's tests): a test that counts or
        pages what the bridge holds starts from an empty store, whatever ran before it."""
        import sqlalchemy as sa

        from bridge.audit import GENESIS
        from bridge.store.models import AuditHead, Base

        engine = sa.create_engine(f"sqlite:///{self.db_path}")
        try:
            with engine.begin() as connection:
                for table in reversed(Base.metadata.sorted_tables):
                    if table is not AuditHead.__table__:
                        connection.execute(table.delete())
                connection.execute(sa.update(AuditHead).values(seq=0, hash=GENESIS))
        finally:
            engine.dispose()

    def api(self, method: str, path: str, **kwargs) -> requests.Response:
        return requests.request(method, self.url + path, headers=self.headers, timeout=10, **kwargs)

    def template_id(self, user_type: str) -> str:
        import tomllib

        config = tomllib.loads((Path(self.env["BRIDGE_CONFIG_FILE"])).read_text())
        return config["user_types"][user_type]["template_id"]

    def send_event(self, *, inquiry_id: str, status: str, user_type: str, email: str | None = None,
                   reference_id: str | None = None, first_name: str | None = None,
                   created_at: datetime | None = None) -> requests.Response:
        """One signed Persona-shaped event through the real webhook endpoint."""
        self._event_seq += 1
        body = samples.encode(samples.inquiry_event(
            event_id=f"evt_wptest_{inquiry_id}_{self._event_seq}", inquiry_id=inquiry_id, status=status,
            created_at=created_at or datetime.now(timezone.utc) - timedelta(seconds=60 - self._event_seq),
            template_id=self.template_id(user_type), email=email, first_name=first_name,
            reference_id=reference_id))
        answer = requests.post(self.url + "/webhooks/persona", data=body, timeout=10, headers={
            "Content-Type": "application/json",
            "Persona-Signature": signature.header_for([WEBHOOK_SECRET], int(time.time()), body)})
        assert answer.status_code == 200, answer.text
        return answer

    def seed(self, *, inquiry_id: str, user_type: str, email: str, statuses: list[str],
             started: datetime | None = None, first_name: str | None = None) -> None:
        """An inquiry walking through `statuses` (oldest first), one event each, a minute apart."""
        start = started or datetime.now(timezone.utc) - timedelta(hours=1)
        for i, status in enumerate(statuses):
            self.send_event(inquiry_id=inquiry_id, status=status, user_type=user_type, email=email,
                            first_name=first_name, created_at=start + timedelta(minutes=i))

    def close(self) -> None:
        stop_process(self.process, group=True)
        self.log.close()


# --- the browser --------------------------------------------------------------------------------


def chromium_missing() -> str | None:
    if not Path(CHROMIUM).exists():
        return f"Debian's chromium is not installed ({CHROMIUM} missing)"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "playwright (Python) is not installed"
    return None


class Browser:
    """Playwright + Debian's Chromium, started once per test session."""

    def __init__(self) -> None:
        from playwright.sync_api import sync_playwright

        self._manager = sync_playwright()
        self.playwright = self._manager.start()
        self.browser = self.playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)

    def new_context(self, **kwargs):  # type: ignore[no-untyped-def]
        context = self.browser.new_context(ignore_https_errors=True, **kwargs)
        context.set_default_timeout(15_000)
        return context

    def close(self) -> None:
        self.browser.close()
        self._manager.__exit__(None, None, None)


BOXES = ("share_with_persona", "persona_retention", "gdpr_processing")


def disabled(button) -> bool:  # type: ignore[no-untyped-def]
    """Really disabled (the DOM property: a click does nothing), and announced as such."""
    state = button.evaluate("b => [b.disabled, b.getAttribute('aria-disabled')]")
    assert state[0] == (state[1] == "true"), f"disabled={state[0]} but aria-disabled={state[1]}"
    return bool(state[0])


def screenshot(page, name: str) -> Path:  # type: ignore[no-untyped-def]
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / name
    page.screenshot(path=str(path), full_page=True)
    return path


def dump_json(path: Path, data: object) -> None:
    path.write_text(json.dumps(data, indent=2))
