"""Per-sink circuit breakers for one worker process. Pure: the caller passes the time and does the I/O.

Closed: jobs for the sink run. After `failures` retryable failures in a row it opens: the worker
stops taking the sink's jobs (they keep their place in the queue) and lets one probe job through
every `probe_seconds`. The probe's success closes it, and the caller then makes the sink's whole
backlog due at once instead of each job waiting out its own backoff.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

CLOSED, OPEN, PROBING = "closed", "open", "probing"


@dataclass(frozen=True)
class Change:
    sink: str
    opened: bool  # True: the sink went down; False: it is back
    reason: str | None
    failures: int


class Breaker:
    def __init__(self, sink: str, *, failures: int, probe_seconds: float) -> None:
        self.sink = sink
        self.threshold = failures
        self.probe_seconds = probe_seconds
        self.state = CLOSED
        self.failures = 0
        self.next_probe = 0.0
        self._lock = threading.Lock()  # the worker's job threads report concurrently

    def admits(self, now: float) -> bool:
        """Whether the worker may take this sink's jobs now (all when closed, the probe when due)."""
        with self._lock:
            return self.state == CLOSED

    def take_probe(self, now: float) -> bool:
        """Claim the one probe slot if the sink is down and its probe time has come."""
        with self._lock:
            if self.state == OPEN and now >= self.next_probe:
                self.state = PROBING
                return True
            return False

    def probe_not_started(self, now: float) -> None:
        """No job of the sink was due for the probe: look again later."""
        with self._lock:
            if self.state == PROBING:
                self.state, self.next_probe = OPEN, now + self.probe_seconds

    def success(self) -> Change | None:
        with self._lock:
            was_down = self.state != CLOSED
            failures, self.state, self.failures = self.failures, CLOSED, 0
        return Change(self.sink, False, None, failures) if was_down else None

    def failure(self, reason: str, now: float) -> Change | None:
        """A retryable failure; returns the change when this one opened the circuit."""
        with self._lock:
            self.failures += 1
            if self.state == CLOSED and self.failures >= self.threshold:
                self.state, self.next_probe = OPEN, now + self.probe_seconds
                return Change(self.sink, True, reason, self.failures)
            if self.state == PROBING:
                self.state, self.next_probe = OPEN, now + self.probe_seconds
            return None
