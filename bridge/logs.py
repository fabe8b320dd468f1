"""Logging set-up. Our own log lines carry ids only; the filter below is a second line of defence
that masks anything shaped like an email address (e.g. in a library's message or an access log)."""

from __future__ import annotations

import logging
import re

_EMAIL = re.compile(r"[A-Za-z0-9._%+\-]+(?:@|%40)[A-Za-z0-9.\-]+\.[A-Za-z]{2,}")


class RedactEmails(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if "@" not in message and "%40" not in message:  # the common case, without the regex
            return True
        redacted = _EMAIL.sub("[email]", message)
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
        raise LogLevelError(f"{name!r} is not a log level (one of {', '.join(l.lower() for l in LEVELS)})")
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
