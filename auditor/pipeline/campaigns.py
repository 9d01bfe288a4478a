"""Access review campaigns as of a time: their rows, decisions in force and remediation states.

Read by the rules (``review_items_as_of``), the report and the bundle (``review_as_of``) and
``auditor review status``; the review commands themselves are in ``review.py``.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from auditor import review
from auditor.errors import ConfigurationError
from auditor.exports import neutralise_cell
from auditor.labels import iso
from auditor.models import ReviewItem, Snapshot

if TYPE_CHECKING:
    from auditor.config import AuditConfig
    from auditor.store import SnapshotSummary, Store


def review_items_as_of(store: Store, snapshot: Snapshot, config: AuditConfig) -> tuple[ReviewItem, ...]:
    """The revoke/modify decisions of campaigns closed by ``snapshot.taken_at``, with their state then.

    Only snapshots taken by then (up to and including this one) prove a remediation, so a later
    pull never changes an earlier snapshot's findings.
    """
    campaigns = [
        c for c in store.campaigns(snapshot.connection) if c.closed_at is not None and c.closed_at <= snapshot.taken_at
    ]
    if not campaigns:
        return ()
    first = min((store.get_snapshot(c.snapshot_id) for c in campaigns), key=lambda s: s.taken_at)
    decisions: dict[int, list[Any]] = {}
    for campaign in campaigns:
        closed_at = campaign.closed_at
        assert closed_at is not None  # noqa: S101 - filtered above
        decisions[campaign.id] = [d for d in store.campaign_decisions(campaign.id) if d.decided_at <= closed_at]
    in_force = [d for c in campaigns for d in review.effective_decisions(decisions[c.id]).values()]
    later = remediation_snapshots(
        store,
        snapshot.connection,
        [d for d in in_force if d.decision in {"revoke", "modify"}],
        lambda s: first.taken_at < s.taken_at and (s.taken_at, s.id) <= (snapshot.taken_at, snapshot.id),
    )
    emails: dict[tuple[int, int], str] = {}
    states: dict[int, review.Remediation] = {}
    for campaign in campaigns:
        closed_at = campaign.closed_at
        assert closed_at is not None  # noqa: S101 - filtered above
        for row in campaign_rows(campaign):
            emails[(campaign.id, int(row["user_id"]))] = str(row["email"])
        for decision in review.effective_decisions(decisions[campaign.id]).values():
            if decision.decision in {"revoke", "modify"}:
                states[decision.id] = review.remediation(
                    user_id=decision.user_id,
                    decision=decision.decision,
                    new_role=decision.new_role,
                    decided_at=decision.decided_at,
                    closed_at=closed_at,
                    later=later,
                    privileged_roles=config.privileged_roles,
                    remediation_days=config.remediation_days,
                    as_of=snapshot.taken_at,
                )
    return review.review_items(campaigns, decisions, emails, states)


def campaign_rows(campaign: Any) -> list[dict[str, Any]]:
    """The worksheet rows a campaign was opened with."""
    rows: list[dict[str, Any]] = json.loads(campaign.worksheet)
    return rows


@dataclass(frozen=True)
class StatusRow:
    """One worksheet row's state: the decision in force (if any) and its remediation."""

    user_id: int
    email: str
    decision: str  # keep, revoke, modify, or "" (undecided / "not reviewed" once closed)
    new_role: str
    justification: str
    reviewer: str
    ticket: str
    decided_at: datetime | None
    applied_at: datetime | None
    applied_snapshot: int | None
    remediation: str  # remediated, pending, overdue, regranted, or ""


