"""`review close`: the sign-off and the close are one transaction, and the sign-off counts for the
review interval of the selected profiles / auditor.toml (issue 14), through the real CLI."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from test_review_campaigns import CAROL, DAY, OWNER, SECOND, T0, Cli, fill_csv, open_csv
from test_review_campaigns import cli as cli  # the shared fixtures
from test_review_campaigns import sandbox as sandbox

from auditor.errors import ExitCode
from auditor.models import Attestation, AttestationKind
from auditor.store import Store


def _reviews(cli: Cli) -> list[Attestation]:
    with Store.open(cli.tmp / "data", master_key=cli.workspace.master_key()) as store:
        return [a for a in store.attestations("default") if a.kind is AttestationKind.REVIEW]


def _decided_campaign(cli: Cli) -> None:
    cli.pull(T0)
    _, path = open_csv(cli)
    cli.clock.now = T0 + DAY
    cli.ok("review", "import", str(fill_csv(path, cli.tmp / "f.csv", {CAROL: {"decision": "keep"}})), "--by", OWNER)
    cli.clock.now = T0 + 2 * DAY


def test_a_fault_in_the_close_after_the_sign_off_is_written_records_neither(
    cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The second write (the campaign's state) fails, as a full disk would: the sign-off written just
    before is rolled back with it, the campaign stays open, and a later close succeeds."""
    _decided_campaign(cli)
    real_open: Callable[..., Store] = Store.open.__func__  # type: ignore[attr-defined]

    def deny_closing(action: int, table: str | None, column: str | None, *_: Any) -> int:
        if action == sqlite3.SQLITE_UPDATE and table == "campaigns" and column == "state":
            return sqlite3.SQLITE_DENY
        return sqlite3.SQLITE_OK

    def faulty_open(cls: type[Store], *args: Any, **kwargs: Any) -> Store:
        store = real_open(cls, *args, **kwargs)
        store._db.set_authorizer(deny_closing)  # the fault: SQLite refuses the write that closes
        return store

    monkeypatch.setattr(Store, "open", classmethod(faulty_open))
    code, _out, err = cli.run("review", "close", "--by", SECOND, "--statement", "Q4 review", "--allow-undecided")
    assert code != ExitCode.OK and "closing review campaign 1" in err, err
    monkeypatch.undo()

    assert _reviews(cli) == [], "a sign-off was recorded for a campaign that is still open"
    status = cli.status()
    assert status["state"] == "open" and status["attestation_id"] is None
    code, _out, err = cli.run("review", "close", "--by", SECOND, "--statement", "Q4 review", "--allow-undecided")
    assert code == ExitCode.OK, err
    (review,) = _reviews(cli)
    status = cli.status()
    assert status["state"] == "closed" and status["attestation_id"] == review.id
    assert review.snapshot_id == 1 and review.by == SECOND


def _write_config(cli: Cli, text: str) -> None:
    Path(cli.tmp / "data" / "auditor.toml").write_text(text, encoding="utf-8")


@pytest.mark.parametrize(
    ("config", "days"),
    [
        ("", 90),  # soc2, the default: 90 days, set by policy
        ('profiles = ["pci-dss-4"]\n', 180),  # PCI DSS 7.2.4: every six months
        # Several profiles: the strictest interval wins (NIST's 90-day privileged review, as the
        # sandbox account has administrators).
        ('profiles = ["pci-dss-4", "nist-800-53-moderate"]\n', 90),
        ('profiles = ["pci-dss-4"]\n[thresholds]\nfull_review_days = 120\nprivileged_review_days = 120\n', 120),
    ],
)
def test_the_sign_off_counts_for_the_review_interval_of_the_profiles_and_auditor_toml(
    cli: Cli, config: str, days: int
) -> None:
    if config:
        _write_config(cli, config)
    _decided_campaign(cli)
    closed_at: datetime = cli.clock.now
    code, _out, err = cli.run("review", "close", "--by", SECOND, "--statement", "ok", "--allow-undecided")
    assert code == ExitCode.OK, err
    (review,) = _reviews(cli)
    assert review.expires - review.made_at == timedelta(days=days)
    assert f"next review due {closed_at + timedelta(days=days):%Y-%m-%d}" in err


def test_under_pci_a_closed_campaign_keeps_review_overdue_away_for_six_months(cli: Cli) -> None:
    """With a fixed 90-day sign-off, a PCI account was told its review was overdue after three months."""
    _write_config(cli, 'profiles = ["pci-dss-4"]\n')
    _decided_campaign(cli)
    cli.ok("review", "close", "--by", SECOND, "--statement", "ok", "--allow-undecided")
    cli.pull(T0 + 120 * DAY)
    assert "review-overdue" not in {f["rule"] for f in cli.findings()["findings"]}
    cli.pull(T0 + 200 * DAY)
    assert "review-overdue" in {f["rule"] for f in cli.findings()["findings"]}
