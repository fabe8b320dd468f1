"""One intake writer per gunicorn server: web processes hand verified webhooks to it over a Unix socket.

Why a process of its own: with every web process committing for itself, the processes queue on
one write lock (SQLite) or one audit head row (PostgreSQL, MariaDB), and the committing thread
waits for the GIL that its process's request threads hold while it holds that lock. The writer
has one thread and no requests to serve: it reads whatever events have arrived from all web
processes, stores them in one transaction (`ingest.ingest_many`), and answers each only after
COMMIT, so a 200 still means "durably stored". Events that arrive while it commits form the next
batch; it never waits for more (waiting to fill a transaction left the machine idle and cost
PostgreSQL 15 % of its throughput: docs/benchmarks.md, round 6).

Protocol: each message is a 4-byte big-endian length and a payload. A web process sends the raw
webhook body, already signature-checked; the writer parses it and answers with one outcome byte
followed by the event id (or, for a body that is not a Persona event, the parser's message). One
request at a time per connection (a request thread keeps its own connection).

`bridge/app/gunicorn_conf.py` starts it with `bridge.app.intake_process.WriterProcess` and restarts it if it dies; a web process
that cannot reach it commits in-process (`GroupCommitter`), so the writer is never a single point
of failure.
"""

from __future__ import annotations

import logging
import os
import selectors
import socket
import struct
import threading
from collections import deque
from typing import TYPE_CHECKING

from bridge.intake import group_commit, ingest
from bridge.persona import events
from bridge.store.engine import StoreUnavailable

if TYPE_CHECKING:
    from bridge.runtime import Runtime

log = logging.getLogger(__name__)

MAX_BATCH = 256
REPLY_SECONDS = group_commit.WAIT_SECONDS  # the in-process committer's deadline: past it the store hangs
_HEADER = struct.Struct(">I")
_MAX_MESSAGE = 64 * 1024 * 1024  # far above BRIDGE's body limit; a guard against a corrupt stream
_MAX_REPLY = 64 * 1024  # an outcome byte and an event id or an error message

# Outcome bytes.
_STORED, _CHANGED, _DUPLICATE = b"s", b"c", b"d"
_UNAVAILABLE, _MALFORMED, _FAILED = b"u", b"m", b"f"
_RESULTS = {_STORED: (False, False), _DUPLICATE: (True, False), _CHANGED: (False, True)}  # duplicate, changed


def _outcome(result: ingest.IngestResult) -> bytes:
    if result.duplicate:
        return _DUPLICATE
    return _CHANGED if result.status_changed else _STORED


def _outcome_of(result: ingest.IngestResult | Exception) -> bytes:
    if isinstance(result, ingest.IngestResult):
        return _outcome(result) + result.event_id.encode()
    group_commit.log_refused(result)
    if isinstance(result, events.EventFormatError):
        return _MALFORMED + str(result).encode()
    return _FAILED


def frame(payload: bytes) -> bytes:
    return _HEADER.pack(len(payload)) + payload


_COPY_LIMIT = 64 * 1024  # past this a body is not copied into its frame: header and body go out as they are


def send_frame(sock: socket.socket, payload: bytes) -> None:
    if len(payload) <= _COPY_LIMIT:
        sock.sendall(frame(payload))
        return
    header = _HEADER.pack(len(payload))
    sent = sock.sendmsg([header, payload])
    if sent < len(header):
        sock.sendall(header[sent:])
        sent = len(header)
    sock.sendall(memoryview(payload)[sent - len(header):])


class WriterError(Exception):
    """The writer failed to store an event for a reason that is not transient (a bug: see its log)."""


# -- the writer ------------------------------------------------------------------------------------

