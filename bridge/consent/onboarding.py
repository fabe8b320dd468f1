"""Onboarding: consent first, then a Persona flow to start or resume, within the attempt limit.

Persona API calls (when PERSONA_API_KEY is set) happen between two short transactions, never
inside one.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any, Protocol
from urllib.parse import urlsplit

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from bridge import audit
from bridge.consent import privacy
from bridge.kyc import emails, link_tokens, renewal, retry, standing, text
from bridge.config import CONSENT_BOXES, Config
from bridge.persona import hosted
from bridge.kyc.states import Status
from bridge.kyc.timestamps import iso_utc
from bridge.store import queue
from bridge.store.engine import transaction
from bridge.store.limits import FIRST_NAME_LENGTH, USER_AGENT_LENGTH, WP_USER_ID_MAX
from bridge.store.models import Consent, Contact, Inquiry, Link, VerificationSession

REDIRECT_PATH = "/verify/done"
UNFINISHED = (Status.CREATED.value, Status.PENDING.value)


class OnboardingError(Exception):
    """Bad input: `field` names what to fix. Messages never say whether an email is known."""

    def __init__(self, field: str, message: str):
        super().__init__(message)
        self.field = field


class AttemptsExhausted(Exception):
    def __init__(self, used: int):
        super().__init__(f"{used} verification attempts used for this user type: manual review is needed")
        self.used = used


class RetryNotAllowed(AttemptsExhausted):
    """The person's last verification of this user type ended in a status the configured retry
    rule ([onboarding.retry]) does not let them try again after: a person must review it."""

    def __init__(self, used: int, status: str):
        Exception.__init__(self, f"a new verification after {status!r} is not allowed here: manual review is needed")
        self.used, self.status = used, status


class PersonaAPI(Protocol):
    def create_inquiry(self, *, template_id: str, reference_id: str, fields: Mapping[str, str] | None = None,
                       redirect_uri: str | None = None, idempotency_key: str | None = None) -> Any: ...
    def resume_inquiry(self, inquiry_id: str) -> Any: ...


@dataclass(frozen=True)
class ConsentAnswers:
    share_with_persona: bool
    persona_retention: bool
    gdpr_processing: bool
    text_version: str | None


@dataclass(frozen=True)
class SessionRequest:
    email: str
    user_type: str
    consent: ConsentAnswers
    first_name: str | None = None
    wp_user_id: int | None = None
    ip: str | None = None
    user_agent: str | None = None
    source: str = "api"
    redirect_uri: str | None = None  # where Persona sends the person back; an allowed origin only


@dataclass(frozen=True)
class SessionStart:
    reference_id: str
    template_id: str
    environment_id: str | None
    hosted_url: str
    inquiry_id: str | None
    session_token: str | None
    fields: dict[str, str]
    resumed: bool
    attempts_used: int
    attempts_allowed: int

    def as_json(self) -> dict[str, Any]:
        return {
            "reference_id": self.reference_id, "template_id": self.template_id,
            "environment_id": self.environment_id, "hosted_url": self.hosted_url,
            "inquiry_id": self.inquiry_id, "session_token": self.session_token, "fields": self.fields,
            "resumed": self.resumed, "attempts_used": self.attempts_used,
            "attempts_allowed": self.attempts_allowed,
        }


def missing_consent(answers: ConsentAnswers) -> list[str]:
    """The consent boxes not answered yes, in display order. Pure."""
    return [box for box in CONSENT_BOXES if getattr(answers, box) is not True]


def hash_ip(secret_key: str, ip: str | None) -> str | None:
    """A keyed hash: lets an operator match repeated requests without storing the address."""
    if not ip:
        return None
    return hmac.new(secret_key.encode(), ip.strip().encode(), hashlib.sha256).hexdigest()


def new_reference_id() -> str:
    return "kyc_" + secrets.token_urlsafe(18)


def origin(url: str) -> str:
    """scheme://host[:port] of a URL, lower-cased; '' when it has none."""
    if any(ord(c) < 0x20 or c == "\x7f" for c in url):
        return ""  # urlsplit drops tabs and line breaks, which would let them pass the origin check
    parsed = urlsplit(url.strip())
    if parsed.scheme not in ("http", "https") or not parsed.netloc:
        return ""
    return f"{parsed.scheme}://{parsed.netloc}".lower()


