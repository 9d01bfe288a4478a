"""Benchmark: diff two 100,000-user snapshots (about 5% of users changed). Issue 3 wants under 1 s.

Run: ``.venv/bin/python -m bench.bench_diff [--users N] [--runs R]``. Prints a markdown table for
BENCHMARKS.md. Snapshot generation is excluded from the timing; the diff runs ``--runs`` times and
the median is reported.
"""

from __future__ import annotations

import argparse
import dataclasses
import random
import statistics
import time
from datetime import UTC, datetime, timedelta

from auditor.diff import diff_snapshots
from auditor.models import Division, PullProvenance, Role, Snapshot, User

T0 = datetime(2026, 11, 1, tzinfo=UTC)
ROLES = (Role(1, "Administrator"), Role(2, "Limited User"), Role(4, "Manager"), Role(5, "Standard User"))
DIVISIONS = tuple(Division(100 + i, f"Division {i}") for i in range(20))


def _snapshot(snapshot_id: int, users: list[User]) -> Snapshot:
    provenance = PullProvenance(
        connection="bench",
        base_url="http://127.0.0.1",
        account_id=1,
        key_fingerprint="bench",
        tool_version="bench",
        started_at=T0,
        finished_at=T0,
        requests=0,
        pages=0,
        retries=0,
        expected_total=len(users),
        received=len(users),
        complete=True,
    )
    return Snapshot(id=snapshot_id, connection="bench", taken_at=T0, users=tuple(users), provenance=provenance)


def make_pair(n_users: int, *, changed: float = 0.05, seed: int = 7) -> tuple[Snapshot, Snapshot]:
    """Two snapshots of ``n_users``; ``changed`` of them joined, left or changed in one field."""
    rng = random.Random(seed)
    old: list[User] = []
    for i in range(n_users):
        old.append(
            User(
                id=1_000_000 + i,
                email=f"user{i}@example.com",
                first_name=f"First{i}",
                last_name=f"Last{i}",
                status="active",
                roles=(rng.choice(ROLES),),
                division=rng.choice(DIVISIONS),
                last_login=None if rng.random() < 0.1 else T0 - timedelta(minutes=rng.randrange(200_000)),
            )
        )
    new = list(old)
    n_changed = int(n_users * changed)
    picks = rng.sample(range(n_users), n_changed)
    removed: set[int] = set()
    for k, index in enumerate(picks):
        user = new[index]
        match k % 7:
            case 0:
                removed.add(index)
            case 1:
                new[index] = dataclasses.replace(user, roles=(ROLES[0],))
            case 2:
                new[index] = dataclasses.replace(user, status="inactive")
            case 3:
                new[index] = dataclasses.replace(user, email=f"renamed{index}@example.com")
            case 4:
                new[index] = dataclasses.replace(user, division=rng.choice(DIVISIONS))
            case 5:
                new[index] = dataclasses.replace(user, last_login=T0 + timedelta(hours=1))
            case _:
                new[index] = dataclasses.replace(user, restricted=True, assigned_divisions=DIVISIONS[:2])
    survivors = [user for index, user in enumerate(new) if index not in removed]
    joiners = [
        User(id=9_000_000 + j, email=f"joiner{j}@example.com", status="active", roles=(ROLES[3],))
        for j in range(n_changed // 7)
    ]
    return _snapshot(1, old), _snapshot(2, survivors + joiners)


def run(n_users: int = 100_000, runs: int = 5) -> str:
    old, new = make_pair(n_users)
    timings: list[float] = []
    changes = 0
    for _ in range(runs):
        start = time.perf_counter()
        result = diff_snapshots(old, new)
        timings.append(time.perf_counter() - start)
        changes = len(result.changes)
    median = statistics.median(timings)
    return "\n".join(
        [
            "| benchmark | users per snapshot | changes | runs | median | min | max | target |",
            "|---|---|---|---|---|---|---|---|",
            f"| diff_snapshots | {n_users:,} | {changes:,} | {runs} | {median:.3f} s | {min(timings):.3f} s "
            f"| {max(timings):.3f} s | < 1 s ({'met' if median < 1 else 'NOT met'}) |",
        ]
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--users", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args(argv)
    print(run(args.users, args.runs))


if __name__ == "__main__":
    main()
