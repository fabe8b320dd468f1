"""`kyc-bridge` command line: click commands that call the domain."""

from __future__ import annotations

import json
import os
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, timezone

import click
from sqlalchemy.orm import Session, sessionmaker

from bridge import audit, logs
from bridge import config as config_module
from bridge.config import Config, ConfigError
from bridge.kyc.timestamps import iso_utc
from bridge.runtime import Runtime
from bridge.settings import SettingsError
from bridge.store import migrate, queue
from bridge.store.engine import StoreUnavailable, make_engine, make_sessionmaker, transaction


def load_runtime() -> Runtime:
    """Settings and config, validated once; errors name the variable or the file and key."""
    try:
        return Runtime.from_env(os.environ)
    except (SettingsError, ConfigError) as exc:
        raise click.ClickException(str(exc)) from None


def database_url() -> str:
    from bridge.settings import DEFAULT_DATABASE_URL

    return os.environ.get("BRIDGE_DATABASE_URL", "").strip() or DEFAULT_DATABASE_URL


def load_store() -> sessionmaker[Session]:
    """For commands that only read or re-queue: BRIDGE_DATABASE_URL alone, no secrets, no config."""
    return make_sessionmaker(make_engine(database_url()))


def load_config() -> Config:
    """The TOML config (BRIDGE_CONFIG_FILE or the bundled one), without the secrets."""
    try:
        return config_module.load(os.environ.get("BRIDGE_CONFIG_FILE", "").strip() or None)
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from None


@contextmanager
def progress(label: str, length: int) -> Iterator[Callable[[int], None]]:
    """A progress bar on stderr when stderr is a terminal (stdout may be a file or a pipe); else nothing."""
    if length <= 0 or not sys.stderr.isatty():
        yield lambda done: None
        return
    with click.progressbar(length=length, label=label, file=sys.stderr) as bar:
        yield bar.update


def echo_json(data: object) -> None:
    click.echo(json.dumps(data, indent=2, sort_keys=True))


def emit(text: str, output: str | None, written: str) -> None:
    """Print `text`, or write it to the file `output`, readable by its owner only (it may hold
    personal data), and say `written` on stderr."""
    if output is None:
        click.echo(text, nl=False)
        return
    fd = os.open(output, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(text)
    click.echo(f"{written} to {output}", err=True)


@click.group()
@click.version_option(package_name="kyc-bridge", prog_name="kyc-bridge")
@click.option("--log-level", default="INFO", show_default=True, envvar="BRIDGE_LOG_LEVEL",
              help="debug, info, warning, error or critical (env BRIDGE_LOG_LEVEL).")
@click.pass_context
def main(ctx: click.Context, log_level: str) -> None:
    """kyc-bridge: Persona KYC webhooks in, one truthful KYC state, FluentCRM tags and n8n events out."""
    try:
        logs.configure(log_level)
    except logs.LogLevelError as exc:
        from_env = ctx.get_parameter_source("log_level") == click.core.ParameterSource.ENVIRONMENT
        raise click.ClickException(f"{'BRIDGE_LOG_LEVEL' if from_env else '--log-level'}: {exc}") from None


@main.group()
def db() -> None:
    """Database schema."""


@db.command("upgrade")
@click.option("--revision", default="head", show_default=True)
def db_upgrade(revision: str) -> None:
    """Apply the Alembic migrations to BRIDGE_DATABASE_URL (several processes at once take turns)."""
    try:
        migrate.upgrade(database_url(), revision)
    except migrate.MigrationLockTimeout as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"database at revision {revision}")


MIGRATE_HELP = "Apply the database migrations first (safe when several processes start at once)."


def require_schema_at_head(migrate_first: bool) -> None:
    """Refuse to start, in one line, on a database behind the code's revision (or migrate it first)."""
    from bridge.app.startup import schema_problem

    problem = schema_problem(os.environ, warn=lambda line: click.echo(f"warning: {line}", err=True),
                             migrate_first=migrate_first)
    if problem:
        raise click.ClickException(problem)


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=int)
@click.option("--migrate", "migrate_first", is_flag=True, help=MIGRATE_HELP)
def serve(host: str, port: int, migrate_first: bool) -> None:
    """Run the web app and the outbox worker in one process (small sites)."""
    from bridge.app.server import SingleProcessServer
    from bridge.web import create_app, limits

    runtime = load_runtime()
    require_schema_at_head(migrate_first)
    for line in runtime.describe_outputs():
        click.echo(line)
    click.echo(limits.describe(limits.storage_uri(os.environ)))
    click.echo(f"kyc-bridge serving on http://{host}:{port} (webhook: /webhooks/persona)")
    config = config_module.served_at(runtime.config, host, port)
    SingleProcessServer(lambda: create_app(runtime=Runtime.build(runtime.settings, config)), host, port).run()


