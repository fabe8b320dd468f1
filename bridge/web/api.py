"""Admin reads under /api/v1 (bearer BRIDGE_ADMIN_TOKEN)."""

from __future__ import annotations

from flask import Blueprint, jsonify, request

from bridge.kyc import emails
from bridge import queries
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


@bp.get("/inquiries")
@require_admin_token
def list_inquiries():  # type: ignore[no-untyped-def]
    rt = runtime()
    status = (request.args.get("status") or "").replace("-", "_") or None  # needs-review too
    if status and status not in {s.value for s in Status}:
        return error(400, f"unknown status; expected one of {', '.join(s.value for s in Status)}")
    user_type = request.args.get("user_type") or None
    if user_type and user_type not in (*rt.config.user_types, UNKNOWN_USER_TYPE):
        return error(400, "unknown user_type")
    raw_email = request.args.get("email")
    email = emails.normalize(raw_email) if raw_email else None
    if raw_email and email is None:
        return error(400, "query parameter email is not an email address")
    try:
        page = _positive_int("page", 1)
        per_page = _positive_int("per_page", 25, MAX_PER_PAGE)
    except ValueError as exc:
        return error(400, str(exc))
    with transaction(rt.sessions) as session:
        result = queries.list_inquiries(session, status=status,
                                        user_type=user_type, email=email, page=page, per_page=per_page)
    return jsonify({
        "items": [view.as_json() for view in result.items],
        "page": result.page, "per_page": result.per_page, "total": result.total,
        "pages": (result.total + result.per_page - 1) // result.per_page,
    })


@bp.get("/inquiries/<inquiry_id>")
@require_admin_token
def get_inquiry(inquiry_id: str):  # type: ignore[no-untyped-def]
    with transaction(runtime().sessions) as session:
        view = queries.get_inquiry(session, inquiry_id)
    if view is None:
        return error(404, "no such inquiry")
    return jsonify(view.as_json())
