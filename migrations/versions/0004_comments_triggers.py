"""comments triggers

Revision ID: 0004
Revises: 0003
"""

from alembic import op
import sqlalchemy as sa

import forgeline.core.db

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "comments",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("repository_id", sa.String(length=36), nullable=False),
        sa.Column("account_id", sa.String(length=12), nullable=False),
        sa.Column("region", sa.String(length=32), nullable=False),
        sa.Column("pull_request_id", sa.String(length=64), nullable=True),
        sa.Column("before_commit_id", sa.String(length=40), nullable=True),
        sa.Column("after_commit_id", sa.String(length=40), nullable=False),
        sa.Column("before_blob_id", sa.String(length=40), nullable=True),
        sa.Column("after_blob_id", sa.String(length=40), nullable=True),
        sa.Column("file_path", sa.Text(), nullable=True),
        sa.Column("file_position", sa.BigInteger(), nullable=True),
        sa.Column("relative_file_version", sa.String(length=6), nullable=True),
        sa.Column("in_reply_to", sa.String(length=36), nullable=True),
        sa.Column("content", sa.Text(), nullable=True),
        sa.Column("deleted", sa.Boolean(), nullable=False),
        sa.Column("author_arn", sa.String(length=2048), nullable=False),
        sa.Column("client_request_token", sa.String(length=256), nullable=True),
        sa.Column("created_at", forgeline.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", forgeline.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["repository_id"],
            ["repositories.id"],
            name=op.f("fk_comments_repository_id_repositories"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_comments")),
    )
    op.create_index(
        "ix_comments_repository_after", "comments", ["repository_id", "after_commit_id"]
    )
    op.create_index(
        "ix_comments_pull_request", "comments", ["account_id", "region", "pull_request_id"]
    )
    op.create_table(
        "comment_reactions",
        sa.Column("comment_id", sa.String(length=36), nullable=False),
        sa.Column("user_arn", sa.String(length=2048), nullable=False),
        sa.Column("reaction", sa.String(length=32), nullable=False),
        sa.Column("created_at", forgeline.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", forgeline.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["comment_id"],
            ["comments.id"],
            name=op.f("fk_comment_reactions_comment_id_comments"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("comment_id", "user_arn", name=op.f("pk_comment_reactions")),
    )
    op.create_table(
        "repository_trigger_configs",
        sa.Column("repository_id", sa.String(length=36), nullable=False),
        sa.Column("configuration_id", sa.String(length=36), nullable=False),
        sa.Column("triggers", sa.JSON(), nullable=False),
        sa.Column("webhook_secret_encrypted", sa.Text(), nullable=False),
        sa.Column("updated_at", forgeline.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["repository_id"],
            ["repositories.id"],
            name=op.f("fk_repository_trigger_configs_repository_id_repositories"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("repository_id", name=op.f("pk_repository_trigger_configs")),
    )


def downgrade() -> None:
    op.drop_table("repository_trigger_configs")
    op.drop_table("comment_reactions")
    op.drop_index("ix_comments_pull_request", table_name="comments")
    op.drop_index("ix_comments_repository_after", table_name="comments")
    op.drop_table("comments")
