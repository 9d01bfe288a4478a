"""Screenshots of the demo's report for the README (``make screenshot``).

Writes, from the newest report in ``demo-output/reports/``:

- ``docs/report-1400.png``: the HTML report's first screen at 1,400 px (what needs action, the
  review, what changed in access);
- ``docs/report-400.png``: the same at 400 px (a phone), findings as cards further down;
- ``docs/report-400-findings.png``: the findings at 400 px, one card per finding;
- ``docs/report-pdf-page1.png`` and ``docs/report-pdf-findings.png``: PDF page one and the first
  findings page, rendered by poppler's ``pdftoppm``.

Uses the same Playwright + Debian chromium set-up as the browser tests; no browser download.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
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


def html_shots(report: Path, docs: Path) -> list[Path]:
    written = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        try:
            for width, height in ((1400, 1100), (400, 1500)):
                page = browser.new_page(viewport={"width": width, "height": height})
                page.goto(report.resolve().as_uri())
                page.wait_for_selector("html[data-ready='1']")
                target = docs / f"report-{width}.png"
                page.screenshot(path=str(target), full_page=False)
                written.append(target)
                if width == 400:
                    page.locator("#findings").scroll_into_view_if_needed()
                    page.evaluate("document.getElementById('findings').scrollIntoView()")
                    target = docs / "report-400-findings.png"
                    page.screenshot(path=str(target), full_page=False)
                    written.append(target)
                page.close()
        finally:
            browser.close()
    return written


def findings_page(pdf: Path) -> int:
    """The number of the PDF page on which the Findings section starts."""
    command = ["/usr/bin/pdftotext", "-enc", "UTF-8", str(pdf), "-"]
    text = subprocess.run(command, capture_output=True, check=True).stdout  # noqa: S603 - fixed tool, our file
    for number, page in enumerate(text.decode("utf-8").split("\f"), start=1):
        if "open findings, worst first" in page or "open finding, worst first" in page:
            return number
    return 3


def pdf_shots(pdf: Path, docs: Path) -> list[Path]:
    written = []
    with tempfile.TemporaryDirectory() as scratch:
        for name, number in (("report-pdf-page1", 1), ("report-pdf-findings", findings_page(pdf))):
            prefix = Path(scratch) / name
            subprocess.run(  # noqa: S603 - a fixed tool on our own file
                ["/usr/bin/pdftoppm", "-png", "-r", "60", "-f", str(number), "-l", str(number), "-singlefile", str(pdf),
                 str(prefix)],
                check=True,
            )
            target = docs / f"{name}.png"
            target.write_bytes(prefix.with_suffix(".png").read_bytes())
            written.append(target)
    return written


def main(reports: Path, docs: Path) -> int:
    html = sorted(reports.glob("*.html"))
    pdf = sorted(reports.glob("*.pdf"))
    if not html or not pdf:
        sys.exit(f"Run `make demo` first: no HTML and PDF report in {reports}/.")
    for path in [*html_shots(html[-1], docs), *pdf_shots(pdf[-1], docs)]:
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1] if len(sys.argv) > 1 else "demo-output/reports"), Path("docs")))
