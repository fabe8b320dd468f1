"""`kyc-bridge migrate-store`: MariaDB/SQLite → PostgreSQL, exact, resumable, incremental, verified.

The source is populated through the app itself (consent sessions and signed webhooks through the
test client, erasure through the admin API); the target is a fresh PostgreSQL database per test.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
import sqlalchemy as sa
from click.testing import CliRunner
from sqlalchemy.engine import make_url

from bridge.app.cli import main
from bridge.persona import samples
from bridge.runtime import Runtime
from bridge.store import migrate, transfer
from bridge.store.engine import make_engine
from bridge.web import create_app
from conftest import admin_headers, database_url_for, make_settings, new_id, scratch_database, signed_headers

REPO = Path(__file__).resolve().parents[1]
T0 = datetime(2026, 3, 29, 0, 59, 59, 123000, tzinfo=timezone.utc)  # a DST change in Europe
CONSENT = {"share_with_persona": True, "persona_retention": True, "gdpr_processing": True,
           "text_version": "2026-11-01"}
TRICKY_NAMES = ["Zoë 🦄", "Ångström-Łukasz", "李小龍", "O'Brien \"q\" \\ tab\tline\nend", "𝔘𝔫𝔦𝔠𝔬𝔡𝔢 👩🏽‍💻"]
LONG_TEXT = "é🦄a" * 40000  # 120,000 code points, 4-byte and 2-byte UTF-8

SOURCES = pytest.mark.parametrize("backend", ["mariadb", "sqlite"], indirect=True)  # what a bridge runs on first
MARIADB = pytest.mark.parametrize("backend", ["mariadb"], indirect=True)


@pytest.fixture
def target_url():
    """A fresh, empty PostgreSQL database (no schema): migrate-store brings it to the revision."""
    with scratch_database("postgres", "kyc_migrate") as target:
        yield target.url


def post_raw(client, body: dict):
    raw = json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()  # real UTF-8, not \u escapes
    return client.post("/webhooks/persona", data=raw, headers=signed_headers(raw))


def add_person(client, config, n: int, *, status: str = "approved", user_type: str = "investor",
               first_name: str | None = None, long_note: str | None = None) -> str:
    """Consent session, then created → completed → <status> webhooks, as a real person goes."""
    email = f"person{n}@example.com"
    answer = client.post("/api/v1/sessions", headers=admin_headers(), json={
        "email": email, "user_type": user_type, "first_name": first_name, "ip": "203.0.113.9",
        "user_agent": "pytest ✓", "consent": CONSENT})
    assert answer.status_code == 201, answer.get_json()
    reference = answer.get_json()["reference_id"]
    inquiry = f"inq_{n:04d}_{uuid.uuid4().hex[:8]}"
    template = config.user_types[user_type].template_id
    for minutes, step in enumerate(["created", "completed", status]):
        body = samples.inquiry_event(event_id=new_id("evt"), inquiry_id=inquiry, status=step,
                                     created_at=T0 + timedelta(minutes=n * 10 + minutes, microseconds=n),
                                     template_id=template, email=email, first_name=first_name,
                                     reference_id=reference)
        if long_note is not None:
            body["data"]["attributes"]["payload"]["data"]["attributes"]["notes"] = long_note
        assert post_raw(client, body).status_code == 200
    return inquiry


def populate(client, config, people: int = 6) -> list[str]:
    inquiries = []
    for n in range(people):
        name = TRICKY_NAMES[n % len(TRICKY_NAMES)] if n % 6 != 5 else None  # some NULL names
        status = ["approved", "declined", "needs_review"][n % 3]
        inquiries.append(add_person(client, config, n, status=status, first_name=name,
                                    long_note=LONG_TEXT if n == 0 else None))
    late = samples.inquiry_event(event_id=new_id("evt"), inquiry_id=inquiries[0], status="pending",
                                 created_at=T0 - timedelta(hours=1), template_id=None)
    assert post_raw(client, late).status_code == 200  # out of order: stored, not applied (applied = false)
    # An inquiry with no contact and no email (NULLs), and a duplicate delivery.
    body = samples.inquiry_event(event_id=new_id("evt"), inquiry_id="inq_anonymous", status="pending",
                                 created_at=T0, template_id=None)
    assert post_raw(client, body).status_code == 200
    assert post_raw(client, body).status_code == 200
    return inquiries


def migrate_store(source_url: str, target_url: str, *extra: str):
    result = CliRunner().invoke(main, ["migrate-store", "--to", target_url, *extra],
                                env={"BRIDGE_DATABASE_URL": source_url})
    if result.exception and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result


def table_rows(url: str) -> dict[str, list[tuple]]:
    """Every bridge table's rows in key order, typed by the models."""
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            return {table.name: [tuple(r) for r in conn.execute(
                sa.select(table).order_by(*table.primary_key.columns))] for table in transfer.bridge_tables()}
    finally:
        engine.dispose()


