"""cloudwatch metric alarms

Revision ID: 0013
Revises: 0012
"""

from alembic import op
import sqlalchemy as sa

import forgeline.core.db

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "metric_alarms",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("account_id", sa.String(length=12), nullable=False),
        sa.Column("region", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("arn", sa.String(length=1600), nullable=False),
        sa.Column("document", sa.JSON(), nullable=False),
        sa.Column("state_value", sa.String(length=32), nullable=False),
        sa.Column("state_reason", sa.Text(), nullable=False),
        sa.Column("state_reason_data", sa.Text(), nullable=True),
        sa.Column("state_updated_at", forgeline.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column(
            "state_transitioned_at", forgeline.core.db.UTCDateTime(timezone=True), nullable=False
        ),
        sa.Column(
            "configuration_updated_at",
            forgeline.core.db.UTCDateTime(timezone=True),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_metric_alarms")),
        sa.UniqueConstraint(
            "account_id", "region", "name", name=op.f("uq_metric_alarms_account_id")
        ),
    )


def downgrade() -> None:
    op.drop_table("metric_alarms")
