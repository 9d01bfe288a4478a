"""A snapshot's findings, report and export are computed as of its own time; a review signs one snapshot.

Everything runs through the real CLI (``auditor.cli.main``: argument parsing, handlers, output)
against the sandbox on loopback, with the workspace's clock injected so a re-run "a year later"
needs no waiting: the CLI takes its workspace (and so its clock) as a parameter.
"""

from __future__ import annotations

import dataclasses
import html
import json
import re
import sqlite3
import zipfile
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from support import Clock, ClockedCli

from auditor.errors import ExitCode
from auditor.models import AttestationKind
from auditor.samples import latest_sample_state
from auditor.sandbox import SandboxServer, default_dataset, load_dataset
from auditor.store import _MIGRATIONS, Store

T0 = datetime(2026, 11, 1, 6, 0, tzinfo=UTC)
A_YEAR = timedelta(days=365)
ADMIN_EMAIL = "alice.admin@example.com"  # the default dataset's Administrator (and its View Only key's user)


@dataclasses.dataclass
class Cli(ClockedCli):
    """The real CLI over one data directory, with a clock the test moves."""

    def report_text(self, snapshot: int, folder: str) -> str:
        """The HTML report of ``snapshot`` as visible text, the "Generated" stamp blanked out."""
        out = self.tmp / folder
        (path,) = self.ok("report", "--snapshot", str(snapshot), "--format", "html", "--output", str(out)).split()
        return page_text(Path(path).read_text(encoding="utf-8"), generated=self.clock.now)

    def attest_review(self, by: str, *extra: str) -> str:
        code, _out, err = self.run(
            "attest", "review", "--by", by, "--statement", f"Reviewed by {by.split()[0]}", *extra
        )
        assert code == ExitCode.OK, err
        return err


def page_text(page: str, *, generated: datetime) -> str:
    page = page.replace(generated.strftime("%Y-%m-%d %H:%M UTC"), "GENERATED")
    page = page.replace(generated.isoformat(timespec="seconds"), "GENERATED")
    return page


def visible(page: str) -> str:
    text = re.sub(r"<(style|script|svg)\b.*?</\1>", " ", page, flags=re.S)
    return re.sub(r"\s+", " ", html.unescape(re.sub(r"<[^>]+>", " ", text)))


def signoff(page: str) -> str:
    start = page.index('<section class="signoff"')
    return visible(page[start : page.index("</section>", start)])


@pytest.fixture
def sandbox() -> Iterator[SandboxServer]:
    with SandboxServer(default_dataset()) as server:
        yield server


@pytest.fixture
def cli(tmp_path: Path, sandbox: SandboxServer) -> Cli:
    runner = Cli(tmp_path, Clock(T0))
    runner.connect(sandbox.base_url)
    return runner


# --- §1: as of the snapshot ---------------------------------------------------------------


def test_findings_report_and_export_of_a_snapshot_are_the_same_a_year_later(cli: Cli) -> None:
    cli.pull(T0)
    cli.clock.now = T0 + timedelta(hours=1)
    findings = cli.findings()
    report = cli.report_text(1, "then")
    cli.ok("export", "--output", str(cli.tmp / "then.zip"), "--no-reports")

    cli.clock.now = T0 + A_YEAR - timedelta(days=1)
    cli.ok("attest", "mfa", "--by", "Rita Reviewer <rita@audit.example>", "--statement", "2FA required")
    cli.clock.now = T0 + A_YEAR
    assert cli.findings() == findings
    assert cli.report_text(1, "later") == report
    cli.ok("export", "--output", str(cli.tmp / "later.zip"), "--no-reports")
    for view in ("views/findings.json", "views/users.csv", "views/attestations.json", "views/exceptions.json"):
        with zipfile.ZipFile(cli.tmp / "then.zip") as then, zipfile.ZipFile(cli.tmp / "later.zip") as later:
            assert then.read(view) == later.read(view), view

    # Evaluated at the pull, not at the run: a year on, every user would otherwise be stale.
    assert str(findings["evaluated_at"]).startswith("2026-11-01T06:00:00")
    assert "judy.sales@example.com" not in {f["email"] for f in findings["findings"]}, "60 days, under 90"


