"""Alembic environment: the URL comes from the caller (kyc-bridge db upgrade) or BRIDGE_DATABASE_URL."""

from __future__ import annotations

import os

from alembic import context

from bridge.store.engine import make_engine, normalize_url
from bridge.store.models import Base

config = context.config
target_metadata = Base.metadata


def database_url() -> str:
    return (config.attributes.get("database_url") or os.environ.get("BRIDGE_DATABASE_URL")
            or "sqlite:///kyc-bridge.db")


def run_migrations_offline() -> None:
    context.configure(url=normalize_url(database_url()), target_metadata=target_metadata,
                      literal_binds=True, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        context.configure(connection=connection, target_metadata=target_metadata, render_as_batch=True)
        with context.begin_transaction():
            context.run_migrations()
        return
    engine = make_engine(database_url())
    with engine.connect() as connection:
        context.configure(connection=connection, target_metadata=target_metadata, render_as_batch=True)
        with context.begin_transaction():
            context.run_migrations()
    engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
