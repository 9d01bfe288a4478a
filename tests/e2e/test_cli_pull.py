"""End to end: `auditor pull`, `snapshots` and `diff` through the real CLI against the sandbox."""

from __future__ import annotations

import json
import signal
from collections.abc import Iterator

import pytest
from support import AuditorHome, connect_to, lock_held_by_another_process, wait_for_requests

from auditor.errors import ExitCode
from auditor.sandbox import Dataset, Faults, SandboxServer
from auditor.store import LockTimeouts

USERS = 1_200
PAGE = ("--page-size", "100")


@pytest.fixture
def big_sandbox() -> Iterator[SandboxServer]:
    with SandboxServer(Dataset.generate(USERS, seed=7)) as server:
        yield server


def snapshot_lines(home: AuditorHome) -> list[str]:
    result = home.run("snapshots")
    assert result.returncode == 0, result.stderr
    return result.stdout.splitlines()[1:]


def expected_users(server: SandboxServer) -> int:
    return len(server.dataset.users) + len(server.dataset.service_users)


def test_clean_pull_stores_a_complete_snapshot(home: AuditorHome, big_sandbox: SandboxServer) -> None:
    connect_to(home, big_sandbox.base_url)
    result = home.run("pull", *PAGE)
    assert result.returncode == ExitCode.OK, result.stderr
    total = expected_users(big_sandbox)
    assert f"Pulled {total:,} users" in result.stderr
    [line] = snapshot_lines(home)
    assert f" {total} " in f" {line} " and line.rstrip().endswith("yes")
    # Only GET requests reached CertCentral, and pages were requested with explicit limit/offset.
    assert {request.method for request in big_sandbox.requests} == {"GET"}
    assert any("offset=1100" in request.query for request in big_sandbox.requests)


def test_pull_survives_injected_500s_and_429s(home: AuditorHome, big_sandbox: SandboxServer) -> None:
    connect_to(home, big_sandbox.base_url)
    big_sandbox.set_faults(
        Faults(error_rate=0.25, error_statuses=(500, 503), retry_after=1, seed=3, rate_limits=((6, 1.0),))
    )
    result = home.run("pull", *PAGE)
    assert result.returncode == ExitCode.OK, result.stderr
    assert "retrying in" not in result.stderr, "retry log lines must not leak into cron mail"
    statuses = [request.status for request in big_sandbox.requests]
    assert any(status >= 500 for status in statuses), "the fault injection did not fire"
    assert 429 in statuses, "the rate limit did not fire"
    assert snapshot_lines(home)[0].rstrip().endswith("yes")


def test_pull_that_dies_on_a_page_stores_nothing(home: AuditorHome, big_sandbox: SandboxServer) -> None:
    connect_to(home, big_sandbox.base_url)
    assert home.run("pull", *PAGE).returncode == 0
    big_sandbox.set_faults(Faults(fail_offset=300, retry_after=0))
    result = home.run("--retries", "2", "pull", *PAGE)
    assert result.returncode == ExitCode.CERTCENTRAL_UNAVAILABLE, result.stderr
    assert "offset=300" in result.stderr
    assert len(snapshot_lines(home)) == 1, "a failed pull must not become a snapshot"


def test_users_moving_between_pages_make_an_incomplete_snapshot_not_removals(
    home: AuditorHome, big_sandbox: SandboxServer
) -> None:
    connect_to(home, big_sandbox.base_url)
    assert home.run("pull", *PAGE).returncode == 0
    big_sandbox.set_faults(Faults(churn_between_pages=4, seed=11))
    churned = home.run("pull", *PAGE)
    assert churned.returncode == ExitCode.OK, churned.stderr
    assert "INCOMPLETE" in churned.stderr
    assert snapshot_lines(home)[1].rstrip().endswith("NO (incomplete)")
    big_sandbox.set_faults(Faults())
    assert home.run("pull", *PAGE).returncode == 0
    diff = home.run("diff", "--format", "json")
    assert diff.returncode == 0, diff.stderr
    changes = json.loads(diff.stdout)
    assert changes["from_snapshot"] == 1 and changes["to_snapshot"] == 3, "incomplete snapshot used as baseline"


