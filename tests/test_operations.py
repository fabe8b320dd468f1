"""Operator surface: health, readiness, metrics, settings validation, retention, and a log scan
that finds none of the personal data seeded through a full run."""

import logging
import os
import signal
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
import requests
import sqlalchemy as sa
from click.testing import CliRunner

from bridge.app.cli import main
from bridge.persona import samples, signature
from bridge.settings import Settings, SettingsError
from bridge.store.models import Event
from bridge.outbox.worker import Worker
from conftest import WEBHOOK_SECRET, admin_headers, free_port, new_id, post_event, wait_healthy

T0 = datetime(2025, 6, 1, tzinfo=timezone.utc)
SEEDED_EMAIL = "zelda.quintessa-private@example.org"
SEEDED_NAME = "Quintessaname"


def test_health_readiness_and_metrics(client, runtime, config):
    assert client.get("/healthz").get_json() == {"status": "ok"}
    assert client.get("/readyz").get_json() == {"status": "ready"}
    post_event(client, samples.inquiry_event(event_id=new_id("evt"), inquiry_id="inq_m", status="approved",
                                             created_at=T0, template_id=None))
    text = client.get("/metrics").get_data(as_text=True)
    assert 'kyc_webhooks_total{outcome="stored"}' in text
    assert 'kyc_jobs{kind="crm.sync",state="queued"} 1.0' in text
    assert 'kyc_inquiries{status="approved"} 1.0' in text


@pytest.mark.parametrize("missing, message", [
    ("PERSONA_WEBHOOK_SECRETS", "PERSONA_WEBHOOK_SECRETS is not set"),
    ("BRIDGE_SECRET_KEY", "BRIDGE_SECRET_KEY is not set"),
    ("BRIDGE_ADMIN_TOKEN", "BRIDGE_ADMIN_TOKEN is not set"),
])
def test_settings_name_the_missing_variable(missing, message):
    environ = {"BRIDGE_SECRET_KEY": "k", "BRIDGE_ADMIN_TOKEN": "t", "PERSONA_WEBHOOK_SECRETS": "wbhsec_a, wbhsec_b"}
    assert Settings.from_env(environ).persona_webhook_secrets == ("wbhsec_a", "wbhsec_b")
    environ.pop(missing)
    with pytest.raises(SettingsError, match=message):
        Settings.from_env(environ)


def test_partial_fluentcrm_settings_are_an_error():
    environ = {"BRIDGE_SECRET_KEY": "k", "BRIDGE_ADMIN_TOKEN": "t", "PERSONA_WEBHOOK_SECRETS": "wbhsec_a",
               "FLUENTCRM_BASE_URL": "https://crm.example/wp-json/fluent-crm/v2"}
    with pytest.raises(SettingsError, match="FLUENTCRM_USERNAME"):
        Settings.from_env(environ)


def test_cli_reports_configuration_errors_without_traceback(tmp_path, monkeypatch):
    monkeypatch.delenv("PERSONA_WEBHOOK_SECRETS", raising=False)
    monkeypatch.setenv("BRIDGE_SECRET_KEY", "k")
    monkeypatch.setenv("BRIDGE_ADMIN_TOKEN", "t")
    # `remind` needs the settings (n8n) and the config; `jobs list` now needs neither (tests/test_cli.py).
    result = CliRunner().invoke(main, ["remind", "--dry-run"])
    assert result.exit_code == 1 and "PERSONA_WEBHOOK_SECRETS is not set" in result.output
    monkeypatch.setenv("PERSONA_WEBHOOK_SECRETS", "wbhsec_x")
    bad = tmp_path / "bad.toml"
    bad.write_text('[user_types.vendor]\nlevel = "gold"\n')
    monkeypatch.setenv("BRIDGE_CONFIG_FILE", str(bad))
    for command in (["remind", "--dry-run"], ["retention", "purge"]):
        result = CliRunner().invoke(main, command)
        assert result.exit_code == 1 and f"{bad}: consent.version: is missing" in result.output


def test_retention_purge_drops_old_bodies_only(client, runtime, monkeypatch):
    for event_id in ("evt_old", "evt_new"):
        post_event(client, samples.inquiry_event(event_id=event_id, inquiry_id="inq_r", status="pending",
                                                 created_at=T0, template_id=None))
    with runtime.sessions.begin() as session:
        session.execute(sa.update(Event).where(Event.event_id == "evt_old")
                        .values(received_at=datetime.now(timezone.utc) - timedelta(days=31)))
    for name, value in {"BRIDGE_DATABASE_URL": runtime.settings.database_url, "BRIDGE_SECRET_KEY": "k",
                        "BRIDGE_ADMIN_TOKEN": "t", "PERSONA_WEBHOOK_SECRETS": "wbhsec_x"}.items():
        monkeypatch.setenv(name, value)
    result = CliRunner().invoke(main, ["retention", "purge"])
    assert result.exit_code == 0 and "dropped 1 webhook bodies" in result.output
    with runtime.sessions() as session:
        payloads = dict(session.execute(sa.select(Event.event_id, Event.payload)).all())
    assert payloads["evt_old"] is None and payloads["evt_new"] is not None


