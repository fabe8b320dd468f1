"""FluentCRMClient against the fake FluentCRM over real HTTP."""

from __future__ import annotations

import logging
import pickle
import socket
import traceback
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote, quote_plus

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bridge.sinks.errors import SinkError
from bridge.sinks.fluentcrm import FluentCRMClient, SyncResult, TagRef
from conftest import wait_until
from doubles.fluentcrm import FakeFluentCRM, RecordedRequest

EMAIL = "alice.liddell+kyc@example.com"  # the "+" proves the lookup query is URL-encoded
FIRST_NAME = "Alice"
VERIFIED = TagRef("kyc-verified", "KYC Verified")
PENDING = TagRef("kyc-pending", "KYC Pending")
REJECTED = TagRef("kyc-rejected", "KYC Rejected")
TAG_KEYS = ("tags", "attach_tags", "detach_tags")


@pytest.fixture
def crm() -> Iterator[FakeFluentCRM]:
    with FakeFluentCRM() as server:
        yield server


@pytest.fixture
def sink(crm: FakeFluentCRM) -> FluentCRMClient:
    return make_client(crm)


def make_client(crm: FakeFluentCRM, **overrides: Any) -> FluentCRMClient:
    options: dict[str, Any] = {"base_url": crm.base_url, "username": crm.username,
                               "app_password": crm.app_password, "timeout": 2.0}
    options.update(overrides)
    return FluentCRMClient(**options)


def requests_to(crm: FakeFluentCRM, method: str, path: str) -> list[RecordedRequest]:
    return [r for r in crm.requests if r.method == method and r.path == path]


def tag_values_sent(crm: FakeFluentCRM) -> list[Any]:
    return [value for r in crm.writes() if isinstance(r.json, dict) for key in TAG_KEYS for value in r.json.get(key, [])]


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# ---------------------------------------------------------------------- creating and tagging


def test_creates_a_missing_contact_with_a_non_marketing_status_and_tag_ids(
        crm: FakeFluentCRM, sink: FluentCRMClient) -> None:
    pending_id = crm.add_tag("KYC Pending", "kyc-pending")

    result = sink.sync_contact_tags(EMAIL, FIRST_NAME, [VERIFIED, PENDING], [REJECTED])

    contact = crm.contact(EMAIL)
    assert contact is not None and contact.status == "transactional" and contact.first_name == FIRST_NAME
    assert contact.tag_slugs == ("kyc-pending", "kyc-verified")
    verified_id = crm.tag("kyc-verified").id
    assert result == SyncResult(contact.id, True, ("kyc-verified", "kyc-pending"), (),
                                result.tag_slugs_after)
    assert sorted(result.tag_slugs_after) == ["kyc-pending", "kyc-verified"]
    [create] = requests_to(crm, "POST", "/subscribers")
    assert create.json == {"email": EMAIL, "status": "transactional", "first_name": FIRST_NAME,
                           "tags": [verified_id, pending_id]}
    assert "__force_update" not in create.json
    assert all(type(v) is int for v in tag_values_sent(crm)), "tags must be sent as numeric ids"
    assert crm.tag("kyc-rejected") is None  # a detach tag is never created


def test_unsubscribed_can_be_the_new_contact_status(crm: FakeFluentCRM) -> None:
    make_client(crm, new_contact_status="unsubscribed").sync_contact_tags(EMAIL, None, [VERIFIED], [])
    assert crm.contact(EMAIL).status == "unsubscribed"
    assert "first_name" not in requests_to(crm, "POST", "/subscribers")[0].json


@pytest.mark.parametrize("status", ["subscribed", "pending", "transactionl", ""])
def test_marketing_or_unknown_new_contact_status_is_refused(crm: FakeFluentCRM, status: str) -> None:
    # FluentCRM silently turns an unknown status into 'subscribed' (marketing): refuse up front.
    with pytest.raises(ValueError):
        make_client(crm, new_contact_status=status)