def schema_of(url: str) -> dict[str, tuple]:
    engine = make_engine(url)
    with engine.connect() as conn:
        inspector = sa.inspect(conn)
        found = {t.name: (sorted((i["name"], tuple(i["column_names"]), i["unique"]) for i in inspector.get_indexes(t.name)),
                          sorted((u["name"], tuple(u["column_names"])) for u in inspector.get_unique_constraints(t.name)),
                          sorted(str(fk["constrained_columns"]) for fk in inspector.get_foreign_keys(t.name)))
                 for t in transfer.bridge_tables()}
    engine.dispose()
    return found


def assert_identical(source_url: str, target_url: str) -> None:
    source, target = table_rows(source_url), table_rows(target_url)
    for name, rows in source.items():
        assert len(target[name]) == len(rows), name
        for mine, theirs in zip(rows, target[name]):
            assert mine == theirs, name  # field by field: tuples of typed values


CONTROL_TEXT = "a\\b\tc\nd\re\x08f\x0cg\x0bh \\N \\\\ \x01\x1f end"  # every COPY escape, and \N as text


@SOURCES
def test_round_trip_of_tricky_values_is_exact(database_url, target_url, client, config, runtime):
    populate(client, config)
    with runtime.engine.begin() as conn:  # control characters no API would let through, stored all the same
        conn.execute(sa.text("UPDATE kyc_jobs SET last_error = :text WHERE id = 1"), {"text": CONTROL_TEXT})
    result = migrate_store(database_url, target_url)
    assert result.exit_code == 0, result.output
    assert "identical" in result.stdout and "audit chain intact" in result.stdout
    assert_identical(database_url, target_url)

    # And in PostgreSQL's own terms (psycopg, no model types): the text, zones, booleans and hashes.
    engine = make_engine(target_url)
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT last_error FROM kyc_jobs WHERE id = 1")).scalar() == CONTROL_TEXT
        names = set(conn.execute(sa.text("SELECT first_name FROM kyc_contacts")).scalars())
        assert set(TRICKY_NAMES) | {None} == names
        payloads = list(conn.execute(sa.text("SELECT payload FROM kyc_events WHERE payload LIKE '%notes%'")).scalars())
        assert len(payloads) == 3 and all(json.loads(p)["data"]["attributes"]["payload"]["data"]["attributes"]
                                          ["notes"] == LONG_TEXT for p in payloads)
        created = conn.execute(sa.text("SELECT created_at FROM kyc_events ORDER BY id LIMIT 1")).scalar()
        assert created == T0.replace(tzinfo=None)  # naive UTC, milliseconds kept, no zone shift
        kinds = conn.execute(sa.text("SELECT data_type FROM information_schema.columns "
                                     "WHERE table_name = 'kyc_consents' AND column_name = 'gdpr_processing'")).scalar()
        assert kinds == "boolean"
        assert conn.execute(sa.text("SELECT bool_and(gdpr_processing) FROM kyc_consents")).scalar() is True
        assert conn.execute(sa.text("SELECT count(*) FROM kyc_events WHERE applied")).scalar() > 0
        assert conn.execute(sa.text("SELECT count(*) FROM kyc_events WHERE NOT applied")).scalar() > 0
        hashes = list(conn.execute(sa.text("SELECT hash FROM kyc_audit_log")).scalars())
        assert hashes and all(len(h) == 64 for h in hashes)
    engine.dispose()


