"""The HTML report: content, escaping, determinism, CSP, file writing, and real-browser behaviour."""

from __future__ import annotations

import base64
import hashlib
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import replace
from html import unescape
from pathlib import Path

import pytest
from report_fixtures import XSS_NAME, make_report_data
from support import CHROMIUM

from auditor.errors import ReportError
from auditor.report import (
    ReportData,
    ReportFormat,
    default_templates_dir,
    render_html,
    report_basename,
    write_reports,
)
from auditor.rules import TWO_FA_LIMITATION


@pytest.fixture(scope="module")
def data() -> ReportData:
    return make_report_data()


@pytest.fixture(scope="module")
def html(data: ReportData) -> str:
    return render_html(data)


# --- the HTML string -------------------------------------------------------------------


def test_api_values_are_escaped(html: str) -> None:
    assert XSS_NAME not in html
    assert "&lt;img src=x onerror=alert(1)&gt;" in html
    assert "<script>alert(2)</script>" not in html
    assert "<script>alert(3)</script>" not in html
    assert "Stale account <b>" not in html
    assert "Exämple Corp &lt;Prod&gt;" in html
    # The only script element is our own.
    assert html.count("<script") == 1


def test_same_data_gives_same_bytes(html: str) -> None:
    again = render_html(make_report_data())
    assert again.encode() == html.encode()


def test_different_data_gives_different_bytes(html: str) -> None:
    assert render_html(make_report_data(review=True)) != html


def test_csp_allows_exactly_the_inline_script(html: str) -> None:
    match = re.search(r'<meta http-equiv="Content-Security-Policy" content="([^"]+)">', html)
    assert match, "no CSP meta tag"
    policy = match.group(1)
    assert "default-src 'none'" in policy
    assert "style-src 'unsafe-inline'" in policy
    assert "img-src data:" in policy
    script = re.search(r"<script>(.*?)</script>", html, re.S)
    assert script
    digest = base64.b64encode(hashlib.sha256(script.group(1).encode()).digest()).decode()
    assert f"script-src 'sha256-{digest}'" in policy


def test_self_contained(html: str) -> None:
    assert "<link" not in html
    assert not re.search(r"<[^>]*\s(src|href)=\"?(https?:|//)", html)
    assert not re.search(r"<[^>]*\ssrc=", html)
    assert "@import" not in html
    assert not re.search(r"url\(\s*['\"]?(https?:|//)", html)


def test_content_sections_and_statements(html: str, data: ReportData) -> None:
    for heading in ("Summary at a glance", "Findings", "Changes since the previous snapshot", "Privileged access",
                    "Limitations", "Appendix", "Methodology", "Provenance"):
        assert f">{heading}</h" in html
    assert "does not expose whether each user has 2FA set up" in html
    assert "Rita Reviewer &lt;rita@example.com&gt;" in html  # the MFA attestation on record
    assert "only reads from CertCentral" in html
    assert data.raw_sha256 in html
    assert "SHA256:3f9a1c0be2d4" in html
    assert "<svg" in html and "<title id=\"trend-title\">" in html
    # suppressed finding with reason, owner and expiry; stale exception listed
    assert "Seasonal contractor; access reviewed with HR" in html
    assert "2027-01-31" in html
    assert "nobody@example.com" in html
    # an expired exception is said plainly
    assert "expired on 2026-10-01" in html


def test_findings_worst_first(html: str) -> None:
    section = html.split('id="t-findings"', 1)[1].split("</table>", 1)[0]
    order = re.findall(r'<td class="sv sv-(\w+)">', section)
    ranks = ["critical", "high", "medium", "low", "info"]
    assert order == sorted(order, key=ranks.index)
    assert order[0] == "critical"


def test_escalation_to_administrator_listed_first(html: str) -> None:
    section = html.split('id="t-changes"', 1)[1].split("</table>", 1)[0]
    rows = re.findall(r"<tr class=\"g-(\w+)\">", section)
    assert rows[0] == "admin"
    assert rows[1] == "escalation"
    assert "signin" not in rows  # activity, not access: in its own collapsed table


def test_no_signoff_leaves_lines_to_sign(html: str) -> None:
    assert "No review of this snapshot is on record" in html
    signed = render_html(make_report_data(review=True))
    assert "Sam Signer &lt;sam@example.com&gt;" in signed
    assert "No review of this snapshot is on record" not in signed


