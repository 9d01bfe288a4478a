"""Leavers and orphans (issue 18): the identity source, its rules, its errors and its evidence, via the real CLI.

The CLI runs in-process (``auditor.cli.main`` with an injected workspace, so the clock is fixed)
against the sandbox's default dataset on loopback; the snapshot is taken 2026-11-01 06:00 UTC.
"""

from __future__ import annotations

import csv
import dataclasses
import hashlib
import io
import json
import subprocess
import sys
import zipfile
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from support import REPO, Clock, ClockedCli

from auditor.errors import ExitCode
from auditor.sandbox import SandboxServer, default_dataset

T0 = datetime(2026, 11, 1, 6, 0, tzinfo=UTC)

#: Everyone of the default dataset (not the service user), employed, as the generic preset reads them.
PEOPLE = {
    "alice.admin@example.com": "E1",
    "bob.finance@example.com": "E2",
    "carol.sales@example.com": "E3",
    "dana.ops@example.com": "E4",
    "jose.nunez@example.com": "E5",
    "frank.former@example.com": "E6",
    "grace.new@example.com": "E7",
    "heidi.ev@example.com": "E8",
    "ivan.manager@example.com": "E9",
    "judy.sales@example.com": "E10",
    "certs@example.com": "E11",
    "zoe.odegard@example.com": "E12",
}


