"""Benchmark: where pandas is the better tool, measured side by side with plain Python (issue 13).

Run: ``.venv/bin/python -m bench.bench_pandas [--runs R] [--quick]``. Prints markdown for
BENCHMARKS.md. Every comparison checks that both implementations give the same result, and runs
them alternately (pandas, plain, pandas, ...) so that the shared machine's load hits both alike;
medians of ``--runs`` runs, generation of the data excluded.

1. **Snapshot diff** at 10,000 / 50,000 / 100,000 users (``bench_diff.make_pair``: seeded, about
   5 % of users joined, left or changed): ``auditor.diff.diff_snapshots`` (dicts keyed by user id)
   against the pandas version it replaced (kept below as :func:`pandas_diff`, object columns
   compared as NumPy arrays).
2. **History analytics over many snapshots**: what ``Store.user_history`` computes from its
   ``(user id, taken_at, role names)`` rows (first and last sighting, role history), for 12 and 24
   monthly snapshots of 10,000 users and 12 of 100,000: the store's loop against a pandas
   ``groupby`` / ``shift`` version, both ending in the same ``UserHistory`` values.
3. **Identity-source join at 100,000 rows**: ``identity.match_users`` (dict index) against two
   pandas merges (``bench_identity.pandas_match``), 100,000 people and 100,000 users.
4. **The cost of importing pandas**: wall time and peak RSS of ``import pandas`` in a fresh
   interpreter against ``python -c pass``: what every command paid when the diff imported it.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from auditor.diff import (
    _FIELD_KINDS,
    DEFAULT_PRIVILEGED_ROLES,
    _name_fast,
    _unique_users,
    diff_snapshots,
    key_changes,
    restriction_text,
    roles_text,
    sign_in_text,
)
from auditor.identity import IdentityConfig, IdentityRequest, load, match_users
from auditor.models import Change, ChangeKind, ChangeSet, PrivilegedRoles, Snapshot, User, UserHistory
from bench.bench_diff import make_pair
from bench.bench_identity import make_roster, pandas_match
from bench.bench_identity import make_snapshot as identity_snapshot

T0 = datetime(2026, 11, 1, tzinfo=UTC)
_KIND_ORDER = {kind: index for index, kind in enumerate(ChangeKind)}


# --- 1. the diff --------------------------------------------------------------------------------


def _frame(users: Mapping[int, User]) -> pd.DataFrame:
    """The pandas diff's table, built as it was: column by column with the same fast paths."""
    values = list(users.values())
    columns: dict[str, list[str]] = {
        "email": [u.email for u in values],
        "roles": [u.roles[0].name if len(u.roles) == 1 else roles_text(u.roles) for u in values],
        "status": [u.status for u in values],
        "name": [_name_fast(u.first_name, u.last_name) for u in values],
        "division": [u.division.name if u.division is not None else "" for u in values],
        "restriction": [restriction_text(u) if u.restricted else "unrestricted" for u in values],
    }
    frame = pd.DataFrame({name: pd.Series(column, dtype=object) for name, column in columns.items()})
    frame["login"] = np.fromiter(
        (u.last_login.timestamp() if u.last_login is not None else np.nan for u in values),
        dtype=np.float64,
        count=len(values),
    )
    frame.index = pd.Index(np.fromiter(users.keys(), dtype=np.int64, count=len(values)), name="id")
    return frame


