"""The `[n8n]` config section: defaults, and errors that name the file, the key and the problem."""

import pytest

from bridge import config as config_module
from bridge.config import USER_TYPES, WELCOME_VARIANTS
from test_config import assert_refused, load_with


def test_bundled_defaults():
    n8n = config_module.load(None).n8n
    assert n8n.stalled_reminder_hours == (24, 72)
    assert n8n.stalled_max_age_hours == 168 and n8n.timeout_seconds == 10.0
    assert {t: n8n.welcome_variant(t) for t in USER_TYPES} == {
        "contributor": "team", "intern": "team", "investor": "investor", "customer": "agency",
        "cooperative_member": "membership", "vendor": "partner"}
    assert n8n.welcome_variant("unknown") == "standard"


def test_section_may_be_left_out(tmp_path):
    _, load = load_with(tmp_path, lambda d: d.pop("n8n"))
    assert load().n8n == config_module.N8nConfig()


def test_windows_are_sorted_and_may_be_empty(tmp_path):
    _, load = load_with(tmp_path, lambda d: d["n8n"].update(stalled_reminder_hours=[72, 6]))
    assert load().n8n.stalled_reminder_hours == (6, 72)
    _, load = load_with(tmp_path, lambda d: d["n8n"].update(stalled_reminder_hours=[]))
    assert load().n8n.stalled_reminder_hours == ()


def test_welcome_variant_override(tmp_path):
    _, load = load_with(tmp_path, lambda d: d["n8n"]["welcome_variants"].update(investor="standard"))
    assert load().n8n.welcome_variant("investor") == "standard"


@pytest.mark.parametrize("mutate, key, problem", [
    (lambda d: d["n8n"].update(stalled_reminder_hours=[0, 24]), "n8n.stalled_reminder_hours", "greater than 0"),
    (lambda d: d["n8n"].update(stalled_reminder_hours=[24, 24]), "n8n.stalled_reminder_hours", "lists an hour twice"),
    (lambda d: d["n8n"].update(stalled_reminder_hours="24"), "n8n.stalled_reminder_hours", "must be list"),
    (lambda d: d["n8n"].update(stalled_reminder_hours=[1.5]), "n8n.stalled_reminder_hours", "whole hours"),
    (lambda d: d["n8n"].update(stalled_max_age_hours=48), "n8n.stalled_max_age_hours", "last reminder window (72 h)"),
    (lambda d: (d.pop("review"), d["n8n"].update(review_deadline_hours=0)), "n8n.review_deadline_hours",
     "greater than 0"),
    (lambda d: d["n8n"].update(timeout_seconds="10"), "n8n.timeout_seconds", "must be int or float"),
    (lambda d: d["n8n"].update(remind_after=[24]), "n8n.remind_after", "unknown key"),
    (lambda d: d["n8n"]["welcome_variants"].update(customer="vip"), "n8n.welcome_variants.customer",
     "not a welcome variant"),
    (lambda d: d["n8n"]["welcome_variants"].update(astronaut="team"), "n8n.welcome_variants.astronaut",
     "unknown user type"),
])
def test_errors_name_file_key_and_problem(tmp_path, mutate, key, problem):
    assert_refused(*load_with(tmp_path, mutate), key, problem)


def test_variants_match_the_shipped_flow():
    """Each welcome variant has its own email in the flow; the fallback is `standard`."""
    import json
    from pathlib import Path

    flow = json.loads((Path(__file__).resolve().parents[1] / "n8n-flows/workflows/kyc-events.json").read_text())
    composers = {n["name"].split(": ", 1)[1] for n in flow["nodes"] if n["name"].startswith("Welcome: ")}
    assert composers == set(WELCOME_VARIANTS)
    [switch] = [n for n in flow["nodes"] if n["name"] == "Welcome variant"]
    keys = [rule["outputKey"] for rule in switch["parameters"]["rules"]["values"]]
    assert keys + [switch["parameters"]["options"]["renameFallbackOutput"]] == list(WELCOME_VARIANTS)
    outputs = flow["connections"]["Welcome variant"]["main"]
    assert [targets[0]["node"] for targets in outputs] == [f"Welcome: {v}" for v in WELCOME_VARIANTS]
