"""The XLSX review worksheet: its protections, and a round trip through LibreOffice (issue 14)."""

from __future__ import annotations

import shutil
import subprocess
from datetime import date
from pathlib import Path

import pytest
from openpyxl import load_workbook

from auditor.review import HEADER
from tests.test_review_campaigns import CAROL, DANA, DAY, OWNER, T0, Cli
from tests.test_review_campaigns import cli as cli  # the shared fixtures
from tests.test_review_campaigns import sandbox as sandbox

SOFFICE = shutil.which("soffice")


def _open_xlsx(cli: Cli) -> Path:
    cli.pull(T0)
    path = cli.tmp / "review.xlsx"
    assert cli.ok("review", "open", "--output", str(path), "--due", "2026-12-15").strip() == "1"
    return path


def _column(name: str) -> int:
    return HEADER.index(name) + 1


def test_the_xlsx_worksheet_has_drop_downs_locked_data_a_cover_and_real_dates(cli: Cli) -> None:
    path = _open_xlsx(cli)
    workbook = load_workbook(path)
    assert workbook.sheetnames == ["Cover", "Review"]
    cover = {row[0]: row[1] for row in workbook["Cover"].iter_rows(values_only=True) if row[0]}
    assert cover["Access review campaign"] == 1 and cover["Snapshot"] == 1
    assert len(str(cover["Raw data SHA-256"])) == 64
    assert cover["Due date"].date() == date(2026, 12, 15)
    sheet = workbook["Review"]
    assert tuple(c.value for c in sheet[1]) == HEADER
    assert sheet.freeze_panes == "A2" and sheet.auto_filter.ref.startswith("A1:")
    assert sheet.protection.sheet
    (validation,) = sheet.data_validations.dataValidation
    assert validation.type == "list" and validation.formula1 == '"keep,revoke,modify"'
    assert str(validation.sqref).startswith("O2:O")
    rows = {r[_column("email") - 1].value: r for r in sheet.iter_rows(min_row=2)}
    dana = rows[DANA]
    assert dana[_column("email") - 1].protection.locked
    assert not dana[_column("decision") - 1].protection.locked
    assert not dana[_column("justification") - 1].protection.locked
    assert dana[_column("first_seen") - 1].is_date
    assert isinstance(dana[_column("days_inactive") - 1].value, int)


def _fill(path: Path, target: Path, fills: dict[str, dict[str, str]]) -> Path:
    workbook = load_workbook(path)
    sheet = workbook["Review"]
    for row in sheet.iter_rows(min_row=2):
        fill = fills.get(row[_column("email") - 1].value)
        for column, value in (fill or {}).items():
            row[_column(column) - 1].value = value
    workbook.save(target)
    return target


@pytest.mark.skipif(SOFFICE is None, reason="LibreOffice (soffice) is not installed")
def test_a_worksheet_filled_and_saved_through_libreoffice_imports(
    cli: Cli, tmp_path: Path, libreoffice_profile: str
) -> None:
    path = _open_xlsx(cli)
    filled = _fill(
        path,
        tmp_path / "filled.xlsx",
        {
            DANA: {"decision": "revoke", "justification": "left ops", "ticket": "SEC-7"},
            CAROL: {"decision": "keep", "justification": "sales director"},
        },
    )
    converted = tmp_path / "lo"
    converted.mkdir()
    subprocess.run(
        [str(SOFFICE), f"-env:UserInstallation={libreoffice_profile}", "--headless", "--convert-to", "xlsx",
         "--outdir", str(converted), str(filled)],
        check=True, capture_output=True, timeout=180,
    )
    result = converted / "filled.xlsx"
    assert result.exists() and result.read_bytes() != filled.read_bytes()
    cli.clock.now = T0 + DAY
    cli.ok("review", "import", str(result), "--by", OWNER)
    status = cli.status()
    decisions = {d["user"]: d for d in status["decisions"]}
    assert decisions[DANA]["decision"] == "revoke" and decisions[DANA]["ticket"] == "SEC-7"
    assert decisions[CAROL]["decision"] == "keep"
    assert status["imports"][0]["file_name"] == "filled.xlsx"


def test_an_edited_xlsx_data_cell_is_named(cli: Cli, tmp_path: Path) -> None:
    path = _open_xlsx(cli)
    filled = _fill(path, tmp_path / "edited.xlsx", {DANA: {"division": "Sales", "decision": "keep",
                                                          "justification": "x"}})
    workbook = load_workbook(filled)
    row = next(r for r in workbook["Review"].iter_rows(min_row=2) if r[_column("email") - 1].value == DANA)[0].row
    err = cli.fails("review", "import", str(filled), "--by", OWNER)
    assert f"edited.xlsx: row {row}, column division: edited data cell" in err
    assert cli.status()["decided"] == 0