def pandas_diff(
    old: Snapshot, new: Snapshot, *, privileged_roles: Sequence[str] = DEFAULT_PRIVILEGED_ROLES
) -> ChangeSet:
    """The diff as it was written with pandas (auditor 0.x up to issue 13), for comparison."""
    privileged = PrivilegedRoles.of(privileged_roles)
    old_users, new_users = _unique_users(old), _unique_users(new)
    before, after = _frame(old_users), _frame(new_users)
    added_ids = after.index.difference(before.index)
    removed_ids = before.index.difference(after.index) if new.complete else before.index[:0]
    common = before.index.intersection(after.index)
    b, a = before.loc[common], after.loc[common]
    changes: list[Change] = []
    for user_id in added_ids.tolist():
        user = new_users[user_id]
        changes.append(Change(kind=ChangeKind.ADDED, user_id=user_id, email=user.email, after=roles_text(user.roles),
                              escalation=bool(privileged.matched(user)), became_admin=user.is_admin))
    for user_id in removed_ids.tolist():
        user = old_users[user_id]
        changes.append(Change(kind=ChangeKind.REMOVED, user_id=user_id, email=user.email,
                              before=roles_text(user.roles)))
    for field_name, kind in _FIELD_KINDS:
        old_values, new_values = b[field_name].to_numpy(), a[field_name].to_numpy()
        changed = old_values != new_values
        for user_id, was, now in zip(common[changed].tolist(), old_values[changed].tolist(),
                                     new_values[changed].tolist(), strict=True):
            escalation = became_admin = False
            if kind is ChangeKind.ROLE:
                old_user, new_user = old_users[user_id], new_users[user_id]
                escalation = bool(privileged.matched(new_user) - privileged.matched(old_user))
                became_admin = new_user.is_admin and not old_user.is_admin
            changes.append(Change(kind=kind, user_id=user_id, email=new_users[user_id].email, before=was, after=now,
                                  escalation=escalation, became_admin=became_admin))
    old_login, new_login = b["login"].to_numpy(), a["login"].to_numpy()
    first = np.isnan(old_login) & ~np.isnan(new_login)
    later = new_login > old_login
    for kind, mask in ((ChangeKind.FIRST_SIGN_IN, first), (ChangeKind.SIGNED_IN, later)):
        for user_id in common[mask].tolist():
            changes.append(Change(kind=kind, user_id=user_id, email=new_users[user_id].email,
                                  before=sign_in_text(old_users[user_id].last_login),
                                  after=sign_in_text(new_users[user_id].last_login)))
    changes.extend(key_changes(old, new, new_users))
    changes.sort(key=lambda c: (_KIND_ORDER[c.kind], c.email.casefold(), c.email, c.user_id, c.key_id or 0))
    return ChangeSet(from_snapshot=old.id, to_snapshot=new.id, changes=tuple(changes))


# --- 2. history analytics -----------------------------------------------------------------------

HistoryRow = tuple[int, str, str]
ROLE_NAMES = ("Administrator", "Manager", "Standard User", "Limited User", "Finance Manager")


