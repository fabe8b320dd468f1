"""Secrets and wiring, read once from the environment (structured settings live in the TOML config)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

DEFAULT_DATABASE_URL = "sqlite:///kyc-bridge.db"
DEFAULT_PERSONA_API_BASE = "https://api.withpersona.com/api/v1"


class SettingsError(ValueError):
    pass


@dataclass(frozen=True)
class Settings:
    database_url: str
    config_file: str | None
    secret_key: str
    admin_token: str
    persona_webhook_secrets: tuple[str, ...]
    persona_api_key: str | None
    persona_api_base: str
    persona_environment_id: str | None
    fluentcrm_base_url: str | None
    fluentcrm_username: str | None
    fluentcrm_app_password: str | None
    n8n_webhook_url: str | None
    n8n_token: str | None
    n8n_signing_secret: str | None
    # Set by bridge/app/gunicorn_conf.py for its web processes, not by operators (bridge/intake/writer.py).
    intake_socket: str | None = None
    # BRIDGE_READ_TOKEN: a second bearer token for n8n and the site's front end: status lookups,
    # links and sessions only; every other route answers 403 to it (bridge/web/common.py).
    read_token: str | None = None

    @property
    def fluentcrm_enabled(self) -> bool:
        return bool(self.fluentcrm_base_url)

    @property
    def n8n_enabled(self) -> bool:
        return bool(self.n8n_webhook_url)

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> Settings:
        def get(name: str) -> str | None:
            value = environ.get(name, "").strip()
            return value or None

        def required(name: str, why: str) -> str:
            value = get(name)
            if value is None:
                raise SettingsError(f"environment variable {name} is not set ({why})")
            return value

        secrets = tuple(s.strip() for s in (get("PERSONA_WEBHOOK_SECRETS") or "").split(",") if s.strip())
        if not secrets:
            raise SettingsError(
                "environment variable PERSONA_WEBHOOK_SECRETS is not set "
                "(comma-separated wbhsec_… secrets of your Persona webhook)"
            )
        crm = {n: get(n) for n in ("FLUENTCRM_BASE_URL", "FLUENTCRM_USERNAME", "FLUENTCRM_APP_PASSWORD")}
        if crm["FLUENTCRM_BASE_URL"]:
            for name, value in crm.items():
                if not value:
                    raise SettingsError(f"environment variable {name} is not set (FLUENTCRM_BASE_URL is)")
        n8n_url = get("N8N_WEBHOOK_URL")
        for name in ("N8N_TOKEN", "N8N_SIGNING_SECRET"):
            if n8n_url and not get(name):
                raise SettingsError(f"environment variable {name} is not set (N8N_WEBHOOK_URL is)")
        return cls(
            database_url=get("BRIDGE_DATABASE_URL") or DEFAULT_DATABASE_URL,
            config_file=get("BRIDGE_CONFIG_FILE"),
            secret_key=required("BRIDGE_SECRET_KEY", "signs links and tokens"),
            admin_token=required("BRIDGE_ADMIN_TOKEN", "bearer token for /api/v1"),
            persona_webhook_secrets=secrets,
            persona_api_key=get("PERSONA_API_KEY"),
            persona_api_base=(get("PERSONA_API_BASE") or DEFAULT_PERSONA_API_BASE).rstrip("/"),
            persona_environment_id=get("PERSONA_ENVIRONMENT_ID"),
            fluentcrm_base_url=crm["FLUENTCRM_BASE_URL"],
            fluentcrm_username=crm["FLUENTCRM_USERNAME"],
            fluentcrm_app_password=crm["FLUENTCRM_APP_PASSWORD"],
            n8n_webhook_url=n8n_url,
            n8n_token=get("N8N_TOKEN"),
            n8n_signing_secret=get("N8N_SIGNING_SECRET"),
            intake_socket=get("BRIDGE_INTAKE_SOCKET"),
            read_token=_read_token(get("BRIDGE_READ_TOKEN"), get("BRIDGE_ADMIN_TOKEN")),
        )


def _read_token(read: str | None, admin: str | None) -> str | None:
    if read is not None and read == admin:
        raise SettingsError("BRIDGE_READ_TOKEN must differ from BRIDGE_ADMIN_TOKEN (it is the token with fewer rights)")
    return read
