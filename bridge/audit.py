"""Hash-chained audit log: each entry's SHA-256 covers the previous hash and the entry itself.

Entries hold ids and statuses only (no emails, names or payloads), so erasing a person never
requires rewriting the chain.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Union

from sqlalchemy import Connection, bindparam, insert, select, update
from sqlalchemy.orm import Session

from bridge.store.driver_sql import DriverStatement, pipelined
from bridge.store.models import AuditEntry, AuditHead

GENESIS = "0" * 64
_HEAD = "kyc_audit_head"  # .info key (session or connection): (transaction, seq, hash) of the head it holds
HEAD_ID = 1
# Only these detail keys may be written: a guard against personal data slipping in.
ALLOWED_DETAIL_KEYS = frozenset({
    "event_id", "event", "inquiry_id", "from", "to", "job_id", "kind", "attempt", "outcome",
    "user_type", "level", "reason", "count",
})
DetailValue = Union[str, int, None]


def canonical_detail(detail: dict[str, DetailValue]) -> str:
    unknown = set(detail) - ALLOWED_DETAIL_KEYS
    if unknown:
        raise ValueError(f"audit detail keys not allowed: {sorted(unknown)}")
    return json.dumps(detail, sort_keys=True, separators=(",", ":"))


def entry_hash(prev_hash: str, seq: int, at: datetime, action: str, subject: str, detail: str) -> str:
    material = "\n".join([prev_hash, str(seq), at.isoformat(timespec="microseconds"), action, subject, detail])
    return hashlib.sha256(material.encode()).hexdigest()


Entry = tuple[str, str, dict[str, DetailValue]]  # action, subject, detail

# Built once: webhook intake appends in every transaction.
_head = AuditHead.__table__
_LOCK_HEAD = DriverStatement(
    select(_head.c.seq, _head.c.hash).where(_head.c.id == bindparam("head_id")).with_for_update())
_INSERT_ENTRIES = DriverStatement(insert(AuditEntry.__table__))
_MOVE_HEAD = DriverStatement(update(_head).where(_head.c.id == bindparam("head_id"))
                             .values(seq=bindparam("head_seq"), hash=bindparam("head_hash")))


def send_head_lock(connection: Connection) -> Callable[[], None]:
    """Take the head lock inside a `driver_sql.pipelined` block, with the statements before it;
    call the result after the block. The next append_many in this transaction then uses the
    head read here instead of asking for it (one round trip less)."""
    pending = _LOCK_HEAD.send(connection, {"head_id": HEAD_ID})
    transaction = connection.get_transaction()

    def hold() -> None:
        [head] = pending.all()
        connection.info[_HEAD] = (transaction, head["seq"], head["hash"])
    return hold


def append(session: Session, action: str, subject: str, detail: dict[str, DetailValue], *, at: datetime) -> int:
    """Append one entry in the caller's transaction; see append_many."""
    return append_many(session, [(action, subject, detail)], at=at)


def append_many(target: Session | Connection, entries: Sequence[Entry], *, at: datetime) -> int:
    """Append entries in order in the caller's transaction; returns the last seq. The head row lock
    orders appends across processes: it is taken once per transaction and held until commit, so
    callers take it as late as they can."""
    if not entries:
        raise ValueError("nothing to append")
    bodies = [canonical_detail(detail) for _, _, detail in entries]  # refuse before writing anything
    connection = target.connection() if isinstance(target, Session) else target
    transaction = target.get_transaction()
    held = target.info.get(_HEAD)
    if held is not None and held[0] is transaction:
        seq, prev_hash = held[1], held[2]
    else:
        seq, prev_hash = _LOCK_HEAD.run(connection, {"head_id": HEAD_ID}).one()
    rows = []
    for (action, subject, _), body in zip(entries, bodies):
        seq += 1
        digest = entry_hash(prev_hash, seq, at, action, subject, body)
        rows.append({"seq": seq, "at": at, "action": action, "subject": subject, "detail": body,
                     "prev_hash": prev_hash, "hash": digest})
        prev_hash = digest
    with pipelined(connection):
        _INSERT_ENTRIES.run(connection, rows)
        _MOVE_HEAD.run(connection, {"head_id": HEAD_ID, "head_seq": seq, "head_hash": prev_hash})
    target.info[_HEAD] = (transaction, seq, prev_hash)
    return seq


@dataclass(frozen=True)
class ChainReport:
    checked: int
    first_broken: int | None  # seq of the first entry that does not verify
    problem: str | None

    @property
    def ok(self) -> bool:
        return self.first_broken is None


def verify(session: Session, *, batch: int = 1000) -> ChainReport:
    prev_hash, expected_seq, checked, last_seq = GENESIS, 1, 0, 0
    while True:
        rows = session.execute(  # plain rows, not ORM objects: a full check reads every entry
            select(*AuditEntry.__table__.c).where(AuditEntry.seq > last_seq).order_by(AuditEntry.seq).limit(batch)
        ).all()
        if not rows:
            break
        for entry in rows:
            if entry.seq != expected_seq:
                return ChainReport(checked, expected_seq, f"entry {expected_seq} is missing")
            if entry.prev_hash != prev_hash:
                return ChainReport(checked, entry.seq, "prev_hash does not match the previous entry")
            digest = entry_hash(prev_hash, entry.seq, entry.at, entry.action, entry.subject, entry.detail)
            if digest != entry.hash:
                return ChainReport(checked, entry.seq, "hash does not match the entry's content")
            prev_hash, expected_seq, last_seq, checked = entry.hash, entry.seq + 1, entry.seq, checked + 1
    head = session.get(AuditHead, HEAD_ID)
    if head is not None and (head.seq != last_seq or head.hash != prev_hash):
        return ChainReport(checked, last_seq + 1, "chain ends before the recorded head (entries removed)")
    return ChainReport(checked, None, None)
