"""Benchmark: `auditor export` re-using the reports against `export --no-reports`, rendering, and `run` (issue 15 §2).

Run: ``.venv/bin/python -m bench.bench_export [--users 1000,10000] [--runs 3]``. Prints a markdown
table for BENCHMARKS.md.

Whole processes (``python -m auditor ...``), each timed from start to exit, medians of ``--runs``.
The account is realistic (:func:`bench.realistic.realistic_pair`, shared with the PDF benchmark):
the sandbox's generated account with about 6 % of users stale, then a second pull after 1 % churn
(leavers and joiners) and 20 % of users signing in. Against that second snapshot, in the same run:

* ``export --no-reports``: the bundle without reports (the baseline the target is set against);
* ``export --reports DIR``: the bundle with the HTML and PDF that ``auditor report`` wrote (re-used);
* ``export``: the bundle with the reports rendered by the export itself (what ``--reports`` saves);
* ``run``: pull, findings, reports and bundle (the reports rendered once and signed as written).

``--xlsx 10000,100000`` adds the evidence workbook alone, each in its own process (CPU seconds and
peak memory): the shipped write-only writer against openpyxl's normal mode with the same cells
(the writer before issue 15), on a roster of N users.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

from auditor.sandbox.server import Faults, SandboxServer
from bench.realistic import realistic_pair

KEY = "sandbox-admin-key"


def _cli(env: dict[str, str], *args: str, stdin: str = "") -> float:
    started = time.perf_counter()
    result = subprocess.run([sys.executable, "-m", "auditor", *args], env=env, input=stdin, capture_output=True,
                            text=True, check=False)
    elapsed = time.perf_counter() - started
    if result.returncode not in (0, 1):
        raise SystemExit(f"auditor {' '.join(args)} failed ({result.returncode}): {result.stderr}")
    return elapsed


def measure(users: int, runs: int) -> dict[str, float]:
    import os

    now = datetime.now(UTC)
    first, second = realistic_pair(users, today=now)
    with tempfile.TemporaryDirectory(prefix="bench-export-") as tmp, SandboxServer(
        first, faults=Faults(rate_limits=())
    ) as server:
        root = Path(tmp)
        env = {key: value for key, value in os.environ.items() if not key.startswith(("AUDITOR_", "DIGICERT_"))}
        env.update(AUDITOR_HOME=str(root / "home"), AUDITOR_MASTER_KEY_FILE=str(root / "master.key"))
        _cli(env, "connect", "--connection", "default", "--base-url", server.base_url, "--key-stdin",
             stdin=f"{KEY}\n")
        _cli(env, "pull")
        server.set_dataset(second)
        _cli(env, "pull")
        reports = root / "reports"
        times: dict[str, list[float]] = {"report": [], "no-reports": [], "reused": [], "rendered": [], "run": []}
        times["report"].append(_cli(env, "report", "--output", str(reports), "--overwrite"))
        for index in range(runs):  # interleaved, so load on the machine hits every mode alike
            times["no-reports"].append(_cli(env, "export", "--no-reports", "--output", str(root / f"a{index}.zip")))
            times["reused"].append(
                _cli(env, "export", "--reports", str(reports), "--output", str(root / f"b{index}.zip"))
            )
            times["rendered"].append(_cli(env, "export", "--output", str(root / f"c{index}.zip")))
        for index in range(runs):  # last: each run pulls again and adds a snapshot
            times["run"].append(_cli(env, "run", "--output", str(root / f"run{index}")))
        return {name: statistics.median(values) for name, values in times.items()}


def _normal_mode_xlsx(header: Sequence[str], rows: Sequence[Sequence[object]]) -> bytes:
    """The baseline: openpyxl's normal mode, a cell object per value, the same types and formats."""
    import io

    from openpyxl import Workbook
    from openpyxl.styles import Font

    from auditor import exports

    workbook = Workbook()
    sheet = workbook.active
    assert sheet is not None
    for column, name in enumerate(header, start=1):
        cell = sheet.cell(row=1, column=column, value=name)
        cell.font = Font(bold=True)
    for row_index, row in enumerate(rows, start=2):
        for column, value in enumerate(row, start=1):
            shown, kind = exports._xlsx_prepared(value)
            cell = sheet.cell(row=row_index, column=column, value=shown)
            if kind == "s":
                cell.data_type = "s"
            elif kind is not None:
                cell.number_format = kind
    sheet.freeze_panes = "A2"
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


