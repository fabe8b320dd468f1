"""Load generator for bench/ingest.py: replays pre-built HTTP requests over keep-alive sockets.

Runs as its own process (started by bench/ingest.py) so its CPU is not the servers'. It only talks
to 127.0.0.1, sends at most the requests it was given, and stops by itself (request count, run time
and a hard grace period for in-flight requests are all bounded).

Protocol with the parent, one JSON line each way on stdin/stdout:
    child:  {"ready": true}            requests loaded, warm-up done, connections open
    parent: "go"                       (the parent snapshots server CPU between the two)
    child:  {"done": true}             timed part over (the parent snapshots CPU again)
    child:  {...results...}            statuses, latency percentiles, indices answered 200

Modes:
  closed  max throughput: C connections, each sends its next request as soon as the previous
          answer is in, until --max-requests are answered or --duration has passed.
  open    steady rate: request i is *due* at t0 + i/rate whatever happens to earlier ones; latency
          is measured from the due time, so a server stall shows up as latency (no coordinated
          omission). Idle connections are reused; new ones are opened if all are busy.

No dependencies beyond the standard library; HTTP parsing is the minimum needed for the
fixed-length JSON answers gunicorn sends (status line, Content-Length, Connection).
"""

from __future__ import annotations

import argparse
import errno
import json
import pickle
import resource
import selectors
import socket
import sys
import time
from array import array

HOST = "127.0.0.1"  # never anything else
GRACE_SECONDS = 10.0  # after the run: how long in-flight requests may still take
CONNECT_TIMEOUT = 5.0
MAX_OPEN_CONNECTIONS = 256
IDLE_REUSE_SECONDS = 3.0
STATUS_ERROR = 0  # connection reset / closed before an answer
STATUS_TIMEOUT = -1  # no answer within the grace period


class Conn:
    __slots__ = ("buf", "index", "last_used", "sock", "start")

    def __init__(self, port: int):
        sock = socket.create_connection((HOST, port), timeout=CONNECT_TIMEOUT)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.setblocking(False)
        self.sock = sock
        self.buf = b""
        self.index = -1  # request in flight, -1 when idle
        self.start = 0.0
        self.last_used = time.perf_counter()


def _parse(buf: bytes) -> tuple[int, int, bool] | None:
    """(status, bytes consumed, keep-alive) once a complete response is in `buf`, else None."""
    end = buf.find(b"\r\n\r\n")
    if end < 0:
        return None
    head = buf[:end].split(b"\r\n")
    status = int(head[0].split(b" ", 2)[1])
    length, keep = 0, not head[0].startswith(b"HTTP/1.0")
    for line in head[1:]:
        name, _, value = line.partition(b":")
        name = name.strip().lower()
        if name == b"content-length":
            length = int(value)
        elif name == b"connection":
            keep = value.strip().lower() != b"close"
    total = end + 4 + length
    if len(buf) < total:
        return None
    return status, total, keep


def _send(conn: Conn, data: bytes) -> None:
    # Requests are ~1-2 KB: they fit a fresh socket's send buffer, so sendall on the non-blocking
    # socket completes at once; fall back to a short blocking send if it ever does not.
    try:
        sent = conn.sock.send(data)
    except BlockingIOError:
        sent = 0
    if sent < len(data):
        conn.sock.setblocking(True)
        try:
            conn.sock.sendall(data[sent:])
        finally:
            conn.sock.setblocking(False)


