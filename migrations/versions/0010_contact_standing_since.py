"""A person's standing after a consent withdrawal: when they consented again (only inquiries
created from then on speak for them, bridge/kyc/standing.py).

Revision ID: 0010
Revises: 0007
Create Date: 2026-12-10
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from bridge.store.models import UTCDateTime

revision = "0010"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("kyc_contacts") as batch:
        batch.add_column(sa.Column("standing_since", UTCDateTime(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("kyc_contacts") as batch:
        batch.drop_column("standing_since")
