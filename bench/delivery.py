"""Delivery benchmark: webhook → FluentCRM tag, against a FluentCRM double with 20–200 ms calls.

    .venv/bin/python bench/delivery.py                          # all four scenarios (~4 min)
    .venv/bin/python bench/delivery.py --outage-seconds 20 --steady-seconds 20   # shorter
    .venv/bin/python bench/delivery.py --scenarios burst50,steady

Scenarios (issue 15), each on a fresh scratch PostgreSQL database with real processes
(`kyc-bridge serve`, which runs a worker thread, plus `kyc-bridge worker` processes):
  burst50   50 new people decided at once, `serve` alone: webhook→tag p50/p95/max
  burst500  500 new people decided at once, `serve` + 2 workers: time until all are tagged
  outage    FluentCRM answers 503 for --outage-seconds while 100 people are decided, `serve` + 2
            workers: time from FluentCRM answering again until the last of them is tagged
  steady    --rate decisions/s for --steady-seconds, `serve` + 2 workers: webhook→tag p50/p95,
            latency from each webhook's scheduled time

The FluentCRM double (tests/doubles/fluentcrm.py) runs in this process and answers every call after
a uniform 20–200 ms; "tagged" is the moment it answered the write that left the contact with the
approved tag. Before the scenarios, one person alone gives the floor (the same path with no
queueing): every figure is printed with its ratio to that floor, measured in the same run.
Prints one `RESULT {json}` line per scenario. Every process and scratch database is removed on exit.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
for path in (REPO, REPO / "tests"):
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))

import requests  # noqa: E402
import sqlalchemy as sa  # noqa: E402
from sqlalchemy.engine import make_url  # noqa: E402

from bridge import config as config_module  # noqa: E402
from bridge.persona import samples, signature  # noqa: E402
from bridge.store import migrate  # noqa: E402
from doubles.fluentcrm import FakeFluentCRM  # noqa: E402

SECRET = "wbhsec_bench_" + "d" * 24
APPROVED = "kyc-approved"
CALL_SECONDS = (0.02, 0.2)  # the double's uniform call time
MEAN_CALL_SECONDS = sum(CALL_SECONDS) / 2


class TimedFluentCRM(FakeFluentCRM):
    """The double, noting when each contact first carried the approved tag (at the answer)."""

    def __init__(self, config: config_module.Config) -> None:
        super().__init__(bench=False)
        self.tagged_at: dict[str, float] = {}
        # A running site has the KYC tags already: a new person costs a lookup and a create.
        for tag in [*config.status_tags.values(), *(t.tag for t in config.user_types.values())]:
            if self.tag(tag.slug) is None:
                self.add_tag(tag.title, tag.slug)

    def _respond(self, request):  # type: ignore[no-untyped-def]
        response = super()._respond(request)
        if response.status_code >= 300:
            return response
        now = time.monotonic()
        tail = request.path.rsplit("/", 1)[1]
        email = None
        if request.method == "POST" and tail == "subscribers":
            email = (request.get_json(silent=True) or {}).get("email")
        elif request.method == "PUT" and tail.isdigit():
            email = self.email_of(int(tail))
        if email and email not in self.tagged_at:  # only the written contact: the double stays fast
            contact = self.contact(email)
            if contact is not None and APPROVED in contact.tag_slugs:
                self.tagged_at[email] = now
        return response


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def scratch_database(admin_url: str):  # type: ignore[no-untyped-def]
    name = f"kyc_bench_delivery_{uuid.uuid4().hex[:8]}"
    admin = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f"CREATE DATABASE {name}"))
    url = make_url(admin_url).set(database=name).render_as_string(hide_password=False)
    try:
        migrate.upgrade(url)
        yield url
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        admin.dispose()


@contextmanager
def bridge(url: str, crm: FakeFluentCRM, workers: int, logdir: Path,  # type: ignore[no-untyped-def]
           concurrency: int | None):
    port = free_port()
    config_file = {}
    if concurrency:
        text, found = re.subn(r"(?m)^concurrency = \d+$", f"concurrency = {concurrency}",
                              (REPO / "bridge" / "default_config.toml").read_text())
        assert found == 1, "[worker] concurrency not found in the default config"
        (logdir / "config.toml").write_text(text)
        config_file = {"BRIDGE_CONFIG_FILE": str(logdir / "config.toml")}
    env = {**os.environ, **config_file, "BRIDGE_DATABASE_URL": url, "BRIDGE_SECRET_KEY": "k", "BRIDGE_ADMIN_TOKEN": "t",
           "PERSONA_WEBHOOK_SECRETS": SECRET, "FLUENTCRM_BASE_URL": crm.base_url,
           "FLUENTCRM_USERNAME": crm.username, "FLUENTCRM_APP_PASSWORD": crm.app_password,
           "BRIDGE_LOG_LEVEL": "WARNING"}
    for name in ("BRIDGE_INTAKE_SOCKET", "PROMETHEUS_MULTIPROC_DIR", "N8N_WEBHOOK_URL"):
        env.pop(name, None)
    commands = [["serve", "--port", str(port)]] + [["worker"]] * workers
    processes = [subprocess.Popen([sys.executable, "-m", "bridge.app.cli", *command], env=env,
                                  stdout=subprocess.DEVNULL, stderr=(logdir / f"p{n}.log").open("w"))
                 for n, command in enumerate(commands)]
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                requests.get(f"{base}/healthz", timeout=1)
                break
            except requests.RequestException:
                if time.monotonic() > deadline:
                    raise RuntimeError("the bridge did not come up") from None
                time.sleep(0.1)
        time.sleep(1.0)  # the workers' start-up (imports, LISTEN) is not what is measured
        yield base
    finally:
        for process in processes:
            process.send_signal(signal.SIGTERM)
        for process in processes:
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()


class People:
    def __init__(self, prefix: str, config: config_module.Config) -> None:
        self.prefix, self.template = prefix, config.user_types["investor"].template_id
        self.posted_at: dict[str, float] = {}

    def body(self, n: int) -> tuple[str, bytes]:
        email = f"{self.prefix}{n}@example.com"
        return email, samples.encode(samples.inquiry_event(
            event_id=f"evt_{self.prefix}_{n}", inquiry_id=f"inq_{self.prefix}_{n}", status="approved",
            created_at=datetime.now(timezone.utc), email=email, first_name="Bench", template_id=self.template))

    def post(self, base: str, n: int, at: float | None = None) -> None:
        email, body = self.body(n)
        headers = {"Persona-Signature": signature.header_for([SECRET], int(time.time()), body),
                   "Content-Type": "application/json"}
        self.posted_at[email] = at if at is not None else time.monotonic()
        response = requests.post(f"{base}/webhooks/persona", data=body, headers=headers, timeout=30)
        response.raise_for_status()

    def wait_tagged(self, crm: TimedFluentCRM, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if all(email in crm.tagged_at for email in self.posted_at):
                return True
            time.sleep(0.02)
        return False

    def latencies(self, crm: TimedFluentCRM) -> list[float]:
        return sorted(crm.tagged_at[e] - t for e, t in self.posted_at.items() if e in crm.tagged_at)


def pct(values: list[float], q: float) -> float:
    return values[min(len(values) - 1, int(round(q * (len(values) - 1))))] if values else float("nan")


def run_scenario(name: str, args: argparse.Namespace, config: config_module.Config) -> dict:
    workers = 0 if name in ("floor", "burst50") else 2
    crm = TimedFluentCRM(config).start()
    crm.slow_calls(*CALL_SECONDS)
    people = People(name, config)
    result: dict = {"scenario": name, "workers": f"serve + {workers}", "concurrency": args.concurrency or config.concurrency}
    with tempfile.TemporaryDirectory() as logdir, scratch_database(args.postgres_url) as url, \
            bridge(url, crm, workers, Path(logdir), args.concurrency) as base:
        if name == "floor":
            people.post(base, 0)
            people.wait_tagged(crm, 30)
        elif name in ("burst50", "burst500"):
            count = 50 if name == "burst50" else 500
            start = time.monotonic()
            with ThreadPoolExecutor(16) as pool:
                list(pool.map(lambda n: people.post(base, n), range(count)))
            result["sent_seconds"] = round(time.monotonic() - start, 2)
            result["all_tagged"] = people.wait_tagged(crm, 120)
            result["all_tagged_seconds"] = round(max(crm.tagged_at.values()) - start, 2)
            # No scheduling does better than the calls' total time spread over every slot: the
            # floor FluentCRM itself sets at this concurrency (the double's mean call is 0.11 s).
            slots = (args.concurrency or config.concurrency) * (1 + workers)
            result["fluentcrm_bound_seconds"] = round(len(crm.requests) * MEAN_CALL_SECONDS / slots, 2)
        elif name == "outage":
            crm.go_down(503)
            down_at = time.monotonic()
            with ThreadPoolExecutor(8) as pool:
                list(pool.map(lambda n: people.post(base, n), range(100)))
            time.sleep(max(0.0, args.outage_seconds - (time.monotonic() - down_at)))
            crm.come_back_up()
            up_at = time.monotonic()
            result["all_tagged"] = people.wait_tagged(crm, 300)
            result["outage_seconds"] = args.outage_seconds
            result["drained_seconds_after_up"] = round(max(crm.tagged_at.values()) - up_at, 2)
            result["worst_wait_seconds"] = round(max(people.latencies(crm)), 2)
        elif name == "steady":
            total = int(args.rate * args.steady_seconds)
            start = time.monotonic() + 0.5
            with ThreadPoolExecutor(32) as pool:
                for n in range(total):
                    scheduled = start + n / args.rate
                    time.sleep(max(0.0, scheduled - time.monotonic()))
                    pool.submit(people.post, base, n, scheduled)
            result["all_tagged"] = people.wait_tagged(crm, 120)
            result.update(rate=args.rate, seconds=args.steady_seconds)
        latencies = people.latencies(crm)
        result.update(people=len(people.posted_at), p50=round(pct(latencies, 0.5), 3),
                      p95=round(pct(latencies, 0.95), 3), max=round(max(latencies), 3) if latencies else None,
                      fluentcrm_calls=len(crm.requests))
    crm.stop()
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scenarios", default="burst50,burst500,outage,steady")
    parser.add_argument("--outage-seconds", type=float, default=60.0)
    parser.add_argument("--steady-seconds", type=float, default=60.0)
    parser.add_argument("--rate", type=float, default=20.0)
    parser.add_argument("--concurrency", type=int, default=None,
                        help="[worker] concurrency for every process (default: the config's)")
    parser.add_argument("--postgres-url", default=os.environ.get(
        "KYC_BENCH_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"))
    args = parser.parse_args()
    config = config_module.load(None)
    floor = run_scenario("floor", args, config)
    print(f"floor: one person alone, webhook→tag {floor['p50']:.3f} s")
    print("RESULT " + json.dumps(floor))
    for name in args.scenarios.split(","):
        result = run_scenario(name, args, config)
        result["p95_vs_floor"] = round(result["p95"] / floor["p50"], 1) if floor["p50"] else None
        print(f"{name}: " + ", ".join(f"{k}={v}" for k, v in result.items() if k != "scenario"))
        print("RESULT " + json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
