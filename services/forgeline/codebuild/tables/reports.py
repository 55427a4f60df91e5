"""CodeBuild report groups, their reports, and each report's test cases or file coverage."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from forgeline.core.db import Base, UTCDateTime, utcnow


class ReportGroup(Base):
    __tablename__ = "build_report_groups"
    __table_args__ = (UniqueConstraint("account_id", "region", "name"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    account_id: Mapped[str] = mapped_column(String(12), index=True)
    region: Mapped[str] = mapped_column(String(32))
    name: Mapped[str] = mapped_column(String(128))
    arn: Mapped[str] = mapped_column(String(2048))
    type: Mapped[str] = mapped_column(String(16))
    # The ReportExportConfig shape as given (exportConfigType, s3Destination).
    export_config: Mapped[dict[str, Any]] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(16), default="ACTIVE")
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class Report(Base):
    """One run of a report group: the results one build produced for it."""

    __tablename__ = "build_reports"
    __table_args__ = (
        UniqueConstraint("arn"),
        Index("ix_build_reports_group_created", "report_group_id", "created_at"),
        Index("ix_build_reports_account_created", "account_id", "region", "created_at"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    account_id: Mapped[str] = mapped_column(String(12))
    region: Mapped[str] = mapped_column(String(32))
    arn: Mapped[str] = mapped_column(String(2048))
    report_group_id: Mapped[str] = mapped_column(
        String(36), ForeignKey("build_report_groups.id", ondelete="CASCADE")
    )
    report_group_arn: Mapped[str] = mapped_column(String(2048))
    name: Mapped[str] = mapped_column(String(128))
    type: Mapped[str] = mapped_column(String(16))
    execution_id: Mapped[str | None] = mapped_column(String(2048), nullable=True)
    status: Mapped[str] = mapped_column(String(16))
    # Why a report is INCOMPLETE (no files, unreadable files); the API has no field for
    # it, the build log shows it.
    status_message: Mapped[str | None] = mapped_column(Text, nullable=True)
    export_config: Mapped[dict[str, Any]] = mapped_column(JSON)
    truncated: Mapped[bool] = mapped_column(Boolean, default=False)
    test_total: Mapped[int | None] = mapped_column(Integer, nullable=True)
    test_status_counts: Mapped[dict[str, int] | None] = mapped_column(JSON, nullable=True)
    test_duration_ns: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    line_coverage_percentage: Mapped[float | None] = mapped_column(Float, nullable=True)
    lines_covered: Mapped[int | None] = mapped_column(Integer, nullable=True)
    lines_missed: Mapped[int | None] = mapped_column(Integer, nullable=True)
    branch_coverage_percentage: Mapped[float | None] = mapped_column(Float, nullable=True)
    branches_covered: Mapped[int | None] = mapped_column(Integer, nullable=True)
    branches_missed: Mapped[int | None] = mapped_column(Integer, nullable=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)


class ReportTestCase(Base):
    __tablename__ = "build_report_test_cases"
    __table_args__ = (Index("ix_build_report_test_cases_report_seq", "report_id", "seq"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    report_id: Mapped[str] = mapped_column(
        String(36), ForeignKey("build_reports.id", ondelete="CASCADE")
    )
    # Position within the report: the stable order DescribeTestCases pages through.
    seq: Mapped[int] = mapped_column(Integer)
    test_raw_data_path: Mapped[str] = mapped_column(Text)
    prefix: Mapped[str | None] = mapped_column(Text, nullable=True)
    name: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16))
    duration_ns: Mapped[int] = mapped_column(BigInteger, default=0)
    message: Mapped[str | None] = mapped_column(Text, nullable=True)
    suite_name: Mapped[str | None] = mapped_column(Text, nullable=True)


class ReportCodeCoverage(Base):
    __tablename__ = "build_report_code_coverages"
    __table_args__ = (Index("ix_build_report_code_coverages_report", "report_id"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    report_id: Mapped[str] = mapped_column(
        String(36), ForeignKey("build_reports.id", ondelete="CASCADE")
    )
    file_path: Mapped[str] = mapped_column(Text)
    line_coverage_percentage: Mapped[float] = mapped_column(Float)
    lines_covered: Mapped[int] = mapped_column(Integer)
    lines_missed: Mapped[int] = mapped_column(Integer)
    branch_coverage_percentage: Mapped[float] = mapped_column(Float)
    branches_covered: Mapped[int] = mapped_column(Integer)
    branches_missed: Mapped[int] = mapped_column(Integer)