def test_a_later_pull_does_not_change_an_earlier_snapshots_history(cli: Cli) -> None:
    cli.pull(T0)
    cli.clock.now = T0 + timedelta(hours=1)
    before = cli.ok("findings", "--snapshot", "1", "--format", "json")
    cli.pull(T0 + timedelta(days=200))
    assert cli.ok("findings", "--snapshot", "1", "--format", "json") == before
    with Store.open(cli.tmp / "data", clock=cli.clock) as store:
        first = store.get_snapshot(1)
        as_of_first = store.user_history("default", until=first)
        overall = store.user_history("default")
    alice = 2700762
    assert as_of_first[alice].last_seen == first.taken_at
    assert overall[alice].last_seen == T0 + timedelta(days=200)


# --- §2: a review signs the snapshot it reviewed --------------------------------------------


def test_a_review_binds_to_the_snapshot_it_names_and_never_appears_on_another(cli: Cli) -> None:
    cli.pull(T0)
    cli.clock.now = T0 + timedelta(hours=2)
    said = cli.attest_review("Rita Reviewer <rita@audit.example>")  # default: the latest complete, #1
    assert "of snapshot 1" in said
    cli.pull(T0 + timedelta(days=30))

    first = cli.report_text(1, "r1")
    assert "Rita Reviewer" in signoff(first) and "Reviewed by Rita" in signoff(first)
    assert "snapshot #1" in signoff(first)

    cli.ok("export", "--snapshot", "1", "--output", str(cli.tmp / "s1.zip"), "--no-reports")
    with zipfile.ZipFile(cli.tmp / "s1.zip") as bundle:
        (review,) = json.loads(bundle.read("views/attestations.json"))["attestations"]
    assert review["snapshot_id"] == 1 and len(review["raw_sha256"]) == 64

    second = cli.report_text(2, "r2")
    assert "Reviewed by Rita" not in second, "another snapshot's review statement never shows"
    assert "Last review: 2026-11-01, of snapshot #1, by Rita Reviewer <rita@audit.example>" in signoff(second)
    assert "Signature" in signoff(second), "blank lines to sign"

    # A review of #2, named explicitly, signs #2 only; #1 keeps its own sign-off.
    cli.clock.now = T0 + timedelta(days=31)
    cli.attest_review("Sam Second <sam@audit.example>", "--snapshot", "2")
    assert "Sam Second" in signoff(cli.report_text(2, "r2b"))
    assert "Sam Second" not in cli.report_text(1, "r1b")
    assert "Rita Reviewer" in signoff(cli.report_text(1, "r1c"))


def test_an_attestation_recorded_before_a_snapshot_does_not_cover_it(cli: Cli) -> None:
    cli.pull(T0)
    cli.clock.now = T0 + timedelta(hours=1)
    cli.attest_review("Rita Reviewer <rita@audit.example>")
    cli.ok(
        "attest",
        "mfa",
        "--by",
        "Rita Reviewer <rita@audit.example>",
        "--statement",
        "2FA required",
        "--valid-days",
        "30",
    )
    cli.clock.now = T0 + timedelta(hours=2)
    first = {f["rule"] for f in cli.findings("--snapshot", "1")["findings"]}
    assert "mfa-attestation-missing" in first, "the MFA check came after snapshot 1 was taken"

    cli.pull(T0 + timedelta(days=1))
    second_page = cli.report_text(2, "r2")
    assert "Reviewed by Rita" not in second_page, "the review was recorded before snapshot 2 existed"
    assert "Last review: 2026-11-01, of snapshot #1" in signoff(second_page)
    second = {f["rule"] for f in cli.findings("--snapshot", "2")["findings"]}
    assert "mfa-attestation-missing" not in second, "taken while the MFA attestation was valid"

    cli.pull(T0 + timedelta(days=40))
    third = {f["rule"] for f in cli.findings("--snapshot", "3")["findings"]}
    assert "mfa-attestation-missing" in third, "taken after the MFA attestation expired"

    # Nor can a review be recorded for a snapshot that did not exist yet at the review's time.
    cli.clock.now = T0
    code, _out, err = cli.run(
        "attest", "review", "--by", "Rita <rita@audit.example>", "--statement", "x", "--snapshot", "3"
    )
    assert code == ExitCode.USAGE and "cannot predate what it reviewed" in err


