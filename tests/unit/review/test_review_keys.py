"""Issue 17: API keys and ACME URLs as worksheet rows (``review open --scope with-keys``), kept or revoked,
the revoke proven by the next pull (the key gone, or listed as revoked)."""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from keys_support import every_kind, keyed_dataset
from support import Clock, ClockedCli

from auditor.sandbox import SandboxServer

T0 = datetime.now(UTC).replace(microsecond=0)  # keys_support dates keys from the real clock
DAY = timedelta(days=1)
OWNER = "Olga Owner <olga.owner@audit.example>"


@pytest.fixture
def sandbox() -> Iterator[SandboxServer]:
    with SandboxServer(keyed_dataset()) as server:
        yield server


@pytest.fixture
def cli(tmp_path: Path, sandbox: SandboxServer) -> ClockedCli:
    runner = ClockedCli(tmp_path, Clock(T0))
    runner.connect(sandbox.base_url)
    runner.pull(T0)
    return runner


def _rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def _fill(source: Path, target: Path, decisions: dict[str, dict[str, str]]) -> Path:
    with source.open(newline="", encoding="utf-8") as handle:
        rows = list(csv.reader(handle))
    header = rows[0]
    for row in rows[1:]:
        for column, value in decisions.get(row[header.index("user_id")], {}).items():
            row[header.index(column)] = value
    with target.open("w", newline="", encoding="utf-8") as handle:
        csv.writer(handle).writerows(rows)
    return target


def test_with_keys_adds_one_row_per_active_key_after_the_users(cli: ClockedCli) -> None:
    path = cli.tmp / "keys.csv"
    cli.ok("review", "open", "--scope", "with-keys", "--output", str(path))
    keys = {row["user_id"]: row for row in _rows(path) if row["user_id"].startswith("-")}
    active = [k["id"] for k in every_kind() if k["status"] == "active"]
    assert sorted(keys) == sorted(str(-key_id) for key_id in active)
    unrestricted = keys["-11"]
    assert unrestricted["name"] == "admin-unrestricted (api key 11)" and unrestricted["role"] == "None (unrestricted)"
    assert unrestricted["email"] == "alice.admin@example.com" and "key-unrestricted" in unrestricted["findings"]
    assert keys["-14"]["service_user"] == "ACME URL"


def _campaign_revoking_two_keys(cli: ClockedCli) -> None:
    path = cli.tmp / "keys.csv"
    cli.ok("review", "open", "--scope", "with-keys", "--output", str(path))
    cli.clock.now = T0 + DAY
    revoke = {"decision": "revoke", "justification": "no owner any more", "ticket": "SEC-17"}
    filled = _fill(path, cli.tmp / "filled.csv", {"-20": revoke, "-21": revoke, "-12": {"decision": "keep"}})
    cli.ok("review", "import", str(filled), "--by", OWNER)
    cli.clock.now = T0 + 2 * DAY
    cli.ok("review", "close", "--by", OWNER, "--statement", "Keys reviewed", "--allow-undecided")


def _decisions(cli: ClockedCli) -> dict[int, Any]:
    return {d["user_id"]: d for d in json.loads(cli.ok("review", "status", "--format", "json"))["decisions"]}


def test_a_revoked_key_is_remediated_by_the_next_pull_gone_or_revoked(cli: ClockedCli, sandbox: SandboxServer) -> None:
    _campaign_revoking_two_keys(cli)
    keys = [k for k in every_kind() if k["id"] != 21]  # orphan-key gone from the list
    keys = [{**k, "status": "revoked"} if k["id"] == 20 else k for k in keys]  # leaver-key revoked
    sandbox.set_dataset(keyed_dataset(keys=keys))
    cli.pull(T0 + 3 * DAY)
    decisions = _decisions(cli)
    assert decisions[-20]["remediation"] == "remediated" and decisions[-20]["applied_snapshot"] == 2
    assert decisions[-21]["remediation"] == "remediated"
    assert decisions[-12]["decision"] == "keep" and decisions[-12]["remediation"] in ("", None)


def test_a_modify_of_a_key_row_is_refused_and_a_key_still_active_stays_pending(cli: ClockedCli) -> None:
    path = cli.tmp / "keys.csv"
    cli.ok("review", "open", "--scope", "with-keys", "--output", str(path))
    modify = {"decision": "modify", "new_role": "View Only", "justification": "x"}
    filled = _fill(path, cli.tmp / "m.csv", {"-13": modify, "-18": {"decision": "revoke", "justification": "y"}})
    _code, _out, err = cli.run("review", "import", str(filled), "--by", OWNER)
    assert "a key row is kept or revoked, not modified" in err, err
    cli.ok("review", "close", "--by", OWNER, "--statement", "Keys reviewed", "--allow-undecided")
    cli.pull(T0 + DAY)
    assert _decisions(cli)[-18]["remediation"] == "pending", "key 18 is still active"
