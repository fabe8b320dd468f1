"""Scale-out as a tested topology (issue 15, part 3): two `kyc-bridge serve` processes (each also
runs a worker thread) and three `kyc-bridge worker` processes on one PostgreSQL or one MariaDB,
300 people, every webhook delivered twice and shuffled, and a FluentCRM double with slow, uneven
calls. Thirty people's decision arrives exactly while a write for them is in flight at FluentCRM,
and that write is held until another write for the person has been answered (or 10 s passed).
Every contact must end with exactly its decision's tag, one contact per person, and close to one
FluentCRM write per status change.
"""

import os
import random
import signal
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta, timezone

import pytest
import requests
import sqlalchemy as sa

from bridge.kyc.states import Status
from bridge.persona import samples, signature
from bridge.store.engine import make_engine
from conftest import WEBHOOK_SECRET, free_port, wait_healthy

PEOPLE = 300
RACING = 30  # people whose decision is delivered while a FluentCRM write for them is in flight
DECISIONS = ("approved", "declined", "needs_review")
T0 = datetime.now(timezone.utc).replace(microsecond=0) - timedelta(hours=1)
HOLD_SECONDS = 10.0  # how long a held write waits for a newer one (which must not come, if all is well)
SETTLE_SECONDS = 100  # the whole run must settle well inside the CI budget (< 2 min per backend)


def _events(config):  # type: ignore[no-untyped-def]
    """Per person: created, completed, then a decision; returns (deliveries, held back, final)."""
    template = config.user_types["investor"].template_id
    spread, held, final = [], {}, {}
    for person in range(PEOPLE):
        email = f"topo{person}@example.com"
        decision = DECISIONS[person % len(DECISIONS)]
        final[email] = decision
        bodies = [samples.encode(samples.inquiry_event(
            event_id=f"evt_topo_{person}_{step}", inquiry_id=f"inq_topo_{person}", status=status,
            created_at=T0 + timedelta(seconds=person, minutes=step), email=email, first_name="Topo",
            template_id=template)) for step, status in enumerate(("created", "completed", decision))]
        if person < RACING:
            held[email] = bodies[2]
            bodies = bodies[:2]
        spread += bodies * 2  # every event delivered twice
    random.Random(15).shuffle(spread)
    return spread, held, final


