"""Hostile input (issue 14): it costs a 4xx, never a 500, another event's 200, or a process."""

from __future__ import annotations

import io
import json
import logging
import signal as signals
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta, timezone

import pytest
import requests
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bridge.intake import ingest
from bridge.intake.group_commit import GroupCommitter
from bridge.persona import events, samples
from bridge.store.limits import EVENT_LIMITS
from bridge.store.models import AuditEntry, Contact, Event, Inquiry, Job
from conftest import signed_headers, start_production_server, wait_healthy

T0 = datetime(2025, 6, 1, tzinfo=timezone.utc)
GOOD_DIGEST = "0" * 64


def stored(runtime) -> dict[str, int]:
    with runtime.sessions() as session:
        return {m.__name__: session.scalar(sa.select(sa.func.count()).select_from(m))
                for m in (Event, Inquiry, Contact, Job, AuditEntry)}


def body(config, n=1, **overrides) -> dict:
    document = samples.inquiry_event(
        event_id=overrides.pop("event_id", f"evt_hostile{n:04d}"), inquiry_id=overrides.pop("inquiry_id", f"inq_h{n:04d}"),
        status="approved", created_at=T0 + timedelta(seconds=n), template_id=config.user_types["investor"].template_id,
        email=overrides.pop("email", f"h{n}@example.com"), first_name=overrides.pop("first_name", "Ada"))
    for path, value in overrides.items():  # "a.b.c" -> document[a][b][c] = value
        target = document
        *parents, last = path.split(".")
        for key in parents:
            target = target[key]
        target[last] = value
    return document


def post(client, document: dict | bytes):
    raw = document if isinstance(document, bytes) else json.dumps(document).encode()
    return client.post("/webhooks/persona", data=raw, headers=signed_headers(raw))


# -- 1. malformed signature headers: 401 and one short log line ------------------------------------------

@pytest.mark.parametrize("backend", ["sqlite"])
@pytest.mark.parametrize("header", [
    "t=1700000000,v1=" + "é" * 64,
    "t=" + "9" * 5000 + ",v1=" + GOOD_DIGEST,
    "t=17000000٠٠,v1=" + GOOD_DIGEST,
    " ".join(f"t={n},v1={GOOD_DIGEST}" for n in range(740)),
], ids=["non-ascii-v1", "long-t", "arabic-digit-t", "740-sets"])
def test_malformed_signature_headers_are_401_with_one_short_line(client, runtime, config, caplog, header):
    caplog.set_level(logging.INFO)
    raw = samples.encode(body(config))
    # the test client sends header values as latin-1, as a server would have decoded them
    response = client.post("/webhooks/persona", data=raw,
                           headers={"Persona-Signature": header.encode().decode("latin-1")})
    assert response.status_code == 401
    records = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(records) == 1 and records[0].exc_info is None and len(records[0].getMessage()) < 100
    assert sum(stored(runtime).values()) == 0


# -- 3. validly signed bodies that broke the parser: 400 --------------------------------------------------

@pytest.mark.parametrize("backend", ["sqlite"])
@pytest.mark.parametrize("raw, message", [
    (b"[" * 100_000 + b"]" * 100_000, "nested too deeply"),
    (b'{"data": {"n": ' + b"9" * 5000 + b"}}", "not valid JSON"),
    (b'{"data": {"type": "event", "id": "evt_1", "attributes": {"name": "inquiry.approved",'
     b' "created-at": "0001-01-01T00:00:00+01:00"}}}', "out of range"),
    (b'{"data": {"type": "event", "id": "evt_1", "attributes": {"name": "inquiry.approved",'
     b' "created-at": "9999-12-31T23:59:59-01:00"}}}', "out of range"),
])
def test_bodies_that_broke_the_parser_are_400(client, runtime, raw, message):
    response = post(client, raw)
    assert response.status_code == 400 and message in response.get_json()["error"]
    assert sum(stored(runtime).values()) == 0


def test_parse_raises_only_event_format_errors():
    for raw in (b"[" * 100_000, b"1" * 10_000, b'"\\ud800"', b"\xff", b"{}", b'{"data": []}'):
        with pytest.raises(events.EventFormatError):
            events.parse(raw, EVENT_LIMITS)


def test_text_the_store_can_hold():
    from bridge.kyc import text

    assert text.storable("Ada") and text.storable("Jürgen 𝄞") and not text.storable("a\x00") \
        and not text.storable("a\ud800")
    assert text.display_text("Å" * 150, 100) == "Å" * 100
    assert text.display_text("Jo\x00hn\ud800", 100) == "John?"
    assert text.display_text(" \x00 ", 100) is None and text.display_text(None, 100) is None


