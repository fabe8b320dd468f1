"""Hash-chained audit log: each entry's SHA-256 covers the previous hash and the entry itself.

Entries hold ids and statuses only (no emails, names or payloads), so erasing a person never
requires rewriting the chain.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Union

from sqlalchemy import Connection, Row, bindparam, insert, select, update
from sqlalchemy.orm import Session

from bridge.store.driver_sql import DriverStatement, pipelined
from bridge.store.models import AuditEntry, AuditHead

GENESIS = "0" * 64
_HEAD = "kyc_audit_head"  # .info key (session or connection): (transaction, seq, hash) of the head it holds
HEAD_ID = 1
# Only these detail keys may be written: a guard against personal data slipping in.
ALLOWED_DETAIL_KEYS = frozenset({
    "event_id", "event", "inquiry_id", "from", "to", "job_id", "kind", "attempt", "outcome",
    "user_type", "level", "reason", "count", "source",
})
DetailValue = Union[str, int, None]


def canonical_detail(detail: dict[str, DetailValue]) -> str:
    unknown = set(detail) - ALLOWED_DETAIL_KEYS
    if unknown:
        raise ValueError(f"audit detail keys not allowed: {sorted(unknown)}")
    return json.dumps(detail, sort_keys=True, separators=(",", ":"))


def entry_hash(prev_hash: str, seq: int, at: datetime, action: str, subject: str, detail: str) -> str:
    return link_hash(prev_hash, seq, at_text(at), action, subject, detail)


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


def at_text(at: datetime) -> str:
    """How an entry's time enters its hash (and the export): ISO 8601, microseconds, +00:00."""
    return at.isoformat(timespec="microseconds")


def link_hash(prev_hash: str, seq: int, at: str, action: str, subject: str, detail: str) -> str:
    """sha256 of "prev_hash\\nseq\\nat\\naction\\nsubject\\ndetail" (UTF-8), hex: what an auditor recomputes."""
    return hashlib.sha256("\n".join([prev_hash, str(seq), at, action, subject, detail]).encode()).hexdigest()


def exported(entry: Row[Any]) -> dict[str, DetailValue]:
    """One entry as `kyc-bridge audit export` writes it: the fields its hash covers, as hashed."""
    return {"seq": entry.seq, "at": at_text(entry.at), "action": entry.action, "subject": entry.subject,
            "detail": entry.detail, "prev_hash": entry.prev_hash, "hash": entry.hash}


@dataclass(frozen=True)
class Head:
    seq: int
    hash: str

    def as_json(self) -> dict[str, dict[str, DetailValue]]:
        return {"head": {"seq": self.seq, "hash": self.hash}}


class _Chain:
    """Walks entries in order and checks each link; the one place the chain rule is applied."""

    def __init__(self, prev_hash: str = GENESIS, next_seq: int = 1):
        self.prev_hash, self.next_seq, self.checked = prev_hash, next_seq, 0
        self.broken: ChainReport | None = None
        self.hashes: dict[int, str] = {}

    def add(self, seq: int, at: str, action: str, subject: str, detail: str, prev_hash: str, digest: str) -> bool:
        if seq != self.next_seq:
            self.broken = ChainReport(self.checked, self.next_seq, f"entry {self.next_seq} is missing")
        elif prev_hash != self.prev_hash:
            self.broken = ChainReport(self.checked, seq, "prev_hash does not match the previous entry")
        elif link_hash(prev_hash, seq, at, action, subject, detail) != digest:
            self.broken = ChainReport(self.checked, seq, "hash does not match the entry's content")
        if self.broken is not None:
            return False
        self.prev_hash, self.next_seq, self.checked = digest, seq + 1, self.checked + 1
        self.hashes[seq] = digest
        return True

    def end(self, head: Head | None) -> ChainReport:
        if self.broken is not None:
            return self.broken
        last_seq = self.next_seq - 1
        if head is not None and (head.seq != last_seq or head.hash != self.prev_hash):
            return ChainReport(self.checked, last_seq + 1, "chain ends before the recorded head (entries removed)")
        return ChainReport(self.checked, None, None)


def read_head(session: Session) -> Head | None:
    head = session.get(AuditHead, HEAD_ID)
    return None if head is None else Head(head.seq, head.hash)


