"""pull requests

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

import forgeline.core.db

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "approval_rule_templates",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("account_id", sa.String(length=12), nullable=False),
        sa.Column("region", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("content", sa.Text(), nullable=False),
        sa.Column("content_sha256", sa.String(length=64), nullable=False),
        sa.Column("last_modified_user", sa.String(length=2048), nullable=False),
        sa.Column("created_at", forgeline.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", forgeline.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_approval_rule_templates")),
        sa.UniqueConstraint(
            "account_id", "region", "name", name=op.f("uq_approval_rule_templates_account_id")
        ),
    )
    op.create_table(
        "pull_request_counters",
        sa.Column("account_id", sa.String(length=12), nullable=False),
        sa.Column("region", sa.String(length=32), nullable=False),
        sa.Column("last_id", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("account_id", "region", name=op.f("pk_pull_request_counters")),
    )
    op.create_table(
        "approval_rule_template_associations",
        sa.Column("template_id", sa.String(length=36), nullable=False),
        sa.Column("repository_id", sa.String(length=36), nullable=False),
        sa.Column("created_at", forgeline.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["repository_id"],
            ["repositories.id"],
            name=op.f("fk_approval_rule_template_associations_repository_id_repositories"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["template_id"],
            ["approval_rule_templates.id"],
            name=op.f("fk_approval_rule_template_associations_template_id_approval_rule_templates"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint(
            "template_id", "repository_id", name=op.f("pk_approval_rule_template_associations")
        ),
    )
    with op.batch_alter_table("approval_rule_template_associations", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_approval_rule_template_associations_repository_id"),
            ["repository_id"],
            unique=False,
        )

    op.create_table(
        "pull_requests",
        sa.Column("key", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("account_id", sa.String(length=12), nullable=False),
        sa.Column("region", sa.String(length=32), nullable=False),
        sa.Column("pull_request_id", sa.String(length=20), nullable=False),
        sa.Column("repository_id", sa.String(length=36), nullable=False),
        sa.Column("title", sa.String(length=150), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("author_arn", sa.String(length=2048), nullable=False),
        sa.Column("client_request_token", sa.String(length=256), nullable=True),
        sa.Column("source_reference", sa.String(length=512), nullable=False),
        sa.Column("destination_reference", sa.String(length=512), nullable=False),
        sa.Column("source_commit", sa.String(length=40), nullable=False),
        sa.Column("destination_commit", sa.String(length=40), nullable=False),
        sa.Column("merge_base", sa.String(length=40), nullable=True),
        sa.Column("revision_id", sa.String(length=64), nullable=False),
        sa.Column("is_merged", sa.Boolean(), nullable=False),
        sa.Column("merged_by", sa.String(length=2048), nullable=True),
        sa.Column("merge_commit_id", sa.String(length=40), nullable=True),
        sa.Column("merge_option", sa.String(length=32), nullable=True),
        sa.Column("created_at", forgeline.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("last_activity_at", forgeline.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["repository_id"],
            ["repositories.id"],
            name=op.f("fk_pull_requests_repository_id_repositories"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_pull_requests")),
        sa.UniqueConstraint(
            "account_id", "region", "pull_request_id", name=op.f("uq_pull_requests_account_id")
        ),
    )
    with op.batch_alter_table("pull_requests", schema=None) as batch_op:
        batch_op.create_index(
            "ix_pull_requests_repository_status", ["repository_id", "status"], unique=False
        )

    op.create_table(
        "pull_request_approval_rules",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("pull_request_key", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("content", sa.Text(), nullable=False),
        sa.Column("content_sha256", sa.String(length=64), nullable=False),
        sa.Column("last_modified_user", sa.String(length=2048), nullable=False),
        sa.Column("template_id", sa.String(length=36), nullable=True),
        sa.Column("template_name", sa.String(length=100), nullable=True),
        sa.Column("created_at", forgeline.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", forgeline.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["pull_request_key"],
            ["pull_requests.key"],
            name=op.f("fk_pull_request_approval_rules_pull_request_key_pull_requests"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_pull_request_approval_rules")),
        sa.UniqueConstraint(
            "pull_request_key",
            "name",
            name=op.f("uq_pull_request_approval_rules_pull_request_key"),
        ),
    )
    op.create_table(
        "pull_request_approvals",
        sa.Column("pull_request_key", sa.Integer(), nullable=False),
        sa.Column("revision_id", sa.String(length=64), nullable=False),
        sa.Column("user_arn", sa.String(length=1024), nullable=False),
        sa.Column("created_at", forgeline.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["pull_request_key"],
            ["pull_requests.key"],
            name=op.f("fk_pull_request_approvals_pull_request_key_pull_requests"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint(
            "pull_request_key", "revision_id", "user_arn", name=op.f("pk_pull_request_approvals")
        ),
    )
    op.create_table(
        "pull_request_events",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("pull_request_key", sa.Integer(), nullable=False),
        sa.Column("event_type", sa.String(length=64), nullable=False),
        sa.Column("actor_arn", sa.String(length=2048), nullable=True),
        sa.Column("event_date", forgeline.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("detail", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(
            ["pull_request_key"],
            ["pull_requests.key"],
            name=op.f("fk_pull_request_events_pull_request_key_pull_requests"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_pull_request_events")),
    )
    with op.batch_alter_table("pull_request_events", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_pull_request_events_pull_request_key"),
            ["pull_request_key"],
            unique=False,
        )

    op.create_table(
        "pull_request_revisions",
        sa.Column("pull_request_key", sa.Integer(), nullable=False),
        sa.Column("revision_id", sa.String(length=64), nullable=False),
        sa.Column("source_commit", sa.String(length=40), nullable=False),
        sa.Column("destination_commit", sa.String(length=40), nullable=False),
        sa.Column("overridden_by", sa.String(length=2048), nullable=True),
        sa.Column("created_at", forgeline.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["pull_request_key"],
            ["pull_requests.key"],
            name=op.f("fk_pull_request_revisions_pull_request_key_pull_requests"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint(
            "pull_request_key", "revision_id", name=op.f("pk_pull_request_revisions")
        ),
    )


def downgrade() -> None:
    op.drop_table("pull_request_revisions")
    with op.batch_alter_table("pull_request_events", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_pull_request_events_pull_request_key"))
    op.drop_table("pull_request_events")
    op.drop_table("pull_request_approvals")
    op.drop_table("pull_request_approval_rules")
    with op.batch_alter_table("pull_requests", schema=None) as batch_op:
        batch_op.drop_index("ix_pull_requests_repository_status")
    op.drop_table("pull_requests")
    with op.batch_alter_table("approval_rule_template_associations", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_approval_rule_template_associations_repository_id"))
    op.drop_table("approval_rule_template_associations")
    op.drop_table("pull_request_counters")
    op.drop_table("approval_rule_templates")
