"""TOML config: the bundled default loads; errors name the file, the key and the problem."""

import tomllib

import pytest

from bridge import config as config_module
from bridge.config import USER_TYPES, ConfigError
from bridge.kyc.states import Status


def bundled_document():
    from importlib import resources

    return tomllib.loads(resources.files("bridge").joinpath("default_config.toml").read_text())


def test_bundled_default_has_all_six_user_types_and_every_status_tag():
    config = config_module.load(None)
    assert set(config.user_types) == set(USER_TYPES)
    assert config.user_types["investor"].level == "enhanced"
    assert config.user_types["customer"].level == "basic"
    assert set(config.status_tags) == set(Status) - {Status.NOT_STARTED}
    assert config.signature_tolerance_seconds is None  # off by default: Persona retries for ~51 h
    assert config.max_body_bytes == 1024 * 1024


def test_renewals_are_off_by_default_and_read_per_user_type(tmp_path):
    config = config_module.load(None)
    assert not config.renewals_on and config.renewal.notice_days == (30, 7)
    assert all(t.reverify_after_days == 0 for t in config.user_types.values())
    assert config.schedule.interval("renew") == 3600
    document = bundled_document()
    document["user_types"]["investor"]["reverify_after_days"] = 365
    document["renewal"]["notice_days"] = [7, 45]
    path = tmp_path / "bridge.toml"
    path.write_text(_dump(document))
    config = config_module.load(str(path))
    assert config.renewals_on and config.user_types["investor"].reverify_after_days == 365
    assert config.renewal.notice_days == (45, 7)
    from datetime import datetime
    assert dict(config.renewal_policy(datetime.fromisoformat("2026-01-01T00:00:00+00:00")).days) == {"investor": 365}


def test_template_lookup():
    config = config_module.load(None)
    investor = config.user_types["investor"]
    assert config.user_type_for_template(investor.template_id) is investor
    assert config.user_type_for_template("itmpl_unconfigured") is None


@pytest.mark.parametrize("mutate, key, problem", [
    (lambda d: d["user_types"].__setitem__("astronaut", d["user_types"]["intern"]), "user_types.astronaut", "unknown user type"),
    (lambda d: d["user_types"]["investor"].pop("template_id"), "user_types.investor.template_id", "is missing"),
    (lambda d: d["user_types"]["investor"].__setitem__("template_id", "inv-1"), "user_types.investor.template_id", "Persona template id"),
    (lambda d: d["user_types"]["vendor"].__setitem__("level", "gold"), "user_types.vendor.level", "basic, enhanced"),
    (lambda d: d["user_types"]["vendor"]["tag"].__setitem__("slug", "KYC Vendor!"), "user_types.vendor.tag.slug", "not a slug"),
    (lambda d: d["fluentcrm"]["status_tags"]["approved"].__setitem__("slug", "Approved"), "fluentcrm.status_tags.approved.slug", "not a slug"),
    (lambda d: d["fluentcrm"]["status_tags"].__setitem__("done", {"title": "x", "slug": "x"}), "fluentcrm.status_tags.done", "not a KYC status"),
    (lambda d: d["user_types"].pop("intern"), "user_types.intern", "is missing"),
    (lambda d: d["webhooks"].__setitem__("max_body_bytes", 0), "webhooks.max_body_bytes", "greater than 0"),
    (lambda d: d["webhooks"].__setitem__("max_body_bytes", "1MB"), "webhooks.max_body_bytes", "must be int"),
    (lambda d: d.__setitem__("extra", {}), "extra", "unknown section"),
    (lambda d: d["bridge"].__setitem__("allowed_redirect_origins", ["shop.example"]), "bridge.allowed_redirect_origins[0]", "must be an origin"),
    (lambda d: d["bridge"].__setitem__("public_url", "kyc.example"), "bridge.public_url", "http:// or https://"),
    (lambda d: d["consent"].__setitem__("gdpr_processing", " "), "consent.gdpr_processing", "must not be empty"),
    (lambda d: d["user_types"]["investor"].__setitem__("reverify_after_days", -1), "user_types.investor.reverify_after_days", "must be 0"),
    (lambda d: d["user_types"]["investor"].__setitem__("reverify_after_days", "1y"), "user_types.investor.reverify_after_days", "must be int"),
    (lambda d: d["user_types"]["investor"].__setitem__("reverify_after_days", 30), "user_types.investor.reverify_after_days", "greater than the largest renewal notice window"),
    (lambda d: d["renewal"].__setitem__("notice_days", [30, 0]), "renewal.notice_days", "whole days greater than 0"),
    (lambda d: d["renewal"].__setitem__("notice_days", [7, 7]), "renewal.notice_days", "lists a day twice"),
    (lambda d: d["renewal"].__setitem__("notice_day", [7]), "renewal.notice_day", "unknown key"),
    (lambda d: d["schedule"].__setitem__("renew_every", "soon"), "schedule.renew_every", "not a duration"),
])
def test_errors_name_file_key_and_problem(tmp_path, mutate, key, problem):
    assert_refused(*load_with(tmp_path, mutate), key, problem)


def load_with(tmp_path, mutate):  # type: ignore[no-untyped-def]
    """The bundled config changed by `mutate`, written to a file: (path, a loader of it)."""
    document = bundled_document()
    mutate(document)
    path = tmp_path / "bridge.toml"
    path.write_text(_dump(document))
    return path, lambda: config_module.load(str(path))


def assert_refused(path, load, key: str, problem: str) -> None:  # type: ignore[no-untyped-def]
    """Loading fails with one message that names the file, the key and the problem."""
    with pytest.raises(ConfigError) as caught:
        load()
    message = str(caught.value)
    assert message.startswith(f"{path}: {key}: "), message
    assert problem in message


def test_syntax_error_and_missing_file(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text("[user_types\n")
    with pytest.raises(ConfigError, match=r"bad.toml: \(syntax\)"):
        config_module.load(str(bad))
    with pytest.raises(ConfigError, match=r"nope.toml: \(file\): cannot be read"):
        config_module.load(str(tmp_path / "nope.toml"))


def _dump(document, prefix=""):
    """Minimal TOML writer for the test's nested tables of strings, numbers and inline tables."""
    def value(v):
        if isinstance(v, str):
            return '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, dict):
            return "{ " + ", ".join(f"{k} = {value(x)}" for k, x in v.items()) + " }"
        return str(v)

    lines, tables = [], []
    for key, item in document.items():
        if isinstance(item, dict) and any(isinstance(x, dict) for x in item.values()) or (isinstance(item, dict) and not prefix):
            tables.append((key, item))
        else:
            lines.append(f"{key} = {value(item)}")
    out = "\n".join(lines) + "\n"
    for key, item in tables:
        name = f"{prefix}.{key}" if prefix else key
        scalars = {k: v for k, v in item.items() if not (isinstance(v, dict) and any(isinstance(x, dict) for x in v.values()) and k != "tag")}
        nested = {k: v for k, v in item.items() if k not in scalars}
        out += f"[{name}]\n" + "\n".join(f"{k} = {value(v)}" for k, v in scalars.items()) + "\n"
        for sub_key, sub in nested.items():
            out += _dump({sub_key: sub}, name)
    return out
