"""The snapshot diff: each kind of change, flags, ordering, and the round-trip properties."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta

import factories
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis_profile import examples

from auditor.diff import WATCHED_FIELDS, apply_changes, diff_snapshots, watched_fields
from auditor.models import ChangeKind, Division, Role, Snapshot, User

T0 = datetime(2026, 10, 1, tzinfo=UTC)
ADMIN = Role(1, "Administrator")
MANAGER = Role(4, "Manager")
STANDARD = Role(5, "Standard User")
FINANCE = Role(3, "Finance Manager")
HQ = Division(10, "HQ")
EU = Division(11, "EU")


def make_user(user_id: int, **overrides: object) -> User:
    return factories.make_user(user_id, **{"last_login": T0 - timedelta(days=3), **overrides})  # type: ignore[arg-type]


def make_snapshot(users: list[User] | tuple[User, ...], snapshot_id: int = 1) -> Snapshot:
    return factories.make_snapshot(users, snapshot_id=snapshot_id, taken_at=T0 + timedelta(days=snapshot_id))


def kinds(old: list[User], new: list[User]) -> list[tuple[ChangeKind, int, str, str]]:
    result = diff_snapshots(make_snapshot(old, 1), make_snapshot(new, 2))
    return [(c.kind, c.user_id, c.before, c.after) for c in result.changes]


def test_identical_snapshots_have_no_changes() -> None:
    users = [make_user(1), make_user(2, roles=(ADMIN,))]
    result = diff_snapshots(make_snapshot(users, 1), make_snapshot(users, 2))
    assert result.is_empty
    assert (result.from_snapshot, result.to_snapshot) == (1, 2)


def test_joiner_and_leaver() -> None:
    assert kinds([make_user(1)], [make_user(2, roles=(ADMIN, STANDARD))]) == [
        (ChangeKind.ADDED, 2, "", "Administrator, Standard User"),
        (ChangeKind.REMOVED, 1, "Standard User", ""),
    ]


def test_joiner_as_administrator_is_flagged() -> None:
    result = diff_snapshots(make_snapshot([], 1), make_snapshot([make_user(5, roles=(ADMIN,))], 2))
    (change,) = result.changes
    assert change.kind is ChangeKind.ADDED
    assert change.escalation and change.became_admin


def test_joiner_as_manager_is_escalation_not_admin() -> None:
    result = diff_snapshots(make_snapshot([], 1), make_snapshot([make_user(5, roles=(MANAGER,))], 2))
    assert result.changes[0].escalation
    assert not result.changes[0].became_admin
    plain = diff_snapshots(make_snapshot([], 1), make_snapshot([make_user(5)], 2))
    assert not plain.changes[0].escalation


def test_role_escalation_to_administrator() -> None:
    result = diff_snapshots(make_snapshot([make_user(1)], 1), make_snapshot([make_user(1, roles=(ADMIN,))], 2))
    (change,) = result.changes
    assert (change.kind, change.before, change.after) == (ChangeKind.ROLE, "Standard User", "Administrator")
    assert change.escalation and change.became_admin


def test_role_downgrade_is_not_escalation() -> None:
    result = diff_snapshots(make_snapshot([make_user(1, roles=(ADMIN,))], 1), make_snapshot([make_user(1)], 2))
    (change,) = result.changes
    assert change.kind is ChangeKind.ROLE
    assert not change.escalation and not change.became_admin


def test_privileged_roles_keyword_decides_escalation() -> None:
    old = make_snapshot([make_user(1)], 1)
    new = make_snapshot([make_user(1, roles=(FINANCE,))], 2)
    assert not diff_snapshots(old, new).changes[0].escalation
    assert diff_snapshots(old, new, privileged_roles=["finance manager"]).changes[0].escalation
    to_manager = make_snapshot([make_user(1, roles=(MANAGER,))], 2)
    assert not diff_snapshots(old, to_manager, privileged_roles=["Administrator"]).changes[0].escalation


def test_role_matched_by_certcentral_id_when_renamed() -> None:
    renamed_admin = Role(1, "Admin (renamed)")
    result = diff_snapshots(make_snapshot([make_user(1)], 1), make_snapshot([make_user(1, roles=(renamed_admin,))], 2))
    assert result.changes[0].escalation and result.changes[0].became_admin


def test_role_order_does_not_matter() -> None:
    old = make_snapshot([make_user(1, roles=(ADMIN, STANDARD))], 1)
    new = make_snapshot([make_user(1, roles=(STANDARD, ADMIN))], 2)
    assert diff_snapshots(old, new).is_empty


def test_each_field_change() -> None:
    old = make_user(1)
    new = make_user(
        1,
        email="new@example.com",
        status="inactive",
        first_name="Renamed",
        division=EU,
        restricted=True,
        assigned_divisions=(EU, HQ),
    )
    assert kinds([old], [new]) == [
        (ChangeKind.STATUS, 1, "active", "inactive"),
        (ChangeKind.EMAIL, 1, "user1@example.com", "new@example.com"),
        (ChangeKind.NAME, 1, "User 1", "Renamed 1"),
        (ChangeKind.DIVISION, 1, "HQ", "EU"),
        (ChangeKind.RESTRICTION, 1, "unrestricted", "restricted: EU, HQ"),
    ]


def test_field_change_uses_the_new_email() -> None:
    result = diff_snapshots(
        make_snapshot([make_user(1)], 1), make_snapshot([make_user(1, email="b@example.com", status="x")], 2)
    )
    assert {c.email for c in result.changes} == {"b@example.com"}


def test_sign_in_activity() -> None:
    never = make_user(1, last_login=None)
    first = make_user(1, last_login=T0)
    later = make_user(1, last_login=T0 + timedelta(hours=5))
    assert kinds([never], [first]) == [(ChangeKind.FIRST_SIGN_IN, 1, "", T0.isoformat())]
    assert kinds([first], [later]) == [(ChangeKind.SIGNED_IN, 1, T0.isoformat(), (T0 + timedelta(hours=5)).isoformat())]
    # Moving back or vanishing is an API anomaly, not sign-in activity.
    assert kinds([later], [first]) == []
    assert kinds([first], [never]) == []


def test_changes_sorted_by_kind_then_email_then_id() -> None:
    old = [make_user(3, email="b@x.com"), make_user(4, email="A@x.com"), make_user(9, email="z@x.com")]
    new = [
        make_user(3, email="b@x.com", status="inactive"),
        make_user(4, email="A@x.com", status="inactive"),
        make_user(2, email="b@x.com"),
        make_user(1, email="b@x.com"),
    ]
    result = diff_snapshots(make_snapshot(old, 1), make_snapshot(new, 2))
    assert [(c.kind, c.user_id) for c in result.changes] == [
        (ChangeKind.ADDED, 1),
        (ChangeKind.ADDED, 2),
        (ChangeKind.REMOVED, 9),
        (ChangeKind.STATUS, 4),
        (ChangeKind.STATUS, 3),
    ]


def test_duplicate_ids_keep_the_first() -> None:
    old = make_snapshot([make_user(1), make_user(1, status="inactive")], 1)
    assert diff_snapshots(old, make_snapshot([make_user(1)], 2)).is_empty


def test_watched_fields_and_apply() -> None:
    old = make_snapshot([make_user(1), make_user(2)], 1)
    new = make_snapshot([make_user(1, status="inactive"), make_user(3, roles=(ADMIN,))], 2)
    applied = apply_changes(old, diff_snapshots(old, new))
    assert set(applied) == {1, 3}
    assert applied[1] == watched_fields(new)[1]
    assert applied[3][:2] == ("user3@example.com", "Administrator")
    assert len(WATCHED_FIELDS) == len(watched_fields(new)[1])


# --- properties -----------------------------------------------------------------------------------

LOGINS = [None, T0, T0 + timedelta(days=1), T0 + timedelta(days=2, seconds=7)]
ROLE_SETS = [(), (STANDARD,), (ADMIN,), (MANAGER,), (ADMIN, STANDARD), (FINANCE, MANAGER)]


@st.composite
def users(draw: st.DrawFn, user_id: int) -> User:
    restricted = draw(st.booleans())
    return User(
        id=user_id,
        email=draw(st.sampled_from(["a@x.com", "B@x.com", "c@y.org", ""])),
        first_name=draw(st.sampled_from(["", "Ann", "Bo"])),
        last_name=draw(st.sampled_from(["", "Lee"])),
        status=draw(st.sampled_from(["active", "inactive", "locked"])),
        roles=draw(st.sampled_from(ROLE_SETS)),
        division=draw(st.sampled_from([None, HQ, EU])),
        last_login=draw(st.sampled_from(LOGINS)),
        restricted=restricted,
        assigned_divisions=draw(st.sampled_from([(), (HQ,), (EU, HQ)])) if restricted else (),
        is_service_user=draw(st.booleans()),
    )


@st.composite
def snapshots(draw: st.DrawFn, snapshot_id: int = 1) -> Snapshot:
    ids = draw(st.sets(st.integers(min_value=1, max_value=12), max_size=8))
    return make_snapshot([draw(users(user_id)) for user_id in sorted(ids)], snapshot_id)


@st.composite
def snapshot_pairs(draw: st.DrawFn) -> tuple[Snapshot, Snapshot]:
    """Two snapshots where sign-in times only move forward (the API's normal behaviour)."""
    a = draw(snapshots(1))
    b = draw(snapshots(2))
    by_id = {user.id: user for user in a.users}
    fixed = []
    for user in b.users:
        was = by_id.get(user.id)
        if (
            was is not None
            and was.last_login is not None
            and (user.last_login is None or user.last_login < was.last_login)
        ):
            user = dataclasses.replace(user, last_login=was.last_login)
        fixed.append(user)
    return a, make_snapshot(fixed, 2)


@settings(max_examples=examples(150), deadline=None)
@given(snapshots())
def test_property_diff_of_a_snapshot_with_itself_is_empty(a: Snapshot) -> None:
    assert diff_snapshots(a, a).is_empty


@settings(max_examples=examples(150), deadline=None)
@given(snapshots(1), snapshots(2))
def test_property_swapping_swaps_added_removed_and_inverts_roles(a: Snapshot, b: Snapshot) -> None:
    forward = diff_snapshots(a, b)
    backward = diff_snapshots(b, a)
    assert {c.user_id for c in forward.of_kind(ChangeKind.ADDED)} == {
        c.user_id for c in backward.of_kind(ChangeKind.REMOVED)
    }
    assert {c.user_id for c in forward.of_kind(ChangeKind.REMOVED)} == {
        c.user_id for c in backward.of_kind(ChangeKind.ADDED)
    }
    assert {(c.user_id, c.after) for c in forward.of_kind(ChangeKind.ADDED)} == {
        (c.user_id, c.before) for c in backward.of_kind(ChangeKind.REMOVED)
    }
    assert {(c.user_id, c.before, c.after) for c in forward.of_kind(ChangeKind.ROLE)} == {
        (c.user_id, c.after, c.before) for c in backward.of_kind(ChangeKind.ROLE)
    }


@settings(max_examples=examples(200), deadline=None)
@given(snapshot_pairs())
def test_property_applying_the_changes_yields_the_new_watched_fields(pair: tuple[Snapshot, Snapshot]) -> None:
    a, b = pair
    applied = apply_changes(a, diff_snapshots(a, b))
    expected = watched_fields(b)
    old_ids = {user.id for user in a.users}
    assert set(applied) == set(expected)
    for user_id, row in expected.items():
        if user_id in old_ids:
            assert applied[user_id] == row
        else:  # a joiner's change carries its email and roles
            assert applied[user_id][:2] == row[:2]


@settings(max_examples=examples(100), deadline=None)
@given(snapshots(1), snapshots(2))
def test_property_diff_is_deterministic_and_sorted(a: Snapshot, b: Snapshot) -> None:
    first = diff_snapshots(a, b)
    reversed_users = make_snapshot(tuple(reversed(b.users)), 2)
    assert diff_snapshots(a, reversed_users) == first
    order = list(ChangeKind)
    keys = [(order.index(c.kind), c.email.casefold(), c.email, c.user_id) for c in first.changes]
    assert keys == sorted(keys)
