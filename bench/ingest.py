"""Webhook ingest benchmark: the real app vs. a bare HMAC-only receiver, both under gunicorn.

    .venv/bin/python bench/ingest.py                 # default run (~3 min): bare, sqlite, postgres
    .venv/bin/python bench/ingest.py --quick         # smoke run (< 60 s)
    .venv/bin/python bench/ingest.py --backends sqlite --requests 20000 --duration 10

For each target (bare receiver, full app on SQLite, full app on PostgreSQL) the bench
  1. prepares a fresh store (SQLite temp file / scratch PostgreSQL database, migrated),
  2. starts gunicorn with the project's gunicorn.conf.py and the same workers/threads for every
     target (access log off; the bare receiver is the positional app argument),
  3. drives it from a separate process (bench/loadgen.py) with pre-built, correctly signed,
     distinct Persona events over keep-alive connections:
       - max throughput: closed loop, --connections connections, --requests or --duration,
       - steady: open loop at --rate req/s for --steady-seconds, latency from each request's
         scheduled time (no coordinated omission),
  4. reads the CPU time (user+sys) of the gunicorn master and all its workers from /proc before
     and after each timed part (and of the PostgreSQL processes serving the scratch database,
     reported separately; CPU used by unrelated processes meanwhile is reported as "other load"),
  5. stops the server and checks durability: every event answered 200 is stored, and the number
     of stored events equals the number of distinct events answered 200 (an event whose request
     timed out on the client may be stored too; it is counted and reported, not a failure).

Prints a table, then one `RESULT {json}` line per target for scripts and tests (a target that
could not run gets `"error"` and `"pass": false`). The exit code is 0 even when a target is missed
(this is a measurement); 130 when interrupted.
Every process and scratch database it creates is removed on exit, Ctrl-C included.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import runpy
import pickle
import random
import re
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from bridge import config as config_module  # noqa: E402 - after the sys.path set-up above
from bridge.persona import samples, signature  # noqa: E402

BENCH = REPO / "bench"
GUNICORN_CONF = REPO / "gunicorn.conf.py"
LOADGEN = BENCH / "loadgen.py"
SECRET = "wbhsec_bench_" + "b" * 24
DEFAULT_POSTGRES_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
CLK_TCK = os.sysconf("SC_CLK_TCK")

# Targets from the issue.
MIN_RATIO = 0.5  # full-ingest throughput / bare-receiver throughput
MAX_STEADY_P99_MS = 15.0  # at --rate req/s
OTHER_LOAD_WARN = 0.15  # cores used by unrelated processes during a timed run


# ---------------------------------------------------------------------------------------------
# Traffic
# ---------------------------------------------------------------------------------------------

FINAL_STATUSES = (("approved", 0.70), ("declined", 0.15), ("needs_review", 0.15))
FIRST_NAMES = ("Ada", "Grace", "Alan", "Edsger", "Barbara", "Ken", "Radia", "Donald", "Frances", "Tim")
DUPLICATE_SHARE = 0.02  # Persona re-deliveries of an event already sent
SHARED_EMAIL_SHARE = 0.05  # a person starting a second inquiry


@dataclass
class Traffic:
    event_ids: list[str] = field(default_factory=list)
    requests: list[bytes] = field(default_factory=list)


def _request(body: bytes, timestamp: int) -> bytes:
    header = signature.header_for([SECRET], timestamp, body)
    return (b"POST /webhooks/persona HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: kyc-bridge-bench\r\n"
            b"Content-Type: application/json\r\nPersona-Signature: " + header.encode()
            + b"\r\nContent-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body)


def build_segment(traffic: Traffic, tag: str, count: int, rng: random.Random) -> None:
    """Append `count` requests: inquiries going created → started → completed → decided, in
    interleaved blocks (so concurrent requests mostly touch different inquiries), plus a few
    re-deliveries of events sent shortly before."""
    templates = [u.template_id for u in config_module.load(None).user_types.values()]
    now = int(time.time())
    base = datetime.now(UTC) - timedelta(days=1)
    start = len(traffic.requests)
    block = max(50, min(500, count // 8))
    k = 0
    emails: list[str] = []
    while len(traffic.requests) - start < count:
        inquiries = []
        for _ in range(block):
            k += 1
            if emails and rng.random() < SHARED_EMAIL_SHARE:
                email = rng.choice(emails)
            else:
                email = f"person{k}.{tag}@example.org"
                emails.append(email)
            final = rng.choices([s for s, _ in FINAL_STATUSES], [w for _, w in FINAL_STATUSES])[0]
            inquiries.append({
                "id": f"inq_{tag}{k:07d}{uuid.uuid4().hex[:12]}",
                "template": rng.choice(templates) if rng.random() > 0.02 else None,
                "email": email, "first_name": rng.choice(FIRST_NAMES), "reference": f"user-{tag}-{k}",
                "t0": base + timedelta(seconds=k), "steps": ("created", "pending", "completed", final),
            })
        for step in range(4):
            for inq in inquiries:
                status = inq["steps"][step]
                event_id = "evt_" + uuid.uuid4().hex[:24]
                body = samples.encode(samples.inquiry_event(
                    event_id=event_id, inquiry_id=inq["id"], status=status,
                    created_at=inq["t0"] + timedelta(minutes=step * 3, milliseconds=rng.randrange(1000)),
                    template_id=inq["template"], email=inq["email"], first_name=inq["first_name"],
                    reference_id=inq["reference"]))
                traffic.event_ids.append(event_id)
                traffic.requests.append(_request(body, now))
                if rng.random() < DUPLICATE_SHARE and len(traffic.requests) - start > 100:
                    j = rng.randrange(max(start, len(traffic.requests) - 2000), len(traffic.requests) - 1)
                    traffic.event_ids.append(traffic.event_ids[j])
                    traffic.requests.append(traffic.requests[j])
    del traffic.event_ids[start + count:]
    del traffic.requests[start + count:]


# ---------------------------------------------------------------------------------------------
# Processes and CPU accounting
# ---------------------------------------------------------------------------------------------

def _proc_stat(pid: int) -> tuple[int, int, int, str] | None:
    """(ppid, utime ticks, stime ticks, comm) of a process, or None if it is gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            data = fh.read().decode(errors="replace")
    except OSError:
        return None
    comm = data[data.index("(") + 1:data.rindex(")")]
    fields = data[data.rindex(")") + 2:].split()
    # fields[0] is state (field 3); ppid is field 4, utime 14, stime 15
    return int(fields[1]), int(fields[11]), int(fields[12]), comm


