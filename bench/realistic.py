"""The realistic benchmark account (issue 15): two pulls of a generated, seeded account.

``Dataset.generate`` (the sandbox's synthetic account) spreads sign-ins evenly over a year, so
three users in four are "stale": a worst case, not an account. This reshapes it into what the
issue measured against, deterministically from ``seed`` and the day it is built on:

* about 6 % of users stale (last sign-in 91-365 days ago), 1 % that never signed in, the rest
  signed in within the last 60 days;
* between the two pulls, 1 % churn (half leavers removed, half joiners added) and 20 % of the
  users signing in;
* the generator's role mix (about 2 % Administrators, 8 % Managers), statuses and divisions.

``build_home(users, directory)`` serves both datasets from the sandbox and pulls each through the
real CLI (``connect``, ``pull``, ``pull``), leaving an installation on which ``auditor report``
can be run and timed. Run ``.venv/bin/python -m bench.realistic --users 10000 DIR`` to build one.
"""

from __future__ import annotations

import argparse
import os
import random
import subprocess
import sys
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from auditor.sandbox.dataset import Dataset
from auditor.sandbox.server import Faults, SandboxServer

ROOT = Path(__file__).resolve().parent.parent
KEY = "sandbox-admin-key"
STALE_SHARE = 0.06
NEVER_SHARE = 0.01
CHURN_SHARE = 0.01
SIGN_IN_SHARE = 0.20
#: Not copied from the template user into a joiner.
_PERSONAL = ("job_title", "telephone", "last_login_date", "container_assignment_ids")


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="seconds")


def realistic_pair(users: int, *, seed: int = 15, today: datetime | None = None) -> tuple[Dataset, Dataset]:
    """The account at the first pull and at the second (after churn and sign-ins)."""
    day = (today or datetime.now(UTC)).replace(hour=0, minute=0, second=0, microsecond=0)
    base = Dataset.generate(users, seed=seed)
    rng = random.Random(seed ^ 0x15)  # deterministic benchmark data
    first: list[dict[str, Any]] = []
    for index, raw in enumerate(base.users):
        user = dict(raw)  # the generator's dicts are shared: copy before reshaping
        draw = rng.random()
        if index < 3:  # the generator's anchors (the keys' users) keep a recent sign-in
            draw = 1.0
        if draw < NEVER_SHARE:
            user.pop("last_login_date", None)
        elif draw < NEVER_SHARE + STALE_SHARE:
            user["last_login_date"] = _iso(day - timedelta(days=rng.randrange(91, 366), seconds=rng.randrange(86400)))
        else:
            user["last_login_date"] = _iso(day - timedelta(seconds=rng.randrange(1, 60 * 86400)))
        first.append(user)
    second: list[dict[str, Any]] = []
    leavers = joiners = int(users * CHURN_SHARE / 2)
    leaving = set(rng.sample(range(3, len(first)), leavers))
    for index, user in enumerate(first):
        if index in leaving:
            continue
        if rng.random() < SIGN_IN_SHARE:
            user = {**user, "last_login_date": _iso(day + timedelta(seconds=rng.randrange(1, 3600)))}
        second.append(user)
    template = first[-1]
    for index in range(joiners):
        user_id = 3_000_000 + index
        email = f"joiner.{index}@generated.example"
        second.append({
            **{k: v for k, v in template.items() if k not in _PERSONAL},
            "id": user_id, "username": email, "email": email, "first_name": "New", "last_name": f"Joiner {index}",
            "status": "active", "access_roles": [{"id": 5, "name": "User"}], "has_container_assignments": False,
        })
    return replace(base, users=tuple(first), as_of=day), replace(base, users=tuple(second), as_of=day)


def cli(home: Path, *args: str, stdin: str = "", timeout: float = 900) -> subprocess.CompletedProcess[str]:
    """``python -m auditor ARGS`` against the installation in ``home``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AUDITOR_", "DIGICERT_"))}
    env.update(AUDITOR_HOME=str(home / "data"), AUDITOR_MASTER_KEY_FILE=str(home / "master.key"),
               PYTHONPATH=str(ROOT))
    return subprocess.run([sys.executable, "-m", "auditor", *args], input=stdin, capture_output=True, text=True,
                          env=env, cwd=home, timeout=timeout, check=False)


def build_home(users: int, home: Path, *, seed: int = 15) -> Path:
    """An installation with two pulls of the realistic account of ``users`` users; returns ``home``."""
    home.mkdir(parents=True, exist_ok=True)
    first, second = realistic_pair(users, seed=seed)
    with SandboxServer(first, faults=Faults(rate_limits=())) as server:
        for step, dataset in (
            (("connect", "--base-url", server.base_url, "--key-stdin"), first), (("pull",), first), (("pull",), second),
        ):
            server.set_dataset(dataset)
            result = cli(home, *step, stdin=KEY + "\n")
            if result.returncode != 0:
                raise RuntimeError(f"auditor {' '.join(step)} failed ({result.returncode}): {result.stderr[-2000:]}")
    return home


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--users", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=15)
    parser.add_argument("home", type=Path)
    args = parser.parse_args()
    build_home(args.users, args.home, seed=args.seed)
    print(args.home)


if __name__ == "__main__":
    main()
