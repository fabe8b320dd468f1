"""The TOML configuration: user types → Persona templates and levels, FluentCRM tags, limits.

Validated once at start-up; every error names the file, the key and the problem.
"""

from __future__ import annotations

import hashlib
import re
import tomllib
from dataclasses import dataclass, field, replace
from datetime import datetime
from importlib import resources
from pathlib import Path
from types import MappingProxyType
from typing import Any, Mapping

from bridge.kyc import renewal, retry, review
from bridge.kyc.states import Status

USER_TYPES = ("contributor", "intern", "investor", "customer", "cooperative_member", "vendor")
UNKNOWN_USER_TYPE = "unknown"
LEVELS = ("basic", "enhanced")
_SLUG = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")
BUNDLED = "default_config.toml"


class ConfigError(ValueError):
    def __init__(self, source: str, key: str, problem: str):
        super().__init__(f"{source}: {key}: {problem}")


@dataclass(frozen=True)
class Tag:
    slug: str
    title: str


@dataclass(frozen=True)
class UserType:
    name: str
    template_id: str
    level: str
    tag: Tag
    # Days after an approval at which the person must verify again (0: never; bridge/kyc/renewal.py).
    reverify_after_days: int = 0


@dataclass(frozen=True)
class ConsentText:
    version: str
    intro: str
    share_with_persona: str
    persona_retention: str
    gdpr_processing: str

    @property
    def sha256(self) -> str:
        canonical = "\n".join([self.version, self.intro, self.share_with_persona, self.persona_retention,
                               self.gdpr_processing])
        return hashlib.sha256(canonical.encode()).hexdigest()


CONSENT_BOXES = ("share_with_persona", "persona_retention", "gdpr_processing")

# Welcome emails the shipped n8n flow (n8n-flows/kyc-events.json) knows; see n8n-flows/README.md.
WELCOME_VARIANTS = ("agency", "membership", "investor", "team", "partner", "standard")
DEFAULT_WELCOME_VARIANTS = {"customer": "agency", "cooperative_member": "membership", "investor": "investor",
                            "contributor": "team", "intern": "team", "vendor": "partner"}


@dataclass(frozen=True)
class N8nConfig:
    """The `[n8n]` section: what the bridge puts into events and when `kyc-bridge remind` reminds."""

    timeout_seconds: float = 10.0
    # Hours after the last consent (or start) at which a stalled verification is reminded, each once.
    stalled_reminder_hours: tuple[int, ...] = (24, 72)
    # Older starts get no reminder at all (e.g. when reminders are turned on over an old database).
    stalled_max_age_hours: int = 168
    welcome_variants: Mapping[str, str] = field(
        default_factory=lambda: MappingProxyType(dict(DEFAULT_WELCOME_VARIANTS)))

    def welcome_variant(self, user_type: str) -> str:
        return self.welcome_variants.get(user_type, "standard")


@dataclass(frozen=True)
class RenewalConfig:
    """The `[renewal]` section: when people whose approval will lapse get a `kyc.renewal_due` event."""

    # Days before the deadline at which one notice each is sent (the smallest window reached wins).
    notice_days: tuple[int, ...] = (30, 7)


@dataclass(frozen=True)
class ReviewConfig:
    """The `[review]` section: how long a case in manual review may wait, per level. The one place
    for the target: overdue in the admin API and /metrics, the due time in `kyc.needs_review`
    events, the `kyc.review_overdue` upkeep and the WordPress admin page all read it."""

    target_hours: Mapping[str, int] = field(
        default_factory=lambda: MappingProxyType({level: DEFAULT_REVIEW_TARGET_HOURS for level in LEVELS}))

    def target_for(self, level: str | None) -> int:
        return review.target_hours(self.target_hours, level)


DEFAULT_REVIEW_TARGET_HOURS = 24


@dataclass(frozen=True)
class PrivacyConfig:
    """The `[privacy] section`: what an erasure does besides forgetting the person."""

    erase_crm_tags: bool = True  # remove the person's KYC tags in FluentCRM (through the outbox)


