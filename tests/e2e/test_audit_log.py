"""Issue 17, audit log: Report Library runs archived on each pull, attribution, activity, the new rule."""

from __future__ import annotations

import json
import urllib.request
import zipfile
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest
from auditlog_support import ALICE, ALICE_EMAIL, DAY, JUDY_EMAIL, T0, account, library, promotion_row, row, run
from support import AuditorHome, Clock, ClockedCli, connect_to

from auditor.sandbox import Faults, SandboxServer


@pytest.fixture
def sandbox() -> Iterator[SandboxServer]:
    with SandboxServer(account(report_library=library([]))) as server:
        yield server


@pytest.fixture
def cli(tmp_path: Path, sandbox: SandboxServer) -> ClockedCli:
    runner = ClockedCli(tmp_path, Clock(T0))
    runner.connect(sandbox.base_url)
    return runner


def _test(cli: ClockedCli) -> str:
    code, out, err = cli.run("test")
    assert code == 0, err
    return out + err


def test_connection_test_says_whether_an_audit_log_report_is_scheduled(cli: ClockedCli, sandbox: SandboxServer) -> None:
    out = _test(cli)
    assert "no scheduled audit-log report found" in out and "Report Library" in out
    assert "API keys: readable (GET /key)." in out
    sandbox.set_dataset(account(report_library=library([run("run-1", T0 - DAY, [])])))
    assert "1 scheduled audit-log report(s) (c0ffee00-audit-weekly)" in _test(cli)


def test_connection_test_warns_when_keys_are_not_readable(cli: ClockedCli, sandbox: SandboxServer) -> None:
    sandbox.set_faults(Faults(route_faults=(("/key", "missing-permission"),)))
    out = _test(cli)
    assert "may not read GET /key" in out and "not evaluable" in out


def _archived(cli: ClockedCli) -> list[tuple[str, str, int]]:
    from auditor.store import Store

    with Store.open(cli.tmp / "data") as store:
        return [(r.run_identifier, r.report_format, r.first_snapshot_id) for r in store.audit_log_runs("default")]


def _limitations(cli: ClockedCli) -> list[str]:
    return list(cli.findings()["limitations"])


@pytest.mark.parametrize(
    ("faults", "formats", "expected_format"),
    [
        (Faults(), ("JSON", "CSV"), "JSON"),
        (Faults(report_download_path="json", report_json_keys="snake_case"), ("JSON", "CSV"), "JSON"),
        (Faults(report_download_path="download"), ("CSV",), "CSV"),
    ],
    ids=["download-json", "json-path-snake-case", "csv-fallback"],
)
def test_pull_archives_each_ready_run_once_in_json_or_csv(
    cli: ClockedCli, sandbox: SandboxServer, faults: Faults, formats: tuple[str, ...], expected_format: str
) -> None:
    rows = [row(T0 - 3 * DAY, "User SSO login")]
    sandbox.set_faults(faults)
    sandbox.set_dataset(account(report_library=library([run("run-1", T0 - 2 * DAY, rows)], formats=formats)))
    cli.pull(T0)
    assert _archived(cli) == [("run-1", expected_format, 1)]
    sandbox.clear_requests()
    cli.pull(T0 + DAY)
    downloads = [r for r in sandbox.requests if r.path.startswith("/reports/v1/report/") and "history" not in r.path]
    assert downloads == [], "an archived run is not downloaded again"
    assert _archived(cli) == [("run-1", expected_format, 1)]


def test_a_refused_report_library_is_a_stated_limitation_never_a_failure(
    cli: ClockedCli, sandbox: SandboxServer
) -> None:
    sandbox.set_faults(Faults(route_faults=(("/report/history", "missing-permission"),)))
    cli.pull(T0)
    assert any("the audit log (Report Library) was not read at this pull" in line for line in _limitations(cli))


def test_a_refused_download_makes_the_audit_log_not_evaluable(cli: ClockedCli, sandbox: SandboxServer) -> None:
    sandbox.set_dataset(account(report_library=library([run("run-1", T0 - DAY, [])])))
    sandbox.set_faults(Faults(route_faults=(("/report/{report}/{run}/download", "missing-permission"),)))
    cli.pull(T0)
    assert _archived(cli) == []
    assert any("Not evaluable: the audit log" in line for line in _limitations(cli))
    sandbox.set_faults(Faults())
    cli.pull(T0 + DAY)
    assert _archived(cli) == [("run-1", "JSON", 2)], "the next pull archives it"


def test_no_audit_log_report_is_a_stated_limitation(cli: ClockedCli) -> None:
    cli.pull(T0)
    assert any("No audit log was archived by this snapshot" in line for line in _limitations(cli))


