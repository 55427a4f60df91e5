"""build projects, source credentials, resource policies

Revision ID: 0005
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op

import forgeline.core.db

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "build_projects",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("account_id", sa.String(length=12), nullable=False),
        sa.Column("region", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("arn", sa.String(length=2048), nullable=False),
        sa.Column("document", sa.JSON(), nullable=False),
        sa.Column("build_counter", sa.Integer(), nullable=False),
        sa.Column("created_at", forgeline.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", forgeline.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_build_projects")),
        sa.UniqueConstraint(
            "account_id", "region", "name", name=op.f("uq_build_projects_account_id")
        ),
    )
    op.create_index(
        op.f("ix_build_projects_account_id"), "build_projects", ["account_id"], unique=False
    )
    op.create_table(
        "build_source_credentials",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("account_id", sa.String(length=12), nullable=False),
        sa.Column("region", sa.String(length=32), nullable=False),
        sa.Column("arn", sa.String(length=2048), nullable=False),
        sa.Column("server_type", sa.String(length=32), nullable=False),
        sa.Column("auth_type", sa.String(length=32), nullable=False),
        sa.Column("username", sa.String(length=256), nullable=True),
        sa.Column("token_encrypted", sa.Text(), nullable=False),
        sa.Column("created_at", forgeline.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", forgeline.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_build_source_credentials")),
        sa.UniqueConstraint(
            "account_id",
            "region",
            "server_type",
            name=op.f("uq_build_source_credentials_account_id"),
        ),
    )
    op.create_index(
        op.f("ix_build_source_credentials_account_id"),
        "build_source_credentials",
        ["account_id"],
        unique=False,
    )
    op.create_table(
        "build_resource_policies",
        sa.Column("resource_arn", sa.String(length=2048), nullable=False),
        sa.Column("account_id", sa.String(length=12), nullable=False),
        sa.Column("region", sa.String(length=32), nullable=False),
        sa.Column("policy", sa.Text(), nullable=False),
        sa.Column("updated_at", forgeline.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("resource_arn", name=op.f("pk_build_resource_policies")),
    )
    op.create_index(
        op.f("ix_build_resource_policies_account_id"),
        "build_resource_policies",
        ["account_id"],
        unique=False,
    )


def downgrade() -> None:
    op.drop_index(
        op.f("ix_build_resource_policies_account_id"), table_name="build_resource_policies"
    )
    op.drop_table("build_resource_policies")
    op.drop_index(
        op.f("ix_build_source_credentials_account_id"), table_name="build_source_credentials"
    )
    op.drop_table("build_source_credentials")
    op.drop_index(op.f("ix_build_projects_account_id"), table_name="build_projects")
    op.drop_table("build_projects")