# Upkeep tasks `serve` and `worker` can run on a schedule (`[schedule] <task>_every`); each has its
# own lease row, so adding one is a name here and a function the runtime wires (Runtime.upkeep_tasks).
UPKEEP_TASKS = ("remind", "renew", "retention", "reconcile", "review_overdue")
_DURATION = re.compile(r"^\s*(\d+)\s*([smhd])\s*$")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


@dataclass(frozen=True)
class ScheduleConfig:
    """The `[schedule]` section: how often `serve` and `worker` run each upkeep task themselves."""

    every_seconds: Mapping[str, int] = field(default_factory=lambda: MappingProxyType({}))  # task → interval; absent = off
    # How long a runner may hold a task before another process takes it over (it died mid-run).
    lease_ttl_seconds: int = 900
    # How far back a scheduled reconcile reads Persona's event log.
    reconcile_window_seconds: int = 72 * 3600

    def interval(self, task: str) -> int | None:
        return self.every_seconds.get(task)


@dataclass(frozen=True)
class Config:
    source: str
    public_url: str
    trusted_proxies: int
    allowed_redirect_origins: frozenset[str]
    max_attempts_per_type: int
    resume_window_hours: int
    link_ttl_hours: int
    rate_limit_per_ip: str
    rate_limit_per_link: str
    consent: ConsentText
    manual_review_tag: Tag
    monitoring_tag: Tag  # with the needs-review tag while a monitoring match holds an approval
    hosted_flow_url: str
    dashboard_url: str
    max_body_bytes: int
    signature_tolerance_seconds: int | None  # None: no age check
    payload_retention_days: int
    max_attempts: int
    backoff_base_seconds: float
    backoff_max_seconds: float
    lease_seconds: int
    poll_interval_seconds: float
    new_contact_status: str
    crm_timeout_seconds: float
    status_tags: Mapping[Status, Tag]
    user_types: Mapping[str, UserType]
    n8n: N8nConfig = field(default_factory=N8nConfig)
    schedule: ScheduleConfig = field(default_factory=ScheduleConfig)
    renewal: RenewalConfig = field(default_factory=RenewalConfig)
    review: ReviewConfig = field(default_factory=ReviewConfig)
    privacy: PrivacyConfig = field(default_factory=PrivacyConfig)
    # [worker]: jobs one worker process runs at once, and its per-sink circuit breaker
    concurrency: int = 4
    breaker_failures: int = 5
    breaker_probe_seconds: float = 5.0
    # [onboarding.retry]: per final status, whether the person may try again (bridge/kyc/retry.py).
    retry_allowed: Mapping[str, bool] = field(default_factory=lambda: MappingProxyType(dict(retry.DEFAULT)))

    def renewal_policy(self, now: datetime) -> renewal.Policy:
        """The renewal rule at `now` (bridge/kyc/renewal.py): which approvals have lapsed."""
        return renewal.Policy(MappingProxyType({name: t.reverify_after_days for name, t in self.user_types.items()
                                                if t.reverify_after_days > 0}), now)

    @property
    def renewals_on(self) -> bool:
        return any(t.reverify_after_days > 0 for t in self.user_types.values())

    def user_type_for_template(self, template_id: str | None) -> UserType | None:
        for user_type in self.user_types.values():
            if template_id and user_type.template_id == template_id:
                return user_type
        return None


