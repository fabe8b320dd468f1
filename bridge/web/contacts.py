"""One person under /api/v1/contacts: the batch status lookup (read token), the admin's detail
view and the resend-link fix (admin token)."""

from __future__ import annotations

from flask import Blueprint, jsonify, request

from bridge import operations, queries
from bridge.consent import onboarding
from bridge.kyc import emails
from bridge.store.engine import transaction
from bridge.web.common import error, path_email, require_admin_token, require_read_token, runtime

bp = Blueprint("contacts", __name__, url_prefix="/api/v1/contacts")
MAX_LOOKUP = 100  # emails per batch lookup: a page of WordPress's Users screen


@bp.get("/kyc")
@require_read_token
def batch_kyc():  # type: ignore[no-untyped-def]
    """`GET /api/v1/contacts/kyc?email=a&email=b[&user_type=]`: each person's standing, in the order
    asked (once each), as GET /api/v1/contacts/<email>/kyc answers it."""
    rt = runtime()
    raw = request.args.getlist("email")
    if not raw:
        return error(400, "give at least one email parameter")
    if len(raw) > MAX_LOOKUP:
        return error(400, f"at most {MAX_LOOKUP} email parameters")
    addresses: list[str] = []
    for position, value in enumerate(raw, 1):
        email = emails.normalize(value)
        if email is None:
            return error(400, f"email parameter {position} is not an email address")
        if email not in addresses:
            addresses.append(email)
    user_type = request.args.get("user_type") or None
    if user_type and user_type not in rt.config.user_types:
        return error(400, "unknown user_type")
    with transaction(rt.sessions) as session:
        answers = onboarding.kyc_statuses(session, addresses, user_type, rt.config.retry_allowed,
                                             rt.config.renewal_policy(rt.clock()))
    return jsonify({"items": [answers[email].as_json() for email in addresses]})


@bp.get("/<path:raw_email>")
@require_admin_token
def contact_detail(raw_email: str):  # type: ignore[no-untyped-def]
    """Status history, consents, inquiries, and the CRM sync and n8n jobs with their errors."""
    rt = runtime()
    email = path_email(raw_email)
    now = rt.clock()
    with transaction(rt.sessions) as session:
        detail = queries.contact_detail(session, email, now=now, targets=rt.config.review.target_hours,
                                        lapse=rt.config.renewal_policy(now))
    return jsonify(detail) if detail is not None else error(404, "no data held for this email")


@bp.post("/<path:raw_email>/resend-link")
@require_admin_token
def resend_link(raw_email: str):  # type: ignore[no-untyped-def]
    """Queue the `kyc.link_requested` n8n event (n8n emails a fresh link): 202. Body: {"user_type"?}."""
    rt = runtime()
    email = path_email(raw_email)
    body = request.get_json(silent=True) or {}
    user_type = body.get("user_type") if isinstance(body, dict) else None
    if user_type is not None and not isinstance(user_type, str):
        return error(422, "user_type must be a string", field="user_type")
    try:
        with transaction(rt.sessions) as session:
            sent = operations.resend_link(session, rt.config, email, user_type or None, now=rt.clock())
    except operations.NotFound as exc:
        return error(404, str(exc))
    except operations.Refused as exc:
        return error(409, str(exc))
    except onboarding.OnboardingError as exc:
        return error(422, str(exc), field=exc.field)
    return jsonify({"queued": True, "user_type": sent.user_type}), 202
