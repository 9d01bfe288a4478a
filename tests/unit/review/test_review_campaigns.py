"""Access review campaigns (issue 14) through the real CLI against the sandbox, with an injected clock."""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from support import Clock, ClockedCli

from auditor.errors import ExitCode
from auditor.review import HEADER
from auditor.sandbox import SandboxServer, default_dataset
from auditor.store import Store

T0 = datetime(2026, 11, 1, 6, 0, tzinfo=UTC)
DAY = timedelta(days=1)
OWNER = "Olga Owner <olga.owner@audit.example>"
SECOND = "Sam Second <sam.second@audit.example>"
DANA = "dana.ops@example.com"  # Manager, 140 days without a sign-in: a high finding
CAROL = "carol.sales@example.com"
JOSE = "jose.nunez@example.com"
ALICE = "alice.admin@example.com"


@dataclasses.dataclass
class Cli(ClockedCli):
    server: SandboxServer | None = None

    def status(self, *extra: str) -> Any:
        return json.loads(self.ok("review", "status", "--format", "json", *extra))

    def findings(self, *extra: str) -> Any:
        return json.loads(self.ok("findings", "--format", "json", *extra))

    def drop_user(self, email: str) -> None:
        data = self.server.dataset
        self.server.set_dataset(dataclasses.replace(data, users=tuple(u for u in data.users if u["email"] != email)))

    def set_roles(self, email: str, role_id: int, role_name: str) -> None:
        data = self.server.dataset
        users = tuple(
            {**u, "access_roles": [{"id": role_id, "name": role_name}]} if u["email"] == email else u
            for u in data.users
        )
        self.server.set_dataset(dataclasses.replace(data, users=users))


@pytest.fixture
def sandbox() -> Iterator[SandboxServer]:
    with SandboxServer(default_dataset()) as server:
        yield server


@pytest.fixture
def cli(tmp_path: Path, sandbox: SandboxServer) -> Cli:
    runner = Cli(tmp_path, Clock(T0), server=sandbox)
    runner.connect(sandbox.base_url)
    return runner


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def fill_csv(source: Path, target: Path, decisions: dict[str, dict[str, str]]) -> Path:
    """Copy a worksheet, filling the reviewer columns of the rows named by email."""
    with source.open(newline="", encoding="utf-8") as handle:
        rows = list(csv.reader(handle))
    header = rows[0]
    for row in rows[1:]:
        fill = decisions.get(row[header.index("email")])
        if fill:
            for column, value in fill.items():
                row[header.index(column)] = value
    with target.open("w", newline="", encoding="utf-8") as handle:
        csv.writer(handle).writerows(rows)
    return target


def open_csv(cli: Cli, *extra: str) -> tuple[int, Path]:
    path = cli.tmp / "review.csv"
    out = cli.ok("review", "open", "--output", str(path), *extra)
    return int(out.strip()), path


# --- open ------------------------------------------------------------------------------------


def test_open_writes_the_contract_columns_with_findings_and_days_inactive_as_of_the_snapshot(cli: Cli) -> None:
    cli.pull(T0)
    cli.clock.now = T0 + 30 * DAY  # a month later: days_inactive stays as of the snapshot
    campaign, path = open_csv(cli, "--due", "2026-12-15")
    assert campaign == 1
    with path.open(newline="", encoding="utf-8") as handle:
        header = next(csv.reader(handle))
    assert tuple(header) == HEADER
    rows = {row["email"]: row for row in read_csv(path)}
    snapshot_users = len(cli.findings()["findings"]) >= 0 and len(rows)
    assert snapshot_users >= 10  # scope all: every user, service user included
    dana = rows[DANA]
    assert dana["campaign"] == "1" and dana["snapshot"] == "1"
    assert 139 <= int(dana["days_inactive"]) <= 141
    evaluated = {f["rule"] for f in cli.findings()["findings"] if f.get("email") == DANA and not f["suppressed"]}
    assert set(dana["findings"].split()) == evaluated and evaluated
    assert all(row["decision"] == "" for row in rows.values())
    # One open campaign per connection.
    err = cli.fails("review", "open", "--output", str(cli.tmp / "again.csv"))
    assert "already has an open review campaign (#1" in err


