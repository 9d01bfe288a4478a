"""Benchmark: HTML and PDF report rendering at 1,000 and 10,000 users (issue 5).

Run: ``.venv/bin/python -m bench.bench_report [--users 1000,10000] [--ablation-users 1000]
[--baseline-users 10000] [--skip-browser]``. Prints a markdown table for BENCHMARKS.md.

Every measurement runs in a fresh subprocess so its peak memory (``ru_maxrss``) is its own; the
time covers rendering only (data generation excluded). It measures:

* HTML: render time, peak memory and file size; and in headless Chromium (Debian's, through
  Playwright) the time until the page is loaded and the script has made the tables interactive,
  then one sort of the roster and one text filter.
* PDF as shipped (roster capped at 500 rows, attachments carry everything).
* The baseline the cap is judged against: the same account's PDF with the *full* roster, in the
  same run (``--baseline-users``; a full 10,000-row roster takes minutes).
* What each layout choice buys: a full-roster PDF at ``--ablation-users`` with each optimisation
  turned off in turn (table-layout: fixed; no per-row borders; 6 instead of 9 roster columns).

Test data: ``tests/report_fixtures.make_report_data`` padded to N users (about 6% stale users,
each with a finding; a joiner or status change per ~20 users).

Results on the development machine (2 shared CPUs, Debian chromium, WeasyPrint 70), one run:

| what | users | time | peak memory | size |
|---|---:|---:|---:|---:|
| HTML render | 1,000 / 10,000 | 0.10 / 0.22 s | 26 / 52 MB | 0.26 / 2.33 MB |
| HTML in Chromium: interactive | 1,000 / 10,000 | 0.32 / 0.83 s | | |
| PDF, roster capped at 500 | 1,000 / 10,000 | 2.8 / 8.1 s | 153 / 294 MB | 83 pages at 10k |
| PDF, full roster (baseline) | 1,000 / 10,000 | 4.4 / 57.7 s | 210 / 1,397 MB | 402 pages at 10k |
| full roster at 1,000 without table-layout: fixed | | +8.3 s (2.8x) | +0 MB | |
| ... with a border under every cell | | +0.35 s | +1 MB | |
| ... with 9 instead of 6 roster columns | | +3.6 s | +64 MB | |
| ... all three off ("naive") | | +13.9 s (4x) | +61 MB | |
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]

#: name -> Tuning overrides; "shipped" is the default Tuning().
VARIANTS: dict[str, dict[str, bool]] = {
    "shipped (fixed layout, no row borders, 6 roster columns)": {},
    "without table-layout: fixed": {"fixed_layout": False},
    "with a border under every cell": {"row_borders": True},
    "with all 9 roster columns": {"compact_roster": False},
    "naive (all three off)": {"fixed_layout": False, "row_borders": True, "compact_roster": False},
}


def _data(users: int) -> Any:
    sys.path.insert(0, str(ROOT / "tests"))
    from report_fixtures import base_users, make_report_data

    return make_report_data(extra_users=max(0, users - len(base_users())))


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def child(args: argparse.Namespace) -> dict[str, Any]:
    """One measurement, in this (fresh) process."""
    from auditor.report import render_html
    from auditor.report._pdf import render_pdf_bytes
    from auditor.report._view import Tuning

    data = _data(args.users)
    counts = {"findings": len(data.findings.findings), "changes": len(data.changes.changes)}
    baseline_mb = _peak_mb()
    start = time.perf_counter()
    if args.kind == "html":
        html = render_html(data)
        seconds = time.perf_counter() - start
        Path(args.out).write_text(html, encoding="utf-8")
        return {"seconds": seconds, "peak_mb": _peak_mb(), "data_mb": baseline_mb, "bytes": len(html.encode()),
                **counts}
    import weasyprint  # imported before timing starts in every PDF run alike

    start = time.perf_counter()
    tuning = Tuning(**json.loads(args.tuning))
    limit = None if args.roster_limit < 0 else args.roster_limit
    pdf = render_pdf_bytes(data, templates_dir=ROOT / "report_templates", roster_limit=limit, tuning=tuning)
    seconds = time.perf_counter() - start
    import io

    from pypdf import PdfReader

    pages = len(PdfReader(io.BytesIO(pdf)).pages)
    del weasyprint
    return {"seconds": seconds, "peak_mb": _peak_mb(), "data_mb": baseline_mb, "bytes": len(pdf), "pages": pages,
            **counts}


def run_child(kind: str, users: int, *, out: str = "", roster_limit: int = 500, tuning: dict[str, bool] | None = None,
              ) -> dict[str, Any]:
    command = [sys.executable, "-m", "bench.bench_report", "--child", kind, "--users", str(users),
               "--roster-limit", str(roster_limit), "--tuning", json.dumps(tuning or {}), "--out", out]
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, check=True)
    return json.loads(result.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def browser(path: Path) -> dict[str, float]:
    """Open the HTML in Chromium: time to interactive, then one sort and one filter of the roster."""
    from playwright.sync_api import expect, sync_playwright

    with sync_playwright() as playwright:
        instance = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = instance.new_page()
        start = time.perf_counter()
        page.goto(path.as_uri(), wait_until="load")
        page.wait_for_selector("html[data-ready='1']", state="attached")
        interactive = time.perf_counter() - start
        nav = page.evaluate("() => performance.getEntriesByType('navigation')[0].loadEventEnd")
        # The roster's section is skipped (content-visibility) until shown: scrolling to it is
        # when Chromium lays out its rows, so that is measured apart from the sort itself.
        start = time.perf_counter()
        page.locator("#t-roster").scroll_into_view_if_needed()
        page.locator("#t-roster tbody tr").first.wait_for(state="visible")
        shown = time.perf_counter() - start
        start = time.perf_counter()
        page.locator("#t-roster thead th").first.click()
        page.locator("#t-roster thead th").first.click()
        expect(page.locator("#t-roster thead th").first).to_have_attribute("aria-sort", "descending")
        sort = (time.perf_counter() - start) / 2
        start = time.perf_counter()
        page.locator(".tools[data-table='t-roster'] input").fill("user0001")
        expect(page.locator(".tools[data-table='t-roster'] output")).to_contain_text("Showing")
        filtered = time.perf_counter() - start
        instance.close()
    return {"interactive_s": interactive, "load_event_ms": float(nav), "roster_shown_s": shown, "sort_s": sort,
            "filter_s": filtered}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", default="1000,10000")
    parser.add_argument("--ablation-users", type=int, default=1000)
    parser.add_argument("--baseline-users", default="1000,10000",
                        help="account sizes whose full-roster PDF is rendered as the baseline")
    parser.add_argument("--skip-browser", action="store_true")
    parser.add_argument("--child", choices=["html", "pdf"])
    parser.add_argument("--roster-limit", type=int, default=500)
    parser.add_argument("--tuning", default="{}")
    parser.add_argument("--out", default="")
    args = parser.parse_args()
    if args.child:
        args.kind = args.child
        args.users = int(args.users)
        print(json.dumps(child(args)))
        return

    sizes = [int(n) for n in args.users.split(",") if n]
    baselines = [int(n) for n in args.baseline_users.split(",") if n]
    rows: list[str] = []
    with tempfile.TemporaryDirectory() as tmp:
        print("| what | users | time | peak memory | size | notes |")
        print("|---|---:|---:|---:|---:|---|")
        for users in sizes:
            out = Path(tmp) / f"report-{users}.html"
            html = run_child("html", users, out=str(out))
            note = f"{html['findings']} findings, {html['changes']} changes; data alone {html['data_mb']:.0f} MB"
            if not args.skip_browser and Path(CHROMIUM).exists():
                seen = browser(out)
                note += (f"; Chromium: interactive {seen['interactive_s']:.2f} s (load event "
                         f"{seen['load_event_ms']:.0f} ms), roster scrolled into view "
                         f"{seen['roster_shown_s']:.2f} s, sort {seen['sort_s'] * 1000:.0f} ms, "
                         f"filter {seen['filter_s'] * 1000:.0f} ms")
            rows.append(f"| HTML render | {users:,} | {html['seconds']:.2f} s | {html['peak_mb']:.0f} MB | "
                        f"{html['bytes'] / 1e6:.2f} MB | {note} |")
            print(rows[-1], flush=True)
        for users in sizes:
            pdf = run_child("pdf", users)
            rows.append(f"| PDF, roster capped at 500 | {users:,} | {pdf['seconds']:.2f} s | {pdf['peak_mb']:.0f} MB | "
                        f"{pdf['bytes'] / 1e6:.2f} MB | {pdf['pages']} pages; data alone {pdf['data_mb']:.0f} MB |")
            print(rows[-1], flush=True)
        for users in baselines:
            pdf = run_child("pdf", users, roster_limit=-1)
            rows.append(f"| PDF, full roster (baseline) | {users:,} | {pdf['seconds']:.2f} s | {pdf['peak_mb']:.0f} MB "
                        f"| {pdf['bytes'] / 1e6:.2f} MB | {pdf['pages']} pages |")
            print(rows[-1], flush=True)
        shipped = None
        for name, tuning in VARIANTS.items():
            pdf = run_child("pdf", args.ablation_users, roster_limit=-1, tuning=tuning)
            if shipped is None:
                shipped = pdf
                delta = "reference"
            else:
                delta = (f"{pdf['seconds'] - shipped['seconds']:+.2f} s, "
                         f"{pdf['peak_mb'] - shipped['peak_mb']:+.0f} MB vs shipped")
            rows.append(f"| PDF full roster: {name} | {args.ablation_users:,} | {pdf['seconds']:.2f} s | "
                        f"{pdf['peak_mb']:.0f} MB | {pdf['bytes'] / 1e6:.2f} MB | {pdf['pages']} pages; {delta} |")
            print(rows[-1], flush=True)


if __name__ == "__main__":
    main()
