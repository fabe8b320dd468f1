"""Honest start-up: `serve`, `worker` and gunicorn refuse a database that is not at the code's
revision in one line (or migrate first with --migrate); /readyz checks the revision; "store
unavailable" says where; concurrent `db upgrade`s take turns on a database lock."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import requests
import sqlalchemy as sa

from bridge.store import migrate
from bridge.store.engine import StoreUnavailable, make_engine, make_sessionmaker, normalize_url, transaction
from conftest import SERVER_URLS, WEBHOOK_SECRET, free_port, scratch_database, wait_healthy

HEAD = migrate.current_heads("")[0]


def bridge_env(database_url: str, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("BRIDGE_", "PERSONA_", "FLUENTCRM_", "N8N_"))}
    return {**env, "BRIDGE_DATABASE_URL": database_url, "BRIDGE_SECRET_KEY": "k", "BRIDGE_ADMIN_TOKEN": "t",
            "PERSONA_WEBHOOK_SECRETS": WEBHOOK_SECRET, **extra}


def kyc_bridge(*args: str, env: dict[str, str], cwd: Path, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "bridge.app.cli", *args], env=env, cwd=cwd, capture_output=True,
                          text=True, timeout=timeout)


def one_line(text: str) -> str:
    lines = [line for line in text.splitlines() if line.strip()]
    assert len(lines) == 1, text
    return lines[0]


@pytest.mark.parametrize("command", [["serve", "--port", "0"], ["worker"], ["worker", "--once"]])
def test_serve_and_worker_refuse_a_database_never_migrated_in_one_line(tmp_path, command):
    result = kyc_bridge(*command, env=bridge_env(f"sqlite:///{tmp_path / 'new.db'}"), cwd=tmp_path)
    assert result.returncode != 0
    assert one_line(result.stderr) == (f"Error: database at revision none (never migrated), expected {HEAD}: "
                                       "run `kyc-bridge db upgrade`")
    assert "Traceback" not in result.stdout + result.stderr


def test_serve_refuses_a_database_behind_head(tmp_path):
    url = f"sqlite:///{tmp_path / 'old.db'}"
    migrate.upgrade(url, "0003")
    result = kyc_bridge("serve", "--port", "0", env=bridge_env(url), cwd=tmp_path)
    assert result.returncode != 0
    assert one_line(result.stderr) == f"Error: database at revision 0003, expected {HEAD}: run `kyc-bridge db upgrade`"


@pytest.mark.parametrize("backend", ["sqlite"])
def test_a_database_from_a_newer_kyc_bridge_is_said_but_not_refused(client, database_url, tmp_path):
    """A rolling deploy (the new version migrated first) or a rollback of the code: revisions only
    add, so the older code keeps serving, and says so."""
    engine = make_engine(database_url)
    with engine.begin() as conn:
        conn.execute(sa.text("UPDATE alembic_version SET version_num = '0999'"))
    engine.dispose()
    warning = f"database at revision 0999, newer than this kyc-bridge (expected {HEAD}): running anyway"
    assert migrate.check(database_url).problem is None
    assert client.get("/readyz").get_json() == {"status": "ready", "warning": warning}
    result = kyc_bridge("worker", "--once", env=bridge_env(database_url), cwd=tmp_path)
    assert result.returncode == 0 and f"warning: {warning}" in result.stderr.splitlines(), result.stderr


def test_serve_migrate_brings_a_new_database_to_head_and_serves(tmp_path):
    url = f"sqlite:///{tmp_path / 'new.db'}"
    port = free_port()
    process = subprocess.Popen([sys.executable, "-m", "bridge.app.cli", "serve", "--migrate", "--port", str(port)],
                               env=bridge_env(url), cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               text=True)
    try:
        wait_healthy(f"http://127.0.0.1:{port}", seconds=60)
        assert requests.get(f"http://127.0.0.1:{port}/readyz", timeout=5).json() == {"status": "ready"}
        # The bundled config does not know the port: links point where this server answers.
        link = requests.post(f"http://127.0.0.1:{port}/api/v1/links", json={"email": "p@example.com",
                             "user_type": "vendor"}, headers={"Authorization": "Bearer t"}, timeout=10)
        assert link.status_code == 201 and link.json()["url"].startswith(f"http://127.0.0.1:{port}/verify/"), link.text
    finally:
        process.terminate()
        process.wait(30)
    assert migrate.check(url).at_head


def test_gunicorn_refuses_a_database_behind_head(tmp_path):
    url = f"sqlite:///{tmp_path / 'new.db'}"
    port = free_port()
    result = subprocess.run([sys.executable, "-m", "gunicorn", "-c", "python:bridge.app.gunicorn_conf"],
                            env=bridge_env(url, BRIDGE_BIND=f"127.0.0.1:{port}"), cwd=tmp_path,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode != 0
    output = result.stdout + result.stderr
    assert (f"Error: database at revision none (never migrated), expected {HEAD}: run `kyc-bridge db upgrade`"
            in output.splitlines()), output
    assert "Traceback" not in output and "Booting worker" not in output


def test_gunicorn_refuses_a_bad_log_level_in_one_line(tmp_path):
    url = f"sqlite:///{tmp_path / 'kyc.db'}"
    migrate.upgrade(url)
    result = subprocess.run([sys.executable, "-m", "gunicorn", "-c", "python:bridge.app.gunicorn_conf"],
                            env=bridge_env(url, BRIDGE_BIND=f"127.0.0.1:{free_port()}", BRIDGE_LOG_LEVEL="chatty"),
                            cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert result.returncode != 0
    output = result.stdout + result.stderr
    assert ("Error: BRIDGE_LOG_LEVEL: 'chatty' is not a log level (one of debug, info, warning, error, critical)"
            in output.splitlines()), output
    assert "Traceback" not in output and "Booting worker" not in output


def test_readyz_is_503_with_the_reason_on_a_database_behind_head(client, database_url):
    assert client.get("/readyz").status_code == 200
    migrate.downgrade(database_url, "0003")
    try:
        response = client.get("/readyz")
        assert response.status_code == 503
        assert response.get_json()["error"] == (f"database at revision 0003, expected {HEAD}: "
                                                "run `kyc-bridge db upgrade`")
    finally:
        migrate.upgrade(database_url)
    assert client.get("/readyz").status_code == 200


@pytest.mark.parametrize("url, where", [
    ("postgresql://bob:s3cret-pw@127.0.0.1:1/kyc", "OperationalError on postgresql+psycopg at 127.0.0.1:1, database kyc"),
    ("mysql://bob:s3cret-pw@127.0.0.1:1/kyc", "OperationalError on mysql+pymysql at 127.0.0.1:1, database kyc"),
])
def test_store_unavailable_names_driver_host_and_database_never_the_password(url, where, tmp_path):
    engine = make_engine(url)
    with pytest.raises(StoreUnavailable) as raised:
        with transaction(make_sessionmaker(engine)) as session:
            session.execute(sa.text("SELECT 1"))
    engine.dispose()
    assert str(raised.value) == where
    result = kyc_bridge("db", "upgrade", env=bridge_env(url), cwd=tmp_path)
    assert result.returncode == 2
    assert one_line(result.stderr) == f"error: the store is unavailable ({where})"
    assert "s3cret" not in result.stderr + result.stdout and "bob" not in result.stderr


# --- concurrent migrations ------------------------------------------------------------------

@contextmanager
def fresh_database(backend: str, tmp_path: Path) -> Iterator[tuple[str, str]]:
    """(url, name) of an empty database; for SQLite the name is its file."""
    if backend == "sqlite":
        yield f"sqlite:///{tmp_path / 'fresh.db'}", str(tmp_path / "fresh.db")
        return
    with scratch_database(backend, "kyc_lock") as database:
        yield database.url, database.name  # type: ignore[misc]


def waiting_for_the_lock(admin: sa.Engine | None, backend: str, name: str) -> int:
    if backend == "sqlite":  # blocked flock requests show in /proc/locks as "N: -> FLOCK … MAJ:MIN:INODE …"
        inode = str(os.stat(name + ".migratelock").st_ino)
        return sum(1 for line in Path("/proc/locks").read_text().splitlines()
                   if (words := line.split())[1:3] == ["->", "FLOCK"] and words[6].split(":")[-1] == inode)
    assert admin is not None
    with admin.connect() as conn:
        if backend == "postgres":
            return conn.execute(sa.text(
                "SELECT count(*) FROM pg_locks l JOIN pg_database d ON d.oid = l.database "
                "WHERE l.locktype = 'advisory' AND NOT l.granted AND d.datname = :name"), {"name": name}).scalar()
        return conn.execute(sa.text(
            "SELECT count(*) FROM information_schema.processlist WHERE db = :name AND info LIKE 'SELECT GET_LOCK%'"),
            {"name": name}).scalar()


@pytest.mark.parametrize("backend", ["postgres", "mariadb", "sqlite"])
def test_two_upgrades_at_once_take_turns_and_migrate_once(backend, tmp_path):
    """Replicas starting together: while one holds the migration lock (here the test), both
    `db upgrade`s wait for it and touch nothing; then each runs in turn, the second finding the
    schema at head. Without the lock they would create the same tables at the same time."""
    with fresh_database(backend, tmp_path) as (url, name):
        take_turns(backend, tmp_path, url, name)


def take_turns(backend: str, tmp_path: Path, url: str, name: str) -> None:
    admin = None if backend == "sqlite" else sa.create_engine(normalize_url(SERVER_URLS[backend]))
    holder = make_engine(url)
    try:
        with migrate.migration_lock(holder):
            upgrades = [subprocess.Popen([sys.executable, "-m", "bridge.app.cli", "db", "upgrade"], env=bridge_env(url),
                                         cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
                        for _ in range(2)]
            deadline = time.monotonic() + 120
            while waiting_for_the_lock(admin, backend, name) < 2:
                finished = [p for p in upgrades if p.poll() is not None]
                assert not finished, f"an upgrade did not wait for the lock: {finished[0].stdout.read()}"
                assert time.monotonic() < deadline, "the upgrades never queued on the lock"
                time.sleep(0.05)
            assert not sa.inspect(holder).has_table("alembic_version")  # nothing ran while they waited
        outputs = [p.communicate(timeout=180)[0] for p in upgrades]
        assert [p.returncode for p in upgrades] == [0, 0], outputs
        assert all("database at revision head" in out for out in outputs)
        with holder.connect() as conn:
            assert conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalars().all() == [HEAD]
        assert migrate.check(url).at_head
    finally:
        holder.dispose()
        if admin is not None:
            admin.dispose()
