"""Benchmark: a 100,000-person HR roster against a 10,000-user snapshot (issue 18: well under a second).

Run: ``.venv/bin/python -m bench.bench_identity [--people N] [--users N] [--runs R]``. Prints a
markdown table for BENCHMARKS.md. Generating the files and the snapshot is excluded.

What is measured, each as the median of ``--runs`` runs (peak memory in a separate, traced run):

* **read**: ``auditor.identity.load`` of the CSV (through ``read_input_file``, parsing, validation:
  dates, duplicate employee ids), as every command with ``--identity`` pays it;
* **match**: ``match_users``, the dict index the rules use (email, then alias), the index built
  from the 100,000 records in every run;
* **baseline, pandas**: the same matching as two pandas merges (email, then the exploded aliases
  of users not matched by email), starting from the same parsed records: the vectorised way;
* **rules**: ``auditor.rules.evaluate`` of the whole snapshot with the identity source (every rule).

Both matchers must agree on every user, or the benchmark fails.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import random
import statistics
import tempfile
import time
import tracemalloc
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from auditor.config import default_config
from auditor.identity import IdentityConfig, IdentityRequest, IdentitySource, load, match_users
from auditor.models import PullProvenance, Role, Snapshot, User
from auditor.rules import evaluate

T0 = datetime(2026, 11, 1, 6, tzinfo=UTC)
ROLES = (Role(1, "Administrator"), Role(4, "Manager"), Role(5, "Standard User"), Role(2, "Limited User"))


def make_roster(path: Path, people: int, *, seed: int = 18) -> None:
    """A generic-preset CSV: 8% terminated (dated), every 20th person with an alias."""
    rng = random.Random(seed)
    lines = ["employee_id,name,email,aliases,department,manager,status,termination_date"]
    for i in range(people):
        terminated = rng.random() < 0.08
        when = (T0 - timedelta(days=rng.randrange(1, 400))).date().isoformat() if terminated else ""
        alias = f"p{i}@legacy.example.com" if i % 20 == 0 else ""
        lines.append(f"E{i:07d},Person {i},person{i}@example.com,{alias},Dept {i % 40},boss{i % 97}@example.com,"
                     f"{'terminated' if terminated else 'active'},{when}")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def make_snapshot(users: int, people: int, *, seed: int = 19) -> Snapshot:
    """Users: 90% by primary email, 5% by alias only, 5% orphans; mixed case, as CertCentral has them."""
    rng = random.Random(seed)
    chosen = rng.sample(range(people), users)
    result: list[User] = []
    for n, i in enumerate(chosen):
        kind = n % 20
        if kind == 0:
            email = f"Orphan{n}@Example.com"
        elif kind == 1:
            j = (i // 20) * 20  # a person with an alias
            email = f"p{j}@legacy.example.com"
        else:
            email = f"Person{i}@Example.COM"
        result.append(User(id=5_000_000 + n, email=email, status="active", roles=(rng.choice(ROLES),),
                           last_login=T0 - timedelta(days=rng.randrange(60))))
    provenance = PullProvenance(
        connection="bench", base_url="http://127.0.0.1", account_id=1, key_fingerprint="bench", tool_version="bench",
        started_at=T0, finished_at=T0, requests=0, pages=0, retries=0, expected_total=users, received=users,
        complete=True,
    )
    return Snapshot(id=1, connection="bench", taken_at=T0, users=tuple(result), provenance=provenance)


def pandas_match(users: tuple[User, ...], source: IdentitySource) -> dict[int, str]:
    """The baseline: user id -> matched record's employee id, by two pandas merges (first candidate wins)."""
    import pandas as pd

    records = pd.DataFrame(
        {
            "employee_id": [r.employee_id for r in source.records],
            "email": [r.email.casefold() for r in source.records],
            "aliases": [list(r.aliases) for r in source.records],
        }
    )
    frame = pd.DataFrame({"user_id": [u.id for u in users], "email": [u.email.strip().casefold() for u in users]})
    by_email = frame.merge(records[["email", "employee_id"]], on="email", how="inner").drop_duplicates("user_id")
    rest = frame[~frame["user_id"].isin(by_email["user_id"])]
    aliases = records[["aliases", "employee_id"]].explode("aliases").dropna()
    aliases["alias"] = aliases["aliases"].str.casefold()
    by_alias = rest.merge(aliases[["alias", "employee_id"]], left_on="email", right_on="alias", how="inner")
    by_alias = by_alias.drop_duplicates("user_id")
    matched = pd.concat([by_email[["user_id", "employee_id"]], by_alias[["user_id", "employee_id"]]])
    return dict(zip(matched["user_id"].tolist(), matched["employee_id"].tolist(), strict=True))


