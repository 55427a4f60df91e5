"""Collecting a report group's files from a real source directory: only files inside it,
whatever symbolic links point at."""

from __future__ import annotations

import os

import pytest

from forgeline.codebuild.reports import files

# Files and processes, but no database: run once, not on every backend's pass.
pytestmark = pytest.mark.no_db


def test_collect_stays_inside_the_source_directory(tmp_path):
    src = tmp_path / "src"
    (src / "reports" / "nested").mkdir(parents=True)
    (src / "reports" / "a.xml").write_text("<a/>")
    (src / "reports" / "nested" / "b.xml").write_text("<b/>")
    (src / "reports" / "notes.txt").write_text("x")
    secret = tmp_path / "secret.xml"
    secret.write_text("<secret/>")
    os.symlink(secret, src / "reports" / "escape.xml")
    os.symlink(tmp_path, src / "reports" / "outside")
    found = files.collect(src, "reports", ["**/*.xml"])
    assert [p.relative_to(src).as_posix() for p in found] == [
        "reports/a.xml",
        "reports/nested/b.xml",
    ]
    assert files.collect(src, "missing", ["**/*"]) == []
    with pytest.raises(files.ReportFilesError):
        files.collect(src, "../", ["**/*"])
