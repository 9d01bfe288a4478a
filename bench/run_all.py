"""Run every benchmark in turn (``make bench``); each prints a markdown section for BENCHMARKS.md.

Each benchmark is a separate process so one's memory does not colour the next one's numbers.
"""

from __future__ import annotations

import subprocess
import sys

BENCHMARKS = (
    "bench.bench_pull",
    "bench.bench_diff",
    "bench.bench_report",
    "bench.bench_report_pdf",
    "bench.bench_report_sort",
    "bench.bench_identity",
    "bench.bench_pandas",
    "bench.bench_sandbox",
    "bench.bench_export",
)


def main() -> int:
    failed = 0
    for module in BENCHMARKS:
        print(f"\n## {module}\n", flush=True)
        result = subprocess.run([sys.executable, "-m", module], check=False)
        failed += result.returncode != 0
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