def roster(changes: dict[str, dict[str, str]] | None = None, *, drop: Sequence[str] = (), extra: int = 0) -> str:
    """A generic-preset CSV of PEOPLE; ``changes`` edits rows by email, ``extra`` adds unrelated people."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["Email", "Status", "Termination_Date", "Employee_ID", "Aliases", "Name"])
    for email, employee_id in PEOPLE.items():
        if email in drop:
            continue
        row = {"email": email, "status": "active", "termination_date": "", "employee_id": employee_id,
               "aliases": "", "name": email.split("@")[0]}
        row.update((changes or {}).get(email, {}))
        writer.writerow([row["email"], row["status"], row["termination_date"], row["employee_id"], row["aliases"],
                         row["name"]])
    for number in range(extra):
        writer.writerow([f"someone{number}@example.com", "active", "", f"X{number}", "", "someone"])
    return out.getvalue()


@dataclasses.dataclass
class Cli(ClockedCli):
    def write(self, name: str, text: str) -> Path:
        path = self.tmp / name
        path.write_text(text, encoding="utf-8")
        return path

    def configure(self, text: str) -> Path:
        self.config = self.write("auditor.toml", text)
        return self.config


@pytest.fixture(scope="module")
def server() -> Iterator[SandboxServer]:
    with SandboxServer(default_dataset()) as running:
        yield running


@pytest.fixture
def cli(tmp_path: Path, server: SandboxServer) -> Cli:
    runner = Cli(tmp_path, Clock(T0))
    runner.connect(server.base_url)
    runner.ok("pull")
    return runner


def of_rule(result: dict[str, Any], rule: str) -> dict[str, dict[str, Any]]:
    return {f["email"]: f for f in result["findings"] if f["rule"] == rule}


def evidence(finding: dict[str, Any]) -> dict[str, str]:
    return dict(finding["evidence"])


# --- the rules, both sides ---------------------------------------------------------------------


def test_a_privileged_leaver_terminated_yesterday_is_critical_and_fail_on_critical_fires(cli: Cli) -> None:
    hr = cli.write("hr.csv", roster({
        "ivan.manager@example.com": {"status": "Terminated", "termination_date": "2026-10-31"},
        "judy.sales@example.com": {"status": "disabled", "termination_date": "2026-09-30T17:00:00Z"},
        "carol.sales@example.com": {"status": "terminated", "termination_date": "2026-11-02"},  # after the snapshot
    }))
    result = cli.findings("--identity", str(hr))
    leavers = of_rule(result, "terminated-still-active")
    assert set(leavers) == {"ivan.manager@example.com", "judy.sales@example.com"}
    ivan = leavers["ivan.manager@example.com"]
    assert ivan["severity"] == "critical"  # holds Manager, a privileged role
    facts = evidence(ivan)
    assert facts["days since termination"] == "1"
    assert facts["termination date"] == "2026-10-31"
    assert facts["matched by"] == "email"
    assert facts["identity record"] == "hr.csv row 10"
    assert "1 day before this snapshot" in ivan["explanation"]
    judy = leavers["judy.sales@example.com"]
    assert judy["severity"] == "high"
    assert evidence(judy)["days since termination"] == "31"
    pci = of_rule(cli.findings("--identity", str(hr), "--framework", "pci-dss-4"), "terminated-still-active")
    assert pci["ivan.manager@example.com"]["controls"] == ["PCI DSS 8.2.5"]

    code, _out, err = cli.run("findings", "--identity", str(hr), "--fail-on", "critical")
    assert code == ExitCode.FINDINGS_OR_VERIFY_FAILED
    assert "at or above 'critical'" in err
    # Everyone still employed: no leaver, and --fail-on critical does not fire.
    employed = cli.write("employed.csv", roster())
    assert not of_rule(cli.findings("--identity", str(employed)), "terminated-still-active")
    assert cli.run("findings", "--identity", str(employed), "--fail-on", "critical")[0] == ExitCode.OK


def test_an_alias_match_is_a_match_and_says_so(cli: Cli) -> None:
    hr = cli.write("hr.csv", roster({
        "zoe.odegard@example.com": {"email": "zoe.o@corp.example.com", "aliases": "SMTP:zoe.odegard@example.com;x@y.z"},
        "dana.ops@example.com": {"email": "d.ops@corp.example.com", "aliases": "dana.ops@example.com",
                                 "status": "suspended", "termination_date": "2026-10-01"},
    }))
    result = cli.findings("--identity", str(hr))
    assert "zoe.odegard@example.com" not in of_rule(result, "not-in-identity-source")
    dana = of_rule(result, "terminated-still-active")["dana.ops@example.com"]
    assert evidence(dana)["matched by"] == "alias"
    assert "alias" in result["identity_source"]["matched"]
    assert "2 by alias" in result["identity_source"]["matched"]


def test_an_orphan_is_reported_and_a_privileged_orphan_is_high(cli: Cli) -> None:
    hr = cli.write("hr.csv", roster(drop=["bob.finance@example.com", "certs@example.com", "grace.new@example.com"]))
    orphans = of_rule(cli.findings("--identity", str(hr)), "not-in-identity-source")
    # grace.new is pending (not active): not judged. The service user is never judged by HR status.
    assert set(orphans) == {"bob.finance@example.com", "certs@example.com"}
    assert orphans["bob.finance@example.com"]["severity"] == "medium"
    assert orphans["certs@example.com"]["severity"] == "high"  # Administrator
    assert evidence(orphans["bob.finance@example.com"])["matched by"] == "nothing"
    # The other side: with everyone in the roster, there is no orphan.
    assert not of_rule(cli.findings("--identity", str(cli.write("all.csv", roster()))), "not-in-identity-source")


def test_a_map_file_matches_the_hard_cases_and_the_report_says_how(cli: Cli) -> None:
    cli.write("hr.csv", roster({"heidi.ev@example.com": {"email": "h.evans@corp.example.com",
                                                         "status": "terminated", "termination_date": "2026-10-20"}}))
    cli.write("map.csv", "user,person\nheidi.ev@example.com,E8\n")
    cli.configure('[identity]\nfiles = ["hr.csv"]\nmap_file = "map.csv"\n')
    result = cli.findings()
    heidi = of_rule(result, "terminated-still-active")["heidi.ev@example.com"]
    assert evidence(heidi)["matched by"] == "map file (row 2: E8)"
    assert "1 by map file" in result["identity_source"]["matched"]
    assert "heidi.ev@example.com" not in of_rule(result, "not-in-identity-source")


def test_break_glass_accounts_are_reported_apart_with_their_reason(cli: Cli) -> None:
    cli.write("hr.csv", roster(drop=["certs@example.com"]))
    cli.configure(
        '[identity]\nfiles = ["hr.csv"]\n\n[[identity.break_glass]]\nuser = "certs@example.com"\n'
        'reason = "Emergency administrator; sealed credentials in the security office safe"\n\n'
        '[[identity.break_glass]]\nuser = "gone@example.com"\nreason = "old emergency account"\n'
    )
    result = cli.findings()
    assert "certs@example.com" not in of_rule(result, "not-in-identity-source")
    lines = [line for line in result["limitations"] if line.startswith("Break-glass account")]
    assert any("certs@example.com (Administrator" in line and "sealed credentials in the security office safe" in line
               and "matches no person" in line for line in lines), lines
    assert any("gone@example.com" in line and "not in this snapshot" in line for line in lines), lines
    assert any("service (API-only) user is not judged by HR status" in line for line in result["limitations"])
    text = cli.ok("findings")
    assert "Break-glass account certs@example.com" in text
    assert "Identity source: hr.csv (11 rows" in text


def test_without_an_identity_source_the_limitation_is_stated_once(cli: Cli, tmp_path: Path) -> None:
    result = cli.findings()
    stated = [line for line in result["limitations"] if "leavers cannot be detected" in line]
    assert len(stated) == 1
    assert result["identity_source"] is None
    assert not of_rule(result, "terminated-still-active") and not of_rule(result, "not-in-identity-source")
    out = tmp_path / "reports"
    cli.ok("report", "--format", "html", "--output", str(out))
    page = next(out.glob("*.html")).read_text(encoding="utf-8")
    assert page.count("leavers cannot be detected") == 2  # once in Limitations, once pointing there from Source
    hr = cli.write("hr.csv", roster())
    cli.ok("report", "--format", "html", "--output", str(out), "--identity", str(hr), "--overwrite")
    page = next(out.glob("*.html")).read_text(encoding="utf-8")
    assert "<dt>Identity source</dt>" in page and "hr.csv (12 rows, export time not stated" in page
    assert "matched by email" in page and "leavers cannot be detected" not in page


# --- presets -------------------------------------------------------------------------------------

OKTA = (
    "login,email,secondEmail,firstName,status,statusChanged,employeeNumber,managerId\n"
    "ivan.manager@example.com,ivan.manager@example.com,,Ivan,DEPROVISIONED,2026-10-15T09:30:00.000Z,100,\n"
    "o.judy@corp.example.com,o.judy@corp.example.com,judy.sales@example.com,Judy,ACTIVE,2026-01-02T00:00:00.000Z,101,\n"
)
ENTRA = (
    "userPrincipalName,displayName,surname,mail,givenName,objectId,userType,jobTitle,department,accountEnabled,"
    "alternateEmailAddress\n"
    "ivan@corp.onmicrosoft.com,Ivan,M,ivan.manager@example.com,Ivan,6f1c,Member,,,False,\n"
    "judy@corp.onmicrosoft.com,Judy,S,,Judy,7a2d,Member,,,True,judy.sales@example.com\n"
)
GOOGLE = (
    "First Name [Required],Last Name [Required],Email Address [Required],Password [Required],"
    "Org Unit Path [Required],Status [READ ONLY],Last Sign In [READ ONLY],Work Secondary Email,Employee ID,"
    "Manager Email\n"
    "Ivan,M,ivan.manager@example.com,****,/,Suspended,2026/10/01 10:00:00,,G1,alice.admin@example.com\n"
    "Judy,S,judy@corp.example.com,****,/,Active,2026/10/30 10:00:00,judy.sales@example.com,G2,\n"
)


@pytest.mark.parametrize(("preset", "name", "text", "date"), [
    ("okta", "okta.csv", OKTA, "2026-10-15"),
    ("entra", "entra.csv", ENTRA, "(not stated)"),
    ("google", "google.csv", GOOGLE, "(not stated)"),
])
def test_each_preset_reads_its_export(cli: Cli, preset: str, name: str, text: str, date: str) -> None:
    path = cli.write(name, text)
    result = cli.findings("--identity", str(path), "--identity-preset", preset)
    leavers = of_rule(result, "terminated-still-active")
    assert set(leavers) == {"ivan.manager@example.com"}
    facts = evidence(leavers["ivan.manager@example.com"])
    assert facts["termination date"] == date
    assert facts["matched by"] == ("alias" if preset == "entra" else "email")
    if preset == "google":
        assert facts["manager"] == "alice.admin@example.com"
    orphans = of_rule(result, "not-in-identity-source")
    assert "judy.sales@example.com" not in orphans  # matched by a secondary address
    assert f"preset {preset}" in result["identity_source"]["source"]
    if preset == "okta":
        return  # Okta's export has columns named email and status, so the generic preset reads it too
    # The same file read with the generic preset is a missing-column error: the preset matters.
    code, out, err = cli.run("findings", "--identity", str(path))
    assert code == ExitCode.USAGE and out == ""
    assert f"{path}: row 1: the mapped column" in err


# --- input errors: exit 2, naming file, row and column; nothing evaluated ----------------------------


def _fails(cli: Cli, *argv: str) -> str:
    code, out, err = cli.run(*argv)
    assert code == ExitCode.USAGE, err
    assert out == ""  # nothing half-evaluated reaches stdout
    assert "Traceback" not in err
    return err


def test_an_unknown_preset_is_exit_2_naming_the_valid_ones(cli: Cli) -> None:
    hr = cli.write("hr.csv", roster())
    err = _fails(cli, "findings", "--identity", str(hr), "--identity-preset", "workday")
    assert "Unknown identity preset 'workday'" in err and "generic, okta, entra, google" in err
    cli.configure('[identity]\nfiles = ["hr.csv"]\npreset = "workday"\n')
    err = _fails(cli, "findings")
    assert f"{cli.config}:3: unknown identity preset 'workday'" in err
    cli.configure("")
    err = _fails(cli, "findings", "--identity-preset", "okta")
    assert "--identity-preset was given without an identity file" in err


def test_a_missing_mapped_column_names_file_row_and_column(cli: Cli) -> None:
    hr = cli.write("hr.csv", "email,state\nalice.admin@example.com,active\n")
    err = _fails(cli, "findings", "--identity", str(hr))
    assert f"{hr}: row 1: the mapped column 'status' is not in the file" in err
    cli.write("hr2.csv", "email,state\nalice.admin@example.com,active\n")
    cli.configure('[identity]\nfiles = ["hr2.csv"]\nstatus = "state"\nemployee_id = "personnel_number"\n')
    err = _fails(cli, "findings")
    assert "row 1: the mapped column 'personnel_number' is not in the file" in err


def test_an_unparseable_date_names_file_row_and_column(cli: Cli) -> None:
    hr = cli.write("hr.csv", roster({"judy.sales@example.com": {"termination_date": "31/10/2026"}}))
    err = _fails(cli, "findings", "--identity", str(hr))
    assert f"{hr}: row 11, column 'termination_date': '31/10/2026' is not a date" in err


def test_duplicate_employee_ids_name_both_rows(cli: Cli) -> None:
    hr = cli.write("hr.csv", roster({"judy.sales@example.com": {"employee_id": "E3"}}))
    err = _fails(cli, "findings", "--identity", str(hr))
    assert f"{hr}: row 11, column 'employee_id': employee id 'E3' is already used by hr.csv row 4" in err


def test_a_bad_identity_file_fails_run_before_it_pulls(cli: Cli, tmp_path: Path) -> None:
    hr = cli.write("hr.csv", roster({"judy.sales@example.com": {"termination_date": "soon"}}))
    code, _out, err = cli.run("run", "--identity", str(hr), "--output", str(tmp_path / "out"), "--format", "html")
    assert code == ExitCode.USAGE, err
    assert "column 'termination_date'" in err and "Pulled" not in err
    assert len([line for line in cli.ok("snapshots").splitlines() if line.strip()[:1].isdigit()]) == 1


def test_a_map_file_naming_nobody_is_an_error(cli: Cli) -> None:
    cli.write("hr.csv", roster())
    cli.write("map.csv", "user,person\nheidi.ev@example.com,E404\n")
    cli.configure('[identity]\nfiles = ["hr.csv"]\nmap_file = "map.csv"\n')
    err = _fails(cli, "findings")
    assert "map.csv: row 2, column 'person': 'E404' is no employee id or email" in err


def test_an_identity_file_over_the_cap_or_not_regular_is_refused(cli: Cli, tmp_path: Path) -> None:
    from auditor.identity import MAX_IDENTITY_BYTES
    from auditor.inputs import MAX_INPUT_BYTES

    err = _fails(cli, "findings", "--identity", str(tmp_path))
    assert "not a regular file" in err
    huge = tmp_path / "huge.csv"
    with huge.open("wb") as handle:  # sparse: refused by its size before a byte is read
        handle.truncate(MAX_IDENTITY_BYTES + 1)
    err = _fails(cli, "findings", "--identity", str(huge))
    assert f"at most {MAX_IDENTITY_BYTES:,} bytes are read" in err
    # A roster larger than the 1 MB allowed for auditor.toml is read: identity files have their own cap.
    big = cli.write("big.csv", roster(extra=30_000))
    assert big.stat().st_size > MAX_INPUT_BYTES
    assert cli.findings("--identity", str(big))["identity_source"]["source"].startswith("big.csv (30,012 rows")


# --- the evidence record ---------------------------------------------------------------------------


def _members(path: Path) -> dict[str, bytes]:
    with zipfile.ZipFile(path) as archive:
        return {name: archive.read(name) for name in archive.namelist()}


def test_the_bundle_records_the_source_and_re_performs_without_the_file(cli: Cli, tmp_path: Path) -> None:
    text = roster({"ivan.manager@example.com": {"status": "terminated", "termination_date": "2026-10-31"}},
                  drop=["bob.finance@example.com"], extra=50)
    hr = cli.write("hr.csv", text)
    bundle = tmp_path / "bundle.zip"
    cli.ok("export", "--output", str(bundle), "--no-reports", "--identity", str(hr))
    members = _members(bundle)
    context = json.loads(members["manifest.json"])["context"]
    recorded = context["identity_source"]
    assert recorded["files"] == [{"name": "hr.csv", "sha256": hashlib.sha256(text.encode()).hexdigest(),
                                  "rows": 61, "format": "csv", "exported_at": None}]
    assert recorded["preset"] == "generic" and recorded["files_in_bundle"] is False
    assert recorded["mapping"]["email"] == "email" and "deprovisioned" in recorded["mapping"]["terminated_values"]
    assert str(tmp_path) not in members["manifest.json"].decode()
    inputs = json.loads(members["evidence/rule-inputs.json"])
    records = inputs["identity"]["records"]
    assert inputs["identity"]["recorded_subset"] is True
    # Only the people some user matched: not the 50 unrelated ones, nor any local path.
    assert len(records) == 11 and not any(r["email"].startswith("someone") for r in records)
    assert not any(name.startswith("evidence/identity-source/") for name in members)
    assert str(tmp_path) not in members["evidence/rule-inputs.json"].decode()
    findings = json.loads(members["views/findings.json"])
    assert {f["rule"] for f in findings["findings"]} >= {"terminated-still-active", "not-in-identity-source"}

    hr.unlink()  # re-performance needs only the bundle
    key = tmp_path / "signer.pem"
    key.write_text(cli.ok("keys", "public"))
    code, out, err = cli.run("verify", str(bundle), "--public-key", str(key), "--reperform")
    assert code == ExitCode.OK, out + err
    assert "Re-performance: PASSED" in out


def test_include_identity_source_puts_the_file_in_the_bundle_and_it_still_re_performs(
    cli: Cli, tmp_path: Path
) -> None:
    document = {"exported_at": "2026-10-31T22:00:00Z",
                "users": [{"email": e, "status": "active", "employee_id": i} for e, i in PEOPLE.items()]}
    document["users"][8]["status"] = "terminated"  # ivan.manager, undated
    data = json.dumps(document).encode()
    hr = tmp_path / "idp.json"
    hr.write_bytes(data)
    bundle = tmp_path / "bundle.zip"
    cli.ok("export", "--output", str(bundle), "--no-reports", "--identity", str(hr), "--include-identity-source")
    members = _members(bundle)
    assert members["evidence/identity-source/1-idp.json"] == data
    manifest = json.loads(members["manifest.json"])
    entry = next(f for f in manifest["files"] if f["path"] == "evidence/identity-source/1-idp.json")
    assert entry["role"] == "recorded-input"
    recorded = manifest["context"]["identity_source"]
    assert recorded["files"][0]["exported_at"] == "2026-10-31T22:00:00+00:00"
    assert recorded["files_in_bundle"] is True
    findings = json.loads(members["views/findings.json"])
    ivan = next(f for f in findings["findings"] if f["rule"] == "terminated-still-active")
    assert ivan["email"] == "ivan.manager@example.com" and evidence(ivan)["days since termination"] == "not stated"
    key = tmp_path / "signer.pem"
    key.write_text(cli.ok("keys", "public"))
    code, out, err = cli.run("verify", str(bundle), "--public-key", str(key), "--reperform")
    assert code == ExitCode.OK, out + err
    # The auditor's standalone verifier accepts the extra recorded input too.
    standalone = subprocess.run(
        [sys.executable, str(REPO / "verifier" / "verify_bundle.py"), str(bundle), "--public-key", str(key)],
        capture_output=True, text=True, check=False, timeout=120,
    )
    assert standalone.returncode == 0, standalone.stdout + standalone.stderr
    # Without a source the option is an error, not a silently empty bundle.
    err = _fails(cli, "export", "--output", str(tmp_path / "b2.zip"), "--include-identity-source")
    assert "there is no identity source" in err


# --- the sample account (what `make demo` shows) ---------------------------------------------------


def test_the_sample_hr_export_shows_two_leavers_one_orphan_and_one_break_glass_account(tmp_path: Path) -> None:
    from auditor.samples import latest_sample_state, sample_account_dir
    from auditor.sandbox import load_dataset

    runner = Cli(tmp_path, Clock(datetime(2026, 11, 1, 6, 0, tzinfo=UTC)), config=sample_account_dir() / "auditor.toml")
    with SandboxServer(load_dataset(latest_sample_state())) as sample:
        code, _out, err = runner.run("connect", "--base-url", sample.base_url, "--key-stdin",
                                     stdin="sandbox-view-only-key\n")
        assert code == ExitCode.OK, err
        runner.ok("pull")
    result = runner.findings()
    leavers = of_rule(result, "terminated-still-active")
    assert {email: f["severity"] for email, f in leavers.items()} == {
        "dmitry.volkov@example.com": "critical",  # Administrator
        "pedro.alves@example.com": "high",
    }
    assert set(of_rule(result, "not-in-identity-source")) == {"sam.taylor.dev@gmail.com"}
    assert any(line.startswith("Break-glass account certs@example.com") and "sealed in the security office safe"
               in line for line in result["limitations"])
    assert "1 by alias, 2 by map file, 1 unmatched" in result["identity_source"]["matched"]
    assert runner.run("findings", "--fail-on", "critical")[0] == ExitCode.FINDINGS_OR_VERIFY_FAILED


def test_two_identity_files_form_one_roster_and_an_id_repeated_across_them_is_an_error(cli: Cli) -> None:
    staff = cli.write("staff.csv", roster(drop=["bob.finance@example.com"]))
    contractors = cli.write("contractors.json", json.dumps(
        [{"email": "bob.finance@example.com", "status": "Inactive", "employee_id": "C1",
          "termination_date": "2026-10-01T00:00:00+02:00"}]))
    result = cli.findings("--identity", str(staff), "--identity", str(contractors))
    bob = of_rule(result, "terminated-still-active")["bob.finance@example.com"]
    assert evidence(bob)["identity record"] == "contractors.json row 1"
    assert evidence(bob)["termination date"] == "2026-09-30"  # 00:00 at UTC+2 is the evening before, in UTC
    assert not of_rule(result, "not-in-identity-source")
    clash = cli.write("clash.json", json.dumps([{"email": "x@example.com", "status": "active", "employee_id": "E3"}]))
    err = _fails(cli, "findings", "--identity", str(staff), "--identity", str(clash))
    assert f"{clash}: record 1, column 'employee_id': employee id 'E3' is already used by staff.csv row 3" in err
