"""The report's data built from an evaluated snapshot, without a store: trend, sign-off and report id."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import factories

from auditor.config import AuditConfig, default_config
from auditor.identity import IdentitySource
from auditor.models import (
    Attestation,
    AttestationKind,
    ChangeSet,
    Division,
    FindingsResult,
    Role,
    Snapshot,
    User,
    UserHistory,
)
from auditor.report.data import account_name, report_data, trend
from auditor.rules import evaluate

NOW = datetime(2026, 11, 2, 6, 0, tzinfo=UTC)
ADMIN = Role(1, "Administrator")


def make_user(user_id: int, last_login_days: int) -> User:
    return User(
        id=user_id,
        email=f"user{user_id}@example.com",
        username=f"user{user_id}@example.com",
        first_name="U",
        last_name=str(user_id),
        status="active",
        roles=(ADMIN,),
        division=Division(7, "Example Corp", parent_id=0),
        last_login=NOW - timedelta(days=last_login_days),
    )


@dataclass(frozen=True)
class Evaluated:
    snapshot: Snapshot
    findings: FindingsResult
    config: AuditConfig
    all_snapshots: tuple[Snapshot, ...] = ()
    previous: Snapshot | None = None
    attestations: tuple[Attestation, ...] = ()
    history: dict[int, UserHistory] = field(default_factory=dict)
    key_user_ids: dict[int, int | None] = field(default_factory=dict)
    identity: IdentitySource | None = None
    summaries: None = None

    @property
    def changes(self) -> ChangeSet:
        return ChangeSet(from_snapshot=None, to_snapshot=self.snapshot.id)


def evaluated(*snapshots: Snapshot, attestations: tuple[Attestation, ...] = ()) -> Evaluated:
    config = default_config()
    latest = snapshots[-1]
    findings = evaluate(latest, previous=None, history={}, config=config, attestations=attestations,
                        now=latest.taken_at)
    return Evaluated(snapshot=latest, findings=findings, config=config, all_snapshots=snapshots,
                     attestations=attestations)


def test_trend_evaluates_each_snapshot_as_of_its_own_time() -> None:
    fresh = factories.make_snapshot([make_user(1, 5), make_user(2, 5)], snapshot_id=1, taken_at=NOW)
    # Two hundred days later nobody signed in again: both are stale then, as of that snapshot.
    later = factories.make_snapshot(
        [make_user(1, 5), make_user(2, 5)], snapshot_id=2, taken_at=NOW + timedelta(days=200)
    )
    incomplete = factories.make_snapshot([make_user(1, 5)], snapshot_id=3, taken_at=NOW, complete=False)
    points = trend(evaluated(fresh, incomplete, later))
    assert [p.taken_at for p in points] == [fresh.taken_at, later.taken_at], "incomplete snapshots stay out"
    assert [p.users for p in points] == [2, 2]
    assert points[0].stale == 0 and points[1].stale == 2


def test_report_id_names_the_content_not_the_render_time() -> None:
    snapshot = factories.make_snapshot([make_user(1, 5)], taken_at=NOW)
    evaluation = evaluated(snapshot)

    def render(now: datetime, digest: str = "ab" * 32) -> str:
        data = report_data(evaluation, raw_sha256=digest, instance="US", review_campaign=None, now=now)
        assert data.generated_at == now
        return data.report_id

    assert render(NOW) == render(NOW + timedelta(days=365))
    assert render(NOW).startswith(f"CCA-{snapshot.id}-")
    assert render(NOW) != render(NOW, digest="cd" * 32)


def test_the_snapshot_review_signs_the_report() -> None:
    snapshot = factories.make_snapshot([make_user(1, 5)], taken_at=NOW)
    review = Attestation(
        id=4, connection="prod", kind=AttestationKind.REVIEW, by="Rita <rita@example.com>", statement="ok",
        made_at=NOW + timedelta(hours=1), expires=NOW + timedelta(days=90), snapshot_id=snapshot.id,
    )
    unsigned = report_data(evaluated(snapshot), raw_sha256="", instance="US", review_campaign=None, now=NOW)
    signed = report_data(evaluated(snapshot, attestations=(review,)), raw_sha256="", instance="US",
                         review_campaign=None, now=NOW)
    assert unsigned.review_attestation is None and signed.review_attestation == review
    assert unsigned.report_id != signed.report_id


def test_account_name_is_the_root_division() -> None:
    snapshot = factories.make_snapshot([make_user(1, 5)], taken_at=NOW)
    assert account_name(snapshot) == "Example Corp"
    assert account_name(factories.make_snapshot([], taken_at=NOW)) == "Account 1"
