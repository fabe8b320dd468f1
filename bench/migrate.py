"""MariaDB → PostgreSQL store migration: `kyc-bridge migrate-store` vs. Debian's pgloader.

    .venv/bin/python bench/migrate.py                   # 10,000 people (~123,000 rows), a couple of minutes
    .venv/bin/python bench/migrate.py --people 50000    # the issue's store: ~612,000 rows, ~300 MB
    .venv/bin/python bench/migrate.py --people 10000 --scale 4   # also a 4× store: memory stays flat?

In one run, for each size:
  1. generates a MariaDB store through the bridge's own schema (`db upgrade`, then the models'
     tables): per person a contact (names with accents and emoji), an inquiry, 4 events with
     ~600-byte JSON payloads holding 4-byte UTF-8, 2 jobs, 4 audit entries (a real hash chain);
     consents and sessions for a quarter of the people;
  2. times `kyc-bridge migrate-store --to <empty PostgreSQL database>` (verification and the audit
     chain check included) as a subprocess: wall time, peak RSS (wait4), rows/s per table, where
     the time goes (its own per-table timings);
  3. times `pgloader --with "prefetch rows = 1000" mysql://… postgresql://…` into another empty
     database, the same way (if pgloader is installed; `apt-get install -y pgloader`);
     2 and 3 take turns for --rounds rounds (first one, then the other), each into a new empty
     database, and the median round of each is reported: the machine's load drifts;
  4. times a second migrate-store run with nothing changed (the incremental run's floor) and one
     after 1 % new people and 1 % status changes on the source.

Scratch databases (`kyc_bench_mig_*`) are dropped at the end.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import shutil
import subprocess
import sys
import time
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

import sqlalchemy as sa  # noqa: E402
from sqlalchemy.engine import make_url  # noqa: E402

from bridge import audit  # noqa: E402
from bridge.persona import samples  # noqa: E402
from bridge.store import migrate  # noqa: E402
from bridge.store.engine import normalize_url  # noqa: E402
from bridge.store.models import AuditEntry, AuditHead, Consent, Contact, Event, Inquiry, Job, VerificationSession  # noqa: E402

NAMES = ["Zoë", "Ångström", "李", "Łukasz", "Renée 🦄", "José", "Nia", "Ömer 👩🏽‍💻", "Søren", "Amélie"]
STATUSES = ["approved", "declined", "needs_review", "completed"]
T0 = datetime(2026, 1, 1, tzinfo=timezone.utc)


def server_url(kind: str, database: str) -> str:
    base = {"mariadb": os.environ.get("KYC_BENCH_MARIADB_URL", "mysql+pymysql://root@127.0.0.1:3306/mysql"),
            "postgres": os.environ.get("KYC_BENCH_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")}[kind]
    return make_url(normalize_url(base)).set(database=database).render_as_string(hide_password=False)


def admin(kind: str, sql: str) -> None:
    engine = sa.create_engine(server_url(kind, "postgres" if kind == "postgres" else "mysql"), isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(sa.text(sql))
    engine.dispose()


def payload(event_id: str, inquiry_id: str, status: str, at: datetime, email: str, name: str) -> str:
    body = samples.inquiry_event(event_id=event_id, inquiry_id=inquiry_id, status=status, created_at=at,
                                 template_id="itmpl_demoInvestor0000000001", email=email, first_name=name,
                                 reference_id=f"kyc_{inquiry_id[4:]}")
    text = json.dumps(body, ensure_ascii=False, separators=(",", ":"))
    return text[:-1] + ',"pad":"' + "é🦄" * max(0, (600 - len(text.encode())) // 6) + '"}'


def generate(url: str, people: int, start: int = 0, seed: int = 7) -> int:
    """Insert `people` more people; returns the rows written. Audit entries continue the chain."""
    rng = random.Random(seed + start)
    engine = sa.create_engine(url)
    rows = 0
    with engine.begin() as conn:
        head = conn.execute(sa.select(AuditHead.seq, AuditHead.hash).where(AuditHead.id == 1)).one()
        seq, prev = head.seq, head.hash
        next_id = {t: (conn.execute(sa.select(sa.func.coalesce(sa.func.max(c), 0))).scalar() or 0)
                   for t, c in (("events", Event.id), ("jobs", Job.id), ("consents", Consent.id))}
    chunk = 2000
    for first in range(start, start + people, chunk):
        contacts, inquiries, events, jobs, entries, consents, sessions = [], [], [], [], [], [], []
        for n in range(first, min(first + chunk, start + people)):
            at = T0 + timedelta(seconds=n * 37, microseconds=n % 1000000)
            email = f"person{n}@example.com"
            name = f"{rng.choice(NAMES)} {n}"
            inquiry_id = f"inq_{uuid.UUID(int=rng.getrandbits(128)).hex[:24]}"
            status = rng.choice(STATUSES)
            contacts.append({"id": n + 1, "email": email, "first_name": name, "reference_id": f"kyc_{n:012d}",
                             "wp_user_id": n + 1000 if n % 3 else None, "consent_withdrawn_at": None,
                             "created_at": at, "updated_at": at})
            inquiries.append({"id": n + 1, "inquiry_id": inquiry_id, "contact_id": n + 1, "reference_id": f"kyc_{n:012d}",
                              "template_id": "itmpl_demoInvestor0000000001", "user_type": "investor", "level": "enhanced",
                              "status": status, "decided_at": at + timedelta(minutes=3), "decided_by": None,
                              "redacted_at": None, "created_at": at, "updated_at": at + timedelta(minutes=3)})
            for step, event_status in enumerate(["created", "pending", "completed", status]):
                event_id = f"evt_{uuid.UUID(int=rng.getrandbits(128)).hex[:24]}"
                event_at = at + timedelta(minutes=step, milliseconds=step * 7)
                events.append({"event_id": event_id, "name": samples.STATUS_EVENT[event_status], "inquiry_id": inquiry_id,
                               "created_at": event_at, "received_at": event_at + timedelta(seconds=1),
                               "applied": step != 2 or status == "completed",
                               "payload": payload(event_id, inquiry_id, event_status, event_at, email, name)})
                if step == 3:
                    inquiries[-1]["decided_by"] = event_id
            for kind in ("crm_sync", "n8n_event"):
                jobs.append({"kind": kind, "inquiry_id": inquiry_id,
                             "payload": json.dumps({"inquiry_id": inquiry_id, "status": status}, sort_keys=True),
                             "state": "done", "attempts": 1, "max_attempts": 8, "run_after": at, "lease_until": None,
                             "lease_token": None, "last_error": None, "result": "tags applied", "created_at": at,
                             "updated_at": at + timedelta(seconds=2)})
            for step, (action, detail) in enumerate([
                    ("inquiry.status", {"inquiry_id": inquiry_id, "from": None, "to": "created"}),
                    ("inquiry.status", {"inquiry_id": inquiry_id, "from": "created", "to": "completed"}),
                    ("inquiry.status", {"inquiry_id": inquiry_id, "from": "completed", "to": status}),
                    ("job.done", {"job_id": len(jobs), "kind": "crm_sync", "outcome": "ok"})]):
                seq += 1
                body = audit.canonical_detail(detail)
                entry_at = at + timedelta(minutes=step)
                digest = audit.entry_hash(prev, seq, entry_at, action, f"inquiry:{inquiry_id}", body)
                entries.append({"seq": seq, "at": entry_at, "action": action, "subject": f"inquiry:{inquiry_id}",
                                "detail": body, "prev_hash": prev, "hash": digest})
                prev = digest
            if n % 4 == 0:
                next_id["consents"] += 1
                consents.append({"id": next_id["consents"], "contact_id": n + 1, "user_type": "investor",
                                 "share_with_persona": True, "persona_retention": True, "gdpr_processing": True,
                                 "text_version": "2026-11-01", "text_sha256": hashlib.sha256(b"text").hexdigest(),
                                 "ip_hash": hashlib.sha256(f"ip{n}".encode()).hexdigest(), "user_agent": "Mozilla/5.0 ✓",
                                 "source": "api", "created_at": at, "withdrawn_at": None})
                sessions.append({"contact_id": n + 1, "consent_id": next_id["consents"], "user_type": "investor",
                                 "inquiry_id": inquiry_id, "resumed": False, "created_at": at})
        with engine.begin() as conn:
            for model, batch in ((Contact, contacts), (Inquiry, inquiries), (Event, events), (Job, jobs),
                                 (AuditEntry, entries), (Consent, consents), (VerificationSession, sessions)):
                if batch:
                    conn.execute(sa.insert(model.__table__), batch)
                    rows += len(batch)
            conn.execute(sa.update(AuditHead.__table__).where(AuditHead.id == 1).values(seq=seq, hash=prev))
    engine.dispose()
    return rows


def change_some(url: str, people: int, fraction: float) -> None:
    """Live changes: status changes in place for `fraction` of the people."""
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        step = max(1, int(1 / fraction))
        conn.execute(sa.text(f"UPDATE kyc_inquiries SET status = 'approved', updated_at = NOW(6) WHERE id % {step} = 0"))
    engine.dispose()


def _cpu_seconds(pid: int, children: bool) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = int(fields[11]) + int(fields[12]) + ((int(fields[13]) + int(fields[14])) if children else 0)
    return ticks / os.sysconf("SC_CLK_TCK")


def server_cpu() -> dict[str, float]:
    """CPU seconds so far of the MariaDB server and of PostgreSQL (the postmaster with its reaped
    backends, plus the live ones). Shared servers: other users' work counts too."""
    found = {"mariadb": 0.0, "postgres": 0.0}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            command = (entry / "cmdline").read_bytes().split(b"\0")[0].decode()
            parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            if command.endswith("mariadbd") or command.endswith("mysqld"):
                found["mariadb"] += _cpu_seconds(int(entry.name), False)
            elif command.endswith("/postgres") and parent == 1:
                found["postgres"] += _cpu_seconds(int(entry.name), True)
            elif command.startswith("postgres:"):
                found["postgres"] += _cpu_seconds(int(entry.name), False)
        except (OSError, ValueError, IndexError):
            continue
    return found


