"""How the API writes times: ISO 8601 in UTC with a `Z`. Pure."""

from __future__ import annotations

from datetime import datetime


def iso_utc(value: datetime | None) -> str | None:
    return value.isoformat().replace("+00:00", "Z") if value else None