# -- 4. values the store cannot hold --------------------------------------------------------------------

POISON = {
    "long-event-id": {"data.id": "evt_" + "x" * 200},
    "nul-event-id": {"data.id": "evt_\x00nul"},
    "surrogate-event-id": {"data.id": "evt_\ud800"},
    "nul-event-name": {"data.attributes.name": "inquiry.\x00approved"},
    "long-event-name": {"data.attributes.name": "inquiry." + "a" * 200},
    "long-inquiry-id": {"inquiry_id": "inq_" + "y" * 100},
    "surrogate-inquiry-id": {"inquiry_id": "inq_\udfff"},
    "long-template": {"data.attributes.payload.data.relationships.inquiry-template.data.id": "itmpl_" + "t" * 100},
    "long-reference": {"data.attributes.payload.data.attributes.reference-id": "r" * 300},
    "old-redacted-at": {"data.attributes.payload.data.attributes.redacted-at": "0999-01-01T00:00:00Z"},
}


@pytest.mark.parametrize("poison", POISON, ids=list(POISON))
def test_a_value_the_store_cannot_hold_is_400_and_stores_nothing(client, runtime, config, poison):
    response = post(client, body(config, **POISON[poison]))
    assert response.status_code == 400, response.get_json()
    assert "holds a NUL" in response.get_json()["error"] or "longer than" in response.get_json()["error"] \
        or "out of range" in response.get_json()["error"]
    assert sum(stored(runtime).values()) == 0
    assert post(client, body(config, 2)).status_code == 200  # the next one is fine


def test_a_long_or_odd_first_name_is_trimmed_and_the_decision_kept(client, runtime, config):
    """A cosmetic field never costs a decision: the same stored name on every store."""
    long_name = "Å" * 150
    assert post(client, body(config, 1, first_name=long_name)).status_code == 200
    assert post(client, body(config, 2, first_name="Jo\x00hn\ud800")).status_code == 200
    with runtime.sessions() as session:
        names = dict(session.execute(sa.select(Contact.email, Contact.first_name)).all())
        statuses = set(session.scalars(sa.select(Inquiry.status)))
    assert names == {"h1@example.com": "Å" * 100, "h2@example.com": "John?"}
    assert statuses == {"approved"}


def test_an_email_no_mailbox_has_is_no_address_and_the_decision_is_kept(client, runtime, config):
    for n, email in enumerate(["a\x00b@example.com", "a\ud800@example.com", "x" * 400 + "@example.com"]):
        assert post(client, body(config, n, email=email)).status_code == 200
    counts = stored(runtime)
    assert counts["Event"] == counts["Inquiry"] == 3 and counts["Contact"] == 0


def test_a_transaction_the_store_refuses_is_retried_without_the_offender(runtime, config, monkeypatch, caplog):
    """Whatever slips past the checks: only the offender gets an error, its neighbours are stored."""
    good = [(events.parse(raw), raw) for raw in (samples.encode(body(config, n)) for n in range(6))]
    raw = samples.encode(body(config, 99))
    poison = events.parse(raw)  # without the store's limits: the store itself refuses it
    poison = events.PersonaEvent(**{**poison.__dict__, "event_id": "evt_\ud800" + "x" * 80})
    batch = good[:3] + [(poison, raw)] + good[3:]
    results = ingest.ingest_each(runtime.engine, config, batch, now=T0)
    assert [type(r).__name__ for r in results] == ["IngestResult"] * 3 + ["Unstorable"] + ["IngestResult"] * 3
    assert stored(runtime)["Event"] == 6
    assert not any(r.exc_info for r in caplog.records)


@pytest.mark.parametrize("backend", ["sqlite"])
def test_the_group_committer_answers_only_the_offender_with_an_error(runtime, config, monkeypatch):
    committer = GroupCommitter(runtime)
    raw_good = samples.encode(body(config, 1))
    raw_bad = samples.encode(body(config, 2))
    real_parse = ingest.parse

    def parse(raw):  # the store's limits missed this one
        event = real_parse(raw)
        return events.PersonaEvent(**{**event.__dict__, "event_id": "evt_\ud800"}) if raw == raw_bad else event

    monkeypatch.setattr(ingest, "parse", parse)
    from bridge.intake.group_commit import _Waiting

    waiting = [_Waiting(parse(raw_good), raw_good), _Waiting(parse(raw_bad), raw_bad)]
    committer._commit(waiting)
    assert waiting[0].result is not None and not waiting[0].result.duplicate
    assert isinstance(waiting[1].error, events.EventFormatError)
    assert stored(runtime)["Event"] == 1