def validate(config: Config, request: SessionRequest) -> str:
    """Checks that need no store; returns the normalised email."""
    email = emails.normalize(request.email)
    if email is None:
        raise OnboardingError("email", "email is not a valid email address")
    if request.user_type not in config.user_types:
        raise OnboardingError("user_type", f"user_type must be one of {', '.join(config.user_types)}")
    missing = missing_consent(request.consent)
    if missing:
        raise OnboardingError(f"consent.{missing[0]}", "consent is required before verification: "
                              + ", ".join(f"consent.{box} must be true" for box in missing))
    if request.wp_user_id is not None and not 1 <= request.wp_user_id <= WP_USER_ID_MAX:
        raise OnboardingError("wp_user_id", "wp_user_id must be a positive integer of at most 64 bits")
    if request.redirect_uri is not None and origin(request.redirect_uri) not in config.allowed_redirect_origins:
        raise OnboardingError("redirect_uri", "redirect_uri must start with one of the origins in "
                              "bridge.allowed_redirect_origins")
    version = request.consent.text_version
    if version is not None and version != config.consent.version:
        raise OnboardingError("consent.text_version", f"consent.text_version {version!r} is not the current "
                              f"consent text ({config.consent.version!r}); show the current text and ask again")
    return email


def upsert_contact(session: Session, email: str, *, first_name: str | None, wp_user_id: int | None,
                   now: datetime) -> Contact:
    first_name = text.display_text(first_name, FIRST_NAME_LENGTH)  # a cosmetic field: made to fit
    contact = session.scalars(select(Contact).where(Contact.email == email).with_for_update()).one_or_none()
    if contact is None:
        contact = Contact(email=email, first_name=first_name, wp_user_id=wp_user_id,
                          reference_id=new_reference_id(), created_at=now, updated_at=now)
        session.add(contact)
        session.flush()
        return contact
    if first_name:
        contact.first_name = first_name
    if wp_user_id:
        contact.wp_user_id = wp_user_id
    if not contact.reference_id:
        contact.reference_id = new_reference_id()
    return contact


@dataclass(frozen=True)
class _Plan:
    contact_id: int
    consent_id: int
    reference_id: str
    first_name: str | None
    email: str
    resume_inquiry_id: str | None
    attempts_used: int


def _unfinished_inquiry(session: Session, config: Config, contact: Contact, user_type: str,
                        now: datetime) -> Inquiry | None:
    window_start = now - timedelta(hours=config.resume_window_hours)
    mine = [Inquiry.contact_id == contact.id, Inquiry.user_type == user_type, Inquiry.redacted_at.is_(None)]
    if contact.standing_since is not None:  # not one from before a new consent after a withdrawal
        mine.append(Inquiry.created_at >= contact.standing_since)
    candidates = session.scalars(
        select(Inquiry).where(*mine)
        .order_by(Inquiry.created_at.desc(), Inquiry.id.desc())
    ).all()
    for inquiry in candidates:
        if inquiry.status in UNFINISHED:
            return inquiry
        if inquiry.status == Status.EXPIRED.value and (inquiry.decided_at or inquiry.updated_at) >= window_start:
            return inquiry
    return None


def _attempts_used(session: Session, contact_id: int, user_type: str) -> int:
    """Real inquiries of this user type since the person's last approval of it: created at Persona
    through the API, or seen in a webhook. Clicks that created nothing at Persona do not count, and
    an approval starts the count again (a later re-verification has its own attempts)."""
    mine = (Inquiry.contact_id == contact_id) & (Inquiry.user_type == user_type)
    last_approval = session.scalar(select(func.max(Inquiry.id)).where(mine, Inquiry.status == Status.APPROVED.value))
    since = mine & (Inquiry.id > last_approval) if last_approval else mine
    return session.scalar(select(func.count()).select_from(Inquiry).where(since)) or 0


def _last_status(session: Session, contact_id: int, user_type: str) -> str | None:
    return session.scalars(select(Inquiry.status).where(Inquiry.contact_id == contact_id,
                                                        Inquiry.user_type == user_type)
                           .order_by(Inquiry.created_at.desc(), Inquiry.id.desc()).limit(1)).first()


