"""The WordPress plugin (wp-plugin/): php -l, phpcs with the committed ruleset, the .pot, and
PHPUnit inside a real WordPress (Debian's package, its own MariaDB) against a real bridge.

The WordPress and bridge fixtures are in tests/wp/fixtures.py; without PHP, PHPUnit, phpcs or
WordPress the tests skip with a reason, except under CI=true.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path

from conftest import unavailable
from wp.services import ARTIFACTS, REPO, free_port

pytest_plugins = ["wp.fixtures"]

PLUGIN = REPO / "wp-plugin"
WP_TESTS = REPO / "tests" / "wp"


def need(tool: str, package: str) -> str:
    path = shutil.which(tool)
    if path is None:
        unavailable(f"{tool} not found (Debian package {package})")
    return path  # type: ignore[return-value]


def php_files() -> list[Path]:
    return sorted([*PLUGIN.rglob("*.php"), *WP_TESTS.rglob("*.php")])


def test_every_php_file_passes_php_lint() -> None:
    php = need("php", "php-cli")
    files = php_files()
    assert len(files) > 15
    failures = []
    for path in files:
        result = subprocess.run([php, "-l", str(path)], capture_output=True, text=True)
        if result.returncode != 0:
            failures.append(f"{path}: {result.stdout}{result.stderr}")
    assert not failures, "\n".join(failures)


def test_plugin_javascript_parses() -> None:
    """The plugin's scripts have no build step: check their syntax with Node."""
    node = need("node", "nodejs")
    scripts = sorted((PLUGIN / "assets" / "js").glob("*.js")) + [WP_TESTS / "persona-standin.js"]
    for path in scripts:
        result = subprocess.run([node, "--check", str(path)], capture_output=True, text=True)
        assert result.returncode == 0, f"{path}: {result.stderr}"
    block = json.loads((PLUGIN / "blocks" / "verify" / "block.json").read_text())
    assert block["name"] == "kyc-bridge/verify" and block["editorScript"] == "kycb-block-editor"


def run_phpcs(*targets: str) -> subprocess.CompletedProcess:
    phpcs = need("phpcs", "php-codesniffer")
    return subprocess.run([phpcs, "--standard=" + str(PLUGIN / "phpcs.xml.dist"), "--report=full", "-s", *targets],
                          capture_output=True, text=True, cwd=PLUGIN)


def test_phpcs_passes_with_the_committed_ruleset() -> None:
    result = run_phpcs()
    assert result.returncode == 0, result.stdout + result.stderr


def test_phpcs_ruleset_catches_wordpress_mistakes() -> None:
    """The ruleset is not a no-op: a file with the classic mistakes fails with the right sniffs."""
    result = run_phpcs(str(WP_TESTS / "phpcs-samples" / "bad-plugin-code.php"))
    assert result.returncode != 0
    for sniff in ("KycBridge.Security.EscapeOutput", "KycBridge.Security.ValidatedSanitizedInput",
                  "KycBridge.Security.NonceVerification", "Generic.PHP.ForbiddenFunctions",
                  "Generic.Arrays.DisallowShortArraySyntax", "Generic.WhiteSpace.DisallowSpaceIndent"):
        assert sniff in result.stdout, f"{sniff} did not fire:\n{result.stdout}"


def test_pot_lists_every_translatable_string() -> None:
    xgettext = need("xgettext", "gettext")
    pot = PLUGIN / "languages" / "kyc-bridge.pot"
    assert pot.exists(), "wp-plugin/languages/kyc-bridge.pot is missing (scripts/wp-make-pot.sh)"
    fresh = subprocess.run(["bash", str(REPO / "scripts" / "wp-make-pot.sh"), "-"], capture_output=True, text=True,
                           env={**os.environ, "XGETTEXT": xgettext})
    assert fresh.returncode == 0, fresh.stderr

    def msgids(text: str) -> set[str]:
        return set(re.findall(r'^msgid "(.+)"$', text, re.M))

    committed, current = msgids(pot.read_text()), msgids(fresh.stdout)
    assert len(current) > 100
    assert current == committed, (
        f"run scripts/wp-make-pot.sh: missing {sorted(current - committed)[:5]}, stale {sorted(committed - current)[:5]}")


# --- PHPUnit inside WordPress ---------------------------------------------------------------------

