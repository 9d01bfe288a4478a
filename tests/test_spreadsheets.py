"""Spreadsheet safety in a real spreadsheet: LibreOffice opens our CSV and XLSX without formulas.

LibreOffice converts each file to flat ODS XML (``.fods``), where a formula cell carries a
``table:formula`` attribute and a text cell ``office:value-type="string"``. Control files written
without neutralisation show that the check does see formulas when they are there.
"""

from __future__ import annotations

import csv
import io
import shutil
import subprocess
import xml.etree.ElementTree as ET
from datetime import UTC, datetime
from pathlib import Path

import pytest
from factories import make_snapshot
from openpyxl import Workbook

from auditor import exports
from auditor.models import Role, Snapshot, User

pytestmark = [
    pytest.mark.libreoffice,
    pytest.mark.skipif(shutil.which("soffice") is None, reason="LibreOffice (soffice) is not installed"),
]

T0 = datetime(2026, 11, 1, tzinfo=UTC)
HOSTILE = (
    '=HYPERLINK("http://evil.example","click")',
    "+cmd|' /C calc'!A0",
    "@SUM(1+1)",
    "-2+3",
    "=1+1",
)
ACCENTED = ("Ångström", "Zoë Ørsted", "José Núñez", "山田 太郎", "Ελένη", "Дмитрий", "Łukasz Żółć")

_NS = {
    "table": "urn:oasis:names:tc:opendocument:xmlns:table:1.0",
    "office": "urn:oasis:names:tc:opendocument:xmlns:office:1.0",
    "text": "urn:oasis:names:tc:opendocument:xmlns:text:1.0",
}
_FORMULA = f"{{{_NS['table']}}}formula"
_VALUE_TYPE = f"{{{_NS['office']}}}value-type"


def roster() -> Snapshot:
    names = (*HOSTILE, *ACCENTED)
    users = tuple(
        User(
            id=index,
            email=f"user{index}@example.com",
            first_name=name,
            last_name="Test",
            status="active",
            roles=(Role(1, "Administrator"),),
            job_title=HOSTILE[index % len(HOSTILE)],
        )
        for index, name in enumerate(names, start=1)
    )
    return make_snapshot(users, taken_at=T0)


def convert(files: list[Path], workdir: Path, *, infilter: str | None = None) -> list[Path]:
    """Convert with a throw-away profile (no macros, no user settings); returns the .fods paths."""
    outdir = workdir / "converted"
    command = [
        "soffice",
        f"-env:UserInstallation={(workdir / 'lo-profile').as_uri()}",
        "--headless",
        "--norestore",
        *([f"--infilter={infilter}"] if infilter else []),
        "--convert-to",
        "fods",
        "--outdir",
        str(outdir),
        *map(str, files),
    ]
    subprocess.run(command, check=True, capture_output=True, timeout=240)
    results = [outdir / (path.stem + ".fods") for path in files]
    missing = [path.name for path in results if not path.exists()]
    assert not missing, f"LibreOffice did not convert {missing}"
    return results


def cells(fods: Path) -> list[tuple[str, str | None, str | None]]:
    """(text, formula, value type) of every non-empty cell of the first sheet, row by row."""
    tree = ET.parse(fods)  # noqa: S314 - LibreOffice's output for files this test wrote
    table = tree.getroot().find(".//table:table", _NS)
    assert table is not None
    found = []
    for cell in table.iter(f"{{{_NS['table']}}}table-cell"):
        text = "\n".join("".join(p.itertext()) for p in cell.findall("text:p", _NS))
        if text or cell.get(_FORMULA):
            found.append((text, cell.get(_FORMULA), cell.get(_VALUE_TYPE)))
    return found


def plain_csv(snapshot: Snapshot) -> bytes:
    """A naive CSV writer, as a tool without neutralisation would write it (the control)."""
    buffer = io.StringIO(newline="")
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(exports.ROSTER_HEADER)
    writer.writerows(exports.roster_rows(snapshot))
    return ("\ufeff" + buffer.getvalue()).encode("utf-8")


def plain_xlsx(snapshot: Snapshot) -> bytes:
    """openpyxl's default assignment, which turns '=...' into a formula (the control)."""
    workbook = Workbook()
    sheet = workbook.active
    assert sheet is not None
    sheet.append(list(exports.ROSTER_HEADER))
    for row in exports.roster_rows(snapshot):
        sheet.append([exports.neutralise_cell(value).removeprefix("'") for value in row])
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


def test_csv_opens_in_libreoffice_as_text_with_accents_intact(tmp_path: Path) -> None:
    snapshot = roster()
    ours = tmp_path / "users.csv"
    ours.write_bytes(exports.roster_csv(snapshot))
    control = tmp_path / "control.csv"
    control.write_bytes(plain_csv(snapshot))

    # Separator and quote as the import dialog offers them; charset UTF-8 as an auditor picks it.
    converted, baseline = convert([ours, control], tmp_path, infilter="CSV:44,34,76,1")
    ours_cells = cells(converted)

    assert any(formula for _, formula, _ in cells(baseline)), "the control should hold formulas"
    assert [formula for _, formula, _ in ours_cells if formula] == []
    assert ours_cells[0][0] == "user_id"  # the byte-order mark is not read as data
    by_text = {text: value_type for text, _, value_type in ours_cells}
    for name in HOSTILE:
        assert by_text.get("'" + name) == "string", name
    for name in ACCENTED:
        assert by_text.get(name) == "string", name


def test_xlsx_opens_in_libreoffice_as_text_with_accents_intact(tmp_path: Path) -> None:
    snapshot = roster()
    ours = tmp_path / "review.xlsx"
    ours.write_bytes(
        exports.workbook_xlsx({"users": (exports.ROSTER_HEADER, exports.roster_rows(snapshot))}, created=T0)
    )
    control = tmp_path / "control.xlsx"
    control.write_bytes(plain_xlsx(snapshot))

    converted, baseline = convert([ours, control], tmp_path)
    ours_cells = cells(converted)

    assert any(formula for _, formula, _ in cells(baseline)), "the control should hold formulas"
    assert [formula for _, formula, _ in ours_cells if formula] == []
    by_text = {text: value_type for text, _, value_type in ours_cells}
    for name in (*HOSTILE, *ACCENTED):
        assert by_text.get(name) == "string", name
