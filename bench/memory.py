"""RSS of the web processes after hostile 1 MiB bodies (issue 14, finding 9). A measurement, not a test.

    .venv/bin/python bench/memory.py                     # this checkout
    .venv/bin/python bench/memory.py --repo /path/to/an/older/checkout   # the same traffic, other code

Starts `gunicorn -c gunicorn.conf.py` (SQLite, 2 web processes x 16 threads, the intake writer),
warms it with valid webhooks, reads each web process's VmRSS, then sends --requests hostile bodies
of ~1 MiB from --connections threads: unsigned, wrongly signed, signed but not an event, signed and
nested deeply, chunked past the limit, and reads VmRSS again (and its peak, VmHWM). Prints MB.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path

import requests

REPO = Path(__file__).resolve().parents[1]
SECRET = "wbhsec_bench_memory"
MIB = 1024 * 1024


def _sign(body: bytes) -> str:
    import hashlib
    import hmac

    stamp = int(time.time())
    mac = hmac.new(SECRET.encode(), f"{stamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={stamp},v1={mac}"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _status(pid: int, key: str) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1]) / 1024  # kB -> MB
    return 0.0


def _web_processes(master: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        if parent == master and b"intake_process" not in cmdline:
            found.append(int(entry.name))
    return sorted(found)


def _event(n: int) -> bytes:
    at = (datetime(2026, 1, 1, tzinfo=UTC) + timedelta(seconds=n)).isoformat().replace("+00:00", "Z")
    return json.dumps({"data": {"type": "event", "id": f"evt_mem{n:06d}", "attributes": {
        "name": "inquiry.approved", "created-at": at, "payload": {"data": {
            "type": "inquiry", "id": f"inq_mem{n % 50:03d}", "attributes": {"status": "approved"}}}}}}).encode()


def _hostile(n: int) -> tuple[bytes | object, dict]:
    pad = b"x" * (MIB - 200)
    kind = n % 5
    if kind == 0:  # unsigned
        return b'{"pad": "' + pad + b'"}', {}
    if kind == 1:  # wrongly signed
        return b'{"pad": "' + pad + b'"}', {"Persona-Signature": f"t=1,v1={'0' * 64}"}
    if kind == 2:  # signed, not an event
        body = b'{"data": {"type": "event", "pad": "' + pad + b'"}}'
        return body, {"Persona-Signature": _sign(body)}
    if kind == 3:  # signed, nested deeply
        body = b"[" * (MIB // 2 - 10) + b"]" * (MIB // 2 - 10)
        return body, {"Persona-Signature": _sign(body)}
    body = b'{"pad": "' + pad + b"x" * 400 + b'"}'  # chunked, past the limit
    return iter([body[i:i + 65536] for i in range(0, len(body), 65536)]), {"Persona-Signature": _sign(body)}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repo", type=Path, default=REPO, help="the checkout whose code runs the server")
    parser.add_argument("--requests", type=int, default=400)
    parser.add_argument("--connections", type=int, default=16)
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="kyc-bench-memory-") as scratch:
        url = f"sqlite:///{scratch}/bridge.db"
        env = {**os.environ, "BRIDGE_DATABASE_URL": url, "BRIDGE_SECRET_KEY": "k", "BRIDGE_ADMIN_TOKEN": "t",
               "PERSONA_WEBHOOK_SECRETS": SECRET, "BRIDGE_ACCESS_LOG": "", "BRIDGE_LOG_LEVEL": "warning",
               "BRIDGE_WEB_WORKERS": "2", "BRIDGE_WEB_THREADS": "16", "PYTHONPATH": str(args.repo)}
        port = _free_port()
        env["BRIDGE_BIND"] = f"127.0.0.1:{port}"
        subprocess.run([sys.executable, "-c", f"from bridge.store import migrate; migrate.upgrade({url!r})"],
                       env=env, check=True, cwd=args.repo)
        master = subprocess.Popen([sys.executable, "-m", "gunicorn", "-c", str(args.repo / "gunicorn.conf.py")],
                                  env=env, cwd=args.repo, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        base = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 30
            while True:
                try:
                    requests.get(f"{base}/healthz", timeout=1)
                    break
                except requests.RequestException:
                    if time.monotonic() > deadline:
                        raise SystemExit("the server did not come up") from None
                    time.sleep(0.1)

            def post(payload: tuple[bytes | object, dict]) -> int:
                body, headers = payload
                try:
                    return requests.post(f"{base}/webhooks/persona", data=body, headers=headers, timeout=60).status_code
                except requests.RequestException:
                    return 0  # the server may close a connection whose body it refused

            with ThreadPoolExecutor(args.connections) as pool:  # warm: every thread has served a request
                warm = [(b, {"Persona-Signature": _sign(b)}) for b in map(_event, range(400))]
                assert set(pool.map(post, warm)) == {200}
            workers = _web_processes(master.pid)
            rest = {pid: _status(pid, "VmRSS") for pid in workers}
            with ThreadPoolExecutor(args.connections) as pool:
                answers = list(pool.map(post, (_hostile(n) for n in range(args.requests))))
            time.sleep(1)  # a measurement: let the threads finish and free their buffers
            after = {pid: _status(pid, "VmRSS") for pid in workers}
            peak = {pid: _status(pid, "VmHWM") for pid in workers}
        finally:
            master.send_signal(signal.SIGTERM)
            master.wait(60)
    counts = {code: answers.count(code) for code in sorted(set(answers))}
    print(f"code: {args.repo}; {args.requests} hostile ~1 MiB bodies from {args.connections} threads; answers {counts}")
    for pid in workers:
        print(f"  web process {pid}: at rest {rest[pid]:.1f} MB, after {after[pid]:.1f} MB, peak {peak[pid]:.1f} MB")


if __name__ == "__main__":
    main()
