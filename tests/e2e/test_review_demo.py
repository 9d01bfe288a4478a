"""The demo runs an access review campaign on the sample account (issue 14)."""

from __future__ import annotations

import html
import re
import zipfile

from support import DemoRun


def test_the_demo_campaign_shows_one_revoke_remediated_by_month_5_and_one_overdue(demo_run: DemoRun) -> None:
    out, result = demo_run.output, demo_run.result
    assert result.returncode == 0, result.stderr
    assert "Opened access review campaign 1 of snapshot 4" in result.stdout + result.stderr
    assert "Closed campaign 1: review attestation" in result.stdout + result.stderr
    (report,) = (out / "reports").glob("*2026-11-01.html")
    page = report.read_text(encoding="utf-8")
    start = page.index('<section id="review"')
    section = re.sub(r"\s+", " ", html.unescape(re.sub(r"<[^>]+>", " ", page[start : page.index("</section>", start)])))
    assert "Access review campaign #1 of snapshot #4 (closed" in section
    assert "1 remediated; 1 overdue" in section
    assert "Nadia Engineering-Owner" in section and "Omar Commercial-Owner" in section
    findings = page[page.index('id="findings"') :]
    assert "revocation-overdue" in findings and "oliver.grant@example.com" in findings
    (bundle,) = (out / "evidence").glob("*2026-11-01-s5.zip")
    with zipfile.ZipFile(bundle) as archive:
        worksheets = [n for n in archive.namelist() if n.startswith("review/campaign-1/worksheets/")]
    assert len(worksheets) == 2
