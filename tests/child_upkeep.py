"""A `kyc-bridge worker`-like process for the upkeep tests: Worker.run_forever with scheduled
`remind` every hour, whose task is replaced by one that notes itself and holds until told.

usage: child_upkeep.py DATABASE_URL DIR
  waits for DIR/go, then runs the worker loop; the task appends "started <pid>" to DIR/log and
  holds until DIR/release exists; every attempt to run the task appends "ran|skipped <pid>";
  exits when DIR/stop exists. LEASE_TTL (default "15m") is the `[schedule] lease_ttl`.
"""

import os
import sys
import threading
import time
from dataclasses import replace
from pathlib import Path

from bridge import config as config_module
from bridge.outbox.upkeep import TaskResult, Upkeep
from bridge.outbox.worker import Worker
from bridge.runtime import Runtime
from bridge.settings import Settings

url, folder = sys.argv[1], Path(sys.argv[2])
settings = Settings.from_env({"BRIDGE_DATABASE_URL": url, "BRIDGE_SECRET_KEY": "k", "BRIDGE_ADMIN_TOKEN": "t",
                              "PERSONA_WEBHOOK_SECRETS": "wbhsec_x"})
base = config_module.load(None)
ttl = config_module.duration_seconds(os.environ.get("LEASE_TTL", "15m"))
config = replace(base, poll_interval_seconds=0.02,
                 schedule=config_module.ScheduleConfig({"remind": 3600}, lease_ttl_seconds=ttl))
runtime = Runtime.build(settings, config)


def note(line: str) -> None:
    with open(folder / "log", "a") as handle:  # O_APPEND: lines from several processes never interleave
        handle.write(line + "\n")
        handle.flush()
        os.fsync(handle.fileno())


def wait_for(name: str) -> None:
    while not (folder / name).exists():
        time.sleep(0.01)


def holding_task(runtime, now):
    note(f"started {os.getpid()}")
    wait_for("release")
    return TaskResult(1, "held")


class NotingUpkeep(Upkeep):
    def run_if_due(self, name, now):
        ran = super().run_if_due(name, now)
        note(f"{'ran' if ran else 'skipped'} {os.getpid()}")
        return ran


stop = threading.Event()
threading.Thread(target=lambda: (wait_for("stop"), stop.set()), daemon=True).start()
wait_for("go")
Worker(runtime, {}, upkeep=NotingUpkeep(runtime, {"remind": holding_task})).run_forever(stop)
