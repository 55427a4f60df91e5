"""build secrets: SSM parameters and Secrets Manager secrets

Revision ID: 0008
Revises: 0007
"""

from alembic import op
import sqlalchemy as sa

import forgeline.core.db

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "ssm_parameters",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("account_id", sa.String(length=12), nullable=False),
        sa.Column("region", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=2048), nullable=False),
        sa.Column("version", sa.BigInteger(), nullable=False),
        sa.Column("created_at", forgeline.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ssm_parameters")),
        sa.UniqueConstraint(
            "account_id", "region", "name", name=op.f("uq_ssm_parameters_account_id")
        ),
    )
    op.create_table(
        "ssm_parameter_versions",
        sa.Column("parameter_id", sa.String(length=36), nullable=False),
        sa.Column("version", sa.BigInteger(), nullable=False),
        sa.Column("type", sa.String(length=16), nullable=False),
        sa.Column("value_encrypted", sa.Text(), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("allowed_pattern", sa.Text(), nullable=True),
        sa.Column("key_id", sa.String(length=256), nullable=True),
        sa.Column("tier", sa.String(length=32), nullable=False),
        sa.Column("data_type", sa.String(length=128), nullable=False),
        sa.Column("labels", sa.JSON(), nullable=False),
        sa.Column("modified_at", forgeline.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("modified_by", sa.String(length=2048), nullable=False),
        sa.ForeignKeyConstraint(
            ["parameter_id"],
            ["ssm_parameters.id"],
            name=op.f("fk_ssm_parameter_versions_parameter_id_ssm_parameters"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("parameter_id", "version", name=op.f("pk_ssm_parameter_versions")),
    )
    op.create_table(
        "secrets",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("account_id", sa.String(length=12), nullable=False),
        sa.Column("region", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=512), nullable=False),
        sa.Column("arn", sa.String(length=2048), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("kms_key_id", sa.String(length=2048), nullable=True),
        sa.Column("created_at", forgeline.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("changed_at", forgeline.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("accessed_on", forgeline.core.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("deleted_at", forgeline.core.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("deletion_due_at", forgeline.core.db.UTCDateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_secrets")),
        sa.UniqueConstraint("account_id", "region", "name", name=op.f("uq_secrets_account_id")),
    )
    op.create_index("ix_secrets_arn", "secrets", ["arn"])
    op.create_table(
        "secret_versions",
        sa.Column("secret_id", sa.String(length=36), nullable=False),
        sa.Column("version_id", sa.String(length=64), nullable=False),
        sa.Column("value_kind", sa.String(length=8), nullable=False),
        sa.Column("value_encrypted", sa.Text(), nullable=False),
        sa.Column("stages", sa.JSON(), nullable=False),
        sa.Column("created_at", forgeline.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("accessed_on", forgeline.core.db.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["secret_id"],
            ["secrets.id"],
            name=op.f("fk_secret_versions_secret_id_secrets"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("secret_id", "version_id", name=op.f("pk_secret_versions")),
    )


def downgrade() -> None:
    op.drop_table("secret_versions")
    op.drop_index("ix_secrets_arn", table_name="secrets")
    op.drop_table("secrets")
    op.drop_table("ssm_parameter_versions")
    op.drop_table("ssm_parameters")