def xlsx_child(mode: str, users: int) -> None:
    import resource

    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
    from factories import make_snapshot, make_user

    from auditor import exports

    at = datetime(2026, 11, 1, tzinfo=UTC)
    roster = [make_user(i, last_login=at - timedelta(days=i % 400), job_title="Engineer") for i in range(1, users + 1)]
    rows = exports.roster_rows(make_snapshot(roster, taken_at=at))
    started = time.process_time()
    if mode == "write-only":
        exports.workbook_xlsx({"users": (exports.ROSTER_HEADER, rows)}, created=at)
    else:
        _normal_mode_xlsx(exports.ROSTER_HEADER, rows)
    cpu = time.process_time() - started
    print(json.dumps({"cpu": cpu, "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))


def xlsx_table(sizes: Sequence[int], runs: int) -> str:
    lines = ["| roster users | normal mode (baseline): CPU s, peak MB | write-only: CPU s, peak MB | ratio |",
             "|---:|---:|---:|---:|"]
    for users in sizes:
        found: dict[str, tuple[float, float]] = {}
        for mode in ("normal", "write-only"):
            samples = []
            for _ in range(runs):
                out = subprocess.run([sys.executable, "-m", "bench.bench_export", "--xlsx-child", mode, str(users)],
                                     capture_output=True, text=True, check=True).stdout
                samples.append(json.loads(out))
            found[mode] = (
                statistics.median(s["cpu"] for s in samples), statistics.median(s["peak_mb"] for s in samples)
            )
        (cpu0, mb0), (cpu1, mb1) = found["normal"], found["write-only"]
        lines.append(f"| {users:,} | {cpu0:.2f} s, {mb0:.0f} MB | {cpu1:.2f} s, {mb1:.0f} MB | "
                     f"{cpu1 / cpu0:.2f}× time, {mb1 / mb0:.2f}× memory |")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--users", default="1000,10000")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--xlsx", default="", help="roster sizes for the workbook alone, e.g. 10000,100000")
    parser.add_argument("--xlsx-child", nargs=2, metavar=("MODE", "USERS"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.xlsx_child:
        xlsx_child(args.xlsx_child[0], int(args.xlsx_child[1]))
        return 0
    if args.xlsx:
        print(xlsx_table([int(n) for n in args.xlsx.split(",")], args.runs) + "\n")
    if not args.users:
        return 0
    rows = []
    results: dict[int, dict[str, float]] = {}
    for users in (int(n) for n in args.users.split(",")):
        results[users] = measured = measure(users, args.runs)
        base = measured["no-reports"]
        rows.append(
            f"| {users:,} | {base:.2f} | {measured['reused']:.2f} (**{measured['reused'] / base:.2f}×**) | "
            f"{measured['rendered']:.2f} ({measured['rendered'] / base:.1f}×) | {measured['run']:.2f} | "
            f"{measured['report']:.2f} |"
        )
        print(json.dumps({"users": users, **measured}), file=sys.stderr, flush=True)
    print(f"Whole processes, medians of {args.runs} (report: one run), seconds.\n")
    print("| users | `export --no-reports` (baseline) | `export --reports DIR` (ratio) | `export`, rendering "
          "(ratio) | `run` | `report --format html,pdf` |")
    print("|---:|---:|---:|---:|---:|---:|")
    print("\n".join(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
