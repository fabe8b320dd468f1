"""Group commit for webhook intake: events arriving together share one transaction.

A request that finds nobody committing becomes the leader: it stores its own event, and whatever
else is waiting, with `ingest.ingest_many` in one transaction. Requests arriving meanwhile queue
up; when the leader's commit is done it wakes them with their results and hands the lead to the
first of the next queue, which commits that whole queue as one batch. A 200 still means "durably
stored": nobody learns its result before the COMMIT that holds its event.

Alone, an event is committed at once by its own request thread (no hand-off to another thread,
which costs a wake-up and a wait for the GIL); under load one commit (one fsync, one audit-head
lock) serves many events.
"""

from __future__ import annotations

import logging
import threading
from collections import deque

from bridge.intake import ingest
from bridge.persona import events
from bridge.persona.events import PersonaEvent
from bridge.store.engine import StoreUnavailable

log = logging.getLogger(__name__)

MAX_BATCH = 64
WAIT_SECONDS = 30  # Persona gives up after 5 s anyway; past this the store is hanging


class _Waiting:
    __slots__ = ("body", "error", "event", "lead", "result", "woken")

    def __init__(self, event: PersonaEvent, body: bytes):
        self.event, self.body = event, body
        self.woken = threading.Event()
        self.result: ingest.IngestResult | None = None
        self.error: BaseException | None = None
        self.lead = False  # woken to commit the next batch rather than with a result


class GroupCommitter:
    def __init__(self, runtime) -> None:  # type: ignore[no-untyped-def]
        self.runtime = runtime
        self._lock = threading.Lock()
        self._queue: deque[_Waiting] = deque()
        self._committing = False

    def submit(self, body: bytes) -> ingest.IngestResult:
        """Store one verified webhook body (with whatever else is waiting). Raises
        events.EventFormatError if it is not a Persona event, StoreUnavailable on store failure."""
        me = _Waiting(ingest.parse(body), body)
        with self._lock:
            self._queue.append(me)
            lead = not self._committing
            self._committing = True
        while True:
            if lead:
                self._commit_next_batch()
            elif not me.woken.wait(WAIT_SECONDS):
                self._give_up(me)
            if me.lead and me.result is None and me.error is None:
                me.lead, lead = False, True
                me.woken.clear()
                continue
            if me.error is not None:
                raise me.error
            assert me.result is not None
            return me.result

    def _give_up(self, me: _Waiting) -> None:
        """No result within the deadline: leave the queue, unless the lead was just handed to us."""
        with self._lock:
            if me.lead:
                return
            if me in self._queue:
                self._queue.remove(me)
        raise StoreUnavailable("no commit within the deadline")

    def _commit_next_batch(self) -> None:
        with self._lock:
            batch = [self._queue.popleft() for _ in range(min(MAX_BATCH, len(self._queue)))]
        try:
            self._commit(batch)
        finally:  # whatever happened, the waiting requests are answered and someone leads next
            with self._lock:
                if self._queue:
                    successor = self._queue[0]
                    successor.lead = True
                else:
                    successor = None
                    self._committing = False
            for waiting in batch:
                waiting.woken.set()
            if successor is not None:
                successor.woken.set()

    def _commit(self, batch: list[_Waiting]) -> None:
        rt = self.runtime
        try:
            # an event the store refuses is committed apart from the others (ingest_each)
            results = ingest.ingest_each(rt.engine, rt.config, [(w.event, w.body) for w in batch], now=rt.clock())
        except BaseException as exc:  # every waiting request learns of it; nothing was committed
            if not isinstance(exc, StoreUnavailable):
                log.exception("group commit of %d event(s) failed", len(batch))
            for waiting in batch:
                waiting.error = exc
            if not isinstance(exc, Exception):
                raise
            return
        for waiting, result in zip(batch, results):
            if isinstance(result, ingest.IngestResult):
                waiting.result = result
            else:
                log_refused(result)
                waiting.error = result


def log_refused(exc: Exception) -> None:
    """One line for an event the store refused; a traceback only for what may be a bug."""
    if isinstance(exc, events.EventFormatError):
        log.warning("webhook refused by the store: %s", exc)
    else:
        log.error("webhook failed to commit on its own", exc_info=exc)
