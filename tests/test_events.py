"""Parsing Persona's event bodies: both payload generations, any key inflection, every spec example."""

import json
import re
from pathlib import Path

import pytest

from bridge.persona.events import EventFormatError, canonical_key, parse
from conftest import SHARED

PAYLOADS = SHARED / "persona"
INQUIRY_EXAMPLES = sorted(PAYLOADS.glob("payloads-*/inquiry*.json"))
ALL_EXAMPLES = sorted(PAYLOADS.glob("payloads-*/*.json"))


def _to_inflection(value, style):
    if isinstance(value, dict):
        out = {}
        for key, item in value.items():
            if style == "snake":
                key = key.replace("-", "_")
            elif style == "camel":
                key = re.sub(r"-(\w)", lambda m: m.group(1).upper(), key)
            # event names and `type` values are never inflected
            out[key] = _to_inflection(item, style)
        return out
    if isinstance(value, list):
        return [_to_inflection(v, style) for v in value]
    return value


def test_examples_are_present():
    assert len(INQUIRY_EXAMPLES) == 29
    assert len(ALL_EXAMPLES) >= 57


@pytest.mark.parametrize("path", INQUIRY_EXAMPLES, ids=lambda p: f"{p.parent.name[-10:]}/{p.stem}")
@pytest.mark.parametrize("style", ["kebab", "snake", "camel"])
def test_every_inquiry_example_parses(path: Path, style: str):
    document = json.loads(path.read_text())
    expected = document["data"]
    body = json.dumps(_to_inflection(document, style)).encode()
    event = parse(body)
    assert event.event_id == expected["id"]
    assert event.name == expected["attributes"]["name"]
    assert event.created_at.isoformat().startswith(expected["attributes"]["created-at"][:19])
    payload = expected["attributes"]["payload"]["data"]
    if payload["type"] == "inquiry":
        assert event.inquiry is not None
        assert event.inquiry.inquiry_id == payload["id"]
        assert event.inquiry.status == payload["attributes"]["status"]
        assert event.inquiry.template_id == payload["relationships"]["inquiry-template"]["data"]["id"]
        if event.name == "inquiry.redacted":
            assert event.inquiry.redacted_at is not None
            assert event.inquiry.email is None
    else:
        assert event.inquiry is None  # inquiry-session.*: stored, not a state change


@pytest.mark.parametrize("path", ALL_EXAMPLES, ids=lambda p: f"{p.parent.name[-10:]}/{p.stem}")
def test_every_example_of_any_event_parses(path: Path):
    event = parse(path.read_bytes())
    assert event.event_id.startswith("evt_")


def test_current_generation_reads_fields_values():
    event = parse((PAYLOADS / "payloads-openapi-2025-12-08/inquiry.approved.json").read_bytes())
    assert event.inquiry.email == "jane@example.com"
    assert event.inquiry.first_name == "Jane"


def test_old_generation_reads_top_level_attributes_when_fields_lack_them():
    document = json.loads((PAYLOADS / "payloads-openapi-2023-01-05/inquiry.approved.json").read_text())
    attributes = document["data"]["attributes"]["payload"]["data"]["attributes"]
    assert attributes["email-address"] == "jane@doe.com"
    attributes["fields"] = {}
    event = parse(json.dumps(document).encode())
    assert event.inquiry.email == "jane@doe.com"
    assert event.inquiry.first_name == attributes["name-first"]


def test_fields_win_over_top_level_attributes():
    document = json.loads((PAYLOADS / "payloads-openapi-2023-01-05/inquiry.approved.json").read_text())
    attributes = document["data"]["attributes"]["payload"]["data"]["attributes"]
    attributes["fields"]["email-address"] = {"type": "string", "value": "fields@example.com"}
    assert parse(json.dumps(document).encode()).inquiry.email == "fields@example.com"


def test_keys_inside_fields_in_any_style():
    for key in ("email_address", "emailAddress", "email-address"):
        body = {"data": {"type": "event", "id": "evt_x", "attributes": {
            "name": "inquiry.completed", "created-at": "2025-01-01T00:00:00Z",
            "payload": {"data": {"type": "inquiry", "id": "inq_x", "attributes": {
                "status": "completed", "fields": {key: {"type": "string", "value": "k@example.com"}}}}}}}}
        assert parse(json.dumps(body).encode()).inquiry.email == "k@example.com"


def test_canonical_key():
    assert canonical_key("reference_id") == canonical_key("referenceId") == canonical_key("reference-id") == "reference-id"
    assert canonical_key("inquiryTemplate") == "inquiry-template"


def test_unknown_event_name_parses_without_inquiry():
    body = {"data": {"type": "event", "id": "evt_new", "attributes": {
        "name": "something.brand-new", "created-at": "2025-01-01T00:00:00Z", "payload": {"data": {"type": "x", "id": "x_1"}}}}}
    event = parse(json.dumps(body).encode())
    assert event.name == "something.brand-new" and event.inquiry is None


@pytest.mark.parametrize("body, message", [
    (b"not json", "not valid JSON"),
    (b"\xff\xfe\x00", "not valid JSON"),
    (b"[]", "JSON:API"),
    (b'{"data": "x"}', "JSON:API"),
    (b'{"data": {"type": "inquiry", "id": "evt_1"}}', "data.type must be 'event'"),
    (b'{"data": {"type": "event", "attributes": {"name": "a", "created-at": "2025-01-01T00:00:00Z"}}}', "event id"),
    (b'{"data": {"type": "event", "id": "evt_1", "attributes": {"created-at": "2025-01-01T00:00:00Z"}}}', "event name"),
    (b'{"data": {"type": "event", "id": "evt_1", "attributes": {"name": "inquiry.approved"}}}', "created-at"),
    (b'{"data": {"type": "event", "id": "evt_1", "attributes": {"name": "a", "created-at": "yesterday"}}}', "ISO 8601"),
    (b'{"data": {"type": "event", "id": "evt_1", "attributes": {"name": "a", "created-at": "2025-01-01T00:00:00Z", "payload": []}}}', "payload"),
    (b'{"data": {"type": "event", "id": "evt_1", "attributes": {"name": "inquiry.approved", "created-at": "2025-01-01T00:00:00Z", "payload": {"data": {"type": "inquiry"}}}}}', "inquiry id"),
])
def test_malformed_bodies_name_the_problem(body, message):
    with pytest.raises(EventFormatError, match=re.escape(message)):
        parse(body)