def history_rows(snapshots: int, users: int, *, seed: int = 13) -> list[HistoryRow]:
    """``Store.user_history``'s rows, in its order (taken_at, snapshot): monthly pulls, 2 % joiners
    and leavers and 2 % role changes per month."""
    rng = random.Random(seed)
    current = {1_000_000 + i: rng.choice(ROLE_NAMES) for i in range(users)}
    next_id = 2_000_000
    rows: list[HistoryRow] = []
    for month in range(snapshots):
        taken = (T0 - timedelta(days=30 * (snapshots - month))).isoformat()
        for user_id, roles in current.items():
            rows.append((user_id, taken, roles))
        ids = list(current)
        for user_id in rng.sample(ids, users // 50):
            del current[user_id]
        for user_id in rng.sample([i for i in ids if i in current], users // 50):
            current[user_id] = rng.choice(ROLE_NAMES)
        for _ in range(users // 50):
            current[next_id] = "Standard User"
            next_id += 1
    return rows


def plain_history(rows: Sequence[HistoryRow]) -> dict[int, UserHistory]:
    """The loop of ``Store.user_history`` (the store's escaping of role names left out of both)."""
    times: dict[str, datetime] = {}
    first: dict[int, datetime] = {}
    last: dict[int, datetime] = {}
    current: dict[int, str] = {}
    changes: dict[int, list[tuple[datetime, str]]] = {}
    for user_id, taken_text, role_names in rows:
        taken = times.get(taken_text)
        if taken is None:
            taken = times[taken_text] = datetime.fromisoformat(taken_text)
        if user_id not in first:
            first[user_id] = taken
            changes[user_id] = [(taken, role_names)]
        elif current[user_id] != role_names:
            changes[user_id].append((taken, role_names))
        current[user_id] = role_names
        last[user_id] = taken
    return {
        user_id: UserHistory(user_id=user_id, first_seen=first[user_id], last_seen=last[user_id],
                             role_history=tuple(changes[user_id]))
        for user_id in first
    }


def pandas_history(rows: Sequence[HistoryRow]) -> dict[int, UserHistory]:
    """The same with pandas: a stable sort by user, first/last per group, role changes by shift."""
    frame = pd.DataFrame.from_records(rows, columns=["user_id", "taken", "roles"])
    frame["order"] = np.arange(len(frame))
    frame = frame.sort_values(["user_id", "order"], kind="stable")
    times = {text: datetime.fromisoformat(text) for text in frame["taken"].unique()}
    user_ids = frame["user_id"].to_numpy()
    roles = frame["roles"].to_numpy()
    new_user = np.empty(len(frame), dtype=bool)
    new_user[0] = True
    new_user[1:] = user_ids[1:] != user_ids[:-1]
    changed = new_user.copy()
    changed[1:] |= roles[1:] != roles[:-1]
    grouped = frame.groupby("user_id", sort=False)["taken"]
    first = grouped.first().to_dict()
    last = grouped.last().to_dict()
    kept = frame[changed]
    role_history: dict[int, list[tuple[datetime, str]]] = {}
    for user_id, taken, role_names in zip(kept["user_id"].tolist(), kept["taken"].tolist(), kept["roles"].tolist(),
                                          strict=True):
        role_history.setdefault(user_id, []).append((times[taken], role_names))
    return {
        user_id: UserHistory(user_id=user_id, first_seen=times[first[user_id]], last_seen=times[last[user_id]],
                             role_history=tuple(role_history[user_id]))
        for user_id in first
    }


# --- measuring ----------------------------------------------------------------------------------


def side_by_side(
    runs: int, pandas_way: Callable[[], Any], plain_way: Callable[[], Any]
) -> tuple[tuple[float, float], tuple[float, float]]:
    """((pandas, plain) median wall seconds, (pandas, plain) median CPU seconds), run alternately.

    CPU time is the figure to compare on the shared machine (wall time grows with its load); both
    implementations must give the same result.
    """
    wall: dict[str, list[float]] = {"pandas": [], "plain": []}
    cpu: dict[str, list[float]] = {"pandas": [], "plain": []}
    results: dict[str, Any] = {}
    for _ in range(runs):
        for name, action in (("pandas", pandas_way), ("plain", plain_way)):
            start, start_cpu = time.perf_counter(), time.process_time()
            results[name] = action()
            wall[name].append(time.perf_counter() - start)
            cpu[name].append(time.process_time() - start_cpu)
    if results["pandas"] != results["plain"]:
        raise SystemExit("pandas and plain Python disagree")
    median = statistics.median
    return (median(wall["pandas"]), median(wall["plain"])), (median(cpu["pandas"]), median(cpu["plain"]))


def _row(what: str, size: str, measured: tuple[tuple[float, float], tuple[float, float]]) -> str:
    (pandas_wall, plain_wall), (pandas_s, plain_s) = measured
    faster = "plain Python" if plain_s < pandas_s else "pandas"
    ratio = max(pandas_s, plain_s) / min(pandas_s, plain_s)
    return (
        f"| {what} | {size} | {pandas_s:.3f} s | {plain_s:.3f} s | {faster}, {ratio:.1f}× "
        f"| {pandas_wall:.3f} s / {plain_wall:.3f} s |"
    )


def import_cost(runs: int) -> str:
    """Median wall time and peak RSS of a fresh interpreter that imports pandas, against one that does not."""
    # VmHWM: the peak resident set of this process image (ru_maxrss would carry the parent's over exec).
    probe = "import re{imp}; print(re.search(r'VmHWM:\\s+(\\d+)', open('/proc/self/status').read())[1])"
    lines = []
    measured: dict[str, tuple[float, float]] = {}
    for label, imp in (("python -c pass", ""), ("import pandas", "; import pandas")):
        timings: list[float] = []
        rss: list[float] = []
        for _ in range(runs):
            start = time.perf_counter()
            out = subprocess.run([sys.executable, "-c", probe.format(imp=imp)], capture_output=True, text=True,
                                 check=True)
            timings.append(time.perf_counter() - start)
            rss.append(int(out.stdout) / 1024)
        measured[label] = (statistics.median(timings), statistics.median(rss))
    base_s, base_mb = measured["python -c pass"]
    with_s, with_mb = measured["import pandas"]
    lines.append(f"| fresh interpreter | {base_s * 1000:.0f} ms | {base_mb:.0f} MB |")
    lines.append(f"| fresh interpreter + `import pandas` | {with_s * 1000:.0f} ms | {with_mb:.0f} MB |")
    lines.append(f"| cost of the import | **{(with_s - base_s) * 1000:.0f} ms** | **{with_mb - base_mb:.0f} MB** |")
    return "\n".join(lines)


def run(runs: int = 5, *, quick: bool = False) -> str:
    out = [
        f"Medians of {runs} runs each, pandas and plain Python run alternately; "
        f"load average {_load()} on 2 cores when it started.",
        "",
        "| what | size | pandas (CPU) | plain Python (CPU) | faster | wall, pandas / plain |",
        "|---|---|---:|---:|---|---:|",
    ]
    for users in (10_000, 50_000) if quick else (10_000, 50_000, 100_000):
        old, new = make_pair(users)
        changes = len(diff_snapshots(old, new).changes)
        measured = side_by_side(runs, lambda o=old, n=new: pandas_diff(o, n), lambda o=old, n=new: diff_snapshots(o, n))
        out.append(_row("snapshot diff", f"{users:,} users, {changes:,} changes", measured))
    for snapshots, users in ((12, 10_000),) if quick else ((12, 10_000), (24, 10_000), (12, 100_000)):
        rows = history_rows(snapshots, users)
        measured = side_by_side(runs, lambda r=rows: pandas_history(r), lambda r=rows: plain_history(r))
        out.append(_row("user history", f"{snapshots} snapshots × {users:,} users ({len(rows):,} rows)", measured))
    people = 20_000 if quick else 100_000
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "hr.csv"
        make_roster(path, people)
        loaded = load(IdentityConfig(), IdentityRequest(files=(path,)))
        assert loaded is not None
        source = loaded.source

    def plain_join(snapshot: Snapshot) -> dict[int, str]:
        # The index is built in every run, as for a freshly read source.
        fresh = dataclasses.replace(source, records=tuple(iter(source.records)))
        return {uid: m.record.employee_id for uid, m in match_users(snapshot.users, fresh, now=T0).items()}

    for users in (10_000, people):
        snapshot = identity_snapshot(users, people)
        measured = side_by_side(runs, lambda s=snapshot: pandas_match(s.users, source),
                                lambda s=snapshot: plain_join(s))
        out.append(_row("identity-source join", f"{people:,} people × {users:,} users", measured))
    out += ["", "| start-up | wall, median | peak RSS |", "|---|---:|---:|", import_cost(runs)]
    return "\n".join(out)


def _load() -> str:
    try:
        return f"{os.getloadavg()[0]:.1f}"
    except (AttributeError, OSError):
        return "unknown"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help="smaller sizes, to check the benchmark runs")
    args = parser.parse_args(argv)
    print(run(args.runs, quick=args.quick))


if __name__ == "__main__":
    main()
