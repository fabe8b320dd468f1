"""The one error type sinks raise, so callers can decide between retrying and giving up."""

from __future__ import annotations

import requests

from collections.abc import Callable


class SinkError(Exception):
    """A remote call failed. `retryable` says whether trying later can succeed; `reason` is a short
    operator-readable text without personal data (e.g. 'FluentCRM answered 401: check
    FLUENTCRM_USERNAME/FLUENTCRM_APP_PASSWORD')."""

    reason: str
    retryable: bool
    status: int | None

    def __init__(self, reason: str, *, retryable: bool, status: int | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retryable = retryable
        self.status = status

    def __str__(self) -> str:
        return self.reason

    def __repr__(self) -> str:
        return f"SinkError({self.reason!r}, retryable={self.retryable!r}, status={self.status!r})"

    def __reduce__(self) -> tuple[Callable[[str, bool, int | None], SinkError], tuple[str, bool, int | None]]:
        # Keyword-only arguments: teach pickle (multiprocessing, queues) to rebuild it.
        return (_rebuild, (self.reason, self.retryable, self.status))


def _rebuild(reason: str, retryable: bool, status: int | None) -> SinkError:
    return SinkError(reason, retryable=retryable, status=status)


def transport_failure(exc: requests.RequestException, *, service: str, what: str, timeout: float,
                      hint: str) -> SinkError:
    """No HTTP answer at all. Only the exception's class is named: its text holds the URL, and a
    URL may carry an email. A malformed URL cannot heal by itself; anything else may."""
    if isinstance(exc, requests.Timeout):
        return SinkError(f"{service} did not answer {what} within {timeout:g}s", retryable=True)
    if isinstance(exc, (requests.exceptions.InvalidURL, requests.exceptions.MissingSchema,
                        requests.exceptions.InvalidSchema)):
        return SinkError(f"cannot reach {service} for {what}: {hint}", retryable=False)
    return SinkError(f"{service} unreachable for {what} ({type(exc).__name__}); if this persists, {hint}",
                     retryable=True)