@MARIADB
def test_mariadb_is_read_as_utf8mb4_whatever_the_url_says(database_url, target_url, client, config):
    populate(client, config, people=3)
    latin1 = make_url(database_url).update_query_dict({"charset": "latin1"}).render_as_string(hide_password=False)
    result = migrate_store(latin1, target_url)
    assert result.exit_code == 0, result.output
    assert_identical(database_url, target_url)


@SOURCES
def test_kill_9_mid_copy_then_resume_is_identical_without_duplicates(database_url, target_url, client, config,
                                                                    tmp_path, server_databases):
    populate(client, config, people=12)
    command = [sys.executable, "-m", "bridge.app.cli", "migrate-store", "--to", target_url, "--batch-size", "4"]
    env = {**os.environ, "BRIDGE_DATABASE_URL": database_url, transfer.KILL_HOOK: "5"}
    killed = subprocess.run(command, env=env, cwd=REPO, capture_output=True, text=True, timeout=120)
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    partial = table_rows(target_url)
    copied = sum(len(rows) for rows in partial.values())
    assert 0 < copied < sum(len(rows) for rows in table_rows(database_url).values())

    del env[transfer.KILL_HOOK]
    resumed = subprocess.run(command, env=env, cwd=REPO, capture_output=True, text=True, timeout=120)
    assert resumed.returncode == 0, resumed.stderr
    assert_identical(database_url, target_url)  # equal lists: no row twice, none missing
    # The indexes and unique constraints a first load drops for speed are all back.
    assert schema_of(target_url) == schema_of(database_url_for("postgres", tmp_path, server_databases))

    again = migrate_store(database_url, target_url)  # nothing changed: nothing written
    assert again.exit_code == 0, again.output
    for line in again.stderr.splitlines():
        if line.startswith("kyc_"):
            assert line.split()[2] == "0", line


@SOURCES
def test_changes_on_the_live_source_arrive(database_url, target_url, client, config, runtime):
    inquiries = populate(client, config)
    assert migrate_store(database_url, target_url).exit_code == 0

    add_person(client, config, 100, status="approved", first_name="Nouvelle 🎉")  # new person
    body = samples.inquiry_event(event_id=new_id("evt"), inquiry_id=inquiries[2], status="approved",
                                 created_at=T0 + timedelta(days=1), template_id=config.user_types["investor"].template_id)
    assert post_raw(client, body).status_code == 200  # needs_review → approved, in place
    assert client.post("/api/v1/contacts/person1@example.com/erase", headers=admin_headers()).status_code == 200
    with runtime.engine.begin() as conn:  # a row deleted at the source (as a purge that deletes would)
        gone = conn.execute(sa.text("SELECT min(id) FROM kyc_jobs")).scalar()  # copied by the first run
        conn.execute(sa.text("DELETE FROM kyc_jobs WHERE id = :id"), {"id": gone})

    result = migrate_store(database_url, target_url)
    assert result.exit_code == 0, result.output
    assert_identical(database_url, target_url)
    engine = make_engine(target_url)
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT status FROM kyc_inquiries WHERE inquiry_id = :i"),
                            {"i": inquiries[2]}).scalar() == "approved"
        assert conn.execute(sa.text("SELECT count(*) FROM kyc_contacts WHERE email = 'person1@example.com'")).scalar() == 0
        assert conn.execute(sa.text("SELECT first_name FROM kyc_contacts WHERE email = 'person100@example.com'")
                            ).scalar() == "Nouvelle 🎉"
        assert conn.execute(sa.text("SELECT count(*) FROM kyc_jobs WHERE id = :id"), {"id": gone}).scalar() == 0
    engine.dispose()


