"""Screenshot the demo's HTML report for the README (``make screenshot``).

Uses the same Playwright + Debian chromium set-up as the browser tests; no browser download.
"""

from __future__ import annotations

import sys
from pathlib import Path

from playwright.sync_api import sync_playwright

CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def main(report: Path, output: Path) -> int:
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 1500})
            page.goto(report.resolve().as_uri())
            page.screenshot(path=str(output), full_page=False)
        finally:
            browser.close()
    print(output)
    return 0


if __name__ == "__main__":
    reports = sorted(Path("demo-output/reports").glob("*.html"))
    if not reports:
        sys.exit("Run `make demo` first: no report in demo-output/reports/.")
    sys.exit(main(reports[-1], Path("docs/report-screenshot.png")))