def _record_consent(session: Session, config: Config, secret_key: str, request: SessionRequest,
                    email: str, now: datetime) -> _Plan:
    contact = upsert_contact(session, email, first_name=request.first_name, wp_user_id=request.wp_user_id, now=now)
    if contact.consent_withdrawn_at is not None:
        # A new consent replaces an earlier withdrawal; the standing it ended stays ended: only
        # inquiries from now on speak for the person (bridge/kyc/standing.py).
        contact.consent_withdrawn_at = None
        contact.standing_since = now
    consent = Consent(
        contact_id=contact.id, user_type=request.user_type, source=request.source,
        share_with_persona=True, persona_retention=True, gdpr_processing=True,
        text_version=config.consent.version, text_sha256=config.consent.sha256,
        ip_hash=hash_ip(secret_key, request.ip),
        user_agent=text.display_text(request.user_agent, USER_AGENT_LENGTH), created_at=now,
    )
    session.add(consent)
    session.flush()
    audit.append(session, "consent.given", f"contact:{contact.id}",
                 {"user_type": request.user_type, "reason": config.consent.version}, at=now)
    unfinished = _unfinished_inquiry(session, config, contact, request.user_type, now)
    return _Plan(contact.id, consent.id, contact.reference_id or "", contact.first_name, email,
                 unfinished.inquiry_id if unfinished else None,
                 _attempts_used(session, contact.id, request.user_type))


def start_session(sessions: sessionmaker[Session], config: Config, *, secret_key: str,
                  environment_id: str | None, persona: PersonaAPI | None, request: SessionRequest,
                  now: datetime) -> SessionStart:
    """Record consent and answer what the page needs to start (or resume) Persona's flow.
    Raises OnboardingError (bad input, nothing recorded) or AttemptsExhausted."""
    email = validate(config, request)
    user_type = config.user_types[request.user_type]
    with transaction(sessions) as session:
        plan = _record_consent(session, config, secret_key, request, email, now)
        last = _last_status(session, plan.contact_id, request.user_type) if plan.resume_inquiry_id is None else None
        if last in retry.CONFIGURABLE and not retry.may_retry(last, config.retry_allowed):
            audit.append(session, "onboarding.retry_refused", f"contact:{plan.contact_id}",
                         {"user_type": request.user_type, "reason": last}, at=now)
            refused: str | None = last
        else:
            refused = None
        if refused is None and plan.resume_inquiry_id is None and plan.attempts_used >= config.max_attempts_per_type:
            queue.enqueue(session, queue.CRM_TAG, inquiry_id=None,
                          payload={"contact_id": plan.contact_id, "tag": "manual_review"},
                          max_attempts=config.max_attempts, now=now, coalesce=True,
                          contact_key=queue.contact_key(plan.contact_id, None))
            audit.append(session, "onboarding.attempts_exhausted", f"contact:{plan.contact_id}",
                         {"user_type": request.user_type, "count": plan.attempts_used}, at=now)
            exhausted = plan.attempts_used
        else:
            exhausted = None
    if refused is not None:
        raise RetryNotAllowed(plan.attempts_used, refused)
    if exhausted is not None:
        raise AttemptsExhausted(exhausted)

    redirect_uri = request.redirect_uri or config.public_url + REDIRECT_PATH
    fields = {"name-first": plan.first_name or "", "email-address": email}
    fields = {k: v for k, v in fields.items() if v}
    inquiry_id, session_token = plan.resume_inquiry_id, None
    if inquiry_id:
        if persona is not None:
            session_token = persona.resume_inquiry(inquiry_id).session_token
        url = hosted.resume_url(config.hosted_flow_url, inquiry_id=inquiry_id, session_token=session_token,
                                environment_id=environment_id, redirect_uri=redirect_uri)
    else:
        if persona is not None:
            created = persona.create_inquiry(template_id=user_type.template_id, reference_id=plan.reference_id,
                                             fields=fields, redirect_uri=redirect_uri,
                                             idempotency_key=f"{plan.reference_id}-{plan.consent_id}")
            inquiry_id, session_token = created.inquiry_id, created.session_token
            url = hosted.resume_url(config.hosted_flow_url, inquiry_id=inquiry_id, session_token=session_token,
                                    environment_id=environment_id, redirect_uri=redirect_uri)
        else:
            url = hosted.new_inquiry_url(config.hosted_flow_url, template_id=user_type.template_id,
                                         environment_id=environment_id, reference_id=plan.reference_id,
                                         redirect_uri=redirect_uri, fields=fields)
    resumed = plan.resume_inquiry_id is not None
    with transaction(sessions) as session:
        session.add(VerificationSession(contact_id=plan.contact_id, consent_id=plan.consent_id,
                                        user_type=user_type.name, inquiry_id=inquiry_id, resumed=resumed,
                                        created_at=now))
        if inquiry_id and not resumed:
            _track_created_inquiry(session, inquiry_id, plan, user_type.name, user_type.template_id,
                                   user_type.level, now)
    return SessionStart(
        reference_id=plan.reference_id, template_id=user_type.template_id, environment_id=environment_id,
        hosted_url=url, inquiry_id=inquiry_id, session_token=session_token, fields=fields, resumed=resumed,
        attempts_used=plan.attempts_used + (0 if resumed else 1), attempts_allowed=config.max_attempts_per_type,
    )