class _Reader:
    """Typed access to a TOML table that names the full key path in errors."""

    def __init__(self, source: str, table: Mapping[str, Any], path: str = ""):
        self.source, self.table, self.path = source, table, path

    def key(self, name: str) -> str:
        return f"{self.path}.{name}" if self.path else name

    def error(self, name: str, problem: str) -> ConfigError:
        return ConfigError(self.source, self.key(name), problem)

    def sub(self, name: str) -> _Reader:
        value = self.table.get(name, {})
        if not isinstance(value, dict):
            raise self.error(name, "must be a table")
        return _Reader(self.source, value, self.key(name))

    def get(self, name: str, kind: type | tuple[type, ...], default: Any = None) -> Any:
        if name not in self.table:
            if default is None:
                raise self.error(name, "is missing")
            return default
        value = self.table[name]
        if isinstance(value, bool) or not isinstance(value, kind):
            kinds = kind if isinstance(kind, tuple) else (kind,)
            raise self.error(name, f"must be {' or '.join(k.__name__ for k in kinds)}")
        return value

    def positive(self, name: str, kind: type | tuple[type, ...], default: Any) -> Any:
        value = self.get(name, kind, default)
        if value <= 0:
            raise self.error(name, "must be greater than 0")
        return value


DEFAULT_PUBLIC_URL = "http://127.0.0.1:8000"


def _browsable_host(host: str) -> str:
    """The address a browser on this machine uses for a server bound to `host`."""
    if host in ("", "0.0.0.0"):
        return "127.0.0.1"
    if host == "::":
        return "[::1]"
    return f"[{host}]" if ":" in host else host


def served_at(config: Config, host: str, port: int) -> Config:
    """The config for a server on host:port (`serve`, `demo`): while public_url is left at its
    default, links and Persona's redirect back point there, not at port 8000. A config with an
    address of its own (a proxy, a tunnel) keeps it."""
    if config.public_url != DEFAULT_PUBLIC_URL:
        return config
    public_url = f"http://{_browsable_host(host)}:{port}"
    origins = {o for o in config.allowed_redirect_origins if o != config.public_url.lower()} | {public_url.lower()}
    return replace(config, public_url=public_url, allowed_redirect_origins=frozenset(origins))


def _origin_of(url: str) -> str:
    scheme, _, rest = url.partition("://")
    return f"{scheme}://{rest.split('/', 1)[0]}".lower()


def _tag(reader: _Reader, name: str) -> Tag:
    tag = reader.sub(name)
    slug, title = tag.get("slug", str), tag.get("title", str)
    if not _SLUG.match(slug):
        raise tag.error("slug", f"{slug!r} is not a slug (lowercase letters, digits and single dashes)")
    if len(title.strip()) < 3:
        raise tag.error("title", "must have at least 3 characters")
    return Tag(slug=slug, title=title.strip())