@SOURCES
@pytest.mark.parametrize("change, where", [
    ("UPDATE kyc_inquiries SET status = 'expired' WHERE id = 2", "kyc_inquiries: key 2 differs (column status)"),
    ("UPDATE kyc_contacts SET first_name = 'Zoe' WHERE id = 1", "kyc_contacts: key 1 differs (column first_name)"),
    ("DELETE FROM kyc_jobs WHERE id = 3", "kyc_jobs: key 3 is missing in the target"),
    ("INSERT INTO kyc_reminders (contact_id, user_type, anchor_at, window_hours, created_at) "
     "VALUES (1, 'investor', now(), 24, now())", "kyc_reminders: key 1 is in the target, not in the source"),
    ("DELETE FROM kyc_audit_log WHERE seq = 3", "kyc_audit_log: key 3 is missing in the target"),
])
def test_a_row_changed_in_the_target_makes_verify_only_fail(database_url, target_url, client, config, change, where):
    populate(client, config, people=3)
    assert migrate_store(database_url, target_url).exit_code == 0
    assert migrate_store(database_url, target_url, "--verify-only").exit_code == 0
    engine = make_engine(target_url)
    with engine.begin() as conn:
        conn.execute(sa.text(change))
    engine.dispose()
    result = migrate_store(database_url, target_url, "--verify-only")
    assert result.exit_code == 1, result.output
    assert where in result.stderr
    assert migrate_store(database_url, target_url).exit_code == 0  # a full run repairs it
    assert_identical(database_url, target_url)


@SOURCES
def test_a_bridge_on_the_target_answers_as_the_source_did(database_url, target_url, client, config):
    populate(client, config)
    assert client.post("/api/v1/contacts/person2@example.com/erase", headers=admin_headers()).status_code == 200
    assert migrate_store(database_url, target_url).exit_code == 0

    target_runtime = Runtime.build(make_settings(target_url), config)
    target_app = create_app(runtime=target_runtime)
    target_app.testing = True
    target_client = target_app.test_client()
    paths = ["/api/v1/inquiries?per_page=100", "/api/v1/stats",
             *[f"/api/v1/contacts/person{n}@example.com/kyc" for n in range(6)],
             *[f"/api/v1/inquiries/{i}" for i in ("inq_anonymous",)]]
    for path in paths:
        mine = client.get(path, headers=admin_headers())
        theirs = target_client.get(path, headers=admin_headers())
        assert (theirs.status_code, theirs.get_json()) == (mine.status_code, mine.get_json()), path

    # Sequences were set past the copied ids: the target bridge takes new webhooks and people.
    add_person(target_client, config, 200, first_name="After the move")
    verified = CliRunner().invoke(main, ["audit", "verify"], env={
        "BRIDGE_DATABASE_URL": target_url, "BRIDGE_SECRET_KEY": "k", "BRIDGE_ADMIN_TOKEN": "t",
        "PERSONA_WEBHOOK_SECRETS": "wbhsec_x"})
    assert verified.exit_code == 0 and "audit chain intact" in verified.output, verified.output
    target_runtime.engine.dispose()


@SOURCES
def test_refuses_a_source_that_is_not_at_head(database_url, target_url, client, config):
    populate(client, config, people=1)
    previous = migrate.alembic_config(database_url)
    from alembic.script import ScriptDirectory
    head = ScriptDirectory.from_config(previous).get_current_head()
    down = ScriptDirectory.from_config(previous).get_revision(head).down_revision
    migrate.downgrade(database_url, down)
    try:
        result = migrate_store(database_url, target_url)
        assert result.exit_code == 2
        [line] = result.stderr.strip().splitlines()
        assert f"source is at revision {down}, not at head {head}" in line
        engine = make_engine(target_url)
        with engine.connect() as conn:  # nothing written, not even the schema
            assert not sa.inspect(conn).get_table_names()
        engine.dispose()
    finally:
        migrate.upgrade(database_url)


@SOURCES
def test_refuses_a_target_holding_another_bridges_data(database_url, target_url, client, config):
    populate(client, config, people=1)
    migrate.upgrade(target_url)
    other = Runtime.build(make_settings(target_url), config)
    other_app = create_app(runtime=other)
    other_app.testing = True
    add_person(other_app.test_client(), config, 7, first_name="Someone else")
    other.engine.dispose()
    before = table_rows(target_url)
    result = migrate_store(database_url, target_url)
    assert result.exit_code == 2
    [line] = result.stderr.strip().splitlines()
    assert "another bridge's data" in line
    assert table_rows(target_url) == before


@MARIADB
def test_refuses_a_target_that_is_not_postgresql(database_url, tmp_path, client, config):
    result = migrate_store(database_url, f"sqlite:///{tmp_path / 'other.db'}")
    assert result.exit_code == 2 and "must be PostgreSQL" in result.stderr