def entries_from(session: Session, first_seq: int = 1, *, until_seq: int | None = None,
                 batch: int = 1000) -> Iterator[Row[Any]]:
    """The entries from `first_seq` on (up to `until_seq`), in order, read in batches."""
    last_seq = first_seq - 1
    while True:
        # plain rows, not ORM objects: a full check reads every entry (2.6x faster on 40,000 entries)
        query = select(*AuditEntry.__table__.c).where(AuditEntry.seq > last_seq)
        if until_seq is not None:
            query = query.where(AuditEntry.seq <= until_seq)
        rows = session.execute(query.order_by(AuditEntry.seq).limit(batch)).all()
        if not rows:
            return
        yield from rows
        last_seq = rows[-1].seq


def first_seq_at(session: Session, at: datetime) -> int:
    """The seq of the first entry written at or after `at` (past the head when there is none)."""
    found = session.scalar(select(AuditEntry.seq).where(AuditEntry.at >= at).order_by(AuditEntry.seq).limit(1))
    if found is not None:
        return int(found)
    head = read_head(session)
    return (head.seq if head else 0) + 1


def verify(session: Session, *, batch: int = 1000, anchor: Head | None = None,
           progress: Callable[[int], None] | None = None) -> ChainReport:
    """Check every link and the head. `anchor`: a head saved earlier outside the database; the entry
    at its seq must still have its hash, so a rewrite of the entries after some point (hashes
    recomputed, head moved) is caught when the anchor lies after that point.
    The head is read first and the chain checked up to it: on a live store, entries committed
    while verify reads are not mistaken for a chain that ends short of its head."""
    chain = _Chain()
    head = read_head(session)
    for entry in entries_from(session, until_seq=head.seq if head else None, batch=batch):
        if not chain.add(entry.seq, at_text(entry.at), entry.action, entry.subject, entry.detail,
                         entry.prev_hash, entry.hash):
            break
        if progress is not None:
            progress(1)
    report = chain.end(head)
    return report if not report.ok or anchor is None else _against_anchor(report, chain, anchor)


def _against_anchor(report: ChainReport, chain: _Chain, anchor: Head) -> ChainReport:
    if anchor.seq == 0:
        return report
    if anchor.seq not in chain.hashes:
        return ChainReport(report.checked, anchor.seq,
                           f"entry {anchor.seq} of the anchor is not in the chain (entries removed)")
    if chain.hashes[anchor.seq] != anchor.hash:
        return ChainReport(report.checked, anchor.seq,
                           "hash differs from the anchor saved earlier (the chain was rewritten up to here)")
    return report


def verify_export(lines: Iterable[str], *, anchor: Head | None = None) -> ChainReport:
    """Check a `kyc-bridge audit export` file without the database: every entry's hash and link,
    and that the chain ends at the head written last. A partial export (--since) starts from its
    first entry's prev_hash; a full one from the genesis hash."""
    chain: _Chain | None = None
    head: Head | None = None

    def unreadable(problem: str) -> ChainReport:  # not ok: first_broken names where reading stopped
        return ChainReport(chain.checked if chain else 0, chain.next_seq if chain else 1, problem)

    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
            if "head" in record:
                head = Head(int(record["head"]["seq"]), str(record["head"]["hash"]))
                continue
            if chain is None:
                start = int(record["seq"])
                chain = _Chain(GENESIS if start == 1 else str(record["prev_hash"]), start)
            if not chain.add(int(record["seq"]), record["at"], record["action"], record["subject"],
                             record["detail"], record["prev_hash"], record["hash"]):
                return chain.end(None)
        except (ValueError, KeyError, TypeError):
            return unreadable(f"line {number} is not an export record")
    if head is None:
        return unreadable("no head line (the export is cut short)")
    report = (chain or _Chain(head.hash, head.seq + 1)).end(head)
    return report if not report.ok or anchor is None or chain is None else _against_anchor(report, chain, anchor)


def read_anchor(lines: Iterable[str]) -> Head:
    """The head in an anchor file (`audit anchor`) or an export (its last line); ValueError if none."""
    head = None
    for line in lines:
        if line.strip():
            try:
                record = json.loads(line)
            except ValueError:
                continue
            if isinstance(record, dict) and isinstance(record.get("head"), dict):
                head = record["head"]
    if head is None:
        raise ValueError("no head line")
    try:
        return Head(int(head["seq"]), str(head["hash"]))
    except (KeyError, TypeError, ValueError):
        raise ValueError("the head line has no seq and hash") from None
