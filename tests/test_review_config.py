"""The `[review]` and `[privacy]` config sections: the review target per level in one place (with
`[n8n] review_deadline_hours` as a deprecated alias), and whether an erasure removes CRM tags."""

import pytest
from test_config import assert_refused, load_with

from bridge import config as config_module


def test_bundled_defaults():
    config = config_module.load(None)
    assert dict(config.review.target_hours) == {"basic": 24, "enhanced": 24}
    assert config.privacy.erase_crm_tags is True
    assert config.schedule.interval("review_overdue") == 15 * 60


def test_targets_per_level_and_the_strictest_for_an_unknown_level(tmp_path):
    _, load = load_with(tmp_path, lambda d: d["review"].update(target_hours={"enhanced": 48, "basic": 4}))
    review = load().review
    assert (review.target_for("basic"), review.target_for("enhanced"), review.target_for(None)) == (4, 48, 4)


def test_a_level_left_out_gets_24_hours_and_the_section_may_be_left_out(tmp_path):
    _, load = load_with(tmp_path, lambda d: d["review"].update(target_hours={"enhanced": 36}))
    assert dict(load().review.target_hours) == {"basic": 24, "enhanced": 36}
    _, load = load_with(tmp_path, lambda d: (d.pop("review"), d.pop("privacy")))
    assert load().review == config_module.ReviewConfig() and load().privacy.erase_crm_tags is True


def test_the_old_n8n_key_is_a_deprecated_alias_for_every_level(tmp_path):
    _, load = load_with(tmp_path, lambda d: (d.pop("review"), d["n8n"].update(review_deadline_hours=12)))
    assert dict(load().review.target_hours) == {"basic": 12, "enhanced": 12}


def test_erase_crm_tags_may_be_turned_off(tmp_path):
    _, load = load_with(tmp_path, lambda d: d["privacy"].update(erase_crm_tags=False))
    assert load().privacy.erase_crm_tags is False


@pytest.mark.parametrize("mutate, key, problem", [
    (lambda d: d["n8n"].update(review_deadline_hours=24), "n8n.review_deadline_hours",
     "remove review_deadline_hours"),
    (lambda d: d["review"].update(target_hours={"premium": 5}), "review.target_hours.premium", "unknown level"),
    (lambda d: d["review"].update(target_hours={"basic": 0}), "review.target_hours.basic", "greater than 0"),
    (lambda d: d["review"].update(target_hours={"basic": "24"}), "review.target_hours.basic", "must be int"),
    (lambda d: d["review"].update(target_hours={"basic": 1.5}), "review.target_hours.basic", "must be int"),
    (lambda d: d["review"].update(deadline=3), "review.deadline", "unknown key"),
    (lambda d: d["privacy"].update(erase_crm_tags="yes"), "privacy.erase_crm_tags", "true or false"),
    (lambda d: d["privacy"].update(forget=True), "privacy.forget", "unknown key"),
    (lambda d: d["schedule"].update(review_overdue_every="soon"), "schedule.review_overdue_every", "not a duration"),
])
def test_errors_name_file_key_and_problem(tmp_path, mutate, key, problem):
    assert_refused(*load_with(tmp_path, mutate), key, problem)