def parse(document: Mapping[str, Any], source: str) -> Config:
    root = _Reader(source, document)
    known = {"bridge", "persona", "onboarding", "consent", "webhooks", "worker", "fluentcrm", "user_types", "n8n",
             "schedule", "renewal", "review", "privacy"}
    for key in document:
        if key not in known:
            raise root.error(key, f"unknown section (expected one of {', '.join(sorted(known))})")
    persona, webhooks, worker, crm = (root.sub(n) for n in ("persona", "webhooks", "worker", "fluentcrm"))
    bridge, onboarding, consent = (root.sub(n) for n in ("bridge", "onboarding", "consent"))
    public_url = bridge.get("public_url", str, DEFAULT_PUBLIC_URL).rstrip("/")
    if not public_url.startswith(("http://", "https://")):
        raise bridge.error("public_url", "must start with http:// or https://")
    consent_text = ConsentText(
        version=consent.get("version", str),
        intro=consent.get("intro", str, "Before we can verify your identity, we need your consent."),
        **{box: consent.get(box, str) for box in CONSENT_BOXES},
    )
    for box in CONSENT_BOXES:
        if not getattr(consent_text, box).strip():
            raise consent.error(box, "must not be empty")

    status_table = crm.sub("status_tags")
    status_tags: dict[Status, Tag] = {}
    for name in status_table.table:
        try:
            status = Status(name)
        except ValueError:
            raise status_table.error(name, "is not a KYC status") from None
        status_tags[status] = _tag(status_table, name)

    renewal_config = _renewal(root.sub("renewal"))
    types_table = root.sub("user_types")
    user_types: dict[str, UserType] = {}
    for name in types_table.table:
        if name not in USER_TYPES:
            raise types_table.error(name, f"unknown user type (expected one of {', '.join(USER_TYPES)})")
        entry = types_table.sub(name)
        template_id = entry.get("template_id", str)
        if not template_id.startswith(("itmpl_", "tmpl_", "itmplv_")):
            raise entry.error("template_id", "must be a Persona template id (itmpl_…, itmplv_… or tmpl_…)")
        level = entry.get("level", str)
        if level not in LEVELS:
            raise entry.error("level", f"must be one of {', '.join(LEVELS)}")
        reverify = entry.get("reverify_after_days", int, 0)
        if reverify < 0:
            raise entry.error("reverify_after_days", "must be 0 (no renewals) or a number of days")
        if 0 < reverify <= max(renewal_config.notice_days, default=0):
            raise entry.error("reverify_after_days", f"must be greater than the largest renewal notice window "
                                                     f"([renewal] notice_days: {max(renewal_config.notice_days)} days)")
        user_types[name] = UserType(name, template_id, level, _tag(entry, "tag"), reverify)
    missing = [t for t in USER_TYPES if t not in user_types]
    if missing:
        raise types_table.error(missing[0], "is missing (every user type needs a template)")
    templates = [u.template_id for u in user_types.values()]
    if len(set(templates)) != len(templates):
        raise types_table.error("*", "two user types share one template_id")

    tolerance = webhooks.get("signature_tolerance_seconds", int, 0)
    if tolerance < 0:
        raise webhooks.error("signature_tolerance_seconds", "must be 0 (off) or positive")
    trusted_proxies = bridge.get("trusted_proxies", int, 0)
    origins = bridge.get("allowed_redirect_origins", list, [public_url])
    for index, item in enumerate(origins):
        if not isinstance(item, str) or not re.match(r"^https?://[^/?#\s]+$", item):
            raise bridge.error(f"allowed_redirect_origins[{index}]", "must be an origin like https://shop.example")
    if trusted_proxies < 0:
        raise bridge.error("trusted_proxies", "must be 0 or more")
    return Config(
        source=source,
        public_url=public_url,
        trusted_proxies=trusted_proxies,
        allowed_redirect_origins=frozenset(o.lower() for o in origins) | {_origin_of(public_url)},
        max_attempts_per_type=onboarding.positive("max_attempts_per_type", int, 3),
        resume_window_hours=onboarding.positive("resume_window_hours", int, 24),
        link_ttl_hours=onboarding.positive("link_ttl_hours", int, 168),
        rate_limit_per_ip=onboarding.get("rate_limit_per_ip", str, "30 per minute"),
        rate_limit_per_link=onboarding.get("rate_limit_per_link", str, "10 per minute"),
        consent=consent_text,
        manual_review_tag=_tag(crm, "manual_review_tag") if "manual_review_tag" in crm.table
        else Tag("kyc-manual-review", "KYC: Manual Review"),
        monitoring_tag=_tag(crm, "monitoring_tag") if "monitoring_tag" in crm.table
        else Tag("kyc-monitoring-match", "KYC: Monitoring Match"),
        hosted_flow_url=persona.get("hosted_flow_url", str, "https://inquiry.withpersona.com/verify"),
        dashboard_url=persona.get("dashboard_url", str, "https://app.withpersona.com/dashboard/inquiries"),
        max_body_bytes=webhooks.positive("max_body_bytes", int, 1024 * 1024),
        signature_tolerance_seconds=tolerance or None,
        payload_retention_days=webhooks.positive("payload_retention_days", int, 30),
        max_attempts=worker.positive("max_attempts", int, 8),
        backoff_base_seconds=float(worker.positive("backoff_base_seconds", (int, float), 5.0)),
        backoff_max_seconds=float(worker.positive("backoff_max_seconds", (int, float), 3600.0)),
        lease_seconds=worker.positive("lease_seconds", int, 120),
        poll_interval_seconds=float(worker.positive("poll_interval_seconds", (int, float), 0.5)),
        new_contact_status=crm.get("new_contact_status", str, "transactional"),
        crm_timeout_seconds=float(crm.positive("timeout_seconds", (int, float), 10.0)),
        status_tags=MappingProxyType(status_tags),
        user_types=MappingProxyType(user_types),
        n8n=_n8n(root.sub("n8n")),
        review=_review(root.sub("review"), root.sub("n8n")),
        privacy=_privacy(root.sub("privacy")),
        schedule=_schedule(root.sub("schedule")),
        concurrency=worker.positive("concurrency", int, 4),
        breaker_failures=worker.positive("breaker_failures", int, 5),
        breaker_probe_seconds=float(worker.positive("breaker_probe_seconds", (int, float), 5.0)),
        retry_allowed=_retry(onboarding.sub("retry")),
        renewal=renewal_config,
    )


