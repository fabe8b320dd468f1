"""One write at a time per person: jobs that write a person's FluentCRM contact carry the person's
key (`contact:<id>`, or `inquiry:<id>` while the inquiry has no contact), and the key's lease lives
in kyc_contact_leases: a worker takes it with a conditional UPDATE when it claims such a job, so at
most one job per key runs at a time on every backend (see bridge/store/queue.py).

Revision ID: 0006
Revises: 0004 (the lead re-chains onto 0005 at merge)
Create Date: 2026-12-06
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def _utc_datetime() -> sa.types.TypeEngine:
    from sqlalchemy.dialects import mysql

    return sa.DateTime().with_variant(mysql.DATETIME(fsp=6), "mysql", "mariadb")


def upgrade() -> None:
    op.add_column("kyc_jobs", sa.Column("contact_key", sa.String(80), nullable=True))
    op.create_index("ix_kyc_jobs_contact_key", "kyc_jobs", ["contact_key", "state"])
    op.create_table(
        "kyc_contact_leases",
        sa.Column("contact_key", sa.String(80), primary_key=True),
        sa.Column("job_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True),
        sa.Column("lease_token", sa.String(32), nullable=True),
        sa.Column("lease_until", _utc_datetime(), nullable=True),
    )
    # Unfinished CRM jobs queued before this revision get their person's key, so they too run one at a time.
    op.execute(
        "UPDATE kyc_jobs SET contact_key = (SELECT 'contact:' || CAST(i.contact_id AS VARCHAR(20)) FROM kyc_inquiries i "
        "WHERE i.inquiry_id = kyc_jobs.inquiry_id AND i.contact_id IS NOT NULL) "
        "WHERE kind = 'crm.sync' AND state IN ('queued', 'running')"
        if op.get_bind().dialect.name not in ("mysql", "mariadb") else
        "UPDATE kyc_jobs j JOIN kyc_inquiries i ON i.inquiry_id = j.inquiry_id "
        "SET j.contact_key = CONCAT('contact:', i.contact_id) "
        "WHERE j.kind = 'crm.sync' AND j.state IN ('queued', 'running') AND i.contact_id IS NOT NULL"
    )


def downgrade() -> None:
    op.drop_table("kyc_contact_leases")
    op.drop_index("ix_kyc_jobs_contact_key", table_name="kyc_jobs")
    op.drop_column("kyc_jobs", "contact_key")
