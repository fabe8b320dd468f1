"""`kyc-bridge` command line: click commands that call the domain."""

from __future__ import annotations

import os
import sys
import threading
from datetime import timedelta

import click

from bridge import audit, logs
from bridge.config import ConfigError
from bridge.runtime import Runtime
from bridge.settings import SettingsError
from bridge.store import migrate, queue
from bridge.store.engine import StoreUnavailable, transaction


def load_runtime() -> Runtime:
    """Settings and config, validated once; errors name the variable or the file and key."""
    try:
        return Runtime.from_env(os.environ)
    except (SettingsError, ConfigError) as exc:
        raise click.ClickException(str(exc)) from None


def database_url() -> str:
    from bridge.settings import DEFAULT_DATABASE_URL

    return os.environ.get("BRIDGE_DATABASE_URL", "").strip() or DEFAULT_DATABASE_URL


@click.group()
@click.option("--log-level", default="INFO", show_default=True, envvar="BRIDGE_LOG_LEVEL")
def main(log_level: str) -> None:
    """kyc-bridge: Persona KYC webhooks in, one truthful KYC state, FluentCRM tags and n8n events out."""
    logs.configure(log_level.upper())


@main.group()
def db() -> None:
    """Database schema."""


@db.command("upgrade")
@click.option("--revision", default="head", show_default=True)
def db_upgrade(revision: str) -> None:
    """Apply the Alembic migrations to BRIDGE_DATABASE_URL."""
    migrate.upgrade(database_url(), revision)
    click.echo(f"database at revision {revision}")


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=int)
def serve(host: str, port: int) -> None:
    """Run the web app and the outbox worker in one process (small sites)."""
    from bridge.app.server import SingleProcessServer
    from bridge.web import create_app

    runtime = load_runtime()
    for line in runtime.describe_outputs():
        click.echo(line)
    click.echo(f"kyc-bridge serving on http://{host}:{port} (webhook: /webhooks/persona)")
    SingleProcessServer(lambda: create_app(runtime=Runtime.build(runtime.settings, runtime.config)),
                        host, port).run()


@main.command()
@click.option("--once", is_flag=True, help="Run what is due now, then exit.")
def worker(once: bool) -> None:
    """Drain the outbox: FluentCRM sync (and n8n events), with retries and dead-lettering."""
    from bridge.outbox.worker import Worker

    runtime = load_runtime()
    for line in runtime.describe_outputs():
        click.echo(line)
    outbox = Worker(runtime)
    if once:
        outcomes = outbox.drain()
        click.echo(f"{len(outcomes)} job(s) run")
        return
    stop = threading.Event()
    import signal

    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    outbox.run_forever(stop)


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=int)
@click.option("--database", default="kyc-bridge-demo.db", show_default=True,
              help="SQLite file, recreated on each run.")
def demo(host: str, port: int, database: str) -> None:
    """Run the bridge on SQLite with generated secrets and feed it sample Persona events."""
    from bridge.app.demo import run_demo

    run_demo(host, port, database)


@main.group()
def jobs() -> None:
    """Show and re-queue outbox jobs."""


@jobs.command("list")
@click.option("--state", "states", multiple=True,
              type=click.Choice([queue.QUEUED, queue.RUNNING, queue.DONE, queue.DEAD, queue.FAILED]),
              help="Filter (repeatable). 'failed' = waiting to be retried after an error.")
@click.option("--limit", default=50, show_default=True)
def jobs_list(states: tuple[str, ...], limit: int) -> None:
    """Show the newest jobs, with their last error or result."""
    runtime = load_runtime()
    with transaction(runtime.sessions) as session:
        rows = queue.list_jobs(session, list(states) or None, limit)
    if not rows:
        click.echo("no jobs")
        return
    click.echo(f"{'id':>6}  {'kind':<10} {'state':<8} {'tries':<5}  {'inquiry':<30} last error / result")
    for job in rows:
        note = job.last_error or job.result or ""
        click.echo(f"{job.id:>6}  {job.kind:<10} {job.state:<8} {job.attempts:>2}/{job.max_attempts:<2}  "
                   f"{job.inquiry_id or '-':<30} {note}")


