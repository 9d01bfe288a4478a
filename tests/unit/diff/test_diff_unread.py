"""Issue 22 #2: the diff never turns users that were not read into removals."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import factories

from auditor.diff import diff_snapshots
from auditor.models import ChangeKind, Role, User

T0 = datetime(2026, 11, 1, tzinfo=UTC)


def _user(user_id: int, *, admin: bool = False, service: bool = False) -> User:
    role = Role(id=1, name="Administrator") if admin else Role(id=5, name="Standard User")
    return User(
        id=user_id,
        username=f"u{user_id}@example.com",
        email=f"u{user_id}@example.com",
        first_name="U",
        last_name=str(user_id),
        status="active",
        roles=(role,),
        is_service_user=service,
    )


def test_users_missing_from_an_incomplete_snapshot_are_not_removals() -> None:
    old = factories.make_snapshot([_user(1), _user(2), _user(900, admin=True, service=True)], taken_at=T0)
    unread = factories.make_snapshot(
        [_user(1), _user(2), _user(3)], snapshot_id=2, taken_at=T0 + timedelta(days=1), complete=False
    )
    changes = diff_snapshots(old, unread)
    assert changes.of_kind(ChangeKind.REMOVED) == ()
    assert [c.user_id for c in changes.of_kind(ChangeKind.ADDED)] == [3]


def test_a_complete_snapshot_still_shows_removals() -> None:
    old = factories.make_snapshot([_user(1), _user(900, admin=True, service=True)], taken_at=T0)
    new = factories.make_snapshot([_user(1)], snapshot_id=2, taken_at=T0 + timedelta(days=1))
    assert [c.user_id for c in diff_snapshots(old, new).of_kind(ChangeKind.REMOVED)] == [900]
