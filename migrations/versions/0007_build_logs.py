"""build logs: log groups, streams and events

Revision ID: 0007
Revises: 0006
"""

import sqlalchemy as sa
from alembic import op

import forgeline.core.db

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

SequenceId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "log_groups",
        sa.Column("id", SequenceId, autoincrement=True, nullable=False),
        sa.Column("account_id", sa.String(length=12), nullable=False),
        sa.Column("region", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=512), nullable=False),
        sa.Column("log_group_class", sa.String(length=32), nullable=False),
        sa.Column("kms_key_id", sa.String(length=256), nullable=True),
        sa.Column("deletion_protection", sa.Boolean(), nullable=False),
        sa.Column("created_at", forgeline.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("last_stamp_ms", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_log_groups")),
        sa.UniqueConstraint("account_id", "region", "name", name=op.f("uq_log_groups_account_id")),
        sqlite_autoincrement=True,
    )
    op.create_table(
        "log_streams",
        sa.Column("id", SequenceId, autoincrement=True, nullable=False),
        sa.Column("group_id", SequenceId, nullable=False),
        sa.Column("account_id", sa.String(length=12), nullable=False),
        sa.Column("region", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=512), nullable=False),
        sa.Column("created_at", forgeline.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("next_sequence", sa.BigInteger(), nullable=False),
        sa.Column("first_event_ms", sa.BigInteger(), nullable=True),
        sa.Column("last_event_ms", sa.BigInteger(), nullable=True),
        sa.Column("last_ingestion_ms", sa.BigInteger(), nullable=True),
        sa.Column("stored_bytes", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["group_id"],
            ["log_groups.id"],
            name=op.f("fk_log_streams_group_id_log_groups"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_log_streams")),
        sa.UniqueConstraint("group_id", "name", name=op.f("uq_log_streams_group_id")),
        sqlite_autoincrement=True,
    )
    op.create_table(
        "log_events",
        sa.Column("stream_id", SequenceId, nullable=False),
        sa.Column("timestamp_ms", sa.BigInteger(), nullable=False),
        sa.Column("sequence", sa.BigInteger(), nullable=False),
        sa.Column("ingestion_ms", sa.BigInteger(), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["stream_id"],
            ["log_streams.id"],
            name=op.f("fk_log_events_stream_id_log_streams"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint(
            "stream_id", "timestamp_ms", "sequence", name=op.f("pk_log_events")
        ),
        sqlite_with_rowid=False,
    )


def downgrade() -> None:
    op.drop_table("log_events")
    op.drop_table("log_streams")
    op.drop_table("log_groups")
