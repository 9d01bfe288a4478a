"""Issue 8.5: two pulls, a pull and a report, two exports, or a long write at once on one data
directory: no corruption, and a clear message for the one that waits or refuses."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

from conftest import SHORT_LOCK_WAIT
from support import AuditorHome, check_database, connect_to, snapshot_table, wait_for_requests

from auditor.errors import ExitCode
from auditor.sandbox import Dataset, Faults, SandboxServer
from auditor.store import LockTimeouts


def test_second_pull_waits_for_a_short_first_one_then_both_store(home: AuditorHome) -> None:
    # The first pull (a real process) takes about two seconds, less than the lock's five-second wait.
    with SandboxServer(Dataset.generate(200, seed=1), faults=Faults(latency_ms=250, rate_limits=())) as server:
        connect_to(home, server.base_url)
        server.clear_requests()
        first = home.start("pull", "--page-size", "25")
        wait_for_requests(server, "/services/v2/user")  # the first pull holds the lock by now
        second = home.run("pull", "--page-size", "25")
        _out, err = first.communicate(timeout=120)
    assert first.returncode == 0, err
    assert second.returncode == 0, second.stderr
    rows = snapshot_table(home)
    assert len(rows) == 2 and all(row.rstrip().endswith("yes") for row in rows)
    check_database(home.data_dir)


def test_second_pull_refuses_a_long_first_one_clearly(home: AuditorHome, lock_wait: LockTimeouts) -> None:
    # The first pull (a real process) pages for a few seconds, longer than the second one waits
    # (the production five seconds, asserted below, shortened for the test by lock_wait).
    with SandboxServer(Dataset.generate(200, seed=1), faults=Faults(latency_ms=500, rate_limits=())) as server:
        connect_to(home, server.base_url)
        server.clear_requests()
        first = home.start("pull", "--page-size", "10")
        wait_for_requests(server, "/services/v2/user")  # the first pull holds the lock by now
        began = time.monotonic()
        second = home.run("pull", "--page-size", "10")
        waited = time.monotonic() - began
        still_pulling = first.poll() is None
        _out, err = first.communicate(timeout=120)
    assert still_pulling, "the first pull ended before the second one gave up: the test proved nothing"
    assert first.returncode == 0, err
    assert second.returncode == ExitCode.LOCAL_DATA, second.stderr
    assert "Another `auditor pull` for connection 'default' is running" in second.stderr
    assert "Wait for it to finish" in second.stderr and "Traceback" not in second.stderr
    assert lock_wait.pull == 5.0 and waited >= SHORT_LOCK_WAIT, "the second pull should wait a little before refusing"
    assert len(snapshot_table(home)) == 1
    check_database(home.data_dir)


def test_report_and_snapshots_during_a_pull_see_a_consistent_store(home: AuditorHome, tmp_path: Path) -> None:
    with SandboxServer(Dataset.generate(400, seed=2), faults=Faults(rate_limits=())) as server:
        connect_to(home, server.base_url)
        assert home.run("pull", "--page-size", "50").returncode == 0
        # Slow enough (40 pages, fetched 8 at a time, 0.5 s each) that a report (in-process: checks
        # and a render) fits wholly inside the pull even on a loaded machine.
        server.set_faults(Faults(latency_ms=500, rate_limits=()))
        pulling = home.start("pull", "--page-size", "10")
        reports = inside = 0
        while pulling.poll() is None:
            out = tmp_path / f"r{reports}"
            report = home.run("report", "--format", "html", "--output", str(out))
            assert report.returncode == 0, report.stderr
            assert snapshot_table(home)
            reports += 1
            inside += pulling.poll() is None  # began and ended while the pull was running
        _out, err = pulling.communicate(timeout=120)
    assert pulling.returncode == 0, err
    assert inside >= 1, "no report ran wholly inside the pull"
    assert len(snapshot_table(home)) == 2
    check_database(home.data_dir)


def test_two_exports_at_once_never_fork_the_chain(home: AuditorHome, tmp_path: Path, sandbox: SandboxServer) -> None:
    connect_to(home, sandbox.base_url)
    assert home.run("pull").returncode == 0
    first = tmp_path / "first.zip"
    assert home.run("export", "--no-reports", "--output", str(first)).returncode == 0
    racers = [home.start("export", "--no-reports", "--output", str(tmp_path / f"race{i}.zip")) for i in range(2)]
    results = [(racer.wait(timeout=120), racer.communicate()[1]) for racer in racers]
    won = [tmp_path / f"race{i}.zip" for i, (code, _err) in enumerate(results) if code == 0]
    for code, err in results:
        assert code in (0, ExitCode.LOCAL_DATA), err
        if code:
            assert "moved on while this bundle was written" in err and "Traceback" not in err
    assert won, "neither export succeeded"
    for path in tmp_path.glob("race*.zip"):
        assert path in won, "a refused export left its bundle behind"
    # Whatever order they finished in, the bundles form one chain with no fork.
    chain = [first, *sorted(won, key=lambda p: p.stat().st_mtime)]
    pem = tmp_path / "signer.pem"
    pem.write_text(home.run("keys", "public").stdout)
    previous = [arg for p in chain[:-1] for arg in ("--previous", str(p))]
    verify = home.run("verify", str(chain[-1]), "--public-key", str(pem), *previous)
    assert verify.returncode == 0, verify.stdout


def test_a_long_write_elsewhere_gives_a_clear_busy_error(home: AuditorHome, sandbox: SandboxServer) -> None:
    connect_to(home, sandbox.base_url)
    assert home.run("pull").returncode == 0
    holder = sqlite3.connect(home.data_dir / "auditor.db", isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")  # another process in the middle of a long write
    try:
        result = home.run("attest", "mfa", "--by", "Ann <ann@example.com>", "--statement", "checked")
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert result.returncode == ExitCode.LOCAL_DATA, result.stderr
    assert "busy" in result.stderr and "another auditor process" in result.stderr
    assert "Traceback" not in result.stderr
    assert home.run("attest", "mfa", "--by", "Ann <ann@example.com>", "--statement", "checked").returncode == 0
    check_database(home.data_dir)
