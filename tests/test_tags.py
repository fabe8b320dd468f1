"""Tag planning (pure)."""

from bridge import config as config_module
from bridge.kyc.states import Status
from bridge.kyc.tags import plan


def test_approved_investor_attaches_status_and_type_and_detaches_every_other_status_tag():
    config = config_module.load(None)
    result = plan(config.status_tags, Status.APPROVED, config.user_types["investor"])
    assert [t.slug for t in result.attach] == ["kyc-approved", "kyc-type-investor"]
    detached = {t.slug for t in result.detach}
    assert detached == {t.slug for t in config.status_tags.values()} - {"kyc-approved"}
    assert not detached & {t.slug for t in result.attach}


def test_statuses_sharing_a_tag_do_not_detach_it():
    config = config_module.load(None)
    result = plan(config.status_tags, Status.PENDING, None)
    assert [t.slug for t in result.attach] == ["kyc-started"]
    assert "kyc-started" not in {t.slug for t in result.detach}
    assert len({t.slug for t in result.detach}) == len(result.detach)


def test_unknown_user_type_gets_no_type_tag():
    config = config_module.load(None)
    assert [t.slug for t in plan(config.status_tags, Status.DECLINED, None).attach] == ["kyc-declined"]


def test_withdrawal_detaches_every_kyc_tag_and_attaches_none():
    """Issue 17: after a consent withdrawal the sync removes the status, user-type, manual-review and
    monitoring tags."""
    from bridge.kyc import tags

    config = config_module.load(None)
    investor = config.user_types["investor"]
    withdrawal = tags.withdrawn(config.status_tags, investor, (config.manual_review_tag, config.monitoring_tag))
    slugs = {t.slug for t in withdrawal.detach}
    assert withdrawal.attach == ()
    assert {t.slug for t in config.status_tags.values()} <= slugs
    assert investor.tag.slug in slugs and config.manual_review_tag.slug in slugs
    assert config.monitoring_tag.slug in slugs
    assert len(slugs) == len(withdrawal.detach)  # each once
