"""Benchmark: pull 10,000 users from the sandbox with 100 ms latency, concurrent vs one page at a time.

Run: ``.venv/bin/python -m bench.bench_pull [--users N] [--latency-ms L] [--runs R] [--concurrency C]``.
Prints a markdown table for BENCHMARKS.md. Both modes pull the same pages from the same sandbox,
alternating, ``--runs`` times each; medians are reported with their ratio. The sandbox runs in its
own process, as CertCentral runs on its own machines: otherwise its JSON encoding would compete
with the client for one interpreter lock and the benchmark would measure that instead. The
sandbox enforces CertCentral's rolling limits (100 / 5 s, 1000 / 3 min per key), and the run fails
if it answered a single 429: the client-side limiter must keep a normal pull clear of them.
"""

from __future__ import annotations

import argparse
import multiprocessing
import statistics
import sys
import time
from collections.abc import Sequence
from typing import Any

from auditor.client import DEFAULT_MAX_CONCURRENCY, DEFAULT_PAGE_SIZE, CertCentralClient
from auditor.sandbox.dataset import Dataset
from auditor.sandbox.server import Faults, SandboxServer

KEY = "sandbox-admin-key"


def _pull_once(base_url: str, *, concurrency: int, page_size: int) -> tuple[float, int, int, bool]:
    with CertCentralClient(base_url, KEY, max_concurrency=concurrency, page_size=page_size) as client:
        started = time.perf_counter()
        result = client.pull_users()
        elapsed = time.perf_counter() - started
    return elapsed, len(result.users), result.requests, result.complete


def _serve(users: int, latency_ms: int, connection: Any) -> None:
    """Child process: serve a generated account until told to stop, then report the 429 count."""
    with SandboxServer(Dataset.generate(users, seed=7), faults=Faults(latency_ms=latency_ms)) as server:
        connection.send(server.base_url)
        connection.recv()  # blocks until the parent is done
        recorded = server.requests
        connection.send((len(recorded), sum(1 for request in recorded if request.status == 429)))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--users", type=int, default=10_000)
    parser.add_argument("--latency-ms", type=int, default=100)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--concurrency", type=int, default=DEFAULT_MAX_CONCURRENCY)
    parser.add_argument("--page-size", type=int, default=DEFAULT_PAGE_SIZE)
    args = parser.parse_args(argv)

    modes = (("sequential", 1), ("concurrent", args.concurrency))
    times: dict[str, list[float]] = {name: [] for name, _ in modes}
    requests: dict[str, int] = {}
    users_seen: dict[str, int] = {}
    parent, child = multiprocessing.Pipe()
    server = multiprocessing.get_context("spawn").Process(target=_serve, args=(args.users, args.latency_ms, child))
    server.start()
    try:
        base_url = parent.recv()
        for _ in range(args.runs):
            for name, concurrency in modes:
                elapsed, n_users, n_requests, complete = _pull_once(
                    base_url, concurrency=concurrency, page_size=args.page_size
                )
                assert complete, f"{name} pull reported itself incomplete"
                times[name].append(elapsed)
                requests[name] = n_requests
                users_seen[name] = n_users
        parent.send("done")
        recorded, rate_limited = parent.recv()
    finally:
        server.join(timeout=30)
        if server.is_alive():
            server.terminate()

    assert rate_limited == 0, f"the sandbox answered {rate_limited} requests with 429"
    assert users_seen["sequential"] == users_seen["concurrent"], users_seen

    sequential = statistics.median(times["sequential"])
    concurrent = statistics.median(times["concurrent"])
    print(
        f"Pull of {users_seen['concurrent']:,} users from the sandbox, {args.latency_ms} ms added latency per "
        f"request, page size {args.page_size}, {args.runs} runs per mode ({recorded} requests in total, "
        f"{rate_limited} answered 429).\n"
    )
    print("| mode | max_concurrency | requests per pull | median (s) | min (s) | max (s) |")
    print("|---|---:|---:|---:|---:|---:|")
    for name, concurrency in modes:
        runs = times[name]
        print(
            f"| {name} | {concurrency} | {requests[name]} | {statistics.median(runs):.2f} | "
            f"{min(runs):.2f} | {max(runs):.2f} |"
        )
    print(f"\nSpeed-up (sequential median / concurrent median): **{sequential / concurrent:.1f}x**")
    return 0


if __name__ == "__main__":
    sys.exit(main())