@pytest.mark.parametrize("backend", ["postgres", "mariadb"])
def test_two_web_servers_and_three_workers_keep_every_person_right(database_url, config, fluentcrm, tmp_path):
    env = {**os.environ, "BRIDGE_DATABASE_URL": database_url, "BRIDGE_SECRET_KEY": "k", "BRIDGE_ADMIN_TOKEN": "t",
           "PERSONA_WEBHOOK_SECRETS": WEBHOOK_SECRET, "FLUENTCRM_BASE_URL": fluentcrm.base_url,
           "FLUENTCRM_USERNAME": fluentcrm.username, "FLUENTCRM_APP_PASSWORD": fluentcrm.app_password,
           "BRIDGE_LOG_LEVEL": "WARNING"}
    for name in ("BRIDGE_INTAKE_SOCKET", "PROMETHEUS_MULTIPROC_DIR", "N8N_WEBHOOK_URL"):
        env.pop(name, None)
    fluentcrm.slow_calls(0.02, 0.2)
    spread, held, final = _events(config)
    ports = [free_port(), free_port()]
    bases = [f"http://127.0.0.1:{port}" for port in ports]

    def post(i_body):  # type: ignore[no-untyped-def]
        i, body = i_body
        headers = {"Persona-Signature": signature.header_for([WEBHOOK_SECRET], int(time.time()), body),
                   "Content-Type": "application/json"}
        return requests.post(f"{bases[i % 2]}/webhooks/persona", data=body, headers=headers, timeout=30).status_code

    # When FluentCRM receives a write for a racing person, their decision arrives right then (twice),
    # and the write is held until another write for that person has been answered (at most
    # HOLD_SECONDS): the older write, in flight, lands after the newer one wherever that can happen.
    racing_lock = threading.Lock()
    newer_written = {email: threading.Event() for email in held}
    holding: set[str] = set()

    def person_of(method: str, path: str, body) -> str | None:  # type: ignore[no-untyped-def]
        if method == "POST" and path == "/subscribers":
            return (body or {}).get("email")
        if method == "PUT" and path.startswith("/subscribers/") and path.rsplit("/", 1)[1].isdigit():
            return fluentcrm.email_of(int(path.rsplit("/", 1)[1]))
        return None

    def decision_during_write(method: str, path: str, body) -> None:  # type: ignore[no-untyped-def]
        email = person_of(method, path, body)
        with racing_lock:
            decision = held.pop(email, None)
            if decision is not None:
                holding.add(email)
        if decision is not None:
            assert [post((0, decision)), post((1, decision))] == [200, 200]
            newer_written[email].wait(HOLD_SECONDS)
            with racing_lock:
                holding.discard(email)

    def newer_write_answered(method: str, path: str, body, status: int) -> None:  # type: ignore[no-untyped-def]
        email = person_of(method, path, body)
        with racing_lock:
            if email in holding:
                newer_written[email].set()

    fluentcrm.on_arrival = decision_during_write
    fluentcrm.on_answered = newer_write_answered
    # Logs to files: a pipe nobody reads until the end fills up and blocks the logging process.
    commands = [["serve", "--port", str(port)] for port in ports] + [["worker"]] * 3
    logs = [tmp_path / f"process{n}.log" for n in range(len(commands))]
    processes = [subprocess.Popen([sys.executable, "-m", "bridge.app.cli", *command], env=env,
                                  stdout=subprocess.DEVNULL, stderr=log.open("w"))
                 for command, log in zip(commands, logs)]
    engine = make_engine(database_url)
    try:
        for base in bases:
            wait_healthy(base, 60)
        with ThreadPoolExecutor(max_workers=8) as pool:
            assert set(pool.map(post, enumerate(spread))) == {200}
        deadline = time.monotonic() + SETTLE_SECONDS
        while True:
            with engine.connect() as conn:
                unfinished = conn.execute(sa.text(
                    "SELECT COUNT(*) FROM kyc_jobs WHERE state IN ('queued', 'running')")).scalar()
                failed = conn.execute(sa.text(
                    "SELECT COUNT(*) FROM kyc_jobs WHERE state = 'dead' OR last_error IS NOT NULL")).scalar()
            if not unfinished and not held:
                break
            if time.monotonic() > deadline:
                with engine.connect() as conn:
                    stuck = conn.execute(sa.text(
                        "SELECT j.id, j.kind, j.state, j.attempts, j.lease_until, j.contact_key, l.job_id, l.lease_until "
                        "FROM kyc_jobs j LEFT JOIN kyc_contact_leases l ON l.contact_key = j.contact_key "
                        "WHERE j.state IN ('queued', 'running')")).all()
                complaints = [line for log in logs for line in log.read_text().splitlines() if " INFO " not in line]
                raise AssertionError(f"{unfinished} jobs unfinished, {len(held)} decisions never sent: {stuck}; "
                                     f"logged: {complaints[:20]}")
            time.sleep(0.2)
    finally:
        fluentcrm.on_arrival = fluentcrm.on_answered = None
        for process in processes:
            process.send_signal(signal.SIGTERM)
        for process in processes:
            process.wait(timeout=60)
        errors = [log.read_text() for log in logs]
        engine.dispose()

    status_slugs = {tag.slug for tag in config.status_tags.values()}
    contacts: dict[str, list] = {}
    for contact in fluentcrm.contacts():
        contacts.setdefault(contact.email, []).append(contact)
    wrong = {}
    for email, decision in final.items():
        [contact] = contacts[email]  # one contact per person
        have = set(contact.tag_slugs) & status_slugs
        if have != {config.status_tags[Status(decision)].slug}:
            wrong[email] = (decision, sorted(have))
    assert wrong == {}, f"{len(wrong)} people wrongly tagged, e.g. {list(wrong.items())[:3]}"
    assert len(contacts) == PEOPLE

    writes = [r for r in fluentcrm.writes() if r.path.startswith("/subscribers")]
    status_changes = 3 * PEOPLE
    print(f"\nFluentCRM contact writes: {len(writes)} for {status_changes} status changes; "
          f"jobs that failed a try: {failed}")
    assert len(writes) <= 1.25 * status_changes
    assert not any("Traceback" in e for e in errors), next(e for e in errors if "Traceback" in e)