# -- 5. chunked bodies over the limit -------------------------------------------------------------------

@pytest.mark.parametrize("backend", ["sqlite"])
def test_a_chunked_body_over_the_limit_is_413(app, runtime, config):
    app.config["MAX_CONTENT_LENGTH"] = 4096
    client = app.test_client()
    document = body(config)
    document["data"]["attributes"]["payload"]["included"] = [{"type": "x", "id": "x" * 4096}]
    raw = samples.encode(document)
    headers = {**signed_headers(raw), "Transfer-Encoding": "chunked"}
    # gunicorn decodes the chunks and says so with wsgi.input_terminated, as here
    terminated = {"wsgi.input_terminated": True}
    response = client.post("/webhooks/persona", input_stream=io.BytesIO(raw), headers=headers,
                           environ_overrides=terminated)
    assert response.status_code == 413
    exact = samples.encode(body(config, 3))
    exact += b" " * (4096 - len(exact))  # exactly the limit: accepted
    response = client.post("/webhooks/persona", input_stream=io.BytesIO(exact), environ_overrides=terminated,
                           headers={**signed_headers(exact), "Transfer-Encoding": "chunked"})
    assert response.status_code == 200
    assert stored(runtime)["Event"] == 1


# -- through the production server: poison mixed into 300 valid events ------------------------------------

def _signed_post(base: str, raw: bytes, headers: dict | None = None) -> int:
    return requests.post(f"{base}/webhooks/persona", data=raw, timeout=30,
                         headers=headers or signed_headers(raw)).status_code


def _hostile_requests(config) -> list[tuple[str, bytes, dict | None]]:
    """(what, body, headers or None for a valid signature): each must get a 4xx."""
    cases = [(name, json.dumps(body(config, 1000 + n, **changes)).encode(), None)
             for n, (name, changes) in enumerate(POISON.items())]
    raw = json.dumps(body(config, 2000)).encode()
    cases += [
        ("deep nesting", b"[" * 200_000 + b"]" * 200_000, None),
        ("huge number", b'{"data": ' + b"9" * 100_000 + b"}", None),
        ("year 1 at +01:00", json.dumps(body(config, 2001, **{"data.attributes.created-at": "0001-01-01T00:00:00+01:00"})).encode(), None),
        ("non-ascii v1", raw, {"Persona-Signature": ("t=1,v1=" + "é" * 64).encode().decode("latin-1")}),
        ("long t", raw, {"Persona-Signature": "t=" + "9" * 5000 + ",v1=" + "0" * 64}),
        ("many sets", raw, {"Persona-Signature": " ".join(f"t={n},v1={'0' * 64}" for n in range(700))}),
    ]
    return cases


