"""Alembic migrations match the models and run up and down on every backend."""

import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from bridge.store import migrate
from bridge.store.engine import make_engine
from bridge.store.models import Base


def test_models_and_migrations_agree(database_url):
    engine = make_engine(database_url)
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    engine.dispose()
    assert diff == [], diff


def test_upgrade_head_and_audit_genesis(database_url):
    engine = make_engine(database_url)
    with engine.connect() as conn:
        version = conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalar()
        head = conn.execute(sa.text("SELECT seq, hash FROM kyc_audit_head WHERE id = 1")).one()
    engine.dispose()
    assert [version] == migrate.current_heads(database_url)
    assert tuple(head) == (0, "0" * 64)


def test_downgrade_to_base_and_back_on_sqlite(tmp_path):
    url = f"sqlite:///{tmp_path / 'm.db'}"
    migrate.upgrade(url)
    migrate.downgrade(url, "base")
    engine = make_engine(url)
    assert not [t for t in sa.inspect(engine).get_table_names() if t.startswith("kyc_")]
    engine.dispose()
    migrate.upgrade(url)
    engine = make_engine(url)
    assert "kyc_inquiries" in sa.inspect(engine).get_table_names()
    engine.dispose()