class _Peer:
    __slots__ = ("buffer", "sock")

    def __init__(self, sock: socket.socket):
        self.sock, self.buffer = sock, bytearray()

    def messages(self) -> list[bytes]:
        found = []
        while len(self.buffer) >= _HEADER.size:
            (length,) = _HEADER.unpack_from(self.buffer)
            if length > _MAX_MESSAGE:
                raise ValueError(f"message of {length} bytes")
            if len(self.buffer) < _HEADER.size + length:
                break
            found.append(bytes(self.buffer[_HEADER.size:_HEADER.size + length]))
            del self.buffer[:_HEADER.size + length]
        return found


class IntakeWriter:
    """Single-threaded: read every complete request, commit them together, answer, repeat."""

    def __init__(self, runtime: Runtime, listener: socket.socket, *, parent_pid: int | None = None) -> None:
        self.runtime = runtime
        self.listener = listener
        self.parent_pid = parent_pid  # stop when it is gone (gunicorn's master killed with -9)
        self.recent_batches: deque[int] = deque(maxlen=1000)  # sizes, newest last
        self.committed = 0  # events answered, in all batches
        self.commits = 0
        self._selector = selectors.DefaultSelector()
        self._stop = threading.Event()

    def stop(self) -> None:
        self._stop.set()

    def serve_forever(self) -> None:
        self.listener.setblocking(False)
        self._selector.register(self.listener, selectors.EVENT_READ)
        try:
            while not self._stop.is_set():
                if self.parent_pid is not None and os.getppid() != self.parent_pid:
                    log.warning("intake writer: the server that started it is gone; stopping")
                    break
                pending = self._read(timeout=0.5)
                while pending:
                    batch, pending = pending[:MAX_BATCH], pending[MAX_BATCH:]
                    self._commit(batch)
        finally:
            for key in list(self._selector.get_map().values()):
                key.fileobj.close()  # type: ignore[union-attr]
            self._selector.close()

    def _read(self, timeout: float) -> list[tuple[_Peer, events.PersonaEvent, bytes]]:
        pending: list[tuple[_Peer, events.PersonaEvent, bytes]] = []
        for key, _ in self._selector.select(timeout):
            if key.fileobj is self.listener:
                self._accept()
                continue
            peer: _Peer = key.data
            try:
                chunk = peer.sock.recv(1 << 20)
            except (BlockingIOError, InterruptedError):
                continue
            except OSError:
                chunk = b""
            if not chunk:
                self._drop(peer)
                continue
            peer.buffer += chunk
            try:
                bodies = peer.messages()
            except ValueError:
                log.warning("intake writer: dropping a connection with a corrupt message")
                self._drop(peer)
                continue
            for body in bodies:
                try:
                    pending.append((peer, ingest.parse(body), body))
                except events.EventFormatError as exc:  # its message never quotes the body
                    self._reply(peer, _MALFORMED + str(exc).encode())
                except Exception:  # a parser bug: this request fails, the writer goes on
                    log.exception("intake writer: parsing a webhook failed")
                    self._reply(peer, _FAILED)
        return pending

    def _accept(self) -> None:
        try:
            sock, _ = self.listener.accept()
        except (BlockingIOError, InterruptedError):
            return
        sock.setblocking(False)
        self._selector.register(sock, selectors.EVENT_READ, _Peer(sock))

    def _drop(self, peer: _Peer) -> None:
        self._selector.unregister(peer.sock)
        peer.sock.close()

    def _commit(self, batch: list[tuple[_Peer, events.PersonaEvent, bytes]]) -> None:
        rt = self.runtime
        try:
            # an event the store refuses is committed apart from the others (ingest_each)
            results = ingest.ingest_each(rt.engine, rt.config, [(e, b) for _, e, b in batch], now=rt.clock())
            outcomes = [_outcome_of(r) for r in results]
        except StoreUnavailable as exc:  # its message names the store (never a password): the web process logs it
            outcomes = [_UNAVAILABLE + str(exc).encode()] * len(batch)
        except Exception:
            log.exception("intake writer: commit of %d event(s) failed", len(batch))
            outcomes = [_FAILED] * len(batch)
        self.recent_batches.append(len(batch))
        self.committed += len(batch)
        self.commits += 1
        for (peer, _, _), outcome in zip(batch, outcomes):
            self._reply(peer, outcome)

    def _reply(self, peer: _Peer, outcome: bytes) -> None:
        # One request in flight per connection: the short answer fits the empty send buffer.
        try:
            peer.sock.sendall(frame(outcome))
        except OSError:  # the web process went away; Persona's retry will find the event stored
            if peer.sock.fileno() != -1:
                self._drop(peer)


