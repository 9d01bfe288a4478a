"""Benchmark: sorting and filtering the HTML report's 10,000-row roster in Chromium (issue 16).

Run: ``.venv/bin/python -m bench.bench_report_sort [--users 10000] [--runs 5]``. Prints a markdown
table for BENCHMARKS.md.

The same report is opened twice in the same run: once with the shipped ``report.js`` and once with
the plain-JavaScript baseline, ``bench/baseline_report.js`` (the script as it was before issue 16:
read each cell's text on every sort, re-append all 10,000 rows, every matching row on screen, a
120 ms pause after each keystroke before filtering). The baseline page gets the baseline script's
own CSP hash, so both run under the same Content-Security-Policy.

Each action is timed inside the page, from the event to the frame after it was painted
(``requestAnimationFrame`` then a zero timeout), so style, layout and paint count, not only the
script. A text filter is timed until its row count is shown, so the baseline's 120 ms pause counts,
as a reader waits for it. Medians over ``--runs`` fresh pages; "interactive" is
``domContentLoadedEventEnd`` (the script runs at the end of the body, before that event).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from pathlib import Path
from typing import Any

from bench.bench_report import CHROMIUM, CHROMIUM_ARGS, ROOT

BASELINE_JS = Path(__file__).resolve().parent / "baseline_report.js"

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
        input.value = 'user0001';
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
    "filter: back to all roles": """async () => {
        const select = document.querySelector(".tools[data-table='t-roster'] select[data-col='2']");
        const t0 = performance.now();
        select.value = '';
        select.dispatchEvent(new Event('change', {bubbles: true}));
        await """ + _PAINTED + """;
        return performance.now() - t0; }""",
}


def render(users: int) -> str:
    sys.path.insert(0, str(ROOT / "tests"))
    from report_fixtures import base_users, make_report_data

    from auditor.report import render_html

    return render_html(make_report_data(extra_users=max(0, users - len(base_users()))))


def with_script(html: str, script: str) -> str:
    """The same page with another inline script, and the CSP hash for exactly that script."""
    from auditor.report._render import script_hash

    start = html.index("<script>") + len("<script>")
    end = html.index("</script>", start)
    shipped = html[start:end]
    swapped = html[:start] + script + html[end:]
    return swapped.replace(script_hash(shipped), script_hash(script), 1)


def measure(browser: Any, path: Path) -> dict[str, float]:
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    try:
        page = context.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda error: errors.append(str(error)))
        page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
        page.goto(path.as_uri(), wait_until="load")
        page.wait_for_selector("html[data-ready='1']", state="attached")
        timing = page.evaluate(
            "() => { const n = performance.getEntriesByType('navigation')[0];"
            " return [n.domContentLoadedEventEnd, n.loadEventEnd]; }"
        )
        result = {"interactive (DOMContentLoaded)": float(timing[0]), "load event": float(timing[1])}
        # The roster's section is skipped (content-visibility: auto) until near the viewport.
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    if not Path(CHROMIUM).exists():
        print(f"(skipped: no Chromium at {CHROMIUM})")
        return
    from playwright.sync_api import sync_playwright

    html = render(args.users)
    variants = {"shipped": html, "baseline": with_script(html, BASELINE_JS.read_text(encoding="utf-8"))}
    samples: dict[str, dict[str, list[float]]] = {name: {} for name in variants}
    with tempfile.TemporaryDirectory() as tmp, sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        paths = {}
        for name, text in variants.items():
            paths[name] = Path(tmp) / f"{name}.html"
            paths[name].write_text(text, encoding="utf-8")
        for _ in range(args.runs):  # interleaved, so drift on a shared machine hits both alike
            for name, path in paths.items():
                for action, ms in measure(browser, path).items():
                    samples[name].setdefault(action, []).append(ms)
        browser.close()

    print(f"Roster of {args.users:,} users in headless Chromium at 1,400 × 900 px; median of "
          f"{args.runs} fresh pages per variant, in ms (min–max in brackets).\n")
    print("| action | shipped (ms) | baseline, plain JS (ms) | speed-up |")
    print("|---|---:|---:|---:|")
    for action in samples["shipped"]:
        ours, base = samples["shipped"][action], samples["baseline"][action]
        mine, theirs = statistics.median(ours), statistics.median(base)
        ratio = f"{theirs / mine:.1f}×" if mine > 0 else "–"
        print(f"| {action} | **{mine:.0f}** ({min(ours):.0f}–{max(ours):.0f}) | "
              f"{theirs:.0f} ({min(base):.0f}–{max(base):.0f}) | {ratio} |", flush=True)


if __name__ == "__main__":
    main()
