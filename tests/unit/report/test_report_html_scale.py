"""The HTML report at 10,000 users in real Chromium: sorting and filtering still work, a window of
rows is on screen, and every row comes back in the chosen order for print and "Show all".

No timings here (they are in ``bench/bench_report_sort.py``); these tests check behaviour only.
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from report_fixtures import base_users, make_report_data
from support import CHROMIUM

from auditor.report import render_html

USERS = 10_000
WINDOW = 200

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="Debian's chromium is not at /usr/bin/chromium"),
]

#: (email, rendered on screen) of every roster row, in document order.
ROWS = "rows => rows.map(r => [r.cells[0].textContent.trim(), r.getClientRects().length > 0])"


@pytest.fixture(scope="module")
def report_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    data = make_report_data(extra_users=USERS - len(base_users()))
    path = tmp_path_factory.mktemp("big") / "report.html"
    path.write_text(render_html(data), encoding="utf-8")
    return path


@pytest.fixture
def page(report_file: Path, browser: Any) -> Iterator[Any]:
    page = browser.new_page(viewport={"width": 1400, "height": 900})
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.goto(report_file.as_uri())
    page.wait_for_selector("html[data-ready='1']")
    page.locator("#t-roster").scroll_into_view_if_needed()
    yield page
    page.close()
    assert errors == []


def roster(page: Any) -> list[tuple[str, bool]]:
    return [tuple(pair) for pair in page.eval_on_selector_all("#t-roster tbody tr", ROWS)]


def emails_in_file(path: Path) -> list[str]:
    """The roster's first cells as the file holds them (every row, what a reader without JS sees)."""
    text = path.read_text(encoding="utf-8")
    body = text[text.index('id="t-roster"'):]
    body = body[body.index("<tbody>"):body.index("</tbody>")]
    return [html.unescape(cell) for cell in re.findall(r"<tr><td>([^<]*)</td>", body)]


def test_sorting_10000_rows_orders_all_and_shows_the_first_window(page: Any, report_file: Path) -> None:
    everyone = emails_in_file(report_file)
    assert len(everyone) == USERS  # the file holds every row
    # With JavaScript, the first window is in the page and the rest waits outside it.
    assert roster(page) == [(email, True) for email in everyone[:WINDOW]]
    expected = sorted(everyone, key=str.lower, reverse=True)

    header = page.locator("#t-roster thead th", has_text="User")
    header.click()
    header.click()
    assert header.get_attribute("aria-sort") == "descending"
    assert roster(page) == [(email, True) for email in expected[:WINDOW]]
    assert f"Rows 1–{WINDOW} of {USERS}" in page.locator("#t-roster + .pager").inner_text()

    # Printing (the browser fires beforeprint) puts every row back, in the chosen order.
    page.evaluate("() => window.dispatchEvent(new Event('beforeprint'))")
    page.emulate_media(media="print")
    assert roster(page) == [(email, True) for email in expected]
    assert not page.locator("#t-roster + .pager").is_visible()
    page.emulate_media(media="screen")
    page.evaluate("() => window.dispatchEvent(new Event('afterprint'))")
    assert roster(page) == [(email, True) for email in expected[:WINDOW]]


def test_filtering_10000_rows_and_showing_more(page: Any) -> None:
    from playwright.sync_api import expect

    tools = page.locator(".tools[data-table='t-roster']")
    tools.locator("input[type=search]").fill("user0001")
    expect(tools.locator("output")).to_contain_text("Showing")
    matching = [email for email, on_screen in roster(page) if on_screen]
    assert matching and all("user0001" in email for email in matching)
    assert len(matching) < WINDOW
    assert tools.locator("output").inner_text() == f"Showing {len(matching)} of {USERS} rows"
    assert not page.locator("#t-roster + .pager button").first.is_visible()  # nothing more to show

    tools.locator("input[type=search]").fill("")
    expect(tools.locator("output")).to_have_text(f"{USERS} rows")
    assert sum(on_screen for _, on_screen in roster(page)) == WINDOW
    page.locator("#t-roster + .pager button", has_text="more").click()
    assert sum(on_screen for _, on_screen in roster(page)) == 2 * WINDOW
    page.locator("#t-roster + .pager button", has_text="Show all").click()
    assert sum(on_screen for _, on_screen in roster(page)) == USERS
    expect(page.locator("#t-roster + .pager")).to_contain_text(f"All {USERS} matching rows on screen")


def test_a_short_table_has_no_pager(page: Any) -> None:
    assert page.locator("#t-privileged + .pager").count() == 0
    assert page.locator("#t-roster + .pager").count() == 1


def test_a_row_filtered_out_while_printing_comes_back_when_it_matches_again(page: Any) -> None:
    from playwright.sync_api import expect

    search = page.locator(".tools[data-table='t-roster'] input[type=search]")
    search.fill("alice@")
    expect(page.locator("#t-roster tbody tr")).to_have_count(1)
    page.evaluate("() => window.dispatchEvent(new Event('beforeprint'))")
    page.evaluate("() => window.dispatchEvent(new Event('afterprint'))")
    search.fill("example.com")  # every user again
    expect(page.locator(".tools[data-table='t-roster'] output")).to_have_text(f"{USERS} rows")
    assert sum(on_screen for _, on_screen in roster(page)) == WINDOW
    assert page.locator("#t-roster tbody tr[hidden]").count() == 0
