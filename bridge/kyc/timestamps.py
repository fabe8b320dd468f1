"""How the API writes times: ISO 8601 in UTC with a `Z`. Pure."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone


def iso_utc(value: datetime | None) -> str | None:
    return value.isoformat().replace("+00:00", "Z") if value else None


_WINDOW_UNITS = {"m": 60, "h": 3600, "d": 86400}


def parse_since(text: str, now: datetime) -> datetime:
    """A window start: `72h`, `15m`, `7d` back from `now`, or an ISO 8601 time with its zone
    (`2026-12-01T00:00:00Z`). A time without a zone is refused: it would mean different moments
    on different machines. ValueError names the accepted forms."""
    value = text.strip()
    if len(value) > 1 and value[-1] in _WINDOW_UNITS and value[:-1].isascii() and value[:-1].isdigit():
        return now - timedelta(seconds=int(value[:-1]) * _WINDOW_UNITS[value[-1]])
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise ValueError(f"{text!r} is neither a window such as 72h, 15m or 7d nor an ISO 8601 time") from None
    if moment.tzinfo is None:
        raise ValueError(f"{text!r} has no zone: add Z for UTC or an offset such as +01:00")
    return moment.astimezone(timezone.utc)
