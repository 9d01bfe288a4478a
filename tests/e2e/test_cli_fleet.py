"""End to end: `auditor run` over several connections, each against its own sandbox instance.

Each account keeps its own snapshots, chain and bundle; the fleet summary (HTML and JSON) shows
every account and the changes seen in several at once; one failing account stops no other.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from support import AuditorHome, connect_to, with_new_admin

from auditor.errors import ExitCode
from auditor.sandbox import Dataset, Faults, SandboxServer, default_dataset

FAST = ("--format", "html")


def subsidiary() -> Dataset:
    """A second account: the default one under another id and root division name."""
    dataset = default_dataset()
    containers = tuple({**c, "name": "Subsidiary GmbH"} if c["parent_id"] == 0 else c for c in dataset.containers)
    users = tuple({**u, "account_id": 2_000_001} for u in dataset.users)
    service = tuple({**u, "account_id": 2_000_001} for u in dataset.service_users)
    return dataclasses.replace(dataset, account={**dataset.account, "id": 2_000_001, "name": "Subsidiary GmbH"},
                               containers=containers, users=users, service_users=service)


@pytest.fixture
def two_accounts(home: AuditorHome) -> Iterator[tuple[SandboxServer, SandboxServer]]:
    with SandboxServer(default_dataset()) as first, SandboxServer(subsidiary()) as second:
        connect_to(home, first.base_url, name="parent")
        connect_to(home, second.base_url, name="sub")
        yield first, second


def summary(out: Path) -> dict:
    return json.loads((out / "fleet-summary.json").read_text(encoding="utf-8"))


def test_two_connections_each_keep_their_own_chain_and_bundle_and_one_summary(
    home: AuditorHome, two_accounts: tuple[SandboxServer, SandboxServer], tmp_path: Path
) -> None:
    out = tmp_path / "out"
    result = home.run("run", "--connection", "parent,sub", *FAST, "--output", str(out))
    assert result.returncode == ExitCode.OK, result.stderr
    assert "[parent] Pulled" in result.stderr and "[sub] Pulled" in result.stderr
    for name in ("parent", "sub"):
        assert len(list((out / name).glob("certcentral-evidence-*.zip"))) == 1
        assert f"[{name}] Evidence:" in result.stderr
    assert result.stderr.count("sequence 0") == 2, "one chain per account"
    document = summary(out)
    accounts = {a["connection"]: a for a in document["accounts"]}
    assert set(accounts) == {"parent", "sub"} and document["failed"] == []
    assert accounts["sub"]["account_name"] == "Subsidiary GmbH" and accounts["sub"]["account_id"] == 2_000_001
    assert accounts["parent"]["users"] == 13 and accounts["parent"]["administrators"] == 4
    assert set(accounts["parent"]["open_findings"]) == {"critical", "high", "medium", "low", "info"}
    assert accounts["parent"]["review"] and accounts["parent"]["last_successful_run"]
    html = (out / "fleet-summary.html").read_text(encoding="utf-8")
    assert "Subsidiary GmbH" in html and "<script" not in html


def test_the_same_person_made_administrator_in_several_accounts_is_one_cross_account_change(
    home: AuditorHome, two_accounts: tuple[SandboxServer, SandboxServer], tmp_path: Path
) -> None:
    out = tmp_path / "out"
    assert home.run("run", "--all-connections", *FAST, "--no-export", "--output", str(out)).returncode == 0
    for server in two_accounts:
        server.set_dataset(with_new_admin(server.dataset, email="Mallory@Example.com"))
    result = home.run("run", "--all-connections", "--parallel", "2", *FAST, "--no-export", "--output", str(out))
    assert result.returncode == ExitCode.OK, result.stderr
    changes = summary(out)["cross_account_changes"]
    assert {"email": "Mallory@Example.com", "change": "made Administrator", "accounts": ["parent", "sub"]} in changes
    assert "Mallory@Example.com" in (out / "fleet-summary.html").read_text(encoding="utf-8")


def test_one_failing_account_does_not_stop_the_others_and_exits_8(
    home: AuditorHome, two_accounts: tuple[SandboxServer, SandboxServer], tmp_path: Path
) -> None:
    out = tmp_path / "out"
    first = two_accounts[0]
    assert home.run("run", "--all-connections", *FAST, "--no-export", "--output", str(out)).returncode == 0
    first.set_faults(Faults(error_rate=1.0, error_statuses=(503,), retry_after=0))
    result = home.run("--retries", "1", "run", "--all-connections", *FAST, "--output", str(out))
    assert result.returncode == ExitCode.ACCOUNTS_FAILED, result.stderr
    assert "Error in connection 'parent'" in result.stderr
    assert "1 of 2 connection(s) failed: parent" in result.stderr
    assert len(list((out / "sub").glob("certcentral-evidence-*.zip"))) == 1, "the other account completed"
    accounts = {a["connection"]: a for a in summary(out)["accounts"]}
    assert accounts["parent"]["status"] == "failed" and accounts["parent"]["error"]
    assert accounts["parent"]["last_successful_run"] is not None, "the earlier run is the last successful one"
    assert accounts["sub"]["status"] == "ok"
    assert summary(out)["failed"] == ["parent"]


def test_an_unknown_connection_in_the_list_fails_before_any_pull(
    home: AuditorHome, two_accounts: tuple[SandboxServer, SandboxServer], tmp_path: Path
) -> None:
    for server in two_accounts:
        server.clear_requests()
    result = home.run("run", "--connection", "parent,nope", *FAST, "--output", str(tmp_path))
    assert result.returncode == ExitCode.USAGE, result.stderr
    assert "nope" in result.stderr
    assert all(server.requests == () for server in two_accounts)


def test_parallel_out_of_range_is_a_usage_error(home: AuditorHome, tmp_path: Path) -> None:
    result = home.run("run", "--connection", "a,b", "--parallel", "0", "--output", str(tmp_path))
    assert result.returncode == ExitCode.USAGE
    assert "--parallel" in result.stderr


def test_one_sandbox_command_serves_several_accounts_for_a_fleet_run(home: AuditorHome, tmp_path: Path) -> None:
    """`auditor sandbox --dataset A --dataset B` (a real process) serves each on its own port."""
    first, second = tmp_path / "corp.json", tmp_path / "sub.json"
    first.write_text(default_dataset().to_json(), encoding="utf-8")
    second.write_text(subsidiary().to_json(), encoding="utf-8")
    process = home.start("sandbox", "--port", "0", "--quiet", "--dataset", str(first), "--dataset", str(second))
    try:
        assert process.stderr is not None
        urls: list[str] = []
        while len(urls) < 2:
            line = process.stderr.readline()
            assert line, "the sandbox ended before serving both datasets"
            if line.startswith("Fake CertCentral serving"):
                urls.append(line.split(" at ")[1].split()[0])
        connect_to(home, urls[0], name="corp")
        connect_to(home, urls[1], name="sub")
        out = tmp_path / "out"
        result = home.run("run", "--all-connections", *FAST, "--no-export", "--output", str(out))
    finally:
        process.terminate()
        process.communicate(timeout=30)  # reaps it and closes its pipes
    assert result.returncode == ExitCode.OK, result.stderr
    names = {a["connection"]: a["account_name"] for a in summary(out)["accounts"]}
    assert names == {"corp": "Example Corp", "sub": "Subsidiary GmbH"}