@pytest.mark.parametrize("status", ["subscribed", "unsubscribed", "pending", "transactional"])
def test_existing_contact_keeps_its_status(crm: FakeFluentCRM, sink: FluentCRMClient, status: str) -> None:
    contact_id = crm.add_contact(EMAIL, first_name="Ally", status=status, tag_slugs=["kyc-pending"])

    result = sink.sync_contact_tags(EMAIL, FIRST_NAME, [VERIFIED], [PENDING])

    assert (result.contact_id, result.created) == (contact_id, False)
    contact = crm.contact(EMAIL)
    assert (contact.status, contact.first_name, contact.tag_slugs) == (status, "Ally", ("kyc-verified",))
    assert requests_to(crm, "POST", "/subscribers") == []
    [update] = crm.writes()[-1:]
    assert (update.method, update.path) == ("PUT", f"/subscribers/{contact_id}")
    assert set(update.json) <= {"attach_tags", "detach_tags"}


def test_contact_created_without_tags_reports_the_tags_fluentcrm_has(crm: FakeFluentCRM, sink: FluentCRMClient) -> None:
    # Created without tags, FluentCRM's answer has no 'tags' key: the client asks for the contact,
    # and reports what FluentCRM holds then (here an automation tagged the new contact meanwhile).
    crm.add_tag("Welcome", "welcome")
    crm.before_handle = lambda method, path, body: (
        crm.tag_contact(EMAIL, "welcome") if method == "GET" and path not in ("/subscribers/0", "/tags") else None)

    result = sink.sync_contact_tags(EMAIL, FIRST_NAME, [], [REJECTED])

    assert result.created and result.attached == () and result.tag_slugs_after == ("welcome",)
    assert [t.slug for t in crm.tags()] == ["welcome"]
    assert "tags" not in requests_to(crm, "POST", "/subscribers")[0].json


# ---------------------------------------------------------------------- tag resolution


def test_tag_resolution_walks_every_page_for_the_exact_slug(crm: FakeFluentCRM, sink: FluentCRMClient) -> None:
    target = crm.add_tag("KYC Verified", "kyc-verified")  # oldest: listed last (newest first)
    for n in range(250):
        crm.add_tag(f"KYC Verified {n}", f"kyc-verified-{n}")
    crm.add_contact(EMAIL)

    sink.sync_contact_tags(EMAIL, None, [VERIFIED], [])

    pages = [r.query.get("page", ["1"])[0] for r in requests_to(crm, "GET", "/tags")]
    assert len(pages) >= 2 and pages == [str(n) for n in range(1, len(pages) + 1)]
    assert requests_to(crm, "POST", "/tags") == []
    assert requests_to(crm, "PUT", f"/subscribers/{crm.contact(EMAIL).id}")[0].json == {"attach_tags": [target]}
    assert crm.contact(EMAIL).tag_slugs == ("kyc-verified",)


def test_missing_attach_tag_is_created_once_over_several_syncs(crm: FakeFluentCRM, sink: FluentCRMClient) -> None:
    for n in range(3):
        sink.sync_contact_tags(f"person{n}@example.com", None, [VERIFIED], [])
    # A second client (another worker, a restart) has no cache: it must find the tag, not re-create it.
    make_client(crm).sync_contact_tags("person3@example.com", None, [VERIFIED], [])

    assert [r.json for r in requests_to(crm, "POST", "/tags")] == [{"title": "KYC Verified", "slug": "kyc-verified"}]
    assert [t.slug for t in crm.tags()] == ["kyc-verified"]
    assert all(c.tag_slugs == ("kyc-verified",) for c in crm.contacts()) and len(crm.contacts()) == 4
    # The first client searched once, then used its cache.
    searches = [r for r in requests_to(crm, "GET", "/tags") if r.query.get("search") == ["kyc-verified"]]
    assert len(searches) == 2


def test_detaching_a_tag_that_does_not_exist_creates_nothing(crm: FakeFluentCRM, sink: FluentCRMClient) -> None:
    crm.add_contact(EMAIL, tag_slugs=["newsletter"])

    result = sink.sync_contact_tags(EMAIL, None, [], [REJECTED])

    assert crm.writes() == [] and [t.slug for t in crm.tags()] == ["newsletter"]
    assert (result.detached, result.tag_slugs_after) == ((), ("newsletter",))


def test_a_concurrently_created_tag_is_found_after_422(crm: FakeFluentCRM, sink: FluentCRMClient) -> None:
    raced: list[int] = []

    def other_worker(method: str, path: str, body: Any) -> None:
        if (method, path) == ("POST", "/tags") and not raced:
            raced.append(crm.add_tag("KYC Verified", "kyc-verified"))

    crm.before_handle = other_worker
    sink.sync_contact_tags(EMAIL, None, [VERIFIED], [])

    assert requests_to(crm, "POST", "/tags")[0].status == 422
    assert [t.id for t in crm.tags()] == raced
    assert requests_to(crm, "POST", "/subscribers")[0].json["tags"] == raced