def listen(path: str) -> socket.socket:
    if os.path.exists(path):
        os.unlink(path)  # left by a writer that was killed
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(path)
    os.chmod(path, 0o600)  # only the service's own user may hand it events
    listener.listen(1024)
    return listener


# -- the web side ------------------------------------------------------------------------------------

class IntakeClient:
    """`submit` like GroupCommitter's, through the writer; in-process when the writer is not there."""

    def __init__(self, path: str, fallback: group_commit.GroupCommitter) -> None:
        self.path = path
        self.fallback = fallback
        self._local = threading.local()
        self._warned = False

    def _connection(self) -> socket.socket | None:
        sock = getattr(self._local, "sock", None)
        if sock is None:
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            # A kernel timeout on a blocking socket, not Python's: with settimeout every send and
            # recv is preceded by a poll(), two more system calls (and GIL hand-offs) per webhook.
            limit = struct.pack("ll", int(REPLY_SECONDS), int(REPLY_SECONDS % 1 * 1_000_000))
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, limit)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDTIMEO, limit)
            try:
                sock.connect(self.path)
            except OSError:
                sock.close()
                if not self._warned:
                    log.warning("intake writer unreachable; committing in this process until it is back")
                    self._warned = True
                return None
            self._local.sock = sock
            self._warned = False
        return sock

    def _forget(self) -> None:
        sock = getattr(self._local, "sock", None)
        if sock is not None:
            sock.close()
            self._local.sock = None

    def _send(self, body: bytes) -> socket.socket | None:
        """Send on this thread's connection, replacing it once if the writer closed it (it restarted:
        nothing was sent); None when there is no writer to send to."""
        for retry in (False, True):
            sock = self._connection()
            if sock is None:
                return None
            try:
                send_frame(sock, body)
                return sock
            except OSError as exc:
                self._forget()
                if retry:
                    raise StoreUnavailable("intake writer unreachable") from exc
        raise AssertionError("unreachable")

    def submit(self, body: bytes) -> ingest.IngestResult:
        sock = self._send(body)
        if sock is None:
            return self.fallback.submit(body)
        try:
            reply = _read_reply(sock)
        except (TimeoutError, BlockingIOError) as exc:  # the writer hangs, likely on the store: so would we
            self._forget()
            raise StoreUnavailable("intake writer did not answer") from exc
        except OSError:
            # The writer died with this request, stored or not. Storing it here is safe either way:
            # the event-id dedupe answers a stored one as a duplicate.
            self._forget()
            return self.fallback.submit(body)
        code, detail = reply[:1], reply[1:].decode()
        if code in _RESULTS:
            return ingest.IngestResult(detail, *_RESULTS[code])
        if code == _MALFORMED:
            raise events.EventFormatError(detail)
        if code == _UNAVAILABLE:
            raise StoreUnavailable(detail or "store unavailable")
        raise WriterError("the intake writer failed to store it")


def _read_reply(sock: socket.socket) -> bytes:
    # One request in flight per connection: whatever arrives belongs to this reply.
    data = b""
    while True:
        chunk = sock.recv(1024)
        if not chunk:
            raise ConnectionResetError("intake writer closed the connection")
        data += chunk
        if len(data) >= _HEADER.size:
            (length,) = _HEADER.unpack_from(data)
            if not 0 < length <= _MAX_REPLY:
                raise ConnectionResetError(f"intake writer sent a reply of {length} bytes")
            if len(data) >= _HEADER.size + length:
                return data[_HEADER.size:_HEADER.size + length]
