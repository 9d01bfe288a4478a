"""One small evaluated snapshot for the OSCAL and OCSF tests: rules run for real, no store or sandbox."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta

from factories import make_snapshot, make_user

from auditor.config import AuditConfig
from auditor.models import ExceptionEntry, FindingsResult, ReviewItem, Role, Snapshot
from auditor.profiles import combine
from auditor.rules import evaluate

NOW = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)
ADMIN = Role(1, "Administrator")


@dataclass(frozen=True)
class Evaluated:
    snapshot: Snapshot
    findings: FindingsResult
    reviews: tuple[ReviewItem, ...]


def evaluated_snapshot(*, snapshot_id: int = 7, suppress: bool = True) -> Evaluated:
    """Four users: a dormant admin, a stale user (suppressed by an exception), one never signed in, one fine."""
    users = [
        make_user(1, last_login=NOW - timedelta(days=200), roles=(ADMIN,), email="ada@example.com"),
        make_user(2, last_login=NOW - timedelta(days=120), email="stale@example.com"),
        make_user(3, last_login=None, email="never@example.com"),
        make_user(4, last_login=NOW - timedelta(days=1), email="fine@example.com", is_service_user=True),
    ]
    snapshot = make_snapshot(users, snapshot_id=snapshot_id, taken_at=NOW, page_digests=(("/user", "ab" * 32),))
    profile = combine(("pci-dss-4",))
    exceptions = ()
    if suppress:
        exceptions = (
            ExceptionEntry(rule="stale-login", user="stale@example.com", reason="Seasonal contractor", owner="Sec",
                           expires=NOW + timedelta(days=30), approved_by="Grace", approved_on=NOW - timedelta(days=5)),
        )
    config = replace(AuditConfig(profile=profile, thresholds=profile.thresholds), exceptions=exceptions)
    findings = evaluate(snapshot, previous=None, history={}, config=config, attestations=(), now=NOW, key_user_id=None)
    review = ReviewItem(campaign_id=3, snapshot_id=snapshot_id - 1, user_id=1, email="ada@example.com",
                        decision="revoke", new_role="", reviewer="Rita <rita@example.com>", ticket="SEC-1",
                        justification="left the PKI team", closed_at=NOW - timedelta(days=2), state="overdue")
    return Evaluated(snapshot, findings, (review,))