def test_partial_and_incomplete_views_are_stated() -> None:
    text = render_html(make_report_data(restricted=True, complete=False, mfa=False))
    assert "Partial view." in text
    assert "Incomplete snapshot." in text
    assert "No 2FA attestation is on record" in text
    assert "Whole account" not in render_html(make_report_data(restricted=True))


def test_report_basename(data: ReportData) -> None:
    assert report_basename(data) == "certcentral-access-review-example-corp-prod-2026-11-01"


def test_every_report_format_has_a_value() -> None:
    assert [fmt.value for fmt in ReportFormat] == ["html", "pdf"]


def test_write_reports_refuses_to_overwrite(tmp_path: Path, data: ReportData) -> None:
    (path,) = write_reports(data, formats=[ReportFormat.HTML], output_dir=tmp_path)
    assert path.name == report_basename(data) + ".html"
    assert path.read_text(encoding="utf-8") == render_html(data)
    path.write_text("old", encoding="utf-8")
    with pytest.raises(ReportError) as caught:
        write_reports(data, formats=[ReportFormat.HTML], output_dir=tmp_path)
    assert path.name in caught.value.message
    assert "--overwrite" in caught.value.diagnostics()
    assert path.read_text(encoding="utf-8") == "old"
    write_reports(data, formats=[ReportFormat.HTML], output_dir=tmp_path, overwrite=True)
    assert path.read_text(encoding="utf-8") != "old"
    assert [p.name for p in tmp_path.iterdir()] == [path.name]  # no temporary files left


def test_write_reports_unwritable_directory(tmp_path: Path, data: ReportData) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory", encoding="utf-8")
    with pytest.raises(ReportError, match=r"could not be created|not a writable directory"):
        write_reports(data, formats=[ReportFormat.HTML], output_dir=blocker / "sub")


def test_template_problems_become_report_errors(tmp_path: Path, data: ReportData) -> None:
    custom = tmp_path / "templates"
    shutil.copytree(default_templates_dir(), custom)
    (custom / "_summary.html.j2").write_text("{% if %}", encoding="utf-8")
    with pytest.raises(ReportError, match=re.escape("_summary.html.j2")):
        render_html(data, templates_dir=custom)
    (custom / "_summary.html.j2").write_text("{{ no_such_value }}", encoding="utf-8")
    with pytest.raises(ReportError, match="no_such_value"):
        render_html(data, templates_dir=custom)
    with pytest.raises(ReportError, match="does not exist"):
        render_html(data, templates_dir=tmp_path / "missing")


def test_custom_templates_are_used(tmp_path: Path, data: ReportData) -> None:
    custom = tmp_path / "templates"
    shutil.copytree(default_templates_dir(), custom)
    limits = custom / "_limitations.html.j2"
    limits.write_text(limits.read_text(encoding="utf-8").replace("stated plainly", "CUSTOMISED"),
                      encoding="utf-8")
    assert "CUSTOMISED" in render_html(data, templates_dir=custom)


def test_importing_the_package_does_not_load_weasyprint() -> None:
    code = "import sys, auditor.report; print('weasyprint' in sys.modules, 'jinja2' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]


# --- real Chromium ------------------------------------------------------------------------

browser_only = pytest.mark.skipif(not CHROMIUM.exists(), reason="Debian's chromium is not at /usr/bin/chromium")


@pytest.fixture(scope="module")
def report_file(tmp_path_factory: pytest.TempPathFactory, html: str) -> Path:
    path = tmp_path_factory.mktemp("report") / "report.html"
    path.write_text(html, encoding="utf-8")
    return path




class Opened:
    def __init__(self, page: object, requests: list[str], errors: list[str], dialogs: list[str]) -> None:
        self.page = page
        self.requests = requests
        self.errors = errors
        self.dialogs = dialogs