@pytest.mark.parametrize("backend", ["mariadb", "postgres"])
def test_poison_among_300_valid_events_costs_only_itself_through_the_production_server(database_url, config, tmp_path):
    master, base = start_production_server(database_url, tmp_path, threads=8)
    try:
        wait_healthy(base)
        valid = [json.dumps(body(config, n, inquiry_id=f"inq_p{n % 40:03d}")).encode() for n in range(300)]
        hostile = _hostile_requests(config)
        work = [("valid", raw, None) for raw in valid]
        for n, case in enumerate(hostile):  # spread among the valid ones, so they share batches
            work.insert(n * len(work) // len(hostile), case)
        with ThreadPoolExecutor(max_workers=16) as pool:
            answers = list(pool.map(lambda case: (case[0], _signed_post(base, case[1], case[2])), work))
        # a chunked body past the limit, signed over what was sent
        big = json.dumps(body(config, 3000, **{"data.attributes.padding": "x" * (1024 * 1024)})).encode()
        answers.append(("chunked over the limit", requests.post(
            f"{base}/webhooks/persona", data=iter([big[i:i + 65536] for i in range(0, len(big), 65536)]),
            headers=signed_headers(big), timeout=30).status_code))
        assert requests.get(f"{base}/healthz", timeout=5).status_code == 200  # still serving
    finally:
        master.send_signal(signals.SIGTERM)
        output = master.communicate(timeout=60)[0]
    assert master.returncode == 0, output
    assert [a for a in answers if a[0] == "valid" and a[1] != 200] == []
    wrong = [(what, status) for what, status in answers if what != "valid" and not 400 <= status < 500]
    assert wrong == [], wrong
    assert "Traceback" not in output and "intake writer (pid" not in output, output  # nobody died or crashed
    engine = sa.create_engine(database_url)
    try:
        with engine.connect() as conn:
            assert conn.scalar(sa.text("SELECT count(*) FROM kyc_events")) == 300
    finally:
        engine.dispose()


# -- fuzz at the webhook --------------------------------------------------------------------------------

_ZONES = [timezone.utc, timezone(timedelta(hours=1)), timezone(timedelta(hours=-1)), timezone(timedelta(hours=14))]
_HUGE = st.integers(min_value=10 ** 300, max_value=10 ** 4000)
_TEXT = st.text(max_size=300) | st.text(alphabet=st.sampled_from("\x00\ud800\udfffé𝄞a-_."), max_size=80) \
    | st.builds(lambda n: "x" * n, st.integers(min_value=60, max_value=5000))
_DATES = st.datetimes(min_value=datetime(1, 1, 1), max_value=datetime(9999, 12, 31, 23, 59, 59),
                      timezones=st.sampled_from(_ZONES)).map(datetime.isoformat) | _TEXT
_SCALARS = st.none() | st.booleans() | st.integers() | _HUGE | st.floats() | _TEXT


def _containers(inner):
    return st.lists(inner, max_size=4) | st.dictionaries(_TEXT, inner, max_size=4)


_JSON = st.recursive(_SCALARS, _containers, max_leaves=20)
_FIELDS = {  # where a Persona event keeps the values the bridge reads
    "data.id": _TEXT, "data.type": st.just("event") | _JSON, "data.attributes.name": _TEXT | _JSON,
    "data.attributes.created-at": _DATES | _JSON, "inquiry_id": _TEXT, "email": _TEXT, "first_name": _TEXT | _JSON,
    "data.attributes.payload.data.attributes.redacted-at": _DATES,
    "data.attributes.payload.data.attributes.status": _TEXT | _JSON,
    "data.attributes.payload.data.attributes.reference-id": _TEXT | _JSON,
    "data.attributes.payload.data.relationships.inquiry-template.data.id": _TEXT | _JSON,
}
_EVENTS = st.fixed_dictionaries({}, optional=_FIELDS)
_DEEP = st.integers(min_value=1, max_value=200_000).map(lambda depth: b"[" * depth + b"]" * depth)
_HEADERS = st.text(max_size=2000).map(lambda h: h.encode("utf-8", "surrogatepass").decode("latin-1")).map(
    lambda h: h.replace("\r", "").replace("\n", ""))


def _fuzzed_body(config, case) -> bytes:
    kind, value = case
    if kind == "event":
        return json.dumps(body(config, 7, **value)).encode()
    if kind == "json":
        return json.dumps(value).encode()
    return value


@pytest.mark.parametrize("backend", ["sqlite"])
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                   HealthCheck.too_slow, HealthCheck.data_too_large])
@given(case=st.tuples(st.just("event"), _EVENTS) | st.tuples(st.just("json"), _JSON) | st.tuples(st.just("raw"), _DEEP),
       header=st.none() | _HEADERS)
def test_fuzzed_webhooks_never_cost_a_5xx_nor_store_anything_when_refused(client, runtime, config, case, header):
    raw = _fuzzed_body(config, case)
    before = stored(runtime)
    headers = signed_headers(raw) if header is None else {"Persona-Signature": header}
    response = client.post("/webhooks/persona", data=raw, headers=headers)
    assert response.status_code < 500, response.get_json()
    if response.status_code != 200:
        assert stored(runtime) == before
    # still serving
    ok = json.dumps(body(config, 8, event_id=f"evt_fz{id(case):x}{len(raw)}")).encode()
    assert client.post("/webhooks/persona", data=ok, headers=signed_headers(ok)).status_code == 200


# -- onboarding: 6. wp_user_id, 8. redirect_uri, display text ---------------------------------------------

CONSENT = {"share_with_persona": True, "persona_retention": True, "gdpr_processing": True}
ADMIN = {"Authorization": "Bearer test-admin-token"}


def _link_token(client, email="linked@example.com") -> str:
    url = client.post("/api/v1/links", json={"email": email, "user_type": "customer"}, headers=ADMIN).get_json()["url"]
    return url.rsplit("/", 1)[1]


def _wp_user_id(runtime, email: str):
    with runtime.sessions() as session:
        return session.scalar(sa.select(Contact.wp_user_id).where(Contact.email == email))


