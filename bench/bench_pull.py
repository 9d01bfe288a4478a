"""Benchmark: whole ``auditor pull`` processes against a plain fetch of the same pages (issue 15, targets 5-6).

Run: ``.venv/bin/python -m bench.bench_pull [--sizes 1000,10000,50000] [--latency-ms 100] [--runs 3]
[--caps 1000,500]``. Prints markdown tables for BENCHMARKS.md. ``--compare-concurrency [--users N]
[--runs R]`` runs issue 3's comparison instead: concurrent pages against one page at a time.
``--compare-code [--ref main] [--sizes 10000,50000] [--runs 5]`` is the CPU A/B: whole pull processes
of this tree and of another git ref, alternating against one sandbox (:func:`compare_code`).

The sandbox runs in its own process, as CertCentral runs on its own machines (in one process its
JSON encoding would compete with the client for the interpreter lock), serving the realistic
account (``bench/realistic.py``) with ``--latency-ms`` added to every answer and CertCentral's
rolling limits enforced (100 / 5 s, 1000 / 3 min per key). For each size and page-size cap (the
sandbox honours ``limit=1000``, or serves at most 500), alternating ``--runs`` times:

* **pull**: ``python -m auditor pull`` as a child process (imports, store, everything);
* **plain fetch**: a child process that GETs the very requests that pull sent (read from the
  sandbox's log), with httpx, the same concurrency (the first page, then the rest 8 at a time),
  no parsing and no store; with another key, so the two do not share a rate window.

Each run starts with the key's windows clear (the benchmark waits them out). CPU is the child's
user + system time (``RUSAGE_CHILDREN``) per user. Then **back to back**: two pulls with no pause,
as ``auditor pull`` followed by ``auditor run`` would, counting the 429s the sandbox answered.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from auditor.client import DEFAULT_MAX_CONCURRENCY, DEFAULT_PAGE_SIZE, CertCentralClient
from auditor.sandbox.dataset import Dataset
from auditor.sandbox.server import Faults, SandboxServer

ROOT = Path(__file__).resolve().parent.parent
KEY = "sandbox-admin-key"
#: The plain fetch's key: same data, its own rate window on the sandbox.
BASELINE_KEY = "sandbox-view-only-key"
#: The sandbox's short window is 5 s; the client pads it to 6 s.
WINDOW_CLEAR = 6.5


def _serve(users: int, latency_ms: int, connection: Any, limits: bool = True) -> None:
    """Child process: serve the realistic account; answer commands from the parent."""
    from dataclasses import replace

    from auditor.sandbox.server import Faults, SandboxServer
    from bench.realistic import realistic_pair

    first, _ = realistic_pair(users)
    faults = Faults(latency_ms=latency_ms) if limits else Faults(latency_ms=latency_ms, rate_limits=())
    with SandboxServer(first, faults=faults) as server:
        connection.send(server.base_url)
        while True:
            command, argument = connection.recv()
            if command == "cap":
                # (Before issue 15 the sandbox had no max_limit: it served 1000.)
                server.set_faults(faults if argument >= 1000 else replace(faults, max_limit=argument))
                connection.send(None)
            elif command == "log":
                recorded = server.requests
                server.clear_requests()
                connection.send([(r.path, r.query, r.status, r.key_label) for r in recorded])
            else:
                connection.send(None)
                return


def _fetch(argv: Sequence[str]) -> int:
    """Child process: GET the requests listed in a file, the first alone, then 8 at a time."""
    import httpx

    base_url, key, listing, concurrency = argv[0], argv[1], argv[2], int(argv[3])
    requests = json.loads(Path(listing).read_text())
    origin = base_url.split("/services/v2")[0]
    with httpx.Client(headers={"X-DC-DEVKEY": key, "Accept": "application/json"}, timeout=60) as client:

        def get(request: str) -> int:
            return len(client.get(origin + request).content)

        get(requests[0])
        with ThreadPoolExecutor(max_workers=concurrency) as pool:
            list(pool.map(get, requests[1:]))
    return 0


def _child(args: list[str], env: dict[str, str]) -> tuple[float, float, str]:
    """Run one child; (wall s, CPU s, stderr)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    done = subprocess.run([sys.executable, *args], env=env, capture_output=True, text=True, check=False, cwd=ROOT)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise RuntimeError(f"{args} failed ({done.returncode}): {done.stderr[-2000:]}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu, done.stderr


class Bench:
    def __init__(self, users: int, latency_ms: int) -> None:
        self.users = users
        self.parent, child = multiprocessing.Pipe()
        self.server = multiprocessing.get_context("spawn").Process(target=_serve, args=(users, latency_ms, child))
        self.server.start()
        self.base_url: str = self.parent.recv()
        self.home = Path(tempfile.mkdtemp(prefix="bench-pull-"))
        self.env = {k: v for k, v in os.environ.items() if not k.startswith(("AUDITOR_", "DIGICERT_"))}
        self.env.update(AUDITOR_HOME=str(self.home / "data"), AUDITOR_MASTER_KEY_FILE=str(self.home / "master.key"),
                        PYTHONPATH=str(ROOT))
        done = subprocess.run([sys.executable, "-m", "auditor", "connect", "--base-url", self.base_url, "--key-stdin"],
                              input=KEY + "\n", env=self.env, capture_output=True, text=True, check=False, cwd=ROOT)
        if done.returncode != 0:
            raise RuntimeError(done.stderr)
        self.last_request = time.monotonic()

    def ask(self, command: str, argument: Any = None) -> Any:
        self.parent.send((command, argument))
        return self.parent.recv()

    def clear_window(self) -> None:
        time.sleep(max(0.0, WINDOW_CLEAR - (time.monotonic() - self.last_request)))

    def pull(self) -> tuple[float, float]:
        wall, cpu, _ = _child(["-m", "auditor", "pull"], self.env)
        self.last_request = time.monotonic()
        return wall, cpu

    def fetch(self, requests: list[str]) -> tuple[float, float]:
        listing = self.home / "requests.json"
        listing.write_text(json.dumps(requests))
        wall, cpu, _ = _child(["-m", "bench.bench_pull", "--fetch", self.base_url, BASELINE_KEY, str(listing), "8"],
                              self.env)
        return wall, cpu

    def close(self) -> None:
        self.ask("stop")
        self.server.join(timeout=30)
        if self.server.is_alive():
            self.server.terminate()


def measure(bench: Bench, cap: int, runs: int) -> dict[str, Any]:
    bench.ask("cap", cap)
    bench.ask("log")
    pulls: list[tuple[float, float]] = []
    fetches: list[tuple[float, float]] = []
    requests: list[str] = []
    too_many = 0
    for _ in range(runs):
        bench.clear_window()
        pulls.append(bench.pull())
        log = bench.ask("log")
        too_many += sum(1 for *_, status, _ in log if status == 429)
        requests = [path + (f"?{query}" if query else "") for path, query, status, _ in log if status != 429]
        fetches.append(bench.fetch(requests))
        bench.ask("log")
    bench.clear_window()
    started = time.perf_counter()
    first = bench.pull()
    second = bench.pull()
    back_to_back = time.perf_counter() - started
    log = bench.ask("log")
    return {
        "users": bench.users, "cap": cap, "requests": len(requests), "429_single": too_many,
        "pull_wall": statistics.median(w for w, _ in pulls), "pull_cpu": statistics.median(c for _, c in pulls),
        "fetch_wall": statistics.median(w for w, _ in fetches), "fetch_cpu": statistics.median(c for _, c in fetches),
        "b2b_first": first[0], "b2b_second": second[0], "b2b_wall": back_to_back,
        "b2b_429": sum(1 for *_, status, _ in log if status == 429),
    }


def _pull_once(base_url: str, *, concurrency: int, page_size: int) -> tuple[float, int, int, bool]:
    with CertCentralClient(base_url, KEY, max_concurrency=concurrency, page_size=page_size) as client:
        started = time.perf_counter()
        result = client.pull_users()
        elapsed = time.perf_counter() - started
    return elapsed, len(result.users), result.requests, result.complete


def _serve_generated(users: int, latency_ms: int, connection: Any) -> None:
    """Child process: serve a generated account until told to stop, then report the 429 count."""
    with SandboxServer(Dataset.generate(users, seed=7), faults=Faults(latency_ms=latency_ms)) as server:
        connection.send(server.base_url)
        connection.recv()  # blocks until the parent is done
        recorded = server.requests
        connection.send((len(recorded), sum(1 for request in recorded if request.status == 429)))


def compare_concurrency(argv: Sequence[str] | None = None) -> int:
    """Issue 3's comparison: the same pulls with one page at a time and with the window of 8."""
    parser = argparse.ArgumentParser(description="pull concurrently vs one page at a time")
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
    server = multiprocessing.get_context("spawn").Process(
        target=_serve_generated, args=(args.users, args.latency_ms, child)
    )
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


def _code_tree(ref: str) -> Path:
    """The code of ``ref`` (``git archive``) in a temporary directory, for the A/B's other side."""
    tree = Path(tempfile.mkdtemp(prefix="bench-pull-ref-"))
    archive = subprocess.run(["git", "archive", ref], cwd=ROOT, capture_output=True, check=True).stdout
    subprocess.run(["tar", "-x", "-C", str(tree)], input=archive, check=True)
    return tree


def _pull_cpu(tree: Path, env: dict[str, str]) -> tuple[float, int]:
    """One ``auditor pull`` process run from ``tree``: (user + system CPU s, its peak RSS KiB)."""
    child = subprocess.Popen([sys.executable, "-m", "auditor", "pull"], env={**env, "PYTHONPATH": str(tree)},
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, cwd=tree)
    assert child.stderr is not None
    stderr = child.stderr.read()
    # wait4: this child's own usage (RUSAGE_CHILDREN's peak RSS is the largest child's so far).
    _, status, usage = os.wait4(child.pid, 0)
    child.returncode = os.waitstatus_to_exitcode(status)
    if child.returncode != 0:
        raise RuntimeError(f"pull from {tree} failed ({child.returncode}): {stderr[-2000:]!r}")
    return usage.ru_utime + usage.ru_stime, usage.ru_maxrss


def compare_code(argv: Sequence[str] | None = None) -> int:
    """Whole-process CPU per user of ``auditor pull``: this tree against ``--ref``, alternating.

    One sandbox in its own process (no latency, rate limits off) serves the realistic account; each
    side pulls ``--runs`` times into its own data directory, the two sides taking turns, so both meet
    the same machine load. The first pull of each side (no previous snapshot) is not counted: the
    measured pulls are the repeated pulls of a connection with history, as a daily pull is.
    """
    parser = argparse.ArgumentParser(description="pull CPU per user: this tree vs another git ref")
    parser.add_argument("--ref", default="main")
    parser.add_argument("--sizes", default="10000,50000")
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args(argv)
    sides = {"before": _code_tree(args.ref), "after": ROOT}
    print(f"Whole `auditor pull` processes, {args.ref} (before) and this tree (after) alternating, medians of "
          f"{args.runs}; user + system CPU of each pull process; peak RSS the largest of the side's pulls.\n")
    print("| users | before: CPU per user | after: CPU per user | change | peak RSS before / after |")
    print("|---:|---:|---:|---:|---:|")
    for users in (int(n) for n in args.sizes.split(",")):
        parent, child = multiprocessing.Pipe()
        server = multiprocessing.get_context("spawn").Process(target=_serve, args=(users, 0, child, False))
        server.start()
        envs: dict[str, dict[str, str]] = {}
        try:
            base_url = parent.recv()
            for name, tree in sides.items():
                home = Path(tempfile.mkdtemp(prefix=f"bench-pull-{name}-"))
                env = {k: v for k, v in os.environ.items() if not k.startswith(("AUDITOR_", "DIGICERT_"))}
                env.update(AUDITOR_HOME=str(home / "data"), AUDITOR_MASTER_KEY_FILE=str(home / "master.key"))
                subprocess.run([sys.executable, "-m", "auditor", "connect", "--base-url", base_url, "--key-stdin"],
                               input=KEY + "\n", env={**env, "PYTHONPATH": str(tree)}, capture_output=True,
                               text=True, check=True, cwd=tree)
                _pull_cpu(tree, env)  # the first pull: no previous snapshot
                envs[name] = env
            cpu: dict[str, list[float]] = {name: [] for name in sides}
            rss: dict[str, int] = dict.fromkeys(sides, 0)
            for _ in range(args.runs):
                for name, tree in sides.items():
                    seconds, peak = _pull_cpu(tree, envs[name])
                    cpu[name].append(seconds)
                    rss[name] = max(rss[name], peak)
                    print(json.dumps({"users": users, "side": name, "cpu_s": round(seconds, 3)}), file=sys.stderr)
        finally:
            parent.send(("stop", None))
            parent.recv()
            server.join(timeout=30)
            if server.is_alive():
                server.terminate()
            for env in envs.values():
                shutil.rmtree(Path(env["AUDITOR_HOME"]).parent, ignore_errors=True)
        before, after = (statistics.median(cpu[name]) * 1e6 / users for name in ("before", "after"))
        print(f"| {users:,} | {before:.0f} µs | {after:.0f} µs | {(after - before) / before:+.0%} | "
              f"{rss['before'] // 1024} / {rss['after'] // 1024} MB |")
    shutil.rmtree(sides["before"], ignore_errors=True)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["--compare-concurrency"]:
        return compare_concurrency(argv[1:])
    if argv[:1] == ["--compare-code"]:
        return compare_code(argv[1:])
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--sizes", default="1000,10000,50000")
    parser.add_argument("--caps", default="1000,500", help="page sizes the sandbox serves at most")
    parser.add_argument("--latency-ms", type=int, default=100)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--fetch", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.fetch:
        return _fetch(args.fetch)

    rows = []
    for users in (int(n) for n in args.sizes.split(",")):
        bench = Bench(users, args.latency_ms)
        try:
            for cap in (int(n) for n in args.caps.split(",")):
                rows.append(measure(bench, cap, args.runs))
                print(json.dumps(rows[-1]), file=sys.stderr)
        finally:
            bench.close()

    print(f"Realistic account, {args.latency_ms} ms added latency per answer, CertCentral's limits enforced; "
          f"medians of {args.runs} whole processes per cell, the plain fetch in the same run.\n")
    print("| users | sandbox serves | requests | pull wall (s) | plain fetch wall (s) | ratio | pull CPU µs/user | "
          "plain fetch CPU µs/user | 429s |")
    print("|---:|---|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        served = "limit=1000" if r["cap"] >= 1000 else f"at most {r['cap']}"
        print(f"| {r['users']:,} | {served} | {r['requests']} | {r['pull_wall']:.2f} | {r['fetch_wall']:.2f} | "
              f"{r['pull_wall'] / r['fetch_wall']:.2f}× | {r['pull_cpu'] * 1e6 / r['users']:.0f} | "
              f"{r['fetch_cpu'] * 1e6 / r['users']:.0f} | {r['429_single']} |")
    print("\nBack to back (two pulls, no pause):\n")
    print("| users | sandbox serves | first (s) | second (s) | 429s |")
    print("|---:|---|---:|---:|---:|")
    for r in rows:
        served = "limit=1000" if r["cap"] >= 1000 else f"at most {r['cap']}"
        print(f"| {r['users']:,} | {served} | {r['b2b_first']:.2f} | {r['b2b_second']:.2f} | {r['b2b_429']} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
