"""The domain side of the FluentCRM jobs: which contact gets which tags.

`crm.sync` brings a contact's tags in line with the person's standing (bridge.kyc.standing, over
all their inquiries) as it is when the job runs, so retries, duplicates and reordering all converge;
after a consent withdrawal it removes them, as `crm.erase` does after an erasure. The HTTP calls are the worker's (bridge.outbox.worker).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from bridge.kyc import standing, tags
from bridge.config import Config
from bridge.kyc.states import Status
from bridge.store.engine import transaction
from bridge.store.models import Contact, Inquiry

SKIPPED_PREFIX = "skipped"


@dataclass(frozen=True)
class Target:
    email: str
    first_name: str | None
    plan: tags.TagPlan
    remove_only: bool = False  # a withdrawal: take tags away, never create the contact for it


def _target(session: Session, config: Config, inquiry_id: str, now: datetime) -> Target | str:
    # FOR SHARE: an intake transaction that saw this job still waiting (and so queued no new one)
    # may not have committed yet; wait for it, so the sync carries the state it decided.
    inquiry = session.query(Inquiry).filter_by(inquiry_id=inquiry_id).with_for_update(read=True).one_or_none()
    if inquiry is None:
        return f"{SKIPPED_PREFIX}: inquiry no longer stored"
    contact = session.get(Contact, inquiry.contact_id) if inquiry.contact_id else None
    if contact is None or not contact.email:
        return f"{SKIPPED_PREFIX}: no email known for this inquiry"
    if contact.consent_withdrawn_at is not None:
        # No new tags after a withdrawal; the sync takes away the KYC tags it may have set.
        plan = tags.withdrawn(config.status_tags, config.user_types.get(inquiry.user_type),
                              (config.manual_review_tag, config.monitoring_tag))
        return Target(contact.email, contact.first_name, plan, remove_only=True)
    # The status tag is the person's, by the rule GET /api/v1/contacts/<email>/kyc answers with: a
    # new inquiry after an approval must not take the approval's tag away.
    lapse = config.renewal_policy(now)
    speaking = standing.speaking_inquiry(session.scalars(select(Inquiry).where(
        Inquiry.contact_id == contact.id)).all(), lapse, since=contact.standing_since)
    if speaking is None:
        # Only inquiries from before a new consent after a withdrawal: no standing, no KYC tags.
        plan = tags.withdrawn(config.status_tags, config.user_types.get(inquiry.user_type),
                              (config.manual_review_tag, config.monitoring_tag))
        return Target(contact.email, contact.first_name, plan, remove_only=True)
    plan = tags.plan(config.status_tags, Status(standing.status_shown(speaking, lapse)),
                     config.user_types.get(inquiry.user_type), monitoring_tag=config.monitoring_tag,
                     monitoring_match=standing.in_monitoring_review(speaking, lapse))
    return Target(contact.email, contact.first_name, plan)


def target(sessions: sessionmaker[Session], config: Config, inquiry_id: str, *, now: datetime) -> Target | str:
    """What to sync for an inquiry at `now` (an approval past its renewal deadline is expired), or why
    there is nothing to sync (ids only, no personal data)."""
    with transaction(sessions) as session:
        return _target(session, config, inquiry_id, now)


def erased_target(config: Config, payload: dict[str, object]) -> Target | str:
    """What an erasure's `crm.erase` job takes off the person's contact: every KYC tag the bridge
    may have set (the withdrawal's plan, for every user type), by the email the job carries; the
    store no longer knows it. A remove-only target: a contact is never created for it."""
    email = payload.get("email")
    if not isinstance(email, str) or not email:
        return f"{SKIPPED_PREFIX}: no email in the job (it was cleared when the job finished)"
    user_type_tags = tuple(user_type.tag for user_type in config.user_types.values())
    plan = tags.withdrawn(config.status_tags, None,
                          (*user_type_tags, config.manual_review_tag, config.monitoring_tag))
    return Target(email, None, plan, remove_only=True)


def manual_review_target(sessions: sessionmaker[Session], config: Config, contact_id: int) -> Target | str:
    """The contact to tag for manual review (attempts used up), or why not."""
    with transaction(sessions) as session:
        contact = session.get(Contact, contact_id)
        if contact is None or not contact.email:
            return f"{SKIPPED_PREFIX}: contact no longer stored"
        if contact.consent_withdrawn_at is not None:
            return f"{SKIPPED_PREFIX}: consent withdrawn"
        return Target(contact.email, contact.first_name, tags.TagPlan(attach=(config.manual_review_tag,), detach=()))
