"""Benchmark: sorting and filtering the HTML report's roster in Chromium at 10,000 and 100,000 users.

Run: ``.venv/bin/python -m bench.bench_report_sort [--users 10000,100000] [--runs 3] [--homes DIR]``.
Prints a markdown table per size for BENCHMARKS.md (issues 15 and 16).

The data is the realistic benchmark account (``bench/realistic.py``: two real pulls through the
CLI; ``--homes DIR`` keeps the installations for the next run). Each size's report is rendered
twice in the same run by ``auditor report --format html``: with this tree's ``report_templates/``
(shipped) and with those of ``--baseline`` (a git revision, default ``main``: its template and
``report.js``, exported with ``git archive``). Both pages run under the CSP their own script
hash allows.

Each action is timed inside the page, from the event to the frame after it was painted
(``requestAnimationFrame`` then a zero timeout), so style, layout and paint count, not only the
script. A text filter is timed until its row count is shown. Medians over ``--runs`` fresh pages
per variant, interleaved; "interactive" is ``domContentLoadedEventEnd`` (the script runs at the
end of the body, before that event). The shipped script then reads the roster's cells while the
page is idle and marks ``rows-ready:t-roster``; the actions start after that mark (its time after
"interactive" is a row of its own), as a reader scrolls to the roster before sorting it. An action
before the mark reads what it needs at once and is slower (at 100,000 users, see BENCHMARKS.md).
"""

from __future__ import annotations

import argparse
import io
import statistics
import subprocess
import tarfile
import tempfile
from pathlib import Path
from typing import Any

from bench.bench_report import CHROMIUM, CHROMIUM_ARGS, ROOT
from bench.realistic import build_home, cli

#: The search text typed into the roster's filter (matches a few dozen realistic users).
SEARCH = "brown.18"

#: name -> JavaScript run in the page; resolves to milliseconds from the action to the painted frame.
_PAINTED = "new Promise(done => requestAnimationFrame(() => setTimeout(done, 0)))"
ACTIONS: dict[str, str] = {
    "sort by user (text), ascending": f"""async () => {{
        const t0 = performance.now();
        document.querySelector('#t-roster thead th button').click();
        await {_PAINTED};
        return performance.now() - t0; }}""",
    "sort by user, descending": f"""async () => {{
        const t0 = performance.now();
        document.querySelector('#t-roster thead th button').click();
        await {_PAINTED};
        return performance.now() - t0; }}""",
    "sort by days inactive (number)": f"""async () => {{
        const t0 = performance.now();
        document.querySelector('#t-roster thead th[data-type=num] button').click();
        await {_PAINTED};
        return performance.now() - t0; }}""",
    "filter: type a search text": """async () => {
        const tools = document.querySelector(".tools[data-table='t-roster']");
        const input = tools.querySelector('input');
        const output = tools.querySelector('output');
        const before = output.textContent;
        const t0 = performance.now();
        input.value = '""" + SEARCH + """';
        input.dispatchEvent(new Event('input', {bubbles: true}));
        while (output.textContent === before) { await new Promise(r => setTimeout(r, 1)); }
        await """ + _PAINTED + """;
        return performance.now() - t0; }""",
    "filter: clear the search text": """async () => {
        const tools = document.querySelector(".tools[data-table='t-roster']");
        const input = tools.querySelector('input');
        const output = tools.querySelector('output');
        const before = output.textContent;
        const t0 = performance.now();
        input.value = '';
        input.dispatchEvent(new Event('input', {bubbles: true}));
        while (output.textContent === before) { await new Promise(r => setTimeout(r, 1)); }
        await """ + _PAINTED + """;
        return performance.now() - t0; }""",
    "filter: choose a role": """async () => {
        const select = document.querySelector(".tools[data-table='t-roster'] select[data-col='2']");
        const t0 = performance.now();
        select.value = 'Administrator';
        select.dispatchEvent(new Event('change', {bubbles: true}));
        await """ + _PAINTED + """;
        return performance.now() - t0; }""",
    "sort the Administrators by days inactive": f"""async () => {{
        const t0 = performance.now();
        document.querySelector('#t-roster thead th[data-type=num] button').click();
        await {_PAINTED};
        return performance.now() - t0; }}""",
    "filter: back to all roles": """async () => {
        const select = document.querySelector(".tools[data-table='t-roster'] select[data-col='2']");
        const t0 = performance.now();
        select.value = '';
        select.dispatchEvent(new Event('change', {bubbles: true}));
        await """ + _PAINTED + """;
        return performance.now() - t0; }""",
}


def baseline_templates(revision: str, target: Path) -> Path:
    """``report_templates/`` as of ``revision`` (its template and script), under ``target``."""
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", revision, "report_templates"],
                             capture_output=True, check=True).stdout
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(target, filter="data")
    return target / "report_templates"


