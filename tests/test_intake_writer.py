"""The intake writer: web processes hand webhooks to one process that commits them together."""

import json
import os
import re
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests
import sqlalchemy as sa

from bridge.intake import ingest
from bridge.intake.group_commit import GroupCommitter
from bridge.intake.writer import IntakeClient, IntakeWriter, WriterError, listen
from bridge.persona import events, signature
from bridge.store.engine import StoreUnavailable
from bridge.store.models import Event, Inquiry
from conftest import WEBHOOK_SECRET, start_production_server, wait_healthy
from test_group_commit import body_of, parsed, wait_until

REPO = Path(__file__).resolve().parents[1]


class RunningWriter:
    def __init__(self, runtime, path: str):
        self.writer = IntakeWriter(runtime, listen(path))
        self.thread = threading.Thread(target=self.writer.serve_forever, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.writer.stop()
        self.thread.join(10)
        assert not self.thread.is_alive()


@pytest.fixture
def socket_path():
    # AF_UNIX paths are limited to ~100 bytes; pytest's tmp_path can be longer.
    directory = Path(os.environ.get("TMPDIR", "/tmp")) / f"kbw-{os.getpid()}-{time.monotonic_ns()}"
    directory.mkdir()
    yield str(directory / "w.sock")
    for child in directory.iterdir():
        child.unlink()
    directory.rmdir()


@pytest.fixture
def writer(runtime, socket_path):
    running = RunningWriter(runtime, socket_path)
    yield running
    running.stop()


def count(runtime, model) -> int:
    with runtime.sessions() as session:
        return session.scalar(sa.select(sa.func.count()).select_from(model))


class NoFallback:
    def submit(self, body):
        raise AssertionError("the client committed in-process although the writer was there")


def test_events_from_many_threads_share_the_writers_transactions(runtime, config, writer, monkeypatch):
    real = ingest.ingest_many
    first = threading.Event()
    sent = []

    def slow_first(*args, **kwargs):
        if not first.is_set():
            first.set()
            wait_until(lambda: len(sent) >= 3)  # while this commit runs, other requests arrive
        return real(*args, **kwargs)

    monkeypatch.setattr(ingest, "ingest_many", slow_first)
    client = IntakeClient(writer.writer.listener.getsockname(), fallback=NoFallback())
    send = client._send
    monkeypatch.setattr(client, "_send", lambda body: (send(body), sent.append(1))[0])
    items = [parsed(config, n, event_id=f"evt_iw{n:03d}") for n in range(40)]
    with ThreadPoolExecutor(max_workers=20) as pool:
        results = list(pool.map(lambda item: client.submit(item[1]), items))
    assert not any(r.duplicate for r in results)
    assert writer.writer.committed == 40 and max(writer.writer.recent_batches) > 1
    assert count(runtime, Event) == 40 and count(runtime, Inquiry) == 7
    # A re-delivery is answered as a duplicate and stores nothing.
    again = client.submit(items[0][1])
    assert again.duplicate and count(runtime, Event) == 40


def test_status_changes_are_reported_as_by_the_in_process_committer(runtime, config, writer):
    client = IntakeClient(writer.writer.listener.getsockname(), fallback=NoFallback())
    first = client.submit(body_of(config, 1, status="approved", event_id="evt_iwsc1"))  # new inquiry inq_gc01
    assert first.status_changed and not first.duplicate
    same_status = client.submit(body_of(config, 8, status="approved", event_id="evt_iwsc8"))  # inq_gc01 again
    assert not same_status.status_changed and not same_status.duplicate


def test_the_writer_parses_and_answers_with_the_event_id(runtime, config, writer):
    client = IntakeClient(writer.writer.listener.getsockname(), fallback=NoFallback())
    assert client.submit(body_of(config, 1, event_id="evt_iwid1")).event_id == "evt_iwid1"
    assert client.submit(body_of(config, 1, event_id="evt_iwid1")) == ingest.IngestResult("evt_iwid1", duplicate=True)


@pytest.mark.parametrize("body, message", [
    (b"{not json", "body is not valid JSON"),
    (b'{"data": {"type": "event", "id": "evt_x", "attributes": {"name": "inquiry.approved"}}}',
     "data.attributes.created-at is missing or not a string"),
])
def test_a_body_that_is_no_persona_event_gets_the_parsers_message(runtime, config, writer, body, message):
    client = IntakeClient(writer.writer.listener.getsockname(), fallback=NoFallback())
    with pytest.raises(events.EventFormatError, match=f"^{re.escape(message)}$"):
        client.submit(body)
    assert count(runtime, Event) == 0 and writer.writer.commits == 0
    assert not client.submit(body_of(config, 1)).duplicate  # the same connection goes on


def test_store_trouble_reaches_the_web_process(runtime, config, writer, monkeypatch):
    client = IntakeClient(writer.writer.listener.getsockname(), fallback=NoFallback())

    where = "OperationalError on postgresql+psycopg at db.internal:5432, database kyc"

    def unavailable(*args, **kwargs):
        raise StoreUnavailable(where)

    monkeypatch.setattr(ingest, "ingest_many", unavailable)
    with pytest.raises(StoreUnavailable, match=f"^{re.escape(where)}$"):  # where the store is, for the web's log
        client.submit(body_of(config, 1))

    def broken(*args, **kwargs):
        raise RuntimeError("bug")

    monkeypatch.setattr(ingest, "ingest_many", broken)
    with pytest.raises(WriterError):
        client.submit(body_of(config, 2))
    monkeypatch.undo()
    assert client.submit(body_of(config, 3)).duplicate is False  # the writer goes on serving
    assert count(runtime, Event) == 1


def test_without_a_writer_the_web_process_commits_itself(runtime, config, socket_path):
    client = IntakeClient(socket_path, fallback=GroupCommitter(runtime))  # nothing listens there
    result = client.submit(body_of(config, 1))
    assert not result.duplicate and count(runtime, Event) == 1


def test_a_restarted_writer_is_found_again(runtime, config, socket_path):
    client = IntakeClient(socket_path, fallback=NoFallback())
    first = RunningWriter(runtime, socket_path)
    assert not client.submit(body_of(config, 1)).duplicate
    first.stop()  # closes the connection this thread holds
    second = RunningWriter(runtime, socket_path)
    try:
        assert not client.submit(body_of(config, 2)).duplicate
        assert list(second.writer.recent_batches) == [1]
    finally:
        second.stop()
    assert count(runtime, Event) == 2


class DyingWriter:
    """Reads one request and exits without answering, after `commit` (or not) stored it."""

    def __init__(self, path: str, commit=None):
        self.listener = listen(path)
        self.commit = commit
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        peer, _ = self.listener.accept()
        (length,) = struct.unpack(">I", peer.recv(4, socket.MSG_WAITALL))
        body = peer.recv(length, socket.MSG_WAITALL)
        if self.commit:
            self.commit(body)
        peer.close()
        self.listener.close()


@pytest.mark.parametrize("committed", [False, True], ids=["before-commit", "after-commit"])
def test_a_request_whose_writer_dies_is_stored_by_the_web_process(runtime, config, socket_path, committed):
    body = body_of(config, 1)
    in_process = GroupCommitter(runtime)
    dying = DyingWriter(socket_path, commit=in_process.submit if committed else None)
    result = IntakeClient(socket_path, fallback=in_process).submit(body)
    dying.thread.join(5)
    assert result.duplicate is committed  # a committed one is not stored twice
    assert count(runtime, Event) == 1


def test_a_writer_that_hangs_costs_a_503_not_a_hung_request(runtime, config, socket_path, monkeypatch):
    monkeypatch.setattr("bridge.intake.writer.REPLY_SECONDS", 0.3)
    listener = listen(socket_path)  # accepts (the backlog does) but never answers
    try:
        with pytest.raises(StoreUnavailable):
            IntakeClient(socket_path, fallback=NoFallback()).submit(body_of(config, 1))
    finally:
        listener.close()
    assert count(runtime, Event) == 0


def test_a_corrupt_stream_loses_its_connection_not_the_writer(runtime, config, writer):
    path = writer.writer.listener.getsockname()
    rogue = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    rogue.connect(path)
    rogue.sendall(struct.pack(">I", 0xFFFFFFFF))
    rogue.settimeout(5)
    assert rogue.recv(10) == b""  # dropped
    rogue.close()
    client = IntakeClient(path, fallback=NoFallback())
    assert not client.submit(body_of(config, 1)).duplicate


@pytest.mark.parametrize("backend", ["sqlite"])
def test_gunicorn_runs_one_writer_and_restarts_it(database_url, config, tmp_path):
    """The production server: webhooks of both web processes go through the writer; killed with
    kill -9, it comes back, and no webhook meanwhile is refused."""
    master, base = start_production_server(database_url, tmp_path)
    try:
        wait_healthy(base)
        writer_pid = _writer_pid(master.pid)
        assert writer_pid is not None, "no intake writer under the gunicorn master"
        arguments = Path(f"/proc/{writer_pid}/cmdline").read_bytes().split(b"\0")
        socket_dir = Path(arguments[arguments.index(b"--socket") + 1].decode()).parent
        assert socket_dir.stat().st_mode & 0o777 == 0o700  # nobody else may hand it events

        def post(n):
            _, body = parsed(config, n, event_id=f"evt_gw{n:04d}")
            return requests.post(f"{base}/webhooks/persona", data=body, timeout=10,
                                 headers={"Persona-Signature": signature.header_for([WEBHOOK_SECRET], int(time.time()), body)})

        with ThreadPoolExecutor(max_workers=8) as pool:
            assert {r.status_code for r in pool.map(post, range(40))} == {200}
        os.kill(writer_pid, signal.SIGKILL)
        with ThreadPoolExecutor(max_workers=8) as pool:  # while it is down and coming back
            assert {r.status_code for r in pool.map(post, range(40, 80))} == {200}
        deadline = time.monotonic() + 30
        while (new_pid := _writer_pid(master.pid)) in (None, writer_pid) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert new_pid not in (None, writer_pid), "the writer was not restarted"
        # Until the new writer accepts: a web process's request thread reconnects on its next
        # request, so from then on every webhook goes through it.
        assert _accepts(socket_dir / "intake.sock", seconds=30), "the restarted writer does not accept"
        with ThreadPoolExecutor(max_workers=8) as pool:
            assert {r.status_code for r in pool.map(post, range(80, 100))} == {200}
    finally:
        master.send_signal(signal.SIGTERM)
        output = master.communicate(timeout=30)[0]
    assert master.returncode == 0, output
    assert _writer_pid(master.pid) is None and not socket_dir.exists()
    assert f"intake writer (pid {writer_pid}) was killed by SIGKILL; restarting it" in output, output
    answered = [int(n) for n in re.findall(r"intake writer stopped: (\d+) event", output)]
    assert answered and answered[-1] >= 20, output  # the restarted writer stored the last ones itself
    engine = sa.create_engine(database_url)
    with engine.connect() as conn:
        assert conn.scalar(sa.text("SELECT count(*) FROM kyc_events")) == 100
    engine.dispose()


@pytest.mark.parametrize("backend", ["sqlite"])
def test_the_writer_stops_when_the_server_that_started_it_dies(database_url):
    """gunicorn's master killed with -9 cannot stop its writer; the writer notices and exits."""
    env = {**os.environ, "BRIDGE_DATABASE_URL": database_url, "BRIDGE_SECRET_KEY": "k", "BRIDGE_ADMIN_TOKEN": "t",
           "PERSONA_WEBHOOK_SECRETS": WEBHOOK_SECRET}
    starter = subprocess.Popen([sys.executable, "-c", (
        "import sys, time\n"
        "from bridge.app.intake_process import WriterProcess\n"
        "w = WriterProcess()\n"
        "assert w.start()\n"
        "print(w.pid, flush=True)\n"
        "time.sleep(60)\n")], env=env, stdout=subprocess.PIPE, text=True)
    writer_pid = int(starter.stdout.readline())
    assert _alive(writer_pid)
    starter.kill()
    starter.wait()
    deadline = time.monotonic() + 10
    while _alive(writer_pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not _alive(writer_pid), "the orphaned writer kept running"


def test_gunicorn_starts_no_writer_for_another_app(monkeypatch):
    import runpy

    monkeypatch.delenv("BRIDGE_INTAKE_SOCKET", raising=False)
    conf = runpy.run_path(str(REPO / "gunicorn.conf.py"))

    class Server:
        class app:
            app_uri = "bare_receiver:app"

    conf["on_starting"](Server())
    assert "BRIDGE_INTAKE_SOCKET" not in os.environ and conf["_intake_writer"].pid is None


def _accepts(path: Path, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
            try:
                probe.connect(str(path))
                return True
            except OSError:
                pass
        time.sleep(0.05)
    return False


@pytest.mark.parametrize("backend", ["sqlite"])
def test_a_killed_writer_is_reported_with_its_signal_even_when_another_waiter_reaps_it(database_url, monkeypatch):
    """gunicorn's master reaps every child with waitpid(-1); the supervisor still logs the real ending."""
    from bridge.app.intake_process import WriterProcess

    for key, value in {"BRIDGE_DATABASE_URL": database_url, "BRIDGE_SECRET_KEY": "k", "BRIDGE_ADMIN_TOKEN": "t",
                       "PERSONA_WEBHOOK_SECRETS": WEBHOOK_SECRET}.items():
        monkeypatch.setenv(key, value)
    supervisor = WriterProcess()
    try:
        supervisor._spawn()  # no supervising thread: this test decides who waits first
        proc = supervisor._proc
        os.kill(proc.pid, signal.SIGKILL)
        deadline = time.monotonic() + 10
        while (_state_and_parent(proc.pid) or ("Z",))[0] != "Z" and time.monotonic() < deadline:
            time.sleep(0.02)
        supervisor.note_exit()  # what gunicorn.conf.py does before the master reaps
        assert os.waitpid(proc.pid, 0)[0] == proc.pid  # the master's waitpid(-1) reaps it first
        assert supervisor._wait(proc) == "was killed by SIGKILL"
    finally:
        supervisor.stop()


def _state_and_parent(pid: int) -> tuple[str, int] | None:
    """A process's state letter and parent pid from /proc, or None if it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return fields[0], int(fields[1])


def _alive(pid: int) -> bool:
    found = _state_and_parent(pid)
    return found is not None and found[0] != "Z"


def _writer_pid(master_pid: int) -> int | None:
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        pid = int(entry.name)
        try:
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        found = _state_and_parent(pid)
        if found is not None and found[1] == master_pid and found[0] != "Z" and b"bridge.app.intake_process" in cmdline:
            return pid
    return None


def test_a_large_body_reaches_the_writer_whole(runtime, config, writer):
    """Bodies past 64 KiB are sent without being copied into their frame: header and body apart."""
    document = json.loads(body_of(config, 1, event_id="evt_iwbig"))
    document["data"]["attributes"]["padding"] = "p" * (900 * 1024)
    raw = json.dumps(document).encode()
    client = IntakeClient(writer.writer.listener.getsockname(), fallback=NoFallback())
    assert client.submit(raw).event_id == "evt_iwbig"
    with runtime.sessions() as session:
        assert session.scalar(sa.select(Event.payload).where(Event.event_id == "evt_iwbig")) == raw.decode()


def test_the_writer_never_dies_of_input(runtime, config, writer, monkeypatch):
    """A body that broke the parser (RecursionError, OverflowError) is a 400; a parser bug fails only
    its own request; either way the writer goes on serving."""
    client = IntakeClient(writer.writer.listener.getsockname(), fallback=NoFallback())
    with pytest.raises(events.EventFormatError, match="nested too deeply"):
        client.submit(b"[" * 200_000 + b"]" * 200_000)
    overflow = json.loads(body_of(config, 1, event_id="evt_iwof"))
    overflow["data"]["attributes"]["created-at"] = "9999-12-31T23:59:59-01:00"
    with pytest.raises(events.EventFormatError, match="out of range"):
        client.submit(json.dumps(overflow).encode())
    monkeypatch.setattr(ingest, "parse", lambda body: (_ for _ in ()).throw(RuntimeError("a parser bug")))
    with pytest.raises(WriterError):
        client.submit(body_of(config, 2))
    monkeypatch.undo()
    assert writer.thread.is_alive()
    assert not client.submit(body_of(config, 3)).duplicate