class Runner:
    def __init__(self, port: int, requests: list[bytes]):
        self.port = port
        self.requests = requests
        self.sel = selectors.DefaultSelector()
        self.status = array("i", [STATUS_TIMEOUT]) * len(requests)  # per request index
        self.latency = array("d", [-1.0]) * len(requests)
        self.conns: list[Conn] = []
        self.idle: list[Conn] = []
        self.reconnects = 0

    # -- connections -------------------------------------------------------------------------
    def open(self) -> Conn:
        conn = Conn(self.port)
        self.sel.register(conn.sock, selectors.EVENT_READ, conn)
        self.conns.append(conn)
        return conn

    def reopen(self) -> Conn | None:
        self.reconnects += 1
        try:
            return self.open()
        except OSError:
            return None  # the server is gone: the run ends at its deadline with errors recorded

    def drop(self, conn: Conn) -> None:
        try:
            self.sel.unregister(conn.sock)
        except (KeyError, ValueError):
            pass
        conn.sock.close()
        self.conns.remove(conn)
        if conn in self.idle:
            self.idle.remove(conn)

    def close_all(self) -> None:
        for conn in list(self.conns):
            self.drop(conn)

    def issue(self, conn: Conn, index: int, start: float) -> None:
        conn.index, conn.start = index, start
        try:
            _send(conn, self.requests[index])
        except OSError:
            fresh = self.fail(conn)
            if fresh is not None:
                self.idle.append(fresh)

    def fail(self, conn: Conn) -> Conn | None:
        """The connection broke: record an error for its request; return a fresh connection."""
        if conn.index >= 0:
            self.status[conn.index] = STATUS_ERROR
            self.latency[conn.index] = time.perf_counter() - conn.start
        self.drop(conn)
        return self.reopen()

    def poll(self, timeout: float | None) -> list[Conn]:
        """Wait for answers; return the connections that finished a request (now idle)."""
        finished = []
        for key, _ in self.sel.select(timeout):
            conn: Conn = key.data
            try:
                data = conn.sock.recv(65536)
            except BlockingIOError:
                continue
            except OSError as exc:
                if exc.errno in (errno.EAGAIN,):
                    continue
                data = b""
            if not data:
                fresh = self.fail(conn)
                if fresh is not None:
                    finished.append(fresh)
                continue
            conn.buf += data
            parsed = _parse(conn.buf)
            if parsed is None:
                continue
            now = time.perf_counter()
            status, used, keep = parsed
            conn.buf = conn.buf[used:]
            if conn.index >= 0:
                self.status[conn.index] = status
                self.latency[conn.index] = now - conn.start
            conn.index = -1
            conn.last_used = now
            if keep:
                finished.append(conn)
            else:
                self.drop(conn)
                fresh = self.reopen()
                if fresh is not None:
                    finished.append(fresh)
        return finished

    def in_flight(self) -> int:
        return sum(1 for c in self.conns if c.index >= 0)

    # -- modes -------------------------------------------------------------------------------
    def closed(self, first: int, count: int, connections: int, duration: float) -> tuple[int, float]:
        """Closed loop from request `first`; returns (requests issued, elapsed seconds).

        New connections are opened one per answer, not all at once: gunicorn's workers race to
        accept each one, and a burst of connections often went to the worker that woke first
        (all of them, in some rounds), capping that round at one process."""
        if not self.conns:
            self.idle.append(self.open())
        nxt, last = first, first + count
        t0 = time.perf_counter()
        stop_at = t0 + duration
        while self.idle and nxt < last:
            self.issue(self.idle.pop(), nxt, time.perf_counter())
            nxt += 1
        hard_stop = stop_at + GRACE_SECONDS
        end = t0
        while True:
            busy = self.in_flight()
            if busy == 0 and (nxt >= last or time.perf_counter() >= stop_at):
                break
            if time.perf_counter() >= hard_stop:
                break
            freed = self.poll(0.5)
            now = time.perf_counter()
            if freed:
                end = now
                self.idle.extend(freed)
            if freed and len(self.conns) < connections:
                self.idle.append(self.open())
            while self.idle and nxt < last and now < stop_at:
                self.issue(self.idle.pop(), nxt, now)
                nxt += 1
        self.abandon()
        return nxt - first, max(end - t0, 1e-9)

    def take_idle(self, now: float) -> Conn | None:
        """The most recently used idle connection; ones idle long enough for the server to drop
        them (gunicorn keepalive = 5 s) are closed instead of reused."""
        while self.idle:
            conn = self.idle.pop()
            if now - conn.last_used < IDLE_REUSE_SECONDS:
                return conn
            self.drop(conn)
        return None

    def open_loop(self, first: int, count: int, rate: float) -> tuple[int, float]:
        """Open loop at `rate` req/s for `count` requests; returns (requests issued, elapsed).

        Connections are opened only when a request is due and none is idle, and used at once:
        gunicorn's gthread worker parks a thread on a new connection until its first request
        arrives (up to 5 s), so connections opened in advance would stall the server."""
        interval = 1.0 / rate
        t0 = time.perf_counter() + 0.01
        sent = 0
        backlog: list[int] = []  # due but no connection free (and none could be opened)
        hard_stop = t0 + count * interval + GRACE_SECONDS
        while True:
            now = time.perf_counter()
            if now >= hard_stop:
                break
            while sent < count and t0 + sent * interval <= now:
                backlog.append(sent)
                sent += 1
            while backlog:
                conn = self.take_idle(now)
                if conn is None and len(self.conns) < MAX_OPEN_CONNECTIONS:
                    try:
                        conn = self.open()
                    except OSError:
                        conn = None
                if conn is None:
                    break
                i = backlog.pop(0)
                self.issue(conn, first + i, t0 + i * interval)  # latency counts from the due time
            if sent >= count and not backlog and self.in_flight() == 0:
                break
            wait = (t0 + sent * interval - time.perf_counter()) if sent < count else 0.5
            if backlog:
                wait = min(wait, 0.001)
            self.idle.extend(self.poll(max(0.0, wait)))
        self.abandon()
        return sent, time.perf_counter() - t0

    def abandon(self) -> None:
        """Whatever is still in flight past the grace period is a timeout; drop those sockets."""
        for conn in list(self.conns):
            if conn.index >= 0:
                self.status[conn.index] = STATUS_TIMEOUT
                self.drop(conn)