def test_a_worksheet_that_cannot_be_written_opens_no_campaign(cli: Cli) -> None:
    cli.pull(T0)
    err = cli.fails("review", "open", "--output", str(cli.tmp / "missing-dir" / "review.xlsx"))
    assert "No campaign was opened" in err
    err = cli.fails("review", "status")
    assert "There is no review campaign yet" in err
    err = cli.fails("review", "open", "--output", str(cli.tmp / "review.txt"))
    assert "must end in .xlsx or .csv" in err


def test_scope_privileged_lists_only_privileged_roles(cli: Cli) -> None:
    cli.pull(T0)
    _, path = open_csv(cli, "--scope", "privileged")
    rows = read_csv(path)
    assert rows and all(
        any(role in row["role"] for role in ("Administrator", "Manager")) for row in rows
    ), [r["role"] for r in rows]
    assert CAROL not in {row["email"] for row in rows} or "Manager" in next(
        r["role"] for r in rows if r["email"] == CAROL
    )


# --- import: validation ----------------------------------------------------------------------


def test_an_edited_data_cell_fails_the_whole_file_naming_file_row_and_column(cli: Cli) -> None:
    cli.pull(T0)
    _, path = open_csv(cli)
    filled = fill_csv(
        path,
        cli.tmp / "filled.csv",
        {
            CAROL: {"decision": "keep", "justification": "Sales director"},
            DANA: {"role": "User", "decision": "keep", "justification": "needed"},
        },
    )
    dana_row = 2 + [r["email"] for r in read_csv(path)].index(DANA)
    err = cli.fails("review", "import", str(filled), "--by", OWNER)
    assert f"filled.csv: row {dana_row}, column role: edited data cell" in err
    assert "nothing was recorded" in err
    assert cli.status()["decided"] == 0  # carol's valid row was not recorded either


@pytest.mark.parametrize(
    ("fill", "column", "says"),
    [
        ({"decision": "remove"}, "decision", "unknown decision 'remove'"),
        ({"campaign": "7", "decision": "keep", "justification": "x"}, "campaign", "is not this campaign"),
        ({"snapshot": "9", "decision": "keep", "justification": "x"}, "snapshot", "is not the campaign's snapshot"),
        ({"row_digest": "0000000000000000", "decision": "keep", "justification": "x"}, "row_digest", "edited"),
    ],
)
def test_every_validation_error_names_the_cell_and_records_nothing(
    cli: Cli, fill: dict[str, str], column: str, says: str
) -> None:
    cli.pull(T0)
    _, path = open_csv(cli)
    high = next(f["email"] for f in cli.findings()["findings"] if f["severity"] == "high" and f["email"])
    other = next(r["email"] for r in read_csv(path) if not r["findings"])
    filled = fill_csv(path, cli.tmp / "bad.csv", {high: fill, other: {"decision": "keep"}})
    row = 2 + [r["email"] for r in read_csv(path)].index(high)
    err = cli.fails("review", "import", str(filled), "--by", OWNER)
    assert f"bad.csv: row {row}, column {column}: " in err and says in err, err
    assert cli.status()["decided"] == 0