def _all_procs() -> dict[int, tuple[int, int, int, str]]:
    procs = {}
    for name in os.listdir("/proc"):
        if name.isdigit():
            st = _proc_stat(int(name))
            if st is not None:
                procs[int(name)] = st
    return procs


@dataclass
class CpuSample:
    tree: dict[int, int]  # gunicorn master + descendants: pid → user+sys ticks
    tree_sys: dict[int, int]  # the same, sys ticks only
    writer: dict[int, int]  # the intake writer among them (bridge/intake/writer.py): pid → ticks
    web: dict[int, int]  # gunicorn's web workers (the master's other children): pid → ticks
    web_switches: dict[int, int]  # the web workers' context switches, all threads: pid → count
    db: dict[int, int]  # PostgreSQL processes serving the scratch database: pid → ticks
    machine_busy: int
    machine_total: int
    wall: float


def _machine() -> tuple[int, int]:
    with open("/proc/stat") as fh:
        parts = [int(x) for x in fh.readline().split()[1:]]
    idle = parts[3] + (parts[4] if len(parts) > 4 else 0)
    return sum(parts[:8]) - idle, sum(parts[:8])


def sample_cpu(root_pid: int, db_pids: set[int] = frozenset()) -> CpuSample:  # type: ignore[assignment]
    procs = _all_procs()
    children: dict[int, list[int]] = {}
    for pid, (ppid, _, _, _) in procs.items():
        children.setdefault(ppid, []).append(pid)
    tree, tree_sys, stack = {}, {}, [root_pid]
    while stack:
        pid = stack.pop()
        if pid in procs:
            tree[pid] = procs[pid][1] + procs[pid][2]
            tree_sys[pid] = procs[pid][2]
            stack.extend(children.get(pid, ()))
    db = {pid: procs[pid][1] + procs[pid][2] for pid in db_pids if pid in procs}
    writer = {pid: ticks for pid, ticks in tree.items() if _is_intake_writer(pid)}
    web = {pid: tree[pid] for pid in children.get(root_pid, ()) if pid in tree and pid not in writer}
    web_switches = {pid: _context_switches(pid) for pid in web}
    busy, total = _machine()
    return CpuSample(tree, tree_sys, writer, web, web_switches, db, busy, total, time.perf_counter())


def _context_switches(pid: int) -> int:
    """Voluntary and involuntary context switches of all of a process's threads so far."""
    switches = 0
    try:
        for tid in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{tid}/status") as fh:
                for line in fh:
                    if line.startswith(("voluntary_ctxt_switches:", "nonvoluntary_ctxt_switches:")):
                        switches += int(line.split()[1])
    except OSError:  # the process or a thread is gone
        pass
    return switches


