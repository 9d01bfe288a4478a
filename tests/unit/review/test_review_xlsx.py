"""The XLSX review worksheet: its protections, and a round trip through LibreOffice (issue 14)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import zipfile
from datetime import date
from pathlib import Path

import pytest
from openpyxl import load_workbook
from support import TESTS
from test_review_campaigns import CAROL, DANA, DAY, JOSE, OWNER, T0, Cli
from test_review_campaigns import cli as cli  # the shared fixtures
from test_review_campaigns import sandbox as sandbox

from auditor.models import KNOWN_ROLE_NAMES
from auditor.review import HEADER

SOFFICE = shutil.which("soffice")
#: LibreOffice's Python bridge lives in the system Python (Debian: python3-uno), not in the venv.
SYSTEM_PYTHON = "/usr/bin/python3"
FILL_SCRIPT = TESTS / "libreoffice_fill.py"
#: Start, fill, save and exit (a first start with a fresh profile takes most of it); below pytest's
#: 300 s timeout, so the process group is ended here rather than left behind.
LIBREOFFICE_SECONDS = 200


def _libreoffice_missing() -> str | None:
    """Why LibreOffice cannot fill a worksheet here, or None when it can."""
    if SOFFICE is None:
        return "LibreOffice (soffice) is not installed (Debian: libreoffice-calc-nogui)"
    try:
        probe = subprocess.run([SYSTEM_PYTHON, "-c", "import uno"], capture_output=True, timeout=60, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"{SYSTEM_PYTHON} cannot be run to drive LibreOffice: {exc}"
    if probe.returncode != 0:
        return f"{SYSTEM_PYTHON} has no LibreOffice bridge: 'import uno' fails (Debian: python3-uno)"
    return None


LIBREOFFICE_MISSING = _libreoffice_missing()
needs_libreoffice = pytest.mark.skipif(LIBREOFFICE_MISSING is not None, reason=LIBREOFFICE_MISSING or "")


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
    decision, new_role = sheet.data_validations.dataValidation
    assert decision.type == "list" and decision.formula1 == '"keep,revoke,modify"'
    assert str(decision.sqref).startswith("O2:O") and decision.errorStyle in {None, "stop"}
    assert new_role.type == "list" and str(new_role.sqref).startswith("P2:P")
    roles = new_role.formula1.strip('"').split(",")
    assert roles == [*KNOWN_ROLE_NAMES.values(), "EV Verified User"]  # the sample's custom role too
    assert new_role.errorStyle == "warning"  # a role the list lacks may still be typed in
    rows = {r[_column("email") - 1].value: r for r in sheet.iter_rows(min_row=2)}
    dana = rows[DANA]
    assert dana[_column("email") - 1].protection.locked
    assert not dana[_column("decision") - 1].protection.locked
    assert not dana[_column("justification") - 1].protection.locked
    assert dana[_column("first_seen") - 1].is_date
    assert isinstance(dana[_column("days_inactive") - 1].value, int)


def test_new_role_offers_custom_roles_and_still_takes_one_the_list_cannot_hold(cli: Cli, tmp_path: Path) -> None:
    cli.set_roles(CAROL, 77, "Certs, Approver")  # a comma cannot be a list entry
    path = _open_xlsx(cli)
    _decision, new_role = load_workbook(path)["Review"].data_validations.dataValidation
    assert "Certs, Approver" not in new_role.formula1 and "EV Verified User" in new_role.formula1
    filled = _fill(path, tmp_path / "typed.xlsx", {JOSE: {"decision": "modify", "new_role": "Certs, Approver",
                                                         "justification": "approver only"}})
    cli.ok("review", "import", str(filled), "--by", OWNER)
    status = cli.status()
    decision = next(d for d in status["decisions"] if d["user"] == JOSE)
    assert status["decided"] == 1 and decision["new_role"] == "Certs, Approver"


def _fill(path: Path, target: Path, fills: dict[str, dict[str, str]]) -> Path:
    workbook = load_workbook(path)
    sheet = workbook["Review"]
    for row in sheet.iter_rows(min_row=2):
        fill = fills.get(row[_column("email") - 1].value)
        for column, value in (fill or {}).items():
            row[_column(column) - 1].value = value
    workbook.save(target)
    return target


def _fill_in_libreoffice(source: Path, target: Path, fills: dict[str, dict[str, str]], work: Path) -> str:
    """Have LibreOffice Calc itself fill the cells and save the XLSX (tests/libreoffice_fill.py)."""
    plan = work / f"{target.stem}-fills.json"
    plan.write_text(json.dumps(fills), encoding="utf-8")
    command = [SYSTEM_PYTHON, str(FILL_SCRIPT), "--soffice", str(SOFFICE), "--profile", str(work / "lo-profile"),
               str(source), str(target), str(plan)]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               start_new_session=True)
    try:
        out, err = process.communicate(timeout=LIBREOFFICE_SECONDS)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)  # the script and the soffice it started
        process.communicate()
        pytest.fail(f"LibreOffice did not fill {source.name} within {LIBREOFFICE_SECONDS}s")
    assert process.returncode == 0, err
    return out


def _saved_by_libreoffice(path: Path) -> bool:
    with zipfile.ZipFile(path) as archive:
        return "LibreOffice" in archive.read("docProps/app.xml").decode("utf-8")


@pytest.mark.libreoffice
@needs_libreoffice
def test_a_worksheet_filled_and_saved_in_libreoffice_imports(cli: Cli, tmp_path: Path) -> None:
    path = _open_xlsx(cli)
    sent = path.read_bytes()
    result = tmp_path / "filled.xlsx"
    typed = _fill_in_libreoffice(
        path,
        result,
        {
            DANA: {"decision": "revoke", "justification": "left ops", "ticket": "SEC-7"},
            CAROL: {"decision": "Keep", "justification": "sales director"},  # the drop-down's "keep"
            JOSE: {"decision": "modify", "new_role": "standard user", "justification": "least privilege"},
        },
        tmp_path,
    )
    assert "column decision: keep" in typed and "column new_role: Standard User" in typed
    assert _saved_by_libreoffice(result) and path.read_bytes() == sent
    cli.clock.now = T0 + DAY
    cli.ok("review", "import", str(result), "--by", OWNER)
    status = cli.status()
    decisions = {d["user"]: d for d in status["decisions"]}
    assert decisions[DANA]["decision"] == "revoke" and decisions[DANA]["ticket"] == "SEC-7"
    assert decisions[DANA]["justification"] == "left ops"
    assert decisions[CAROL]["decision"] == "keep"
    assert decisions[JOSE]["decision"] == "modify" and decisions[JOSE]["new_role"] == "Standard User"
    assert status["decided"] == 3
    assert status["imports"][0]["file_name"] == "filled.xlsx"


@pytest.mark.libreoffice
@needs_libreoffice
def test_a_data_cell_edited_in_libreoffice_is_named(cli: Cli, tmp_path: Path) -> None:
    path = _open_xlsx(cli)
    result = tmp_path / "edited.xlsx"
    _fill_in_libreoffice(
        path, result, {DANA: {"division": "Sales", "decision": "keep", "justification": "x"}}, tmp_path
    )
    assert _saved_by_libreoffice(result)
    row = next(r for r in load_workbook(path)["Review"].iter_rows(min_row=2) if r[_column("email") - 1].value == DANA)
    err = cli.fails("review", "import", str(result), "--by", OWNER)
    assert f"edited.xlsx: row {row[0].row}, column division: edited data cell ('Sales'" in err
    assert cli.status()["decided"] == 0


def test_an_edited_xlsx_data_cell_is_named(cli: Cli, tmp_path: Path) -> None:
    path = _open_xlsx(cli)
    filled = _fill(path, tmp_path / "edited.xlsx", {DANA: {"division": "Sales", "decision": "keep",
                                                          "justification": "x"}})
    workbook = load_workbook(filled)
    row = next(r for r in workbook["Review"].iter_rows(min_row=2) if r[_column("email") - 1].value == DANA)[0].row
    err = cli.fails("review", "import", str(filled), "--by", OWNER)
    assert f"edited.xlsx: row {row}, column division: edited data cell" in err
    assert cli.status()["decided"] == 0
