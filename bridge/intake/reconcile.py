"""`kyc-bridge reconcile`: repair what webhooks missed from Persona's event log.

Persona keeps every event and lists them newest first (GET /events, cursor pages). Reconcile pages
back to the window's start and feeds each event through the very intake a webhook takes
(`ingest.ingest_many`): the same dedupe by event id, the same ordering rule, the same jobs. An
event the bridge already has is a duplicate and changes nothing, so a second run changes nothing.
Each event it stores for the first time gets an `event.received` audit entry with source
`reconcile` in the same transaction, so the log tells repaired state from delivered state.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Protocol

from sqlalchemy import Engine

from bridge.config import Config
from bridge.intake import ingest
from bridge.kyc import monitoring, states
from bridge.persona import events
from bridge.outbox.upkeep import TaskResult
from bridge.sinks.persona_api import EventPage

if TYPE_CHECKING:
    from bridge.runtime import Runtime

log = logging.getLogger(__name__)

# What reconcile asks the event log for: the events the bridge acts on.
EVENT_NAMES = (*states.INQUIRY_EVENTS, *monitoring.EVENT_NAMES)
SOURCE = "reconcile"


class EventLog(Protocol):
    def list_events(self, *, names: tuple[str, ...], after: str | None, page_size: int) -> EventPage: ...


@dataclass
class Report:
    pages: int = 0
    read: int = 0  # events in the window
    new: int = 0  # stored for the first time by this run
    skipped: int = 0  # in the window but not storable (the parser's reason is logged, without data)
    changed_inquiries: set[str] = field(default_factory=set)  # inquiries whose state this run moved

    def summary(self) -> str:
        """One line, ids and counts only: what the command prints and the scheduled run logs."""
        return (f"{self.pages} page(s), {self.read} event(s) read, {self.new} new, "
                f"{len(self.changed_inquiries)} inquiry state(s) changed"
                + (f", {self.skipped} not storable (see the log)" if self.skipped else ""))

    def as_dict(self) -> dict[str, int]:
        return {"pages": self.pages, "events_read": self.read, "new_events": self.new,
                "skipped": self.skipped, "inquiries_changed": len(self.changed_inquiries)}


def scheduled(runtime: Runtime, now: datetime) -> TaskResult:
    """The `[schedule] reconcile_every` task: the last `reconcile_window` of the event log."""
    client = runtime.persona_client()
    if client is None:
        return TaskResult(0, "skipped: PERSONA_API_KEY unset (the event log cannot be read)", outcome="skipped")
    since = now - timedelta(seconds=runtime.config.schedule.reconcile_window_seconds)
    report = run(runtime.engine, runtime.config, client, since=since, now=runtime.clock)
    return TaskResult(report.new, report.summary())


def body_of(listed: dict[str, Any]) -> bytes:
    """A listed event as the webhook body Persona would have sent for it: `{"data": event}`."""
    return json.dumps({"data": listed}, separators=(",", ":")).encode()


def run(engine: Engine, config: Config, event_log: EventLog, *, since: datetime, now: Callable[[], datetime],
        page_size: int = 100, on_page: Callable[[Report], None] | None = None) -> Report:
    """Page the log newest first back to `since` (stopping at the first page that reaches past it),
    then store the window oldest first, `page_size` events a transaction: an inquiry's own events
    go in before the monitoring reports that name it, as they arrived at Persona."""
    report = Report()
    window: list[tuple[events.PersonaEvent, bytes]] = []
    cursor: str | None = None
    while True:
        page = event_log.list_events(names=EVENT_NAMES, after=cursor, page_size=page_size)
        report.pages += 1
        reached_start = _in_window(page, since, report, window)
        if on_page is not None:
            on_page(report)
        if reached_start or page.next_cursor is None:
            break
        cursor = page.next_cursor
    window.reverse()
    for start in range(0, len(window), page_size):
        items = window[start:start + page_size]
        results = ingest.ingest_many(engine, config, items, now=now(), source=SOURCE)
        for (event, _), result in zip(items, results):
            if not result.duplicate:
                report.new += 1
            if result.status_changed:
                report.changed_inquiries.add(event.related_inquiry_id or event.event_id)
    return report


def _in_window(page: EventPage, since: datetime, report: Report,
               window: list[tuple[events.PersonaEvent, bytes]]) -> bool:
    """Add the page's events inside the window to `window`; True once the page reaches past `since`."""
    reached_start = False
    for listed in page.events:
        body = body_of(listed)
        try:
            event = events.parse(body)
        except events.EventFormatError as exc:
            report.skipped += 1
            log.warning("reconcile: skipping a listed event that is not storable: %s", exc)
            continue
        if event.created_at < since:
            reached_start = True  # newest first: everything after this is older still
            continue
        if event.name not in EVENT_NAMES:
            continue  # the filter is Persona's; do not rely on it
        report.read += 1
        window.append((event, body))
    return reached_start