def timed(command: list[str], env: dict[str, str]) -> dict:
    servers_before = server_cpu()
    began = time.monotonic()
    process = subprocess.Popen(command, env=env, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    out_lines: list[str] = []
    # Read both pipes without blocking either (pgloader writes a lot to stderr).
    import threading

    def drain(stream, sink):  # type: ignore[no-untyped-def]
        for line in stream:
            sink.append(line)
    err_lines: list[str] = []
    threads = [threading.Thread(target=drain, args=(process.stdout, out_lines)),
               threading.Thread(target=drain, args=(process.stderr, err_lines))]
    for t in threads:
        t.start()
    _, status, usage = os.wait4(process.pid, 0)
    wall = time.monotonic() - began
    for t in threads:
        t.join()
    process.returncode = os.waitstatus_to_exitcode(status)
    servers_after = server_cpu()
    return {"wall": wall, "rss_mb": usage.ru_maxrss / 1024, "cpu": usage.ru_utime + usage.ru_stime,
            "mariadb_cpu": servers_after["mariadb"] - servers_before["mariadb"],
            "postgres_cpu": servers_after["postgres"] - servers_before["postgres"],
            "load": os.getloadavg()[0],
            "rc": process.returncode, "stdout": "".join(out_lines), "stderr": "".join(err_lines)}


def count_rows(url: str, schema: str | None = None) -> int:
    engine = sa.create_engine(url)
    with engine.connect() as conn:
        names = sa.inspect(conn).get_table_names(schema=schema)
        total = sum(conn.execute(sa.text(f'SELECT count(*) FROM {schema + "." if schema else ""}"{n}"')).scalar()
                    for n in names if n.startswith("kyc_"))
    engine.dispose()
    return total


def store_size_mb(database: str) -> float:
    engine = sa.create_engine(server_url("mariadb", database))
    with engine.connect() as conn:
        for name in sa.inspect(conn).get_table_names():
            conn.execute(sa.text(f"ANALYZE TABLE `{name}`"))  # refresh the sizes information_schema shows
        size = conn.execute(sa.text("SELECT SUM(data_length + index_length) FROM information_schema.tables "
                                    "WHERE table_schema = :s"), {"s": database}).scalar()
    engine.dispose()
    return float(size or 0) / 1e6


def bench_size(people: int, batch_size: int, with_pgloader: bool, rounds: int, reruns: bool = True) -> dict:
    tag = uuid.uuid4().hex[:8]
    source_db, ours_db, theirs_db = f"kyc_bench_mig_{tag}", f"kyc_bench_mig_{tag}_ours", f"kyc_bench_mig_{tag}_pgl"
    report: dict = {"people": people}
    try:
        admin("mariadb", f"CREATE DATABASE {source_db} CHARACTER SET utf8mb4")
        admin("postgres", f"CREATE DATABASE {ours_db}")
        admin("postgres", f"CREATE DATABASE {theirs_db}")
        source = server_url("mariadb", source_db)
        migrate.upgrade(source)
        began = time.monotonic()
        report["rows"] = generate(source, people) + 1
        report["generate_s"] = time.monotonic() - began
        report["source_mb"] = store_size_mb(source_db)
        print(f"\n== {people:,} people: {report['rows']:,} rows, {report['source_mb']:.0f} MB in MariaDB "
              f"(generated in {report['generate_s']:.0f} s)", flush=True)

        env = {**os.environ, "BRIDGE_DATABASE_URL": source, "BRIDGE_LOG_LEVEL": "WARNING"}
        command = [sys.executable, "-m", "bridge.app.cli", "migrate-store", "--to", server_url("postgres", ours_db),
                   "--batch-size", str(batch_size)]
        mysql = make_url(source)
        pgloader = ["pgloader", "--with", "prefetch rows = 1000",
                    f"mysql://{mysql.username}@{mysql.host}:{mysql.port or 3306}/{source_db}",
                    f"postgresql://postgres@127.0.0.1:5432/{theirs_db}"]
        ours_rounds, theirs_rounds = [], []
        for round_ in range(rounds):
            # Alternate who goes first: a shared machine's load drifts over minutes.
            order = ["ours", "pgloader"] if round_ % 2 == 0 else ["pgloader", "ours"]
            for who in order:
                if who == "pgloader" and not with_pgloader:
                    continue
                database = ours_db if who == "ours" else theirs_db
                admin("postgres", f"DROP DATABASE IF EXISTS {database} WITH (FORCE)")
                admin("postgres", f"CREATE DATABASE {database}")
                if who == "ours":
                    ours = timed(command, env)
                    ours_rounds.append(ours)
                    print(f"  round {round_ + 1} migrate-store: rc {ours['rc']}, {ours['wall']:.1f} s, "
                          f"RSS {ours['rss_mb']:.0f} MB, CPU {ours['cpu']:.1f} s + MariaDB {ours['mariadb_cpu']:.1f} s "
                          f"+ PostgreSQL {ours['postgres_cpu']:.1f} s, load {ours['load']:.1f}", flush=True)
                    if ours["rc"] != 0:
                        print(ours["stdout"][-2000:], ours["stderr"][-2000:])
                else:
                    theirs = timed(pgloader, dict(os.environ))
                    theirs["rows"] = count_rows(server_url("postgres", theirs_db), schema=source_db) \
                        if theirs["rc"] == 0 else 0
                    theirs_rounds.append(theirs)
                    print(f"  round {round_ + 1} pgloader: rc {theirs['rc']}, {theirs['wall']:.1f} s, "
                          f"RSS {theirs['rss_mb']:.0f} MB, CPU {theirs['cpu']:.1f} s + MariaDB "
                          f"{theirs['mariadb_cpu']:.1f} s + PostgreSQL {theirs['postgres_cpu']:.1f} s, "
                          f"load {theirs['load']:.1f}, {theirs['rows']:,} rows", flush=True)
                    if theirs["rc"] != 0:
                        print("  " + "\n  ".join(theirs["stderr"].splitlines()[-8:]))
        ours = sorted(ours_rounds, key=lambda r: r["wall"])[len(ours_rounds) // 2]
        report["ours"] = {k: ours[k] for k in ("wall", "rss_mb", "cpu", "mariadb_cpu", "postgres_cpu", "rc")} | {
            "walls": [round(r["wall"], 2) for r in ours_rounds]}
        print(f"migrate-store (median of {len(ours_rounds)}): rc {ours['rc']}, {ours['wall']:.1f} s wall, "
              f"{report['rows'] / ours['wall']:,.0f} rows/s, peak RSS {ours['rss_mb']:.0f} MB, CPU {ours['cpu']:.1f} s "
              "(verification and audit chain check included); its own summary:")
        print("\n".join("  " + line for line in ours["stderr"].splitlines()
                        if not line.startswith(("copy ", "verify ", "read ")) and "alembic" not in line))
        if theirs_rounds:
            theirs = sorted(theirs_rounds, key=lambda r: r["wall"])[len(theirs_rounds) // 2]
            report["pgloader"] = {k: theirs[k] for k in ("wall", "rss_mb", "cpu", "mariadb_cpu", "postgres_cpu", "rc", "rows")} | {
                "walls": [round(r["wall"], 2) for r in theirs_rounds]}
            print(f"pgloader --with 'prefetch rows = 1000' (median of {len(theirs_rounds)}): rc {theirs['rc']}, "
                  f"{theirs['wall']:.1f} s wall, {theirs['rows'] / theirs['wall']:,.0f} rows/s, peak RSS "
                  f"{theirs['rss_mb']:.0f} MB, CPU {theirs['cpu']:.1f} s, {theirs['rows']:,} rows (no verification)")
            if theirs["rc"] == 0:
                report["ratio"] = theirs["wall"] / ours["wall"]
                print(f"ratio pgloader wall / migrate-store wall: {report['ratio']:.2f}x "
                      "(>= 1.0: migrate-store, verification included, is as fast or faster)")

        if not reruns:
            return report
        again = timed(command, env)
        report["rerun"] = {k: again[k] for k in ("wall", "rss_mb", "rc")}
        print(f"second run, nothing changed: rc {again['rc']}, {again['wall']:.1f} s, peak RSS {again['rss_mb']:.0f} MB")
        added = generate(source, max(1, people // 100), start=people)
        change_some(source, people, 0.01)
        live = timed(command, env)
        report["incremental"] = {k: live[k] for k in ("wall", "rss_mb", "rc")}
        print(f"third run after {added:,} new rows and 1 % status changes: rc {live['rc']}, {live['wall']:.1f} s, "
              f"peak RSS {live['rss_mb']:.0f} MB")
        print("  " + "\n  ".join(line for line in live["stderr"].splitlines() if line.startswith(("kyc_", "table"))))
    finally:
        admin("mariadb", f"DROP DATABASE IF EXISTS {source_db}")
        for db in (ours_db, theirs_db):
            admin("postgres", f"DROP DATABASE IF EXISTS {db} WITH (FORCE)")
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--people", type=int, default=10000)
    parser.add_argument("--scale", type=int, default=1, help="also run at this multiple of --people (e.g. 4)")
    parser.add_argument("--batch-size", type=int, default=5000)
    parser.add_argument("--no-pgloader", action="store_true")
    parser.add_argument("--rounds", type=int, default=3, help="timed runs of each tool per size (median)")
    parser.add_argument("--no-reruns", action="store_true", help="skip the unchanged and incremental runs")
    args = parser.parse_args()
    with_pgloader = not args.no_pgloader and shutil.which("pgloader") is not None
    if not with_pgloader:
        print("pgloader: not installed (apt-get install -y pgloader) or --no-pgloader: not compared")
    reports = [bench_size(args.people, args.batch_size, with_pgloader, args.rounds, not args.no_reruns)]
    if args.scale > 1:
        reports.append(bench_size(args.people * args.scale, args.batch_size, with_pgloader, args.rounds, not args.no_reruns))
    for report in reports:
        print("RESULT " + json.dumps(report))


if __name__ == "__main__":
    main()