@pytest.fixture
def opened(browser: object, report_file: Path) -> Iterator[Opened]:
    context = browser.new_context()  # type: ignore[attr-defined]
    page = context.new_page()
    requests: list[str] = []
    errors: list[str] = []
    dialogs: list[str] = []
    page.on("request", lambda request: requests.append(request.url))
    page.on("console", lambda message: errors.append(message.text) if message.type in ("error", "warning") else None)
    page.on("pageerror", lambda error: errors.append(str(error)))

    def on_dialog(dialog: object) -> None:
        dialogs.append(dialog.message)  # type: ignore[attr-defined]
        dialog.dismiss()  # type: ignore[attr-defined]

    page.on("dialog", on_dialog)
    page.goto(report_file.as_uri())
    page.wait_for_selector("html[data-ready='1']")
    yield Opened(page, requests, errors, dialogs)
    context.close()


def visible_first_cells(page: object, table: str) -> list[str]:
    return page.eval_on_selector_all(  # type: ignore[attr-defined, no-any-return]
        f"#{table} tbody tr:not([hidden])", "rows => rows.map(r => r.cells[0].textContent.trim())"
    )


def column(page: object, table: str, index: int) -> list[str]:
    return page.eval_on_selector_all(  # type: ignore[attr-defined, no-any-return]
        f"#{table} tbody tr:not([hidden])", f"rows => rows.map(r => r.cells[{index}].textContent.trim())"
    )


@browser_only
@pytest.mark.browser
def test_loads_without_errors_or_network(opened: Opened, report_file: Path) -> None:
    opened.page.wait_for_timeout(200)  # type: ignore[attr-defined]
    assert opened.errors == []
    assert opened.requests == [report_file.as_uri()]
    assert opened.dialogs == []


@browser_only
@pytest.mark.browser
def test_hostile_name_renders_as_text(opened: Opened) -> None:
    page = opened.page
    assert page.locator("img").count() == 0  # type: ignore[attr-defined]
    assert page.locator("script").count() == 1  # type: ignore[attr-defined]
    assert page.get_by_text(XSS_NAME, exact=False).count() >= 1  # type: ignore[attr-defined]
    assert opened.dialogs == []


@browser_only
@pytest.mark.browser
def test_sorting_by_clicking_a_header(opened: Opened) -> None:
    page = opened.page
    header = page.locator("#t-privileged thead th", has_text="Days inactive")  # type: ignore[attr-defined]
    header.click()
    days = column(page, "t-privileged", 5)
    numbers = [int(d) if d else 10**9 for d in days]
    assert numbers == sorted(numbers)
    assert header.get_attribute("aria-sort") == "ascending"
    header.click()
    numbers = [int(d) if d else 10**9 for d in column(page, "t-privileged", 5)]
    assert numbers == sorted(numbers, reverse=True)
    assert numbers[0] == 10**9  # never signed in sorts as the most inactive
    page.locator("#t-roster thead th", has_text="User").click()  # type: ignore[attr-defined]
    page.locator("#t-roster thead th", has_text="User").click()  # type: ignore[attr-defined]
    emails = visible_first_cells(page, "t-roster")
    assert emails == sorted(emails, key=str.lower, reverse=True)


@browser_only
@pytest.mark.browser
def test_filtering_by_text_role_status_and_severity(opened: Opened) -> None:
    from playwright.sync_api import expect

    page = opened.page
    roster_tools = page.locator(".tools[data-table='t-roster']")  # type: ignore[attr-defined]
    assert roster_tools.is_visible()
    roster_tools.locator("input[type=search]").fill("иван")
    # Playwright's expect polls from its own isolated world (the page's CSP forbids eval).
    expect(page.locator("#t-roster tbody tr:not([hidden])")).to_have_count(1)  # type: ignore[attr-defined]
    assert visible_first_cells(page, "t-roster") == ["ivan@example.com"]
    assert "Showing 1 of 14" in roster_tools.locator("output").inner_text()
    roster_tools.locator("input[type=search]").fill("")
    roster_tools.locator("select[data-col='2']").select_option("Administrator")
    assert sorted(visible_first_cells(page, "t-roster")) == [
        "admin@example.com", "alice@example.com", "bob.dormant@example.com", "frank.left@example.com",
        "gina.new@example.com",
    ]
    expect(page.locator("#t-roster tbody tr:not([hidden])")).to_have_count(5)  # type: ignore[attr-defined]
    roster_tools.locator("select[data-col='3']").select_option("inactive")
    assert visible_first_cells(page, "t-roster") == ["frank.left@example.com"]
    # a multi-role user matches each of its roles
    priv_tools = page.locator(".tools[data-table='t-privileged']")  # type: ignore[attr-defined]
    priv_tools.locator("select[data-col='2']").select_option("Standard User")
    assert visible_first_cells(page, "t-privileged") == ["priya@example.com"]
    findings_tools = page.locator(".tools[data-table='t-findings']")  # type: ignore[attr-defined]
    findings_tools.locator("select[data-col='0']").select_option("high")
    assert column(page, "t-findings", 2) == ["bob.dormant@example.com"]
    findings_tools.locator("select[data-col='0']").select_option("")
    findings_tools.locator("select[data-col='1']").select_option("stale-login")
    assert column(page, "t-findings", 2) == ["evil@example.com"]


