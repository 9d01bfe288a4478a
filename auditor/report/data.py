"""What a report shows, computed from an evaluated snapshot: the trend, the sign-off, the report id.

The pipeline evaluates a snapshot and reads what the store holds (the review campaign shown);
:func:`report_data` turns that into :class:`ReportData`, which the templates render without
further lookups. Nothing here reads the store or the clock: ``now`` is the render time.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from contextlib import suppress
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol

from auditor import __version__, exports
from auditor.models import (
    Attestation,
    AttestationKind,
    ChangeSet,
    FindingsResult,
    Snapshot,
    SnapshotFindings,
    UserHistory,
)
from auditor.report import ReportData, TrendPoint
from auditor.rules import evaluate as run_rules
from auditor.rules import review_of, reviewer_privileges

if TYPE_CHECKING:
    from auditor.config import AuditConfig
    from auditor.identity import IdentitySource

__all__ = ["Evaluated", "account_name", "latest_valid", "report_data", "report_id", "trend"]

#: The rules whose findings the trend counts as "stale".
STALE_RULES = frozenset({"stale-login", "admin-dormant", "never-signed-in"})


class Evaluated(Protocol):
    """An evaluated snapshot as the report needs it (``auditor.pipeline.Evaluation`` is one)."""

    @property
    def snapshot(self) -> Snapshot: ...
    @property
    def previous(self) -> Snapshot | None: ...
    @property
    def changes(self) -> ChangeSet: ...
    @property
    def findings(self) -> FindingsResult: ...
    @property
    def config(self) -> AuditConfig: ...
    @property
    def attestations(self) -> tuple[Attestation, ...]: ...
    @property
    def history(self) -> dict[int, UserHistory]: ...
    @property
    def all_snapshots(self) -> tuple[Snapshot, ...]: ...
    @property
    def key_user_ids(self) -> Mapping[int, int | None]: ...
    @property
    def identity(self) -> IdentitySource | None: ...
    @property
    def summaries(self) -> tuple[SnapshotFindings, ...] | None:
        """The stored summary of each complete snapshot up to this one (None: evaluate ``all_snapshots``)."""


def report_data(
    evaluation: Evaluated,
    *,
    raw_sha256: str,
    instance: str,
    review_campaign: Mapping[str, Any] | None,
    now: datetime,
) -> ReportData:
    """Everything the templates show, with the trend computed over every complete snapshot.

    ``raw_sha256`` is the snapshot's raw-data digest, ``instance`` the CertCentral instance's
    label, ``review_campaign`` the campaign shown (``CampaignStatus.to_json()``), ``now`` the
    render time (shown only; the report id does not depend on it).
    """
    snapshot = evaluation.snapshot
    review = review_of(evaluation.attestations, snapshot.id)
    last_review = None
    if review is None:
        last_review = max(
            (
                a
                for a in evaluation.attestations
                if a.kind is AttestationKind.REVIEW and a.made_at <= snapshot.taken_at and a.snapshot_id != snapshot.id
            ),
            key=lambda a: (a.made_at, a.id),
            default=None,
        )
    reviewer_roles = ""
    if review is not None:
        with suppress(LookupError):
            _user, reviewer_roles = reviewer_privileges(review, snapshot, evaluation.config.privileged_roles)
    return ReportData(
        review_campaign=review_campaign,
        account_name=account_name(snapshot),
        account_id=snapshot.provenance.account_id,
        base_url=snapshot.provenance.base_url,
        instance=instance,
        snapshot=snapshot,
        previous=evaluation.previous,
        changes=evaluation.changes,
        findings=evaluation.findings,
        history=evaluation.history,
        trend=trend(evaluation),
        mfa_attestation=latest_valid(
            [a for a in evaluation.attestations if a.made_at <= snapshot.taken_at],
            AttestationKind.MFA,
            snapshot.taken_at,
        ),
        review_attestation=review,
        last_review=last_review,
        reviewer_privileged_roles=reviewer_roles,
        report_id=report_id(snapshot, evaluation.findings, review, raw_sha256=raw_sha256),
        generated_at=now,
        tool_version=__version__,
        frameworks=evaluation.findings.profiles,
        raw_sha256=raw_sha256,
    )


def trend(evaluation: Evaluated) -> tuple[TrendPoint, ...]:
    """Headline numbers of every complete snapshot up to this one, each as the rules gave it then.

    Read from the stored summaries (``evaluation.summaries``), so no earlier snapshot is loaded
    and no rule re-run; an evaluation without them (no store) evaluates ``all_snapshots`` here.
    """
    summaries = evaluation.summaries
    if summaries is None:
        summaries = _evaluate_each(evaluation)
    return tuple(
        TrendPoint(
            taken_at=summary.taken_at,
            users=summary.users,
            admins=summary.admins,
            stale=sum(count for rule, count in summary.by_rule if rule in STALE_RULES),
            findings=summary.findings,
        )
        for summary in summaries
    )


def _evaluate_each(evaluation: Evaluated) -> tuple[SnapshotFindings, ...]:
    """The summaries of ``all_snapshots`` (complete ones up to this snapshot), each evaluated as of its time."""
    snapshot = evaluation.snapshot
    summaries: list[SnapshotFindings] = []
    ordered = [s for s in evaluation.all_snapshots if s.complete and s.taken_at <= snapshot.taken_at]
    previous: Snapshot | None = None
    for past in ordered:
        past_findings = (
            evaluation.findings
            if past.id == snapshot.id
            else run_rules(
                past,
                previous=previous,
                history=evaluation.history,
                config=evaluation.config,
                attestations=evaluation.attestations,
                now=past.taken_at,
                key_user_id=evaluation.key_user_ids.get(past.id),
                identity=evaluation.identity,
            )
        )
        summaries.append(
            SnapshotFindings.of(past, past_findings, rules_version=__version__, computed_at=past.taken_at)
        )
        previous = past
    return tuple(summaries)


def report_id(snapshot: Snapshot, findings: FindingsResult, review: Attestation | None, *, raw_sha256: str) -> str:
    """``CCA-<snapshot>-<digest>``: names what the report says, not when it was rendered.

    The same snapshot, findings and sign-off give the same id a year later.
    """
    content = hashlib.sha256(exports.findings_json(findings)).hexdigest()
    signed = f"{review.id}|{review.made_at.isoformat()}" if review is not None else "-"
    return "CCA-{}-{}".format(
        snapshot.id, hashlib.sha256(f"{raw_sha256}|{content}|{signed}".encode()).hexdigest()[:10].upper()
    )


def account_name(snapshot: Snapshot) -> str:
    """The root division's name (CertCentral names the account's top container after it)."""
    roots = sorted(
        {user.division.name for user in snapshot.users if user.division and user.division.parent_id == 0}
    )
    if roots:
        return roots[0]
    if snapshot.provenance.account_id is not None:
        return f"Account {snapshot.provenance.account_id}"
    return snapshot.connection


def latest_valid(attestations: Sequence[Attestation], kind: AttestationKind, now: datetime) -> Attestation | None:
    """The newest attestation of ``kind`` valid at ``now``, else the newest of that kind, else None."""
    of_kind = sorted((a for a in attestations if a.kind is kind), key=lambda a: a.made_at, reverse=True)
    for attestation in of_kind:
        if attestation.valid_at(now):
            return attestation
    return of_kind[0] if of_kind else None