@main.command()
@click.option("--once", is_flag=True, help="Run what is due now (jobs and [schedule] upkeep), then exit.")
@click.option("--migrate", "migrate_first", is_flag=True, help=MIGRATE_HELP)
def worker(once: bool, migrate_first: bool) -> None:
    """Drain the outbox: FluentCRM sync (and n8n events), with retries and dead-lettering."""
    from bridge.outbox.worker import Worker

    runtime = load_runtime()
    require_schema_at_head(migrate_first)
    for line in runtime.describe_outputs():
        click.echo(line)
    if once:  # one round of what a running worker does: the upkeep that is due, then the jobs
        from bridge.outbox.upkeep import Upkeep

        for ran in Upkeep(runtime).tick():
            click.echo(f"upkeep {ran.task}: {ran.outcome} ({ran.detail})")
        outcomes = Worker(runtime).drain()
        click.echo(f"{len(outcomes)} job(s) run")
        return
    stop = threading.Event()
    import signal

    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    from bridge.app.healthcheck import Heartbeat, heartbeat_path

    Worker(runtime, alive=Heartbeat(heartbeat_path(os.environ)).beat).run_forever(stop)


@main.command()
@click.option("--role", type=click.Choice(["web", "worker"]), default=None,
              help="What runs in this container [default: BRIDGE_ROLE, else guessed from PID 1's command line].")
@click.option("--max-age", default=120, show_default=True, type=float,
              help="worker: seconds since the worker's last heartbeat (BRIDGE_HEARTBEAT_FILE) before it counts as stuck.")
def healthcheck(role: str | None, max_age: float) -> None:
    """Docker HEALTHCHECK: exit 0 when this container's process is healthy. web: GET /healthz on
    BRIDGE_BIND (default 0.0.0.0:8000); worker: its heartbeat is fresh. Needs no secrets."""
    from bridge.app.healthcheck import check

    role, problem = check(os.environ, role, max_age)
    if problem:
        click.echo(f"unhealthy: {problem}", err=True)
        sys.exit(1)
    click.echo(f"healthy ({role})")


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
@click.option("--json", "as_json", is_flag=True, help="One JSON array instead of a table.")
def jobs_list(states: tuple[str, ...], limit: int, as_json: bool) -> None:
    """Show the newest jobs, with their last error or result."""
    with transaction(load_store()) as session:
        rows = queue.list_jobs(session, list(states) or None, limit)
    if as_json:
        echo_json([{"id": job.id, "kind": job.kind, "state": job.state, "attempts": job.attempts,
                    "max_attempts": job.max_attempts, "inquiry_id": job.inquiry_id, "last_error": job.last_error,
                    "result": job.result, "run_after": iso_utc(job.run_after), "updated_at": iso_utc(job.updated_at)}
                   for job in rows])
        return
    if not rows:
        click.echo("no jobs")
        return
    click.echo(f"{'id':>6}  {'kind':<10} {'state':<8} {'tries':<5}  {'inquiry':<30} last error / result")
    for job in rows:
        note = job.last_error or job.result or ""
        state = job.state
        if job.state == queue.QUEUED and job.last_error is not None:
            # a failed try, the next one scheduled: say when, not just "queued"
            state, note = "waiting for retry", f"next try {iso_utc(job.run_after)}: {note}"
        click.echo(f"{job.id:>6}  {job.kind:<10} {state:<8} {job.attempts:>2}/{job.max_attempts:<2}  "
                   f"{job.inquiry_id or '-':<30} {note}")


