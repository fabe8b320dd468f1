"""A worker process for the worker tests (run as a script, killed or left to finish by the test).

usage: child_worker.py MODE DATABASE_URL LOG_FILE
  MODE=hang   claim jobs, note the claim in LOG_FILE, then hang inside the handler (to be kill -9'd)
  MODE=record run every due job, appending "<job id> <pid>" to LOG_FILE, until none is due
"""

import os
import sys
import time
from dataclasses import replace

from bridge import config as config_module
from bridge.runtime import Runtime
from bridge.settings import Settings
from bridge.outbox.worker import Worker

mode, url, log_file = sys.argv[1:4]
settings = Settings.from_env({"BRIDGE_DATABASE_URL": url, "BRIDGE_SECRET_KEY": "k", "BRIDGE_ADMIN_TOKEN": "t",
                              "PERSONA_WEBHOOK_SECRETS": "wbhsec_x"})
config = replace(config_module.load(None), lease_seconds=int(os.environ.get("LEASE_SECONDS", "60")))
runtime = Runtime.build(settings, config)


def note(line: str) -> None:
    with open(log_file, "a") as handle:  # O_APPEND: lines from several processes never interleave
        handle.write(line + "\n")
        handle.flush()
        os.fsync(handle.fileno())


def hang(job):
    note(f"claimed {job.id} attempt {job.attempts}")
    time.sleep(3600)


def record(job):
    note(f"{job.id} {os.getpid()}")
    time.sleep(0.002)  # widen the window in which two workers could collide
    return "recorded"


handler = hang if mode == "hang" else record
worker = Worker(runtime, {"test.job": handler}, batch=int(os.environ.get("BATCH", "5")))
if mode == "hang":
    worker.run_once()
else:
    deadline = time.monotonic() + 120
    idle = 0
    while time.monotonic() < deadline and idle < 3:
        idle = 0 if worker.run_once() else idle + 1
        time.sleep(0.05 if idle else 0)