@pytest.mark.parametrize("backend", ["sqlite"])
def test_no_personal_data_in_logs(tmp_path, database_url, config, caplog, fluentcrm):
    """Run a full flow at DEBUG level, in process and through `kyc-bridge serve`, including
    failures, then scan every log line for the seeded email, name and payload fragments."""
    from bridge.runtime import Runtime
    from bridge.web import create_app
    from conftest import crm_settings

    caplog.set_level(logging.DEBUG)
    # as logs.configure() sets it in every entry point (it was only set when an earlier test had run it)
    caplog.set_level(logging.INFO, logger="urllib3")
    runtime = Runtime.build(crm_settings(database_url, fluentcrm), config)
    client = create_app(runtime=runtime).test_client()

    def seeded(status, minutes, inquiry_id="inq_logscan"):
        return samples.inquiry_event(event_id=new_id("evt"), inquiry_id=inquiry_id, status=status,
                                     created_at=T0 + timedelta(minutes=minutes), email=SEEDED_EMAIL,
                                     first_name=SEEDED_NAME, template_id=config.user_types["vendor"].template_id)

    post_event(client, seeded("pending", 1))
    post_event(client, seeded("pending", 1))  # duplicate
    raw = samples.encode(seeded("approved", 2))
    client.post("/webhooks/persona", data=raw)  # unsigned → 401
    client.post("/webhooks/persona", data=raw[:-5], headers={"Persona-Signature": signature.header_for(
        [WEBHOOK_SECRET], int(time.time()), raw[:-5])})  # truncated → 400
    fluentcrm.go_down(500)
    Worker(runtime).drain()
    fluentcrm.come_back_up()
    post_event(client, seeded("approved", 3))
    fluentcrm.inject(422, {"email": {"email": "The email must be a valid email address."}})
    Worker(runtime).run_once()
    client.get(f"/api/v1/inquiries?email={SEEDED_EMAIL}", headers=admin_headers())

    # The same through a real server process (gunicorn access and error logs included).
    port = free_port()
    env = {**os.environ, "BRIDGE_DATABASE_URL": database_url, "BRIDGE_SECRET_KEY": "k",
           "BRIDGE_ADMIN_TOKEN": "t", "PERSONA_WEBHOOK_SECRETS": WEBHOOK_SECRET, "BRIDGE_LOG_LEVEL": "DEBUG",
           "FLUENTCRM_BASE_URL": fluentcrm.base_url, "FLUENTCRM_USERNAME": fluentcrm.username,
           "FLUENTCRM_APP_PASSWORD": fluentcrm.app_password}
    server = subprocess.Popen([sys.executable, "-m", "bridge.app.cli", "serve", "--port", str(port)],
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    try:
        base = f"http://127.0.0.1:{port}"
        wait_healthy(base)
        body = samples.encode(seeded("declined", 4, "inq_logscan2"))
        response = requests.post(f"{base}/webhooks/persona", data=body, timeout=5,
                                 headers={"Persona-Signature": signature.header_for([WEBHOOK_SECRET], int(time.time()), body)})
        assert response.status_code == 200
        requests.post(f"{base}/webhooks/persona", data=body[:-3], timeout=5)
        requests.get(f"{base}/api/v1/inquiries?email={SEEDED_EMAIL}", headers={"Authorization": "Bearer t"}, timeout=5)
        deadline = time.monotonic() + 30  # until the in-process worker has synced it
        while _sync_state(runtime, "inq_logscan2") not in ("done", "dead") and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        server.send_signal(signal.SIGTERM)
        server_output = server.communicate(timeout=20)[0]
    runtime.engine.dispose()

    logged = "\n".join(r.getMessage() for r in caplog.records) + "\n" + server_output
    assert "webhook" in logged and "job" in logged  # the scan looked at real log output
    for secret in (SEEDED_EMAIL, SEEDED_NAME, SEEDED_EMAIL.split("@")[0], '"email-address"', '"fields"'):
        assert secret not in logged, f"{secret!r} found in logs"


@pytest.mark.parametrize("missing", ["N8N_TOKEN", "N8N_SIGNING_SECRET"])
def test_n8n_needs_its_token_and_signing_secret(missing):
    environ = {"BRIDGE_SECRET_KEY": "k", "BRIDGE_ADMIN_TOKEN": "t", "PERSONA_WEBHOOK_SECRETS": "wbhsec_a",
               "N8N_WEBHOOK_URL": "https://n8n.example/webhook/kyc-events", "N8N_TOKEN": "tok",
               "N8N_SIGNING_SECRET": "sig"}
    assert Settings.from_env(environ).n8n_enabled
    environ.pop(missing)
    with pytest.raises(SettingsError, match=missing):
        Settings.from_env(environ)


def test_gunicorn_workers_freeze_their_start_up_heap():
    # Without it every full garbage collection walks the whole import graph in the middle of requests.
    import gc
    import runpy

    conf = runpy.run_path(str(Path(__file__).resolve().parents[1] / "gunicorn.conf.py"))
    gc.unfreeze()
    try:
        conf["post_worker_init"](worker=None)
        assert gc.get_freeze_count() > 0
    finally:
        gc.unfreeze()


@pytest.mark.parametrize("backend", ["sqlite"])
def test_the_gunicorn_app_logs_at_the_configured_level(database_url):
    """BRIDGE_LOG_LEVEL sets gunicorn's level (gunicorn.conf.py) and the app's own (bridge.app.wsgi)."""
    env = {**os.environ, "BRIDGE_DATABASE_URL": database_url, "BRIDGE_SECRET_KEY": "k", "BRIDGE_ADMIN_TOKEN": "t",
           "PERSONA_WEBHOOK_SECRETS": WEBHOOK_SECRET, "BRIDGE_LOG_LEVEL": "warning"}
    probe = "import logging, bridge.app.wsgi; print(logging.getLevelName(logging.getLogger('bridge').getEffectiveLevel()))"
    result = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True, text=True, timeout=60)
    assert result.stdout.strip() == "WARNING", result.stderr


def _sync_state(runtime, inquiry_id: str) -> str | None:
    from bridge.store import queue
    from bridge.store.models import Job

    with runtime.sessions() as session:
        return session.scalar(sa.select(Job.state).where(Job.inquiry_id == inquiry_id, Job.kind == queue.CRM_SYNC)
                              .order_by(Job.id.desc()).limit(1))