@browser_only
@pytest.mark.browser
def test_everything_readable_with_javascript_off(browser: object, report_file: Path, html: str) -> None:
    context = browser.new_context(java_script_enabled=False)  # type: ignore[attr-defined]
    try:
        page = context.new_page()
        page.goto(report_file.as_uri())
        for table in ("t-findings", "t-suppressed", "t-changes", "t-privileged", "t-roster"):
            assert page.locator(f"#{table}").is_visible()
            expected = html.split(f'id="{table}"', 1)[1].split("</tbody>", 1)[0].count("<tr")
            assert page.locator(f"#{table} tbody tr:visible").count() == expected - 1  # minus the header row
        assert page.locator(".tools:visible").count() == 0  # no dead controls
    finally:
        context.close()


def test_nul_bytes_from_the_api_never_reach_the_html() -> None:
    # HTML forbids U+0000 anywhere; CertCentral text may still carry it (JSON allows "\u0000").
    data = make_report_data()
    users = list(data.snapshot.users)
    users[0] = replace(users[0], first_name="Nul\x00Byte", email="nul\x00@example.com")
    html = render_html(replace(data, snapshot=replace(data.snapshot, users=tuple(users))))
    assert "\x00" not in html
    assert "Nul\ufffdByte" in html


def test_limitations_state_each_point_once() -> None:
    # The rules restate the provenance (2FA, SAML SSO, pull notes) for text and JSON output; the
    # report states those from the source with the attestation, so a reviewer reads each once.
    data = make_report_data()
    rule_only = "Service users are listed but their API keys are not inspected."
    findings = replace(
        data.findings,
        limitations=(
            TWO_FA_LIMITATION,
            "Whether users sign in only through SAML SSO was not fetched for this snapshot "
            "(pull with --details to see it).",
            rule_only,
        ),
        rule_limitations=(rule_only,),
    )
    html = render_html(replace(data, findings=findings))
    section = html[html.index('id="limitations"') : html.index('id="appendix"')]
    assert section.count("does not expose") == 1
    assert section.count("SAML SSO") == 1
    assert rule_only in section, "what only the rules know must still be shown"


def test_standing_limitations_are_stated_once_each() -> None:
    # Issue 12 §4: completeness, last_login_date, "never signed in", scope and per-user 2FA, once each,
    # also when the snapshot is a partial view (the scope item then carries the key's restriction).
    for data in (make_report_data(), make_report_data(restricted=True, complete=False)):
        html = render_html(data)
        section = unescape(html[html.index('id="limitations"') : html.index('id="appendix"')])
        assert section.count("reconciled to the API's own totals") == 1
        assert section.count("not proven against the CertCentral console") == 1
        assert section.count("last_login_date") == 1
        assert section.count("measured from the first snapshot that saw them") == 1
        assert section.count("scope follows the API key's role and divisions") == 1
        assert section.count("does not expose") == 1
    assert section.count("Partial view.") == 1


def test_pulled_by_names_operator_and_key_owner_or_says_not_recorded() -> None:
    recorded = render_html(make_report_data())
    assert "Pulled by</dt><dd class=\"pulled-by\">auditjob@build-01 with the key of Alice Admin " \
        "&lt;alice@example.com&gt; (Administrator)</dd>" in recorded
    earlier = render_html(make_report_data(earlier_version=True))
    assert "Pulled by</dt><dd class=\"pulled-by\">not recorded (pulled by an earlier version)</dd>" in earlier
    assert "auditjob" not in earlier
