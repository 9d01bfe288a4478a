"""The HTML report at 10,000 users in real Chromium: sorting and filtering still work, a window of
rows is on screen, and every row comes back in the chosen order for print and "Show all".

No timings here (they are in ``bench/bench_report_sort.py``); these tests check behaviour only.
One page load for the module, loaded again only for a test that needs what an earlier one undid
(:class:`Opened`).
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from report_fixtures import base_users, make_report_data
from support import CHROMIUM, SharedArtefacts

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
def report_file(shared: SharedArtefacts) -> Path:
    """Rendered once per session (read-only): a worker that steals one of these tests reads it."""
    return shared.file("report-10000-users.html",
                       lambda: render_html(make_report_data(extra_users=USERS - len(base_users()))))


@dataclass
class Opened:
    """The module's one page on the 10,000-row report (a load costs seconds of Chromium CPU) and
    what earlier tests did to it that the report cannot undo: it has no "unsorted" and no "fewer
    rows" (the window only grows). A test that needs either is given a freshly loaded page."""

    page: Any
    url: str
    errors: list[str]
    sorted: bool = False
    widened: bool = False

    def load(self) -> None:
        self.page.emulate_media(media="screen")
        self.page.goto(self.url)
        self.page.wait_for_selector("html[data-ready='1']")
        self.page.locator("#t-roster").scroll_into_view_if_needed()
        self.sorted = self.widened = False

    def ready(self, *, unsorted: bool = False, windowed: bool = False) -> Any:
        """The page with no filter, reloaded first if a test left it sorted (and ``unsorted`` is
        asked for) or showing more than the first window (and ``windowed`` is)."""
        if (unsorted and self.sorted) or (windowed and self.widened):
            self.load()
        else:
            self.page.locator(".tools[data-table='t-roster'] input[type=search]").fill("")
            self.page.emulate_media(media="screen")
        return self.page


@pytest.fixture(scope="module")
def opened(report_file: Path, browser: Any) -> Iterator[Opened]:
    page = browser.new_page(viewport={"width": 1400, "height": 900})
    opened = Opened(page, report_file.as_uri(), [])
    page.on("pageerror", lambda error: opened.errors.append(str(error)))
    opened.load()
    yield opened
    page.close()


@pytest.fixture(autouse=True)
def no_page_errors(opened: Opened) -> Iterator[None]:
    """Each test fails on a script error during it (and leaves none to the next)."""
    yield
    errors = list(opened.errors)
    opened.errors.clear()
    assert errors == []


def roster(page: Any) -> list[tuple[str, bool]]:
    return [tuple(pair) for pair in page.eval_on_selector_all("#t-roster tbody tr", ROWS)]


def emails_in_file(path: Path) -> list[str]:
    """The roster's first cells as the file holds them (every row, what a reader without JS sees)."""
    text = path.read_text(encoding="utf-8")
    body = text[text.index('id="t-roster"'):]
    body = body[body.index("<tbody>"):body.index("</tbody>")]
    return [html.unescape(cell) for cell in re.findall(r"<tr><td>([^<]*)</td>", body)]


def test_sorting_10000_rows_orders_all_and_shows_the_first_window(opened: Opened, report_file: Path) -> None:
    page = opened.ready(unsorted=True, windowed=True)
    everyone = emails_in_file(report_file)
    assert len(everyone) == USERS  # the file holds every row
    # With JavaScript, the first window is in the page and the rest waits outside it.
    assert roster(page) == [(email, True) for email in everyone[:WINDOW]]
    expected = sorted(everyone, key=str.lower, reverse=True)

    header = page.locator("#t-roster thead th", has_text="User")
    opened.sorted = True
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


def test_filtering_10000_rows_and_showing_more(opened: Opened) -> None:
    from playwright.sync_api import expect

    page = opened.ready(windowed=True)

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
    opened.widened = True
    page.locator("#t-roster + .pager button", has_text="more").click()
    assert sum(on_screen for _, on_screen in roster(page)) == 2 * WINDOW
    page.locator("#t-roster + .pager button", has_text="Show all").click()
    assert sum(on_screen for _, on_screen in roster(page)) == USERS
    expect(page.locator("#t-roster + .pager")).to_contain_text(f"All {USERS} matching rows on screen")


def test_a_short_table_has_no_pager(opened: Opened) -> None:
    page = opened.ready()
    assert page.locator("#t-privileged + .pager").count() == 0
    assert page.locator("#t-roster + .pager").count() == 1


def test_a_row_filtered_out_while_printing_comes_back_when_it_matches_again(opened: Opened) -> None:
    from playwright.sync_api import expect

    page = opened.ready(windowed=True)

    search = page.locator(".tools[data-table='t-roster'] input[type=search]")
    search.fill("alice@")
    expect(page.locator("#t-roster tbody tr")).to_have_count(1)
    page.evaluate("() => window.dispatchEvent(new Event('beforeprint'))")
    page.evaluate("() => window.dispatchEvent(new Event('afterprint'))")
    search.fill("example.com")  # every user again
    expect(page.locator(".tools[data-table='t-roster'] output")).to_have_text(f"{USERS} rows")
    assert sum(on_screen for _, on_screen in roster(page)) == WINDOW
    assert page.locator("#t-roster tbody tr[hidden]").count() == 0
