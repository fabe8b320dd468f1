"""Parse a Persona webhook body (JSON:API) into the few facts the bridge keeps.

Reads both payload generations: pre-2025 inquiries carry top-level PII attributes
(`name-first`, `email-address`); from API version 2025-10-27 they live only in
`attributes.fields.<key>.value`. Keys may be kebab, snake or camel case.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from bridge.kyc import text


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


@dataclass(frozen=True)
class StoreLimits:
    """What the store can hold (bridge.store.limits reads it off the columns). An event whose
    identifiers or times do not fit is refused with EventFormatError (400: it could never be
    stored, so Persona's retries would fail the same way); a first name is cut to fit."""

    event_id: int
    event_name: int
    inquiry_id: int
    reference_id: int
    template_id: int
    first_name: int
    earliest: datetime
    latest: datetime


_CAMEL_BOUNDARY = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")


_KEY_CACHE: dict[str, str] = {}  # the same few dozen keys arrive in every webhook
_CACHED_KEYS, _CACHED_KEY_LENGTH = 4096, 64  # a body's many or long keys must not stay in memory


def canonical_key(key: str) -> str:
    """`reference_id`, `referenceId` and `reference-id` all become `reference-id`."""
    found = _KEY_CACHE.get(key)
    if found is None:
        found = _CAMEL_BOUNDARY.sub("-", key).replace("_", "-").lower()
        if len(key) <= _CACHED_KEY_LENGTH and len(_KEY_CACHE) < _CACHED_KEYS:
            _KEY_CACHE[key] = found
    return found


def _canonical(mapping: Any) -> dict[str, Any]:
    if not isinstance(mapping, dict):
        return {}
    cached = _KEY_CACHE.get  # a dict look-up per key; canonical_key only for one not seen before
    return {(cached(k) or canonical_key(k)): v for k, v in mapping.items() if isinstance(k, str)}


def parse_timestamp(value: Any, what: str, limits: StoreLimits | None = None) -> datetime:
    if not isinstance(value, str) or not value:
        raise EventFormatError(f"{what} is missing or not a string")
    try:
        parsed = datetime.fromisoformat(value.strip())
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=timezone.utc)
        parsed = parsed.astimezone(timezone.utc)  # year 1 at +01:00 is before year 1 in UTC
    except ValueError:
        raise EventFormatError(f"{what} is not an ISO 8601 timestamp") from None
    except OverflowError:
        raise EventFormatError(f"{what} is out of range") from None
    if limits is not None and not limits.earliest <= parsed <= limits.latest:
        raise EventFormatError(f"{what} is out of range")
    return parsed


def _optional_timestamp(value: Any, what: str, limits: StoreLimits | None) -> datetime | None:
    return None if value in (None, "") else parse_timestamp(value, what, limits)


def _identifier(value: str | None, what: str, max_length: int | None) -> str | None:
    """An id or name the store keeps as it is: refused when no store can hold it."""
    if value is None:
        return None
    if not text.storable(value):
        raise EventFormatError(f"{what} holds a NUL or an unpaired surrogate")
    if max_length is not None and len(value) > max_length:
        raise EventFormatError(f"{what} is longer than {max_length} characters")
    return value


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


def _inquiry(data: dict[str, Any], limits: StoreLimits | None) -> InquirySnapshot:
    inquiry_id = _identifier(_str_or_none(data.get("id")), "payload.data.id", limits and limits.inquiry_id)
    if inquiry_id is None:
        raise EventFormatError("payload.data.id (the inquiry id) is missing")
    attributes = _canonical(data.get("attributes"))
    relationships = _canonical(data.get("relationships"))
    template_id = _relationship_id(relationships, "inquiry-template") or _relationship_id(
        relationships, "template"
    )
    first_name = _field_value(attributes, "name-first")
    return InquirySnapshot(
        inquiry_id=inquiry_id,
        status=_str_or_none(attributes.get("status")),  # only compared with known statuses, never stored
        reference_id=_identifier(_str_or_none(attributes.get("reference-id")), "payload reference-id",
                                 limits and limits.reference_id),
        template_id=_identifier(template_id, "payload inquiry template id", limits and limits.template_id),
        # kyc.emails.normalize takes one too long for any mailbox, or with a NUL, for no address at all
        email=_field_value(attributes, "email-address"),
        first_name=text.display_text(first_name, limits.first_name) if limits else first_name,
        redacted_at=_optional_timestamp(attributes.get("redacted-at"), "payload redacted-at", limits),
    )


def parse(body: bytes, limits: StoreLimits | None = None) -> PersonaEvent:
    """The event in a webhook body; EventFormatError for anything else, whatever the bytes. With
    `limits`, also for an event the store could not hold."""
    try:
        document = json.loads(body)
    except RecursionError:
        raise EventFormatError("body is nested too deeply") from None
    except ValueError:  # JSONDecodeError, UnicodeDecodeError, an integer past int()'s digit limit
        raise EventFormatError("body is not valid JSON") from None
    if not isinstance(document, dict) or not isinstance(document.get("data"), dict):
        raise EventFormatError("body is not a JSON:API document with a top-level 'data' object")
    data = document["data"]
    if data.get("type") != "event":
        raise EventFormatError("data.type must be 'event'")
    event_id = _identifier(_str_or_none(data.get("id")), "data.id", limits and limits.event_id)
    if event_id is None:
        raise EventFormatError("data.id (the event id) is missing")
    attributes = _canonical(data.get("attributes"))
    name = _identifier(_str_or_none(attributes.get("name")), "data.attributes.name", limits and limits.event_name)
    if name is None:
        raise EventFormatError("data.attributes.name (the event name) is missing")
    created_at = parse_timestamp(attributes.get("created-at"), "data.attributes.created-at", limits)

    payload = attributes.get("payload")
    if payload is not None and not isinstance(payload, dict):
        raise EventFormatError("data.attributes.payload must be an object")
    payload_data = (payload or {}).get("data")
    if payload_data is not None and not isinstance(payload_data, dict):
        raise EventFormatError("data.attributes.payload.data must be an object")
    payload_data = payload_data or {}

    object_type = _str_or_none(payload_data.get("type"))
    object_id = _str_or_none(payload_data.get("id"))
    inquiry = _inquiry(payload_data, limits) if object_type == "inquiry" else None
    related = inquiry.inquiry_id if inquiry else _identifier(
        _relationship_id(_canonical(payload_data.get("relationships")), "inquiry"),
        "payload inquiry relationship id", limits and limits.inquiry_id)
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