def _track_created_inquiry(session: Session, inquiry_id: str, plan: _Plan, user_type: str, template_id: str,
                           level: str, now: datetime) -> None:
    """An inquiry created through the API is known before its first webhook; the webhook decides
    its status (decided_by stays empty until then)."""
    if session.scalar(select(Inquiry.id).where(Inquiry.inquiry_id == inquiry_id)) is None:
        session.add(Inquiry(inquiry_id=inquiry_id, contact_id=plan.contact_id, reference_id=plan.reference_id,
                            template_id=template_id, user_type=user_type, level=level,
                            status=Status.CREATED.value, created_at=now, updated_at=now))


# --- signed links -------------------------------------------------------------------------------


@dataclass(frozen=True)
class IssuedLink:
    url: str
    expires_at: datetime


@dataclass(frozen=True)
class LinkTarget:
    link_id: str
    email: str
    first_name: str | None
    user_type: str


def validate_link_request(config: Config, email: str, user_type: str) -> str:
    """The normalised email of a link request; OnboardingError names a bad field."""
    normalized = emails.normalize(email)
    if normalized is None:
        raise OnboardingError("email", "email is not a valid email address")
    if user_type not in config.user_types:
        raise OnboardingError("user_type", f"user_type must be one of {', '.join(config.user_types)}")
    return normalized


def issue_link(sessions: sessionmaker[Session], config: Config, *, secret_key: str, email: str,
               user_type: str, first_name: str | None, now: datetime) -> IssuedLink:
    normalized = validate_link_request(config, email, user_type)
    expires_at = now + timedelta(hours=config.link_ttl_hours)
    link_id = secrets.token_urlsafe(16)
    with transaction(sessions) as session:
        contact = upsert_contact(session, normalized, first_name=first_name, wp_user_id=None, now=now)
        session.add(Link(link_id=link_id, contact_id=contact.id, user_type=user_type, expires_at=expires_at,
                         created_at=now))
        audit.append(session, "link.issued", f"contact:{contact.id}", {"user_type": user_type}, at=now)
    token = link_tokens.sign(secret_key, link_id)
    return IssuedLink(f"{config.public_url}/verify/{token}", expires_at)


def resolve_link(sessions: sessionmaker[Session], config: Config, *, secret_key: str, token: str,
                 now: datetime) -> LinkTarget:
    """Who a link is for; raises link_tokens.LinkTokenError for tampered, expired or unknown links."""
    link_id = link_tokens.verify(secret_key, token, max_age_seconds=config.link_ttl_hours * 3600)
    with transaction(sessions) as session:
        row = session.execute(
            select(Link, Contact).join(Contact, Contact.id == Link.contact_id).where(Link.link_id == link_id)
        ).first()
        if row is None or row[1].email is None:
            raise link_tokens.LinkTokenError("this link is not valid")
        link, contact = row
        if link.expires_at < now:
            raise link_tokens.LinkTokenError("this link has expired", expired=True)
        return LinkTarget(link.link_id, contact.email, contact.first_name, link.user_type)


# --- withdrawal and gating ----------------------------------------------------------------------


def withdraw_consent(sessions: sessionmaker[Session], email: str, *, now: datetime, max_attempts: int = 8,
                     redact_at_persona: bool = False) -> bool:
    """Record a withdrawal; further CRM and n8n effects for the person stop. A CRM sync of their
    newest inquiry takes away the KYC tags in FluentCRM, and with `redact_at_persona` Persona is
    asked to redact their inquiries, as an erasure does. False if the email is unknown."""
    normalized = emails.normalize(email)
    if normalized is None:
        raise OnboardingError("email", "email is not a valid email address")
    with transaction(sessions) as session:
        contact = session.scalars(select(Contact).where(Contact.email == normalized).with_for_update()).one_or_none()
        if contact is None:
            return False
        contact.consent_withdrawn_at = contact.consent_withdrawn_at or now
        for consent in session.scalars(select(Consent).where(Consent.contact_id == contact.id,
                                                             Consent.withdrawn_at.is_(None))):
            consent.withdrawn_at = now
        inquiry_ids = list(session.scalars(select(Inquiry.inquiry_id).where(Inquiry.contact_id == contact.id)
                                           .order_by(Inquiry.id)))
        if inquiry_ids:  # one sync removes every KYC tag of the contact: the newest inquiry's is enough
            queue.enqueue(session, queue.CRM_SYNC, inquiry_id=inquiry_ids[-1], payload={"inquiry_id": inquiry_ids[-1]},
                          max_attempts=max_attempts, now=now, coalesce=True,
                          contact_key=queue.contact_key(contact.id, None))
        if redact_at_persona:
            privacy.queue_redactions(session, inquiry_ids, max_attempts=max_attempts, now=now)
        audit.append(session, "consent.withdrawn", f"contact:{contact.id}", {"count": len(inquiry_ids)}, at=now)
    return True


