"""`kyc-bridge` as people use it: --version, --json on read-only commands, `contact`, `export`,
store-only commands, log level errors, progress on a terminal, `audit export` verified offline
and `audit verify --anchor` against a rewritten chain."""

import json
import os
import pty
import re
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from bridge import audit
from bridge.app.cli import main
from bridge.persona import samples
from bridge.store.models import AuditEntry, AuditHead
from bridge.outbox.worker import Worker
from conftest import admin_headers, new_id, post_event
from test_n8n_remind import T0, start

REPO = Path(__file__).resolve().parents[1]
EMAIL = "pat@example.com"
SECRETS = ("BRIDGE_SECRET_KEY", "BRIDGE_ADMIN_TOKEN", "PERSONA_WEBHOOK_SECRETS", "BRIDGE_CONFIG_FILE")


@pytest.fixture
def store_only(runtime, monkeypatch):
    """The environment of an operator's shell with the database URL and nothing else."""
    for name in SECRETS:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("BRIDGE_DATABASE_URL", runtime.settings.database_url)
    monkeypatch.delenv("BRIDGE_LOG_LEVEL", raising=False)
    return CliRunner()


def seed(runtime, client, config):
    """Pat consents and starts a customer verification, which Persona then approves; the worker syncs."""
    start(runtime, email=EMAIL, at=T0)
    with runtime.sessions() as session:
        from bridge.store.models import Contact

        reference_id = session.scalar(sa.select(Contact.reference_id).where(Contact.email == EMAIL))
    for minutes, status in ((1, "pending"), (2, "approved")):
        post_event(client, samples.inquiry_event(
            event_id=new_id("evt"), inquiry_id="inq_pat", status=status, created_at=T0 + timedelta(minutes=minutes),
            email=EMAIL, first_name="Pat", reference_id=reference_id,
            template_id=config.user_types["customer"].template_id))
    Worker(runtime).drain()


def cli_env(runtime, **extra):
    env = {k: v for k, v in os.environ.items() if k not in SECRETS and k != "BRIDGE_LOG_LEVEL"}
    return {**env, "BRIDGE_DATABASE_URL": runtime.settings.database_url, **extra}


# --version and log levels --------------------------------------------------------------------

def test_version():
    from importlib.metadata import version

    result = CliRunner().invoke(main, ["--version"])
    assert result.exit_code == 0 and result.output == f"kyc-bridge, version {version('kyc-bridge')}\n"