def test_a_review_by_a_privileged_user_of_the_snapshot_is_flagged_as_self_review(cli: Cli) -> None:
    cli.pull(T0)
    cli.clock.now = T0 + timedelta(hours=1)
    before = {f["rule"] for f in cli.findings()["findings"]}
    assert "self-review" not in before
    cli.attest_review(f"Alice Admin <{ADMIN_EMAIL.upper()}>")
    found = [f for f in cli.findings()["findings"] if f["rule"] == "self-review"]
    assert len(found) == 1 and found[0]["severity"] == "medium" and found[0]["email"] == ADMIN_EMAIL
    assert "holds Administrator" in signoff(cli.report_text(1, "r"))


def test_an_independent_review_is_not_flagged(cli: Cli) -> None:
    cli.pull(T0)
    cli.clock.now = T0 + timedelta(hours=1)
    cli.attest_review("Rita Reviewer <rita@audit.example>")
    assert "self-review" not in {f["rule"] for f in cli.findings()["findings"]}
    assert "Segregation of duties" not in signoff(cli.report_text(1, "r"))


# --- exceptions: approval required, in force from approval, self-approval flagged -----------

EXCEPTION = """\
[[exception]]
rule = "admin-never-signed-in"
user = "bob.finance@example.com"
reason = "Finance lead, onboarding"
owner = "Finance <finance@example.com>"
approved_by = "{approver}"
approved_on = {approved_on}
expires = 2027-06-30
"""


def _with_exceptions(cli: Cli, text: str) -> None:
    (cli.tmp / "exceptions.toml").write_text(text, encoding="utf-8")
    (cli.tmp / "auditor.toml").write_text(
        'profiles = ["pci-dss-4"]\nexceptions_file = "exceptions.toml"\n[rules]\nprivileged_roles = '
        '["Administrator", "Manager", "Finance Manager"]\n',
        encoding="utf-8",
    )
    cli.config = cli.tmp / "auditor.toml"


def test_an_exception_without_approval_is_a_configuration_error_naming_file_and_line(cli: Cli) -> None:
    cli.pull(T0)
    text = EXCEPTION.format(approver="CISO <ciso@example.com>", approved_on="2026-10-01")
    _with_exceptions(cli, "# accepted risks\n\n" + text.replace("approved_on = 2026-10-01\n", ""))
    code, _out, err = cli.run("findings")
    assert code == ExitCode.USAGE
    assert f"{cli.tmp / 'exceptions.toml'}:3: exception #1 is missing 'approved_on'" in err


def test_an_exception_suppresses_only_snapshots_taken_after_its_approval(cli: Cli) -> None:
    cli.pull(T0)
    cli.pull(T0 + timedelta(days=10))  # Bob has gone unseen at sign-in for longer than the 7-day grace
    _with_exceptions(cli, EXCEPTION.format(approver="CISO <ciso@example.com>", approved_on="2026-11-15"))
    bob = [f for f in cli.findings()["findings"] if f["email"] == "bob.finance@example.com"]
    assert bob and not any(f["suppressed"] for f in bob), "approved after snapshot 2 was taken"
    cli.pull(T0 + timedelta(days=20))
    bob = [f for f in cli.findings()["findings"] if f["email"] == "bob.finance@example.com"]
    assert bob and all(f["suppressed"] for f in bob)


