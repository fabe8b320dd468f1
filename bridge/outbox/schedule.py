"""When an upkeep task is due (pure: standard library only, no I/O).

A task with an interval runs when it never ran, or when the interval has passed since its last
run started. The last run is shared by every process through the store (bridge/store/leases.py),
so `serve` and any number of `worker`s together run each task once per interval.
"""

from __future__ import annotations

from datetime import datetime, timedelta


def is_due(last_run_at: datetime | None, every: timedelta, now: datetime) -> bool:
    return last_run_at is None or now >= last_run_at + every


def next_look(last_run_at: datetime | None, every: timedelta, lease_expires_at: datetime | None,
              now: datetime) -> datetime:
    """When a process should next ask the store about a task: when it falls due, or, while another
    process holds it, when that lease runs out (the holder may have died). Asking earlier can only
    find it not due: the last run only ever moves later."""
    due_at = now if last_run_at is None else last_run_at + every
    if lease_expires_at is not None and lease_expires_at > now:
        due_at = max(due_at, lease_expires_at)
    return max(due_at, now)
