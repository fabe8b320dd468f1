"""`kyc-bridge remind`: find verifications that stalled and queue one `kyc.stalled` reminder per window.

Stalled: a person was handed a Persona flow for a user type (a verification session, which
follows their consent) or has an inquiry still `created`/`pending`, and nothing came of it — no
inquiry of that type reached another status since, and none was ever approved. The wait counts
from the newest start or activity (the anchor: the session, or the Persona event that last moved
an unfinished inquiry); starting again or any progress makes a new anchor.

Windows are `[n8n] stalled_reminder_hours` after the anchor (default 24 h and 72 h). A run
queues the largest window already reached, once: a row in `kyc_reminders` whose unique key
(contact, user type, anchor, window) makes a second run — or two runs at once — skip it. Smaller
windows missed while cron was down are not sent late. Starts older than `stalled_max_age_hours`
are left alone. Safe to run from cron as often as you like.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from bridge import audit
from bridge.outbox import events_out
from bridge.store import queue
from bridge.config import Config
from bridge.kyc.states import Status
from bridge.store.engine import transaction
from bridge.store.models import Contact, Inquiry, Reminder, VerificationSession

UNFINISHED = (Status.CREATED.value, Status.PENDING.value)
# An unfinished inquiry's last activity: the Persona event that set its status (when the bridge
# learnt of it first through the API, the time it was created).
_LAST_ACTIVITY = func.coalesce(Inquiry.decided_at, Inquiry.created_at)


@dataclass(frozen=True)
class Due:
    contact_id: int
    user_type: str
    anchor_at: datetime
    window_hours: int
    inquiry_id: str | None  # the newest unfinished inquiry, if one was started


@dataclass(frozen=True)
class Report:
    queued: int  # reminders queued by this run
    already_sent: int  # due, but this window was reminded before
    stalled: int  # stalled starts seen (due or not yet)


def due_window(windows: tuple[int, ...], anchor_at: datetime, now: datetime) -> int | None:
    """The largest window (hours) reached at `now`, or None. Pure."""
    elapsed = now - anchor_at
    reached = [hours for hours in windows if elapsed >= timedelta(hours=hours)]
    return max(reached) if reached else None


def _anchors(session: Session, since: datetime) -> dict[tuple[int, str], datetime]:
    """Newest start per (contact, user type) after `since`, for people who may still be emailed."""
    reachable = select(Contact.id).where(Contact.email.is_not(None), Contact.consent_withdrawn_at.is_(None))
    anchors: dict[tuple[int, str], datetime] = {}
    started = session.execute(
        select(VerificationSession.contact_id, VerificationSession.user_type, func.max(VerificationSession.created_at))
        .where(VerificationSession.created_at >= since, VerificationSession.contact_id.in_(reachable))
        .group_by(VerificationSession.contact_id, VerificationSession.user_type)
    ).all()
    unfinished = session.execute(
        select(Inquiry.contact_id, Inquiry.user_type, func.max(_LAST_ACTIVITY))
        .where(Inquiry.status.in_(UNFINISHED), _LAST_ACTIVITY >= since, Inquiry.redacted_at.is_(None),
               Inquiry.contact_id.in_(reachable))
        .group_by(Inquiry.contact_id, Inquiry.user_type)
    ).all()
    for contact_id, user_type, at in [*started, *unfinished]:
        key = (contact_id, user_type)
        if at is not None and (key not in anchors or at > anchors[key]):
            anchors[key] = at
    return anchors


def _anchor(session: Session, contact_id: int, user_type: str) -> datetime | None:
    newest_session = session.scalar(select(func.max(VerificationSession.created_at)).where(
        VerificationSession.contact_id == contact_id, VerificationSession.user_type == user_type))
    newest_unfinished = session.scalar(select(func.max(_LAST_ACTIVITY)).where(
        Inquiry.contact_id == contact_id, Inquiry.user_type == user_type, Inquiry.status.in_(UNFINISHED),
        Inquiry.redacted_at.is_(None)))
    found = [at for at in (newest_session, newest_unfinished) if at is not None]
    return max(found) if found else None


def _progressed(session: Session, contact_id: int, user_type: str, anchor_at: datetime) -> bool:
    """Approved ever, or any inquiry of the type moved past created/pending since the anchor."""
    moved_on = or_(
        Inquiry.status == Status.APPROVED.value,
        Inquiry.status.not_in(UNFINISHED) & (func.coalesce(Inquiry.decided_at, Inquiry.updated_at) >= anchor_at),
    )
    return session.scalar(select(Inquiry.id).where(
        Inquiry.contact_id == contact_id, Inquiry.user_type == user_type, moved_on).limit(1)) is not None


def still_stalled(session: Session, contact_id: int, user_type: str, anchor_at: datetime) -> bool:
    """Checked again when the reminder is about to be sent: same anchor, still no progress."""
    return _anchor(session, contact_id, user_type) == anchor_at and not _progressed(
        session, contact_id, user_type, anchor_at)


def _newest_unfinished(session: Session, contact_id: int, user_type: str) -> str | None:
    return session.scalar(select(Inquiry.inquiry_id).where(
        Inquiry.contact_id == contact_id, Inquiry.user_type == user_type, Inquiry.status.in_(UNFINISHED),
        Inquiry.redacted_at.is_(None)).order_by(Inquiry.created_at.desc(), Inquiry.id.desc()).limit(1))


def find(session: Session, config: Config, *, now: datetime) -> tuple[list[Due], int]:
    """Stalled starts whose window is due now (already reminded or not), and how many stalled."""
    windows = config.n8n.stalled_reminder_hours
    if not windows:
        return [], 0
    since = now - timedelta(hours=config.n8n.stalled_max_age_hours)
    due: list[Due] = []
    stalled = 0
    for (contact_id, user_type), anchor_at in sorted(_anchors(session, since).items()):
        if user_type not in config.user_types or _progressed(session, contact_id, user_type, anchor_at):
            continue
        stalled += 1
        window = due_window(windows, anchor_at, now)
        if window is not None:
            due.append(Due(contact_id, user_type, anchor_at, window,
                           _newest_unfinished(session, contact_id, user_type)))
    return due, stalled


def _already_sent(session: Session, item: Due) -> bool:
    return session.scalar(select(Reminder.id).where(
        Reminder.contact_id == item.contact_id, Reminder.user_type == item.user_type,
        Reminder.anchor_at == item.anchor_at, Reminder.window_hours == item.window_hours)) is not None


def run(sessions: sessionmaker[Session], config: Config, *, now: datetime, dry_run: bool = False,
        progress: Callable[[int], AbstractContextManager[Callable[[int], None]]] | None = None) -> Report:
    """Queue the reminders due now. Each in its own transaction: the reminder row and its
    `n8n.event` job commit together, and a concurrent run's row makes ours roll back.
    `progress(total)`: a context giving a callback to advance by each reminder done (the CLI's bar)."""
    with transaction(sessions) as session:
        due, stalled = find(session, config, now=now)
        fresh = [item for item in due if not _already_sent(session, item)]
    if dry_run:
        return Report(len(fresh), len(due) - len(fresh), stalled)
    with progress(len(fresh)) if progress else nullcontext(lambda done: None) as advance:
        queued = _queue_all(sessions, config, fresh, now=now, advance=advance)
    return Report(queued, len(due) - queued, stalled)


def _queue_all(sessions: sessionmaker[Session], config: Config, fresh: list[Due], *, now: datetime,
               advance: Callable[[int], None]) -> int:
    queued = 0
    for item in fresh:
        advance(1)
        try:
            with transaction(sessions) as session:
                reminder = Reminder(contact_id=item.contact_id, user_type=item.user_type, inquiry_id=item.inquiry_id,
                                    anchor_at=item.anchor_at, window_hours=item.window_hours, created_at=now)
                session.add(reminder)
                session.flush()  # the unique window key: a concurrent run that got here first wins
                enqueue_stalled(session, config, reminder, now=now)
                audit.append(session, "reminder.queued", f"contact:{item.contact_id}",
                             {"user_type": item.user_type, "inquiry_id": item.inquiry_id, "count": item.window_hours},
                             at=now)
            queued += 1
        except IntegrityError:
            continue
    return queued


def enqueue_stalled(session: Session, config: Config, reminder: Reminder, *, now: datetime) -> None:
    """Queue the `kyc.stalled` event of a reminder row (`run` records the row first)."""
    queue.enqueue(session, queue.N8N_EVENT, inquiry_id=reminder.inquiry_id,
                  payload={"type": events_out.STALLED, "reminder_id": reminder.id},
                  max_attempts=config.max_attempts, now=now)
