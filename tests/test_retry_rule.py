"""One retry rule (issue 17, item 5): per status, whether a person may try again ([onboarding.retry]);
the KYC lookups, the bridge's session start and the n8n email's retry link all follow it; attempts
count real inquiries, not clicks, and start again after an approval."""

from dataclasses import replace
from datetime import datetime, timedelta, timezone
from types import MappingProxyType

import pytest

from bridge import config as config_module
from bridge.config import ConfigError
from bridge.kyc import retry
from bridge.outbox.worker import Worker
from bridge.persona import samples
from conftest import admin_headers, new_id, post_event

CONSENT = {"share_with_persona": True, "persona_retention": True, "gdpr_processing": True,
           "text_version": "2026-11-01"}


def start(client, email="rae@example.com", user_type="investor"):
    return client.post("/api/v1/sessions", headers=admin_headers(),
                       json={"email": email, "user_type": user_type, "first_name": "Rae", "consent": CONSENT})


def webhook(client, config, inquiry_id, status, reference_id, user_type="investor", minutes_ago=0):
    event = samples.inquiry_event(event_id=new_id("evt"), inquiry_id=inquiry_id, status=status,
                                  created_at=datetime.now(timezone.utc) - timedelta(minutes=minutes_ago),
                                  reference_id=reference_id, template_id=config.user_types[user_type].template_id)
    assert post_event(client, event).status_code == 200


def lookup(client, email="rae@example.com"):
    return client.get(f"/api/v1/contacts/{email}/kyc", headers=admin_headers()).get_json()


@pytest.mark.parametrize("status, allowed", [
    ("not_started", True), ("created", True), ("pending", True), ("completed", False), ("needs_review", False),
    ("approved", False), ("declined", False), ("failed", True), ("expired", True),
])
def test_the_pure_rule_with_the_default(status, allowed):
    assert retry.may_retry(status, retry.DEFAULT) is allowed


def test_the_rule_is_configured_per_status(tmp_path):
    path = tmp_path / "bridge.toml"
    text = config_module.resources.files("bridge").joinpath("default_config.toml").read_text()
    path.write_text(text.replace("declined = false", "declined = true"))
    assert config_module.load(str(path)).retry_allowed["declined"] is True
    for bad, problem in (("declined = \"yes\"", "must be true or false"), ("approved = true", "not a status")):
        path.write_text(text.replace("declined = false", bad))
        with pytest.raises(ConfigError, match=f"onboarding.retry.{bad.split()[0]}: .*{problem}"):
            config_module.load(str(path))


def test_clicks_that_create_no_inquiry_use_no_attempts(client):
    """Without a Persona API key a click creates nothing at Persona: four quick clicks are not four attempts."""
    answers = [start(client) for _ in range(5)]
    assert [a.status_code for a in answers] == [201] * 5
    assert {a.get_json()["attempts_used"] for a in answers} == {1}
    assert len({a.get_json()["reference_id"] for a in answers}) == 1


def test_real_inquiries_count_and_an_approval_starts_the_count_again(client, config):
    reference = start(client).get_json()["reference_id"]
    for n in range(3):
        webhook(client, config, f"inq_r{n}", "failed", reference, minutes_ago=30 - n)
    assert start(client).status_code == 409  # three real attempts
    webhook(client, config, "inq_r_ok", "approved", reference, minutes_ago=1)  # e.g. approved after a review
    again = start(client)
    assert again.status_code == 201 and again.get_json()["attempts_used"] == 1


def test_declined_is_final_by_default_and_every_answer_says_so(client, config):
    reference = start(client).get_json()["reference_id"]
    webhook(client, config, "inq_d1", "declined", reference)
    assert lookup(client)["may_retry"] is False
    batch = client.get("/api/v1/contacts/kyc?email=rae@example.com", headers=admin_headers()).get_json()
    assert batch["items"][0]["may_retry"] is False
    refused = start(client)
    assert refused.status_code == 409 and refused.get_json()["manual_review"] is True
    assert "'declined'" in refused.get_json()["error"]


def test_a_site_that_allows_retry_after_a_decline(client, runtime, config):
    runtime.config = replace(config, retry_allowed=MappingProxyType({**retry.DEFAULT, "declined": True}))
    reference = start(client).get_json()["reference_id"]
    webhook(client, config, "inq_d2", "declined", reference)
    assert lookup(client)["may_retry"] is True
    assert start(client).status_code == 201


def test_failed_may_retry(client, config):
    reference = start(client).get_json()["reference_id"]
    webhook(client, config, "inq_f1", "failed", reference)
    assert lookup(client)["may_retry"] is True and start(client).status_code == 201


@pytest.mark.parametrize("declined_may_retry", [False, True])
def test_the_n8n_issue_email_carries_a_retry_link_only_when_the_rule_allows(client, n8n_runtime, config, n8n,
                                                                           declined_may_retry):
    n8n_runtime.config = replace(config, retry_allowed=MappingProxyType(
        {**retry.DEFAULT, "declined": declined_may_retry}))
    event = samples.inquiry_event(event_id=new_id("evt"), inquiry_id="inq_mail", status="declined",
                                  created_at=datetime.now(timezone.utc), email="rae@example.com",
                                  template_id=config.user_types["investor"].template_id)
    assert post_event(client, event).status_code == 200
    Worker(n8n_runtime).drain()
    [sent] = n8n.accepted()
    assert sent["type"] == "kyc.declined"
    assert (sent["links"]["verify"] is not None) is declined_may_retry