def seed_bridge(bridge) -> dict:  # type: ignore[no-untyped-def]
    """People in known states, sent through the bridge's real webhook endpoint."""
    people = {
        "approved_investor": ("investor", ["created", "pending", "completed", "needs_review", "approved"]),
        "approved_customer": ("customer", ["created", "completed", "approved"]),
        "review": ("investor", ["created", "pending", "completed", "needs_review"]),
        "declined": ("vendor", ["created", "completed", "declined"]),
        "pending": ("investor", ["created", "pending"]),
        "erase": ("customer", ["created", "completed", "approved"]),
        "admin_actions": ("investor", ["created", "completed", "approved"]),
        "admin_erase": ("customer", ["created", "completed", "approved"]),
        "admin_export": ("vendor", ["created", "completed", "declined"]),
        "self_withdraw": ("customer", ["created", "completed", "approved"]),
        "self_readonly": ("vendor", ["created", "completed", "approved"]),
        "gate_withdraw": ("customer", ["created", "completed", "approved"]),
    }
    seeded = {}
    for key, (user_type, statuses) in people.items():
        email = f"{key.replace('_', '-')}@example.test"
        inquiry_id = f"inq_wpunit{key.replace('_', '')}"
        bridge.seed(inquiry_id=inquiry_id, user_type=user_type, email=email, statuses=statuses,
                    first_name=key.split("_")[0].title())
        seeded[key] = {"email": email, "inquiry_id": inquiry_id, "user_type": user_type}
    link = bridge.api("POST", "/api/v1/links", json={"email": "link-visitor@example.test", "user_type": "vendor"})
    assert link.status_code == 201, link.text
    consent = bridge.api("GET", "/api/v1/consent-text").json()
    return {
        "people": seeded,
        "link_token": link.json()["url"].rsplit("/", 1)[1],
        "link_user_type": "vendor",
        "consent_version": consent["version"],
        "templates": {t: bridge.template_id(t) for t in
                      ("contributor", "intern", "investor", "customer", "cooperative_member", "vendor")},
    }


def test_phpunit_inside_wordpress_against_the_bridge(wordpress, bridge, persona_standin, tmp_path) -> None:  # type: ignore[no-untyped-def]
    phpunit = need("phpunit", "phpunit")
    bridge.empty()  # the browser tests' people would page or match the lists these tests read
    fixtures = seed_bridge(bridge)
    fixtures.update({"bridge_url": bridge.url, "bridge_token": bridge.token, "bridge_read_token": bridge.read_token,
                     "closed_port": free_port(),
                     "hosted_flow_url": persona_standin.https_url + "/verify"})
    fixtures_file = tmp_path / "fixtures.json"
    fixtures_file.write_text(json.dumps(fixtures))
    os.chmod(tmp_path, 0o755)
    junit = tmp_path / "phpunit.xml"
    log_from = wordpress.log_offset()
    try:
        result = subprocess.run(
            ["php", "-d", f"auto_prepend_file={WP_TESTS / 'phpunit' / 'load-wordpress.php'}", phpunit,
             "-c", str(WP_TESTS / "phpunit.xml.dist"), "--log-junit", str(junit)],
            capture_output=True, text=True, timeout=300, cwd=WP_TESTS,
            env={**os.environ, "WP_DIR": str(wordpress.wp_dir), "WP_URL": wordpress.url,
                 "KYCB_TEST_FIXTURES": str(fixtures_file)})
    finally:  # PHPUnit may write uploads (privacy exports) as root: give them back to the web server
        wordpress.give_back_uploads()
    ARTIFACTS.mkdir(exist_ok=True)
    (ARTIFACTS / "phpunit-output.txt").write_text(result.stdout + result.stderr)
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-3000:]
    suite = ET.parse(junit).getroot().find("testsuite")
    assert suite is not None
    counts = {key: int(suite.get(key, "0")) for key in ("tests", "failures", "errors", "skipped")}
    assert counts["tests"] >= 40 and counts["failures"] == counts["errors"] == counts["skipped"] == 0, counts
    problems = wordpress.plugin_log_problems(log_from)
    assert not problems, "PHP notices from the plugin in wp-debug.log:\n" + "\n".join(problems[:20])


def test_site_pages_render_without_php_notices(wordpress) -> None:  # type: ignore[no-untyped-def]
    """Every page with the shortcode, gate and block, logged out, through the real web server."""
    import requests

    log_from = wordpress.log_offset()
    for url in wordpress.info["pages"].values():
        answer = requests.get(url, timeout=30)
        assert answer.status_code == 200, url
        assert "kycb-verify" in answer.text or "kycb-self" in answer.text, url
    assert not wordpress.plugin_log_problems(log_from)
