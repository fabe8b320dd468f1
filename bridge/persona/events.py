"""Parse a Persona webhook body (JSON:API) into the few facts the bridge keeps.

Reads both payload generations: pre-2025 inquiries carry top-level PII attributes
(`name-first`, `email-address`); from API version 2025-10-27 they live only in
`attributes.fields.<key>.value`. Keys may be kebab, snake or camel case.
"""

from __future__ import annotations

import functools
import json
import re
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any


class EventFormatError(ValueError):
    """The body is not a Persona event; the message says what is wrong (never the body itself)."""


@dataclass(frozen=True)
class InquirySnapshot:
    inquiry_id: str
    status: str | None
    reference_id: str | None
    template_id: str | None
    email: str | None
    first_name: str | None
    redacted_at: datetime | None


@dataclass(frozen=True)
class PersonaEvent:
    event_id: str
    name: str
    created_at: datetime  # timezone-aware UTC; decides ordering
    object_type: str | None
    object_id: str | None
    inquiry: InquirySnapshot | None  # set when the payload is an inquiry
    related_inquiry_id: str | None  # the inquiry this event belongs to, if any
    has_match: bool | None = None  # a report's `has-match` (monitoring reports); None for other objects


_CAMEL_BOUNDARY = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")


@functools.lru_cache(maxsize=4096)  # the same few dozen keys arrive in every webhook
def canonical_key(key: str) -> str:
    """`reference_id`, `referenceId` and `reference-id` all become `reference-id`."""
    return _CAMEL_BOUNDARY.sub("-", key).replace("_", "-").lower()


def _canonical(mapping: Any) -> dict[str, Any]:
    if not isinstance(mapping, dict):
        return {}
    return {canonical_key(k): v for k, v in mapping.items() if isinstance(k, str)}


def parse_timestamp(value: Any, what: str) -> datetime:
    if not isinstance(value, str) or not value:
        raise EventFormatError(f"{what} is missing or not a string")
    try:
        parsed = datetime.fromisoformat(value.strip())
    except ValueError:
        raise EventFormatError(f"{what} is not an ISO 8601 timestamp") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=timezone.utc)
    return parsed.astimezone(timezone.utc)


def _optional_timestamp(value: Any, what: str) -> datetime | None:
    return None if value in (None, "") else parse_timestamp(value, what)


def _str_or_none(value: Any) -> str | None:
    if isinstance(value, str) and value.strip():
        return value.strip()
    return None


def _relationship_id(relationships: dict[str, Any], name: str) -> str | None:
    related = relationships.get(name)
    if isinstance(related, dict) and isinstance(related.get("data"), dict):
        return _str_or_none(related["data"].get("id"))
    return None


def _field_value(attributes: dict[str, Any], key: str) -> str | None:
    """`fields.<key>.value` first (current generation), then the old top-level attribute."""
    fields = _canonical(attributes.get("fields"))
    entry = fields.get(key)
    if isinstance(entry, dict):
        value = _str_or_none(entry.get("value"))
        if value is not None:
            return value
    elif entry is not None:
        value = _str_or_none(entry)
        if value is not None:
            return value
    return _str_or_none(attributes.get(key))


def _inquiry(data: dict[str, Any]) -> InquirySnapshot:
    inquiry_id = _str_or_none(data.get("id"))
    if inquiry_id is None:
        raise EventFormatError("payload.data.id (the inquiry id) is missing")
    attributes = _canonical(data.get("attributes"))
    relationships = _canonical(data.get("relationships"))
    template_id = _relationship_id(relationships, "inquiry-template") or _relationship_id(
        relationships, "template"
    )
    return InquirySnapshot(
        inquiry_id=inquiry_id,
        status=_str_or_none(attributes.get("status")),
        reference_id=_str_or_none(attributes.get("reference-id")),
        template_id=template_id,
        email=_field_value(attributes, "email-address"),
        first_name=_field_value(attributes, "name-first"),
        redacted_at=_optional_timestamp(attributes.get("redacted-at"), "payload redacted-at"),
    )


def parse(body: bytes) -> PersonaEvent:
    try:
        document = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise EventFormatError("body is not valid JSON") from None
    if not isinstance(document, dict) or not isinstance(document.get("data"), dict):
        raise EventFormatError("body is not a JSON:API document with a top-level 'data' object")
    data = document["data"]
    if data.get("type") != "event":
        raise EventFormatError("data.type must be 'event'")
    event_id = _str_or_none(data.get("id"))
    if event_id is None:
        raise EventFormatError("data.id (the event id) is missing")
    attributes = _canonical(data.get("attributes"))
    name = _str_or_none(attributes.get("name"))
    if name is None:
        raise EventFormatError("data.attributes.name (the event name) is missing")
    created_at = parse_timestamp(attributes.get("created-at"), "data.attributes.created-at")

    payload = attributes.get("payload")
    if payload is not None and not isinstance(payload, dict):
        raise EventFormatError("data.attributes.payload must be an object")
    payload_data = (payload or {}).get("data")
    if payload_data is not None and not isinstance(payload_data, dict):
        raise EventFormatError("data.attributes.payload.data must be an object")
    payload_data = payload_data or {}

    object_type = _str_or_none(payload_data.get("type"))
    object_id = _str_or_none(payload_data.get("id"))
    inquiry = _inquiry(payload_data) if object_type == "inquiry" else None
    related = inquiry.inquiry_id if inquiry else _relationship_id(
        _canonical(payload_data.get("relationships")), "inquiry"
    )
    has_match = None
    if object_type is not None and object_type.startswith("report/"):
        found = _canonical(payload_data.get("attributes")).get("has-match")
        has_match = found if isinstance(found, bool) else None
    return PersonaEvent(
        event_id=event_id,
        name=name,
        created_at=created_at,
        object_type=object_type,
        object_id=object_id,
        inquiry=inquiry,
        related_inquiry_id=related,
        has_match=has_match,
    )
