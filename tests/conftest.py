"""Shared fixtures: a fresh store per test on SQLite, MariaDB and PostgreSQL; the Flask app and client.

A test that needs MariaDB or PostgreSQL is skipped with a reason when the server is unreachable,
except under CI=true, where that is a failure.
"""

from __future__ import annotations

import os
import secrets
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path

import pytest
import requests
import sqlalchemy as sa
from sqlalchemy.engine import make_url

from bridge import config as config_module
from bridge.persona import samples, signature
from bridge.runtime import Runtime
from bridge.settings import Settings
from bridge.store import migrate
from bridge.store.engine import make_engine, normalize_url
from bridge.web import create_app

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
SERVER_URLS = {
    "mariadb": os.environ.get("KYC_TEST_MARIADB_URL", "mysql+pymysql://root@127.0.0.1:3306/test"),
    "postgres": os.environ.get("KYC_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"),
}
BACKENDS = ("sqlite", "mariadb", "postgres")
TABLES = ("kyc_leases", "kyc_audit_log", "kyc_contact_leases", "kyc_jobs", "kyc_events", "kyc_reminders", "kyc_renewal_notices", "kyc_links", "kyc_sessions",
          "kyc_consents", "kyc_inquiries", "kyc_contacts")
WEBHOOK_SECRET = "wbhsec_test_" + "a" * 24
ADMIN_TOKEN = "test-admin-token"


def unavailable(reason: str) -> None:
    if IN_CI:
        pytest.fail(f"{reason} (CI=true: service tests may not skip)")
    pytest.skip(reason)