def test_a_stale_cached_tag_id_is_resolved_again(crm: FakeFluentCRM, sink: FluentCRMClient) -> None:
    sink.sync_contact_tags("first@example.com", None, [VERIFIED], [])
    crm.delete_tag("kyc-verified")  # an admin deletes and re-creates the tag: new id
    new_id = crm.add_tag("KYC Verified", "kyc-verified")

    result = sink.sync_contact_tags(EMAIL, None, [VERIFIED], [])

    assert result.created and result.tag_slugs_after == ("kyc-verified",)
    assert crm.contact(EMAIL).tag_slugs == ("kyc-verified",)
    assert requests_to(crm, "PUT", f"/subscribers/{result.contact_id}")[0].json == {"attach_tags": [new_id]}


# ---------------------------------------------------------------------- idempotency and changes


def test_second_identical_sync_sends_no_write(crm: FakeFluentCRM, sink: FluentCRMClient) -> None:
    first = sink.sync_contact_tags(EMAIL, FIRST_NAME, [VERIFIED], [PENDING, REJECTED])
    before = (crm.contacts(), crm.tags())
    crm.clear_requests()

    second = sink.sync_contact_tags(EMAIL, FIRST_NAME, [VERIFIED], [PENDING, REJECTED])

    assert crm.writes() == []
    assert [(r.method, r.path) for r in crm.requests] == [("GET", "/subscribers/0")]
    assert (crm.contacts(), crm.tags()) == before
    assert second == SyncResult(first.contact_id, False, (), (), ("kyc-verified",))


def test_status_change_attaches_the_new_tag_and_detaches_the_old(crm: FakeFluentCRM, sink: FluentCRMClient) -> None:
    contact_id = crm.add_contact(EMAIL, tag_slugs=["kyc-pending", "newsletter"])
    verified_id = crm.add_tag("KYC Verified", "kyc-verified")
    pending_id = crm.tag("kyc-pending").id

    result = sink.sync_contact_tags(EMAIL, None, [VERIFIED], [PENDING, REJECTED])

    [update] = crm.writes()
    assert (update.method, update.path) == ("PUT", f"/subscribers/{contact_id}")
    assert update.json == {"attach_tags": [verified_id], "detach_tags": [pending_id]}
    assert (result.attached, result.detached) == (("kyc-verified",), ("kyc-pending",))
    assert sorted(result.tag_slugs_after) == ["kyc-verified", "newsletter"]
    assert crm.contact(EMAIL).tag_slugs == ("kyc-verified", "newsletter")


def test_a_tag_in_both_lists_is_never_sent(crm: FakeFluentCRM, sink: FluentCRMClient) -> None:
    crm.add_contact(EMAIL, tag_slugs=["kyc-pending"])
    pending_id = crm.tag("kyc-pending").id

    result = sink.sync_contact_tags(EMAIL, None, [VERIFIED, PENDING], [PENDING])

    assert pending_id not in tag_values_sent(crm)
    assert crm.contact(EMAIL).tag_slugs == ("kyc-pending", "kyc-verified")
    assert (result.attached, result.detached) == (("kyc-verified",), ())


def test_a_concurrently_created_contact_is_updated_not_overwritten(crm: FakeFluentCRM, sink: FluentCRMClient) -> None:
    def other_worker(method: str, path: str, body: Any) -> None:
        if (method, path) == ("POST", "/subscribers") and crm.contact(EMAIL) is None:
            crm.add_contact(EMAIL, status="subscribed")

    crm.before_handle = other_worker
    result = sink.sync_contact_tags(EMAIL, FIRST_NAME, [VERIFIED], [])

    assert requests_to(crm, "POST", "/subscribers")[0].status == 422
    assert not result.created and len(crm.contacts()) == 1
    assert crm.contact(EMAIL).status == "subscribed" and crm.contact(EMAIL).tag_slugs == ("kyc-verified",)