@dataclass(frozen=True)
class KycAnswer:
    email: str
    status: str
    user_type: str | None
    level: str | None
    decided_at: datetime | None
    monitoring: dict[str, str | None] | None = None  # the match holding an approval in review
    consent_withdrawn: bool = False  # the KYC decision stays on record; no effects follow
    may_retry: bool | None = None  # bridge/kyc/retry.py, when the caller passed the rule
    reverify_by: datetime | None = None  # the approval's renewal deadline (bridge/kyc/renewal.py), if any
    lapsed: bool = False  # `expired` because the approval passed that deadline (a renewal is due)

    def as_json(self) -> dict[str, Any]:
        answer = {"email": self.email, "status": self.status, "user_type": self.user_type, "level": self.level,
                  "decided_at": iso_utc(self.decided_at), "monitoring": self.monitoring,
                  "consent_withdrawn": self.consent_withdrawn, "reverify_by": iso_utc(self.reverify_by),
                  "lapsed": self.lapsed}
        if self.may_retry is not None:
            answer["may_retry"] = self.may_retry
        return answer


def kyc_status(session: Session, email: str, user_type: str | None = None,
               retry_allowed: Mapping[str, bool] | None = None, lapse: renewal.Policy | None = None) -> KycAnswer:
    """The person's standing for gating (the rule is bridge.kyc.standing's: an approval wins, unless
    a monitoring match holds one in review, then `needs_review` naming the match, or it is past its
    renewal deadline under `lapse`, then `expired`); `not_started` when there is no inquiry, or none
    speaks since a consent withdrawal. With the retry rule, also `may_retry`."""
    return kyc_statuses(session, [email], user_type, retry_allowed, lapse)[email]


def kyc_statuses(session: Session, addresses: list[str], user_type: str | None = None,
                 retry_allowed: Mapping[str, bool] | None = None,
                 lapse: renewal.Policy | None = None) -> dict[str, KycAnswer]:
    """`kyc_status` of several normalised emails, in two queries."""
    contacts = {row.id: row for row in session.execute(
        select(Contact.id, Contact.email, Contact.consent_withdrawn_at, Contact.standing_since)
        .where(Contact.email.in_(addresses)))}
    found: dict[int, list[Inquiry]] = {}
    if contacts:
        query = select(Inquiry).where(Inquiry.contact_id.in_(list(contacts)))
        if user_type:
            query = query.where(Inquiry.user_type == user_type)
        for inquiry in session.scalars(query):
            found.setdefault(inquiry.contact_id or 0, []).append(inquiry)
    by_email = {row.email: row for row in contacts.values()}
    answers = {}
    for email in addresses:
        row = by_email.get(email)
        withdrawn = bool(row and row.consent_withdrawn_at)
        answer = _standing(email, found.get(row.id, []) if row else [], user_type, lapse,
                           withdrawn=withdrawn, since=row.standing_since if row else None)
        answers[email] = replace(
            answer, consent_withdrawn=withdrawn,
            may_retry=None if retry_allowed is None else retry.may_retry(answer.status, retry_allowed,
                                                                          lapsed=answer.lapsed))
    return answers


def _standing(email: str, inquiries: list[Inquiry], user_type: str | None, lapse: renewal.Policy | None,
              *, withdrawn: bool, since: datetime | None) -> KycAnswer:
    best = standing.speaking_inquiry(inquiries, lapse, withdrawn=withdrawn, since=since)
    if best is None:
        return KycAnswer(email, Status.NOT_STARTED.value, user_type, None, None)
    held = standing.in_monitoring_review(best, lapse)
    return KycAnswer(email, standing.status_shown(best, lapse), best.user_type, best.level, best.decided_at,
                     {"kind": best.monitoring_kind, "report_id": best.monitoring_report_id,
                      "since": iso_utc(best.monitoring_since)} if held else None,
                     reverify_by=lapse.deadline(best) if lapse else None, lapsed=renewal.is_lapsed(best, lapse))
