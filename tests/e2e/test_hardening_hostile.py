"""Issue 8.2: hostile field values from CertCentral never crash the tool and never inject.

Hypothesis generates API user objects with megabyte names, control characters, right-to-left
overrides, emoji, null bytes and lone surrogates, HTML, spreadsheet formulas, numbers, lists and
objects where strings belong, unknown roles and statuses, future and unparseable dates. They go
through the parser, the diff, the CSV/XLSX exports and the HTML report (and one PDF); then the
same values go end to end through the real CLI from a proxy in front of the sandbox.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import zipfile
from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from factories import make_snapshot
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis_profile import examples
from support import AuditorHome, RewritingProxy, connect_to, json_answer

from auditor import exports
from auditor.config import default_config
from auditor.diff import diff_snapshots
from auditor.models import ChangeSet, Snapshot, User
from auditor.report import ReportData, render_html, render_pdf
from auditor.rules import evaluate
from auditor.sandbox import Dataset, Faults, SandboxServer

NOW = datetime(2026, 11, 1, 9, 30, tzinfo=UTC)
SCRIPT = "</script><script>alert('x')</script>"
IMG = '<img src=x onerror="alert(1)">'
FORMULAS = ("=HYPERLINK(\"http://evil\",\"x\")", "+1+1", "-2+3", "@SUM(A1)", "\t=1", "\r=1", "=cmd|' /C calc'!A0")
NASTY = (
    SCRIPT, IMG, "<svg/onload=alert(1)>", "\"'><iframe src=javascript:alert(1)>", "{{ 7*7 }}", "{% raw %}",
    "\u202eevil\u202c.exe", "\u200f\u2066rtl\u2069", "a\x00b", "\x1b[31mred\x1b[0m", "\x07\x08\x0b\x0c",
    "👩‍👩‍👧‍👦🏳️‍🌈", "\ud800lone", "Z̤͔ͧ̑̓ä͖̭̈̇lͮ̒ͫǧ̗͚̚o̙̔ͮ̇͐̇", "\u2028\u2029", " ", "",
    *FORMULAS,
)
DATES = st.one_of(
    st.none(), st.sampled_from(["", "not a date", "2026-13-45T99:99:99", "9999-12-31T23:59:59+00:00",
                                "2099-01-01 00:00:00", "0001-01-01T00:00:00Z", "2026-10-13T15:15:13+14:00",
                                "1e9", "NaN"]),
    st.integers(), st.floats(allow_nan=True), st.datetimes(timezones=st.just(UTC)).map(datetime.isoformat),
)
TEXT = st.one_of(st.sampled_from(NASTY), st.text(max_size=40), st.text(st.characters(max_codepoint=0x9F), max_size=20))
WRONG_TYPE = st.one_of(st.none(), st.integers(), st.floats(), st.booleans(), st.lists(st.integers(), max_size=2),
                       st.dictionaries(st.text(max_size=3), st.integers(), max_size=2))
FIELD = st.one_of(TEXT, TEXT, WRONG_TYPE)
ROLE = st.fixed_dictionaries({}, optional={"id": st.one_of(st.integers(-5, 10_000), st.text(max_size=4)),
                                           "name": FIELD})


@st.composite
def api_users(draw: st.DrawFn, user_id: int) -> dict[str, Any]:
    """One hostile user object in the shape of GET /user (any key may be missing or mistyped)."""
    record: dict[str, Any] = {"id": user_id}
    for key in ("email", "username", "first_name", "last_name", "job_title", "telephone", "status", "type"):
        if draw(st.booleans()) or key == "email":
            record[key] = draw(FIELD)
    record["last_login_date"] = draw(DATES)
    record["access_roles"] = draw(st.one_of(st.lists(st.one_of(ROLE, WRONG_TYPE), max_size=3), WRONG_TYPE))
    record["container"] = draw(st.one_of(
        st.fixed_dictionaries({"id": st.integers(1, 9), "name": FIELD, "parent_id": st.sampled_from([0, 1, None])}),
        WRONG_TYPE))
    record["has_container_assignments"] = draw(st.one_of(st.booleans(), WRONG_TYPE))
    record["container_assignments"] = draw(st.one_of(st.lists(st.fixed_dictionaries(
        {"id": st.integers(1, 9), "name": FIELD}), max_size=2), WRONG_TYPE))
    record["account_id"] = draw(st.one_of(st.integers(0, 2**62), WRONG_TYPE, TEXT))
    record["is_saml_sso_only"] = draw(st.one_of(st.booleans(), WRONG_TYPE))
    return record


def user_lists(min_size: int = 1, max_size: int = 6) -> st.SearchStrategy[list[dict[str, Any]]]:
    return st.lists(st.integers(1, 40), min_size=min_size, max_size=max_size, unique=True).flatmap(
        lambda ids: st.tuples(*(api_users(i) for i in ids)).map(list)
    )


def snapshot_of(records: list[dict[str, Any]], snapshot_id: int, *, taken_at: datetime = NOW) -> Snapshot:
    users = tuple(User.from_api(record) for record in records)
    digests = (("/user?limit=500&offset=0", hashlib.sha256(b"").hexdigest()),)
    return make_snapshot(users, snapshot_id=snapshot_id, taken_at=taken_at, notes=(SCRIPT,), page_digests=digests)


# --- parser ------------------------------------------------------------------------------------


@given(record=st.integers(-10, 10**12).flatmap(api_users))
@settings(max_examples=examples(300), deadline=None)
def test_parser_keeps_hostile_values_as_text_and_never_crashes(record: dict[str, Any]) -> None:
    user = User.from_api(record)
    for name in ("email", "username", "first_name", "last_name", "status", "job_title", "telephone", "user_type"):
        assert isinstance(getattr(user, name), str)
    first = record.get("first_name")
    if isinstance(first, str):
        # Stored as-is; only lone surrogates (no UTF-8 form, so no report could hold them) become U+FFFD.
        assert user.first_name == "".join("\ufffd" if 0xD800 <= ord(c) <= 0xDFFF else c for c in first)
        user.first_name.encode("utf-8")
    assert user.last_login is None or user.last_login.tzinfo is not None


@pytest.mark.parametrize("role_id", ["²", "٣", "1²", "-", " "])
def test_non_ascii_digits_in_an_id_are_unknown_not_a_crash(role_id: str) -> None:
    """str.isdigit() accepts "²" and Arabic-Indic digits, which int() rejects: found by hypothesis."""
    user = User.from_api({"id": 1, "email": "a@example.com", "access_roles": [{"id": role_id, "name": "Manager"}]})
    assert [role.name for role in user.roles] == ["Manager"]


def test_parser_takes_a_megabyte_name_and_future_dates_as_they_are() -> None:
    big = "A" * 1_000_000 + SCRIPT
    user = User.from_api({"id": 7, "first_name": big, "last_login_date": "2099-01-01T00:00:00+00:00",
                          "status": "💀 suspended", "access_roles": [{"id": 99, "name": "Quantum Admin"}]})
    assert user.first_name == big and user.status == "💀 suspended" and user.last_login is not None
    assert user.last_login.year == 2099 and user.role_names == "Quantum Admin" and not user.is_admin
    assert User.from_api({"id": 8, "last_login_date": "yesterday"}).last_login is None
    with pytest.raises(ValueError, match="numeric 'id'"):
        User.from_api({"id": "<script>", "email": "x"})


# --- diff and spreadsheets -----------------------------------------------------------------------


def assert_csv_neutralised(data: bytes) -> list[list[str]]:
    text = data.decode("utf-8")
    assert text.startswith("\ufeff")
    csv.field_size_limit(10_000_000)  # megabyte names are data too
    rows = list(csv.reader(io.StringIO(text[1:], newline="")))
    for row in rows[1:]:
        for cell in row:
            assert not cell.startswith(exports.FORMULA_TRIGGERS), f"formula reaches the spreadsheet: {cell!r}"
    return rows


@given(old=user_lists(), new=user_lists())
@settings(max_examples=examples(60), deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
def test_diff_and_exports_of_hostile_users(old: list[dict[str, Any]], new: list[dict[str, Any]]) -> None:
    before, after = snapshot_of(old, 1, taken_at=NOW - timedelta(days=30)), snapshot_of(new, 2)
    assert diff_snapshots(after, after).is_empty
    changes = diff_snapshots(before, after)
    assert {c.user_id for c in changes.changes} <= {u.id for u in (*before.users, *after.users)}
    roster = assert_csv_neutralised(exports.roster_csv(after))
    assert len(roster) == len(after.users) + 1, "a hostile value split or swallowed a row"
    changed = assert_csv_neutralised(exports.changes_csv(changes))
    assert len(changed) == len(changes.changes) + 1
    json.loads(exports.changes_json(changes))
    json.loads(exports.snapshot_json(after))
    workbook = exports.workbook_xlsx(
        {"Roster": (exports.ROSTER_HEADER, exports.roster_rows(after)),
         "Changes": (exports.CHANGES_HEADER, exports.changes_rows(changes))},
        created=NOW,
    )
    from openpyxl import load_workbook

    book = load_workbook(io.BytesIO(workbook))
    for sheet in book.worksheets:
        for row in sheet.iter_rows():
            for cell in row:
                assert cell.data_type != "f", f"formula cell {cell.coordinate}: {cell.value!r}"
    with zipfile.ZipFile(io.BytesIO(workbook)) as archive:
        for name in archive.namelist():
            assert b"<f>" not in archive.read(name), name


# --- the HTML and PDF reports --------------------------------------------------------------------


class Tags(HTMLParser):
    """What a browser would build: the tags and the event-handler attributes."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: dict[str, int] = {}
        self.handlers: list[tuple[str, str]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags[tag] = self.tags.get(tag, 0) + 1
        self.handlers += [(tag, name) for name, _value in attrs if name.startswith("on")]


def report_data(records: list[dict[str, Any]], previous: list[dict[str, Any]] | None = None) -> ReportData:
    snapshot = snapshot_of(records, 2)
    before = snapshot_of(previous, 1, taken_at=NOW - timedelta(days=30)) if previous is not None else None
    findings = evaluate(snapshot, previous=before, history={}, config=default_config(), attestations=(), now=NOW)
    changes = diff_snapshots(before, snapshot) if before else ChangeSet(from_snapshot=None, to_snapshot=2)
    return ReportData(
        account_name=SCRIPT, account_id=1, base_url="https://www.digicert.com/services/v2", instance="US",
        snapshot=snapshot, previous=before, changes=changes, findings=findings, history={}, trend=(),
        mfa_attestation=None, review_attestation=None, report_id="CCA-1", generated_at=NOW, tool_version="test",
        frameworks=findings.profiles, raw_sha256="0" * 64,
    )


def structure(html: str) -> Tags:
    parser = Tags()
    parser.feed(html)
    parser.close()
    return parser


BENIGN = structure(render_html(report_data([{"id": 1, "email": "a@example.com", "first_name": "Ann"}])))


@given(records=user_lists(1, 5), previous=user_lists(0, 4))
@settings(max_examples=examples(25), deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
def test_html_report_never_injects(records: list[dict[str, Any]], previous: list[dict[str, Any]]) -> None:
    html = render_html(report_data(records, previous))
    found = structure(html)
    assert found.tags.get("script") == BENIGN.tags.get("script"), "data added a <script>"
    assert found.handlers == BENIGN.handlers, f"data added event handlers: {found.handlers}"
    for tag in ("img", "svg", "iframe"):
        assert found.tags.get(tag, 0) == BENIGN.tags.get(tag, 0), f"data added <{tag}>"
    assert "<script>alert" not in html and "<img src=x" not in html


def test_pdf_report_renders_hostile_users_as_text() -> None:
    from pypdf import PdfReader

    records = [
        {"id": 1, "email": "=cmd|' /C calc'!A0@example.com", "first_name": SCRIPT, "last_name": "\u202eevil",
         "status": "💀", "access_roles": [{"id": 1, "name": "Administrator"}], "last_login_date": "garbage"},
        {"id": 2, "email": "b@example.com", "first_name": "x" * 2_000 + "\x00\x1b[2J", "last_name": 42,
         "access_roles": [{"id": 4242, "name": IMG}], "last_login_date": "2099-01-01T00:00:00+00:00"},
    ]
    pdf = render_pdf(report_data(records, [records[1]]), roster_limit=10)
    assert pdf.startswith(b"%PDF")
    text = "".join(page.extract_text() or "" for page in PdfReader(io.BytesIO(pdf)).pages)
    assert "alert('x')" in text, "the hostile name should be shown as text"


# --- end to end: hostile values from "CertCentral" through the real CLI ---------------------------

HOSTILE_USERS = [
    {"first_name": "M" * 1_000_000, "last_name": SCRIPT},
    {"first_name": IMG, "email": "=HYPERLINK(\"http://evil\")@example.com", "status": "\u202eevitca"},
    {"first_name": "nul\x00byte", "last_name": "\x1b]0;pwned\x07", "job_title": 12345},
    {"first_name": 3.14, "last_name": ["list"], "email": {"an": "object"}, "status": None},
    {"access_roles": [{"id": 777, "name": "Supreme Overlord"}], "status": "💀 frozen",
     "last_login_date": "2099-12-31T23:59:59+00:00"},
    {"last_login_date": "last Tuesday", "telephone": "+1 (555) =1+1"},
    {"first_name": "lone \ud800 surrogate", "last_name": "\udfff"},
]


def hostile_page(
    path: str, status: int, _headers: dict[str, str], body: bytes
) -> tuple[int, dict[str, str], bytes] | None:
    if not urlsplit(path).path.endswith("/user") or status != 200:
        return None
    page = json.loads(body)
    # Leave administrators alone (the key's own user among them); give the others hostile values.
    others = [user for user in page["users"] if all(role.get("id") != 1 for role in user.get("access_roles", []))]
    assert len(others) >= len(HOSTILE_USERS)
    for user, hostile in zip(others, HOSTILE_USERS, strict=False):
        user.update(hostile)
    return json_answer(200, page)


def test_hostile_values_end_to_end(home: AuditorHome, tmp_path: Path) -> None:
    with SandboxServer(Dataset.generate(30, seed=6), faults=Faults(rate_limits=())) as server, \
            RewritingProxy(server.base_url) as proxy:
        connect_to(home, proxy.base_url)
        assert home.run("pull").returncode == 0
        proxy.rewrite = hostile_page
        pulled = home.run("pull")
        assert pulled.returncode == 0, pulled.stderr
        assert "INCOMPLETE" not in pulled.stderr
    results = {
        "diff": home.run("diff"),
        "diff-csv": home.run("diff", "--format", "csv"),
        "findings": home.run("findings"),
        "report": home.run("report", "--format", "html", "--output", str(tmp_path / "r")),
        "export": home.run("export", "--no-reports", "--output", str(tmp_path / "e.zip")),
    }
    for name, result in results.items():
        assert result.returncode == 0, (name, result.stderr)
        assert "Traceback" not in result.stderr
    for name in ("diff", "findings"):  # terminal text: control characters are shown escaped
        for raw in ("\x1b", "\x00", "\u202e", "\x07"):
            assert raw not in results[name].stdout, (name, repr(raw))
    assert "\\u202e" in results["diff"].stdout
    assert_csv_neutralised(results["diff-csv"].stdout.encode())
    [html_file] = (tmp_path / "r").glob("*.html")
    html = html_file.read_text()
    found = structure(html)
    assert found.tags.get("script") == 1 and not found.handlers and "img" not in found.tags
    assert "M" * 1_000_000 in html, "the megabyte name is kept, not truncated silently"
    (tmp_path / "signer.pem").write_text(home.run("keys", "public").stdout)
    verify = home.run("verify", str(tmp_path / "e.zip"), "--public-key", str(tmp_path / "signer.pem"))
    assert verify.returncode == 0, verify.stdout