def test_a_timed_out_create_that_was_applied_is_not_duplicated(crm: FakeFluentCRM) -> None:
    crm.add_tag("KYC Verified", "kyc-verified")
    crm.delay_responses(0.6, count=1, method="POST", path="/subscribers")
    sink = make_client(crm, timeout=0.3)

    with pytest.raises(SinkError) as failure:
        sink.sync_contact_tags(EMAIL, None, [VERIFIED], [])
    assert failure.value.retryable
    wait_until(lambda: crm.contact(EMAIL) is not None, "the slow create", seconds=5.0)  # the slow server still applies the create

    result = sink.sync_contact_tags(EMAIL, None, [VERIFIED], [])
    assert not result.created and len(crm.contacts()) == 1
    assert crm.contact(EMAIL).tag_slugs == ("kyc-verified",)


def test_a_contact_deleted_between_lookup_and_update_is_retryable(crm: FakeFluentCRM, sink: FluentCRMClient) -> None:
    crm.add_contact(EMAIL)
    crm.add_tag("KYC Verified", "kyc-verified")
    crm.before_handle = lambda method, path, body: crm.delete_contact(EMAIL) if method == "PUT" else None

    with pytest.raises(SinkError) as failure:
        sink.sync_contact_tags(EMAIL, None, [VERIFIED], [])
    assert failure.value.retryable and failure.value.status == 404

    crm.before_handle = None
    assert sink.sync_contact_tags(EMAIL, None, [VERIFIED], []).created


def test_trailing_slash_in_base_url_is_tolerated(crm: FakeFluentCRM) -> None:
    make_client(crm, base_url=crm.base_url + "/").sync_contact_tags(EMAIL, None, [VERIFIED], [])
    assert crm.contact(EMAIL).tag_slugs == ("kyc-verified",)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    before=st.sets(st.sampled_from(["a-tag", "b-tag", "c-tag", "d-tag"])),
    attach=st.lists(st.sampled_from(["a-tag", "b-tag", "c-tag"]), max_size=3),
    detach=st.lists(st.sampled_from(["b-tag", "c-tag", "d-tag", "e-tag"]), max_size=3),
)
def test_sync_reaches_the_planned_tags_and_a_repeat_writes_nothing(
        crm: FakeFluentCRM, before: set[str], attach: list[str], detach: list[str]) -> None:
    email = f"p{len(crm.contacts())}@example.com"
    crm.add_contact(email, tag_slugs=sorted(before))
    sink = make_client(crm)
    ref = lambda slug: TagRef(slug, slug.title())  # noqa: E731
    both = set(attach) & set(detach)

    sink.sync_contact_tags(email, None, [ref(s) for s in attach], [ref(s) for s in detach])
    expected = (before - (set(detach) - both)) | (set(attach) - both)
    assert set(crm.contact(email).tag_slugs) == expected

    crm.clear_requests()
    sink.sync_contact_tags(email, None, [ref(s) for s in attach], [ref(s) for s in detach])
    assert crm.writes() == []


# ---------------------------------------------------------------------- errors


def test_wrong_credentials_are_not_retryable(crm: FakeFluentCRM) -> None:
    with pytest.raises(SinkError) as failure:
        make_client(crm, app_password="wrong").sync_contact_tags(EMAIL, None, [VERIFIED], [])
    assert (failure.value.retryable, failure.value.status) == (False, 401)
    assert "FLUENTCRM_APP_PASSWORD" in failure.value.reason


def test_revoked_credentials_are_not_retryable(crm: FakeFluentCRM, sink: FluentCRMClient) -> None:
    crm.reject_auth()
    with pytest.raises(SinkError) as failure:
        sink.ping()
    assert (failure.value.retryable, failure.value.status) == (False, 401)


def test_missing_capability_is_not_retryable(crm: FakeFluentCRM) -> None:
    limited = make_client(crm, username=crm.limited_username, app_password=crm.limited_app_password)
    with pytest.raises(SinkError) as failure:
        limited.sync_contact_tags(EMAIL, None, [VERIFIED], [])
    assert (failure.value.retryable, failure.value.status) == (False, 403)
    assert "fcrm_read_contacts" in failure.value.reason