CPU: dict[str, float] = {}


def _median(runs: int, action: Callable[[], Any], *, name: str = "") -> tuple[float, Any]:
    """Median wall time (and, in CPU[name], median CPU time: the machine is shared, so both count)."""
    timings: list[float] = []
    cpu: list[float] = []
    value: Any = None
    for _ in range(runs):
        start, start_cpu = time.perf_counter(), time.process_time()
        value = action()
        timings.append(time.perf_counter() - start)
        cpu.append(time.process_time() - start_cpu)
    CPU[name] = statistics.median(cpu)
    return statistics.median(timings), value


def _peak(action: Callable[[], Any]) -> float:
    tracemalloc.start()
    try:
        action()
        return tracemalloc.get_traced_memory()[1] / 1e6
    finally:
        tracemalloc.stop()


def run(people: int = 100_000, users: int = 10_000, runs: int = 5) -> str:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "hr.csv"
        make_roster(path, people)
        size = path.stat().st_size / 1e6
        snapshot = make_snapshot(users, people)
        request = IdentityRequest(files=(path,))

        def read() -> IdentitySource:
            loaded = load(IdentityConfig(), request)
            assert loaded is not None
            return loaded.source

        read_time, source = _median(runs, read, name="read")
        read_peak = _peak(read)
    def match() -> dict[int, Any]:
        # A new records tuple each time (match_users builds the index in every run).
        fresh = dataclasses.replace(source, records=tuple(iter(source.records)))
        return match_users(snapshot.users, fresh, now=T0)

    match_time, matches = _median(runs, match, name="match")
    match_peak = _peak(match)
    pandas_time, baseline = _median(runs, lambda: pandas_match(snapshot.users, source), name="pandas")
    pandas_peak = _peak(lambda: pandas_match(snapshot.users, source))
    ours = {user_id: match.record.employee_id for user_id, match in matches.items()}
    if ours != baseline:
        raise SystemExit(f"the matchers disagree on {len(set(ours.items()) ^ set(baseline.items()))} users")
    config = default_config()
    rules_time, result = _median(
        runs, lambda: evaluate(snapshot, previous=None, history={}, config=config, attestations=(), now=T0,
                               identity=source), name="rules",
    )
    leavers = sum(1 for f in result.findings if f.rule_id == "terminated-still-active")
    orphans = sum(1 for f in result.findings if f.rule_id == "not-in-identity-source")
    total = read_time + match_time
    rows = [
        ("read the roster (`identity.load`)", "read", read_time, read_peak, f"{people:,} rows, {size:.1f} MB CSV"),
        ("match (`match_users`, dict index)", "match", match_time, match_peak,
         f"{len(matches):,} of {users:,} users matched"),
        ("baseline: match with two pandas merges", "pandas", pandas_time, pandas_peak,
         "same result, checked user by user"),
        ("all rules with the identity source", "rules", rules_time, None,
         f"{leavers:,} terminated-still-active, {orphans:,} not-in-identity-source"),
    ]
    cpu_total = CPU["read"] + CPU["match"]
    load_average = f"{os.getloadavg()[0]:.1f}" if hasattr(os, "getloadavg") else "unknown"
    lines = [
        f"| step | wall, median of {runs} | CPU, median | peak memory (traced) | notes |",
        "|---|---:|---:|---:|---|",
        *(f"| {label} | {seconds:.3f} s | {CPU[key]:.3f} s | {f'{peak:.0f} MB' if peak is not None else '—'} "
          f"| {notes} |" for label, key, seconds, peak, notes in rows),
        "",
        f"Read and match together: {total:.3f} s wall, {cpu_total:.3f} s CPU (target: well under 1 s, "
        f"{'met' if cpu_total < 1 else 'NOT met'} in CPU time); load average {load_average} on {os.cpu_count()} cores.",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--people", type=int, default=100_000)
    parser.add_argument("--users", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args(argv)
    print(run(args.people, args.users, args.runs))


if __name__ == "__main__":
    main()
