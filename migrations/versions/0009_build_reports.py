"""build reports: report groups, reports, test cases, code coverage

Revision ID: 0009
Revises: 0008
"""

from alembic import op
import sqlalchemy as sa

import forgeline.core.db

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "build_report_groups",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("account_id", sa.String(length=12), nullable=False),
        sa.Column("region", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=128), nullable=False),
        sa.Column("arn", sa.String(length=2048), nullable=False),
        sa.Column("type", sa.String(length=16), nullable=False),
        sa.Column("export_config", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("created_at", forgeline.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", forgeline.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_build_report_groups")),
        sa.UniqueConstraint(
            "account_id", "region", "name", name=op.f("uq_build_report_groups_account_id")
        ),
    )
    op.create_index(
        op.f("ix_build_report_groups_account_id"),
        "build_report_groups",
        ["account_id"],
        unique=False,
    )
    op.create_table(
        "build_reports",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("account_id", sa.String(length=12), nullable=False),
        sa.Column("region", sa.String(length=32), nullable=False),
        sa.Column("arn", sa.String(length=2048), nullable=False),
        sa.Column("report_group_id", sa.String(length=36), nullable=False),
        sa.Column("report_group_arn", sa.String(length=2048), nullable=False),
        sa.Column("name", sa.String(length=128), nullable=False),
        sa.Column("type", sa.String(length=16), nullable=False),
        sa.Column("execution_id", sa.String(length=2048), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("status_message", sa.Text(), nullable=True),
        sa.Column("export_config", sa.JSON(), nullable=False),
        sa.Column("truncated", sa.Boolean(), nullable=False),
        sa.Column("test_total", sa.Integer(), nullable=True),
        sa.Column("test_status_counts", sa.JSON(), nullable=True),
        sa.Column("test_duration_ns", sa.BigInteger(), nullable=True),
        sa.Column("line_coverage_percentage", sa.Float(), nullable=True),
        sa.Column("lines_covered", sa.Integer(), nullable=True),
        sa.Column("lines_missed", sa.Integer(), nullable=True),
        sa.Column("branch_coverage_percentage", sa.Float(), nullable=True),
        sa.Column("branches_covered", sa.Integer(), nullable=True),
        sa.Column("branches_missed", sa.Integer(), nullable=True),
        sa.Column("created_at", forgeline.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("expires_at", forgeline.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["report_group_id"],
            ["build_report_groups.id"],
            name=op.f("fk_build_reports_report_group_id_build_report_groups"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_build_reports")),
        sa.UniqueConstraint("arn", name=op.f("uq_build_reports_arn")),
    )
    op.create_index(
        "ix_build_reports_group_created", "build_reports", ["report_group_id", "created_at"]
    )
    op.create_index(
        "ix_build_reports_account_created",
        "build_reports",
        ["account_id", "region", "created_at"],
    )
    op.create_table(
        "build_report_test_cases",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("report_id", sa.String(length=36), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("test_raw_data_path", sa.Text(), nullable=False),
        sa.Column("prefix", sa.Text(), nullable=True),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("duration_ns", sa.BigInteger(), nullable=False),
        sa.Column("message", sa.Text(), nullable=True),
        sa.Column("suite_name", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["report_id"],
            ["build_reports.id"],
            name=op.f("fk_build_report_test_cases_report_id_build_reports"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_build_report_test_cases")),
    )
    op.create_index(
        "ix_build_report_test_cases_report_seq", "build_report_test_cases", ["report_id", "seq"]
    )
    op.create_table(
        "build_report_code_coverages",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("report_id", sa.String(length=36), nullable=False),
        sa.Column("file_path", sa.Text(), nullable=False),
        sa.Column("line_coverage_percentage", sa.Float(), nullable=False),
        sa.Column("lines_covered", sa.Integer(), nullable=False),
        sa.Column("lines_missed", sa.Integer(), nullable=False),
        sa.Column("branch_coverage_percentage", sa.Float(), nullable=False),
        sa.Column("branches_covered", sa.Integer(), nullable=False),
        sa.Column("branches_missed", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["report_id"],
            ["build_reports.id"],
            name=op.f("fk_build_report_code_coverages_report_id_build_reports"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_build_report_code_coverages")),
    )
    op.create_index(
        "ix_build_report_code_coverages_report", "build_report_code_coverages", ["report_id"]
    )


def downgrade() -> None:
    op.drop_index(
        "ix_build_report_code_coverages_report", table_name="build_report_code_coverages"
    )
    op.drop_table("build_report_code_coverages")
    op.drop_index("ix_build_report_test_cases_report_seq", table_name="build_report_test_cases")
    op.drop_table("build_report_test_cases")
    op.drop_index("ix_build_reports_account_created", table_name="build_reports")
    op.drop_index("ix_build_reports_group_created", table_name="build_reports")
    op.drop_table("build_reports")
    op.drop_index(op.f("ix_build_report_groups_account_id"), table_name="build_report_groups")
    op.drop_table("build_report_groups")
