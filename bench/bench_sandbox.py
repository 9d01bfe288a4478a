"""Benchmark: generate a 100,000-user sandbox account and serve all of it, 1,000 users a page.

Run: ``.venv/bin/python -m bench.bench_sandbox [--users N]``. Prints a markdown table for
BENCHMARKS.md and fails unless every user arrived exactly once in ``N / 1000`` requests. (Moved
here from tests/test_sandbox.py: a timing is a benchmark's business, not a unit test's.)
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence

import httpx

from auditor.sandbox.dataset import Dataset
from auditor.sandbox.server import Faults, SandboxServer

KEY = "sandbox-admin-key"
PAGE = 1000


def run(users: int = 100_000) -> str:
    started = time.perf_counter()
    dataset = Dataset.generate(users)
    generated = time.perf_counter() - started
    with SandboxServer(dataset, faults=Faults(rate_limits=())) as server, httpx.Client(
        base_url=server.base_url, headers={"X-DC-DEVKEY": KEY}, timeout=60
    ) as http:
        started = time.perf_counter()
        ids: set[int] = set()
        offset = requests = 0
        while True:
            body = http.get("/user", params={"limit": PAGE, "offset": offset}).json()
            requests += 1
            ids.update(user["id"] for user in body["users"])
            offset += len(body["users"])
            if not body["users"] or offset >= body["page"]["total"]:
                break
        served = time.perf_counter() - started
    expected = -(-users // PAGE)
    if (len(ids), requests) != (users, expected):
        raise SystemExit(f"served {len(ids)} users in {requests} requests; expected {users} in {expected}")
    return "\n".join([
        f"| sandbox, {users:,} users | seconds |",
        "|---|---:|",
        f"| generate the account | {generated:.2f} |",
        f"| serve every page ({requests} requests, {requests / served:.1f} pages/s) | {served:.2f} |",
    ])


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--users", type=int, default=100_000)
    args = parser.parse_args(argv)
    print(run(args.users))
    return 0


if __name__ == "__main__":
    sys.exit(main())