@pytest.mark.parametrize("sso_days_ago", [2, 120])
def test_sso_sign_ins_in_the_log_count_as_activity_for_admin_dormant(
    cli: ClockedCli, sandbox: SandboxServer, sso_days_ago: int
) -> None:
    """alice last signed in to the console 200 days ago, but signs in through SSO (the log says when)."""
    rows = [row(T0 - sso_days_ago * DAY, "User SSO login")]
    dataset = account(
        alice_last_login=T0 - 200 * DAY, report_library=library([run("run-1", T0 - DAY, rows)], schedule="ON_DEMAND")
    )
    sandbox.set_dataset(dataset)
    cli.pull(T0)
    dormant = [f for f in cli.findings()["findings"] if f["rule"] == "admin-dormant" and f["user_id"] == ALICE]
    if sso_days_ago == 2:
        assert dormant == []
    else:
        (finding,) = dormant
        assert "last activity: SSO sign-in" in finding["explanation"]
        assert finding["evidence"]["last activity"] == f"SSO sign-in {(T0 - 120 * DAY):%Y-%m-%d %H:%M} UTC (audit log)"


def test_api_activity_counts_and_entries_after_the_snapshot_do_not(cli: ClockedCli, sandbox: SandboxServer) -> None:
    rows = [row(T0 - 5 * DAY, "Order certificate", via="API"), row(T0 + 10 * DAY, "User SSO login")]
    sandbox.set_dataset(
        account(alice_last_login=T0 - 200 * DAY, report_library=library([run("run-1", T0 - DAY, rows)]))
    )
    cli.pull(T0)
    assert not [f for f in cli.findings()["findings"] if f["rule"] == "admin-dormant" and f["user_id"] == ALICE]


WEEK = 7 * DAY


def _promoted_a_week_later(
    cli: ClockedCli, sandbox: SandboxServer, rows: list[dict[str, object]], *, run_at: datetime | None = None
) -> None:
    cli.pull(T0)
    later = T0 + WEEK
    runs = [run("run-2", run_at or later, rows)]
    sandbox.set_dataset(account(as_of=later, judy_admin=True, report_library=library(runs)))
    cli.pull(later)


def _unattributed(cli: ClockedCli) -> list[dict[str, object]]:
    return [f for f in cli.findings()["findings"] if f["rule"] == "privilege-change-unattributed"]


def test_an_escalation_to_administrator_is_attributed_from_the_audit_log(
    cli: ClockedCli, sandbox: SandboxServer
) -> None:
    _promoted_a_week_later(cli, sandbox, [promotion_row(T0 + 3 * DAY, via="API")])
    changes = json.loads(cli.ok("diff", "--format", "json"))["changes"]
    (role,) = [c for c in changes if c["kind"] == "role"]
    assert role["email"] == JUDY_EMAIL and role["became_admin"] is True
    assert role["attribution"] == f"by {ALICE_EMAIL} on {(T0 + 3 * DAY):%Y-%m-%d %H:%M} UTC via the API"
    text = cli.ok("diff")
    assert f"by {ALICE_EMAIL} on" in text and "(audit log)" in text
    assert _unattributed(cli) == []
    out = cli.tmp / "reports"
    (page,) = cli.ok("report", "--format", "html", "--output", str(out)).split()
    html = Path(page).read_text(encoding="utf-8")
    assert f'<span class="attribution">{role["attribution"]} (audit log)</span>' in html


def test_an_escalation_the_covering_log_does_not_explain_is_a_finding(cli: ClockedCli, sandbox: SandboxServer) -> None:
    _promoted_a_week_later(cli, sandbox, [row(T0 + 2 * DAY, "User SSO login")])
    (finding,) = _unattributed(cli)
    assert finding["email"] == JUDY_EMAIL and finding["severity"] == "medium"
    assert finding["evidence"]["gained"] == "Administrator"
    assert finding["controls"] == ["SOC 2 CC6.2", "SOC 2 CC7.2"]  # the default profile
    assert "attribution" not in next(c for c in json.loads(cli.ok("diff", "--format", "json"))["changes"])


def test_a_log_that_does_not_cover_the_period_is_a_limitation_not_a_finding(
    cli: ClockedCli, sandbox: SandboxServer
) -> None:
    _promoted_a_week_later(cli, sandbox, [], run_at=T0 + 5 * DAY)
    assert _unattributed(cli) == []
    assert any("does not cover the whole period since snapshot #1" in line for line in _limitations(cli))