def _is_intake_writer(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as fh:
            return b"bridge.app.intake_process" in fh.read()
    except OSError:
        return False


def cpu_delta(a: CpuSample, b: CpuSample) -> dict:
    """Seconds of CPU between two samples; a process that appeared in between counts from 0."""
    tree = sum(t - a.tree.get(pid, 0) for pid, t in b.tree.items()) / CLK_TCK
    tree_sys = sum(t - a.tree_sys.get(pid, 0) for pid, t in b.tree_sys.items()) / CLK_TCK
    writer = sum(t - a.writer.get(pid, 0) for pid, t in b.writer.items()) / CLK_TCK
    db = sum(t - a.db.get(pid, 0) for pid, t in b.db.items()) / CLK_TCK
    total = b.machine_total - a.machine_total
    # Which worker accepts which connection is luck: a lopsided split caps a round at one process.
    web = sorted(((t - a.web.get(pid, 0)) for pid, t in b.web.items()), reverse=True)
    web_split = [round(100 * t / sum(web)) for t in web] if sum(web) else []
    web_switches = sum(n - a.web_switches.get(pid, 0) for pid, n in b.web_switches.items())
    return {"web_split_pct": web_split, "web_context_switches": web_switches, "server_cpu_s": tree, "server_sys_s": tree_sys, "writer_cpu_s": writer, "db_cpu_s": db, "wall_s": b.wall - a.wall,
            "machine_busy_s": (b.machine_busy - a.machine_busy) / CLK_TCK,
            "machine_busy": (b.machine_busy - a.machine_busy) / total if total else float("nan")}


def _die_with_parent() -> None:
    """In the child before exec: SIGTERM it if the bench dies, even by SIGKILL (Linux prctl)."""
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


class Processes:
    """Every child process the bench starts, so that all of them are stopped on the way out."""

    def __init__(self) -> None:
        self.procs: list[subprocess.Popen] = []

    def start(self, cmd: list[str], **kwargs) -> subprocess.Popen:  # type: ignore[no-untyped-def]
        # The bench is single-threaded, so preexec_fn is safe here.
        proc = subprocess.Popen(cmd, start_new_session=True, preexec_fn=_die_with_parent,  # noqa: PLW1509
                                **kwargs)
        self.procs.append(proc)
        return proc

    def stop(self, proc: subprocess.Popen, *, sig: int = signal.SIGTERM, wait: float = 15.0) -> None:
        if proc.poll() is None:
            try:
                os.kill(proc.pid, sig)
                proc.wait(wait)
            except subprocess.TimeoutExpired:
                pass
            except ProcessLookupError:
                pass
        # Whatever is left in the child's own process group (gunicorn workers) is killed.
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            pass
        if proc in self.procs:
            self.procs.remove(proc)

    def stop_all(self) -> None:
        for proc in list(self.procs):
            self.stop(proc, wait=5.0)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ---------------------------------------------------------------------------------------------
# Stores
# ---------------------------------------------------------------------------------------------

class Store:
    backend = ""
    url = ""

    def create(self) -> None: ...

    def stored_event_ids(self) -> set[str]: ...

    def extra_checks(self) -> dict: ...

    def server_pids(self) -> set[int]:
        """Database server processes doing this store's work (none for SQLite: it runs in the app)."""
        return set()

    def drop(self) -> None: ...


class SqliteStore(Store):
    backend = "sqlite"

    def __init__(self, workdir: Path):
        self.path = workdir / "bench.db"
        self.url = f"sqlite:///{self.path}"

    def create(self) -> None:
        from bridge.store import migrate

        migrate.upgrade(self.url)

    def _query(self, sql: str) -> list[tuple]:
        conn = sqlite3.connect(self.path)
        try:
            return conn.execute(sql).fetchall()
        finally:
            conn.close()

    def stored_event_ids(self) -> set[str]:
        return {r[0] for r in self._query("SELECT event_id FROM kyc_events")}

    def extra_checks(self) -> dict:
        return _extra_checks(self.url)

    def drop(self) -> None:
        for suffix in ("", "-wal", "-shm", "-journal"):
            Path(str(self.path) + suffix).unlink(missing_ok=True)


class PostgresStore(Store):
    backend = "postgres"

    def __init__(self, admin_url: str):
        from bridge.store.engine import normalize_url

        self.admin_url = normalize_url(admin_url)
        self.name = f"kyc_bench_{uuid.uuid4().hex[:10]}"
        self.url = ""
        self.created = False
        self._admin_engine = None

    def _admin(self):  # type: ignore[no-untyped-def]
        import sqlalchemy as sa

        return sa.create_engine(self.admin_url, isolation_level="AUTOCOMMIT")

    def create(self) -> None:
        from sqlalchemy.engine import make_url

        from bridge.store import migrate

        self._on_server(f"CREATE DATABASE {self.name}")
        self.created = True
        self.url = make_url(self.admin_url).set(database=self.name).render_as_string(hide_password=False)
        migrate.upgrade(self.url)

    def _on_server(self, sql: str) -> None:
        """One statement outside any transaction (CREATE/DROP DATABASE)."""
        import sqlalchemy as sa

        admin = self._admin()
        try:
            with admin.connect() as conn:
                conn.execute(sa.text(sql))
        finally:
            admin.dispose()

    def _query(self, *statements: str) -> list[list[tuple]]:
        """The rows of each statement, read on the scratch database."""
        import sqlalchemy as sa

        engine = sa.create_engine(self.url)
        try:
            with engine.connect() as conn:
                return [conn.execute(sa.text(sql)).all() for sql in statements]
        finally:
            engine.dispose()

    def settings(self) -> dict:
        names = ("fsync", "synchronous_commit", "full_page_writes", "wal_sync_method", "server_version")
        return {name: rows[0][0] for name, rows in zip(names, self._query(*(f"SHOW {n}" for n in names)))}

    def server_pids(self) -> set[int]:
        """Backends connected to the scratch database plus the shared WAL writer, checkpointer and
        background writer (other databases on the same server are not counted)."""
        import sqlalchemy as sa

        if self._admin_engine is None:
            self._admin_engine = self._admin()
        with self._admin_engine.connect() as conn:
            rows = conn.execute(sa.text(
                "SELECT pid FROM pg_stat_activity WHERE datname = :name "
                "OR backend_type IN ('walwriter', 'checkpointer', 'background writer')"), {"name": self.name})
            return {r[0] for r in rows}

    def stored_event_ids(self) -> set[str]:
        [rows] = self._query("SELECT event_id FROM kyc_events")
        return {r[0] for r in rows}

    def extra_checks(self) -> dict:
        return _extra_checks(self.url)

    def drop(self) -> None:
        if self._admin_engine is not None:
            self._admin_engine.dispose()
            self._admin_engine = None
        if not self.created:
            return
        self._on_server(f"DROP DATABASE IF EXISTS {self.name} WITH (FORCE)")
        self.created = False


def _extra_checks(url: str) -> dict:
    """Row counts and the audit chain, read through the app's own engine set-up."""
    from sqlalchemy import func, select

    from bridge import audit
    from bridge.store.engine import make_engine, make_sessionmaker, transaction
    from bridge.store.models import AuditEntry, Inquiry, Job

    engine = make_engine(url)
    try:
        with transaction(make_sessionmaker(engine)) as session:
            chain = audit.verify(session, batch=5000)
            return {
                "inquiries": session.scalar(select(func.count()).select_from(Inquiry)),
                "jobs": session.scalar(select(func.count()).select_from(Job)),
                "audit_entries": session.scalar(select(func.count()).select_from(AuditEntry)),
                "audit_chain_ok": chain.ok,
            }
    finally:
        engine.dispose()


# ---------------------------------------------------------------------------------------------
# One target
# ---------------------------------------------------------------------------------------------

@dataclass
class Plan:
    workers: int
    threads: int
    connections: int
    requests: int
    duration: float
    rate: float
    steady_seconds: float
    warmup: int
    rounds: int = 1
    wait_quiet: float = 0.0
    latency_dir: Path | None = None

    @property
    def steady_count(self) -> int:
        return int(self.rate * self.steady_seconds)


class Server:
    def __init__(self, procs: Processes, name: str, app: str | None, env: dict[str, str], workdir: Path,
                 plan: Plan):
        self.procs, self.name = procs, name
        self.port = free_port()
        self.log_path = workdir / f"{name}.log"
        cmd = [sys.executable, "-m", "gunicorn", "-c", str(GUNICORN_CONF)]
        if app:  # the positional app overrides wsgi_app from the config file
            cmd += ["--pythonpath", str(BENCH), app]
        full_env = dict(os.environ)
        full_env.update(env)
        full_env.update({
            "BRIDGE_BIND": f"127.0.0.1:{self.port}",
            "BRIDGE_WEB_WORKERS": str(plan.workers),
            "BRIDGE_WEB_THREADS": str(plan.threads),
            "BRIDGE_ACCESS_LOG": "",  # gunicorn.conf.py: empty → no access log
            "PERSONA_WEBHOOK_SECRETS": SECRET,
            "BRIDGE_SECRET_KEY": "bench-secret-key",
            "BRIDGE_ADMIN_TOKEN": "bench-admin-token",
            "PYTHONUNBUFFERED": "1",
            # This checkout's bridge package, even if another one is installed.
            "PYTHONPATH": os.pathsep.join([str(REPO)] + [p for p in [os.environ.get("PYTHONPATH")] if p]),
        })
        self.log = open(self.log_path, "wb")  # noqa: SIM115 - open as long as the server runs; closed in stop()
        self.proc = procs.start(cmd, cwd=str(REPO), env=full_env, stdout=self.log, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL)

    def wait_ready(self, workers: int, timeout: float = 60.0) -> None:
        """Listening, all workers forked, and their imports done (tree CPU has gone quiet)."""
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name}: gunicorn exited with {self.proc.returncode}:\n{self.tail()}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"{self.name}: gunicorn not ready after {timeout:.0f} s:\n{self.tail()}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    pass
            except OSError:
                time.sleep(0.1)
                continue
            a = sample_cpu(self.proc.pid)
            time.sleep(0.3)
            b = sample_cpu(self.proc.pid)
            if len(b.tree) >= workers + 1 and cpu_delta(a, b)["server_cpu_s"] < 0.02:
                return

    def tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def stop(self) -> None:
        self.procs.stop(self.proc)
        self.log.close()

    def writer_batches(self) -> tuple[int, int] | None:
        """(events, transactions) of the intake writer over the whole target, from its last log line."""
        found = re.findall(r"intake writer stopped: (\d+) event\(s\) answered in (\d+) transaction",
                           self.log_path.read_text(errors="replace"))
        return (int(found[-1][0]), int(found[-1][1])) if found else None


