"""Persona-shaped webhook bodies for the demo, the tests and the benchmark.

Shapes follow the spec's examples in shared/persona/ (payloads-openapi-2025-12-08 for the current
generation, payloads-openapi-2023-01-05 for the old top-level attributes).
"""

from __future__ import annotations

import json
from datetime import datetime, timezone

STATUS_EVENT = {
    "created": "inquiry.created",
    "pending": "inquiry.started",
    "completed": "inquiry.completed",
    "failed": "inquiry.failed",
    "expired": "inquiry.expired",
    "needs_review": "inquiry.marked-for-review",
    "approved": "inquiry.approved",
    "declined": "inquiry.declined",
}


def iso(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def inquiry_event(
    *, event_id: str, inquiry_id: str, status: str, created_at: datetime, template_id: str | None,
    email: str | None = None, first_name: str | None = None, reference_id: str | None = None,
    name: str | None = None, legacy: bool = False,
) -> dict:
    """One `inquiry.*` event body. `legacy` puts PII at the top level as before API 2025-10-27."""
    attributes: dict = {
        "status": status,
        "reference-id": reference_id,
        "created-at": iso(created_at),
        "redacted-at": None,
        "fields": {
            "name-first": {"type": "string", "value": first_name},
            "email-address": {"type": "string", "value": email},
        },
    }
    if legacy:
        attributes["fields"] = {}
        attributes["name-first"] = first_name
        attributes["email-address"] = email
    return {
        "data": {
            "type": "event",
            "id": event_id,
            "attributes": {
                "name": name or STATUS_EVENT[status],
                "created-at": iso(created_at),
                "payload": {
                    "data": {
                        "type": "inquiry",
                        "id": inquiry_id,
                        "attributes": attributes,
                        "relationships": {
                            "inquiry-template": {
                                "data": {"type": "inquiry-template", "id": template_id} if template_id else None
                            },
                        },
                    },
                    "included": [],
                },
            },
        }
    }


def encode(body: dict) -> bytes:
    return json.dumps(body, separators=(",", ":")).encode()


def report_event(*, event_id: str, report_id: str, inquiry_id: str, kind: str = "watchlist",
                 action: str = "matched", has_match: bool = True, created_at: datetime) -> dict:
    """One continuous-monitoring `report/<kind>.<action>` event body, shaped like the spec's
    report_watchlist.*.json examples (payloads-openapi-2025-12-08), without the person's name."""
    return {
        "data": {
            "type": "event",
            "id": event_id,
            "attributes": {
                "name": f"report/{kind}.{action}",
                "created-at": iso(created_at),
                "payload": {
                    "data": {
                        "type": f"report/{kind}",
                        "id": report_id,
                        "attributes": {
                            "status": "ready", "created-at": iso(created_at), "completed-at": iso(created_at),
                            "redacted-at": None, "has-match": has_match, "is-continuous": True,
                            "is-recurring": True, "tags": [], "matched-lists": [], "ignore-list": [],
                        },
                        "relationships": {
                            "inquiry": {"data": {"type": "inquiry", "id": inquiry_id}},
                            "account": {"data": None},
                            "report-template": {"data": {"type": f"report-template/{kind}", "id": "rptp_sample"}},
                        },
                    },
                },
            },
        }
    }