@jobs.command("retry")
@click.argument("job_ids", nargs=-1, type=int)
@click.option("--all", "retry_all", is_flag=True, help="Every dead or failed job.")
def jobs_retry(job_ids: tuple[int, ...], retry_all: bool) -> None:
    """Re-queue dead or failed jobs (by id, or --all)."""
    if not job_ids and not retry_all:
        raise click.UsageError("give job ids or --all")
    now = datetime.now(timezone.utc)
    with transaction(load_store()) as session:
        ids = queue.requeue(session, list(job_ids) or None, now=now)
        if ids:
            audit.append(session, "jobs.requeued", "jobs", {"count": len(ids)}, at=now)
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
    from bridge import operations
    from bridge.consent import onboarding

    runtime = load_runtime()
    if send:
        try:
            with transaction(runtime.sessions) as session:
                operations.send_link(session, runtime.config, email=email, user_type=user_type,
                                     first_name=first_name, now=runtime.clock())
        except (onboarding.OnboardingError, operations.Refused) as exc:
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
        known = onboarding.withdraw_consent(runtime.sessions, email, now=runtime.clock(),
                                            max_attempts=runtime.config.max_attempts,
                                            redact_at_persona=bool(runtime.settings.persona_api_key))
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
                               max_attempts=runtime.config.max_attempts, now=runtime.clock(),
                               crm_tags=runtime.erase_crm_tags())
    if result is None:
        raise click.ClickException("no data held for this email")
    click.echo(f"erased; {result.inquiries} KYC decision(s) kept for legal reasons; "
               f"Persona redaction: {result.persona_redaction}; FluentCRM tags: {result.crm_tags}")


@main.command()
@click.option("--dry-run", is_flag=True, help="Only say how many reminders are due; record and queue nothing.")
def remind(dry_run: bool) -> None:
    """Queue `kyc.stalled` reminders for verifications that stalled, and the renewal pass: notices
    before an approval lapses, the lapse at its deadline (safe to run from cron: each window at
    most once per person)."""
    from bridge.outbox import remind as remind_module
    from bridge.outbox import renew

    runtime = load_runtime()
    now = runtime.clock()
    windows = ", ".join(f"{h} h" for h in runtime.config.n8n.stalled_reminder_hours) or "none"
    if not runtime.settings.n8n_enabled and not dry_run:
        click.echo("n8n events: off (N8N_WEBHOOK_URL unset): no reminders recorded, so none is lost; "
                   "use --dry-run to see who would be reminded")
    else:
        report = remind_module.run(runtime.sessions, runtime.config, now=now, dry_run=dry_run,
                                   progress=lambda total: progress("queueing reminders", total))
        verb = "due (dry run, nothing queued)" if dry_run else "queued"
        click.echo(f"{report.queued} reminder(s) {verb}; {report.already_sent} already sent for their window; "
                   f"{report.stalled} stalled verification(s) seen (windows: {windows})")
    if runtime.config.renewals_on:  # lapses are recorded without n8n too: status, audit and tags need none
        renewed = renew.run(runtime.sessions, runtime.config, now=now, notices=runtime.settings.n8n_enabled,
                            dry_run=dry_run)
        click.echo(("renewals (dry run, nothing recorded): " if dry_run else "renewals: ")
                   + renew.summary(renewed, notices=runtime.settings.n8n_enabled))


def _email_argument(email: str) -> str:
    from bridge.kyc import emails

    normalized = emails.normalize(email)
    if normalized is None:
        raise click.BadParameter("not an email address", param_hint="EMAIL")
    return normalized


@main.command()
@click.argument("email")
@click.option("--json", "as_json", is_flag=True, help="Everything as one JSON object.")
def contact(email: str, as_json: bool) -> None:
    """Show a person: KYC status, inquiries, consents, jobs and audit history."""
    from bridge import queries

    now = datetime.now(timezone.utc)
    config = load_config()
    with transaction(load_store()) as session:
        view = queries.contact_view(session, _email_argument(email), now=now, lapse=config.renewal_policy(now),
                                    targets=config.review.target_hours)
    if view is None:
        raise click.ClickException("no data held for this email")
    if as_json:
        echo_json(view)
        return
    kyc = view["kyc"]
    click.echo(f"{view['email']}: {kyc['status']}" + (f" ({kyc['user_type']}, {kyc['level']}, decided "
                                                      f"{kyc['decided_at']})" if kyc["decided_at"] else ""))
    if view["consent_withdrawn_at"]:
        click.echo(f"consent withdrawn {view['consent_withdrawn_at']}")
    for name, line in _CONTACT_SECTIONS.items():
        click.echo(f"{name}:" if view[name] else f"{name}: none")
        for item in view[name]:
            click.echo(f"  {line(item)}")


