"""The FluentCRM test double reproduces the recorded 2.9.84 contract, and its test controls work."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from doubles.fluentcrm import FakeFluentCRM

CONTRACT = Path(__file__).resolve().parents[2] / "shared" / "fluentcrm-api" / "captured-responses-2.9.84.json"
TIMESTAMP = re.compile(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}\Z")
TIMESTAMP_KEYS = {"created_at", "updated_at", "last_activity"}
AVATAR = "/wp-content/plugins/fluent-crm/assets/images/avatar.png"


@pytest.fixture
def crm() -> Iterator[FakeFluentCRM]:
    with FakeFluentCRM() as server:
        yield server


def call(crm: FakeFluentCRM, method: str, route: str, *, auth: Any = "default", **kwargs: Any) -> requests.Response:
    credentials = (crm.username, crm.app_password) if auth == "default" else auth
    return requests.request(method, crm.base_url + route, auth=credentials, timeout=5, **kwargs)


def assert_same_shape(expected: Any, actual: Any, where: str) -> None:
    """Same keys recursively and same values, except timestamps (format only) and the avatar host."""
    if isinstance(expected, dict):
        assert isinstance(actual, dict), f"{where}: expected an object, got {actual!r}"
        assert set(actual) == set(expected), f"{where}: keys {sorted(actual)} != {sorted(expected)}"
        for key, value in expected.items():
            here = f"{where}.{key}"
            if key in TIMESTAMP_KEYS and value is not None:
                assert isinstance(actual[key], str) and TIMESTAMP.match(actual[key]), f"{here}: {actual[key]!r}"
            elif key == "photo":
                assert isinstance(actual[key], str) and actual[key].endswith(AVATAR), f"{here}: {actual[key]!r}"
            else:
                assert_same_shape(value, actual[key], here)
    elif isinstance(expected, list):
        assert isinstance(actual, list) and len(actual) == len(expected), f"{where}: {actual!r}"
        for index, (want, got) in enumerate(zip(expected, actual)):
            assert_same_shape(want, got, f"{where}[{index}]")
    else:
        assert type(actual) is type(expected) and actual == expected, f"{where}: {actual!r} != {expected!r}"


# ---------------------------------------------------------------------- the contract


def test_replays_every_recorded_call_with_the_same_status_and_body() -> None:
    assert CONTRACT.exists(), f"contract file missing: {CONTRACT}"
    calls = json.loads(CONTRACT.read_text())["calls"]
    assert len(calls) == 24
    # Seeded so ids line up with the recording (the captured site already had tags 1-2, contacts 1-4).
    with FakeFluentCRM(next_tag_id=3, next_contact_id=5) as crm:
        credentials = {"basic(app-password)": (crm.username, crm.app_password),
                       "basic(wrong)": (crm.username, "wrong wrong wrong wrong"), "none": None}
        for recorded in calls:
            request, expected = recorded["request"], recorded["response"]
            extra = {} if request["json"] is None else {"json": request["json"]}
            response = requests.request(request["method"], crm.site_url + request["path"],
                                        auth=credentials[request["auth"]], timeout=5, **extra)
            name = recorded["name"]
            assert response.status_code == expected["status"], name
            body = response.json()
            if response.ok:  # the double adds __bench to successes, as FluentCRM does
                assert isinstance(body.pop("__bench"), float), name
            assert_same_shape(expected["json"], body, name)
        assert [r.status for r in crm.requests] == [c["response"]["status"] for c in calls]


def test_the_shape_comparison_catches_differences() -> None:
    # Guards the guard: the replay test would be worthless if this comparison accepted anything.
    with pytest.raises(AssertionError):
        assert_same_shape({"a": {"b": "1"}}, {"a": {"b": 1}}, "$")
    with pytest.raises(AssertionError):
        assert_same_shape({"a": 1}, {"a": 1, "extra": 2}, "$")
    with pytest.raises(AssertionError):
        assert_same_shape({"message": "x"}, {"message": "y"}, "$")
    with pytest.raises(AssertionError):
        assert_same_shape([{"id": 1}], [], "$")


# ---------------------------------------------------------------------- auth


def test_app_password_works_with_or_without_spaces(crm: FakeFluentCRM) -> None:
    assert call(crm, "GET", "/tags").status_code == 200
    assert call(crm, "GET", "/tags", auth=(crm.username, crm.app_password.replace(" ", ""))).status_code == 200
    assert crm.requests[-1].user == crm.username


def test_wrong_or_missing_credentials_give_401_rest_forbidden(crm: FakeFluentCRM) -> None:
    for auth in (None, (crm.username, "nope"), ("someone-else", crm.app_password)):
        response = call(crm, "GET", "/tags", auth=auth)
        assert response.status_code == 401
        assert response.json() == {"code": "rest_forbidden", "message": "Sorry, you are not allowed to do that.",
                                   "data": {"status": 401}}


def test_user_without_capability_gets_403_with_the_same_body(crm: FakeFluentCRM) -> None:
    response = call(crm, "GET", "/subscribers/0", params={"get_by_email": "a@example.com"},
                    auth=(crm.limited_username, crm.limited_app_password))
    assert response.status_code == 403
    assert response.json() == {"code": "rest_forbidden", "message": "Sorry, you are not allowed to do that.",
                               "data": {"status": 403}}


def test_partial_capabilities_are_enforced_per_route() -> None:
    with FakeFluentCRM(capabilities={"fcrm_read_contacts"}) as crm:
        assert call(crm, "GET", "/subscribers").status_code == 200
        assert call(crm, "POST", "/subscribers", json={"email": "a@example.com", "status": "transactional"}).status_code == 403
        assert call(crm, "GET", "/tags").status_code == 403


def test_unknown_routes_and_methods_are_rest_no_route_even_without_auth(crm: FakeFluentCRM) -> None:
    for method, route in (("POST", "/subscribers/sync-tags"), ("GET", "/subscribers/sync-segments"),
                          ("DELETE", "/nothing-here"), ("GET", "/subscribers/abc")):
        response = call(crm, method, route, auth=None)
        assert response.status_code == 404
        assert response.json()["code"] == "rest_no_route"
    outside = requests.get(crm.site_url + "/not-wordpress-rest", timeout=5)
    assert outside.status_code == 404 and outside.headers["Content-Type"].startswith("text/html")


# ---------------------------------------------------------------------- tags


def test_tags_are_paginated_15_per_page_newest_first(crm: FakeFluentCRM) -> None:
    for n in range(20):
        crm.add_tag(f"KYC Level {n}", f"kyc-level-{n}")
    first = call(crm, "GET", "/tags", params={"search": "kyc-level", "exclude_counts": 1}).json()["tags"]
    assert (first["total"], first["per_page"], first["current_page"], first["last_page"]) == (20, 15, 1, 2)
    assert len(first["data"]) == 15 and first["data"][0]["slug"] == "kyc-level-19"
    assert first["next_page_url"] and first["prev_page_url"] is None and (first["from"], first["to"]) == (1, 15)
    assert "subscribersCount" not in first["data"][0]
    second = call(crm, "GET", "/tags", params={"search": "kyc-level", "page": 2}).json()["tags"]
    assert [t["slug"] for t in second["data"]] == [f"kyc-level-{n}" for n in range(4, -1, -1)]
    assert second["next_page_url"] is None and second["data"][0]["subscribersCount"] == 0


def test_tag_search_is_a_substring_match(crm: FakeFluentCRM) -> None:
    crm.add_tag("Verified", "kyc-verified")
    crm.add_tag("Verified old", "kyc-verified-old")
    crm.add_tag("Other", "other")
    slugs = [t["slug"] for t in call(crm, "GET", "/tags", params={"search": "verified"}).json()["tags"]["data"]]
    assert sorted(slugs) == ["kyc-verified", "kyc-verified-old"]


def test_create_tag_slugifies_and_rejects_duplicates(crm: FakeFluentCRM) -> None:
    created = call(crm, "POST", "/tags", json={"title": "KYC Verified"}).json()
    assert created["item"] == created["lists"] and created["item"]["slug"] == "kyc-verified"
    assert created["item"]["description"] == ""
    duplicate = call(crm, "POST", "/tags", json={"title": "Again", "slug": "kyc-verified"})
    assert duplicate.status_code == 422 and set(duplicate.json()) == {"slug"}
    assert call(crm, "GET", f"/tags/{created['item']['id']}").json()["tag"]["slug"] == "kyc-verified"


# ---------------------------------------------------------------------- contacts


def test_create_by_title_trap_on_create_and_attach_but_not_on_detach(crm: FakeFluentCRM) -> None:
    body = call(crm, "POST", "/subscribers", json={"email": "a@example.com", "status": "transactional",
                                                   "tags": ["Typo Tag", "ab"]}).json()
    assert [t["slug"] for t in body["contact"]["tags"]] == ["typo-tag"]  # "ab" is too short: skipped
    contact_id = body["contact"]["id"]
    call(crm, "PUT", f"/subscribers/{contact_id}", json={"detach_tags": ["never-existed"]})
    assert crm.tag("never-existed") is None
    call(crm, "PUT", f"/subscribers/{contact_id}", json={"attach_tags": ["attach-trap"]})
    assert crm.tag("attach-trap") is not None
    assert crm.contact("a@example.com").tag_slugs == ("attach-trap", "typo-tag")


def test_sync_segments_ignores_unknown_slugs_and_fails_on_unknown_contact(crm: FakeFluentCRM) -> None:
    contact_id = crm.add_contact("a@example.com")
    ok = call(crm, "POST", "/subscribers/sync-segments",
              json={"type": "tags", "subscribers": [contact_id], "attach": ["no-such-tag"]})
    assert ok.status_code == 200 and ok.json()["subscribers"][0]["tags"] == []
    assert crm.tags() == []
    broken = call(crm, "POST", "/subscribers/sync-segments",
                  json={"type": "tags", "subscribers": [999], "attach": ["x"]})
    assert broken.status_code == 500 and broken.json()["code"] == "internal_server_error"


def test_create_without_tags_has_no_tags_key_and_unknown_status_falls_back_to_subscribed(crm: FakeFluentCRM) -> None:
    body = call(crm, "POST", "/subscribers", json={"email": "a@example.com", "status": "transactionl"}).json()
    assert "tags" not in body["contact"]
    assert body["contact"]["status"] == "subscribed"  # FluentCRM's silent fallback: why clients must validate


@pytest.mark.parametrize(("before", "sent", "after"), [
    ("subscribed", "pending", "subscribed"),
    ("subscribed", "unsubscribed", "unsubscribed"),
    ("transactional", "subscribed", "subscribed"),
    ("pending", "transactional", "transactional"),
])
def test_force_update_status_rules(crm: FakeFluentCRM, before: str, sent: str, after: str) -> None:
    crm.add_contact("a@example.com", status=before, tag_slugs=["kept"])
    body = call(crm, "POST", "/subscribers",
                json={"email": "A@example.com", "status": sent, "__force_update": "yes", "tags": ["added"]}).json()
    assert body["action_type"] == "updated" and body["contact"]["status"] == after
    assert crm.contact("a@example.com").tag_slugs == ("added", "kept")  # tags are added, never replaced


def test_lookup_by_email_is_case_insensitive_and_unknown_is_422(crm: FakeFluentCRM) -> None:
    crm.add_contact("Alice@Example.com", first_name="Alice")
    found = call(crm, "GET", "/subscribers/0", params={"get_by_email": "alice@example.com"})
    assert found.status_code == 200 and found.json()["subscriber"]["first_name"] == "Alice"
    missing = call(crm, "GET", "/subscribers/0", params={"get_by_email": "bob@example.com"})
    assert (missing.status_code, missing.json()) == (422, {"message": "Subscriber not found"})


def test_put_can_be_sent_as_post_with_method_override(crm: FakeFluentCRM) -> None:
    contact_id = crm.add_contact("a@example.com")
    tag_id = crm.add_tag("Verified", "kyc-verified")
    response = call(crm, "POST", f"/subscribers/{contact_id}", params={"_method": "PUT"}, json={"attach_tags": [tag_id]})
    assert response.status_code == 200 and crm.requests[-1].method == "PUT"
    assert crm.contact("a@example.com").tag_slugs == ("kyc-verified",)


# ---------------------------------------------------------------------- recording and faults


def test_records_method_path_query_body_user_and_status(crm: FakeFluentCRM) -> None:
    call(crm, "GET", "/subscribers/0", params={"get_by_email": "a@example.com"})
    call(crm, "POST", "/tags", json={"title": "T1"}, auth=None)
    first, second = crm.requests
    assert (first.method, first.path, first.query, first.json, first.user, first.status) == (
        "GET", "/subscribers/0", {"get_by_email": ["a@example.com"]}, None, crm.username, 422)
    assert (second.method, second.path, second.json, second.user, second.status) == ("POST", "/tags", {"title": "T1"}, None, 401)
    assert crm.writes() == [second]


def test_down_then_back_up(crm: FakeFluentCRM) -> None:
    crm.go_down(503)
    down = call(crm, "GET", "/tags")
    assert down.status_code == 503 and down.headers["Content-Type"].startswith("text/html")
    assert call(crm, "GET", "/tags").status_code == 503
    crm.come_back_up()
    assert call(crm, "GET", "/tags").status_code == 200


def test_fail_next_n_then_recover(crm: FakeFluentCRM) -> None:
    crm.fail_next(2, status=500)
    assert [call(crm, "GET", "/tags").status_code for _ in range(3)] == [500, 500, 200]


def test_delay_provokes_client_timeouts(crm: FakeFluentCRM) -> None:
    crm.delay_responses(0.5, count=1)
    started = time.monotonic()
    with pytest.raises(requests.Timeout):
        requests.get(crm.base_url + "/tags", auth=(crm.username, crm.app_password), timeout=0.1)
    assert time.monotonic() - started < 0.45
    assert call(crm, "GET", "/tags").status_code == 200  # only one request was delayed


def test_reject_auth_makes_valid_credentials_fail(crm: FakeFluentCRM) -> None:
    crm.reject_auth()
    assert call(crm, "GET", "/tags").status_code == 401
    crm.reject_auth(False)
    assert call(crm, "GET", "/tags").status_code == 200


def test_successes_carry_bench_errors_do_not(crm: FakeFluentCRM) -> None:
    assert isinstance(call(crm, "GET", "/tags").json()["__bench"], float)
    assert "__bench" not in call(crm, "GET", "/tags/0", auth=None).json()
