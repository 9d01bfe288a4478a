"""The HTML report in real Chromium at 400 px and 1,400 px (and its print layout): readable, nothing
overlapping, no number clipped. Screenshots of each width are written for a person to look at."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest
from report_fixtures import make_report_data
from support import CHROMIUM

from auditor.report import TrendPoint, render_html

#: Wide numbers in every column, so a clipped cell shows as a wrong number.
TREND = tuple(
    TrendPoint(datetime(2026, month, 1, tzinfo=UTC), 10_000 + month, 11 + month, 100 + month, 1_000 + month)
    for month in (7, 8, 9, 10, 11)
)

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="Debian's chromium is not at /usr/bin/chromium"),
]

#: Every text-bearing cell box of the findings and trend tables (and the cover's action list), with
#: whether its content is clipped: scrollWidth beyond clientWidth, or the box cut by an ancestor.
BOXES = """
(selector) => {
  const out = [];
  for (const el of document.querySelectorAll(selector)) {
    const r = el.getBoundingClientRect();
    if (r.width === 0 && r.height === 0) continue;
    // A header row kept for screen readers only (the narrow cards) is not on screen.
    const head = el.closest('thead');
    if (head && getComputedStyle(head).position === 'absolute') continue;
    let clippedBy = null;
    for (let a = el.parentElement; a; a = a.parentElement) {
      const s = getComputedStyle(a);
      const clips = s.overflowX !== 'visible' || s.contain.includes('paint') || s.contentVisibility === 'auto';
      if (!clips) continue;
      const ar = a.getBoundingClientRect();
      if (r.left < ar.left - 0.5 || r.right > ar.right + 0.5) { clippedBy = a.tagName + '.' + a.className; break; }
    }
    out.push({text: el.textContent.trim().slice(0, 40), x0: r.left, y0: r.top, x1: r.right, y1: r.bottom,
              overflow: el.scrollWidth > el.clientWidth + 1, clippedBy: clippedBy,
              table: el.closest('table') ? el.closest('table').id || el.closest('table').className : ''});
  }
  return out;
}
"""
CELLS = "#t-findings td, #t-findings th, table.trend-table td, table.trend-table th, .action-list li"


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("widths") / "report.html"
    data = replace(make_report_data(review=True), trend=TREND)
    path.write_text(render_html(data), encoding="utf-8")
    return path




def open_at(browser: object, report: Path, width: int, *, media: str = "screen") -> object:
    page = browser.new_page(viewport={"width": width, "height": 900})  # type: ignore[attr-defined]
    page.emulate_media(media=media)
    page.goto(report.as_uri())
    page.wait_for_selector("html[data-ready='1']")
    # Off-screen sections are laid out lazily (content-visibility); scroll through to lay them out.
    page.evaluate("document.querySelectorAll('main > section').forEach(s => s.scrollIntoView())")
    page.evaluate("window.scrollTo(0, 0)")
    return page


def overlaps(boxes: list[dict[str, object]]) -> list[tuple[str, str]]:
    found = []
    for index, a in enumerate(boxes):
        for b in boxes[index + 1:]:
            dx = min(a["x1"], b["x1"]) - max(a["x0"], b["x0"])  # type: ignore[operator]
            dy = min(a["y1"], b["y1"]) - max(a["y0"], b["y0"])  # type: ignore[operator]
            if dx > 1 and dy > 1:
                found.append((str(a["text"]), str(b["text"])))
    return found


@pytest.mark.parametrize("width", [400, 1400])
def test_no_cell_overlaps_another_and_nothing_is_clipped(browser: object, report: Path, width: int,
                                                         tmp_path_factory: pytest.TempPathFactory) -> None:
    page = open_at(browser, report, width)
    try:
        boxes = page.evaluate(BOXES, CELLS)  # type: ignore[attr-defined]
        assert len(boxes) > 40
        cells = [b for b in boxes if b["table"] != ""]
        assert not overlaps(cells), overlaps(cells)[:5]
        clipped = [b for b in boxes if b["overflow"] or b["clippedBy"]]
        assert not clipped, clipped[:5]
        # No horizontal scrolling of the page: everything reflows into the viewport.
        assert page.evaluate("document.documentElement.scrollWidth") <= width  # type: ignore[attr-defined]
    finally:
        shots = tmp_path_factory.mktemp(f"shots-{width}")
        page.screenshot(path=str(shots / f"report-{width}.png"), full_page=True)  # type: ignore[attr-defined]
        page.close()  # type: ignore[attr-defined]


def test_narrow_findings_are_cards_with_labels(browser: object, report: Path) -> None:
    page = open_at(browser, report, 400)
    try:
        display = page.evaluate(  # type: ignore[attr-defined]
            "getComputedStyle(document.querySelector('#t-findings tbody tr')).display"
        )
        assert display == "block"
        label = page.evaluate(  # type: ignore[attr-defined]
            "getComputedStyle(document.querySelector('#t-findings td[data-label=\"User\"]'), '::before').content"
        )
        assert label == '"User: "'
        wide = open_at(browser, report, 1400)
        try:
            assert wide.evaluate(  # type: ignore[attr-defined]
                "getComputedStyle(document.querySelector('#t-findings tbody tr')).display"
            ) == "table-row"
        finally:
            wide.close()  # type: ignore[attr-defined]
    finally:
        page.close()  # type: ignore[attr-defined]


@pytest.mark.parametrize("width", [400, 1400])
def test_trend_numbers_are_whole(browser: object, report: Path, width: int) -> None:
    # Issue 16: at 400 px the trend table was clipped, so that 11 administrators read as "1".
    page = open_at(browser, report, width)
    try:
        cells = page.evaluate(BOXES, "table.trend-table td.n")  # type: ignore[attr-defined]
        assert cells
        viewport = page.evaluate("document.documentElement.clientWidth")  # type: ignore[attr-defined]
        for cell in cells:
            assert not cell["overflow"] and not cell["clippedBy"], cell
            assert cell["x1"] <= viewport, cell
        numbers = [cell["text"] for cell in cells]
        expected = [str(v) for p in TREND for v in (p.users, p.admins, p.stale, p.findings)]
        assert numbers == expected
    finally:
        page.close()  # type: ignore[attr-defined]


def test_printed_html_shows_findings_as_cards(browser: object, report: Path) -> None:
    page = open_at(browser, report, 1000, media="print")
    try:
        assert page.evaluate(  # type: ignore[attr-defined]
            "getComputedStyle(document.querySelector('#t-findings tbody tr')).display"
        ) == "block"
        boxes = page.evaluate(BOXES, "#t-findings td")  # type: ignore[attr-defined]
        assert not overlaps(boxes)
    finally:
        page.close()  # type: ignore[attr-defined]