def percentile(sorted_values: list[float], q: float) -> float:
    if not sorted_values:
        return float("nan")
    k = max(0, min(len(sorted_values) - 1, round(q / 100.0 * len(sorted_values) + 0.5) - 1))
    return sorted_values[k]


def summarize(runner: Runner, first: int, issued: int, elapsed: float) -> dict:
    statuses: dict[str, int] = {}
    lat_ok: list[float] = []
    lat_all: list[float] = []
    ok_indices: list[int] = []
    failed_indices: list[int] = []  # sent, but no 200 (error status, reset or timeout)
    for i in range(first, first + issued):
        s = runner.status[i]
        statuses[str(s)] = statuses.get(str(s), 0) + 1
        if runner.latency[i] >= 0:
            lat_all.append(runner.latency[i])
        if s == 200:
            lat_ok.append(runner.latency[i])
            ok_indices.append(i)
        else:
            failed_indices.append(i)
    lat_all.sort()
    answered = sum(n for s, n in statuses.items() if int(s) > 0)
    return {
        "issued": issued,
        "answered": answered,
        "ok": len(ok_indices),
        "statuses": statuses,
        "elapsed_s": elapsed,
        "throughput_rps": answered / elapsed if elapsed > 0 else 0.0,
        # Latency over every answered request (errors included), in ms.
        "p50_ms": percentile(lat_all, 50) * 1e3,
        "p90_ms": percentile(lat_all, 90) * 1e3,
        "p99_ms": percentile(lat_all, 99) * 1e3,
        "max_ms": (lat_all[-1] * 1e3) if lat_all else float("nan"),
        "ok_indices": ok_indices,
        "failed_indices": failed_indices,
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--requests-file", required=True, help="pickled list of raw HTTP request bytes")
    ap.add_argument("--first", type=int, default=0, help="index of the first request to use")
    ap.add_argument("--warmup", type=int, default=0, help="requests sent before the timed part")
    ap.add_argument("--mode", choices=("closed", "open"), required=True)
    ap.add_argument("--count", type=int, required=True, help="timed requests at most")
    ap.add_argument("--connections", type=int, default=32)
    ap.add_argument("--duration", type=float, default=15.0, help="closed mode: stop sending after this")
    ap.add_argument("--rate", type=float, default=200.0, help="open mode: requests per second")
    ap.add_argument("--latency-file", help="write one CSV line per timed request: index, status, latency ms")
    args = ap.parse_args(argv)

    with open(args.requests_file, "rb") as fh:
        requests: list[bytes] = pickle.load(fh)
    if args.first + args.warmup + args.count > len(requests):
        print(json.dumps({"error": "not enough pre-generated requests"}), flush=True)
        return 2
    runner = Runner(args.port, requests)
    out = sys.stdout

    warm = None
    if args.warmup:
        issued, elapsed = runner.closed(args.first, args.warmup, min(args.connections, 16), 30.0)
        warm = summarize(runner, args.first, issued, elapsed)
    timed_first = args.first + args.warmup

    out.write(json.dumps({"ready": True}) + "\n")
    out.flush()
    if sys.stdin.readline().strip() != "go":
        runner.close_all()
        return 1
    ru0 = resource.getrusage(resource.RUSAGE_SELF)
    if args.mode == "closed":
        issued, elapsed = runner.closed(timed_first, args.count, args.connections, args.duration)
    else:
        issued, elapsed = runner.open_loop(timed_first, args.count, args.rate)
    ru1 = resource.getrusage(resource.RUSAGE_SELF)
    out.write(json.dumps({"done": True}) + "\n")
    out.flush()
    runner.close_all()

    result = summarize(runner, timed_first, issued, elapsed)
    if args.latency_file:
        with open(args.latency_file, "w") as fh:
            fh.write("index,status,latency_ms\n")
            for i in range(timed_first, timed_first + issued):
                fh.write(f"{i - timed_first},{runner.status[i]},{runner.latency[i] * 1e3:.3f}\n")
    result["mode"] = args.mode
    result["connections"] = args.connections
    result["reconnects"] = runner.reconnects
    result["loadgen_cpu_s"] = (ru1.ru_utime - ru0.ru_utime) + (ru1.ru_stime - ru0.ru_stime)
    result["warmup"] = warm
    out.write(json.dumps(result) + "\n")
    out.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
