"""Before a migrate-store run writes anything: is the source at head, is the target ours?"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from bridge.store import migrate
from bridge.store.models import AuditEntry, Base

AUDIT_LOG = AuditEntry.__tablename__
TARGET_MARK = "kyc-bridge migrate-store target"  # COMMENT ON TABLE kyc_audit_log of a target we fill


class Refusal(Exception):
    """The run cannot start; the message is one line saying why (exit status 2)."""


def revision(conn: Connection) -> str | None:
    # Read as start-up reads it (a MigrationContext would log two INFO lines above the refusal).
    current = migrate.schema_state(conn).current
    return current[0] if len(current) == 1 else None


def chain_start(conn: Connection) -> tuple[str | None, int]:
    """(hash of audit entry 1, last seq). Entry 1's hash covers its time: it names one bridge."""
    if not sa.inspect(conn).has_table(AUDIT_LOG):
        return None, 0
    first = conn.execute(sa.text(f"SELECT hash FROM {AUDIT_LOG} WHERE seq = 1")).scalar()
    last = conn.execute(sa.text(f"SELECT COALESCE(MAX(seq), 0) FROM {AUDIT_LOG}")).scalar()
    return first, int(last or 0)


def holds_rows(conn: Connection) -> bool:
    """Rows a fresh `db upgrade` does not put there: any row in a table with generated ids."""
    inspector = sa.inspect(conn)
    for table in Base.metadata.sorted_tables:
        if table.autoincrement_column is not None and inspector.has_table(table.name):
            if conn.execute(sa.select(sa.literal(1)).select_from(table).limit(1)).first():
                return True
    return False


def marked(conn: Connection) -> bool:
    comment = conn.execute(sa.text("SELECT obj_description(to_regclass(:t), 'pg_class')"), {"t": AUDIT_LOG}).scalar()
    return comment == TARGET_MARK


def check_and_prepare(source: Connection, target: Engine, target_url: str, *, verify_only: bool) -> str:
    """Refuse unless the source is at head and the target is empty or holds this source's copy;
    then bring the target to the source's revision. Returns the revision."""
    at = revision(source)
    heads = migrate.current_heads(target_url)
    if at is None:
        raise Refusal("the source has no bridge schema (no Alembic revision): check BRIDGE_DATABASE_URL")
    if at not in heads:
        raise Refusal(f"the source is at revision {at}, not at head {', '.join(heads)}: "
                      "run `kyc-bridge db upgrade` on the source first")
    source_start, source_last = chain_start(source)
    with target.connect() as conn:
        target_at = revision(conn)
        target_start, target_last = chain_start(conn)
        if target_start is not None and target_start != source_start:
            raise Refusal("the target holds another bridge's data (its audit chain starts with a different entry)")
        if target_last > source_last:
            raise Refusal(f"the target's audit chain is ahead of the source's ({target_last} > {source_last} "
                          "entries): a bridge has run on the target since the copy")
        if target_start is None and target_at is not None and not marked(conn) and holds_rows(conn):
            raise Refusal("the target holds bridge data that migrate-store did not copy")
    if verify_only:
        if target_at != at:
            raise Refusal(f"the target is at revision {target_at}, the source at {at}: "
                          "run migrate-store without --verify-only first")
        return at
    if target_at != at:
        try:
            migrate.upgrade(target_url, at)
        except Exception as exc:  # an unknown (newer) revision on the target, missing rights
            first_line = (str(exc).splitlines() or [""])[0]
            raise Refusal(f"cannot bring the target to revision {at}: {type(exc).__name__}: {first_line}") from exc
    with target.begin() as conn:
        conn.execute(sa.text(f"COMMENT ON TABLE {AUDIT_LOG} IS '{TARGET_MARK}'"))
    return at
