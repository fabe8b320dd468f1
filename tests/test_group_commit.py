"""Group commit: concurrent webhooks share transactions; each still answers only after COMMIT."""

import logging
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta, timezone

import pytest
import sqlalchemy as sa

from bridge.intake import ingest
from bridge.intake.group_commit import GroupCommitter
from bridge.persona import events, samples
from bridge.runtime import Runtime
from bridge.store.engine import StoreUnavailable
from bridge.store.models import Event, Inquiry
from conftest import make_settings, wait_until

T0 = datetime(2025, 6, 1, tzinfo=timezone.utc)


def parsed(config, n, status="approved", event_id=None):
    body = samples.encode(samples.inquiry_event(
        event_id=event_id or f"evt_gc{n:04d}", inquiry_id=f"inq_gc{n % 7:02d}", status=status,
        created_at=T0 + timedelta(seconds=n), template_id=config.user_types["customer"].template_id,
        email=f"gc{n % 7}@example.com"))
    return events.parse(body), body


def body_of(config, n, **kwargs) -> bytes:
    return parsed(config, n, **kwargs)[1]


def test_concurrent_events_share_transactions_and_all_are_stored(runtime, config, monkeypatch):
    sizes = []
    real = ingest.ingest_many

    def slow_first(*args, **kwargs):
        sizes.append(len(args[2]))
        if len(sizes) == 1:  # while this commit runs, others queue up behind it
            wait_until(lambda: len(committer._queue) >= 2, "a second request queued", seconds=30.0)
        return real(*args, **kwargs)

    monkeypatch.setattr(ingest, "ingest_many", slow_first)
    committer = GroupCommitter(runtime)
    items = [parsed(config, n) for n in range(40)]
    with ThreadPoolExecutor(max_workers=40) as pool:
        results = list(pool.map(lambda item: committer.submit(item[1]), items))
    assert not any(r.duplicate for r in results)
    assert sum(sizes) == 40 and max(sizes) > 1  # batched
    with runtime.sessions() as session:
        assert session.scalar(sa.select(sa.func.count()).select_from(Event)) == 40
        assert session.scalar(sa.select(sa.func.count()).select_from(Inquiry)) == 7


def test_a_duplicate_inside_one_batch_is_stored_once(runtime, config):
    event, body = parsed(config, 1)
    results = ingest.ingest_many(runtime.engine, config, [(event, body), (event, body)], now=datetime.now(timezone.utc))
    assert [r.duplicate for r in results] == [False, True]
    with runtime.sessions() as session:
        assert session.scalar(sa.select(sa.func.count()).select_from(Event)) == 1


def test_batch_state_equals_one_by_one_state(runtime, config):
    items = [parsed(config, n, status=s) for n, s in enumerate(["created", "pending", "completed", "approved"] * 3)]
    ingest.ingest_many(runtime.engine, config, list(reversed(items)), now=datetime.now(timezone.utc))
    with runtime.sessions() as session:
        states = dict(session.execute(sa.select(Inquiry.inquiry_id, Inquiry.status)).all())
    expected = {}
    for n, s in enumerate(["created", "pending", "completed", "approved"] * 3):
        expected[f"inq_gc{n % 7:02d}"] = s  # the newest event of each inquiry wins
    assert states == expected


def test_store_down_fails_every_waiting_request(config):
    runtime = Runtime.build(make_settings("postgresql+psycopg://nobody@127.0.0.1:1/none?connect_timeout=2"), config)
    committer = GroupCommitter(runtime)
    errors = []

    def submit(n):
        try:
            committer.submit(body_of(config, n))
        except StoreUnavailable as exc:
            errors.append(exc)

    threads = [threading.Thread(target=submit, args=(n,)) for n in range(5)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert len(errors) == 5


def test_the_lead_passes_to_a_waiting_request_and_nobody_is_left_behind(runtime, config, monkeypatch):
    """While one request commits, later ones queue; the first of them commits the whole queue
    itself (no extra thread), and every request gets its own result."""
    committing_threads = []
    real = ingest.ingest_many
    first_started = threading.Event()

    def record(*args, **kwargs):
        committing_threads.append((threading.current_thread().name, len(args[2])))
        if len(committing_threads) == 1:
            first_started.set()
            wait_until(lambda: len(committer._queue) >= 11, "the other requests queued", seconds=30.0)  # every other request queued behind it
        return real(*args, **kwargs)

    monkeypatch.setattr(ingest, "ingest_many", record)
    committer = GroupCommitter(runtime)
    items = [parsed(config, n, event_id=f"evt_lead{n:03d}") for n in range(12)]
    results = {}

    def submit(n):
        results[n] = committer.submit(items[n][1])

    leader = threading.Thread(target=submit, args=(0,), name="request-0")
    leader.start()
    assert first_started.wait(10)
    others = [threading.Thread(target=submit, args=(n,), name=f"request-{n}") for n in range(1, 12)]
    for t in others:
        t.start()
    for t in [leader, *others]:
        t.join(30)
    assert sorted(results) == list(range(12)) and not any(r.duplicate for r in results.values())
    names = [name for name, _ in committing_threads]
    assert names[0] == "request-0" and all(name.startswith("request-") for name in names)
    assert sum(size for _, size in committing_threads) == 12 and committing_threads[1][1] > 1


def test_one_log_line_per_webhook_once_committed_and_none_when_the_commit_fails(runtime, config, caplog, monkeypatch):
    caplog.set_level(logging.INFO, logger="bridge.intake.ingest")
    committer = GroupCommitter(runtime)
    committer.submit(body_of(config, 1, event_id="evt_gclog1"))
    committer.submit(body_of(config, 1, event_id="evt_gclog1"))
    lines = [r.getMessage() for r in caplog.records if r.name == "bridge.intake.ingest"]
    assert lines == ["webhook evt_gclog1 inquiry.approved: stored", "webhook evt_gclog1 inquiry.approved: duplicate"]
    caplog.clear()
    monkeypatch.setattr("bridge.intake.ingest._Batch._write", lambda self, connection: (_ for _ in ()).throw(
        StoreUnavailable("OperationalError")))
    with pytest.raises(StoreUnavailable):
        committer.submit(body_of(config, 2, event_id="evt_gclog2"))
    assert not [r for r in caplog.records if r.name == "bridge.intake.ingest"]


def test_a_body_that_is_no_persona_event_is_refused_before_it_waits_for_a_commit(runtime):
    committer = GroupCommitter(runtime)
    with pytest.raises(events.EventFormatError, match="data.type must be 'event'"):
        committer.submit(b'{"data": {"type": "inquiry", "id": "inq_1"}}')
    assert not committer._queue and not committer._committing