def test_missing_tag_capability_names_it() -> None:
    with FakeFluentCRM(capabilities={"fcrm_read_contacts", "fcrm_manage_contacts"}) as crm:
        with pytest.raises(SinkError) as failure:
            make_client(crm).sync_contact_tags(EMAIL, None, [VERIFIED], [])
    assert failure.value.status == 403 and "fcrm_manage_contact_cats" in failure.value.reason


@pytest.mark.parametrize("status", [408, 429, 500, 502, 503, 504])
def test_server_errors_and_throttling_are_retryable(crm: FakeFluentCRM, sink: FluentCRMClient, status: int) -> None:
    crm.inject(status, count=None)
    with pytest.raises(SinkError) as failure:
        sink.sync_contact_tags(EMAIL, None, [VERIFIED], [])
    assert (failure.value.retryable, failure.value.status) == (True, status)


def test_a_failure_in_the_middle_of_a_sync_is_retryable_and_the_retry_completes(
        crm: FakeFluentCRM, sink: FluentCRMClient) -> None:
    crm.add_contact(EMAIL, tag_slugs=["kyc-pending"])
    crm.add_tag("KYC Verified", "kyc-verified")
    sink.ping()
    crm.before_handle = lambda method, path, body: crm.fail_next(1, 500) if path == "/subscribers/0" else None
    with pytest.raises(SinkError) as failure:  # the lookup passes, the tag search gets the 500
        sink.sync_contact_tags(EMAIL, None, [VERIFIED], [PENDING])
    assert failure.value.retryable and "PHP error" in failure.value.reason
    crm.before_handle = None

    sink.sync_contact_tags(EMAIL, None, [VERIFIED], [PENDING])
    assert crm.contact(EMAIL).tag_slugs == ("kyc-verified",)


def test_timeout_is_retryable(crm: FakeFluentCRM) -> None:
    crm.delay_responses(1.0)
    with pytest.raises(SinkError) as failure:
        make_client(crm, timeout=0.2).sync_contact_tags(EMAIL, None, [VERIFIED], [])
    assert failure.value.retryable and failure.value.status is None
    assert "did not answer" in failure.value.reason


def test_connection_refused_is_retryable() -> None:
    sink = FluentCRMClient(f"http://127.0.0.1:{closed_port()}/wp-json/fluent-crm/v2", "u", "p", timeout=2)
    with pytest.raises(SinkError) as failure:
        sink.sync_contact_tags(EMAIL, None, [VERIFIED], [])
    assert failure.value.retryable and failure.value.status is None
    assert failure.value.__cause__ is None and failure.value.__context__ is None  # the URL holds the email


def test_invalid_email_is_not_retryable_and_the_reason_omits_it(crm: FakeFluentCRM, sink: FluentCRMClient) -> None:
    bad_email = "alice.liddell(at)example"
    with pytest.raises(SinkError) as failure:
        sink.sync_contact_tags(bad_email, FIRST_NAME, [VERIFIED], [])
    assert (failure.value.retryable, failure.value.status) == (False, 422)
    assert "email.email" in failure.value.reason
    assert bad_email not in failure.value.reason and "alice" not in failure.value.reason


def test_down_then_back_up(crm: FakeFluentCRM, sink: FluentCRMClient) -> None:
    crm.go_down(503)
    with pytest.raises(SinkError) as failure:
        sink.sync_contact_tags(EMAIL, FIRST_NAME, [VERIFIED], [PENDING])
    assert failure.value.retryable and failure.value.status == 503
    assert crm.contacts() == [] and crm.tags() == []

    crm.come_back_up()
    result = sink.sync_contact_tags(EMAIL, FIRST_NAME, [VERIFIED], [PENDING])
    assert result.created and crm.contact(EMAIL).tag_slugs == ("kyc-verified",)


@pytest.mark.parametrize("suffix", ["/wp-json/fluent-crm/v3", "/wordpress"])
def test_wrong_base_url_is_not_retryable(crm: FakeFluentCRM, suffix: str) -> None:
    sink = make_client(crm, base_url=crm.site_url + suffix)
    with pytest.raises(SinkError) as failure:
        sink.sync_contact_tags(EMAIL, None, [VERIFIED], [])
    assert (failure.value.retryable, failure.value.status) == (False, 404)
    assert "FLUENTCRM_BASE_URL" in failure.value.reason


