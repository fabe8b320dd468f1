"""`kyc-bridge demo`: SQLite, generated secrets, sample Persona events through the real endpoint."""

from __future__ import annotations

import logging
import os
import secrets
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

import click
import requests

from bridge import config as config_module
from bridge.consent import onboarding
from bridge.persona import samples, signature
from bridge.runtime import Runtime
from bridge.settings import Settings
from bridge.store import migrate
from bridge.store.engine import transaction
from bridge.store.models import Job


@dataclass(frozen=True)
class Person:
    label: str
    user_type: str
    email: str
    inquiry_id: str
    statuses: tuple[str, ...]
    legacy: bool = False


PEOPLE = (
    Person("Ada (investor)", "investor", "ada@example.com", "inq_demoAda0000000000000001",
           ("created", "pending", "completed", "needs_review", "approved")),
    Person("Ben (customer)", "customer", "ben@example.com", "inq_demoBen0000000000000001",
           ("created", "pending", "completed", "approved")),
    Person("Chloé (vendor)", "vendor", "chloe@example.com", "inq_demoChloe00000000000001",
           ("created", "pending", "completed", "declined")),
    Person("Dev (cooperative member, pre-2025 payload)", "cooperative_member", "dev@example.com",
           "inq_demoDev0000000000000001", ("created", "pending", "failed"), legacy=True),
)


def sample_deliveries(config: config_module.Config, start: datetime) -> list[tuple[str, bytes]]:
    """(label, body) in delivery order: Ben's approval twice (a duplicate) and Chloé's decline
    before her completion (an out-of-order pair)."""
    deliveries: list[tuple[str, bytes]] = []
    for p_index, person in enumerate(PEOPLE):
        template_id = config.user_types[person.user_type].template_id
        bodies = []
        for s_index, status in enumerate(person.statuses):
            body = samples.inquiry_event(
                event_id=f"evt_demo{p_index}{s_index}{secrets.token_hex(8)}", inquiry_id=person.inquiry_id,
                status=status, created_at=start + timedelta(minutes=p_index * 10 + s_index),
                template_id=template_id, email=person.email, first_name=person.label.split()[0],
                legacy=person.legacy,
            )
            bodies.append((f"{person.label}: {samples.STATUS_EVENT[status]}", samples.encode(body)))
        if person.user_type == "customer":
            label, body = bodies[-1]
            bodies.append((label + " (duplicate delivery)", body))
        if person.user_type == "vendor":
            bodies[-2], bodies[-1] = bodies[-1], bodies[-2]
            bodies[-1] = (bodies[-1][0] + " (arrives late, older)", bodies[-1][1])
        deliveries.extend(bodies)
    return deliveries


def _wait_ready(base: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if requests.get(f"{base}/readyz", timeout=1).status_code == 200:
                return
        except requests.RequestException:
            pass
        time.sleep(0.2)
    raise RuntimeError("the demo server did not become ready")


def _wait_jobs_settled(runtime: Runtime, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with transaction(runtime.sessions) as session:
            busy = session.query(Job).filter(Job.state.in_(("queued", "running"))).count()
        if not busy:
            return
        time.sleep(0.2)


def _drive(runtime: Runtime, base: str) -> None:
    _wait_ready(base)
    secret = runtime.settings.persona_webhook_secrets[0]
    click.echo("\nSending signed Persona events to POST /webhooks/persona:")
    for label, body in sample_deliveries(runtime.config, datetime.now(timezone.utc) - timedelta(hours=1)):
        header = signature.header_for([secret], int(time.time()), body)
        response = requests.post(f"{base}/webhooks/persona", data=body, timeout=10,
                                 headers={"Persona-Signature": header, "Content-Type": "application/json"})
        outcome = response.json().get("status", response.text) if response.ok else response.text
        click.echo(f"  {response.status_code} {outcome:<9} {label}")
    _wait_jobs_settled(runtime)

    token = runtime.settings.admin_token
    listing = requests.get(f"{base}/api/v1/inquiries", headers={"Authorization": f"Bearer {token}"},
                           timeout=10).json()
    click.echo("\nKYC state per person (GET /api/v1/inquiries):")
    by_inquiry = {p.inquiry_id: p for p in PEOPLE}
    for item in sorted(listing["items"], key=lambda i: i["inquiry_id"]):
        person = by_inquiry.get(item["inquiry_id"])
        click.echo(f"  {person.label if person else item['inquiry_id']:<44} {item['status']:<13} "
                   f"{item['user_type']}/{item['level']}  CRM sync: {item['crm_sync']}")
    crm = "made" if runtime.settings.fluentcrm_enabled else "would have been made (FluentCRM not configured)"
    n8n = "sent" if runtime.settings.n8n_enabled else "that would have been sent (N8N_WEBHOOK_URL not set)"
    with transaction(runtime.sessions) as session:
        done = session.query(Job).filter(Job.state == "done").order_by(Job.id).all()
    for title, kinds in ((f"FluentCRM tag changes that {crm}", ("crm.sync", "crm.tag")),
                         (f"n8n events {n8n}", ("n8n.event",))):
        jobs = [job for job in done if job.kind in kinds]
        if jobs:
            click.echo(f"\n{title}:")
        for job in jobs:
            person = by_inquiry.get(job.inquiry_id or "")
            click.echo(f"  {person.label if person else job.inquiry_id}: {job.result}")
    link = onboarding.issue_link(runtime.sessions, runtime.config, secret_key=runtime.settings.secret_key,
                                 email="eve@example.com", user_type="customer", first_name="Eve", now=runtime.clock())
    click.echo(f"\nThe bridge keeps serving on {base}")
    click.echo(f"  consent page (a signed link, as emailed to a person):  {link.url}")
    click.echo(f"  admin API:  curl -H 'Authorization: Bearer {token}' {base}/api/v1/inquiries")
    click.echo(f"  webhook secret for your own signed events: {secret}")
    click.echo("Press Ctrl-C to stop.", nl=True)


def run_demo(host: str, port: int, database: str) -> None:
    from bridge.app.server import SingleProcessServer
    from bridge.web import create_app

    for suffix in ("", "-wal", "-shm"):
        Path(database + suffix).unlink(missing_ok=True)
    environ = dict(os.environ)
    environ.update({
        "BRIDGE_DATABASE_URL": f"sqlite:///{Path(database).resolve()}",
        "BRIDGE_SECRET_KEY": secrets.token_urlsafe(32),
        "BRIDGE_ADMIN_TOKEN": secrets.token_urlsafe(24),
        "PERSONA_WEBHOOK_SECRETS": "wbhsec_demo_" + secrets.token_hex(16),
    })
    logging.getLogger().setLevel(logging.WARNING)  # the demo prints its own report
    settings = Settings.from_env(environ)
    config = config_module.served_at(config_module.load(settings.config_file), host, port)
    migrate.upgrade(settings.database_url)
    runtime = Runtime.build(settings, config)
    click.echo(f"kyc-bridge demo on SQLite ({database}), secrets generated for this run")
    for line in runtime.describe_outputs():
        click.echo(line)
    base = f"http://{host}:{port}"

    def when_ready(_server: object) -> None:
        threading.Thread(target=_drive, args=(runtime, base), name="demo-driver", daemon=True).start()

    SingleProcessServer(lambda: create_app(runtime=Runtime.build(settings, config)), host, port,
                        when_ready=when_ready).run()
