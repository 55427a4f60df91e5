"""git credentials

Revision ID: 0002
Revises: 0001
"""

from alembic import op  # noqa: F401
import sqlalchemy as sa  # noqa: F401

import forgeline.core.db  # noqa: F401

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "git_credentials",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("account_id", sa.String(length=12), nullable=False),
        sa.Column("user_name", sa.String(length=64), nullable=False),
        sa.Column("service_user_name", sa.String(length=200), nullable=False),
        sa.Column("password_hash", sa.String(length=256), nullable=False),
        sa.Column("status", sa.String(length=8), nullable=False),
        sa.Column("created_at", forgeline.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "status IN ('Active', 'Inactive')", name=op.f("ck_git_credentials_status")
        ),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["accounts.id"],
            name=op.f("fk_git_credentials_account_id_accounts"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_git_credentials")),
        sa.UniqueConstraint(
            "service_user_name", name=op.f("uq_git_credentials_service_user_name")
        ),
    )
    with op.batch_alter_table("git_credentials", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_git_credentials_account_id"), ["account_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("git_credentials", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_git_credentials_account_id"))
    op.drop_table("git_credentials")
