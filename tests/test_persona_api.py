"""PersonaClient against the fake Persona API over real HTTP, checked against Persona's OpenAPI spec.

Every request the client sends through the `persona` fixture, and every answer the fake gives it,
is validated against shared/persona/openapi.yaml (OpenAPI 3.1 = JSON Schema 2020-12) when the
test ends: path and method, parameters, bearer auth, the request body schema, the response schema.
"""

from __future__ import annotations

import logging
import re
import socket
import time
import traceback
from collections.abc import Iterator
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from email.utils import format_datetime
from typing import Any
from urllib.parse import urlsplit

import pytest
import requests
import yaml
from jsonschema import Draft202012Validator
from referencing import Registry
from referencing.jsonschema import DRAFT202012

from bridge.persona import samples
from bridge.sinks.errors import SinkError
from bridge.sinks.persona_api import PERSONA_VERSION, InquiryHandle, PersonaClient
from conftest import SHARED
from doubles.persona import DEFAULT_FIELDS, FakePersona, RecordedRequest

SPEC_PATH = SHARED / "persona" / "openapi.yaml"
SPEC_URI = "urn:persona-openapi:2025-12-08"  # base URI of the whole spec, so "#/components/…" resolves
TEMPLATE = "itmpl_p8ANAJy9iqadm2buF2xcVgqH"
REFERENCE = "kyc-7f3a9c"  # an internal id, never an email (reference persona.md, section 8)
PII = {"name-first": "Jane", "email-address": "jane.doe@example.com", "birthdate": "1994-04-12"}
OPERATIONS = {("post", "/inquiries"), ("get", "/inquiries/{inquiry-id}"),
              ("delete", "/inquiries/{inquiry-id}"), ("post", "/inquiries/{inquiry-id}/resume"), ("get", "/events")}


# ---------------------------------------------------------------------- the spec as a contract


class _SpecLoader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):  # type: ignore[misc]
    """YAML without implicit timestamps: "2025-12-08" must stay the string the enum lists."""


_SpecLoader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def _query_value(text: str) -> Any:
    return int(text) if text.isascii() and text.isdigit() else text


def _escape(token: str) -> str:
    return token.replace("~", "~0").replace("/", "~1")