def _withdrawn(item: dict) -> str:  # type: ignore[type-arg]
    return f", withdrawn {item['withdrawn_at']}" if item["withdrawn_at"] else ""


# How `contact` shows each list of queries.contact_view, one line per item.
_CONTACT_SECTIONS: dict[str, Callable[[dict], str]] = {  # type: ignore[type-arg]
    "inquiries": lambda i: f"{i['inquiry_id']:<32} {i['status']:<13} {i['user_type']:<19} {i['level'] or '-':<9} "
                           f"{i['decided_at'] or '-'}",
    "consents": lambda c: f"{c['created_at']} {c['user_type']} (text {c['text_version']}, {c['source']}{_withdrawn(c)})",
    "jobs": lambda j: f"{j['id']:>6} {j['kind']:<15} {j['state']:<7} {j['attempts']}/{j['max_attempts']} "
                      f"{j['last_error'] or j['result'] or ''}",
    "history": lambda e: f"{e['seq']:>6} {e['at']} {e['action']:<20} {e['subject']} "
                         + ", ".join(f"{k}={v}" for k, v in e["detail"].items() if v is not None),
}


@main.command("export")
@click.argument("email")
@click.option("--output", "-o", type=click.Path(dir_okay=False, writable=True), default=None,
              help="Write to FILE (readable by you only) instead of standard output.")
def export_contact(email: str, output: str | None) -> None:
    """What the bridge holds on a person, as JSON (the same as GET /api/v1/contacts/<email>/export)."""
    from bridge.consent import privacy

    with transaction(load_store()) as session:
        data = privacy.export(session, _email_argument(email))
    if data is None:
        raise click.ClickException("no data held for this email")
    emit(json.dumps(data, indent=2, sort_keys=True) + "\n", output, "export written")


@main.command()
@click.option("--since", required=True, metavar="WINDOW|TIME",
              help="How far back: 72h, 15m, 7d, or an ISO 8601 time with its zone (2026-12-01T00:00:00Z).")
@click.option("--page-size", default=100, show_default=True, type=click.IntRange(1, 100))
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
def reconcile(since: str, page_size: int, as_json: bool) -> None:
    """Repair missed webhooks from Persona's event log: every event in the window goes through the
    webhook intake (duplicates change nothing, so it is safe to run again)."""
    from bridge.intake import reconcile as reconcile_module
    from bridge.kyc.timestamps import parse_since
    from bridge.sinks.errors import SinkError

    runtime = load_runtime()
    try:
        start = parse_since(since, runtime.clock())
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--since") from None
    client = runtime.persona_client()
    if client is None:
        raise click.ClickException("reconcile reads Persona's event log: set PERSONA_API_KEY "
                                   "(and PERSONA_API_BASE for another Persona address)")

    def progress(report: reconcile_module.Report) -> None:
        if sys.stderr.isatty():
            click.echo(f"\rpage {report.pages}: {report.read} event(s) in the window", err=True, nl=False)

    try:
        report = reconcile_module.run(runtime.engine, runtime.config, client, since=start, now=runtime.clock,
                                      page_size=page_size, on_page=progress)
    except SinkError as exc:
        raise click.ClickException(f"Persona's event log: {exc.reason}") from None
    if sys.stderr.isatty():
        click.echo("", err=True)
    if as_json:
        click.echo(json.dumps({"since": start.isoformat().replace("+00:00", "Z"), **report.as_dict()}))
        return
    click.echo(f"reconciled since {start:%Y-%m-%d %H:%M:%S} UTC: {report.summary()}")


@main.group("audit")
def audit_group() -> None:
    """Hash-chained audit log."""


def _read_anchor(path: str) -> audit.Head:
    try:
        with open(path, encoding="utf-8") as handle:
            return audit.read_anchor(handle)
    except OSError as exc:
        raise click.ClickException(f"{path}: cannot be read: {exc.strerror}") from None
    except ValueError as exc:
        raise click.ClickException(f"{path}: not an anchor or export file ({exc})") from None


@audit_group.command("verify")
@click.option("--anchor", "anchor_file", type=click.Path(dir_okay=False),
              help="A head saved earlier outside the database (`audit anchor` or `audit export`): the entry "
                   "it names must be unchanged, which catches a rewrite of the chain after it.")
@click.option("--from-file", "export_file", type=click.Path(dir_okay=False),
              help="Verify an `audit export` file instead of the database (no database needed).")
