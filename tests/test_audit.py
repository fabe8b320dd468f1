"""The hash-chained audit log and `kyc-bridge audit verify`."""

from datetime import datetime, timedelta, timezone

import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from bridge import audit
from bridge.app.cli import main
from bridge.persona import samples
from bridge.store.models import AuditEntry
from bridge.outbox.worker import Worker
from conftest import new_id, post_event

T0 = datetime(2025, 6, 1, tzinfo=timezone.utc)


def fill(client, config, runtime, n=3):
    for i, status in enumerate(("created", "pending", "approved")[:n]):
        post_event(client, samples.inquiry_event(
            event_id=new_id("evt"), inquiry_id="inq_audit", status=status, created_at=T0 + timedelta(minutes=i),
            template_id=config.user_types["vendor"].template_id, email="secret.person@example.com", first_name="Secretname"))
    Worker(runtime).drain()


def test_chain_covers_state_changes_and_job_outcomes_without_personal_data(client, config, runtime):
    fill(client, config, runtime)
    with runtime.sessions() as session:
        entries = session.scalars(sa.select(AuditEntry).order_by(AuditEntry.seq)).all()
        actions = [e.action for e in entries]
        assert actions.count("inquiry.status") == 3 and "job.done" in actions
        assert [e.seq for e in entries] == list(range(1, len(entries) + 1))
        assert entries[0].prev_hash == audit.GENESIS
        for previous, entry in zip(entries, entries[1:]):
            assert entry.prev_hash == previous.hash
        text = " ".join(e.detail + e.subject for e in entries).lower()
        assert "secret" not in text and "@" not in text
        assert audit.verify(session).ok


def test_verify_names_the_first_tampered_entry(client, config, runtime):
    fill(client, config, runtime)
    with runtime.sessions.begin() as session:
        session.execute(sa.update(AuditEntry).where(AuditEntry.seq == 2).values(detail='{"to":"approved"}'))
    with runtime.sessions() as session:
        report = audit.verify(session)
    assert not report.ok and report.first_broken == 2 and report.checked == 1


def test_verify_detects_a_removed_entry(client, config, runtime):
    fill(client, config, runtime)
    with runtime.sessions.begin() as session:
        session.execute(sa.delete(AuditEntry).where(AuditEntry.seq == 2))
    with runtime.sessions() as session:
        report = audit.verify(session)
    assert report.first_broken == 2 and "missing" in report.problem


def test_verify_detects_truncated_tail(client, config, runtime):
    fill(client, config, runtime)
    with runtime.sessions.begin() as session:
        last = session.scalar(sa.select(sa.func.max(AuditEntry.seq)))
        session.execute(sa.delete(AuditEntry).where(AuditEntry.seq == last))
    with runtime.sessions() as session:
        report = audit.verify(session)
    assert not report.ok and report.first_broken == last


def test_detail_keys_are_allow_listed():
    import pytest

    with pytest.raises(ValueError, match="email"):
        audit.canonical_detail({"email": "x@example.com"})


def test_cli_verify(client, config, runtime, monkeypatch):
    fill(client, config, runtime)
    monkeypatch.setenv("BRIDGE_DATABASE_URL", runtime.settings.database_url)
    monkeypatch.setenv("BRIDGE_SECRET_KEY", "k")
    monkeypatch.setenv("BRIDGE_ADMIN_TOKEN", "t")
    monkeypatch.setenv("PERSONA_WEBHOOK_SECRETS", "wbhsec_x")
    ok = CliRunner().invoke(main, ["audit", "verify"])
    assert ok.exit_code == 0 and "intact" in ok.output
    with runtime.sessions.begin() as session:
        session.execute(sa.update(AuditEntry).where(AuditEntry.seq == 1).values(action="inquiry.tampered"))
    broken = CliRunner().invoke(main, ["audit", "verify"])
    assert broken.exit_code == 1 and "BROKEN at entry 1" in broken.output