def _renewal(table: _Reader) -> RenewalConfig:
    known = {"notice_days"}
    for key in table.table:
        if key not in known:
            raise table.error(key, f"unknown key (expected one of {', '.join(sorted(known))})")
    days = table.get("notice_days", list, list(RenewalConfig().notice_days))
    if any(isinstance(d, bool) or not isinstance(d, int) or d <= 0 for d in days):
        raise table.error("notice_days", "must be a list of whole days greater than 0 ([] = no notices)")
    if len(set(days)) != len(days):
        raise table.error("notice_days", "lists a day twice")
    return RenewalConfig(notice_days=tuple(sorted(days, reverse=True)))


def _retry(table: _Reader) -> Mapping[str, bool]:
    allowed = dict(retry.DEFAULT)
    for status, value in table.table.items():
        if status not in retry.CONFIGURABLE:
            raise table.error(status, f"not a status with a retry choice (one of {', '.join(retry.CONFIGURABLE)})")
        if not isinstance(value, bool):
            raise table.error(status, "must be true or false")
        allowed[status] = value
    return MappingProxyType(allowed)


def _n8n(n8n: _Reader) -> N8nConfig:
    known = {"timeout_seconds", "stalled_reminder_hours", "stalled_max_age_hours", "review_deadline_hours",
             "welcome_variants"}
    for key in n8n.table:
        if key not in known:
            raise n8n.error(key, f"unknown key (expected one of {', '.join(sorted(known))})")
    defaults = N8nConfig()
    hours = n8n.get("stalled_reminder_hours", list, list(defaults.stalled_reminder_hours))
    if any(isinstance(h, bool) or not isinstance(h, int) or h <= 0 for h in hours):
        raise n8n.error("stalled_reminder_hours", "must be a list of whole hours greater than 0 ([] = no reminders)")
    if len(set(hours)) != len(hours):
        raise n8n.error("stalled_reminder_hours", "lists an hour twice")
    max_age = n8n.positive("stalled_max_age_hours", int, defaults.stalled_max_age_hours)
    if hours and max_age <= max(hours):
        raise n8n.error("stalled_max_age_hours", f"must be greater than the last reminder window ({max(hours)} h)")
    variants_table = n8n.sub("welcome_variants")
    variants = dict(DEFAULT_WELCOME_VARIANTS)
    for user_type in variants_table.table:
        if user_type not in USER_TYPES:
            raise variants_table.error(user_type, f"unknown user type (expected one of {', '.join(USER_TYPES)})")
        variant = variants_table.get(user_type, str)
        if variant not in WELCOME_VARIANTS:
            raise variants_table.error(user_type, f"{variant!r} is not a welcome variant of the shipped flow "
                                                  f"(one of {', '.join(WELCOME_VARIANTS)})")
        variants[user_type] = variant
    return N8nConfig(
        timeout_seconds=float(n8n.positive("timeout_seconds", (int, float), defaults.timeout_seconds)),
        stalled_reminder_hours=tuple(sorted(hours)),
        stalled_max_age_hours=max_age,
        welcome_variants=MappingProxyType(variants),
    )