class DiskProbe:
    """Times a 4 KiB write + fdatasync every 50 ms in `directory` (where SQLite's file lives; the
    same disk as PostgreSQL's WAL here) while a steady run goes on. A durable commit waits for the
    same kind of sync, so a device stall shows up here too: it tells a slow disk from a slow app."""

    INTERVAL = 0.05
    STALL_MS = 15.0  # as long as the whole latency budget at the steady rate

    def __init__(self, directory: Path):
        self.path = directory / "disk-probe.bin"
        self.latencies_ms: list[float] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="disk-probe", daemon=True)

    def __enter__(self) -> "DiskProbe":
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            os.ftruncate(fd, 1 << 20)  # written in place: no size change, so no metadata to sync
            block, n = os.urandom(4096), 0
            while not self._stop.wait(self.INTERVAL):
                os.pwrite(fd, block, (n % 256) * 4096)
                started = time.perf_counter()
                os.fdatasync(fd)
                self.latencies_ms.append((time.perf_counter() - started) * 1e3)
                n += 1
        finally:
            os.close(fd)
            self.path.unlink(missing_ok=True)

    def summary(self) -> dict:
        lat = sorted(self.latencies_ms)
        if not lat:
            return {"samples": 0}
        return {"samples": len(lat), "p50_ms": lat[len(lat) // 2], "max_ms": lat[-1],
                "stalls": sum(1 for x in lat if x > self.STALL_MS)}


def wait_quiet(max_wait: float) -> float:
    """Wait (at most `max_wait` s) until other processes use < OTHER_LOAD_WARN cores; return the
    load last seen. Our own server is idle at this point, so the machine's load is someone else's."""
    deadline = time.monotonic() + max_wait
    while True:
        a = _machine()
        time.sleep(0.5)
        b = _machine()
        load = (b[0] - a[0]) / max(b[1] - a[1], 1) * (os.cpu_count() or 1)
        if load < OTHER_LOAD_WARN or time.monotonic() >= deadline:
            return load
        time.sleep(1.0)


def drive(procs: Processes, server: Server, store: Store | None, requests_file: Path, *, mode: str, first: int,
          count: int, warmup: int, plan: Plan) -> dict:
    """One loadgen run; the server CPU is sampled right around the timed part."""
    if plan.wait_quiet > 0:
        wait_quiet(plan.wait_quiet)
    cmd = [sys.executable, str(LOADGEN), "--port", str(server.port), "--requests-file", str(requests_file),
           "--first", str(first), "--warmup", str(warmup), "--mode", mode, "--count", str(count),
           "--connections", str(plan.connections), "--duration", str(plan.duration), "--rate", str(plan.rate)]
    if plan.latency_dir is not None:
        plan.latency_dir.mkdir(parents=True, exist_ok=True)
        cmd += ["--latency-file", str(plan.latency_dir / f"{server.name}-{mode}.csv")]
    gen = procs.start(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert gen.stdin is not None and gen.stdout is not None
        line = json.loads(gen.stdout.readline() or "{}")
        if not line.get("ready"):
            raise RuntimeError(f"loadgen did not start: {line}")
        db_pids = store.server_pids() if store is not None else set()
        before = sample_cpu(server.proc.pid, db_pids)
        gen.stdin.write("go\n")
        gen.stdin.flush()
        line = json.loads(gen.stdout.readline() or "{}")
        if store is not None:
            db_pids |= store.server_pids()
        after = sample_cpu(server.proc.pid, db_pids)
        if not line.get("done"):
            raise RuntimeError(f"loadgen failed: {line}")
        result = json.loads(gen.stdout.readline())
        gen.wait(30)
    finally:
        procs.stop(gen, wait=5.0)
    result.update(cpu_delta(before, after))
    answered = max(result["answered"], 1)
    result["server_cpu_ms_per_req"] = result["server_cpu_s"] * 1e3 / answered
    result["db_cpu_ms_per_req"] = result["db_cpu_s"] * 1e3 / answered
    # CPU used by anything else on the machine meanwhile (other jobs skew the figures), in cores.
    ours = result["server_cpu_s"] + result["db_cpu_s"] + result["loadgen_cpu_s"]
    result["other_cpu_cores"] = max(0.0, result["machine_busy_s"] - ours) / max(result["wall_s"], 1e-9)
    return result


class TargetRun:
    """One target through the bench's phases. All targets' servers run at once and their
    max-throughput rounds take turns (bare, full-sqlite, full-postgres, bare, ...), so a change in
    the machine's speed during the bench (it is shared) hits every target alike instead of
    skewing the ratio. Idle servers use no CPU. An error ends this target only."""

    def __init__(self, name: str, store: Store | None, procs: Processes, workdir: Path, requests_file: Path,
                 plan: Plan) -> None:
        self.name, self.store, self.procs, self.workdir, self.plan = name, store, procs, workdir, plan
        self.requests_file = requests_file
        self.out: dict = {"target": name, "backend": store.backend if store else None}
        self.server: Server | None = None
        self.rounds: list[dict] = []
        self.steady_run: dict | None = None

    @property
    def live(self) -> bool:
        return "error" not in self.out

    def _guard(self, phase):  # type: ignore[no-untyped-def]
        if not self.live:
            return
        try:
            phase()
        except Exception as exc:  # noqa: BLE001 - report the target as failed, keep going
            self.out["error"] = f"{type(exc).__name__}: {exc}"
            if self.server is not None:
                self.out["server_log_tail"] = self.server.tail()

    def start(self) -> None:
        def phase() -> None:
            env: dict[str, str] = {}
            if self.store is not None:
                self.store.create()
                env["BRIDGE_DATABASE_URL"] = self.store.url
                if isinstance(self.store, PostgresStore):
                    self.out["db_settings"] = self.store.settings()
            app = "bare_receiver:app" if self.store is None else None
            self.server = Server(self.procs, self.name, app, env, self.workdir, self.plan)
            self.server.wait_ready(self.plan.workers)
        self._guard(phase)

    def closed_round(self, i: int) -> None:
        """Max-throughput round i: new events, new connections (which worker accepts which is luck)."""
        plan = self.plan

        def phase() -> None:
            assert self.server is not None
            self.rounds.append(drive(self.procs, self.server, self.store, self.requests_file, mode="closed",
                                     first=0 if i == 0 else plan.warmup + i * plan.requests, count=plan.requests,
                                     warmup=plan.warmup if i == 0 else 0, plan=plan))
            time.sleep(1.0)
        self._guard(phase)

    def steady(self) -> None:
        def phase() -> None:
            assert self.server is not None
            with DiskProbe(self.workdir) as disk:
                self.steady_run = drive(self.procs, self.server, self.store, self.requests_file, mode="open",
                                        first=self.plan.warmup + self.plan.rounds * self.plan.requests,
                                        count=self.plan.steady_count, warmup=0, plan=self.plan)
            self.steady_run["disk"] = disk.summary()
        self._guard(phase)

    def finish(self, traffic: Traffic) -> dict:
        """Stop the server, then check the store against every 200 it answered; drop the store."""
        try:
            if self.server is not None:
                self.server.stop()
                if self.live:
                    self.out["writer_batches"] = self.server.writer_batches()
            self._guard(lambda: self._summarise(traffic))
        finally:
            if self.store is not None:
                try:
                    self.store.drop()
                except Exception as exc:  # noqa: BLE001
                    self.out.setdefault("error", f"dropping the scratch store failed: {exc}")
        return self.out

    def _summarise(self, traffic: Traffic) -> None:
        out, rounds, steady = self.out, self.rounds, self.steady_run
        assert steady is not None
        # The median round stands for the target.
        out["max"] = sorted(rounds, key=lambda run: run["throughput_rps"])[len(rounds) // 2]
        out["max_rounds_rps"] = [run["throughput_rps"] for run in rounds]
        out["max_rounds_split"] = ["/".join(map(str, run["web_split_pct"])) for run in rounds]
        out["steady"] = steady
        ok: set[int] = set()
        failed: set[int] = set()
        non_200: dict[str, int] = {}
        for run in [*rounds, steady] + [run["warmup"] for run in rounds if run.get("warmup")]:
            ok |= set(run.pop("ok_indices"))
            failed |= set(run.pop("failed_indices"))
            for status, n in run["statuses"].items():
                if status != "200":
                    non_200[status] = non_200.get(status, 0) + n
        out["non_200"] = non_200  # -1: no answer within the grace period, 0: connection error
        out["non_200_total"] = sum(non_200.values())
        if self.store is not None:
            acked = {traffic.event_ids[i] for i in ok}
            unanswered = {traffic.event_ids[i] for i in failed} - acked
            stored = self.store.stored_event_ids()
            extra = stored - acked
            out["durability"] = {
                "distinct_acked": len(acked), "stored": len(stored),
                "acked_not_stored": len(acked - stored),  # must be 0: a 200 means committed
                "stored_not_acked": len(extra),  # only events whose request got no 200 may be here
                "stored_not_sent": len(extra - unanswered),
                "counts_equal": len(stored) == len(acked),
                "ok": acked <= stored and not (extra - unanswered),
                **self.store.extra_checks(),
            }


# ---------------------------------------------------------------------------------------------
# Report
# ---------------------------------------------------------------------------------------------

def _f(value: float | None, digits: int = 1) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return f"{value:.{digits}f}"


def verdicts(results: list[dict], rate: float) -> None:
    bare = next((r for r in results if r["target"] == "bare" and "error" not in r), None)
    bare_rps = bare["max"]["throughput_rps"] if bare else None
    for r in results:
        if "error" in r:
            r["pass"] = False
            continue
        r["throughput_rps"] = r["max"]["throughput_rps"]
        r["ratio"] = r["throughput_rps"] / bare_rps if bare_rps else None
        if r["target"] == "bare":
            continue
        r["verdict_ratio"] = "PASS" if r["ratio"] is not None and r["ratio"] >= MIN_RATIO else "FAIL"
        r["verdict_steady_p99"] = "PASS" if r["steady"]["p99_ms"] < MAX_STEADY_P99_MS else "FAIL"
        r["verdict_durability"] = "PASS" if r["durability"]["ok"] else "FAIL"
        r["verdict_errors"] = "PASS" if r["non_200_total"] == 0 else "FAIL"
        r["pass"] = all(r[k] == "PASS" for k in
                        ("verdict_ratio", "verdict_steady_p99", "verdict_durability", "verdict_errors"))


def print_report(results: list[dict], plan: Plan) -> None:
    p = print
    p("")
    p(f"max throughput: closed loop, {plan.connections} keep-alive connections, up to {plan.requests} requests "
      f"or {plan.duration:g} s, median of {plan.rounds} round(s); steady: open loop {plan.rate:g} req/s for "
      f"{plan.steady_seconds:g} s (latency from scheduled send time)")
    head = (f"{'target':<14}{'req/s':>8}{'p50 ms':>8}{'p99 ms':>8}{'ratio':>7}  |{'@' + format(plan.rate, 'g'):>5}"
            f"{'p50':>7}{'p99':>7}  |{'cpu ms/req':>11}{'db cpu':>8}{'busy':>6}  |{'non-200':>8}  "
            f"{'stored/acked':>13}  verdict")
    p(head)
    p("-" * len(head))
    for r in results:
        if "error" in r:
            p(f"{r['target']:<14} ERROR: {r['error']}")
            continue
        mx, st = r["max"], r["steady"]
        dur = r.get("durability")
        stored = f"{dur['stored']}/{dur['distinct_acked']}" if dur else "-"
        if r["target"] == "bare":
            verdict = "reference"
        else:
            verdict = (f"ratio {r['verdict_ratio']}, p99 {r['verdict_steady_p99']}, "
                       f"durable {r['verdict_durability']}, errors {r['verdict_errors']}")
        db_cpu = _f(mx["db_cpu_ms_per_req"], 2) if r["backend"] == "postgres" else "-"
        p(f"{r['target']:<14}{mx['throughput_rps']:>8.0f}{_f(mx['p50_ms']):>8}{_f(mx['p99_ms']):>8}"
          f"{_f(r.get('ratio'), 2):>7}  |{'':>5}{_f(st['p50_ms']):>7}{_f(st['p99_ms']):>7}  |"
          f"{_f(mx['server_cpu_ms_per_req'], 2):>11}{db_cpu:>8}{mx['machine_busy'] * 100:>5.0f}%  |"
          f"{r['non_200_total']:>8}  {stored:>13}  {verdict}")
    p("")
    p(f"targets: full/bare throughput >= {MIN_RATIO}, p99 < {MAX_STEADY_P99_MS:g} ms at {plan.rate:g} req/s, "
      "every 200 stored, no non-200. cpu ms/req = user+sys of gunicorn master+workers during the max-throughput "
      "run / answered requests; db cpu = PostgreSQL backends of the scratch database + WAL writer, "
      "checkpointer, bgwriter; busy = whole-machine CPU use "
      "(load generator included).")
    for r in results:
        if "error" in r:
            continue
        extra = []
        if r.get("non_200"):
            extra.append(f"non-200 statuses {r['non_200']}")
        if r["max"]["reconnects"] or r["steady"]["reconnects"]:
            extra.append(f"reconnects {r['max']['reconnects']}+{r['steady']['reconnects']}")
        dur = r.get("durability")
        if dur:
            extra.append(f"{dur['inquiries']} inquiries, {dur['jobs']} jobs, {dur['audit_entries']} audit entries, "
                         f"chain {'ok' if dur['audit_chain_ok'] else 'BROKEN'}")
            if not dur["counts_equal"] or not dur["ok"]:
                extra.append(f"acked-not-stored {dur['acked_not_stored']}, stored-not-acked "
                             f"{dur['stored_not_acked']} (of which never sent {dur['stored_not_sent']}; the rest "
                             "were committed after the client gave up)")
        extra.append(f"loadgen cpu {r['max']['loadgen_cpu_s'] * 1e3 / max(r['max']['answered'], 1):.2f} ms/req")
        extra.append(f"web context switches {r['max']['web_context_switches'] / max(r['max']['answered'], 1):.1f}/req")
        mx = r["max"]
        extra.append(f"server cpu {mx['server_cpu_ms_per_req']:.2f} ms/req of which sys "
                     f"{mx['server_sys_s'] * 1e3 / max(mx['answered'], 1):.2f}"
                     + (f", intake writer {mx['writer_cpu_s'] * 1e3 / max(mx['answered'], 1):.2f} "
                        f"({mx['writer_cpu_s'] / max(mx['wall_s'], 1e-9):.2f} cores)" if mx["writer_cpu_s"] else ""))
        extra.append(f"steady cpu {r['steady']['server_cpu_ms_per_req']:.2f} ms/req")
        if r.get("writer_batches"):
            events, commits = r["writer_batches"]
            extra.append(f"intake writer: {events} events in {commits} transactions "
                         f"({events / max(commits, 1):.1f} per transaction, whole target)")
        disk = r["steady"].get("disk", {})
        if disk.get("samples"):
            extra.append(f"disk fdatasync during the steady run: p50 {disk['p50_ms']:.2f} ms, max "
                         f"{disk['max_ms']:.0f} ms, {disk['stalls']} of {disk['samples']} over "
                         f"{DiskProbe.STALL_MS:g} ms" + (" (a device stall: durable commits waited too)"
                                                           if disk["stalls"] else ""))
        other = max(r["max"]["other_cpu_cores"], r["steady"]["other_cpu_cores"])
        extra.append(f"other load {other:.2f} cores" + (" (WARNING: machine not quiet, figures skewed)"
                                                         if other > OTHER_LOAD_WARN else ""))
        if r.get("db_settings"):
            extra.append("postgres " + ", ".join(f"{k}={v}" for k, v in r["db_settings"].items()))
        p(f"  {r['target']}: " + "; ".join(extra))


def result_line(r: dict, plan: Plan) -> str:
    if "error" in r:
        return "RESULT " + json.dumps({"target": r["target"], "backend": r.get("backend"), "error": r["error"],
                                       "pass": False})
    mx, st = r["max"], r["steady"]
    figures = {
        "target": r["target"], "backend": r["backend"],
        "workers": plan.workers, "threads": plan.threads, "connections": plan.connections,
        "max_requests": mx["answered"], "max_rps": round(mx["throughput_rps"], 1),
        "max_rounds_rps": [round(x, 1) for x in r["max_rounds_rps"]],
        "max_rounds_web_split_pct": r["max_rounds_split"],
        "max_p50_ms": round(mx["p50_ms"], 2), "max_p99_ms": round(mx["p99_ms"], 2),
        "steady_rate": plan.rate, "steady_requests": st["answered"],
        "steady_p50_ms": round(st["p50_ms"], 2), "steady_p99_ms": round(st["p99_ms"], 2),
        "steady_max_ms": round(st["max_ms"], 2),
        "cpu_ms_per_req": round(mx["server_cpu_ms_per_req"], 3),
        "db_cpu_ms_per_req": round(mx["db_cpu_ms_per_req"], 3) if r["backend"] == "postgres" else None,
        "ratio": round(r["ratio"], 3) if r.get("ratio") is not None else None,
        "non_200": r["non_200_total"],
        "other_load_cores": round(max(mx["other_cpu_cores"], st["other_cpu_cores"]), 2),
        "steady_disk_sync_max_ms": round(st["disk"]["max_ms"], 1) if st.get("disk", {}).get("samples") else None,
        "steady_disk_stalls": st.get("disk", {}).get("stalls"),
    }
    if r["target"] != "bare":
        figures.update({
            "stored": r["durability"]["stored"], "distinct_acked": r["durability"]["distinct_acked"],
            "acked_not_stored": r["durability"]["acked_not_stored"],
            "stored_not_acked": r["durability"]["stored_not_acked"],
            "durable": r["durability"]["ok"], "audit_chain_ok": r["durability"]["audit_chain_ok"],
            "verdict_ratio": r["verdict_ratio"], "verdict_steady_p99": r["verdict_steady_p99"],
            "verdict_durability": r["verdict_durability"], "verdict_errors": r["verdict_errors"],
            "pass": r["pass"],
        })
    return "RESULT " + json.dumps(figures)


# ---------------------------------------------------------------------------------------------
# Main
# ---------------------------------------------------------------------------------------------

def _terminate(signum, _frame):  # type: ignore[no-untyped-def]
    raise KeyboardInterrupt(f"signal {signum}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="short smoke run (< 60 s)")
    ap.add_argument("--backends", default="sqlite,postgres", help="comma-separated: sqlite, postgres")
    ap.add_argument("--requests", type=int, help="max-throughput run: requests at most (default 30000)")
    ap.add_argument("--duration", type=float, help="max-throughput run: seconds at most (default 15)")
    ap.add_argument("--connections", type=int, default=32, help="max-throughput run: connections (default 32)")
    ap.add_argument("--rounds", type=int, help="max-throughput rounds per target, median reported (default 3)")
    ap.add_argument("--rate", type=float, default=200.0, help="steady run: requests per second (default 200)")
    ap.add_argument("--steady-seconds", type=float, help="steady run: seconds (default 10)")
    ap.add_argument("--workers", type=int, help="gunicorn workers for every target (default: gunicorn.conf.py's)")
    ap.add_argument("--threads", type=int, help="gunicorn threads per worker (default: gunicorn.conf.py's)")
    ap.add_argument("--postgres-url", default=os.environ.get("KYC_BENCH_POSTGRES_URL", DEFAULT_POSTGRES_URL),
                    help="admin URL of the PostgreSQL server; a scratch database is created and dropped")
    ap.add_argument("--wait-quiet", type=float, metavar="SECONDS",
                    help="before each timed run, wait up to this long for other processes to go quiet "
                         "(on a shared machine; default 10, 0 with --quick); the load seen is reported either way")
    ap.add_argument("--latency-dir", type=Path, metavar="DIR",
                    help="write each timed run's per-request latencies to DIR/<target>-<mode>.csv")
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args(argv)

    backends = [b.strip() for b in args.backends.split(",") if b.strip()]
    unknown = set(backends) - {"sqlite", "postgres"}
    if unknown:
        ap.error(f"unknown backend(s): {', '.join(sorted(unknown))}")
    # gunicorn.conf.py's own values, passed explicitly so every target gets the same.
    conf = runpy.run_path(str(REPO / "gunicorn.conf.py"))
    plan = Plan(
        workers=args.workers or int(conf["workers"]),
        threads=args.threads or int(conf["threads"]),
        connections=args.connections,
        requests=args.requests or (3000 if args.quick else 30000),
        duration=args.duration or (3.0 if args.quick else 15.0),
        rate=args.rate,
        steady_seconds=args.steady_seconds or (3.0 if args.quick else 10.0),
        warmup=200 if args.quick else 500,
        rounds=args.rounds or (1 if args.quick else 3),
        wait_quiet=args.wait_quiet if args.wait_quiet is not None else (0.0 if args.quick else 10.0),
        latency_dir=args.latency_dir,
    )

    signal.signal(signal.SIGTERM, _terminate)
    signal.signal(signal.SIGINT, _terminate)  # also when started in the background (SIGINT inherited ignored)
    procs = Processes()
    workdir = Path(tempfile.mkdtemp(prefix="kyc-bench-"))
    started = time.monotonic()
    results: list[dict] = []
    targets: list[TargetRun] = []
    try:
        rng = random.Random(args.seed)
        traffic = Traffic()
        t = time.perf_counter()
        build_segment(traffic, "w", plan.warmup, rng)
        for i in range(plan.rounds):
            build_segment(traffic, f"m{i}", plan.requests, rng)
        build_segment(traffic, "s", plan.steady_count, rng)
        requests_file = workdir / "requests.pickle"
        with open(requests_file, "wb") as fh:
            pickle.dump(traffic.requests, fh, protocol=pickle.HIGHEST_PROTOCOL)
        size = sum(len(r) for r in traffic.requests) / len(traffic.requests)
        print(f"kyc-bridge ingest bench: {os.cpu_count()} CPUs, python {sys.version.split()[0]}, gunicorn "
              f"{plan.workers} workers x {plan.threads} threads (gthread), access log off")
        print(f"generated {len(traffic.requests)} signed requests (avg {size:.0f} bytes, "
              f"{len(set(traffic.event_ids))} distinct events) in {time.perf_counter() - t:.1f} s")

        targets.append(TargetRun("bare", None, procs, workdir, requests_file, plan))
        for backend in backends:
            store: Store = SqliteStore(workdir) if backend == "sqlite" else PostgresStore(args.postgres_url)
            targets.append(TargetRun(f"full-{backend}", store, procs, workdir, requests_file, plan))
        for target in targets:
            print(f"starting {target.name} ...", flush=True)
            target.start()
        for i in range(plan.rounds):
            for target in targets:
                target.closed_round(i)
                if target.live:
                    print(f"  round {i + 1}: {target.name} {target.rounds[-1]['throughput_rps']:.0f} req/s "
                          f"[{'/'.join(map(str, target.rounds[-1]['web_split_pct']))}]", flush=True)
                if i == plan.rounds - 1:
                    # Right after its own last round, as when targets ran one after the other, so the
                    # steady figures stay comparable with earlier rounds of docs/benchmarks.md.
                    target.steady()
        for target in targets:
            result = target.finish(traffic)
            results.append(result)
            if "error" in result:
                print(f"  {target.name}: ERROR {result['error']}")
                if result.get("server_log_tail"):
                    print("  server log tail:\n    " + result["server_log_tail"].replace("\n", "\n    "))
            else:
                rounds = ", ".join(f"{x:.0f} [{split}]" for x, split in
                                   zip(result["max_rounds_rps"], result["max_rounds_split"]))
                print(f"  {target.name}: {result['max']['throughput_rps']:.0f} req/s (rounds, web workers' CPU "
                      f"split in %: {rounds}), steady p99 {result['steady']['p99_ms']:.1f} ms", flush=True)
    except KeyboardInterrupt:
        print("interrupted: stopping servers and dropping scratch databases", file=sys.stderr)
        return 130
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # let the clean-up finish
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        procs.stop_all()
        for target in targets:
            if target.store is not None:
                try:
                    target.store.drop()
                except Exception as exc:  # noqa: BLE001 - keep cleaning up
                    print(f"could not drop the scratch store: {exc}", file=sys.stderr)
        shutil.rmtree(workdir, ignore_errors=True)

    verdicts(results, plan.rate)
    print_report(results, plan)
    print(f"total bench time {time.monotonic() - started:.0f} s")
    for r in results:
        print(result_line(r, plan))
    return 0


if __name__ == "__main__":
    sys.exit(main())
