"""What `serve`, `worker` and gunicorn check before they start: the database is not behind the
revision this code expects (or is migrated first when asked), so a forgotten `db upgrade` is one
clear line at start instead of a 503 for every webhook."""

from __future__ import annotations

from collections.abc import Callable, Mapping

from bridge.settings import DEFAULT_DATABASE_URL
from bridge.store import migrate
from bridge.store.engine import StoreUnavailable


def database_url(environ: Mapping[str, str]) -> str:
    return environ.get("BRIDGE_DATABASE_URL", "").strip() or DEFAULT_DATABASE_URL


def schema_problem(environ: Mapping[str, str], *, warn: Callable[[str], None], migrate_first: bool = False) -> str | None:
    """One line saying why the process must not start, or None. An unreachable store is not such a
    reason (it may come up after us; /readyz answers 503 meanwhile): `warn` is told instead."""
    url = database_url(environ)
    try:
        if migrate_first:
            migrate.upgrade(url)
        state = migrate.check(url)
        if state.warning:
            warn(state.warning)
        return state.problem
    except migrate.MigrationLockTimeout as exc:
        return str(exc)
    except StoreUnavailable as exc:
        if migrate_first:
            return f"cannot migrate: store unavailable ({exc})"
        warn(f"store unavailable ({exc}): starting anyway; /readyz answers 503 until it is back")
        return None
