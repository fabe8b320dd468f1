"""Onboarding: contact reference ids, consents, verification sessions, signed links.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-21
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from bridge.store.models import UTCDateTime

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    with op.batch_alter_table("kyc_contacts") as batch:
        batch.add_column(sa.Column("reference_id", sa.String(64), nullable=True))
        batch.add_column(sa.Column("wp_user_id", sa.BigInteger(), nullable=True))
        batch.add_column(sa.Column("consent_withdrawn_at", UTCDateTime(), nullable=True))
        batch.create_unique_constraint("uq_kyc_contacts_reference_id", ["reference_id"])

    op.create_table(
        "kyc_consents",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("contact_id", BigId, sa.ForeignKey("kyc_contacts.id", name="fk_kyc_consents_contact"), nullable=False),
        sa.Column("user_type", sa.String(32), nullable=False),
        sa.Column("share_with_persona", sa.Boolean(), nullable=False),
        sa.Column("persona_retention", sa.Boolean(), nullable=False),
        sa.Column("gdpr_processing", sa.Boolean(), nullable=False),
        sa.Column("text_version", sa.String(64), nullable=False),
        sa.Column("text_sha256", sa.String(64), nullable=False),
        sa.Column("ip_hash", sa.String(64), nullable=True),
        sa.Column("user_agent", sa.String(255), nullable=True),
        sa.Column("source", sa.String(16), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("withdrawn_at", UTCDateTime(), nullable=True),
    )
    op.create_index("ix_kyc_consents_contact_id", "kyc_consents", ["contact_id"])

    op.create_table(
        "kyc_sessions",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("contact_id", BigId, sa.ForeignKey("kyc_contacts.id", name="fk_kyc_sessions_contact"), nullable=False),
        sa.Column("consent_id", BigId, sa.ForeignKey("kyc_consents.id", name="fk_kyc_sessions_consent"), nullable=False),
        sa.Column("user_type", sa.String(32), nullable=False),
        sa.Column("inquiry_id", sa.String(64), nullable=True),
        sa.Column("resumed", sa.Boolean(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
    )
    op.create_index("ix_kyc_sessions_contact_id", "kyc_sessions", ["contact_id"])

    op.create_table(
        "kyc_links",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("link_id", sa.String(32), nullable=False),
        sa.Column("contact_id", BigId, sa.ForeignKey("kyc_contacts.id", name="fk_kyc_links_contact"), nullable=False),
        sa.Column("user_type", sa.String(32), nullable=False),
        sa.Column("expires_at", UTCDateTime(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.UniqueConstraint("link_id", name="uq_kyc_links_link_id"),
    )
    op.create_index("ix_kyc_links_contact_id", "kyc_links", ["contact_id"])


def downgrade() -> None:
    for table in ("kyc_links", "kyc_sessions", "kyc_consents"):
        op.drop_table(table)
    with op.batch_alter_table("kyc_contacts") as batch:
        batch.drop_constraint("uq_kyc_contacts_reference_id", type_="unique")
        batch.drop_column("consent_withdrawn_at")
        batch.drop_column("wp_user_id")
        batch.drop_column("reference_id")