@jobs.command("retry")
@click.argument("job_ids", nargs=-1, type=int)
@click.option("--all", "retry_all", is_flag=True, help="Every dead or failed job.")
def jobs_retry(job_ids: tuple[int, ...], retry_all: bool) -> None:
    """Re-queue dead or failed jobs (by id, or --all)."""
    if not job_ids and not retry_all:
        raise click.UsageError("give job ids or --all")
    runtime = load_runtime()
    with transaction(runtime.sessions) as session:
        ids = queue.requeue(session, list(job_ids) or None, now=runtime.clock())
        if ids:
            audit.append(session, "jobs.requeued", "jobs", {"count": len(ids)}, at=runtime.clock())
    missing = sorted(set(job_ids) - set(ids))
    click.echo(f"re-queued {len(ids)} job(s)" + (f": {', '.join(map(str, ids))}" if ids else ""))
    if missing:
        raise click.ClickException(f"not dead or failed (or unknown): {', '.join(map(str, missing))}")


@main.command()
@click.option("--email", required=True)
@click.option("--type", "user_type", required=True, help="One of the configured user types.")
@click.option("--first-name", default=None)
@click.option("--send", is_flag=True, help="Have n8n email the person a fresh link (kyc.link_requested) "
                                          "instead of printing one.")
def link(email: str, user_type: str, first_name: str | None, send: bool) -> None:
    """Print a signed, expiring verification link for a person (or have n8n email one)."""
    from bridge.outbox import notify
    from bridge.consent import onboarding

    runtime = load_runtime()
    if send:
        try:
            with transaction(runtime.sessions) as session:
                normalized = onboarding.validate_link_request(runtime.config, email, user_type)
                contact = onboarding.upsert_contact(session, normalized, first_name=first_name, wp_user_id=None,
                                                    now=runtime.clock())
                notify.request_link(session, runtime.config, contact_id=contact.id, user_type=user_type,
                                    now=runtime.clock())
        except onboarding.OnboardingError as exc:
            raise click.ClickException(str(exc)) from None
        click.echo("queued: n8n will email a verification link (kyc.link_requested)")
        return
    try:
        issued = onboarding.issue_link(runtime.sessions, runtime.config, secret_key=runtime.settings.secret_key,
                                       email=email, user_type=user_type, first_name=first_name, now=runtime.clock())
    except onboarding.OnboardingError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(issued.url)
    click.echo(f"expires {issued.expires_at:%Y-%m-%d %H:%M} UTC", err=True)


@main.group()
def consent() -> None:
    """Consent records."""


@consent.command("withdraw")
@click.option("--email", required=True)
def consent_withdraw(email: str) -> None:
    """Record that a person withdrew consent: no further CRM or n8n effects for them."""
    from bridge.consent import onboarding

    runtime = load_runtime()
    try:
        known = onboarding.withdraw_consent(runtime.sessions, email, now=runtime.clock())
    except onboarding.OnboardingError as exc:
        raise click.ClickException(str(exc)) from None
    if not known:
        raise click.ClickException("no consent recorded for this email")
    click.echo("consent withdrawn; CRM and n8n effects for this person stop")


@main.command()
@click.option("--email", required=True)
@click.confirmation_option(prompt="Erase this person's personal data from the bridge?")
def erase(email: str) -> None:
    """Erase a person's personal data (KYC decisions are kept) and ask Persona to redact."""
    from bridge.kyc import emails
    from bridge.consent import privacy

    runtime = load_runtime()
    normalized = emails.normalize(email)
    if normalized is None:
        raise click.ClickException("not an email address")
    with transaction(runtime.sessions) as session:
        result = privacy.erase(session, normalized, redact_at_persona=bool(runtime.settings.persona_api_key),
                               max_attempts=runtime.config.max_attempts, now=runtime.clock())
    if result is None:
        raise click.ClickException("no data held for this email")
    click.echo(f"erased; {result.inquiries} KYC decision(s) kept for legal reasons; "
               f"Persona redaction: {result.persona_redaction}")