def render(home: Path, templates: Path, output: Path) -> Path:
    """``auditor report --format html`` of ``home``'s latest snapshot with ``templates``."""
    result = cli(home, "report", "--format", "html", "--output", str(output), "--templates", str(templates),
                 "--overwrite")
    if result.returncode not in (0, 1):  # 1: findings at or above --fail-on, the report is written
        raise RuntimeError(f"auditor report failed ({result.returncode}): {result.stderr[-2000:]}")
    (path,) = output.glob("*.html")
    return path


def measure(browser: Any, path: Path, *, wait_ms: float) -> dict[str, float]:
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    try:
        page = context.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda error: errors.append(str(error)))
        page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
        page.goto(path.as_uri(), wait_until="load", timeout=300_000)
        page.wait_for_selector("html[data-ready='1']", state="attached")
        timing = page.evaluate(
            "() => { const n = performance.getEntriesByType('navigation')[0];"
            " return [n.domContentLoadedEventEnd, n.loadEventEnd]; }"
        )
        result = {"interactive (DOMContentLoaded)": float(timing[0]), "load event": float(timing[1])}
        # The shipped script reads the roster while the page is idle; the baseline has no mark.
        ready = page.evaluate(
            f"""async () => {{ const end = performance.now() + {wait_ms}; // the baseline: 0
            const mark = () => performance.getEntriesByName('rows-ready:t-roster')[0];
            while (!mark() && performance.now() < end) {{ await new Promise(r => setTimeout(r, 20)); }}
            return mark() ? mark().startTime : null; }}"""
        )
        if ready is not None:
            result["roster read and ranked, after interactive"] = float(ready) - float(timing[0])
        result["roster scrolled into view"] = float(page.evaluate(
            "async () => { const t0 = performance.now();"
            " document.getElementById('t-roster').scrollIntoView();"
            f" await {_PAINTED}; return performance.now() - t0; }}"
        ))
        for name, script in ACTIONS.items():
            result[name] = float(page.evaluate(script))
        if errors:
            raise RuntimeError(f"{path.name}: the page reported errors: {errors}")
        return result
    finally:
        context.close()


def bench_size(browser: Any, users: int, homes: Path, work: Path, templates: dict[str, Path], runs: int,
               ) -> dict[str, dict[str, list[float]]]:
    home = homes / f"realistic-{users}"
    if not (home / "data").is_dir():
        build_home(users, home)
    paths = {name: render(home, folder, work / f"{name}-{users}") for name, folder in templates.items()}
    sizes = {name: path.stat().st_size for name, path in paths.items()}
    samples: dict[str, dict[str, list[float]]] = {name: {} for name in paths}
    for _ in range(runs):  # interleaved, so drift on a shared machine hits both alike
        for name, path in paths.items():
            for action, ms in measure(browser, path, wait_ms=120_000 if name == "shipped" else 0).items():
                samples[name].setdefault(action, []).append(ms)
    print(f"\n### {users:,} users\n\nHTML: shipped {sizes['shipped'] / 1e6:.2f} MB, baseline "
          f"{sizes['baseline'] / 1e6:.2f} MB. Headless Chromium at 1,400 × 900 px; median of {runs} fresh "
          "pages per variant, in ms (min–max in brackets).\n")
    print("| step | shipped (ms) | baseline (ms) | speed-up |")
    print("|---|---:|---:|---:|")
    for action in samples["shipped"]:
        ours = samples["shipped"][action]
        mine = statistics.median(ours)
        base = samples["baseline"].get(action)
        if not base:
            print(f"| {action} | **{mine:.0f}** ({min(ours):.0f}–{max(ours):.0f}) | – | – |")
            continue
        theirs = statistics.median(base)
        ratio = f"{theirs / mine:.1f}×" if mine > 0 else "–"
        print(f"| {action} | **{mine:.0f}** ({min(ours):.0f}–{max(ours):.0f}) | "
              f"{theirs:.0f} ({min(base):.0f}–{max(base):.0f}) | {ratio} |", flush=True)
    return samples


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--users", default="10000,100000", help="account sizes, comma-separated")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--baseline", default="main", help="git revision whose report_templates/ is the baseline")
    parser.add_argument("--homes", type=Path, help="keep the realistic installations here for the next run")
    args = parser.parse_args()
    if not Path(CHROMIUM).exists():
        print(f"(skipped: no Chromium at {CHROMIUM})")
        return
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory() as tmp, sync_playwright() as playwright:
        work = Path(tmp)
        templates = {"shipped": ROOT / "report_templates",
                     "baseline": baseline_templates(args.baseline, work / "baseline")}
        homes = args.homes or work / "homes"
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            for users in (int(size) for size in args.users.split(",")):
                bench_size(browser, users, homes, work, templates, args.runs)
        finally:
            browser.close()


if __name__ == "__main__":
    main()