def test_an_exception_approved_by_the_user_it_covers_is_flagged(cli: Cli) -> None:
    cli.pull(T0)
    _with_exceptions(cli, EXCEPTION.format(approver="Bob <Bob.Finance@example.com>", approved_on="2026-10-01"))
    (found,) = [f for f in cli.findings()["findings"] if f["rule"] == "self-approved-exception"]
    assert found["email"] == "bob.finance@example.com" and found["severity"] == "medium"
    assert "approved by" in found["explanation"]
    _with_exceptions(cli, EXCEPTION.format(approver="CISO <ciso@example.com>", approved_on="2026-10-01"))
    assert "self-approved-exception" not in {f["rule"] for f in cli.findings()["findings"]}


# --- §6: the audit key's user ---------------------------------------------------------------


@pytest.fixture
def sample_state() -> Iterator[SandboxServer]:
    with SandboxServer(load_dataset(latest_sample_state())) as server:
        yield server


def test_the_audit_keys_service_user_is_named_not_flagged(tmp_path: Path, sample_state: SandboxServer) -> None:
    cli = Cli(tmp_path, Clock(T0))
    cli.connect(sample_state.base_url)  # the View Only key of svc-auditor@example.com, an Administrator service user
    cli.pull(T0)
    result = cli.findings()
    flagged = {f["email"] for f in result["findings"] if f["rule"] == "privileged-service-user"}
    assert "svc-auditor@example.com" not in flagged
    assert "svc-renewals@example.com" in flagged, "other privileged service users still are"
    named = [line for line in result["limitations"] if "audit key's user" in line]
    assert len(named) == 1 and "svc-auditor@example.com" in named[0]


def test_the_audit_keys_user_is_flagged_when_it_signs_in(tmp_path: Path) -> None:
    state = load_dataset(latest_sample_state())
    signing_in = tuple(
        {**user, "last_login_date": "2026-10-30T09:00:00+00:00"} if user["id"] == 2740011 else user
        for user in state.service_users
    )
    users = tuple(
        {**user, "last_login_date": "2026-10-30T09:00:00+00:00"} if user["id"] == 2740011 else user
        for user in state.users
    )
    with SandboxServer(dataclasses.replace(state, service_users=signing_in, users=users)) as server:
        cli = Cli(tmp_path, Clock(T0))
        cli.connect(server.base_url)
        cli.pull(T0)
        flagged = [f for f in cli.findings()["findings"] if f["rule"] == "privileged-service-user"]
    (mine,) = [f for f in flagged if f["email"] == "svc-auditor@example.com"]
    assert "signs in interactively" in mine["explanation"]


# --- the store: reviews recorded before this version are bound on upgrade ------------------


def test_reviews_stored_before_the_upgrade_are_bound_to_the_snapshot_they_followed(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    db = sqlite3.connect(data / "auditor.db")
    for statement in _MIGRATIONS[0]:
        db.execute(statement)
    db.execute("PRAGMA user_version = 1")
    for taken in ("2026-10-01T06:00:00.000000+00:00", "2026-11-01T06:00:00.000000+00:00"):
        db.execute(
            "INSERT INTO snapshots (connection, taken_at, complete, details_fetched, user_count, admin_count,"
            " provenance) VALUES ('prod', ?, 1, 0, 0, 0, '{}')",
            (taken,),
        )
    db.execute(
        "INSERT INTO attestations (connection, kind, made_by, statement, made_at, expires) VALUES"
        " ('prod', 'review', 'Rita', 'done', '2026-10-15T00:00:00.000000+00:00', '2027-04-15T00:00:00.000000+00:00'),"
        " ('prod', 'mfa', 'Rita', '2FA', '2026-10-15T00:00:00.000000+00:00', '2027-01-15T00:00:00.000000+00:00')"
    )
    db.commit()
    db.close()
    with Store.open(data, clock=lambda: T0) as store:
        by_kind = {a.kind: a for a in store.attestations("prod")}
    assert by_kind[AttestationKind.REVIEW].snapshot_id == 1, "the latest complete snapshot when it was made"
    assert by_kind[AttestationKind.REVIEW].raw_sha256 == ""
    assert by_kind[AttestationKind.MFA].snapshot_id is None