def _review(table: _Reader, n8n: _Reader) -> ReviewConfig:
    """`[review] target_hours = { basic = 24, enhanced = 48 }`; a level left out gets 24 h. The old
    `[n8n] review_deadline_hours` still works, as a deprecated alias for every level's target,
    as long as `[review] target_hours` is not set too (two places for one rule are refused)."""
    for key in table.table:
        if key != "target_hours":
            raise table.error(key, "unknown key (expected target_hours)")
    alias = "review_deadline_hours" in n8n.table
    if alias and "target_hours" in table.table:
        raise n8n.error("review_deadline_hours", "is deprecated and [review] target_hours is set too: "
                                                 "remove review_deadline_hours (the review target has one place)")
    hours = n8n.positive("review_deadline_hours", int, DEFAULT_REVIEW_TARGET_HOURS) if alias \
        else DEFAULT_REVIEW_TARGET_HOURS
    targets = {level: hours for level in LEVELS}
    per_level = table.sub("target_hours")
    for level in per_level.table:
        if level not in LEVELS:
            raise per_level.error(level, f"unknown level (expected one of {', '.join(LEVELS)})")
        targets[level] = per_level.positive(level, int, None)
    return ReviewConfig(target_hours=MappingProxyType(targets))


def _privacy(table: _Reader) -> PrivacyConfig:
    for key in table.table:
        if key != "erase_crm_tags":
            raise table.error(key, "unknown key (expected erase_crm_tags)")
    erase_crm_tags = table.table.get("erase_crm_tags", True)
    if not isinstance(erase_crm_tags, bool):
        raise table.error("erase_crm_tags", "must be true or false")
    return PrivacyConfig(erase_crm_tags=erase_crm_tags)


def duration_seconds(text: str) -> int | None:
    """ "90s", "30m", "1h", "1d" → seconds; "0" → 0; anything else → None."""
    if text.strip() == "0":
        return 0
    match = _DURATION.match(text)
    return int(match.group(1)) * _UNIT_SECONDS[match.group(2)] if match else None


def _schedule(schedule: _Reader) -> ScheduleConfig:
    known = {f"{task}_every" for task in UPKEEP_TASKS} | {"lease_ttl", "reconcile_window"}
    for key in schedule.table:
        if key not in known:
            raise schedule.error(key, f"unknown key (expected one of {', '.join(sorted(known))})")

    def seconds(name: str, default: str) -> int:
        value = schedule.get(name, (str, int), default)
        parsed = duration_seconds(str(value)) if value == 0 or isinstance(value, str) else None
        if parsed is None:
            raise schedule.error(name, f'{value!r} is not a duration like "90s", "30m", "1h" or "1d"')
        return parsed

    every = {task: seconds(f"{task}_every", "0") for task in UPKEEP_TASKS}
    lease_ttl = seconds("lease_ttl", "15m")
    if lease_ttl <= 0:
        raise schedule.error("lease_ttl", "must be greater than 0")
    window = seconds("reconcile_window", "72h")
    if window < every["reconcile"]:  # a window shorter than the interval would leave gaps unread
        raise schedule.error("reconcile_window", "must be at least reconcile_every")
    return ScheduleConfig(every_seconds=MappingProxyType({t: s for t, s in every.items() if s > 0}),
                          lease_ttl_seconds=lease_ttl, reconcile_window_seconds=window)


def load(path: str | None) -> Config:
    """Load `path`, or the bundled default when `path` is empty."""
    if not path:
        text = resources.files("bridge").joinpath(BUNDLED).read_text(encoding="utf-8")
        source = f"(bundled) {BUNDLED}"
    else:
        source = path
        try:
            text = Path(path).read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigError(source, "(file)", f"cannot be read: {exc.strerror}") from None
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(source, "(syntax)", str(exc)) from None
    return parse(document, source)
