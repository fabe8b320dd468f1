"""Index jobs by (inquiry, kind, state): intake asks on every status change whether an inquiry's
CRM sync is still waiting, and with the single-column index SQLite's planner chose the due-jobs
index instead, scanning every queued job (slow exactly when a backlog has built up).

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-21
"""
from __future__ import annotations

from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_kyc_jobs_inquiry_work", "kyc_jobs", ["inquiry_id", "kind", "state"])
    op.drop_index("ix_kyc_jobs_inquiry_id", table_name="kyc_jobs")  # a prefix of the new one


def downgrade() -> None:
    op.create_index("ix_kyc_jobs_inquiry_id", "kyc_jobs", ["inquiry_id"])
    op.drop_index("ix_kyc_jobs_inquiry_work", table_name="kyc_jobs")
