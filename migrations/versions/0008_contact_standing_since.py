"""A person's standing after a consent withdrawal: when they consented again (only inquiries
created from then on speak for them, bridge/kyc/standing.py).

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-07
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from bridge.store.models import UTCDateTime

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("kyc_contacts") as batch:
        batch.add_column(sa.Column("standing_since", UTCDateTime(), nullable=True))


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        # Batch mode would copy kyc_contacts, which the other tables' foreign keys refuse; SQLite
        # (3.35 and later) drops a column in place.
        op.execute("ALTER TABLE kyc_contacts DROP COLUMN standing_since")
    else:
        op.drop_column("kyc_contacts", "standing_since")
