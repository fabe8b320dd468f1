"""Lease rows (`kyc_leases`): one process at a time runs a named upkeep task, across processes and
hosts; the row also remembers when the task last ran.

A lease is taken under the row's lock (SELECT … FOR UPDATE on PostgreSQL and MariaDB; SQLite's
BEGIN IMMEDIATE serialises writers), so of two processes asking at once exactly one gets it. A
holder that dies keeps the lease only until `expires_at`; then another process takes it over.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from bridge.store.models import Lease


@dataclass(frozen=True)
class LeaseState:
    name: str
    holder: str | None
    expires_at: datetime | None
    last_run_at: datetime | None

    def held_by_other(self, holder: str, now: datetime) -> bool:
        return self.holder not in (None, holder) and self.expires_at is not None and self.expires_at > now


def _locked(session: Session, name: str) -> Lease:
    """The task's row, locked until the transaction ends; created on first use."""
    row = session.scalars(select(Lease).where(Lease.name == name).with_for_update()).one_or_none()
    if row is not None:
        return row
    try:
        with session.begin_nested():  # a concurrent first use inserts too: its row wins, we lock it
            session.add(Lease(name=name))
    except IntegrityError:
        pass
    return session.scalars(select(Lease).where(Lease.name == name).with_for_update()).one()


def try_take(session: Session, name: str, holder: str, *, now: datetime, ttl: timedelta,
             wanted: Callable[[LeaseState], bool]) -> tuple[bool, LeaseState]:
    """Take the lease when nobody else holds it and `wanted(state)` says so (e.g. the task is due),
    in the caller's transaction. Returns whether it was taken, and the state seen."""
    row = _locked(session, name)
    state = LeaseState(row.name, row.holder, row.expires_at, row.last_run_at)
    if state.held_by_other(holder, now) or not wanted(state):
        return False, state
    row.holder, row.expires_at = holder, now + ttl
    return True, state


def finish(session: Session, name: str, holder: str, *, ran_at: datetime | None) -> bool:
    """Give the lease back, recording the run (`ran_at` None: a failed run, due again). False when
    it is no longer ours (it ran out and another process took it over)."""
    values: dict[str, object] = {"holder": None, "expires_at": None}
    if ran_at is not None:
        values["last_run_at"] = ran_at
    result = session.execute(update(Lease).where(Lease.name == name, Lease.holder == holder).values(**values))
    return result.rowcount == 1