class ServerDatabase:
    """One scratch database per test session on a real server, migrated once, emptied per test."""

    def __init__(self, backend: str, prefix: str = "kyc_test"):
        self.backend = backend
        self.admin_url = normalize_url(SERVER_URLS[backend])
        self.name = f"{prefix}_{uuid.uuid4().hex[:10]}"
        self.url: str | None = None
        self.error: str | None = None

    def create(self, *, migrated: bool = True) -> None:
        admin = sa.create_engine(self.admin_url, isolation_level="AUTOCOMMIT")
        try:
            with admin.connect() as conn:
                conn.execute(sa.text(f"CREATE DATABASE {self.name}"))
        except sa.exc.OperationalError as exc:
            self.error = f"{self.backend} unreachable at {make_url(self.admin_url).host}: {type(exc.orig).__name__}"
            return
        finally:
            admin.dispose()
        self.url = make_url(self.admin_url).set(database=self.name).render_as_string(hide_password=False)
        if migrated:
            migrate.upgrade(self.url)

    def drop(self) -> None:
        if self.url is None:
            return
        admin = sa.create_engine(self.admin_url, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            if self.backend == "postgres":
                conn.execute(sa.text(f"DROP DATABASE IF EXISTS {self.name} WITH (FORCE)"))
            else:
                conn.execute(sa.text(f"DROP DATABASE IF EXISTS {self.name}"))
        admin.dispose()


@contextmanager
def scratch_database(backend: str, prefix: str) -> Iterator[ServerDatabase]:
    """An empty database of its own on a real server (no schema), dropped afterwards: for tests of
    what migrations or migrate-store do to a database."""
    database = ServerDatabase(backend, prefix)
    database.create(migrated=False)
    if database.url is None:
        unavailable(database.error or f"{backend} unavailable")
    try:
        yield database
    finally:
        database.drop()


@pytest.fixture(scope="session")
def server_databases() -> Iterator[dict[str, ServerDatabase]]:
    databases: dict[str, ServerDatabase] = {}
    yield databases
    for database in databases.values():
        database.drop()


def empty_store(url: str) -> None:
    engine = make_engine(url)
    with engine.begin() as conn:
        # TRUNCATE also restarts the id sequences, so every test sees ids from 1 on every backend.
        if engine.dialect.name == "postgresql":
            conn.execute(sa.text(f"TRUNCATE {', '.join(TABLES)} RESTART IDENTITY"))
        else:
            conn.execute(sa.text("SET FOREIGN_KEY_CHECKS = 0"))
            for table in TABLES:
                conn.execute(sa.text(f"TRUNCATE TABLE {table}"))
            conn.execute(sa.text("SET FOREIGN_KEY_CHECKS = 1"))
        conn.execute(sa.text("UPDATE kyc_audit_head SET seq = 0, hash = :genesis WHERE id = 1"),
                     {"genesis": "0" * 64})
    engine.dispose()


def database_url_for(backend: str, tmp_path: Path, server_databases: dict[str, ServerDatabase]) -> str:
    if backend == "sqlite":
        url = f"sqlite:///{tmp_path / 'bridge.db'}"
        migrate.upgrade(url)
        return url
    database = server_databases.get(backend)
    if database is None:
        database = server_databases[backend] = ServerDatabase(backend)
        database.create()
    if database.url is None:
        unavailable(database.error or f"{backend} unavailable")
    empty_store(database.url)  # type: ignore[arg-type]
    return database.url  # type: ignore[return-value]


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture
def database_url(backend: str, tmp_path: Path, server_databases: dict[str, ServerDatabase]) -> str:
    return database_url_for(backend, tmp_path, server_databases)


def make_settings(database_url: str, **overrides: str) -> Settings:
    environ = {
        "BRIDGE_DATABASE_URL": database_url,
        "BRIDGE_SECRET_KEY": "test-secret-key",
        "BRIDGE_ADMIN_TOKEN": ADMIN_TOKEN,
        "PERSONA_WEBHOOK_SECRETS": WEBHOOK_SECRET,
        **overrides,
    }
    return Settings.from_env(environ)


@pytest.fixture
def config() -> config_module.Config:
    return config_module.load(None)


@pytest.fixture
def runtime(database_url: str, config: config_module.Config) -> Iterator[Runtime]:
    rt = Runtime.build(make_settings(database_url), config)
    yield rt
    rt.engine.dispose()


@pytest.fixture
def app(runtime: Runtime):  # type: ignore[no-untyped-def]
    from bridge.web.limits import limiter

    flask_app = create_app(runtime=runtime)
    flask_app.testing = True
    with flask_app.app_context():
        limiter.reset()  # counters are per process: start each test from zero
    return flask_app


@pytest.fixture
def client(app):  # type: ignore[no-untyped-def]
    return app.test_client()


def signed_headers(body: bytes, secrets_: list[str] | None = None, timestamp: int | None = None) -> dict[str, str]:
    stamp = int(time.time()) if timestamp is None else timestamp
    return {"Persona-Signature": signature.header_for(secrets_ or [WEBHOOK_SECRET], stamp, body),
            "Content-Type": "application/json"}


def post_event(client, body: bytes | dict):  # type: ignore[no-untyped-def]
    raw = samples.encode(body) if isinstance(body, dict) else body
    return client.post("/webhooks/persona", data=raw, headers=signed_headers(raw))


def admin_headers() -> dict[str, str]:
    return {"Authorization": f"Bearer {ADMIN_TOKEN}"}


def new_id(prefix: str) -> str:
    return f"{prefix}_{secrets.token_hex(12)}"


def with_config(config: config_module.Config, **changes: object) -> config_module.Config:
    return replace(config, **changes)


@pytest.fixture
def fluentcrm():  # type: ignore[no-untyped-def]
    from doubles.fluentcrm import FakeFluentCRM

    with FakeFluentCRM() as crm:
        yield crm


def crm_settings(database_url: str, crm) -> Settings:  # type: ignore[no-untyped-def]
    return make_settings(database_url, FLUENTCRM_BASE_URL=crm.base_url, FLUENTCRM_USERNAME=crm.username,
                         FLUENTCRM_APP_PASSWORD=crm.app_password)


@pytest.fixture
def crm_runtime(database_url: str, config: config_module.Config, fluentcrm) -> Iterator[Runtime]:  # type: ignore[no-untyped-def]
    rt = Runtime.build(crm_settings(database_url, fluentcrm), config)
    yield rt
    rt.engine.dispose()


@pytest.fixture
def n8n():  # type: ignore[no-untyped-def]
    """A fake n8n webhook (bearer and signature checked) on 127.0.0.1."""
    from doubles.n8n_webhook import FakeN8nWebhook

    with FakeN8nWebhook() as fake:
        yield fake


@pytest.fixture
def n8n_runtime(database_url: str, config: config_module.Config, n8n) -> Iterator[Runtime]:  # type: ignore[no-untyped-def]
    rt = Runtime.build(make_settings(database_url, N8N_WEBHOOK_URL=n8n.url, N8N_TOKEN=n8n.token,
                                     N8N_SIGNING_SECRET=n8n.signing_secret), config)
    yield rt
    rt.engine.dispose()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(condition, what: str = "the condition", seconds: float = 60.0):  # type: ignore[no-untyped-def]
    """Poll `condition` until it returns something truthy, and return that: tests wait for what they
    need, never for a fixed time (CI is a busy 2-core machine). Fails naming `what` after `seconds`."""
    deadline = time.monotonic() + seconds
    while not (value := condition()):
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)
    return value


def wait_healthy(base: str, seconds: float = 15) -> None:
    """Until a server started by a test answers /healthz."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            requests.get(f"{base}/healthz", timeout=1)
            return
        except requests.RequestException:
            if time.monotonic() > deadline:
                raise AssertionError(f"{base} did not come up") from None
            time.sleep(0.1)


def start_production_server(database_url: str, cwd: Path, *, threads: int = 4) -> tuple[subprocess.Popen, str]:
    """`gunicorn -c gunicorn.conf.py` as in production (2 web processes and the intake writer), on a
    free port, its output in the returned process's stdout; and its base URL."""
    port = free_port()
    env = {**os.environ, "BRIDGE_DATABASE_URL": database_url, "BRIDGE_SECRET_KEY": "k", "BRIDGE_ADMIN_TOKEN": "t",
           "PERSONA_WEBHOOK_SECRETS": WEBHOOK_SECRET, "BRIDGE_BIND": f"127.0.0.1:{port}", "BRIDGE_ACCESS_LOG": "",
           "BRIDGE_WEB_WORKERS": "2", "BRIDGE_WEB_THREADS": str(threads), "TMPDIR": "/tmp"}
    env.pop("BRIDGE_INTAKE_SOCKET", None)
    repo = Path(__file__).resolve().parents[1]
    master = subprocess.Popen([sys.executable, "-m", "gunicorn", "-c", str(repo / "gunicorn.conf.py")], cwd=cwd,
                              env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    return master, f"http://127.0.0.1:{port}"