@pytest.mark.parametrize("body", [{"unexpected": True}, {"subscriber": {"id": "x"}}, "<html>ok</html>"])
def test_a_200_with_an_unexpected_body_is_not_retryable(crm: FakeFluentCRM, sink: FluentCRMClient, body: Any) -> None:
    crm.inject(200, body)
    with pytest.raises(SinkError) as failure:
        sink.sync_contact_tags(EMAIL, None, [VERIFIED], [])
    assert failure.value.retryable is False and "unexpected body" in failure.value.reason


def test_a_redirect_is_not_followed(crm: FakeFluentCRM, sink: FluentCRMClient) -> None:
    crm.inject(301, {"moved": True}, headers={"Location": crm.site_url + "/elsewhere"})
    with pytest.raises(SinkError) as failure:
        sink.sync_contact_tags(EMAIL, None, [VERIFIED], [])
    assert (failure.value.retryable, failure.value.status) == (False, 301)


def test_ping(crm: FakeFluentCRM, sink: FluentCRMClient) -> None:
    sink.ping()
    assert crm.requests[-1].query == {"per_page": ["1"], "exclude_counts": ["1"]}
    crm.fail_next(1, 503)
    with pytest.raises(SinkError) as failure:
        sink.ping()
    assert failure.value.retryable


def test_sink_error_survives_pickling() -> None:
    error = pickle.loads(pickle.dumps(SinkError("FluentCRM answered 503", retryable=True, status=503)))
    assert (error.reason, error.retryable, error.status) == ("FluentCRM answered 503", True, 503)


# ---------------------------------------------------------------------- no personal data


def test_no_email_or_name_in_any_reason_or_log_record(crm: FakeFluentCRM, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="bridge")
    email, name = "Secret.Person+kyc@example.com", "Secretname"
    errors: list[SinkError] = []

    def attempt(sink: FluentCRMClient, address: str = email) -> None:
        try:
            sink.sync_contact_tags(address, name, [VERIFIED], [PENDING])
        except SinkError as error:
            errors.append(error)

    attempt(make_client(crm))  # success: logs creation
    attempt(make_client(crm, app_password="wrong"))
    attempt(make_client(crm, username=crm.limited_username, app_password=crm.limited_app_password))
    attempt(make_client(crm), "Secret.Person(at)example")
    attempt(make_client(crm, base_url=crm.site_url + "/wp-json/nope"))
    attempt(FluentCRMClient(f"http://127.0.0.1:{closed_port()}/wp-json/fluent-crm/v2", "u", "p"))
    for status, body in ((503, None), (500, None), (422, {"email": {"email": f"{email} is bad"}}),
                         (200, {"subscriber": {"email": email}}), (200, f"<p>{email}</p>")):
        crm.inject(status, body)
        attempt(make_client(crm))
    crm.delay_responses(0.5, count=1)
    attempt(make_client(crm, timeout=0.1))

    assert len(errors) == 11
    texts = [text for error in errors
             for text in (error.reason, str(error), repr(error), "".join(traceback.format_exception(error)))]
    ours = [r for r in caplog.records if r.name.startswith("bridge")]
    assert ours, "the scan must see the sink's own log records"
    texts += [record.getMessage() for record in caplog.records]
    texts += [caplog.text]
    secrets = {email, email.lower(), quote(email), quote_plus(email), quote(email, safe=""), name,
               "Secret.Person(at)example"}
    leaks = [(secret, text) for text in texts for secret in secrets if secret.lower() in text.lower()]
    assert leaks == []


def test_remove_tags_never_creates_a_contact_and_detaches_only_what_it_names(crm: FakeFluentCRM, sink: FluentCRMClient) -> None:
    """Issue 17 (consent withdrawal): an unknown person stays unknown; a known one loses only the named tags."""
    assert sink.remove_tags(EMAIL, [REJECTED]) is None
    assert crm.writes() == [] and crm.contacts() == []

    crm.add_contact(EMAIL, tag_slugs=["newsletter", REJECTED.slug])
    result = sink.remove_tags(EMAIL, [REJECTED, TagRef("kyc-approved", "KYC: Approved")])
    assert result is not None and result.detached == (REJECTED.slug,)
    assert crm.contact(EMAIL).tag_slugs == ("newsletter",)
    writes = len(crm.writes())
    assert sink.remove_tags(EMAIL, [REJECTED]).detached == ()  # a repeat writes nothing
    assert len(crm.writes()) == writes
