"""The one error type sinks raise, so callers can decide between retrying and giving up."""

from __future__ import annotations

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