def test_a_row_missing_its_justification_or_new_role_is_refused_and_the_rest_recorded(cli: Cli) -> None:
    """Row-level rules refuse that row only, naming file, row and column; fixed, it imports."""
    cli.pull(T0)
    _, path = open_csv(cli)
    high = next(f["email"] for f in cli.findings()["findings"] if f["severity"] == "high" and f["email"])
    assert high not in {CAROL, JOSE}
    other = next(r["email"] for r in read_csv(path) if not r["findings"] and r["email"] not in {CAROL, JOSE})
    fills = {
        JOSE: {"decision": "revoke"},
        CAROL: {"decision": "modify", "justification": "least privilege"},
        high: {"decision": "keep"},
        other: {"decision": "keep"},
    }
    filled = fill_csv(path, cli.tmp / "rows.csv", fills)
    row = {email: 2 + [r["email"] for r in read_csv(path)].index(email) for email in fills}
    code, _out, err = cli.run("review", "import", str(filled), "--by", OWNER)
    assert code == ExitCode.OK, err
    assert "Recorded 1 decision(s) from rows.csv" in err, err
    assert f"Refused rows.csv row {row[JOSE]}, column justification" in err
    assert "a revoke decision needs a justification; fill it in and import the file again" in err
    assert f"Refused rows.csv row {row[CAROL]}, column new_role" in err and "needs the new role" in err
    assert f"Refused rows.csv row {row[high]}, column justification" in err
    assert "keeping a user with a high finding" in err
    decisions = {d["user"]: d["decision"] for d in cli.status()["decisions"]}
    assert decisions[other] == "keep"
    assert decisions[JOSE] == decisions[CAROL] == decisions[high] == ""
    fixed = fill_csv(
        path,
        cli.tmp / "rows-fixed.csv",
        {
            JOSE: {"decision": "revoke", "justification": "left the company"},
            CAROL: {"decision": "modify", "new_role": "User", "justification": "least privilege"},
            high: {"decision": "keep", "justification": "on leave, returns in January"},
        },
    )
    code, _out, err = cli.run("review", "import", str(fixed), "--by", OWNER)
    assert code == ExitCode.OK and "Refused" not in err, err
    decisions = {d["user"]: d["decision"] for d in cli.status()["decisions"]}
    assert [decisions[e] for e in (JOSE, CAROL, high, other)] == ["revoke", "modify", "keep", "keep"]


def test_a_file_level_error_rejects_the_file_even_with_row_level_refusals(cli: Cli) -> None:
    cli.pull(T0)
    _, path = open_csv(cli)
    filled = fill_csv(
        path,
        cli.tmp / "mixed.csv",
        {JOSE: {"decision": "revoke"}, CAROL: {"decision": "remove"}, DANA: {"decision": "keep", "justification": "x"}},
    )
    err = cli.fails("review", "import", str(filled), "--by", OWNER)
    assert "column decision: unknown decision 'remove'" in err and "nothing was recorded" in err
    assert cli.status()["decided"] == 0


def test_a_wrong_header_is_refused(cli: Cli) -> None:
    cli.pull(T0)
    _, path = open_csv(cli)
    text = path.read_text(encoding="utf-8").replace("row_digest", "digest", 1)
    (cli.tmp / "hdr.csv").write_text(text, encoding="utf-8")
    err = cli.fails("review", "import", str(cli.tmp / "hdr.csv"), "--by", OWNER)
    assert "hdr.csv: row 1, column 14: header 'digest', expected 'row_digest'" in err


def test_self_review_row_is_refused_and_reported_the_rest_recorded(cli: Cli) -> None:
    cli.pull(T0)
    _, path = open_csv(cli)
    filled = fill_csv(
        path,
        cli.tmp / "alice.csv",
        {ALICE: {"decision": "keep", "justification": "me"}, CAROL: {"decision": "keep"}},
    )
    code, _out, err = cli.run("review", "import", str(filled), "--by", f"Alice Admin <{ALICE}>")
    assert code == ExitCode.OK, err
    alice_row = 2 + [r["email"] for r in read_csv(path)].index(ALICE)
    assert f"Refused alice.csv row {alice_row}" in err and "self-review" in err
    decisions = {d["user"]: d for d in cli.status()["decisions"]}
    assert decisions[CAROL]["decision"] == "keep"
    assert decisions[ALICE]["decision"] == ""


