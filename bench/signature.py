"""What a Persona-Signature header can cost: a normal header vs hostile ones, in one run.

    .venv/bin/python bench/signature.py                  # 1 MiB body, two configured secrets
    .venv/bin/python bench/signature.py --body-kib 64 --secrets 1

Each `t=…,v1=…` set costs an HMAC over the whole body per configured secret. Before issue 14 an
8 kB header with 740 sets on a 1 MiB body cost 2.1 s of CPU (72x a normal request); now a header
may carry at most `signature.MAX_SIGNATURE_SETS` sets and is refused before any HMAC past that.
Prints the median CPU time per `signature.verify` call for each header and its ratio to the normal
header's (one set, measured in the same run). The ratios are the figure to compare across machines.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from bridge.persona import signature  # noqa: E402

NOW = 1_765_000_000


def _cost(header: str, body: bytes, secrets: list[str], repeat: int) -> float:
    """Median CPU seconds of one verify call (whatever it answers)."""
    times = []
    for _ in range(repeat):
        start = time.process_time()
        try:
            signature.verify(header, body, secrets, now=NOW, tolerance_seconds=None)
        except signature.SignatureError:
            pass
        times.append(time.process_time() - start)
    return statistics.median(times)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--body-kib", type=int, default=1024)
    parser.add_argument("--secrets", type=int, default=2, help="configured webhook secrets")
    parser.add_argument("--repeat", type=int, default=15)
    args = parser.parse_args(argv)

    body = b'{"data": {"type": "event", "pad": "' + b"x" * (args.body_kib * 1024 - 40) + b'"}}'
    secrets = [f"wbhsec_bench_{n}" for n in range(args.secrets)]
    wrong = "0" * 64
    cap = signature.MAX_SIGNATURE_SETS
    headers = {
        "normal (1 set, matches)": signature.header_for(secrets[:1], NOW, body),
        "rotation (2 sets, matches)": signature.header_for(secrets[:1] + ["wbhsec_old"], NOW, body),
        f"{cap} sets, none match (the most a header may buy)": " ".join(f"t={NOW + n},v1={wrong}" for n in range(cap)),
        "740 sets, none match (8 kB header)": " ".join(f"t={n},v1={n}" for n in range(740)),
        "740 v1 in one set": f"t={NOW}," + ",".join(f"v1={wrong}" for _ in range(740)),
        "non-ASCII v1": f"t={NOW},v1=" + "é" * 64,
        "t of 5000 digits": "t=" + "9" * 5000 + f",v1={wrong}",
    }
    hostile = headers["740 sets, none match (8 kB header)"]
    print(f"signature.verify, body {args.body_kib} KiB, {args.secrets} configured secret(s), "
          f"median of {args.repeat} calls (CPU time)")
    baseline = None
    for name, header in headers.items():
        cost = _cost(header, body, secrets, args.repeat)
        baseline = baseline or cost
        print(f"  {name:<52} {cost * 1000:9.3f} ms  {cost / baseline:7.2f}x normal  (header {len(header)} B)")
    # What the same 8 kB header cost before the cap: one HMAC per set and secret (measured once).
    start = time.process_time()
    for part in hostile.split():
        for secret in secrets:
            signature.sign(secret, int(part.split(",")[0][2:]), body)
    uncapped = time.process_time() - start
    print(f"  {'740 sets, every one hashed (before the cap)':<52} {uncapped * 1000:9.3f} ms  "
          f"{uncapped / baseline:7.2f}x normal  (header {len(hostile)} B)")


if __name__ == "__main__":
    main()
