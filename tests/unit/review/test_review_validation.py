"""Every file-level error of `review import` through the real CLI: a clear error naming the file
(and its row and column where there is one), and nothing recorded from the file (issue 14)."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pytest
from openpyxl import load_workbook
from test_review_campaigns import CAROL, DANA, JOSE, OWNER, SECOND, T0, Cli, fill_csv, open_csv
from test_review_campaigns import cli as cli  # the shared fixtures
from test_review_campaigns import sandbox as sandbox

from auditor.errors import ExitCode
from auditor.review import HEADER

Table = list[list[str]]


def _table(path: Path) -> Table:
    with path.open(newline="", encoding="utf-8") as handle:
        return list(csv.reader(handle))


def _csv(table: Table) -> bytes:
    buffer = io.StringIO()
    csv.writer(buffer).writerows(table)
    return buffer.getvalue().encode()


def _row_of(table: Table, email: str) -> int:
    """The 1-based spreadsheet row of a user, and its index in ``table``."""
    return 1 + next(i for i, row in enumerate(table) if row[HEADER.index("email")] == email)


def _set(table: Table, email: str, column: str, value: str) -> Table:
    table[_row_of(table, email) - 1][HEADER.index(column)] = value
    return table


def _xlsx(path: Path, target: Path, change: Callable[..., None]) -> bytes:
    workbook = load_workbook(path)
    change(workbook)
    workbook.save(target)
    return target.read_bytes()


# (name, builds the bad file from (worksheet path as CSV, filled table, tmp dir), what the error says)
Case = tuple[str, Callable[[Path, Table, Path], bytes], Callable[[Table], str]]

CASES: list[Case] = [
    ("not-utf8", lambda p, t, d: _csv(t).replace(b"keep", b"ke\xffep", 1), lambda t: "bad.csv: not UTF-8 text (byte"),
    ("empty", lambda p, t, d: b"", lambda t: "bad.csv: row 1, column 1: expected the header 'campaign'"),
    ("not-a-worksheet", lambda p, t, d: b"name,email\nx,y\n",
     lambda t: "bad.csv: row 1, column 1: expected the header 'campaign'"),
    ("no-rows", lambda p, t, d: _csv(t[:1]), lambda t: "bad.csv: the worksheet has no rows"),
    ("campaign-not-a-number", lambda p, t, d: _csv([t[0], *[["x", *r[1:]] for r in t[1:]]]),
     lambda t: "bad.csv: row 2, column campaign: 'x' is not a campaign id"),
    ("no-such-campaign", lambda p, t, d: _csv([t[0], *[["7", *r[1:]] for r in t[1:]]]),
     lambda t: "bad.csv: row 2, column campaign: There is no review campaign #7."),
    ("extra-column", lambda p, t, d: _csv([[*t[0], "notes"], *t[1:]]),
     lambda t: f"bad.csv: row 1, column {len(HEADER) + 1}: unexpected column 'notes'"),
    ("missing-column", lambda p, t, d: _csv([r[:-1] for r in t]),
     lambda t: f"bad.csv: row 1, column {len(HEADER)}: header '(missing)', expected 'ticket'"),
    ("extra-cell", lambda p, t, d: _csv([t[0], [*t[1], "x"], *t[2:]]),
     lambda t: f"bad.csv: row 2: {len(HEADER) + 1} cells, the header has {len(HEADER)}"),
    ("unknown-user", lambda p, t, d: _csv(_set(t, JOSE, "user_id", "999999")),
     lambda t: f"bad.csv: row {_row_of(t, JOSE)}, column user_id: '999999' is not a row of campaign 1"),
    ("user-twice", lambda p, t, d: _csv([*t, t[_row_of(t, CAROL) - 1]]),
     lambda t: f"bad.csv: row {len(t) + 1}, column user_id: user "),
    ("unreadable-xlsx", lambda p, t, d: b"PK\x03\x04" + b"\0" * 64, lambda t: "bad.csv: not a readable XLSX workbook"),
]


@pytest.mark.parametrize(("name", "build", "says"), CASES, ids=[case[0] for case in CASES])
def test_every_file_level_error_names_the_file_and_records_nothing(
    cli: Cli, name: str, build: Callable[[Path, Table, Path], bytes], says: Callable[[Table], str]
) -> None:
    cli.pull(T0)
    _, path = open_csv(cli)
    filled = _table(fill_csv(path, cli.tmp / "good.csv", {CAROL: {"decision": "keep"}, JOSE: {"decision": "keep"}}))
    bad = cli.tmp / "bad.csv"
    bad.write_bytes(build(path, [list(r) for r in filled], cli.tmp))
    code, _out, err = cli.run("review", "import", str(bad), "--by", OWNER)
    assert code == ExitCode.USAGE, err
    assert says(filled) in err and "othing was recorded" in err, err
    assert "Traceback" not in err
    status = cli.status()
    assert status["decided"] == 0 and status["imports"] == []


@pytest.mark.parametrize("sheet", ["renamed", "edited"])
def test_an_xlsx_without_its_review_sheet_or_with_an_edited_cell_records_nothing(cli: Cli, sheet: str) -> None:
    cli.pull(T0)
    path = cli.tmp / "review.xlsx"
    cli.ok("review", "open", "--output", str(path))

    def change(workbook: object) -> None:
        review = workbook["Review"]  # type: ignore[index]
        for row in review.iter_rows(min_row=2):
            if row[HEADER.index("email")].value == CAROL:
                row[HEADER.index("decision")].value = "keep"
            if sheet == "edited" and row[HEADER.index("email")].value == DANA:
                row[HEADER.index("status")].value = "inactive"
        if sheet == "renamed":
            review.title = "Decisions"

    bad = cli.tmp / "bad.xlsx"
    _xlsx(path, bad, change)
    err = cli.fails("review", "import", str(bad), "--by", SECOND)
    if sheet == "renamed":
        assert "bad.xlsx: the workbook has no sheet named 'Review' (it has Cover, Decisions)" in err
    else:
        assert "bad.xlsx: row " in err and "column status: edited data cell ('inactive'" in err
    assert "othing was recorded" in err
    assert cli.status()["decided"] == 0


def test_a_file_over_the_size_cap_is_refused_unread(cli: Cli) -> None:
    from auditor.pipeline import MAX_WORKSHEET_BYTES

    cli.pull(T0)
    open_csv(cli)
    huge = cli.tmp / "huge.csv"
    with huge.open("wb") as handle:  # sparse: refused by its size
        handle.truncate(MAX_WORKSHEET_BYTES + 1)
    err = cli.fails("review", "import", str(huge), "--by", OWNER)
    assert f"huge.csv: larger than {MAX_WORKSHEET_BYTES} bytes" in err
    assert cli.status()["imports"] == []


def test_a_keep_decision_silences_no_rule(cli: Cli) -> None:
    cli.pull(T0)
    _, path = open_csv(cli)
    before = {(f["rule"], f["email"]) for f in cli.findings()["findings"] if not f["suppressed"]}
    flagged = {r["email"] for r in _csv_rows(path) if r["findings"]}
    keep_all = {email: {"decision": "keep", "justification": "confirmed with the owner"} for email in flagged}
    code, _out, err = cli.run("review", "import", str(fill_csv(path, cli.tmp / "k.csv", keep_all)), "--by", OWNER)
    assert code == ExitCode.OK, err
    cli.ok("review", "close", "--by", SECOND, "--statement", "kept", "--allow-undecided")
    cli.pull(T0 + timedelta(hours=1))  # the next pull
    after = {(f["rule"], f["email"]) for f in cli.findings()["findings"] if not f["suppressed"]}
    user_findings = {pair for pair in before if pair[1] in flagged}
    assert user_findings and user_findings <= after


def _csv_rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))
