"""What every entry point (web app, worker, CLI) shares: settings, config, store, sinks."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from bridge import config as config_module
from bridge.config import Config
from bridge.settings import Settings
from bridge.store.engine import make_engine, make_sessionmaker

log = logging.getLogger(__name__)


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


@dataclass
class Runtime:
    settings: Settings
    config: Config
    engine: Engine
    sessions: sessionmaker[Session]
    clock: Callable[[], datetime] = field(default=utcnow)
    _committer: object = field(default=None, repr=False)

    @classmethod
    def build(cls, settings: Settings, config: Config) -> Runtime:
        engine = make_engine(settings.database_url)
        return cls(settings, config, engine, make_sessionmaker(engine))

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> Runtime:
        """Settings from the environment and the TOML config they name; raises SettingsError or
        ConfigError naming the variable, or the file and key."""
        settings = Settings.from_env(environ)
        return cls.build(settings, config_module.load(settings.config_file))

    def committer(self):  # type: ignore[no-untyped-def]
        """How this process stores webhooks: through gunicorn's intake writer when there is one
        (bridge.intake.writer), else its own group committer (bridge.intake.group_commit)."""
        if self._committer is None:
            from bridge.intake.group_commit import GroupCommitter

            self._committer = GroupCommitter(self)
            if self.settings.intake_socket:
                from bridge.intake.writer import IntakeClient

                self._committer = IntakeClient(self.settings.intake_socket, fallback=self._committer)
        return self._committer

    def upkeep_tasks(self):  # type: ignore[no-untyped-def]
        """Every task `[schedule]` can name, by name: the outbox's (remind, renew, retention,
        review_overdue) and the intake's (reconcile). Wired here so that neither path imports the
        other's."""
        from bridge.intake import reconcile
        from bridge.outbox import upkeep

        return {**upkeep.TASKS, "reconcile": reconcile.scheduled}

    def erase_crm_tags(self) -> str:
        """What an erasure does to the person's FluentCRM tags (bridge.consent.privacy.erase):
        "remove" with [privacy] erase_crm_tags on and FluentCRM configured, else why not."""
        if not self.config.privacy.erase_crm_tags:
            return "off"
        return "remove" if self.settings.fluentcrm_enabled else "not configured"

    def crm_client(self):  # type: ignore[no-untyped-def]
        """A FluentCRM client, or None when FluentCRM is not configured (sync runs as a dry run)."""
        if not self.settings.fluentcrm_enabled:
            return None
        from bridge.sinks.fluentcrm import FluentCRMClient

        return FluentCRMClient(
            self.settings.fluentcrm_base_url or "", self.settings.fluentcrm_username or "",
            self.settings.fluentcrm_app_password or "", timeout=self.config.crm_timeout_seconds,
            new_contact_status=self.config.new_contact_status,
        )

    def n8n_client(self):  # type: ignore[no-untyped-def]
        """An n8n event sender, or None without N8N_WEBHOOK_URL (events are then built, not sent)."""
        if not self.settings.n8n_enabled:
            return None
        from bridge.sinks.n8n import N8nClient

        return N8nClient(self.settings.n8n_webhook_url or "", self.settings.n8n_token,
                         self.settings.n8n_signing_secret or "", timeout=self.config.n8n.timeout_seconds)

    def persona_client(self, *, interactive: bool = False):  # type: ignore[no-untyped-def]
        """A Persona API client, or None without PERSONA_API_KEY (the hosted flow then needs no API call).
        `interactive`: a person is waiting on the answer, so fail fast instead of retrying for long."""
        if not self.settings.persona_api_key:
            return None
        from bridge.sinks.persona_api import PersonaClient

        if interactive:
            return PersonaClient(self.settings.persona_api_key, base_url=self.settings.persona_api_base,
                                 timeout=5.0, max_retries=1)
        return PersonaClient(self.settings.persona_api_key, base_url=self.settings.persona_api_base)

    def describe_outputs(self) -> list[str]:
        """Start-up lines saying which outputs are on (no secrets)."""
        lines = []
        lines.append("FluentCRM sync: " + ("on" if self.settings.fluentcrm_enabled
                                            else "off (FLUENTCRM_BASE_URL unset: tag changes are computed, not sent)"))
        lines.append("n8n events: " + ("on" if self.settings.n8n_enabled
                                       else "off (N8N_WEBHOOK_URL unset: events are built, not sent)"))
        return lines
