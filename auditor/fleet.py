"""The fleet summary of a run over several connections: one row per account, and changes seen in several at once.

Pure values in, values out: :mod:`auditor.pipeline.fleet` gathers what each account's run
produced; this module shapes it (JSON, and HTML through ``report_templates/fleet.html.j2``).
Each account's evidence stays in its own snapshot history, chain and bundle; the summary only
points at them.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from auditor.labels import iso, minute
from auditor.models import ChangeKind, ChangeSet, FindingsResult, Severity

FORMAT = "certcentral-auditor-fleet-summary/1"
TEMPLATE = "fleet.html.j2"
JSON_NAME = "fleet-summary.json"
HTML_NAME = "fleet-summary.html"


@dataclass(frozen=True)
class AccountSummary:
    """One account of the fleet as of this run (or, when it failed, as of its last successful run)."""

    connection: str
    ok: bool
    account_name: str = ""
    account_id: int | None = None
    #: The failure's first line ('' when the run succeeded).
    error: str = ""
    users: int | None = None
    administrators: int | None = None
    #: Open (unsuppressed) findings per severity, every severity present (0 when none); empty when failed.
    findings: Mapping[str, int] = field(default_factory=dict)
    review: str = ""
    last_successful_run: datetime | None = None
    snapshot_id: int | None = None
    outputs: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {
            "connection": self.connection,
            "status": "ok" if self.ok else "failed",
            "account_name": self.account_name,
            "account_id": self.account_id,
            "error": self.error,
            "users": self.users,
            "administrators": self.administrators,
            "open_findings": dict(self.findings),
            "review": self.review,
            "last_successful_run": iso(self.last_successful_run) if self.last_successful_run else None,
            "snapshot_id": self.snapshot_id,
            "outputs": list(self.outputs),
        }


@dataclass(frozen=True)
class CrossAccountChange:
    """The same person (by e-mail, case-insensitively) changed the same way in several accounts in this run."""

    email: str
    change: str
    accounts: tuple[str, ...]

    def to_json(self) -> dict[str, Any]:
        return {"email": self.email, "change": self.change, "accounts": list(self.accounts)}


@dataclass(frozen=True)
class SharedAdministrator:
    """A person (by e-mail, case-insensitively) who is Administrator in several accounts of the fleet."""

    email: str
    accounts: tuple[str, ...]

    def to_json(self) -> dict[str, Any]:
        return {"email": self.email, "accounts": list(self.accounts)}


@dataclass(frozen=True)
class FleetSummary:
    generated_at: datetime
    accounts: tuple[AccountSummary, ...]
    cross_account: tuple[CrossAccountChange, ...] = ()
    shared_administrators: tuple[SharedAdministrator, ...] = ()

    @property
    def failed(self) -> tuple[AccountSummary, ...]:
        return tuple(account for account in self.accounts if not account.ok)

    def to_json(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "generated_at": iso(self.generated_at),
            "accounts": [account.to_json() for account in self.accounts],
            "failed": [account.connection for account in self.failed],
            "cross_account_changes": [change.to_json() for change in self.cross_account],
            "shared_administrators": [shared.to_json() for shared in self.shared_administrators],
        }


def findings_by_severity(findings: FindingsResult) -> dict[str, int]:
    counts = {severity.value: 0 for severity in Severity}
    for finding in findings.active:
        counts[finding.severity.value] += 1
    return counts


#: The changes compared across accounts, and how the summary names them.
_WATCHED = ("made Administrator", "gained a privileged role", "added", "removed")


def _describe(kind: ChangeKind, became_admin: bool, escalation: bool) -> str | None:
    if became_admin:
        return "made Administrator"
    if escalation:
        return "gained a privileged role"
    if kind is ChangeKind.ADDED:
        return "added"
    if kind is ChangeKind.REMOVED:
        return "removed"
    return None


def cross_account_changes(changes: Mapping[str, ChangeSet | None]) -> tuple[CrossAccountChange, ...]:
    """Changes of the same person in two or more accounts: "made Administrator in three subsidiaries at once"."""
    seen: dict[tuple[str, str], dict[str, str]] = {}
    for connection, change_set in changes.items():
        if change_set is None:
            continue
        for change in change_set.changes:
            label = _describe(change.kind, change.became_admin, change.escalation)
            if label is None or not change.email:
                continue
            seen.setdefault((change.email.casefold(), label), {})[connection] = change.email
    found = [
        CrossAccountChange(email=min(by_account.values()), change=label, accounts=tuple(sorted(by_account)))
        for (_email, label), by_account in seen.items()
        if len(by_account) >= 2
    ]
    return tuple(sorted(found, key=lambda c: (_WATCHED.index(c.change), c.email.casefold(), c.accounts)))


def shared_administrators(admins: Mapping[str, Sequence[str]]) -> tuple[SharedAdministrator, ...]:
    """People who are Administrator in two or more accounts, from each account's administrators' e-mails."""
    by_person: dict[str, dict[str, str]] = {}
    for connection, emails in admins.items():
        for address in emails:
            if address:
                by_person.setdefault(address.casefold(), {})[connection] = address
    return tuple(
        SharedAdministrator(email=min(seen.values()), accounts=tuple(sorted(seen)))
        for _key, seen in sorted(by_person.items())
        if len(seen) >= 2
    )


def summary_json(summary: FleetSummary) -> bytes:
    return (json.dumps(summary.to_json(), indent=2, ensure_ascii=False, sort_keys=False) + "\n").encode("utf-8")


def summary_html(summary: FleetSummary, *, templates_dir: Path) -> str:
    """The fleet summary as one self-contained HTML page (autoescaped; no script, no external resource)."""
    from auditor.report._render import environment  # jinja2's environment of the reports: autoescape, strict

    env = environment(templates_dir)
    template = env.get_template(TEMPLATE)
    return template.render(
        summary=summary,
        severities=[severity.value for severity in Severity],
        generated=minute(summary.generated_at),
        when=lambda moment: minute(moment) if moment else "never",
    )


def write_order(accounts: Sequence[AccountSummary]) -> tuple[AccountSummary, ...]:
    """Accounts in the summary's order: by connection name."""
    return tuple(sorted(accounts, key=lambda account: account.connection))
