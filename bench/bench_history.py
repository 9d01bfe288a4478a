"""A year of history (issue 15, target 3): 365 daily pulls of a 2,000-user account against 2 pulls.

The account is the realistic one of ``bench/realistic.py`` (about 6 % stale users, 1 % never
signed in), moved forward one day per pull with the same shares per day: 20 % of the users sign
in, 1 % churn (half leavers, half joiners). Each installation is built by pulling every day's
state from the in-process sandbox through ``pipeline.pull`` (the code under test, with a clock
moved one day per pull), then each command is timed as a whole process, median of ``--runs``:
``history EMAIL``, ``report --format html``, ``findings``, ``snapshots``, on the 365-snapshot and
on the 2-snapshot installation, for this tree and for ``git archive main`` unpacked into a
temporary directory (the baseline, measured in the same run). One untimed ``report`` runs first
on each installation: it writes what a daily ``auditor run`` would have written (the trend's
summary rows) and warms the page cache for both alike.

Each installation holds a closed review campaign too (opened on the 30th pull, or the first of a
short history; three privileged users revoked who keep their roles all year), so the commands
that show review state (the report, findings) pay for it as a store with campaigns does.

Also measured: the database size, and its growth for one more pull in which nothing changed
(everything but the raw pages, which are the evidence and stay, compressed).

    .venv/bin/python -m bench.bench_history [--days 365] [--users 2000] [--runs 3] [--ref main]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parent.parent
KEY = "sandbox-admin-key"
COMMANDS: dict[str, tuple[str, ...]] = {
    "history EMAIL": ("history", "{email}"),
    "report --format html": ("report", "--format", "html", "--output", "{out}", "--overwrite"),
    "findings": ("findings",),
    "snapshots": ("snapshots",),
}


def year_of_states(users: int, days: int, *, seed: int = 15) -> list[Any]:
    """The account on each day: the realistic first state, then per day 20 % sign-ins and 1 % churn."""
    from bench.realistic import CHURN_SHARE, SIGN_IN_SHARE, _iso, realistic_pair

    start = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0) - timedelta(days=days + 1)
    first, _second = realistic_pair(users, seed=seed, today=start)
    rng = random.Random(seed ^ 0x365)  # deterministic benchmark data
    states = [first]
    current = [dict(u) for u in first.users]
    template = current[-1]
    joined = 0
    for day_index in range(1, days):
        day = start + timedelta(days=day_index)
        churn = max(1, int(len(current) * CHURN_SHARE / 2))
        leaving = set(rng.sample(range(3, len(current)), churn))
        kept = []
        for index, user in enumerate(current):
            if index in leaving:
                continue
            if rng.random() < SIGN_IN_SHARE:
                user = {**user, "last_login_date": _iso(day + timedelta(seconds=rng.randrange(1, 3600)))}
            kept.append(user)
        for _ in range(churn):
            email = f"joiner.{joined}@generated.example"
            kept.append({
                **{k: v for k, v in template.items() if k not in ("job_title", "telephone", "last_login_date",
                                                                   "container_assignment_ids")},
                "id": 3_000_000 + joined, "username": email, "email": email, "first_name": "New",
                "last_name": f"Joiner {joined}", "status": "active", "access_roles": [{"id": 5, "name": "User"}],
                "has_container_assignments": False,
            })
            joined += 1
        current = kept
        states.append(replace(first, users=tuple(current), as_of=day))
    return states


class _Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def build(home: Path, *, users: int, days: int, extra_unchanged: bool) -> dict[str, Any]:
    """Pull ``days`` daily states into ``home`` with the ``auditor`` package on sys.path (run in a child)."""
    from auditor.pipeline import Workspace, connect, pull
    from auditor.sandbox.server import Faults, SandboxServer

    states = year_of_states(users, days)
    home.mkdir(parents=True, exist_ok=True)
    clock = _Clock(states[0].as_of + timedelta(hours=12))
    workspace = Workspace(
        data_dir=home / "data", master_key_file=home / "master.key", clock=clock,
        client_options={"rate_limits": ((1_000_000, 1.0),)},
    )
    result: dict[str, Any] = {"email": states[0].users[5]["email"]}  # present all year
    done = _snapshot_count(home)  # resumed: the states already pulled are skipped
    # A resumed build serves on the port the saved connection names (its URL is tagged).
    with SandboxServer(states[0], faults=Faults(rate_limits=()), port=_saved_port(home)) as server:
        if not done:
            connect(workspace, "default", base_url=server.base_url, region=None, api_key=KEY)
        start = time.perf_counter()
        review_at = min(REVIEW_AT, max(0, len(states) - 2))
        for index, state in enumerate(states[done:], start=done):
            server.set_dataset(state)
            clock.now = state.as_of + timedelta(hours=12)
            pull(workspace, "default")
            if index == review_at:
                _review(workspace, home, clock, revoke=[u["email"] for u in states[-1].users if _admin(u)][:3])
        result["build_s"] = time.perf_counter() - start
        if extra_unchanged:
            before = _sizes(home)
            server.set_dataset(states[-1])
            clock.now = states[-1].as_of + timedelta(days=1 + max(0, done - len(states)), hours=12)
            pull(workspace, "default")  # the same state again: nobody changed
            after = _sizes(home)
            result["unchanged_growth_kb"] = (after["db"] - before["db"] - (after["raw"] - before["raw"])) / 1024
            result["unchanged_raw_kb"] = (after["raw"] - before["raw"]) / 1024
    result.update({f"final_{k}": v for k, v in _sizes(home).items()})
    return result


REVIEW_AT = 29  # the pull (0-based) a campaign is opened on
REVIEWER = "Rita Reviewer <rita.reviewer@bench.example>"


def _admin(user: dict[str, Any]) -> bool:
    return any(role.get("name") == "Administrator" for role in user.get("access_roles", ()))


def _review(workspace: Any, home: Path, clock: _Clock, *, revoke: list[str]) -> None:
    """Open a campaign on the latest pull, revoke ``revoke`` (they keep their roles), close it."""
    import csv

    from auditor.pipeline.review import close_review, import_review, open_review

    sheet = home / "review.csv"
    open_review(workspace, "default", snapshot_id=None, scope="privileged", due=None, output=sheet)
    with sheet.open(newline="", encoding="utf-8") as handle:
        rows = list(csv.reader(handle))
    header = rows[0]
    for row in rows[1:]:
        if row[header.index("email")] in revoke:
            row[header.index("decision")] = "revoke"
            row[header.index("justification")] = "benchmark"
    with sheet.open("w", newline="", encoding="utf-8") as handle:
        csv.writer(handle).writerows(rows)
    clock.now += timedelta(hours=1)
    import_review(workspace, sheet, by=REVIEWER)
    clock.now += timedelta(hours=1)
    close_review(workspace, campaign_id=None, connection="default", by=REVIEWER, statement="benchmark review",
                 allow_undecided=True)


def _snapshot_count(home: Path) -> int:
    path = home / "data" / "auditor.db"
    if not path.exists():
        return 0
    with contextlib.closing(sqlite3.connect(path)) as db:
        return int(db.execute("SELECT count(*) FROM snapshots").fetchone()[0])


def _saved_port(home: Path) -> int:
    path = home / "data" / "auditor.db"
    if not path.exists():
        return 0
    with contextlib.closing(sqlite3.connect(path)) as db:
        row = db.execute("SELECT base_url FROM connections").fetchone()
    return int(urlsplit(row[0]).port or 0) if row else 0


def _sizes(home: Path) -> dict[str, float]:
    path = home / "data" / "auditor.db"
    with contextlib.closing(sqlite3.connect(path, isolation_level=None)) as db:
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        raw = db.execute("SELECT coalesce(sum(length(body_zlib)), 0) FROM raw_pages").fetchone()[0]
    return {"db": float(path.stat().st_size), "raw": float(raw)}


def _env(code: Path, home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AUDITOR_", "DIGICERT_"))}
    env.update(AUDITOR_HOME=str(home / "data"), AUDITOR_MASTER_KEY_FILE=str(home / "master.key"),
               PYTHONPATH=f"{code}{os.pathsep}{ROOT}")
    return env


def build_in_child(code: Path, home: Path, *, users: int, days: int, extra_unchanged: bool) -> dict[str, Any]:
    # Run as a script: sys.path[0] is then bench/, so `auditor` comes from ``code`` (PYTHONPATH).
    command = [sys.executable, str(Path(__file__).resolve()), "--build", str(home), "--users", str(users),
               "--days", str(days)] + (["--extra-unchanged"] if extra_unchanged else [])
    home.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(command, env=_env(code, home), cwd=home, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"building {home} with {code} failed: {done.stderr[-3000:]}")
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def timed(code: Path, home: Path, args: tuple[str, ...]) -> dict[str, float]:
    """One whole ``python -m auditor ARGS`` process: wall seconds and peak RSS."""
    start = time.perf_counter()
    child = subprocess.Popen([sys.executable, "-m", "auditor", *args], env=_env(code, home), cwd=home,
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _pid, status, usage = os.wait4(child.pid, 0)
    wall = time.perf_counter() - start
    code_ = os.waitstatus_to_exitcode(status)
    if code_ not in (0, 1):
        stderr = child.stderr.read().decode() if child.stderr else ""
        raise RuntimeError(f"auditor {' '.join(args)} failed ({code_}) with {code}: {stderr[-2000:]}")
    if child.stderr:
        child.stderr.close()
    return {"wall": wall, "rss_mb": usage.ru_maxrss / 1024}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--users", type=int, default=2000)
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--ref", default="main", help="the baseline: a commit or branch (default main)")
    parser.add_argument("--after-ref", help="measure this commit instead of the working tree")
    parser.add_argument("--homes", type=Path, help="keep the built installations here and reuse them")
    parser.add_argument("--build", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--extra-unchanged", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.build is not None:
        print(json.dumps(build(args.build, users=args.users, days=args.days, extra_unchanged=args.extra_unchanged)))
        return
    from bench.bench_report_pdf import unpack

    with tempfile.TemporaryDirectory(prefix="bench-history-") as temp:
        base = Path(temp)
        after = unpack(args.after_ref, base / "after-code") if args.after_ref else ROOT
        codes = {"before": unpack(args.ref, base / "before-code"), "after": after}
        results: dict[str, dict[str, Any]] = {}
        for label, code in codes.items():
            for days in (args.days, 2):
                home = (args.homes or base) / f"{label}-{days}"
                record = home / "built.json"
                if record.exists():
                    built = json.loads(record.read_text())
                else:
                    built = build_in_child(code, home, users=args.users, days=days, extra_unchanged=days == args.days)
                    record.write_text(json.dumps(built))
                email = built.pop("email")
                timed(code, home, ("report", "--format", "html", "--output", str(home / "warm"), "--overwrite"))
                runs: dict[str, list[dict[str, float]]] = {name: [] for name in COMMANDS}
                for _ in range(args.runs):
                    for name, template in COMMANDS.items():
                        command = tuple(a.format(email=email, out=str(home / "out")) for a in template)
                        runs[name].append(timed(code, home, command))
                results[f"{label}-{days}"] = {
                    **built,
                    **{name: {k: statistics.median(r[k] for r in values) for k in ("wall", "rss_mb")}
                       for name, values in runs.items()},
                }
                print(f"{label} {days} days: {json.dumps(results[f'{label}-{days}'])}", file=sys.stderr, flush=True)
    print(report(results, days=args.days, users=args.users, ref=args.ref, runs=args.runs))


def report(results: dict[str, dict[str, Any]], *, days: int, users: int, ref: str, runs: int) -> str:
    """The BENCHMARKS.md table."""
    lines = [
        f"{days} daily pulls of a {users:,}-user account against the same commands on 2 pulls; medians of {runs} "
        f"whole processes; before = `git archive {ref}` run from a temporary copy, in the same run.",
        "",
        "| | DB size | growth per unchanged pull (w/o raw pages) | " + " | ".join(f"`{c}`" for c in COMMANDS) + " |",
        "|---|---|---|" + "---|" * len(COMMANDS),
    ]
    for label in ("before", "after"):
        year, two = results[f"{label}-{days}"], results[f"{label}-2"]
        cells = []
        for name in COMMANDS:
            ratio = year[name]["wall"] / two[name]["wall"]
            cells.append(f"{year[name]['wall']:.2f} s vs {two[name]['wall']:.2f} s (**{ratio:.2f}×**), "
                         f"{year[name]['rss_mb']:.0f} MB")
        lines.append(
            f"| {label} | {year['final_db'] / 1e6:.0f} MB ({year['final_raw'] / 1e6:.0f} MB raw pages) | "
            f"{year['unchanged_growth_kb']:.0f} KB (+{year['unchanged_raw_kb']:.0f} KB raw pages) | "
            + " | ".join(cells) + " |"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    main()