class Contract:
    """Checks recorded HTTP exchanges against one OpenAPI 3.1 document."""

    def __init__(self, spec: dict[str, Any]) -> None:
        self.spec = spec
        self.registry = Registry().with_resource(SPEC_URI, DRAFT202012.create_resource(spec))
        self.base_path = urlsplit(spec["servers"][0]["url"]).path.rstrip("/")  # "/api/v1"
        self._paths = []
        for template in spec["paths"]:
            names = re.findall(r"\{([^}]+)\}", template)
            pattern = re.sub(r"\\\{[^}]+\\\}", "([^/]+)", re.escape(template))
            literal = len(re.sub(r"\{[^}]+\}", "", template))
            self._paths.append((template, re.compile(pattern + r"\Z"), names, literal))

    # -------------------------------------------------------------- lookups

    def resolve(self, node: Any, pointer: str) -> tuple[Any, str]:
        """Follow an OpenAPI-level {"$ref": "#/…"} (parameters, responses, request bodies)."""
        while isinstance(node, dict) and isinstance(node.get("$ref"), str):
            pointer = node["$ref"][1:]
            node = self.spec
            for token in pointer.strip("/").split("/"):
                node = node[token.replace("~1", "/").replace("~0", "~")]
        return node, pointer

    def schema_errors(self, pointer: str, instance: Any) -> list[str]:
        validator = Draft202012Validator({"$ref": f"{SPEC_URI}#{pointer}"}, registry=self.registry)
        return [f"{'/'.join(map(str, error.absolute_path)) or '(root)'}: {error.message}"
                for error in validator.iter_errors(instance)]

    def operation(self, method: str, path: str) -> tuple[str, dict[str, Any], str, dict[str, str]] | None:
        """(path template, operation, its JSON pointer, path parameters), most literal match first."""
        if not path.startswith(self.base_path + "/"):
            return None
        route = path[len(self.base_path):]
        matches = sorted(((literal, template, found, names) for template, regex, names, literal in self._paths
                          if (found := regex.match(route))), key=lambda match: -match[0])
        for _, template, found, names in matches:
            operation = self.spec["paths"][template].get(method.lower())
            if operation is not None:
                pointer = f"/paths/{_escape(template)}/{method.lower()}"
                return template, operation, pointer, dict(zip(names, found.groups()))
        return None

    def _parameters(self, template: str, operation: dict[str, Any], pointer: str) -> list[tuple[dict, str]]:
        merged: dict[tuple[str, str], tuple[dict, str]] = {}
        path_item = f"/paths/{_escape(template)}"
        for owner, base in ((self.spec["paths"][template], path_item), (operation, pointer)):
            for index, raw in enumerate(owner.get("parameters", [])):
                parameter, at = self.resolve(raw, f"{base}/parameters/{index}")
                merged[(parameter["name"], parameter["in"])] = (parameter, at)
        return list(merged.values())

    # -------------------------------------------------------------- checks

    def request_problems(self, rec: RecordedRequest) -> list[str]:
        where = f"{rec.method} {rec.path}"
        found = self.operation(rec.method, rec.path)
        if found is None:
            return [f"{where}: no such operation in the spec"]
        template, operation, pointer, path_params = found
        problems: list[str] = []
        declared_query: set[str] = set()
        for parameter, at in self._parameters(template, operation, pointer):
            name, place = parameter["name"], parameter["in"]
            if place == "path":
                value: Any = path_params.get(name)
            elif place == "header":
                value = rec.header(name)
            elif place == "query":
                declared_query.add(name)
                if parameter.get("style") == "deepObject":
                    # On the wire every value is text; a number the schema asks for is digits.
                    value = {key[len(name) + 1:-1]: _query_value(values[-1]) for key, values in rec.query.items()
                             if key.startswith(name + "[") and key.endswith("]")} or None
                else:
                    value = rec.query.get(name, [None])[-1]
            else:
                continue
            if value is None:
                if parameter.get("required"):
                    problems.append(f"{where}: required {place} parameter {name!r} missing")
                continue
            problems += [f"{where}: {place} parameter {name!r}: {error}"
                         for error in self.schema_errors(f"{at}/schema", value)]
        for key in rec.query:
            if key.split("[")[0] not in declared_query:
                problems.append(f"{where}: query parameter {key!r} is not in the spec")
        problems += self._security_problems(operation, rec, where)
        problems += self._body_problems(operation, pointer, rec, where)
        return problems

    def _security_problems(self, operation: dict[str, Any], rec: RecordedRequest, where: str) -> list[str]:
        requirements = operation.get("security", self.spec.get("security", []))
        if not requirements:
            return []
        schemes = self.spec["components"]["securitySchemes"]
        for requirement in requirements:
            if all(self._satisfies(schemes[name], rec) for name in requirement):
                return []
        return [f"{where}: no security requirement of the spec is met ({requirements})"]

    @staticmethod
    def _satisfies(scheme: dict[str, Any], rec: RecordedRequest) -> bool:
        if scheme.get("type") == "http" and scheme.get("scheme", "").lower() == "bearer":
            return re.fullmatch(r"Bearer [\x21-\x7e]+", rec.header("Authorization") or "") is not None
        if scheme.get("type") == "apiKey" and scheme.get("in") == "header":
            return rec.header(scheme["name"]) is not None
        return False

    def _body_problems(self, operation: dict[str, Any], pointer: str, rec: RecordedRequest,
                       where: str) -> list[str]:
        raw_body = operation.get("requestBody")
        if raw_body is None:
            return [f"{where}: sends a body but the operation takes none"] if rec.body.strip() else []
        request_body, at = self.resolve(raw_body, f"{pointer}/requestBody")
        if not rec.body.strip():
            return [f"{where}: the request body is required"] if request_body.get("required") else []
        media_type = (rec.header("Content-Type") or "").split(";")[0].strip().lower()
        if media_type not in request_body["content"]:
            return [f"{where}: Content-Type {media_type!r} is not one of {sorted(request_body['content'])}"]
        if rec.json is None:
            return [f"{where}: the body is not JSON"]
        schema_at = f"{at}/content/{_escape(media_type)}/schema"
        return [f"{where}: request body {error}" for error in self.schema_errors(schema_at, rec.json)]

    def response_problems(self, rec: RecordedRequest) -> list[str]:
        """The answer against the operation's documented response; 5xx (injected faults) have no
        documented shape in the spec and are skipped."""
        where = f"{rec.method} {rec.path} → {rec.status}"
        found = self.operation(rec.method, rec.path)
        if found is None or rec.status >= 500:
            return []
        _, operation, pointer, _ = found
        responses = operation.get("responses", {})
        key = next((k for k in (str(rec.status), f"{rec.status // 100}XX", "default") if k in responses), None)
        if key is None:
            return [f"{where}: status not documented for this operation"]
        response, at = self.resolve(responses[key], f"{pointer}/responses/{key}")
        problems = []
        for name, raw_header in response.get("headers", {}).items():
            header, header_at = self.resolve(raw_header, f"{at}/headers/{_escape(name)}")
            value: Any = rec.response_headers.get(name)
            if value is None:
                continue
            if header.get("schema", {}).get("type") == "integer":
                value = int(value) if value.isdigit() else value
            problems += [f"{where}: header {name}: {error}"
                         for error in self.schema_errors(f"{header_at}/schema", value)]
        content = response.get("content")
        if content:
            media_type = next(iter(content))
            if rec.response_json is None:
                return problems + [f"{where}: the answer is not JSON"]
            schema_at = f"{at}/content/{_escape(media_type)}/schema"
            problems += [f"{where}: response body {error}"
                         for error in self.schema_errors(schema_at, rec.response_json)]
        return problems


@pytest.fixture(scope="session")
def spec() -> dict[str, Any]:
    with SPEC_PATH.open("rb") as handle:
        return yaml.load(handle, Loader=_SpecLoader)


@pytest.fixture(scope="session")
def contract(spec: dict[str, Any]) -> Contract:
    return Contract(spec)