def test_a_run_archived_once_is_in_a_later_bundle_after_it_left_the_90_day_window(
    cli: ClockedCli, sandbox: SandboxServer, tmp_path: Path
) -> None:
    """The run promoting judy is deleted by DigiCert after 90 days; the bundle of a pull 100 days on
    still carries it, and ``verify --reperform`` re-derives the attribution from it offline."""
    runs = [run("run-1", T0 + WEEK, [promotion_row(T0 + 3 * DAY)])]
    cli.pull(T0)
    sandbox.set_dataset(account(as_of=T0 + WEEK, judy_admin=True, report_library=library(runs)))
    cli.pull(T0 + WEEK)
    late = T0 + 100 * DAY
    sandbox.set_dataset(account(as_of=late, judy_admin=True, report_library=library(runs)))
    cli.pull(late)
    request = urllib.request.Request(
        sandbox.report_library_url + "/report/history?report_type=audit-logs&status=READY",
        headers={"X-DC-DEVKEY": "sandbox-view-only-key"},
    )
    with urllib.request.urlopen(request) as answer:
        listed = json.loads(answer.read())
    assert listed["report_history"] == [], "the fake no longer lists the run"
    bundles = []
    for snapshot in ("2", "3"):
        out = tmp_path / f"bundle-{snapshot}.zip"
        cli.ok("export", "--snapshot", snapshot, "--output", str(out), "--no-reports")
        bundles.append(out)
    with zipfile.ZipFile(bundles[1]) as archive:
        manifest = json.loads(archive.read("manifest.json"))
        (entry,) = [e for e in manifest["files"] if e["role"] == "audit-log"]
        body = archive.read(entry["path"])
    assert entry["run_identifier"] == "run-1" and entry["first_snapshot_id"] == 2
    assert JUDY_EMAIL in body.decode()
    assert manifest["context"]["audit_log"]["runs"] == 1
    pem = tmp_path / "signer.pem"
    pem.write_text(cli.ok("keys", "public"))
    out = cli.ok("verify", str(bundles[0]), "--public-key", str(pem), "--reperform")
    assert "Re-performance: PASSED" in out and "views/changes.json" in out
    with zipfile.ZipFile(bundles[0]) as archive:
        (change,) = [c for c in json.loads(archive.read("views/changes.json"))["changes"] if c["kind"] == "role"]
    assert change["attribution"].startswith(f"by {ALICE_EMAIL}")


def test_the_report_library_url_can_be_overridden_by_flag(home: AuditorHome, sandbox: SandboxServer) -> None:
    elsewhere = sandbox.report_library_url.replace("/reports/v1", "/gateway/reports")
    connect_to(home, sandbox.base_url, key="sandbox-view-only-key")
    assert home.run("--report-library-url", elsewhere, "pull").returncode == 0
    assert any(r.path == "/gateway/reports/report/history" for r in sandbox.requests)
    findings = json.loads(home.run("findings", "--format", "json").stdout)
    assert any("Not evaluable: the audit log" in line for line in findings["limitations"])


def test_the_report_library_url_can_be_set_in_the_configuration(cli: ClockedCli, sandbox: SandboxServer) -> None:
    elsewhere = sandbox.report_library_url.replace("/reports/v1", "/gateway/reports")
    config = cli.tmp / "auditor.toml"
    config.write_text(f'[audit_log]\nreport_library_url = "{elsewhere}"\n', encoding="utf-8")
    cli.config = config
    cli.pull(T0)
    assert any(r.path == "/gateway/reports/report/history" for r in sandbox.requests)
    assert any("Not evaluable: the audit log" in line for line in _limitations(cli))


def test_a_report_library_that_answers_nonsense_leaves_the_pull_standing(
    cli: ClockedCli, sandbox: SandboxServer
) -> None:
    sandbox.set_faults(Faults(route_faults=(("/report/history", "html-404"),)))
    cli.pull(T0)
    limitations = _limitations(cli)
    assert any("Not evaluable: the audit log" in line for line in limitations)
    assert any("The audit log was NOT read from" in line and "--report-library-url" in line for line in limitations)


@pytest.mark.parametrize("view_only", ["allowed", "denied"])
def test_whether_a_view_only_key_may_read_reports_is_shown_both_ways(
    cli: ClockedCli, sandbox: SandboxServer, view_only: str
) -> None:
    sandbox.set_dataset(
        account(report_library=library([run("run-1", T0 - DAY, [row(T0 - 2 * DAY, "User SSO login")])]))
    )
    sandbox.set_faults(Faults(report_view_only=view_only))
    cli.pull(T0)
    assert _archived(cli) == ([("run-1", "JSON", 1)] if view_only == "allowed" else [])


def test_runs_archived_earlier_still_count_when_a_later_pull_cannot_read_the_log(
    cli: ClockedCli, sandbox: SandboxServer
) -> None:
    rows = [row(T0 - 2 * DAY, "User SSO login")]
    library_ = library([run("run-1", T0 - DAY, rows)])
    sandbox.set_dataset(account(alice_last_login=T0 - 200 * DAY, report_library=library_))
    cli.pull(T0)
    sandbox.set_faults(Faults(route_faults=(("/report/history", "missing-permission"),)))
    cli.pull(T0 + DAY)
    findings = cli.findings()
    assert not [f for f in findings["findings"] if f["rule"] == "admin-dormant" and f["user_id"] == ALICE]
    assert any("only the runs archived by earlier pulls are used" in line for line in findings["limitations"])
