"""`auditor doctor` (issue 15): the full check that ordinary opens leave out, one verdict per check."""

from __future__ import annotations

import contextlib
import sqlite3

import pytest
from support import AuditorHome, connect_to

from auditor.errors import ExitCode
from auditor.sandbox import SandboxServer
from auditor.store import DB_NAME

DANA = 2702001  # a Standard User in the default sandbox dataset


@pytest.fixture
def pulled(home: AuditorHome, sandbox: SandboxServer) -> AuditorHome:
    connect_to(home, sandbox.base_url)
    for _ in range(2):
        assert home.run("pull").returncode == 0
    return home


def _execute(home: AuditorHome, statement: str) -> None:
    with contextlib.closing(sqlite3.connect(home.data_dir / DB_NAME, isolation_level=None)) as db:
        db.execute(statement)


def test_doctor_passes_a_sound_store_check_by_check(pulled: AuditorHome) -> None:
    result = pulled.run("doctor")
    assert result.returncode == ExitCode.OK, result.stdout + result.stderr
    for check in ("integrity", "snapshots of default", "history index of default", "evidence chain of default"):
        assert f"ok    {check}:" in result.stdout, result.stdout
    assert "2 snapshots" in result.stdout and "raw pages" in result.stdout
    assert "No problems found." in result.stderr


def test_doctor_reports_an_edited_user_version_and_exits_6(pulled: AuditorHome) -> None:
    _execute(pulled, f"UPDATE user_versions SET email = 'x@evil.test' WHERE user_id = {DANA}")  # noqa: S608 - a constant
    result = pulled.run("doctor")
    assert result.returncode == ExitCode.LOCAL_DATA, result.stdout + result.stderr
    assert "FAIL  snapshots of default" in result.stdout and "snapshot #1 users" in result.stdout
    assert "restore" in result.stdout and "ok    integrity" in result.stdout  # the other checks still ran
    assert "Traceback" not in result.stderr


def test_doctor_finds_a_history_row_deleted_outside_the_tool(pulled: AuditorHome) -> None:
    # A deleted index row carries no tag to fail; only the comparison with the snapshots finds it.
    _execute(pulled, f"DELETE FROM user_presence WHERE user_id = {DANA}")  # noqa: S608 - a constant
    result = pulled.run("doctor")
    assert result.returncode == ExitCode.LOCAL_DATA, result.stdout + result.stderr
    assert "FAIL  history index of default" in result.stdout and "1 users" in result.stdout
    assert "ok    snapshots of default" in result.stdout