def contract_problems(contract: Contract, server: FakePersona) -> list[str]:
    return [problem for rec in server.requests
            for problem in contract.request_problems(rec) + contract.response_problems(rec)]


@pytest.fixture
def persona(contract: Contract) -> Iterator[FakePersona]:
    """A running fake; when the test ends, every exchange it saw must match the spec."""
    with FakePersona() as server:
        yield server
    problems = contract_problems(contract, server)
    assert not problems, "exchanges that break the Persona spec:\n" + "\n".join(problems)


# ---------------------------------------------------------------------- helpers


class RecordingSession(requests.Session):
    """A real Session that also remembers the keyword arguments of each request (e.g. timeout)."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[dict[str, Any]] = []

    def request(self, method: str, url: str, *args: Any,  # type: ignore[override]
                **kwargs: Any) -> requests.Response:
        self.calls.append({"method": method, "url": url, **kwargs})
        return super().request(method, url, *args, **kwargs)


def make_client(persona: FakePersona, sleeps: list[float] | None = None, **options: Any) -> PersonaClient:
    options.setdefault("timeout", 5.0)
    return PersonaClient(persona.api_key, base_url=persona.base_url,
                         sleep=(sleeps if sleeps is not None else []).append, **options)


def create(client: PersonaClient, **overrides: Any) -> InquiryHandle:
    return client.create_inquiry(**{"template_id": TEMPLATE, "reference_id": REFERENCE, **overrides})


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


# ---------------------------------------------------------------------- the contract


def test_every_operation_the_client_uses_matches_the_spec(persona: FakePersona, contract: Contract) -> None:
    client = make_client(persona)
    handle = create(client, fields=PII, redirect_uri="https://shop.example/kyc/done", idempotency_key="k-1")
    for template in ("tmpl_ABC123", "itmplv_iXhqfNWqwYLAWs9G8Fm8hPfo"):
        create(client, template_id=template)
    persona.set_status(handle.inquiry_id, "expired")
    client.resume_inquiry(handle.inquiry_id)
    client.retrieve_inquiry(handle.inquiry_id)
    client.redact_inquiry(handle.inquiry_id)
    client.redact_inquiry(handle.inquiry_id)  # 409 already redacted
    with pytest.raises(SinkError):
        client.resume_inquiry(handle.inquiry_id)  # 409 on a redacted inquiry
    with pytest.raises(SinkError):
        client.retrieve_inquiry("inq_doesNotExist1234567890")  # 404
    with pytest.raises(SinkError):
        PersonaClient("persona_sandbox_wrong", base_url=persona.base_url).retrieve_inquiry(handle.inquiry_id)
    for n in range(3):
        persona.add_event(samples.inquiry_event(event_id=f"evt_contract{n}", inquiry_id=handle.inquiry_id,
                                                status="pending", created_at=datetime(2026, 12, 1, n, tzinfo=timezone.utc),
                                                template_id=TEMPLATE))
    page = client.list_events(names=("inquiry.started", "inquiry.approved"), page_size=2)
    client.list_events(after=page.next_cursor, page_size=2)

    used = {(rec.method.lower(), found[0]) for rec in persona.requests
            if (found := contract.operation(rec.method, rec.path))}
    assert used == OPERATIONS
    assert {rec.status for rec in persona.requests} >= {200, 201, 401, 404, 409}
    assert contract_problems(contract, persona) == []


def test_the_spec_documents_what_the_client_relies_on(spec: dict[str, Any]) -> None:
    create_op = spec["paths"]["/inquiries"]["post"]
    attributes = create_op["requestBody"]["content"]["application/json"]["schema"]["properties"]["data"][
        "properties"]["attributes"]["properties"]
    meta = create_op["requestBody"]["content"]["application/json"]["schema"]["properties"]["meta"]["properties"]
    assert {"inquiry-template-id", "template-id", "inquiry-template-version-id"} <= set(attributes)
    assert {"fields", "redirect-uri"} <= set(attributes)  # redirect-uri is allowed on create
    assert attributes["reference-id"].get("deprecated") is True
    assert {"auto-create-account", "auto-create-account-reference-id", "auto-create-inquiry-session"} <= set(meta)
    assert PERSONA_VERSION in spec["components"]["schemas"]["api-version"]["enum"]
    assert spec["components"]["securitySchemes"]["bearerAuth"]["scheme"] == "bearer"
    resume = spec["paths"]["/inquiries/{inquiry-id}/resume"]["post"]
    assert "requestBody" not in resume
    assert "session-token" in resume["responses"]["200"]["content"]["application/json"]["schema"]["properties"][
        "meta"]["required"]


def test_the_fake_serves_the_spec_examples_shape(spec: dict[str, Any]) -> None:
    example = spec["components"]["examples"]["inquiry"]["value"]["data"]
    with FakePersona() as server:
        server.add_inquiry(status="pending", reference_id=REFERENCE)
        body = requests.get(f"{server.base_url}/inquiries/{server.inquiries()[0].id}", timeout=5,
                            headers={"Authorization": f"Bearer {server.api_key}"}).json()["data"]
    assert list(body["attributes"]) == list(example["attributes"])  # same keys, same order
    assert list(body["attributes"]["fields"]) == list(example["attributes"]["fields"])
    assert list(example["attributes"]["fields"]) == [key for key, _ in DEFAULT_FIELDS]
    assert set(body["relationships"]) == set(example["relationships"])
    assert body["type"] == "inquiry" and body["id"].startswith("inq_")


BAD_REQUESTS = [
    pytest.param("POST", "/inquiries",
                 {"data": {"type": "inquiry", "attributes": {"inquiry-template-id": TEMPLATE}}}, {},
                 "'type' was unexpected", id="data.type-not-in-schema"),
    pytest.param("POST", "/inquiries", {"meta": {"auto-create-inquiry-session": True}}, {},
                 "'data' is a required property", id="missing-data"),
    pytest.param("POST", "/inquiries", {"data": {"attributes": {"inquiry_template_id": TEMPLATE}}}, {},
                 "'inquiry_template_id' was unexpected", id="unknown-attribute"),
    pytest.param("POST", "/inquiries", {"data": {"attributes": {"inquiry-template-id": TEMPLATE,
                                                                "fields": {"name-first": 7}}}}, {},
                 "fields", id="field-of-wrong-type"),
    pytest.param("POST", "/inquiries", {"data": {"attributes": {"inquiry-template-id": TEMPLATE}},
                                        "meta": {"auto-create-inquiry-session": "yes"}}, {},
                 "'yes' is not of type 'boolean'", id="meta-of-wrong-type"),
    pytest.param("PUT", "/inquiries/inq_ABC123", None, {}, "no such operation", id="unknown-method"),
    pytest.param("GET", "/inquiry/inq_ABC123", None, {}, "no such operation", id="unknown-path"),
    pytest.param("GET", "/inquiries/inq_ABC123", None, {"Authorization": None},
                 "no security requirement", id="no-bearer"),
    pytest.param("GET", "/inquiries/inq_ABC123", None, {"Persona-Version": "2024-01-01"},
                 "Persona-Version", id="unknown-api-version"),
    pytest.param("POST", "/inquiries/inq_ABC123/resume", {"meta": {}}, {},
                 "takes none", id="body-on-resume"),
    pytest.param("GET", "/inquiries/inq_ABC123?filter=x", None, {}, "'filter' is not in the spec",
                 id="undeclared-query"),
]


@pytest.mark.parametrize(("method", "route", "body", "headers", "expected"), BAD_REQUESTS)
def test_the_contract_check_rejects_requests_that_break_the_spec(
    contract: Contract, method: str, route: str, body: Any, headers: dict[str, str | None], expected: str
) -> None:
    with FakePersona() as server:
        sent = {"Authorization": f"Bearer {server.api_key}", "Persona-Version": PERSONA_VERSION, **headers}
        requests.request(method, server.base_url + route, json=body, timeout=5,
                         headers={k: v for k, v in sent.items() if v is not None})
    (rec,) = server.requests
    problems = contract.request_problems(rec)
    assert any(expected in problem for problem in problems), problems


def test_the_contract_check_rejects_answers_that_break_the_spec(contract: Contract) -> None:
    with FakePersona() as server:
        requests.post(f"{server.base_url}/inquiries", timeout=5,
                      headers={"Authorization": f"Bearer {server.api_key}"},
                      json={"data": {"attributes": {"inquiry-template-id": TEMPLATE}},
                            "meta": {"auto-create-inquiry-session": True}})
    (good,) = server.requests
    assert good.status == 201 and contract.response_problems(good) == []  # the control
    answer = good.response_json
    broken = {
        "meta missing": {"data": answer["data"]},
        "wrong type": {**answer, "data": {**answer["data"], "type": "account"}},
        "status not a string": {**answer, "data": {**answer["data"], "attributes": {
            **answer["data"]["attributes"], "status": None}}},
        "undocumented key": {**answer, "links": {}},
    }
    for name, body in broken.items():
        assert contract.response_problems(replace(good, response_json=body)), name
    assert contract.response_problems(replace(good, status=200)), "201 is the documented status"
    assert contract.response_problems(replace(good, status=401, response_json={"errors": [{"code": "x"}]}))


# ---------------------------------------------------------------------- headers and create


def test_every_request_carries_the_key_the_pinned_version_and_the_timeout(persona: FakePersona) -> None:
    session = RecordingSession()
    client = make_client(persona, session=session, timeout=4.5)
    handle = create(client)
    client.resume_inquiry(handle.inquiry_id)
    client.retrieve_inquiry(handle.inquiry_id)
    client.redact_inquiry(handle.inquiry_id)

    assert PERSONA_VERSION == "2025-12-08"
    assert [(rec.method, rec.route) for rec in persona.requests] == [
        ("POST", "/inquiries"), ("POST", f"/inquiries/{handle.inquiry_id}/resume"),
        ("GET", f"/inquiries/{handle.inquiry_id}"), ("DELETE", f"/inquiries/{handle.inquiry_id}")]
    for rec in persona.requests:
        assert rec.header("Authorization") == f"Bearer {persona.api_key}"
        assert rec.header("Persona-Version") == "2025-12-08"
        assert rec.header("Accept") == "application/json"
    assert persona.requests[0].header("Content-Type") == "application/json"
    assert all(rec.body == b"" for rec in persona.requests[1:])  # resume, retrieve, redact: no body
    assert [call["timeout"] for call in session.calls] == [4.5] * 4
    assert all(call["allow_redirects"] is False for call in session.calls)


def test_create_returns_the_inquiry_id_and_a_session_token(persona: FakePersona) -> None:
    handle = create(make_client(persona))

    (inquiry,) = persona.inquiries()
    assert handle == InquiryHandle(inquiry.id, "created", inquiry.session_tokens[0], REFERENCE)
    assert handle.inquiry_id.startswith("inq_") and handle.session_token
    (rec,) = persona.requests
    assert rec.json == {
        "data": {"attributes": {"inquiry-template-id": TEMPLATE}},
        "meta": {"auto-create-account": True, "auto-create-account-reference-id": REFERENCE,
                 "auto-create-inquiry-session": True},
    }
    assert rec.header("Idempotency-Key") is None
    assert inquiry.reference_id == REFERENCE


@pytest.mark.parametrize(("template_id", "attribute"), [
    ("itmpl_p8ANAJy9iqadm2buF2xcVgqH", "inquiry-template-id"),
    ("tmpl_ABC123", "template-id"),
    ("itmplv_iXhqfNWqwYLAWs9G8Fm8hPfo", "inquiry-template-version-id"),
])
def test_create_names_the_template_with_the_attribute_its_prefix_needs(
    persona: FakePersona, template_id: str, attribute: str
) -> None:
    handle = create(make_client(persona), template_id=template_id)

    (rec,) = persona.requests
    assert rec.json["data"]["attributes"] == {attribute: template_id}
    state = persona.inquiry(handle.inquiry_id)
    assert state is not None and (state.template_attribute, state.template_id) == (attribute, template_id)


@pytest.mark.parametrize("template_id", ["", "vtmpl_ABC", "itmpl_", "inq_ABC", "ITMPL_ABC"])
def test_create_refuses_a_template_id_of_no_known_kind_without_calling_persona(
    persona: FakePersona, template_id: str
) -> None:
    with pytest.raises(SinkError) as caught:
        create(make_client(persona), template_id=template_id)
    assert caught.value.retryable is False
    assert persona.requests == []


def test_create_sends_fields_the_redirect_uri_and_the_idempotency_key(persona: FakePersona) -> None:
    redirect = "https://shop.example/kyc/done?from=persona&x=1"
    handle = create(make_client(persona), fields=PII, redirect_uri=redirect, idempotency_key="onboard-42")

    (rec,) = persona.requests
    assert rec.json["data"]["attributes"]["fields"] == PII
    assert rec.json["data"]["attributes"]["redirect-uri"] == redirect
    assert "reference-id" not in rec.json["data"]["attributes"]  # deprecated: meta carries it
    assert rec.header("Idempotency-Key") == "onboard-42"
    state = persona.inquiry(handle.inquiry_id)
    assert state is not None and state.fields == PII and state.redirect_uri == redirect


# ---------------------------------------------------------------------- resume, retrieve, redact


def test_resume_brings_an_expired_inquiry_back_to_pending_with_a_session_token(persona: FakePersona) -> None:
    inquiry_id = persona.add_inquiry(status="expired", reference_id=REFERENCE)

    handle = make_client(persona).resume_inquiry(inquiry_id)

    assert handle.inquiry_id == inquiry_id and handle.status == "pending"
    state = persona.inquiry(inquiry_id)
    assert state is not None and state.status == "pending"
    assert handle.session_token and handle.session_token in state.session_tokens
    assert handle.reference_id == REFERENCE
    assert [(rec.method, rec.route) for rec in persona.requests] == [("POST", f"/inquiries/{inquiry_id}/resume")]


def test_resume_of_a_created_inquiry_keeps_its_status(persona: FakePersona) -> None:
    inquiry_id = persona.add_inquiry(status="created")
    handle = make_client(persona).resume_inquiry(inquiry_id)
    assert handle.status == "created" and handle.session_token


def test_resume_of_a_redacted_inquiry_is_a_final_error(persona: FakePersona) -> None:
    inquiry_id = persona.add_inquiry(status="approved", redacted=True)
    sleeps: list[float] = []
    with pytest.raises(SinkError) as caught:
        make_client(persona, sleeps).resume_inquiry(inquiry_id)
    assert (caught.value.retryable, caught.value.status) == (False, 409)
    assert "redacted" in caught.value.reason and inquiry_id in caught.value.reason
    assert len(persona.requests) == 1 and sleeps == []


def test_retrieve_reports_status_and_reference_id(persona: FakePersona) -> None:
    inquiry_id = persona.add_inquiry(status="needs_review", reference_id=REFERENCE, fields=PII)

    handle = make_client(persona).retrieve_inquiry(inquiry_id)

    assert handle == InquiryHandle(inquiry_id, "needs_review", None, REFERENCE)
    assert persona.requests[0].method == "GET"


def test_an_unknown_inquiry_is_a_final_not_found(persona: FakePersona) -> None:
    sleeps: list[float] = []
    client = make_client(persona, sleeps)
    for call in (client.retrieve_inquiry, client.resume_inquiry, client.redact_inquiry):
        with pytest.raises(SinkError) as caught:
            call("inq_doesNotExist1234567890")
        assert (caught.value.retryable, caught.value.status) == (False, 404)
        assert "inquiry not found" in caught.value.reason
    assert len(persona.requests) == 3 and sleeps == []


@pytest.mark.parametrize("bad_id", ["../webhooks", "inq_abc/../../x", "inq_", "act_ABC", "inq_ABC?x=1", ""])
def test_an_id_that_is_no_inquiry_id_never_reaches_the_url(persona: FakePersona, bad_id: str) -> None:
    client = make_client(persona)
    for call in (client.retrieve_inquiry, client.resume_inquiry, client.redact_inquiry):
        with pytest.raises(SinkError) as caught:
            call(bad_id)
        assert caught.value.retryable is False
    assert persona.requests == []


def test_redact_deletes_the_inquiry_data_and_a_repeat_is_done(persona: FakePersona) -> None:
    inquiry_id = persona.add_inquiry(status="approved", reference_id=REFERENCE, fields=PII)
    client = make_client(persona)

    assert client.redact_inquiry(inquiry_id) is None
    state = persona.inquiry(inquiry_id)
    assert state is not None and state.redacted and state.fields == {} and state.status == "approved"

    client.redact_inquiry(inquiry_id)  # Persona answers 409 "Inquiry already redacted": nothing left to do
    assert [(rec.method, rec.status) for rec in persona.requests] == [("DELETE", 200), ("DELETE", 409)]


def test_a_conflict_on_redact_that_is_not_about_redaction_is_an_error(persona: FakePersona) -> None:
    inquiry_id = persona.add_inquiry(status="pending")
    persona.inject(409, {"errors": [{"title": "Conflict", "details": "Attempted to update a record that was "
                                                                      "just modified. Please try again."}]})
    with pytest.raises(SinkError) as caught:
        make_client(persona).redact_inquiry(inquiry_id)
    assert (caught.value.retryable, caught.value.status) == (False, 409)


# ---------------------------------------------------------------------- retries


def test_429_is_retried_after_the_retry_after_seconds(persona: FakePersona) -> None:
    inquiry_id = persona.add_inquiry(status="pending")
    persona.rate_limit(count=2, retry_after=3)
    sleeps: list[float] = []

    handle = make_client(persona, sleeps).retrieve_inquiry(inquiry_id)

    assert handle.status == "pending"
    assert sleeps == [3.0, 3.0]
    assert [rec.status for rec in persona.requests] == [429, 429, 200]


def test_retry_after_is_capped(persona: FakePersona) -> None:
    inquiry_id = persona.add_inquiry()
    persona.rate_limit(retry_after=3600)
    sleeps: list[float] = []
    make_client(persona, sleeps).retrieve_inquiry(inquiry_id)
    assert sleeps == [30.0]


def test_retry_after_as_an_http_date_and_ratelimit_reset_without_it(persona: FakePersona) -> None:
    inquiry_id = persona.add_inquiry()
    sleeps: list[float] = []
    client = make_client(persona, sleeps)
    persona.rate_limit(retry_after=format_datetime(datetime.now(timezone.utc) + timedelta(seconds=6), usegmt=True))
    client.retrieve_inquiry(inquiry_id)
    persona.rate_limit(retry_after=None, reset=7)  # the spec's RateLimit-Reset: seconds until the window resets
    client.retrieve_inquiry(inquiry_id)
    assert 3.0 <= sleeps[0] <= 6.0 and sleeps[1] == 7.0


def test_429_until_the_retries_run_out_is_retryable(persona: FakePersona) -> None:
    inquiry_id = persona.add_inquiry()
    persona.rate_limit(count=10, retry_after=1)
    sleeps: list[float] = []
    with pytest.raises(SinkError) as caught:
        make_client(persona, sleeps, max_retries=2).retrieve_inquiry(inquiry_id)
    assert (caught.value.retryable, caught.value.status) == (True, 429)
    assert len(persona.requests) == 3 and sleeps == [1.0, 1.0]


@pytest.mark.parametrize("status", [500, 502, 503])
def test_5xx_is_retried_with_growing_jittered_backoff(persona: FakePersona, status: int) -> None:
    inquiry_id = persona.add_inquiry(status="completed")
    persona.fail_next(2, status)
    sleeps: list[float] = []

    handle = make_client(persona, sleeps, backoff_seconds=0.5).retrieve_inquiry(inquiry_id)

    assert handle.status == "completed"
    assert [rec.status for rec in persona.requests] == [status, status, 200]
    assert 0.25 <= sleeps[0] <= 0.5 and 0.5 <= sleeps[1] <= 1.0  # base·2^(n-1), half of it random


def test_backoff_is_jittered(persona: FakePersona) -> None:
    inquiry_id = persona.add_inquiry()
    sleeps: list[float] = []
    client = make_client(persona, sleeps, backoff_seconds=1.0)
    for _ in range(6):
        persona.fail_next(1, 500)
        client.retrieve_inquiry(inquiry_id)
    assert len(sleeps) == 6 and len(set(sleeps)) > 1


def test_5xx_until_the_retries_run_out_is_a_retryable_error(persona: FakePersona) -> None:
    inquiry_id = persona.add_inquiry()
    persona.go_down(500)
    sleeps: list[float] = []
    with pytest.raises(SinkError) as caught:
        make_client(persona, sleeps, max_retries=3).resume_inquiry(inquiry_id)
    assert (caught.value.retryable, caught.value.status) == (True, 500)
    assert len(persona.requests) == 4 and len(sleeps) == 3


def test_max_retries_zero_means_one_attempt(persona: FakePersona) -> None:
    inquiry_id = persona.add_inquiry()
    persona.fail_next(1, 503)
    with pytest.raises(SinkError) as caught:
        make_client(persona, max_retries=0).redact_inquiry(inquiry_id)
    assert caught.value.retryable is True and len(persona.requests) == 1


@pytest.mark.parametrize("fault", ["503", "429"])
def test_create_without_idempotency_key_is_never_repeated(persona: FakePersona, fault: str) -> None:
    if fault == "429":
        persona.rate_limit(retry_after=1)
    else:
        persona.fail_next(1, 503)
    sleeps: list[float] = []
    with pytest.raises(SinkError) as caught:
        create(make_client(persona, sleeps))
    assert caught.value.retryable is True and caught.value.status == int(fault)
    assert "Idempotency-Key" in caught.value.reason
    assert len(persona.requests) == 1 and sleeps == []


def test_create_without_idempotency_key_is_not_repeated_after_a_timeout(persona: FakePersona) -> None:
    persona.delay_responses(2.0, count=1)
    sleeps: list[float] = []
    with pytest.raises(SinkError) as caught:
        create(make_client(persona, sleeps, timeout=0.3))
    assert caught.value.retryable is True and caught.value.status is None
    persona.stop()  # let the slow request finish, then count
    assert len(persona.requests) == 1 and sleeps == []


def test_create_with_idempotency_key_is_retried_on_5xx_with_the_same_key(persona: FakePersona) -> None:
    persona.fail_next(2, 503)
    sleeps: list[float] = []
    handle = create(make_client(persona, sleeps), idempotency_key="onboard-7")

    assert [rec.status for rec in persona.requests] == [503, 503, 201]
    assert {rec.header("Idempotency-Key") for rec in persona.requests} == {"onboard-7"}
    assert [state.id for state in persona.inquiries()] == [handle.inquiry_id]
    assert len(sleeps) == 2


def test_create_retried_after_a_lost_answer_makes_one_inquiry(persona: FakePersona) -> None:
    # The first attempt is applied but answered too late; the repeat carries the same key, so
    # Persona answers with the inquiry it already made.
    persona.delay_responses(1.0, count=1, method="POST", path="/inquiries")
    handle = create(make_client(persona, timeout=0.3), idempotency_key="onboard-8")
    persona.stop()
    assert [state.id for state in persona.inquiries()] == [handle.inquiry_id]
    assert len(persona.requests) == 2


def test_a_timeout_is_retried_then_retryable(persona: FakePersona) -> None:
    inquiry_id = persona.add_inquiry()
    persona.delay_responses(3.0, count=None)
    sleeps: list[float] = []
    started = time.monotonic()
    with pytest.raises(SinkError) as caught:
        make_client(persona, sleeps, timeout=0.2, max_retries=1).retrieve_inquiry(inquiry_id)
    elapsed = time.monotonic() - started
    assert (caught.value.retryable, caught.value.status) == (True, None)
    assert "within 0.2s" in caught.value.reason
    assert len(sleeps) == 1 and elapsed < 2.0
    persona.stop()
    assert len(persona.requests) == 2


def test_a_timeout_then_success(persona: FakePersona) -> None:
    inquiry_id = persona.add_inquiry(status="approved")
    persona.delay_responses(1.0, count=1)
    handle = make_client(persona, timeout=0.3).retrieve_inquiry(inquiry_id)
    assert handle.status == "approved"


def test_an_unreachable_persona_is_retried_then_retryable() -> None:
    sleeps: list[float] = []
    client = PersonaClient("persona_sandbox_x", base_url=f"http://127.0.0.1:{closed_port()}/api/v1",
                           timeout=2, max_retries=2, sleep=sleeps.append)
    with pytest.raises(SinkError) as caught:
        client.retrieve_inquiry("inq_ABC123")
    assert caught.value.retryable is True and "unreachable" in caught.value.reason
    assert len(sleeps) == 2


# ---------------------------------------------------------------------- errors and secrets


def test_401_is_final_and_never_shows_the_key(persona: FakePersona, caplog: pytest.LogCaptureFixture) -> None:
    wrong_key = "persona_sandbox_" + "f00dfeed" * 4
    inquiry_id = persona.add_inquiry()
    sleeps: list[float] = []
    client = PersonaClient(wrong_key, base_url=persona.base_url, sleep=sleeps.append)
    caplog.set_level(logging.DEBUG)

    with pytest.raises(SinkError) as caught:
        client.retrieve_inquiry(inquiry_id)

    error = caught.value
    assert (error.retryable, error.status) == (False, 401)
    assert "PERSONA_API_KEY" in error.reason
    shown = " ".join([error.reason, str(error), repr(error), repr(client), str(vars(client)),
                      "".join(traceback.format_exception(error)), caplog.text])
    assert wrong_key not in shown and "f00dfeed" not in shown
    assert len(persona.requests) == 1 and sleeps == []


def test_a_revoked_key_is_final_on_every_operation(persona: FakePersona) -> None:
    inquiry_id = persona.add_inquiry()
    persona.reject_auth()
    client = make_client(persona)
    for call in (lambda: create(client), lambda: client.resume_inquiry(inquiry_id),
                 lambda: client.retrieve_inquiry(inquiry_id), lambda: client.redact_inquiry(inquiry_id)):
        with pytest.raises(SinkError) as caught:
            call()
        assert (caught.value.retryable, caught.value.status) == (False, 401)
        assert persona.api_key not in repr(caught.value)
    assert len(persona.requests) == 4


def test_403_is_final_and_points_at_the_key(persona: FakePersona) -> None:
    persona.inject(403, {"errors": [{"title": "Forbidden",
                                     "details": "IP address is not permitted access to current environment"}]})
    with pytest.raises(SinkError) as caught:
        create(make_client(persona), idempotency_key="k")
    assert (caught.value.retryable, caught.value.status) == (False, 403)
    assert "PERSONA_API_KEY" in caught.value.reason and "IP address" not in caught.value.reason


@pytest.mark.parametrize(("status", "title"), [(400, "Bad Request"), (409, "Conflict"),
                                               (422, "Unprocessable entity")])
def test_rejections_are_final_and_quote_only_the_title(persona: FakePersona, status: int, title: str) -> None:
    details = "Selected country code invalid for jane.doe@example.com born 1994-04-12"
    persona.inject(status, {"errors": [{"title": title, "details": details}]})
    sleeps: list[float] = []
    with pytest.raises(SinkError) as caught:
        create(make_client(persona, sleeps), fields=PII, idempotency_key="k")
    error = caught.value
    assert (error.retryable, error.status) == (False, status)
    assert title in error.reason and str(status) in error.reason
    assert "jane" not in error.reason and "1994" not in error.reason
    assert len(persona.requests) == 1 and sleeps == []


def test_a_title_that_is_not_plain_words_is_not_quoted(persona: FakePersona) -> None:
    persona.inject(422, {"errors": [{"title": "Invalid email jane.doe@example.com"}]})
    with pytest.raises(SinkError) as caught:
        create(make_client(persona))
    assert "jane" not in caught.value.reason and "422" in caught.value.reason


def test_an_unknown_template_is_a_final_not_found_that_names_the_template(persona: FakePersona) -> None:
    persona.inject(404, {"errors": [{"title": "Record not found",
                                     "details": "data.attributes.inquiry_template_id is not found"}]})
    with pytest.raises(SinkError) as caught:
        create(make_client(persona), idempotency_key="k")
    assert (caught.value.retryable, caught.value.status) == (False, 404)
    assert "template" in caught.value.reason and len(persona.requests) == 1


def test_no_personal_data_or_key_in_logs(persona: FakePersona, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    persona.fail_next(1, 503)
    client = make_client(persona)
    handle = create(client, fields=PII, idempotency_key="k-9")
    client.redact_inquiry(handle.inquiry_id)
    assert handle.inquiry_id in caplog.text  # it does log, by id
    for secret in (*PII.values(), persona.api_key, handle.session_token or "?"):
        assert secret not in caplog.text


def test_a_bad_api_key_is_refused_at_construction_without_echoing_it() -> None:
    for key in ("", "  ", "persona_sandbox_abc def", "persona_sandbox_abc\r\nX-Evil: 1", "persona_sandbox_é"):
        with pytest.raises(ValueError) as caught:
            PersonaClient(key)
        assert not key.strip() or key not in str(caught.value)


def test_a_trailing_newline_on_the_key_is_dropped(persona: FakePersona) -> None:
    inquiry_id = persona.add_inquiry()
    PersonaClient(persona.api_key + "\n", base_url=persona.base_url).retrieve_inquiry(inquiry_id)
    assert persona.requests[0].header("Authorization") == f"Bearer {persona.api_key}"


def test_an_unexpected_body_is_a_final_error(persona: FakePersona) -> None:
    inquiry_id = persona.add_inquiry()
    persona.inject(200, {"data": {"type": "account", "id": "act_ABC"}})
    with pytest.raises(SinkError) as caught:
        make_client(persona).retrieve_inquiry(inquiry_id)
    assert caught.value.retryable is False
    persona.clear_requests()  # the injected answer is off-spec on purpose: keep it out of the contract check
