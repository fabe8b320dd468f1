"""Text the store can hold, whatever arrives. Pure.

PostgreSQL refuses a NUL character in any text, every store refuses a lone UTF-16 surrogate
(Python lets JSON's "\\ud800" through), and MariaDB and PostgreSQL refuse a value longer than its
column where SQLite keeps it. Identifiers that do not fit are refused (`storable`); display text
such as a first name is made to fit (`display_text`), so a cosmetic field never costs an event.
"""

from __future__ import annotations


def storable(value: str) -> bool:
    """No NUL and no lone surrogate: every store can hold it (lengths aside)."""
    if value.isascii():
        return "\x00" not in value
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return "\x00" not in value


def display_text(value: str | None, max_length: int) -> str | None:
    """`value` without NULs and lone surrogates, cut to `max_length` characters; None when nothing is left."""
    if value is None:
        return None
    if not storable(value):
        value = value.replace("\x00", "").encode("utf-8", "replace").decode("utf-8")
    value = value[:max_length].strip()
    return value or None