def test_two_reviewers_import_their_parts_and_a_later_import_replaces_with_history_kept(cli: Cli) -> None:
    cli.pull(T0)
    _, path = open_csv(cli)
    cli.clock.now = T0 + DAY
    first = fill_csv(path, cli.tmp / "olga1.csv", {CAROL: {"decision": "keep"}, JOSE: {"decision": "keep"}})
    cli.ok("review", "import", str(first), "--by", OWNER)
    cli.clock.now = T0 + 2 * DAY
    second = fill_csv(
        path, cli.tmp / "sam.csv", {DANA: {"decision": "revoke", "justification": "left ops", "ticket": "SEC-1"}}
    )
    cli.ok("review", "import", str(second), "--by", SECOND)
    cli.clock.now = T0 + 3 * DAY
    again = fill_csv(
        path, cli.tmp / "olga2.csv", {JOSE: {"decision": "modify", "new_role": "User", "justification": "fewer rights"}}
    )
    code, _out, err = cli.run("review", "import", str(again), "--by", OWNER)
    assert code == ExitCode.OK and "replacing 1 earlier decision" in err, err
    status = cli.status()
    decisions = {d["user"]: d for d in status["decisions"]}
    assert decisions[JOSE]["decision"] == "modify" and decisions[JOSE]["reviewer"] == OWNER
    assert decisions[CAROL]["decision"] == "keep"
    assert decisions[DANA]["reviewer"] == SECOND and decisions[DANA]["decision"] == "revoke"
    assert status["by_reviewer"] == {OWNER: 2, SECOND: 1}
    assert [h["decision"] for h in status["history"] if h["reviewer"] == OWNER] == ["keep", "keep", "modify"]
    assert [i["file_name"] for i in status["imports"]] == ["olga1.csv", "sam.csv", "olga2.csv"]
    csv_out = cli.ok("review", "status", "--format", "csv")
    header = next(csv.reader(io.StringIO(csv_out)))
    assert header == ["user", "decision", "justification", "reviewer", "decided at", "applied at", "remediation status"]


# --- close -------------------------------------------------------------------------------------


def test_close_needs_allow_undecided_becomes_the_sign_off_and_makes_the_campaign_immutable(cli: Cli) -> None:
    cli.pull(T0)
    _, path = open_csv(cli)
    cli.clock.now = T0 + DAY
    filled = fill_csv(path, cli.tmp / "f.csv", {CAROL: {"decision": "keep"}})
    cli.ok("review", "import", str(filled), "--by", OWNER)
    err = cli.fails("review", "close", "--by", OWNER, "--statement", "Reviewed")
    assert "undecided row(s)" in err and "--allow-undecided" in err
    code, _out, err = cli.run("review", "close", "--by", OWNER, "--statement", "Reviewed", "--allow-undecided")
    assert code == ExitCode.OK, err
    assert "signing off snapshot 1" in err and "recorded as not reviewed" in err
    with Store.open(cli.tmp / "data", master_key=cli.workspace.master_key()) as store:
        (review,) = [a for a in store.attestations("default") if a.kind.value == "review"]
    assert review.snapshot_id == 1 and "campaign #1" in review.statement
    status = cli.status()
    assert status["state"] == "closed"
    assert {d["decision"] for d in status["decisions"] if d["user"] != CAROL} == {"not reviewed"}
    err = cli.fails("review", "import", str(filled), "--by", SECOND)
    assert "closed campaign is immutable" in err
    err = cli.fails("review", "close", "--campaign", "1", "--by", OWNER, "--statement", "again")
    assert "closed campaign is immutable" in err


def test_a_tampered_decision_in_the_database_is_detected(cli: Cli) -> None:
    cli.pull(T0)
    _, path = open_csv(cli)
    filled = fill_csv(path, cli.tmp / "f.csv", {DANA: {"decision": "revoke", "justification": "gone"}})
    cli.ok("review", "import", str(filled), "--by", OWNER)
    with sqlite3.connect(cli.tmp / "data" / "auditor.db") as db:
        db.execute("UPDATE campaign_decisions SET decision = 'keep'")
    code, _out, err = cli.run("review", "status")
    assert code == ExitCode.LOCAL_DATA and "decision #1 of review campaign 1" in err


