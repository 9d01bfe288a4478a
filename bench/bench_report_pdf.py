"""Benchmark: ``auditor report --format pdf`` on the realistic account, before and after (issue 15).

Run: ``.venv/bin/python -m bench.bench_report_pdf [--users 1000,10000,100000] [--runs 3]
[--baseline REF] [--homes DIR]``. Prints a markdown table for BENCHMARKS.md.

Each size gets one installation built by :mod:`bench.realistic` (two pulls through the sandbox:
about 6 % stale users, 1 % churn, 20 % signing in between the pulls); ``--homes DIR`` keeps them
for the next run. The *whole* command is timed, as a user runs it: a fresh ``python -m auditor``
process, wall time and CPU time (user + system) and peak RSS from ``os.wait4`` of that child.

The baseline is measured in the same run, alternating with the current code, on the same
installations: ``git archive REF`` (default: the merge base with ``main``, the code before this
branch) is unpacked into a temporary directory and run with ``PYTHONPATH`` pointing at it, with
the same interpreter and packages. Medians of ``--runs`` runs each.
"""

from __future__ import annotations

import argparse
import io
import os
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.realistic import ROOT, build_home


def unpack(ref: str, target: Path) -> Path:
    """The tree of ``ref`` (a commit or branch of this repository) unpacked into ``target``."""
    archive = subprocess.run(["git", "archive", "--format=tar", ref], cwd=ROOT, capture_output=True, check=True)
    with tarfile.open(fileobj=io.BytesIO(archive.stdout)) as tar:
        tar.extractall(target, filter="data")
    return target


def run_report(code: Path, home: Path, output: Path) -> dict[str, float]:
    """One ``auditor report --format pdf`` of ``home`` with the package found in ``code``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AUDITOR_", "DIGICERT_"))}
    env.update(AUDITOR_HOME=str(home / "data"), AUDITOR_MASTER_KEY_FILE=str(home / "master.key"),
               PYTHONPATH=str(code))
    command = [sys.executable, "-m", "auditor", "report", "--format", "pdf", "--output", str(output), "--overwrite"]
    start = time.perf_counter()
    child = subprocess.Popen(command, env=env, cwd=home, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _pid, status, usage = os.wait4(child.pid, 0)
    wall = time.perf_counter() - start
    stderr = child.stderr.read().decode() if child.stderr else ""
    child.returncode = os.waitstatus_to_exitcode(status)
    if child.returncode not in (0, 1):  # 1: findings at or above --fail-on (none set: never)
        raise RuntimeError(f"report failed ({child.returncode}) with {code}: {stderr[-2000:]}")
    (pdf,) = output.glob("*.pdf")
    return {"wall": wall, "cpu": usage.ru_utime + usage.ru_stime, "rss_mb": usage.ru_maxrss / 1024,
            "pages": float(_pages(pdf)), "mb": pdf.stat().st_size / 1e6}


def _pages(pdf: Path) -> int:
    """The page count, read in a child process (poppler's pdfinfo): reading a PDF here would grow
    this process, and a child started by fork reports its parent's peak RSS if that is higher."""
    info = subprocess.run(["pdfinfo", str(pdf)], capture_output=True, text=True, check=True).stdout
    return int(next(line.split()[-1] for line in info.splitlines() if line.startswith("Pages:")))


def _median(runs: list[dict[str, float]], key: str) -> float:
    return statistics.median(run[key] for run in runs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--users", default="1000,10000,100000")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--baseline", default="", help="git ref of the baseline (default: merge base with main)")
    parser.add_argument("--homes", type=Path, help="keep the built installations here (reused when present)")
    args = parser.parse_args()
    ref = args.baseline or subprocess.run(
        ["git", "merge-base", "HEAD", "main"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.strip()
    sizes = [int(n) for n in args.users.split(",") if n]
    with tempfile.TemporaryDirectory() as tmp:
        homes = args.homes or Path(tmp) / "homes"
        before_code = unpack(ref, Path(tmp) / "before")
        results: dict[int, dict[str, list[dict[str, Any]]]] = {}
        for users in sizes:
            home = homes / f"home{users // 1000}k"
            if not (home / "data").exists():
                build_home(users, home)
            runs: dict[str, list[dict[str, Any]]] = {"before": [], "after": []}
            for _ in range(args.runs):  # alternating, so load on a shared machine hits both alike
                for name, code in (("before", before_code), ("after", ROOT)):
                    runs[name].append(run_report(code, home, Path(tmp) / f"out-{name}-{users}"))
            results[users] = runs
            print(f"{users}: {runs}", file=sys.stderr, flush=True)
        print(f"`auditor report --format pdf`, whole process, realistic account (bench/realistic.py), median of "
              f"{args.runs} alternating runs; before = `git archive {ref[:12]}` run from a temporary copy.\n")
        print("| users | before: wall / CPU | after: wall / CPU | wall ratio | before: peak RSS | after: peak RSS "
              "| pages before / after | PDF MB before / after |")
        print("|---:|---:|---:|---:|---:|---:|---:|---:|")
        for users, runs in results.items():
            b, a = runs["before"], runs["after"]
            print(f"| {users:,} | {_median(b, 'wall'):.1f} s / {_median(b, 'cpu'):.1f} s "
                  f"| **{_median(a, 'wall'):.1f} s** / {_median(a, 'cpu'):.1f} s "
                  f"| {_median(a, 'wall') / _median(b, 'wall'):.2f} "
                  f"| {_median(b, 'rss_mb'):.0f} MB | **{_median(a, 'rss_mb'):.0f} MB** "
                  f"| {_median(b, 'pages'):.0f} / {_median(a, 'pages'):.0f} "
                  f"| {_median(b, 'mb'):.2f} / {_median(a, 'mb'):.2f} |")


if __name__ == "__main__":
    main()
