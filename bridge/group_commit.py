"""Group commit for webhook intake: events arriving together share one transaction.

Each request hands its verified, parsed event to this process's committer thread and waits. The
thread takes everything that is waiting, stores it with `ingest.ingest_many` in one transaction,
and only after COMMIT wakes the requests with their results, so a 200 still means "durably
stored". Under load one commit (and one fsync, one audit-head lock) serves many events; alone, an
event is committed at once, with no added wait.
"""

from __future__ import annotations

import logging
import os
import queue
import threading
from concurrent.futures import Future, TimeoutError as FutureTimeout

from bridge import ingest
from bridge.persona.events import PersonaEvent
from bridge.store.engine import StoreUnavailable

log = logging.getLogger(__name__)

MAX_BATCH = 64
WAIT_SECONDS = 30  # Persona gives up after 5 s anyway; past this the store is hanging


class GroupCommitter:
    def __init__(self, runtime) -> None:  # type: ignore[no-untyped-def]
        self.runtime = runtime
        self._waiting: queue.SimpleQueue[tuple[PersonaEvent, bytes, Future[ingest.IngestResult]]] = queue.SimpleQueue()
        self._started_in: int | None = None
        self._lock = threading.Lock()

    def submit(self, event: PersonaEvent, body: bytes) -> ingest.IngestResult:
        """Store one event (with whatever else is waiting); raises StoreUnavailable on failure."""
        future: Future[ingest.IngestResult] = Future()
        self._waiting.put((event, body, future))
        self._ensure_thread()
        try:
            return future.result(timeout=WAIT_SECONDS)
        except FutureTimeout:
            raise StoreUnavailable("no commit within the deadline") from None

    def _ensure_thread(self) -> None:
        # Started lazily, in the process that serves (gunicorn forks workers after import).
        if self._started_in == os.getpid():
            return
        with self._lock:
            if self._started_in != os.getpid():
                threading.Thread(target=self._run, name="kyc-group-commit", daemon=True).start()
                self._started_in = os.getpid()

    def _run(self) -> None:
        while True:
            batch = [self._waiting.get()]
            while len(batch) < MAX_BATCH:
                try:
                    batch.append(self._waiting.get_nowait())
                except queue.Empty:
                    break
            self._commit(batch)

    def _commit(self, batch: list[tuple[PersonaEvent, bytes, Future[ingest.IngestResult]]]) -> None:
        rt = self.runtime
        try:
            results = ingest.ingest_many(rt.sessions, rt.config, [(e, b) for e, b, _ in batch], now=rt.clock())
        except Exception as exc:  # every waiting request learns of it; nothing was committed
            if not isinstance(exc, StoreUnavailable):
                log.exception("group commit of %d event(s) failed", len(batch))
            for _, _, future in batch:
                future.set_exception(exc)
            return
        for (_, _, future), result in zip(batch, results):
            future.set_result(result)