def test_second_pull_reports_joiners_and_leavers(home: AuditorHome, big_sandbox: SandboxServer) -> None:
    connect_to(home, big_sandbox.base_url)
    assert home.run("pull", *PAGE).returncode == 0
    dataset = big_sandbox.dataset
    leaver = dataset.users[5]
    joiner = {
        **dataset.users[6],
        "id": 99_999_999,
        "email": "new.admin@example.com",
        "username": "new.admin@example.com",
        "access_roles": [{"id": 1, "name": "Administrator"}],
    }
    big_sandbox.set_dataset(
        Dataset(
            account=dataset.account,
            containers=dataset.containers,
            users=(*(u for u in dataset.users if u["id"] != leaver["id"]), joiner),
            service_users=dataset.service_users,
            keys=dataset.keys,
            as_of=dataset.as_of,
        )
    )
    result = home.run("pull", *PAGE)
    assert result.returncode == 0, result.stderr
    assert "1 new, 1 removed since" in result.stderr
    text = home.run("diff")
    assert text.returncode == 0, text.stderr
    assert "new.admin@example.com" in text.stdout and "!!" in text.stdout  # became Administrator
    assert leaver["email"] in text.stdout
    as_csv = home.run("diff", "--format", "csv")
    assert as_csv.stdout.lstrip("\ufeff").startswith("kind,user_id,email")


def test_two_pulls_at_once_the_second_refuses_clearly(home: AuditorHome, lock_wait: LockTimeouts) -> None:
    # Two real pulls racing: tests/e2e/test_hardening_concurrency.py. Here: the CLI's answer to a held lock.
    with SandboxServer(Dataset.generate(40, seed=1)) as server:
        connect_to(home, server.base_url)
        server.clear_requests()
        with lock_held_by_another_process(home.data_dir):
            second = home.run("pull", "--page-size", "10")
        assert second.returncode == ExitCode.LOCAL_DATA, second.stderr
        assert "Another `auditor pull`" in second.stderr
        assert lock_wait.pull == 5.0, "a pull waits five seconds for the lock before refusing"
        assert not any(request.path.endswith("/user") for request in server.requests), "it pulled anyway"
        assert "No snapshots yet" in home.run("snapshots").stderr
        assert home.run("pull", "--page-size", "10").returncode == 0, "the lock was not released"
    assert len(snapshot_lines(home)) == 1


def test_interrupted_pull_stores_nothing(home: AuditorHome) -> None:
    with SandboxServer(Dataset.generate(800, seed=1)) as slow:
        connect_to(home, slow.base_url)
        slow.set_faults(Faults(latency_ms=1000))  # slow only for the pull: it is still paging at Ctrl-C
        slow.clear_requests()
        pulling = home.start("pull", "--page-size", "10")
        wait_for_requests(slow, "/services/v2/user")
        pulling.send_signal(signal.SIGINT)
        _out, err = pulling.communicate(timeout=60)
    assert pulling.returncode == ExitCode.CERTCENTRAL_UNAVAILABLE, err
    assert "Nothing was stored" in err
    assert "No snapshots yet" in home.run("snapshots").stderr


def test_history_shows_first_seen_and_role_changes(home: AuditorHome, big_sandbox: SandboxServer) -> None:
    connect_to(home, big_sandbox.base_url)
    assert home.run("pull", *PAGE).returncode == 0
    dataset = big_sandbox.dataset
    target = dataset.users[10]
    promoted = {**target, "access_roles": [{"id": 1, "name": "Administrator"}]}
    big_sandbox.set_dataset(
        Dataset(
            account=dataset.account,
            containers=dataset.containers,
            users=tuple(promoted if u["id"] == target["id"] else u for u in dataset.users),
            service_users=dataset.service_users,
            keys=dataset.keys,
            as_of=dataset.as_of,
        )
    )
    assert home.run("pull", *PAGE).returncode == 0
    result = home.run("history", "--format", "json", target["email"].upper())
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    assert document["user"]["id"] == target["id"]
    assert [entry["roles"] for entry in document["role_history"]][-1] == "Administrator"
    assert len(document["role_history"]) == 2 and document["present_in_latest_snapshot"] is True
    missing = home.run("history", "nobody@example.invalid")
    assert missing.returncode == ExitCode.USAGE and "No user" in missing.stderr