@pytest.mark.parametrize(
    "statement",
    [
        "DELETE FROM campaign_decisions WHERE id = 2",
        "DELETE FROM campaign_decisions WHERE import_id = 2",
    ],
)
def test_a_deleted_decision_or_import_is_detected(cli: Cli, statement: str) -> None:
    cli.pull(T0)
    _, path = open_csv(cli)
    cli.ok("review", "import", str(fill_csv(path, cli.tmp / "a.csv", {CAROL: {"decision": "keep"},
                                                                        JOSE: {"decision": "keep"}})), "--by", OWNER)
    cli.ok("review", "import", str(fill_csv(path, cli.tmp / "b.csv", {JOSE: {"decision": "keep"}})), "--by", SECOND)
    with sqlite3.connect(cli.tmp / "data" / "auditor.db") as db:
        db.execute(statement)
        if "import_id" in statement:
            db.execute("DELETE FROM campaign_imports WHERE id = 2")
    code, _out, err = cli.run("review", "status")
    assert code == ExitCode.LOCAL_DATA and "Review campaign #1" in err and "deleted or added" in err, err


# --- remediation across pulls ------------------------------------------------------------------


def _campaign_with_two_revokes(cli: Cli) -> None:
    cli.pull(T0)
    _, path = open_csv(cli)
    cli.clock.now = T0 + DAY
    filled = fill_csv(
        path,
        cli.tmp / "f.csv",
        {
            DANA: {"decision": "revoke", "justification": "left ops", "ticket": "SEC-2411"},
            CAROL: {"decision": "revoke", "justification": "moved team", "ticket": "SEC-2412"},
        },
    )
    cli.ok("review", "import", str(filled), "--by", OWNER)
    cli.clock.now = T0 + 2 * DAY
    cli.ok("review", "close", "--by", SECOND, "--statement", "Acknowledged", "--allow-undecided")


def test_a_revoke_is_remediated_by_a_later_pull_the_other_goes_overdue(cli: Cli) -> None:
    _campaign_with_two_revokes(cli)
    cli.drop_user(DANA)
    cli.pull(T0 + 5 * DAY)
    decisions = {d["user"]: d for d in cli.status()["decisions"]}
    assert decisions[DANA]["remediation"] == "remediated" and decisions[DANA]["applied_snapshot"] == 2
    assert decisions[CAROL]["remediation"] == "pending"
    assert "revocation-overdue" not in {f["rule"] for f in cli.findings()["findings"]}
    cli.pull(T0 + 20 * DAY)  # 18 days after close: past the 14 remediation days
    overdue = [f for f in cli.findings()["findings"] if f["rule"] == "revocation-overdue"]
    assert [f["email"] for f in overdue] == [CAROL]
    assert overdue[0]["severity"] == "high"
    evidence = json.dumps(overdue[0])
    assert "SEC-2412" in evidence and OWNER in evidence and "revoke" in evidence
    # As of the earlier snapshot, nothing was overdue yet: a later clock does not reach back.
    assert "revocation-overdue" not in {f["rule"] for f in cli.findings("--snapshot", "2")["findings"]}


def test_a_remediated_revocation_regranted_later_raises_access_regranted(cli: Cli) -> None:
    _campaign_with_two_revokes(cli)
    cli.set_roles(CAROL, 3, "Finance")  # no longer privileged
    cli.pull(T0 + 5 * DAY)
    assert {d["user"]: d for d in cli.status()["decisions"]}[CAROL]["remediation"] == "remediated"
    cli.set_roles(CAROL, 1, "Administrator")
    cli.pull(T0 + 6 * DAY)
    regranted = [f for f in cli.findings()["findings"] if f["rule"] == "access-regranted"]
    assert [f["email"] for f in regranted] == [CAROL] and regranted[0]["severity"] == "high"
    assert {d["user"]: d for d in cli.status()["decisions"]}[CAROL]["remediation"] == "regranted"


def test_a_modify_is_remediated_when_the_role_equals_new_role(cli: Cli) -> None:
    cli.pull(T0)
    _, path = open_csv(cli)
    cli.clock.now = T0 + DAY
    filled = fill_csv(path, cli.tmp / "m.csv", {JOSE: {"decision": "modify", "new_role": "Finance",
                                                       "justification": "needs billing only"}})
    cli.ok("review", "import", str(filled), "--by", OWNER)
    cli.ok("review", "close", "--by", SECOND, "--statement", "ok", "--allow-undecided")
    cli.set_roles(JOSE, 4, "Manager")  # changed, but not to the decided role
    cli.pull(T0 + 3 * DAY)
    assert {d["user"]: d for d in cli.status()["decisions"]}[JOSE]["remediation"] == "pending"
    cli.set_roles(JOSE, 3, "Finance")
    cli.pull(T0 + 4 * DAY)
    jose = {d["user"]: d for d in cli.status()["decisions"]}[JOSE]
    assert jose["remediation"] == "remediated" and jose["applied_snapshot"] == 3


