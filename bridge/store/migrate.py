"""Run the Alembic migrations in migrations/ (used by `kyc-bridge db upgrade` and the demo)."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config as AlembicConfig

REPO_ROOT = Path(__file__).resolve().parents[2]


def alembic_config(database_url: str) -> AlembicConfig:
    ini = REPO_ROOT / "alembic.ini"
    if not ini.exists():
        raise FileNotFoundError(f"{ini} not found: run kyc-bridge from a checkout (pip install -e .)")
    cfg = AlembicConfig(str(ini))
    cfg.attributes["database_url"] = database_url
    return cfg


def upgrade(database_url: str, revision: str = "head") -> None:
    command.upgrade(alembic_config(database_url), revision)


def downgrade(database_url: str, revision: str) -> None:
    command.downgrade(alembic_config(database_url), revision)


def current_heads(database_url: str) -> list[str]:
    from alembic.script import ScriptDirectory

    return list(ScriptDirectory.from_config(alembic_config(database_url)).get_heads())