@dataclass(frozen=True)
class CampaignStatus:
    campaign: Any  # CampaignRecord
    rows: tuple[StatusRow, ...]
    history: tuple[Any, ...]  # DecisionRecord, every one recorded
    imports: tuple[Any, ...]  # ImportRecord

    @property
    def decided(self) -> int:
        return sum(1 for r in self.rows if r.decision)

    @property
    def undecided(self) -> int:
        return len(self.rows) - self.decided

    def by_decision(self) -> dict[str, int]:
        counts = {"keep": 0, "revoke": 0, "modify": 0}
        for row in self.rows:
            if row.decision:
                counts[row.decision] += 1
        return counts

    def by_reviewer(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for row in self.rows:
            if row.reviewer:
                counts[row.reviewer] = counts.get(row.reviewer, 0) + 1
        return counts

    def by_remediation(self) -> dict[str, int]:
        """Counts per remediation state, in a fixed order (remediated, pending, overdue, regranted)."""
        counts = {state: sum(1 for r in self.rows if r.remediation == state)
                  for state in ("remediated", "pending", "overdue", "regranted")}
        return {state: n for state, n in counts.items() if n}

    def to_json(self) -> dict[str, Any]:
        c = self.campaign

        def when(value: datetime | None) -> str | None:
            return None if value is None else iso(value)

        return {
            "campaign": c.id,
            "connection": c.connection,
            "snapshot": c.snapshot_id,
            "raw_sha256": c.raw_sha256,
            "scope": c.scope,
            "due": when(c.due),
            "state": c.state,
            "opened_at": when(c.opened_at),
            "opened_by": c.opened_by,
            "closed_at": when(c.closed_at),
            "closed_by": c.closed_by,
            "statement": c.statement,
            "attestation_id": c.attestation_id,
            "rows": len(self.rows),
            "decided": self.decided,
            "undecided": self.undecided,
            "by_decision": self.by_decision(),
            "by_reviewer": self.by_reviewer(),
            "by_remediation": self.by_remediation(),
            "decisions": [
                {
                    "user_id": r.user_id,
                    "user": r.email,
                    "decision": r.decision or ("not reviewed" if c.state == "closed" else ""),
                    "new_role": r.new_role,
                    "justification": r.justification,
                    "reviewer": r.reviewer,
                    "ticket": r.ticket,
                    "decided_at": when(r.decided_at),
                    "applied_at": when(r.applied_at),
                    "applied_snapshot": r.applied_snapshot,
                    "remediation": r.remediation,
                }
                for r in self.rows
            ],
            "history": [
                {
                    "id": d.id,
                    "user_id": d.user_id,
                    "reviewer": d.reviewer,
                    "decision": d.decision,
                    "new_role": d.new_role,
                    "justification": d.justification,
                    "ticket": d.ticket,
                    "decided_at": when(d.decided_at),
                    "import_id": d.import_id,
                }
                for d in self.history
            ],
            "imports": [
                {"id": i.id, "file_name": i.file_name, "sha256": i.sha256, "imported_by": i.imported_by,
                 "imported_at": when(i.imported_at)}
                for i in self.imports
            ],
        }


STATUS_CSV_HEADER = ("user", "decision", "justification", "reviewer", "decided at", "applied at", "remediation status")


def status_csv(status: CampaignStatus) -> str:
    """The Entra-style review history: one line per row in scope."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(STATUS_CSV_HEADER)
    closed = status.campaign.state == "closed"
    for r in status.rows:
        writer.writerow(
            [
                neutralise_cell(r.email),
                r.decision or ("not reviewed" if closed else ""),
                neutralise_cell(r.justification),
                neutralise_cell(r.reviewer),
                iso(r.decided_at),
                iso(r.applied_at),
                r.remediation,
            ]
        )
    return buffer.getvalue()


def campaign_status(
    store: Store,
    campaign: Any,
    *,
    later: Sequence[Snapshot],
    config: AuditConfig,
    as_of: datetime,
    decisions_as_of: datetime | None = None,
) -> CampaignStatus:
    """Decisions recorded by ``decisions_as_of`` (default ``as_of``), remediation as of ``as_of``."""
    decided_by = decisions_as_of or as_of
    history = [d for d in store.campaign_decisions(campaign.id) if d.decided_at <= decided_by]
    current = review.effective_decisions(history)
    rows = []
    for row in campaign_rows(campaign):
        user_id = int(row["user_id"])
        decision = current.get(user_id)
        if decision is None:
            rows.append(StatusRow(user_id, str(row["email"]), "", "", "", "", "", None, None, None, ""))
            continue
        state = None
        if decision.decision in {"revoke", "modify"}:
            state = review.remediation(
                user_id=user_id,
                decision=decision.decision,
                new_role=decision.new_role,
                decided_at=decision.decided_at,
                closed_at=campaign.closed_at if campaign.closed_at and campaign.closed_at <= as_of else None,
                later=later,
                privileged_roles=config.privileged_roles,
                remediation_days=config.remediation_days,
                as_of=as_of,
            )
        rows.append(
            StatusRow(
                user_id=user_id,
                email=str(row["email"]),
                decision=decision.decision,
                new_role=decision.new_role,
                justification=decision.justification,
                reviewer=decision.reviewer,
                ticket=decision.ticket,
                decided_at=decision.decided_at,
                applied_at=state.at if state else None,
                applied_snapshot=state.snapshot_id if state else None,
                remediation=state.state if state else "",
            )
        )
    imports = tuple(
        i for i in store.campaign_imports(campaign.id) if i.imported_at is None or i.imported_at <= decided_by
    )
    return CampaignStatus(campaign=campaign, rows=tuple(rows), history=tuple(history), imports=imports)


def review_as_of(store: Store, snapshot: Snapshot, config: AuditConfig, *, now: datetime) -> CampaignStatus | None:
    """The campaign a report of ``snapshot`` shows: the one reviewing this snapshot, else the
    latest closed by its time, with remediation proven by the snapshots taken up to it."""
    campaigns = store.campaigns(snapshot.connection)
    own = [c for c in campaigns if c.snapshot_id == snapshot.id]
    if own:
        campaign = own[-1]
        decided_by = campaign.closed_at or now
    else:
        closed = [c for c in campaigns if c.closed_at is not None and c.closed_at <= snapshot.taken_at]
        if not closed:
            return None
        campaign = closed[-1]
        decided_by = campaign.closed_at or snapshot.taken_at
    after = store.get_snapshot(campaign.snapshot_id)
    decided = [d for d in store.campaign_decisions(campaign.id) if d.decided_at <= decided_by]
    later = remediation_snapshots(
        store,
        snapshot.connection,
        [d for d in review.effective_decisions(decided).values() if d.decision in {"revoke", "modify"}],
        lambda s: (after.taken_at, after.id) < (s.taken_at, s.id) <= (snapshot.taken_at, snapshot.id),
    )
    return campaign_status(
        store, campaign, later=later, config=config, as_of=snapshot.taken_at, decisions_as_of=decided_by
    )


def later_snapshots(store: Store, connection: str, after_id: int, *, until: datetime) -> list[Snapshot]:
    """The complete snapshots of ``connection`` after snapshot ``after_id``, up to ``until``: the remediation proof."""
    after = store.get_snapshot(after_id)
    return [
        s
        for s in store.snapshots(connection)
        if s.complete and (s.taken_at, s.id) > (after.taken_at, after.id) and s.taken_at <= until
    ]


def remediation_snapshots(
    store: Store, connection: str, decisions: Sequence[Any], within: Callable[[SnapshotSummary], bool]
) -> list[Snapshot]:
    """The complete snapshots ``within`` the range that can decide the remediation of ``decisions``.

    Not every snapshot of the range: only the first, those in which a decided user appears, leaves
    or changes status or roles, and the first after each decision (``Store.review_snapshots``), so
    a long history costs index reads, not snapshot loads. A key decision needs each snapshot's key
    list (in its raw pages), so with one every snapshot of the range is loaded, as before.
    """
    if not decisions:
        return []
    summaries = [s for s in store.list_snapshots(connection) if s.complete and within(s)]
    if any(review.is_key_row(d.user_id) for d in decisions):
        return [store.get_snapshot(s.id) for s in summaries]
    return store.review_snapshots(
        summaries, user_ids={d.user_id for d in decisions}, cuts={d.decided_at for d in decisions}
    )


def pick_campaign(store: Store, campaign_id: int | None, connection: str | None) -> Any:
    """The campaign named, else the latest open one, else the latest; refused when there is none."""
    if campaign_id is not None:
        return store.get_campaign(campaign_id)
    campaigns = store.campaigns(connection)
    if not campaigns:
        raise ConfigurationError(
            "There is no review campaign yet" + (f" for connection {connection!r}." if connection else "."),
            hint="Open one with `auditor review open --output review.xlsx`.",
        )
    open_ones = [c for c in campaigns if c.state == "open"]
    return open_ones[-1] if open_ones else campaigns[-1]
