"""Onboarding API under /api/v1: sessions, links, consent, gating lookup, stats."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, jsonify, request

from bridge.kyc import link_tokens
from bridge.consent import onboarding, privacy
from bridge import operations, queries
from bridge.sinks.errors import SinkError
from bridge.store.engine import transaction
from bridge.kyc.timestamps import iso_utc
from bridge.web.common import error, has_token, path_email, require_admin_token, require_read_token, runtime
from bridge.web.limits import limiter, link_key, per_ip, per_link

bp = Blueprint("onboarding", __name__, url_prefix="/api/v1")


def _json_body() -> dict[str, Any]:
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        raise onboarding.OnboardingError("body", "the request body must be a JSON object")
    return body


def _optional_str(body: dict[str, Any], key: str) -> str | None:
    value = body.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        raise onboarding.OnboardingError(key, f"{key} must be a string")
    return value.strip() or None


def _consent(body: dict[str, Any]) -> onboarding.ConsentAnswers:
    raw = body.get("consent")
    if not isinstance(raw, dict):
        raise onboarding.OnboardingError("consent", "consent must be an object with share_with_persona, "
                                         "persona_retention and gdpr_processing")
    return onboarding.ConsentAnswers(raw.get("share_with_persona") is True, raw.get("persona_retention") is True,
                                     raw.get("gdpr_processing") is True, _optional_str(raw, "text_version"))


def _wp_user_id(body: dict[str, Any]) -> int | None:
    value = body.get("wp_user_id")
    if value in (None, ""):
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise onboarding.OnboardingError("wp_user_id", "wp_user_id must be a positive integer")
    return value


def _persona_client():  # type: ignore[no-untyped-def]
    return runtime().persona_client(interactive=True)


def start(req: onboarding.SessionRequest):  # type: ignore[no-untyped-def]
    """Shared by the API route and the consent page."""
    rt = runtime()
    return onboarding.start_session(rt.sessions, rt.config, secret_key=rt.settings.secret_key,
                                    environment_id=rt.settings.persona_environment_id,
                                    persona=_persona_client(), request=req, now=rt.clock())


@bp.post("/sessions")
@limiter.limit(per_ip, exempt_when=has_token)
@limiter.limit(per_link, key_func=link_key, exempt_when=has_token)
def create_session():  # type: ignore[no-untyped-def]
    rt = runtime()
    try:
        body = _json_body()
        trusted = has_token()  # server to server (either token: the site's front end may hold the read one): the caller reports the visitor's ip and agent
        if isinstance(body.get("link_token"), str):
            target = onboarding.resolve_link(rt.sessions, rt.config, secret_key=rt.settings.secret_key,
                                             token=body["link_token"], now=rt.clock())
            email, user_type, first_name = target.email, target.user_type, target.first_name
            source = "link"
        elif trusted:
            email, user_type, first_name = body.get("email"), body.get("user_type"), _optional_str(body, "first_name")
            if not isinstance(email, str) or not isinstance(user_type, str):
                raise onboarding.OnboardingError("email", "email and user_type are required strings")
            source = "api"
        else:
            return error(401, "a bearer token or a link_token is required")
        if not trusted and body.get("wp_user_id") not in (None, ""):  # a link holder could claim any account
            return error(403, "wp_user_id may only be set with the admin token")
        if trusted:
            ip, user_agent = _optional_str(body, "ip"), _optional_str(body, "user_agent")
        else:
            ip, user_agent = request.remote_addr, request.user_agent.string
        result = start(onboarding.SessionRequest(
            email=email, user_type=user_type, first_name=first_name, wp_user_id=_wp_user_id(body),
            ip=ip, user_agent=user_agent, consent=_consent(body), source=source,
            redirect_uri=_optional_str(body, "redirect_uri")))
    except link_tokens.LinkTokenError as exc:
        return error(401, str(exc))
    except onboarding.OnboardingError as exc:
        return error(422, str(exc), field=exc.field)
    except onboarding.AttemptsExhausted as exc:
        return error(409, str(exc), manual_review=True, attempts_used=exc.used)
    except SinkError as exc:
        return error(503 if exc.retryable else 502, f"Persona: {exc.reason}")
    return jsonify(result.as_json()), 201


@bp.post("/links")
@require_read_token
def create_link():  # type: ignore[no-untyped-def]
    rt = runtime()
    try:
        body = _json_body()
        email, user_type = body.get("email"), body.get("user_type")
        if not isinstance(email, str) or not isinstance(user_type, str):
            raise onboarding.OnboardingError("email", "email and user_type are required strings")
        if body.get("send") is True:  # n8n emails the link (kyc.link_requested) instead of answering it
            return _send_link(body, email, user_type)
        link = onboarding.issue_link(rt.sessions, rt.config, secret_key=rt.settings.secret_key, email=email,
                                     user_type=user_type, first_name=_optional_str(body, "first_name"),
                                     now=rt.clock())
    except onboarding.OnboardingError as exc:
        return error(422, str(exc), field=exc.field)
    return jsonify({"url": link.url, "expires_at": iso_utc(link.expires_at)}), 201


def _send_link(body: dict[str, Any], email: str, user_type: str):  # type: ignore[no-untyped-def]
    rt = runtime()
    key = _optional_str(body, "key")
    if key is not None and len(key) > 100:
        raise onboarding.OnboardingError("key", "key must be at most 100 characters")
    try:
        with transaction(rt.sessions) as session:
            operations.send_link(session, rt.config, email=email, user_type=user_type,
                                 first_name=_optional_str(body, "first_name"), now=rt.clock(), key=key)
    except operations.Refused as exc:
        return error(409, str(exc))
    return jsonify({"queued": True}), 202




@bp.get("/contacts/<path:raw_email>/kyc")
@require_read_token
def contact_kyc(raw_email: str):  # type: ignore[no-untyped-def]
    rt = runtime()
    user_type = request.args.get("user_type") or None
    email = path_email(raw_email)
    if user_type and user_type not in rt.config.user_types:
        return error(400, "unknown user_type")
    with transaction(rt.sessions) as session:
        answer = onboarding.kyc_status(session, email, user_type, rt.config.retry_allowed,
                                         rt.config.renewal_policy(rt.clock()))
    return jsonify(answer.as_json())


@bp.delete("/contacts/<path:raw_email>/consent")
@require_read_token  # the person's own choice, relayed by the site's front end (like a session start)
def withdraw_consent(raw_email: str):  # type: ignore[no-untyped-def]
    rt = runtime()
    known = onboarding.withdraw_consent(rt.sessions, path_email(raw_email), now=rt.clock(),
                                        max_attempts=rt.config.max_attempts,
                                        redact_at_persona=bool(rt.settings.persona_api_key))
    if not known:
        return error(404, "no consent recorded for this email")
    return jsonify({"status": "withdrawn"})


@bp.get("/consent-text")
@require_read_token
def consent_text():  # type: ignore[no-untyped-def]
    text = runtime().config.consent
    return jsonify({"version": text.version, "sha256": text.sha256, "intro": text.intro,
                    "boxes": {"share_with_persona": text.share_with_persona,
                              "persona_retention": text.persona_retention,
                              "gdpr_processing": text.gdpr_processing}})


@bp.get("/stats")
@require_admin_token
def stats():  # type: ignore[no-untyped-def]
    rt = runtime()
    with transaction(rt.sessions) as session:
        now = rt.clock()
        result = queries.stats(session, now=now, targets=rt.config.review.target_hours,
                               lapse=rt.config.renewal_policy(now))
    return jsonify(result)


@bp.get("/contacts/<path:raw_email>/export")
@require_admin_token
def export_contact(raw_email: str):  # type: ignore[no-untyped-def]
    rt = runtime()
    email = path_email(raw_email)
    with transaction(rt.sessions) as session:
        data = privacy.export(session, email)
    return jsonify(data) if data is not None else error(404, "no data held for this email")


@bp.post("/contacts/<path:raw_email>/erase")
@require_admin_token
def erase_contact(raw_email: str):  # type: ignore[no-untyped-def]
    rt = runtime()
    email = path_email(raw_email)
    with transaction(rt.sessions) as session:
        result = privacy.erase(session, email, redact_at_persona=bool(rt.settings.persona_api_key),
                               max_attempts=rt.config.max_attempts, now=rt.clock(), crm_tags=rt.erase_crm_tags())
    return jsonify(result.as_json()) if result is not None else error(404, "no data held for this email")
