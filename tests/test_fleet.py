"""Fleet-wide numbers (issue 15, part 4): /metrics sums every gunicorn process's counters and says
who answered; rate limits shared through redis hold across processes."""

import os
import re
import secrets
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import pytest
import requests

from bridge.persona import samples, signature
from bridge.web import limits
from conftest import WEBHOOK_SECRET, free_port, unavailable, wait_healthy

REPO = Path(__file__).resolve().parents[1]
REDIS_URL = os.environ.get("KYC_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


def _redis_reachable() -> None:
    try:
        import redis
    except ImportError:
        unavailable("the redis client is not installed (pip install kyc-bridge[redis])")
    try:
        redis.Redis.from_url(REDIS_URL, socket_timeout=2).ping()
    except redis.RedisError as exc:
        unavailable(f"redis unreachable at {REDIS_URL}: {type(exc).__name__}")


def _counter(text: str, outcome: str) -> float:
    match = re.search(rf'^kyc_webhooks_total\{{outcome="{outcome}"\}} (\S+)$', text, re.MULTILINE)
    return float(match.group(1)) if match else 0.0


def test_the_rate_limit_line_says_per_process_by_default_and_hides_a_password():
    assert "per process" in limits.describe(limits.storage_uri({}))
    shared = limits.describe(limits.storage_uri({"BRIDGE_RATELIMIT_STORAGE_URI": "redis://:s3cret@cache:6379/0"}))
    assert "redis://cache:6379" in shared and "s3cret" not in shared


@pytest.mark.parametrize("backend", ["sqlite"])
def test_two_gunicorn_processes_count_as_one_and_share_rate_limits(database_url, tmp_path):
    _redis_reachable()
    config = (REPO / "bridge" / "default_config.toml").read_text()
    config = config.replace('rate_limit_per_link = "10 per minute"', 'rate_limit_per_link = "3 per minute"')
    config = config.replace('rate_limit_per_ip = "30 per minute"', 'rate_limit_per_ip = "1000 per minute"')
    (tmp_path / "config.toml").write_text(config)
    port = free_port()
    env = {**os.environ, "BRIDGE_DATABASE_URL": database_url, "BRIDGE_SECRET_KEY": "k", "BRIDGE_ADMIN_TOKEN": "t",
           "PERSONA_WEBHOOK_SECRETS": WEBHOOK_SECRET, "BRIDGE_BIND": f"127.0.0.1:{port}", "BRIDGE_ACCESS_LOG": "",
           "BRIDGE_WEB_WORKERS": "2", "BRIDGE_WEB_THREADS": "4", "TMPDIR": "/tmp",
           "BRIDGE_CONFIG_FILE": str(tmp_path / "config.toml"), "BRIDGE_RATELIMIT_STORAGE_URI": REDIS_URL}
    for name in ("BRIDGE_INTAKE_SOCKET", "PROMETHEUS_MULTIPROC_DIR"):
        env.pop(name, None)
    master = subprocess.Popen([sys.executable, "-m", "gunicorn", "-c", str(REPO / "gunicorn.conf.py")], cwd=tmp_path,
                              env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(base)
        for _ in range(20):  # a new connection each: the kernel spreads them over both processes
            assert requests.post(f"{base}/webhooks/persona", data=b"{}", timeout=10).status_code == 401
        for n in range(5):
            body = samples.encode(samples.inquiry_event(
                event_id=f"evt_fleet{n}", inquiry_id=f"inq_fleet{n}", status="approved",
                created_at=datetime.now(timezone.utc), template_id=None))
            headers = {"Persona-Signature": signature.header_for([WEBHOOK_SECRET], int(time.time()), body),
                       "Content-Type": "application/json"}
            assert requests.post(f"{base}/webhooks/persona", data=body, headers=headers, timeout=10).status_code == 200

        answered_by: set[str] = set()
        for _ in range(200):  # until both processes have answered a scrape
            response = requests.get(f"{base}/metrics", timeout=10)
            text = response.text
            assert (_counter(text, "unauthorized"), _counter(text, "stored")) == (20, 5)
            pid = re.search(r'^kyc_bridge_scrape_info\{counters="all processes",host="([^"]+)",pid="(\d+)"', text,
                            re.MULTILINE)
            assert pid and response.headers["X-KYC-Bridge-Host"] == pid.group(1)
            answered_by.add(pid.group(2))
            if len(answered_by) == 2:
                break
        assert len(answered_by) == 2, "only one process ever answered"

        token = secrets.token_urlsafe(16)  # a link nobody else counts against
        statuses = [requests.get(f"{base}/verify/{token}", timeout=10).status_code for _ in range(10)]
        assert statuses.count(429) == 7, statuses  # 3 per minute for the link, across both processes
    finally:
        master.terminate()
        output = master.communicate(timeout=30)[0]
    assert "rate limits: shared through redis://127.0.0.1:6379" in output
