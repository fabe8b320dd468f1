"""Admin reads and fixes of inquiries and jobs under /api/v1 (bearer BRIDGE_ADMIN_TOKEN)."""

from __future__ import annotations

from flask import Blueprint, jsonify, request

from bridge.kyc import emails
from bridge import operations, queries
from bridge.config import UNKNOWN_USER_TYPE
from bridge.kyc.states import Status
from bridge.store.engine import transaction
from bridge.web.common import error, require_admin_token, runtime

bp = Blueprint("api", __name__, url_prefix="/api/v1")
MAX_PER_PAGE = 100


def _positive_int(name: str, default: int, maximum: int | None = None) -> int:
    raw = request.args.get(name)
    if raw is None or raw == "":
        return default
    if not raw.isdigit() or int(raw) < 1 or (maximum is not None and int(raw) > maximum):
        upper = f" and at most {maximum}" if maximum else ""
        raise ValueError(f"query parameter {name} must be a whole number of at least 1{upper}")
    return int(raw)


LEVELS = ("basic", "enhanced")
ORDERS = {"asc": False, "desc": True}


def _choice(name: str, allowed, default: str | None = None) -> str | None:  # type: ignore[no-untyped-def]
    value = request.args.get(name) or default
    if value is not None and value not in allowed:
        raise ValueError(f"unknown {name}; expected one of {', '.join(allowed)}")
    return value


def _inquiry_filter() -> queries.InquiryFilter:
    """The list's filters and order from the query string; ValueError names the bad parameter."""
    rt = runtime()
    status = (request.args.get("status") or "").replace("-", "_") or None  # needs-review too
    if status and status not in {s.value for s in Status}:
        raise ValueError(f"unknown status; expected one of {', '.join(s.value for s in Status)}")
    user_type = request.args.get("user_type") or None
    if user_type and user_type not in (*rt.config.user_types, UNKNOWN_USER_TYPE):
        raise ValueError("unknown user_type")
    raw_email = request.args.get("email")
    email = emails.normalize(raw_email) if raw_email else None
    if raw_email and email is None:
        raise ValueError("query parameter email is not an email address")
    search = (request.args.get("search") or "").strip() or None
    if search and len(search) > 100:
        raise ValueError("query parameter search is longer than 100 characters")
    overdue_first = _choice("overdue_first", ("0", "1", "true", "false"), "0") in ("1", "true")
    return queries.InquiryFilter(
        status=status, user_type=user_type, level=_choice("level", LEVELS), email=email, search=search,
        sort=_choice("sort", queries.SORTS, "updated_at") or "updated_at",
        descending=ORDERS[_choice("order", tuple(ORDERS), "desc") or "desc"], overdue_first=overdue_first)


@bp.get("/inquiries")
@require_admin_token
def list_inquiries():  # type: ignore[no-untyped-def]
    rt = runtime()
    try:
        where = _inquiry_filter()
        page = _positive_int("page", 1)
        per_page = _positive_int("per_page", 25, MAX_PER_PAGE)
    except ValueError as exc:
        return error(400, str(exc))
    with transaction(rt.sessions) as session:
        now = rt.clock()
        result = queries.list_inquiries(session, where=where, page=page, per_page=per_page, now=now,
                                        targets=rt.config.review.target_hours, lapse=rt.config.renewal_policy(now))
    return jsonify({
        "items": [view.as_json() for view in result.items],
        "page": result.page, "per_page": result.per_page, "total": result.total,
        "pages": (result.total + result.per_page - 1) // result.per_page,
    })


@bp.get("/inquiries/<inquiry_id>")
@require_admin_token
def get_inquiry(inquiry_id: str):  # type: ignore[no-untyped-def]
    rt = runtime()
    with transaction(rt.sessions) as session:
        now = rt.clock()
        view = queries.get_inquiry(session, inquiry_id, now, targets=rt.config.review.target_hours,
                                   lapse=rt.config.renewal_policy(now))
    if view is None:
        return error(404, "no such inquiry")
    return jsonify(view.as_json())


@bp.post("/inquiries/<inquiry_id>/resync")
@require_admin_token
def resync_inquiry(inquiry_id: str):  # type: ignore[no-untyped-def]
    """Queue a CRM sync of the inquiry's current state (202; `queued` false when one already waits)."""
    rt = runtime()
    try:
        with transaction(rt.sessions) as session:
            added = operations.resync(session, rt.config, inquiry_id, now=rt.clock())
    except operations.NotFound as exc:
        return error(404, str(exc))
    return jsonify({"inquiry_id": inquiry_id, "queued": added}), 202


@bp.post("/jobs/retry")
@require_admin_token
def retry_jobs():  # type: ignore[no-untyped-def]
    """Re-queue dead (and failed) jobs: body {"email": …} for one person's, or {"all": true}."""
    rt = runtime()
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        return error(400, "the request body must be a JSON object with email or all")
    raw_email, retry_all = body.get("email"), body.get("all") is True
    if (raw_email is None) == (not retry_all):
        return error(400, "give either email (one person's jobs) or \"all\": true")
    email = None
    if raw_email is not None:
        email = emails.normalize(raw_email) if isinstance(raw_email, str) else None
        if email is None:
            return error(400, "email is not an email address")
    try:
        with transaction(rt.sessions) as session:
            ids = operations.retry_jobs(session, email, now=rt.clock())
    except operations.NotFound as exc:
        return error(404, str(exc))
    return jsonify({"requeued": ids, "count": len(ids)})
