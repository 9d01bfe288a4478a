"""The HTML report passes axe-core's WCAG 2.1 A/AA checks in real Chromium, colour contrast included.

axe-core comes from the npm registry into ``tests/js/`` (``npm ci --prefix tests/js``; ``.ci/run``
does it). The report's CSP allows only its own script, so the test's browser context bypasses the
CSP to inject ``axe.min.js``; the report itself is unchanged. Sections off screen are skipped by
``content-visibility: auto`` until scrolled near, so the test makes them visible first: otherwise
axe could not compute their colours and would pass them untested.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from report_fixtures import make_report_data
from support import CHROMIUM, TESTS, DemoRun

from auditor.report import render_html

AXE = TESTS / "js" / "node_modules" / "axe-core" / "axe.min.js"
TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="Debian's chromium is not at /usr/bin/chromium"),
    pytest.mark.skipif(not AXE.exists(), reason="axe-core is not installed: run npm ci --prefix tests/js"),
]




@pytest.fixture(scope="module")
def fixture_report(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("a11y") / "report.html"
    path.write_text(render_html(make_report_data()), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def long_report(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Long enough that the roster shows one window of rows and its "Show more" buttons."""
    path = tmp_path_factory.mktemp("a11y-long") / "report.html"
    path.write_text(render_html(make_report_data(extra_users=300)), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def demo_report(demo_run: DemoRun) -> Path:
    reports = sorted((demo_run.output / "reports").glob("*.html"))
    assert reports, "the demo wrote no HTML report"
    return reports[-1]


def axe(browser: Any, report: Path, *, width: int = 1400, rules: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """axe-core's violations for the report as a reader sees it at ``width`` px, script enabled."""
    context = browser.new_context(bypass_csp=True, viewport={"width": width, "height": 900})
    try:
        page = context.new_page()
        page.goto(report.as_uri())
        page.wait_for_selector("html[data-ready='1']")
        page.add_style_tag(content="main > section { content-visibility: visible !important; }")
        page.add_script_tag(path=str(AXE))
        options = {"runOnly": {"type": "tag", "values": TAGS}, "resultTypes": ["violations"]}
        if rules:
            options = {"runOnly": {"type": "rule", "values": list(rules)}, "resultTypes": ["violations"]}
        result = page.evaluate("options => axe.run(document, options)", options)
        return result["violations"]  # type: ignore[no-any-return]
    finally:
        context.close()


def describe(violations: list[dict[str, Any]]) -> str:
    return json.dumps(
        [
            {"rule": v["id"], "impact": v["impact"], "help": v["help"],
             "nodes": [(n["target"], n.get("failureSummary", "")[:200]) for n in v["nodes"][:5]]}
            for v in violations
        ],
        indent=1,
        ensure_ascii=False,
    )


@pytest.mark.parametrize("which", ["fixture_report", "long_report", "demo_report"])
@pytest.mark.parametrize("width", [1400, 400])
def test_no_serious_or_critical_accessibility_violations(
    browser: Any, which: str, width: int, request: pytest.FixtureRequest
) -> None:
    report = request.getfixturevalue(which)
    if which == "long_report":
        assert report.read_text(encoding="utf-8").count("<tr") > 300  # the pager is there to test
    violations = axe(browser, report, width=width)
    serious = [v for v in violations if v["impact"] in ("serious", "critical")]
    assert serious == [], describe(serious)
    # Colour contrast (WCAG AA 1.4.3) is one of the rules run above (tag wcag2aa), checked here at
    # any impact: a run of that rule alone found what this run finds, at the cost of a second axe run.
    contrast = [v for v in violations if v["id"] == "color-contrast"]
    assert contrast == [], describe(contrast)
