"""Logging set-up. Our own log lines carry ids only; the filter below is a second line of defence
that masks anything shaped like an email address (e.g. in a library's message or an access log)."""

from __future__ import annotations

import logging
import re

# Anything of the shape local@domain, whatever its characters (`*`, `'`, `#`, `\`, non-ASCII, percent-
# encoded): a word runs until whitespace or a character that delimits words in log lines and URLs.
_WORD = r"[^\s\"<>()\[\]{},;/?&=@]"
_EMAIL = re.compile(rf"{_WORD}+(?:@|%40)(?:{_WORD}|%40)+", re.IGNORECASE)
# The path segment after /contacts/ is an address (GET /api/v1/contacts/<email>/kyc), even a mangled one.
_CONTACT_SEGMENT = re.compile(r"(/contacts/)[^\s\"]+?(?=/kyc\b|[\s\"]|$)")


class RedactEmails(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if "@" not in message and "%40" not in message and "/contacts/" not in message:
            return True  # the common case, without the regexes
        redacted = _EMAIL.sub("[email]", _CONTACT_SEGMENT.sub(r"\1[email]", message))
        if redacted != message:
            record.msg, record.args = redacted, None
        return True


LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


class LogLevelError(ValueError):
    pass


def level_named(name: str) -> str:
    """The level for `name` (any case); LogLevelError naming the choices otherwise."""
    level = name.strip().upper()
    if level not in LEVELS:
        raise LogLevelError(f"{name!r} is not a log level (one of {', '.join(known.lower() for known in LEVELS)})")
    return level


def configure(level: str = "INFO") -> None:
    level = level_named(level)  # before touching any handler: a bad level changes nothing
    root = logging.getLogger()
    if not any(isinstance(f, RedactEmails) for h in root.handlers for f in h.filters):
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        handler.addFilter(RedactEmails())
        root.addHandler(handler)
    root.setLevel(level)
    # urllib3 logs request URLs at DEBUG; FluentCRM's lookup URL carries the email.
    logging.getLogger("urllib3").setLevel(max(logging.INFO, root.level))
    for handler in root.handlers:
        if not any(isinstance(f, RedactEmails) for f in handler.filters):
            handler.addFilter(RedactEmails())
