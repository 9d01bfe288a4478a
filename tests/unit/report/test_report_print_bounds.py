"""Issue 15: the printed report is bounded by design; the HTML report keeps every row.

Each long table of the PDF lists its first rows and says how many more the attached file holds;
a long list inside one finding's evidence is cut the same way. These tests read the document
WeasyPrint is given (``render_document(mode="pdf")``): what is not in it is not laid out.
"""

from __future__ import annotations

import re
from dataclasses import replace

from report_fixtures import make_report_data

from auditor.models import ApiKey, Change, ChangeKind, CredentialInventory, Finding, Severity
from auditor.report import ReportData, default_templates_dir, render_html
from auditor.report._render import render_document
from auditor.report._view import PDF_EVIDENCE_ITEMS, printed_evidence


def printed(data: ReportData, **limits: int | None) -> str:
    return render_document(data, templates_dir=default_templates_dir(), mode="pdf", **limits)  # type: ignore[arg-type]


def table_rows(html: str, table_id: str) -> int:
    start = html.index(f'id="{table_id}"')
    return html[start:html.index("</table>", start)].count("<tr") - 1  # minus the header row


def text(html: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", "", html))


def with_joiners_and_keys(count: int) -> ReportData:
    data = make_report_data(extra_users=120)
    joiners = tuple(Change(ChangeKind.ADDED, 7000 + i, f"joiner{i}@example.com", "", "User") for i in range(count))
    keys = tuple(ApiKey(900 + i, f"key {i}", owner_id=1001, status="active") for i in range(count))
    snapshot = replace(data.snapshot, credentials=CredentialInventory(keys=keys, ip_rules=(), guest_access=False))
    return replace(data, snapshot=snapshot, changes=replace(data.changes, changes=(*data.changes.changes, *joiners)))


def test_each_long_table_prints_its_first_rows_and_names_the_file_with_the_rest() -> None:
    data = with_joiners_and_keys(30)
    access = sum(1 for c in data.changes.changes if c.kind is not ChangeKind.SIGNED_IN
                 and c.kind is not ChangeKind.FIRST_SIGN_IN)
    privileged = sum(1 for u in data.snapshot.users if u.is_admin or u.is_manager)
    html = printed(data, table_limit=3, roster_limit=4)
    words = text(html)
    assert table_rows(html, "t-changes") == 3
    assert f"{access} access changes between snapshot" in words, "the count is of them all"
    assert f"{access - 3} more access changes are listed in the attached changes.csv" in words
    assert table_rows(html, "t-privileged") == 3
    assert f"Every Administrator and Manager ({privileged})" in words
    assert f"{privileged - 3} more privileged users are listed in the attached privileged.csv" in words
    assert table_rows(html, "t-keys") == 3
    assert "30 keys listed, 30 active" in words
    assert "27 more API keys are listed in the attached keys.csv" in words
    assert table_rows(html, "t-roster") == 4
    assert "The full roster is attached to this PDF as roster.csv" in words


def test_the_html_report_keeps_every_row() -> None:
    data = with_joiners_and_keys(30)
    html = render_html(data)
    assert table_rows(html, "t-keys") == 30
    assert table_rows(html, "t-privileged") == sum(1 for u in data.snapshot.users if u.is_admin or u.is_manager)
    assert table_rows(html, "t-roster") == len(data.snapshot.users)
    assert "more access changes are listed" not in html and "attached privileged.csv" not in html


def test_a_table_within_its_limit_says_nothing_more() -> None:
    html = printed(with_joiners_and_keys(2))
    assert "more API keys" not in html and "more access changes" not in html
    assert "more privileged users" not in html


def test_a_long_list_in_a_findings_evidence_is_cut_in_print_only() -> None:
    who = ", ".join(f"admin{i}@example.com" for i in range(40))
    finding = Finding("too-many-admins", Severity.HIGH, "Too many Administrators", "The account has 40.",
                      "Reduce them.", evidence=(("who", who),))
    data = make_report_data()
    data = replace(data, findings=replace(data.findings, findings=(*data.findings.findings, finding)))
    words = text(printed(data))
    shown = ", ".join(f"admin{i}@example.com" for i in range(PDF_EVIDENCE_ITEMS))
    assert f"who: {shown} and {40 - PDF_EVIDENCE_ITEMS} more (all in the attached findings.csv)" in words
    assert "admin39@example.com" not in words
    assert "admin39@example.com" in render_html(data)
    assert printed_evidence("a, b") == "a, b"