@click.option("--json", "as_json", is_flag=True, help="The result as JSON.")
def audit_verify(anchor_file: str | None, export_file: str | None, as_json: bool) -> None:
    """Check the chain; name the first broken entry."""
    anchor = _read_anchor(anchor_file) if anchor_file else None
    if export_file:
        try:
            with open(export_file, encoding="utf-8") as handle:
                report = audit.verify_export(handle, anchor=anchor)
        except OSError as exc:
            raise click.ClickException(f"{export_file}: cannot be read: {exc.strerror}") from None
    else:
        with transaction(load_store()) as session:
            head = audit.read_head(session)
            with progress("verifying", head.seq if head else 0) as advance:
                report = audit.verify(session, anchor=anchor, progress=advance)
    if as_json:
        echo_json({"ok": report.ok, "checked": report.checked, "first_broken": report.first_broken,
                   "problem": report.problem, "anchor": anchor.as_json()["head"] if anchor else None,
                   "source": export_file or "database"})
        sys.exit(0 if report.ok else 1)
    if report.ok:
        against = f"; entry {anchor.seq} matches the anchor" if anchor and anchor.seq else ""
        click.echo(f"audit chain intact: {report.checked} entries{against}")
        return
    click.echo(f"audit chain BROKEN at entry {report.first_broken}: {report.problem} "
               f"({report.checked} entries verified before it)", err=True)
    sys.exit(1)


def _since(value: str | None) -> int | datetime:
    if value is None:
        return 1
    if value.isdigit():
        return max(int(value), 1)
    try:
        at = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise click.BadParameter("give an entry number (seq) or a time like 2026-12-01T00:00:00Z",
                                 param_hint="--since") from None
    return at if at.tzinfo else at.replace(tzinfo=timezone.utc)


@audit_group.command("export")
@click.option("--since", default=None, metavar="SEQ|TIME",
              help="Start at this entry number, or at the first entry written at or after this time (UTC).")
@click.option("--output", "-o", type=click.Path(dir_okay=False, writable=True), default=None,
              help="Write to FILE instead of standard output.")
def audit_export(since: str | None, output: str | None) -> None:
    """Write the chain as JSON lines, one entry (with its hash) per line, then the head: an auditor
    checks it offline with `audit verify --from-file` (or the few lines in the README), and the
    head line is an anchor for `audit verify --anchor` later."""
    start = _since(since)
    lines = []
    with transaction(load_store()) as session:
        head = audit.read_head(session) or audit.Head(0, audit.GENESIS)  # entries after it are not in this export
        first = start if isinstance(start, int) else audit.first_seq_at(session, start)
        with progress("exporting", head.seq - first + 1) as advance:
            for entry in audit.entries_from(session, first, until_seq=head.seq):
                lines.append(json.dumps(audit.exported(entry), sort_keys=True))
                advance(1)
    lines.append(json.dumps(head.as_json(), sort_keys=True))
    emit("\n".join(lines) + "\n", output, f"{len(lines) - 1} entries and the head (entry {head.seq}) written")


@audit_group.command("anchor")
@click.option("--output", "-o", type=click.Path(dir_okay=False, writable=True), default=None,
              help="Write to FILE instead of standard output.")
def audit_anchor(output: str | None) -> None:
    """Print the chain's head (seq and hash) to keep outside the database, e.g. daily; later,
    `audit verify --anchor FILE` fails if anything up to that entry was rewritten."""
    with transaction(load_store()) as session:
        head = audit.read_head(session) or audit.Head(0, audit.GENESIS)
    saved_at = datetime.now(timezone.utc).isoformat(timespec="seconds")
    emit(json.dumps({**head.as_json(), "saved_at": saved_at}, sort_keys=True) + "\n", output,
         f"head (entry {head.seq}) written")


@main.group()
def retention() -> None:
    """Data retention."""


@retention.command("purge")
def retention_purge() -> None:
    """Drop stored webhook bodies older than webhooks.payload_retention_days (serve and worker do
    this themselves when [schedule] retention_every is set)."""
    from bridge.consent import privacy
    from bridge.outbox.upkeep import retention_cutoff

    config, now = load_config(), datetime.now(timezone.utc)
    cutoff = retention_cutoff(config, now)
    with transaction(load_store()) as session:
        count = privacy.purge_payloads(session, before=cutoff, now=now)
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
