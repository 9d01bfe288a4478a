"""Spreadsheets an auditor can work with: the XLSX layout (real dates, widths, bold frozen header,
auto-filter, provenance sheet, same bytes for the same data), and safety in a real spreadsheet:
LibreOffice opens our CSV and XLSX without formulas and with accents intact.

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
import zipfile
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from factories import make_snapshot
from openpyxl import Workbook, load_workbook

from auditor import exports
from auditor.models import KeyOwner, Operator, Role, Snapshot, User
from auditor.pipeline import raw_digest

libreoffice = pytest.mark.skipif(shutil.which("soffice") is None, reason="LibreOffice (soffice) is not installed")

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
            last_login=T0 - timedelta(days=index, hours=3),
        )
        for index, name in enumerate(names, start=1)
    )
    snapshot = make_snapshot(users, taken_at=T0, page_digests=(("/user?offset=0", "ab" * 32),))
    provenance = replace(
        snapshot.provenance,
        operator=Operator("alice", "build-01", "auditor pull --connection prod", "0.1.0", "3.11.7"),
        key_owner=KeyOwner(7, "=Kim Keyholder", "kim@example.com", "Administrator"),
    )
    return replace(snapshot, provenance=provenance)


def review_workbook(snapshot: Snapshot, *, generated_at: datetime = T0 + timedelta(hours=1)) -> bytes:
    return exports.workbook_xlsx(
        {"users": (exports.ROSTER_HEADER, exports.roster_rows(snapshot))},
        created=generated_at,
        provenance=exports.provenance_rows(snapshot, generated_at=generated_at),
    )


def convert(files: list[Path], workdir: Path, *, profile: str, infilter: str | None = None) -> list[Path]:
    """Convert with the session's fresh profile (no macros, no user settings); returns the .fods paths."""
    outdir = workdir / "converted"
    command = [
        "soffice",
        f"-env:UserInstallation={profile}",
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


@pytest.mark.libreoffice
@libreoffice
def test_csv_opens_in_libreoffice_as_text_with_accents_intact(tmp_path: Path, libreoffice_profile: str) -> None:
    snapshot = roster()
    ours = tmp_path / "users.csv"
    ours.write_bytes(exports.roster_csv(snapshot))
    control = tmp_path / "control.csv"
    control.write_bytes(plain_csv(snapshot))

    # Separator and quote as the import dialog offers them; charset UTF-8 as an auditor picks it.
    converted, baseline = convert([ours, control], tmp_path, profile=libreoffice_profile, infilter="CSV:44,34,76,1")
    ours_cells = cells(converted)

    assert any(formula for _, formula, _ in cells(baseline)), "the control should hold formulas"
    assert [formula for _, formula, _ in ours_cells if formula] == []
    assert ours_cells[0][0] == "user_id"  # the byte-order mark is not read as data
    by_text = {text: value_type for text, _, value_type in ours_cells}
    for name in HOSTILE:
        assert by_text.get("'" + name) == "string", name
    for name in ACCENTED:
        assert by_text.get(name) == "string", name


@pytest.mark.libreoffice
@libreoffice
def test_xlsx_opens_in_libreoffice_as_text_with_accents_intact(tmp_path: Path, libreoffice_profile: str) -> None:
    snapshot = roster()
    ours = tmp_path / "review.xlsx"
    ours.write_bytes(
        exports.workbook_xlsx({"users": (exports.ROSTER_HEADER, exports.roster_rows(snapshot))}, created=T0)
    )
    control = tmp_path / "control.xlsx"
    control.write_bytes(plain_xlsx(snapshot))

    converted, baseline = convert([ours, control], tmp_path, profile=libreoffice_profile)
    ours_cells = cells(converted)

    assert any(formula for _, formula, _ in cells(baseline)), "the control should hold formulas"
    assert [formula for _, formula, _ in ours_cells if formula] == []
    by_text = {text: value_type for text, _, value_type in ours_cells}
    for name in (*HOSTILE, *ACCENTED):
        assert by_text.get(name) == "string", name


# --- the XLSX as an auditor opens it ------------------------------------------------------------


def test_xlsx_has_real_dates_widths_a_bold_frozen_header_and_an_auto_filter() -> None:
    snapshot = roster()
    book = load_workbook(io.BytesIO(review_workbook(snapshot)))
    sheet = book["users"]
    header = [cell.value for cell in sheet[1]]
    assert header == list(exports.ROSTER_HEADER)
    assert all(cell.font.b for cell in sheet[1])
    assert sheet.freeze_panes == "A2"
    assert sheet.auto_filter.ref == f"A1:O{len(snapshot.users) + 1}"
    by_email = {row[1].value: row[header.index("last_sign_in")] for row in sheet.iter_rows(min_row=2)}
    last_sign_in = by_email["user1@example.com"]
    assert last_sign_in.is_date and isinstance(last_sign_in.value, datetime)
    assert last_sign_in.value == (T0 - timedelta(days=1, hours=3)).replace(tzinfo=None)  # UTC, as stored
    assert last_sign_in.number_format == exports.XLSX_DATETIME_FORMAT
    widths = {name: sheet.column_dimensions[chr(ord("A") + i)].width for i, name in enumerate(header)}
    assert widths["email"] >= len("user10@example.com")
    assert widths["last_sign_in"] >= len("2026-10-31 21:00:00 UTC")
    assert widths["user_id"] < widths["email"]
    hostile = [cell for row in sheet.iter_rows(min_row=2) for cell in row if str(cell.value).startswith("=")]
    assert hostile and all(cell.data_type == "s" for cell in hostile)  # text, never a formula


def test_xlsx_provenance_sheet_says_where_when_and_by_whom() -> None:
    snapshot = roster()
    generated = T0 + timedelta(hours=1)
    book = load_workbook(io.BytesIO(review_workbook(snapshot, generated_at=generated)))
    assert book.sheetnames == ["users", "provenance"]
    sheet = book["provenance"]
    fields = {row[0].value: row[1] for row in sheet.iter_rows(min_row=2)}
    assert fields["source"].value == "DigiCert CertCentral Services API"
    assert fields["instance"].value == "prod · https://www.digicert.com/services/v2"
    assert fields["account_id"].value == 1
    assert fields["snapshot_id"].value == snapshot.id
    assert fields["snapshot_taken_at"].is_date and fields["snapshot_taken_at"].value == T0.replace(tzinfo=None)
    assert fields["raw_data_sha256"].value == raw_digest(snapshot)  # the digest the report and bundle name
    assert fields["operator"].value == "alice@build-01 (command: auditor pull --connection prod)"
    owner = fields["key_owner"]
    assert owner.value.startswith("=Kim Keyholder <kim@example.com>, Administrator") and owner.data_type == "s"
    assert fields["generated_at"].is_date and fields["generated_at"].value == generated.replace(tzinfo=None)
    assert sheet["A1"].font.b and sheet.freeze_panes == "A2"


def test_xlsx_provenance_of_an_earlier_version_says_not_recorded() -> None:
    snapshot = make_snapshot(roster().users, taken_at=T0)
    snapshot = replace(snapshot, provenance=replace(snapshot.provenance, format_version=1))
    book = load_workbook(io.BytesIO(review_workbook(snapshot)))
    fields = {row[0].value: row[1].value for row in book["provenance"].iter_rows(min_row=2)}
    assert fields["operator"] == fields["key_owner"] == "not recorded (pulled by an earlier version)"


def test_xlsx_is_the_same_bytes_for_the_same_data_and_clock() -> None:
    snapshot = roster()
    first = review_workbook(snapshot)
    assert review_workbook(snapshot) == first
    # Nothing in it comes from the wall clock: every ZIP entry and the document times are the clock's.
    with zipfile.ZipFile(io.BytesIO(first)) as archive:
        assert {info.date_time for info in archive.infolist()} == {(2026, 11, 1, 1, 0, 0)}
    properties = load_workbook(io.BytesIO(first)).properties
    assert properties.created == properties.modified == datetime(2026, 11, 1, 1, 0, 0)
    assert review_workbook(snapshot, generated_at=T0 + timedelta(hours=2)) != first


def test_dates_a_spreadsheet_cannot_hold_stay_text() -> None:
    early = datetime(1850, 1, 1, tzinfo=UTC)
    book = load_workbook(io.BytesIO(exports.workbook_xlsx({"t": (("when",), [(early,)])}, created=T0)))
    cell = book["t"]["A2"]
    assert cell.data_type == "s" and cell.value == "1850-01-01T00:00:00+00:00"


@pytest.mark.libreoffice
@libreoffice
def test_xlsx_dates_open_in_libreoffice_as_dates(tmp_path: Path, libreoffice_profile: str) -> None:
    path = tmp_path / "review.xlsx"
    path.write_bytes(review_workbook(roster()))
    (converted,) = convert([path], tmp_path, profile=libreoffice_profile)
    dates = [(text, kind) for text, _, kind in cells(converted) if text.endswith(" UTC")]
    assert dates and {kind for _, kind in dates} == {"date"}
    assert ("2026-10-30 21:00:00 UTC", "date") in dates  # shown with the format, in UTC


# --- CSV in LibreOffice without choosing anything --------------------------------------------------


def convert_to_xlsx(path: Path, workdir: Path, *, profile: str) -> list[list[object]]:
    """``soffice --headless --convert-to xlsx`` with no filter option, read back with openpyxl."""
    outdir = workdir / "xlsx"
    command = ["soffice", f"-env:UserInstallation={profile}", "--headless",
               "--norestore", "--convert-to", "xlsx", "--outdir", str(outdir), str(path)]
    subprocess.run(command, check=True, capture_output=True, timeout=240)
    sheet = load_workbook(outdir / (path.stem + ".xlsx")).active
    assert sheet is not None
    return [[cell.value for cell in row] for row in sheet.iter_rows()]


@pytest.mark.libreoffice
@libreoffice
def test_csv_in_libreoffice_headless_without_a_filter_option_is_read_as_windows_1252(tmp_path: Path) -> None:
    """Pins the caveat README states: LibreOffice's default CSV import (no filter option, as in
    ``soffice --headless --convert-to``) decodes as Windows-1252 whatever the file says, BOM or
    not. If this starts failing, LibreOffice changed: update README ("CSV and LibreOffice")."""
    snapshot = roster()
    path = tmp_path / "users.csv"
    path.write_bytes(exports.roster_csv(snapshot))

    # Its own fresh profile: no CSV import options remembered from another conversion.
    rows = convert_to_xlsx(path, tmp_path, profile=(tmp_path / "lo-profile").as_uri())

    assert len(rows) == len(snapshot.users) + 1 and len(rows[1]) == len(exports.ROSTER_HEADER)
    assert rows[0][1:] == list(exports.ROSTER_HEADER[1:])  # ASCII survives; the BOM shows in A1
    assert rows[0][0] == "\ufeffuser_id".encode().decode("cp1252")
    first_names = [row[2] for row in rows[1:]]
    assert "Ångström".encode().decode("cp1252") in first_names
    assert "Ångström" not in first_names


def test_xlsx_keeps_error_codes_and_formula_like_text_as_text_in_write_only_mode() -> None:
    """Plain strings stream in as values (issue 15 §2); those openpyxl would bind as a formula or an
    error code go in as cells forced to text, as do control characters replaced for XML."""
    texts = ("#N/A", "#REF!", "#DIV/0!", "=1+1", "=", "#", "plain", "tab\there", "bell\x07", "\ud800x")
    book = load_workbook(io.BytesIO(exports.workbook_xlsx({"t": (("text",), [(text,) for text in texts])},
                                                          created=T0)))
    cells_ = [row[0] for row in book["t"].iter_rows(min_row=2)]
    assert [cell.data_type for cell in cells_] == ["s"] * len(texts)
    assert [cell.value for cell in cells_] == [*texts[:8], "bell\ufffd", "\ufffdx"]
    assert book["t"].freeze_panes == "A2" and book["t"].auto_filter.ref == f"A1:A{len(texts) + 1}"