@SOURCES
def test_writes_during_a_run_wait_for_the_next_one(database_url, target_url, client, config, runtime):
    """The bridge keeps writing while a run reads: the run copies its snapshot (a consistent one:
    no consent without its contact), and the next run brings what came after."""
    populate(client, config, people=2)

    class WriteWhenConsentsStart(transfer.Progress):
        def start(self, phase: str, table: str, total: int) -> None:
            if (phase, table) == ("copy", "kyc_consents"):  # contacts are copied, consents not yet
                add_person(client, config, 50, first_name="Mid-run")  # a new contact, consent, events
            super().start(phase, table, total)

    first = transfer.run(database_url, target_url, progress=WriteWhenConsentsStart(open(os.devnull, "w")))
    assert first.identical, first.difference
    engine = make_engine(target_url)
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM kyc_contacts WHERE first_name = 'Mid-run'")).scalar() == 0
    second = migrate_store(database_url, target_url)
    assert second.exit_code == 0, second.output
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM kyc_contacts WHERE first_name = 'Mid-run'")).scalar() == 1
    engine.dispose()
    assert_identical(database_url, target_url)


def test_progress_draws_a_bar_on_a_terminal_and_lines_otherwise():
    import io

    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    for stream, expected in ((Terminal(), "\r[############............] copy kyc_events: 5/10 rows"),
                             (io.StringIO(), "copy kyc_events: 5/10 rows")):
        progress = transfer.Progress(stream, interval=0)
        progress.interval = 0
        progress.start("copy", "kyc_events", 10)
        progress.advance(5)
        assert expected in stream.getvalue() and "rows/s, ETA" in stream.getvalue()
        progress.advance(5)
        progress.finish()
        assert stream.getvalue().endswith(" s\n") or stream.getvalue().endswith(" s\x1b[K\n")


@MARIADB
def test_refuses_a_target_with_rows_it_did_not_copy(database_url, target_url, client, config):
    """No audit chain to compare (rows but no entries): only a target migrate-store marked as its
    own may hold rows."""
    populate(client, config, people=1)
    migrate.upgrade(target_url)
    engine = make_engine(target_url)
    with engine.begin() as conn:
        conn.execute(sa.text("INSERT INTO kyc_contacts (email, created_at, updated_at) "
                             "VALUES ('someone@else.example', now(), now())"))
    engine.dispose()
    result = migrate_store(database_url, target_url)
    assert result.exit_code == 2 and "did not copy" in result.stderr, result.output


@MARIADB
def test_a_broken_audit_chain_fails_the_run_even_when_copied_faithfully(database_url, target_url, client, config,
                                                                       runtime):
    populate(client, config, people=2)
    with runtime.engine.begin() as conn:  # tampered at the source: the copy is exact, the chain is not
        conn.execute(sa.text("UPDATE kyc_audit_log SET action = 'tampered' WHERE seq = 2"))
    result = migrate_store(database_url, target_url)
    assert result.exit_code == 1
    assert "NOT identical: kyc_audit_log: audit chain broken at entry 2" in result.stderr, result.output


@MARIADB
def test_a_refused_write_names_the_table_not_the_values(database_url, target_url, client, config, runtime):
    """A stray target row (id 999, never in the source) holds an email the source then gives a new
    contact: the insert is refused. The run stops naming the table and the constraint, never the email."""
    populate(client, config, people=2)
    assert migrate_store(database_url, target_url).exit_code == 0
    engine = make_engine(target_url)
    with engine.begin() as conn:  # a stray row the source never had, holding a source contact's email
        conn.execute(sa.text("INSERT INTO kyc_contacts (id, email, created_at, updated_at) "
                             "VALUES (999, 'person9@example.com', now(), now())"))
    engine.dispose()
    add_person(client, config, 9)  # the source now has person9 too, under a new id below 999
    result = migrate_store(database_url, target_url)
    assert result.exit_code == 1
    assert "kyc_contacts: PostgreSQL refused the write" in result.stderr and "uq_kyc_contacts_email" in result.stderr
    assert "person9" not in result.output