# --- report ------------------------------------------------------------------------------------


def _report_text(cli: Cli, snapshot: int, folder: str) -> str:
    import html
    import re

    out = cli.tmp / folder
    (path,) = cli.ok("report", "--snapshot", str(snapshot), "--format", "html", "--output", str(out)).split()
    page = Path(path).read_text(encoding="utf-8")
    start = page.index('<section id="review"')
    section = page[start : page.index("</section>", start)]
    return re.sub(r"\s+", " ", html.unescape(re.sub(r"<[^>]+>", " ", section)))


def test_the_report_shows_the_campaign_its_decisions_and_remediation_as_of_each_snapshot(cli: Cli) -> None:
    _campaign_with_two_revokes(cli)
    reviewed = _report_text(cli, 1, "r1")
    assert "Access review campaign #1 of snapshot #1 (closed" in reviewed
    assert "2 of 13 rows decided, 11 not reviewed" in reviewed
    assert "left ops" in reviewed and "SEC-2411" in reviewed and OWNER in reviewed
    assert "Not reviewed (closed without a decision, no change) (11)" in reviewed
    cli.drop_user(DANA)
    cli.pull(T0 + 20 * DAY)
    later = _report_text(cli, 2, "r2")
    assert "1 remediated" in later and "1 overdue" in later
    assert "remediated (snapshot #2)" in later
    page = next((cli.tmp / "r2").glob("*.html")).read_text(encoding="utf-8")
    summary = page[page.index('<section id="summary"') :]
    assert "Access review: campaign #1 of snapshot #1 is closed, 2 of 13 rows decided, 1 remediated, 1 overdue" in (
        summary[: summary.index("</section>")]
    )


# --- evidence ----------------------------------------------------------------------------------


def test_the_bundle_carries_the_campaign_its_worksheets_as_imported_and_reperforms(cli: Cli) -> None:
    import hashlib
    import zipfile

    _campaign_with_two_revokes(cli)
    cli.drop_user(DANA)
    cli.pull(T0 + 20 * DAY)
    bundle = cli.tmp / "e.zip"
    cli.ok("export", "--output", str(bundle), "--no-reports")
    with zipfile.ZipFile(bundle) as archive:
        names = archive.namelist()
        manifest = json.loads(archive.read("manifest.json"))
        worksheet = archive.read("review/campaign-1/worksheets/001-f.csv")
        campaign = json.loads(archive.read("review/campaign-1/campaign.json"))
        decisions = json.loads(archive.read("review/campaign-1/decisions.json"))
        decisions_csv = archive.read("review/campaign-1/decisions.csv").decode()
    assert "review/campaign-1/decisions.csv" in names
    assert worksheet == (cli.tmp / "f.csv").read_bytes()
    assert hashlib.sha256(worksheet).hexdigest() in json.dumps(manifest)
    assert campaign["state"] == "closed" and campaign["attestation_id"] == 1
    assert campaign["by_remediation"] == {"remediated": 1, "overdue": 1}
    states = {d["user"]: d["remediation"] for d in decisions["decisions"] if d["remediation"]}
    assert states == {DANA: "remediated", CAROL: "overdue"}
    assert decisions_csv.startswith("user,decision,justification,reviewer,decided at,applied at,remediation status")
    pem = cli.tmp / "signer.pem"
    pem.write_text(_pem(cli.ok("keys", "public")))
    code, out, err = cli.run("verify", str(bundle), "--public-key", str(pem), "--reperform")
    assert code == ExitCode.OK, out + err


def _pem(text: str) -> str:
    start = text.index("-----BEGIN PUBLIC KEY-----")
    end = text.index("-----END PUBLIC KEY-----") + len("-----END PUBLIC KEY-----")
    return text[start:end] + "\n"