@pytest.mark.parametrize("backend", ["sqlite"])
def test_a_link_holder_cannot_set_the_wordpress_user_id(client, runtime):
    token = _link_token(client)
    response = client.post("/api/v1/sessions", json={"link_token": token, "consent": CONSENT, "wp_user_id": 1})
    assert response.status_code == 403 and "wp_user_id" in response.get_json()["error"]
    assert _wp_user_id(runtime, "linked@example.com") is None
    assert client.post("/api/v1/sessions", json={"link_token": token, "consent": CONSENT}).status_code == 201
    with_token = client.post("/api/v1/sessions", headers=ADMIN, json={
        "email": "linked@example.com", "user_type": "customer", "consent": CONSENT, "wp_user_id": 7})
    assert with_token.status_code == 201 and _wp_user_id(runtime, "linked@example.com") == 7


@pytest.mark.parametrize("value", [2 ** 70, 2 ** 63, -1, 0, "12", 1.5])
def test_an_out_of_range_wordpress_user_id_is_422(client, runtime, value):
    response = client.post("/api/v1/sessions", headers=ADMIN, json={
        "email": "range@example.com", "user_type": "customer", "consent": CONSENT, "wp_user_id": value})
    assert response.status_code == 422 and response.get_json()["field"] == "wp_user_id"
    assert _wp_user_id(runtime, "range@example.com") is None


@pytest.mark.parametrize("backend", ["sqlite"])
@pytest.mark.parametrize("uri", ["http://127.0.0.1:8000\r\n/x", "http://127.0.0.1:8000/\tdone",
                                 "http://127.0.0.1:8000/\ndone", "http\t://127.0.0.1:8000/", "http://127.0.0.1:8000/\x00"])
def test_a_redirect_uri_with_control_characters_is_422(client, runtime, config, uri):
    assert "http://127.0.0.1:8000" in config.allowed_redirect_origins
    response = client.post("/api/v1/sessions", headers=ADMIN, json={
        "email": "redir@example.com", "user_type": "customer", "consent": CONSENT, "redirect_uri": uri})
    assert response.status_code == 422 and response.get_json()["field"] == "redirect_uri"


def test_onboarding_trims_display_text_to_its_column_on_every_store(client, runtime):
    response = client.post("/api/v1/sessions", headers=ADMIN, json={
        "email": "long.name@example.com", "user_type": "customer", "consent": CONSENT,
        "first_name": "Ü" * 150, "user_agent": "Agent\x00" + "a" * 400})
    assert response.status_code == 201, response.get_json()
    link = client.post("/api/v1/links", headers=ADMIN, json={
        "email": "other.name@example.com", "user_type": "customer", "first_name": "B\x00ob" + "b" * 200})
    assert link.status_code == 201
    with runtime.sessions() as session:
        names = dict(session.execute(sa.select(Contact.email, Contact.first_name)).all())
    assert names == {"long.name@example.com": "Ü" * 100, "other.name@example.com": "Bob" + "b" * 97}


def test_an_email_with_a_nul_is_not_an_address(client, runtime):
    response = client.post("/api/v1/sessions", headers=ADMIN, json={
        "email": "nul\x00@example.com", "user_type": "customer", "consent": CONSENT})
    assert response.status_code == 422 and response.get_json()["field"] == "email"


@pytest.mark.parametrize("backend", ["sqlite"])
def test_a_short_fuzz_run_against_the_production_server(database_url, config, tmp_path):
    """The same fuzzing through gunicorn's own HTTP parsing and the intake writer."""
    master, base = start_production_server(database_url, tmp_path)
    engine = sa.create_engine(database_url)

    def count() -> int:
        with engine.connect() as conn:
            return conn.scalar(sa.text("SELECT count(*) FROM kyc_events"))

    @settings(max_examples=40, deadline=None, database=None,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
    @given(case=st.tuples(st.just("event"), _EVENTS) | st.tuples(st.just("json"), _JSON) | st.tuples(st.just("raw"), _DEEP),
           header=st.none() | _HEADERS)
    def probe(case, header):
        raw = _fuzzed_body(config, case)
        before = count()
        headers = signed_headers(raw) if header is None else {"Persona-Signature": header}
        status = requests.post(f"{base}/webhooks/persona", data=raw, headers=headers, timeout=30).status_code
        assert status < 500
        if status != 200:
            assert count() == before

    try:
        wait_healthy(base)
        probe()
        ok = json.dumps(body(config, 9, event_id="evt_fuzz_done")).encode()
        assert _signed_post(base, ok) == 200  # still serving
    finally:
        master.send_signal(signals.SIGTERM)
        output = master.communicate(timeout=60)[0]
        engine.dispose()
    assert "Traceback" not in output and "intake writer (pid" not in output, output
