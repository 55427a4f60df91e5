"""codepipeline webhooks

Revision ID: 0017
Revises: 0016
"""

from alembic import op
import sqlalchemy as sa

import forgeline.core.db

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "pipeline_webhooks",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("account_id", sa.String(length=12), nullable=False),
        sa.Column("region", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("token", sa.String(length=64), nullable=False),
        sa.Column("definition", sa.JSON(), nullable=False),
        sa.Column("created_at", forgeline.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("last_triggered", forgeline.core.db.UTCDateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_pipeline_webhooks")),
        sa.UniqueConstraint(
            "account_id", "region", "name", name=op.f("uq_pipeline_webhooks_account_id")
        ),
        sa.UniqueConstraint("token", name=op.f("uq_pipeline_webhooks_token")),
    )


def downgrade() -> None:
    op.drop_table("pipeline_webhooks")