@main.command()
@click.option("--dry-run", is_flag=True, help="Only say how many reminders are due; record and queue nothing.")
def remind(dry_run: bool) -> None:
    """Queue `kyc.stalled` reminders for verifications that stalled (safe to run from cron: each
    window at most once per person)."""
    from bridge.outbox import remind as remind_module

    runtime = load_runtime()
    windows = ", ".join(f"{h} h" for h in runtime.config.n8n.stalled_reminder_hours) or "none"
    if not runtime.settings.n8n_enabled and not dry_run:
        click.echo("n8n events: off (N8N_WEBHOOK_URL unset): no reminders recorded, so none is lost; "
                   "use --dry-run to see who would be reminded")
        return
    report = remind_module.run(runtime.sessions, runtime.config, now=runtime.clock(), dry_run=dry_run)
    verb = "due (dry run, nothing queued)" if dry_run else "queued"
    click.echo(f"{report.queued} reminder(s) {verb}; {report.already_sent} already sent for their window; "
               f"{report.stalled} stalled verification(s) seen (windows: {windows})")


@main.group("audit")
def audit_group() -> None:
    """Hash-chained audit log."""


@audit_group.command("verify")
def audit_verify() -> None:
    """Check the chain; name the first broken entry."""
    runtime = load_runtime()
    with transaction(runtime.sessions) as session:
        report = audit.verify(session)
    if report.ok:
        click.echo(f"audit chain intact: {report.checked} entries")
        return
    click.echo(f"audit chain BROKEN at entry {report.first_broken}: {report.problem} "
               f"({report.checked} entries verified before it)", err=True)
    sys.exit(1)


@main.group()
def retention() -> None:
    """Data retention."""


@retention.command("purge")
def retention_purge() -> None:
    """Drop stored webhook bodies older than webhooks.payload_retention_days."""
    from bridge.consent import privacy

    runtime = load_runtime()
    cutoff = runtime.clock() - timedelta(days=runtime.config.payload_retention_days)
    with transaction(runtime.sessions) as session:
        count = privacy.purge_payloads(session, before=cutoff, now=runtime.clock())
    click.echo(f"dropped {count} webhook bodies received before {cutoff:%Y-%m-%d %H:%M} UTC")


@main.command("migrate-store")
@click.option("--to", "target_url", required=True, help="PostgreSQL URL of the target store.")
@click.option("--batch-size", default=5000, show_default=True, type=int,
              help="Rows per key range: one read, one COPY, one digest, one target transaction.")
@click.option("--verify-only", is_flag=True, help="Compare source and target; write nothing.")
def migrate_store(target_url: str, batch_size: int, verify_only: bool) -> None:
    """Copy BRIDGE_DATABASE_URL's bridge tables into URL (resumable, incremental), then verify:
    exit 0 only when source and target are identical, 1 naming the first difference, 2 when refused."""
    from bridge.store import transfer

    def chain_check(session):  # type: ignore[no-untyped-def]
        report = audit.verify(session)
        if report.ok:
            return True, f"audit chain intact: {report.checked} entries"
        return False, f"audit chain broken at entry {report.first_broken}: {report.problem}"

    try:
        result = transfer.run(database_url(), target_url, batch_size=batch_size, verify_only=verify_only,
                              chain_check=chain_check)
    except transfer.Refusal as exc:
        click.echo(f"migrate-store refused: {exc}", err=True)
        sys.exit(2)
    except transfer.Failed as exc:
        click.echo(f"migrate-store failed: {exc}; what was written stays, run it again to go on", err=True)
        sys.exit(1)
    for line in transfer.summary(result):
        click.echo(line, err=True)
    if not result.identical:
        click.echo(f"NOT identical: {result.difference}", err=True)
        sys.exit(1)
    click.echo(f"identical: source and target hold the same rows; target {result.chain}")


def run() -> None:
    """Console entry point: store outages end with a message, not a traceback."""
    try:
        main(standalone_mode=True)
    except StoreUnavailable as exc:
        click.echo(f"error: the store is unavailable ({exc})", err=True)
        sys.exit(2)


if __name__ == "__main__":
    run()