@pytest.mark.parametrize("backend", ["sqlite"])
@pytest.mark.parametrize("args, env, named", [
    (["jobs", "--help"], {"BRIDGE_LOG_LEVEL": "verbose"}, "BRIDGE_LOG_LEVEL: 'verbose'"),
    (["--log-level", "bogus", "audit", "verify"], {}, "--log-level: 'bogus'"),
    (["--log-level", "bogus", "jobs", "list", "--help"], {}, "--log-level: 'bogus'"),
])
def test_an_invalid_log_level_is_a_one_line_error(runtime, args, env, named):
    result = subprocess.run([sys.executable, "-m", "bridge.app.cli", *args], env=cli_env(runtime, **env),
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 1 and result.stdout == ""
    assert result.stderr.splitlines() == [
        f"Error: {named} is not a log level (one of debug, info, warning, error, critical)"]


def test_log_levels_are_accepted_in_any_case(store_only):
    assert store_only.invoke(main, ["--log-level", "warning", "jobs", "list"]).exit_code == 0
    assert store_only.invoke(main, ["jobs", "list"], env={"BRIDGE_LOG_LEVEL": "Info"}).exit_code == 0  # as before


# Store-only read commands, --json, contact, export --------------------------------------------

def test_read_only_commands_need_only_the_database_url(runtime, client, config, store_only, tmp_path):
    seed(runtime, client, config)
    for args in (["jobs", "list"], ["jobs", "list", "--json"], ["audit", "verify"], ["audit", "verify", "--json"],
                 ["contact", EMAIL], ["contact", EMAIL, "--json"], ["export", EMAIL],
                 ["audit", "export"], ["audit", "anchor"], ["retention", "purge"], ["jobs", "retry", "--all"]):
        result = store_only.invoke(main, args)
        assert result.exit_code == 0, (args, result.output)
        assert "is not set" not in result.output


def test_jobs_list_json(runtime, client, config, store_only):
    seed(runtime, client, config)
    result = store_only.invoke(main, ["jobs", "list", "--json", "--state", "done"])
    rows = json.loads(result.output)
    assert rows and {row["state"] for row in rows} == {"done"}
    assert {"id", "kind", "attempts", "max_attempts", "inquiry_id", "last_error", "result"} <= set(rows[0])
    assert any(row["kind"] == "crm.sync" and row["inquiry_id"] == "inq_pat" for row in rows)


def test_audit_verify_json(runtime, client, config, store_only):
    seed(runtime, client, config)
    good = store_only.invoke(main, ["audit", "verify", "--json"])
    assert good.exit_code == 0 and json.loads(good.output)["ok"] is True
    with runtime.sessions.begin() as session:
        session.execute(sa.update(AuditEntry).where(AuditEntry.seq == 2).values(action="tampered"))
    bad = store_only.invoke(main, ["audit", "verify", "--json"])
    report = json.loads(bad.output)
    assert bad.exit_code == 1 and (report["ok"], report["first_broken"], report["checked"]) == (False, 2, 1)


def test_contact_shows_status_history_consents_and_jobs(runtime, client, config, store_only):
    seed(runtime, client, config)
    result = store_only.invoke(main, ["contact", " Pat@Example.com ", "--json"])
    assert result.exit_code == 0, result.output
    view = json.loads(result.output)
    assert view["email"] == EMAIL and view["kyc"]["status"] == "approved" and view["kyc"]["user_type"] == "customer"
    assert [(i["inquiry_id"], i["status"]) for i in view["inquiries"]] == [("inq_pat", "approved")]
    assert [c["user_type"] for c in view["consents"]] == ["customer"]
    assert {job["kind"] for job in view["jobs"]} >= {"crm.sync"} and {j["state"] for j in view["jobs"]} == {"done"}
    actions = [entry["action"] for entry in view["history"]]
    assert actions[0] == "consent.given" and actions.count("inquiry.status") == 2 and "job.done" in actions
    assert [e["seq"] for e in view["history"]] == sorted(e["seq"] for e in view["history"])

    text = store_only.invoke(main, ["contact", EMAIL])
    assert text.exit_code == 0 and text.output.startswith(f"{EMAIL}: approved (customer, basic")
    for part in ("inquiries:", "inq_pat", "consents:", "jobs:", "crm.sync", "history:", "consent.given"):
        assert part in text.output

    unknown = store_only.invoke(main, ["contact", "nobody@example.com"])
    assert unknown.exit_code == 1 and "no data held for this email" in unknown.output
    assert store_only.invoke(main, ["contact", "not-an-email"]).exit_code == 2


def test_export_writes_the_apis_export_to_a_private_file(runtime, client, config, store_only, tmp_path):
    seed(runtime, client, config)
    target = tmp_path / "pat.json"
    result = store_only.invoke(main, ["export", EMAIL, "--output", str(target)])
    assert result.exit_code == 0, result.output
    from_api = client.get(f"/api/v1/contacts/{EMAIL}/export", headers=admin_headers()).get_json()
    assert json.loads(target.read_text()) == from_api
    assert target.stat().st_mode & 0o777 == 0o600  # personal data: the owner only
    assert json.loads(store_only.invoke(main, ["export", EMAIL]).output) == from_api
    missing = store_only.invoke(main, ["export", "nobody@example.com"])
    assert missing.exit_code == 1 and "no data held" in missing.output


# Progress on a terminal ------------------------------------------------------------------------

@pytest.mark.parametrize("backend", ["sqlite"])
def test_long_commands_show_progress_on_a_terminal_only(runtime, client, config, tmp_path):
    seed(runtime, client, config)
    primary, secondary = pty.openpty()
    try:
        done = subprocess.run([sys.executable, "-m", "bridge.app.cli", "audit", "export", "-o", str(tmp_path / "x")],
                              env=cli_env(runtime), stdout=subprocess.PIPE, stderr=secondary, timeout=60)
        os.close(secondary)
        shown = b""
        while True:
            try:
                chunk = os.read(primary, 4096)
            except OSError:  # the terminal closed
                break
            if not chunk:
                break
            shown += chunk
    finally:
        os.close(primary)
    assert done.returncode == 0
    assert b"exporting" in shown and b"100%" in shown
    piped = subprocess.run([sys.executable, "-m", "bridge.app.cli", "audit", "verify"], env=cli_env(runtime),
                           capture_output=True, text=True, timeout=60)
    assert piped.returncode == 0 and "%" not in piped.stderr and "verifying" not in piped.stderr


@pytest.mark.parametrize("backend", ["sqlite"])
def test_remind_reports_progress_per_reminder(runtime):
    """`kyc-bridge remind` hands remind.run the CLI's progress bar: told the total, advanced per reminder."""
    from contextlib import contextmanager

    from bridge.outbox import remind

    for n in range(3):
        start(runtime, email=f"p{n}@example.com", at=T0)
    seen = []

    @contextmanager
    def recorder(total):
        seen.append(("total", total))
        yield lambda done: seen.append(("done", done))

    report = remind.run(runtime.sessions, runtime.config, now=T0 + timedelta(hours=25), progress=recorder)
    assert report.queued == 3 and seen == [("total", 3), ("done", 1), ("done", 1), ("done", 1)]


# audit export, offline verification, anchors ----------------------------------------------------

def test_audit_export_verifies_offline_and_catches_an_edited_file(runtime, client, config, store_only, tmp_path):
    seed(runtime, client, config)
    export = tmp_path / "audit.jsonl"
    assert store_only.invoke(main, ["audit", "export", "--output", str(export)]).exit_code == 0
    lines = export.read_text().splitlines()
    with runtime.sessions() as session:
        head = session.get(AuditHead, 1)
        count = session.scalar(sa.select(sa.func.count()).select_from(AuditEntry))
    assert len(lines) == count + 1 and json.loads(lines[-1]) == {"head": {"seq": head.seq, "hash": head.hash}}
    assert {"seq", "at", "action", "subject", "detail", "prev_hash", "hash"} == set(json.loads(lines[0]))

    # No database needed: point the URL at nothing.
    offline = store_only.invoke(main, ["audit", "verify", "--from-file", str(export)],
                                env={"BRIDGE_DATABASE_URL": "postgresql://nobody@127.0.0.1:1/none"})
    assert offline.exit_code == 0 and f"intact: {count} entries" in offline.output

    edited = tmp_path / "edited.jsonl"
    record = json.loads(lines[2])
    record["action"] = "inquiry.erased"
    edited.write_text("\n".join([*lines[:2], json.dumps(record), *lines[3:]]) + "\n")
    bad = store_only.invoke(main, ["audit", "verify", "--from-file", str(edited)])
    assert bad.exit_code == 1 and "BROKEN at entry 3" in bad.output
    cut = tmp_path / "cut.jsonl"
    cut.write_text("\n".join(lines[:-3] + lines[-1:]) + "\n")  # entries dropped before the head
    assert store_only.invoke(main, ["audit", "verify", "--from-file", str(cut)]).exit_code == 1
    assert store_only.invoke(main, ["audit", "verify", "--from-file", str(tmp_path / "none")]).exit_code == 1


def test_audit_export_since_a_seq_or_a_time(runtime, client, config, store_only, tmp_path):
    seed(runtime, client, config)
    since_seq = store_only.invoke(main, ["audit", "export", "--since", "3"]).output.splitlines()
    assert json.loads(since_seq[0])["seq"] == 3
    partial = tmp_path / "partial.jsonl"
    partial.write_text("\n".join(since_seq) + "\n")
    assert store_only.invoke(main, ["audit", "verify", "--from-file", str(partial)]).exit_code == 0
    with runtime.sessions() as session:
        third = session.get(AuditEntry, 3)
    since_time = store_only.invoke(main, ["audit", "export", "--since", audit.at_text(third.at)]).output.splitlines()
    assert json.loads(since_time[0])["at"] == audit.at_text(third.at)
    future = store_only.invoke(main, ["audit", "export", "--since", "2999-01-01T00:00:00Z"]).output.splitlines()
    assert len(future) == 1 and "head" in json.loads(future[0])
    assert store_only.invoke(main, ["audit", "export", "--since", "last tuesday"]).exit_code == 2


def test_the_readme_snippet_verifies_an_export(runtime, client, config, store_only, tmp_path):
    """The stdlib-only check documented for auditors works on a real export and fails on an edited one."""
    seed(runtime, client, config)
    readme = (REPO / "README.md").read_text()
    snippet = re.search(r"<!-- audit-verify-snippet -->\n```python\n(.*?)```", readme, re.S).group(1)
    script = tmp_path / "verify_audit.py"
    script.write_text(snippet)
    export = tmp_path / "audit.jsonl"
    store_only.invoke(main, ["audit", "export", "-o", str(export)])
    ok = subprocess.run([sys.executable, str(script), str(export)], capture_output=True, text=True, timeout=30)
    assert ok.returncode == 0 and "intact" in ok.stdout, ok.stderr
    lines = export.read_text().splitlines()
    record = json.loads(lines[1])
    record["subject"] = "inq_other"
    export.write_text("\n".join([lines[0], json.dumps(record), *lines[2:]]) + "\n")
    bad = subprocess.run([sys.executable, str(script), str(export)], capture_output=True, text=True, timeout=30)
    assert bad.returncode == 1 and "entry 2" in bad.stdout + bad.stderr


def rewrite_after(runtime, point):
    """The attack: with write access, change every entry after `point`, recompute their hashes and
    move the head, so the chain is consistent again."""
    with runtime.sessions.begin() as session:
        entries = session.scalars(sa.select(AuditEntry).where(AuditEntry.seq > point).order_by(AuditEntry.seq)).all()
        prev_hash = session.get(AuditEntry, point).hash
        for entry in entries:
            if entry.action == "inquiry.status":
                entry.detail = entry.detail.replace("approved", "declined")
            entry.prev_hash = prev_hash
            entry.hash = audit.entry_hash(prev_hash, entry.seq, entry.at, entry.action, entry.subject, entry.detail)
            prev_hash = entry.hash
        session.get(AuditHead, 1).hash = prev_hash


def test_a_rewritten_chain_passes_plain_verify_but_fails_against_an_anchor(runtime, client, config, store_only,
                                                                          tmp_path):
    seed(runtime, client, config)
    anchor = tmp_path / "anchor.json"
    assert store_only.invoke(main, ["audit", "anchor", "--output", str(anchor)]).exit_code == 0
    export = tmp_path / "audit.jsonl"
    store_only.invoke(main, ["audit", "export", "--output", str(export)])
    anchored = json.loads(anchor.read_text())["head"]["seq"]
    assert store_only.invoke(main, ["audit", "verify", "--anchor", str(anchor)]).exit_code == 0

    rewrite_after(runtime, point=1)
    with runtime.sessions() as session:
        assert session.scalar(sa.select(sa.func.count()).where(AuditEntry.detail.like('%"declined"%')))  # it bit
    plain = store_only.invoke(main, ["audit", "verify"])
    assert plain.exit_code == 0 and "intact" in plain.output  # the rewrite is consistent
    for saved in (anchor, export):  # an anchor file, or an earlier export's head line
        caught = store_only.invoke(main, ["audit", "verify", "--anchor", str(saved)])
        assert caught.exit_code == 1, caught.output
        assert f"BROKEN at entry {anchored}: hash differs from the anchor saved earlier" in caught.output
    as_json = json.loads(store_only.invoke(main, ["audit", "verify", "--anchor", str(anchor), "--json"]).output)
    assert (as_json["ok"], as_json["first_broken"]) == (False, anchored)

    # Entries cut back to before the anchor (and the head moved back) are caught too.
    with runtime.sessions.begin() as session:
        session.execute(sa.delete(AuditEntry).where(AuditEntry.seq >= anchored))
        head = session.get(AuditHead, 1)
        head.seq, head.hash = anchored - 1, session.get(AuditEntry, anchored - 1).hash
    assert store_only.invoke(main, ["audit", "verify"]).exit_code == 0
    cut = store_only.invoke(main, ["audit", "verify", "--anchor", str(anchor)])
    assert cut.exit_code == 1 and f"entry {anchored} of the anchor is not in the chain" in cut.output
    junk = tmp_path / "junk"
    junk.write_text("hello\n")
    assert "not an anchor or export file" in store_only.invoke(main, ["audit", "verify", "--anchor", str(junk)]).output