def test_appends_in_one_transaction_chain_on_each_other_and_a_bad_detail_writes_nothing(runtime):
    from bridge.store.engine import transaction

    at = datetime(2025, 6, 2, tzinfo=timezone.utc)
    with transaction(runtime.sessions) as session:
        first = audit.append(session, "test.one", "inq_a", {"to": "approved"}, at=at)
        last = audit.append_many(session, [("test.two", "inq_b", {"to": "declined"}),
                                           ("test.three", "inq_c", {"count": 2})], at=at)
    assert last == first + 2
    try:
        with transaction(runtime.sessions) as session:
            audit.append_many(session, [("test.four", "inq_d", {"to": "approved"}),
                                        ("test.five", "inq_e", {"email": "x@example.com"})], at=at)
    except ValueError as exc:
        assert "email" in str(exc)
    else:
        raise AssertionError("a detail key outside the allowed set was accepted")
    with transaction(runtime.sessions) as session:
        after = audit.append(session, "test.six", "inq_f", {}, at=at)  # a new transaction reads the head again
        entries = session.scalars(sa.select(AuditEntry).order_by(AuditEntry.seq)).all()
        assert after == last + 1
        assert [e.action for e in entries][-4:] == ["test.one", "test.two", "test.three", "test.six"]
        assert audit.verify(session).ok


def test_a_head_lock_sent_with_other_statements_is_the_one_the_next_append_uses(runtime):
    """The intake sends the head lock in its writes pipeline: the append that follows must chain
    on that head, not read it again, and a later transaction must continue the chain."""
    from bridge.store.driver_sql import pipelined
    from bridge.store.engine import core_transaction

    at = datetime(2025, 6, 3, tzinfo=timezone.utc)
    with core_transaction(runtime.engine) as connection:
        before = audit.append_many(connection, [("test.before", "inq_a", {})], at=at)
    statements = []
    with core_transaction(runtime.engine) as connection:
        with pipelined(connection):
            hold = audit.send_head_lock(connection)
        sa.event.listen(connection, "before_cursor_execute", lambda *args: statements.append(args[2]))
        hold()
        sent = audit.append_many(connection, [("test.sent", "inq_b", {}), ("test.sent", "inq_c", {})], at=at)
    with core_transaction(runtime.engine) as connection:
        after = audit.append_many(connection, [("test.after", "inq_d", {})], at=at)
    assert (sent, after) == (before + 2, before + 3)
    assert not any("kyc_audit_head" in s and s.lstrip().upper().startswith("SELECT") for s in statements)
    with runtime.sessions() as session:
        assert audit.verify(session).ok


@pytest.mark.parametrize("backend", ["mariadb", "postgres"])  # SQLite: one snapshot that keeps writers out
def test_verify_on_a_live_store_ignores_entries_appended_while_it_reads(runtime):
    """`audit verify` from cron on a running bridge: an entry committed after verify has read the
    entries but before it reads the head is no sign of removed entries. Forced: the entry is
    appended from another transaction just before verify's first statement on the head row.
    (SQLite: verify reads in one snapshot that keeps writers out, so there is no such window.)"""
    from bridge.store.engine import transaction

    at = datetime(2025, 6, 4, tzinfo=timezone.utc)
    with transaction(runtime.sessions) as session:
        audit.append_many(session, [("test.one", "inq_a", {}), ("test.two", "inq_b", {})], at=at)
    appended = []

    with runtime.sessions() as session:
        verifying = session.connection()

        def before_head_read(conn, cursor, statement, *args):
            if conn is verifying and "kyc_audit_head" in statement and not appended:
                appended.append(True)
                with transaction(runtime.sessions) as other:
                    appended.append(audit.append(other, "test.live", "inq_c", {}, at=at))

        sa.event.listen(runtime.engine, "before_cursor_execute", before_head_read)
        try:
            report = audit.verify(session)
        finally:
            sa.event.remove(runtime.engine, "before_cursor_execute", before_head_read)
    assert appended == [True, 3]
    assert report.ok, report
    with runtime.sessions() as session:
        assert audit.verify(session).checked == 3
