"""Compares two snapshots and says exactly what changed, user by user.

``diff_snapshots`` is pure and deterministic: the same two snapshots always give the same
``ChangeSet``, sorted by change kind (``ChangeKind`` order), then email, then user id. It is plain
Python over dicts keyed by user id: at 10,000-100,000 users it is faster than the pandas version
it replaced (bench/bench_pandas.py, BENCHMARKS.md), and no command that diffs imports pandas.

Watched fields, compared as the display strings a ``Change`` carries (so that applying a change
set to the old snapshot reproduces the new one, see :func:`apply_changes`):

* email; name (first + last); status; roles (role names, sorted, ", "-joined);
* division (its name); restriction ("unrestricted" or "restricted: <assigned divisions>");
* last sign-in (ISO 8601, "" for never). Only forward movement is a change: ``FIRST_SIGN_IN``
  (never -> a time) and ``SIGNED_IN`` (a later time). A sign-in time that moves back or vanishes is
  an API anomaly, not user activity, and is not reported.

Users are matched by id, so an email change is an ``EMAIL`` change, not a leaver plus a joiner.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime

from auditor.models import (
    DEFAULT_PRIVILEGED_ROLES,
    ApiKey,
    Change,
    ChangeKind,
    ChangeSet,
    PrivilegedRoles,
    Role,
    Snapshot,
    User,
)

#: Field order of the tuples returned by :func:`watched_fields`.
WATCHED_FIELDS: tuple[str, ...] = ("email", "roles", "status", "name", "division", "restriction", "last_sign_in")

#: Field changes reported for users present in both snapshots, in watched-field order.
_FIELD_KINDS: tuple[tuple[str, ChangeKind], ...] = (
    ("email", ChangeKind.EMAIL),
    ("roles", ChangeKind.ROLE),
    ("status", ChangeKind.STATUS),
    ("name", ChangeKind.NAME),
    ("division", ChangeKind.DIVISION),
    ("restriction", ChangeKind.RESTRICTION),
)
_KIND_ORDER = {kind: index for index, kind in enumerate(ChangeKind)}

WatchedTuple = tuple[str, str, str, str, str, str, str]


def roles_text(roles: Iterable[Role]) -> str:
    """Role names, sorted and joined: the display form compared and reported for role changes."""
    return ", ".join(sorted({role.name for role in roles}))


def restriction_text(user: User) -> str:
    """ "unrestricted", or "restricted: " and the assigned division names (sorted)."""
    if not user.restricted:
        return "unrestricted"
    names = sorted({division.name or f"division {division.id}" for division in user.assigned_divisions})
    return "restricted: " + ", ".join(names) if names else "restricted"


def sign_in_text(value: datetime | None) -> str:
    return value.astimezone(UTC).isoformat() if value is not None else ""


def _row(user: User) -> WatchedTuple:
    return (
        user.email,
        roles_text(user.roles),
        user.status,
        user.full_name,
        user.division_name,
        restriction_text(user),
        sign_in_text(user.last_login),
    )


def _unique_users(snapshot: Snapshot) -> dict[int, User]:
    """Users by id; a duplicate id (which the store should never produce) keeps the first."""
    users: dict[int, User] = {}
    for user in snapshot.users:
        users.setdefault(user.id, user)
    return users


def watched_fields(snapshot: Snapshot) -> dict[int, WatchedTuple]:
    """Each user's watched fields (``WATCHED_FIELDS`` order), by user id."""
    return {user_id: _row(user) for user_id, user in _unique_users(snapshot).items()}


def _compared(user: User) -> tuple[str, str, str, str, str, str]:
    """The watched display strings of ``_FIELD_KINDS``, with cheap fast paths (one role, unrestricted).

    Extracting values from 100,000 dataclasses is the slow part of a diff; the comparisons are
    tuple comparisons (bench/bench_pandas.py measures this against a pandas version).
    """
    roles = user.roles
    division = user.division
    return (
        user.email,
        roles[0].name if len(roles) == 1 else roles_text(roles),
        user.status,
        _name_fast(user.first_name, user.last_name),
        division.name if division is not None else "",
        restriction_text(user) if user.restricted else "unrestricted",
    )


def _name_fast(first: str, last: str) -> str:
    # Same as User.full_name, without the generator (this runs 200,000 times per diff).
    if first and last:
        return f"{first} {last}"
    return first or last


def diff_snapshots(
    old: Snapshot, new: Snapshot, *, privileged_roles: Sequence[str] = DEFAULT_PRIVILEGED_ROLES
) -> ChangeSet:
    """What changed from ``old`` to ``new``: joiners, leavers and per-user field changes.

    A role change is an ``escalation`` when the user gains a role in ``privileged_roles`` (matched
    case-insensitively); ``became_admin`` marks gaining Administrator, for joiners too. An
    incomplete ``new`` yields no removals: who is missing from it was possibly never read.
    """
    privileged = PrivilegedRoles.of(privileged_roles)
    old_users = _unique_users(old)
    new_users = _unique_users(new)

    changes: list[Change] = []
    for user_id, user in new_users.items():
        was = old_users.get(user_id)
        if was is None:
            changes.append(
                Change(
                    kind=ChangeKind.ADDED,
                    user_id=user_id,
                    email=user.email,
                    after=roles_text(user.roles),
                    escalation=bool(privileged.matched(user)),
                    became_admin=user.is_admin,
                )
            )
            continue
        before, after = _compared(was), _compared(user)
        if before != after:
            for index, (_name, kind) in enumerate(_FIELD_KINDS):
                if before[index] == after[index]:
                    continue
                escalation = became_admin = False
                if kind is ChangeKind.ROLE:
                    escalation = bool(privileged.matched(user) - privileged.matched(was))
                    became_admin = user.is_admin and not was.is_admin
                changes.append(
                    Change(
                        kind=kind,
                        user_id=user_id,
                        email=user.email,
                        before=before[index],
                        after=after[index],
                        escalation=escalation,
                        became_admin=became_admin,
                    )
                )
        old_login, new_login = was.last_login, user.last_login
        if new_login is not None and (old_login is None or new_login > old_login):
            changes.append(
                Change(
                    kind=ChangeKind.FIRST_SIGN_IN if old_login is None else ChangeKind.SIGNED_IN,
                    user_id=user_id,
                    email=user.email,
                    before=sign_in_text(old_login),
                    after=sign_in_text(new_login),
                )
            )
    # A user absent from an incomplete snapshot may simply not have been read (a page that never
    # added up, service users CertCentral would not list): "could not read" is never "removed".
    if new.complete:
        for user_id, was in old_users.items():
            if user_id not in new_users:
                changes.append(
                    Change(kind=ChangeKind.REMOVED, user_id=user_id, email=was.email, before=roles_text(was.roles))
                )

    changes.extend(key_changes(old, new, new_users))
    changes.sort(key=lambda c: (_KIND_ORDER[c.kind], c.email.casefold(), c.email, c.user_id, c.key_id or 0))
    return ChangeSet(from_snapshot=old.id, to_snapshot=new.id, changes=tuple(changes))


def _key_text(key: ApiKey) -> str:
    return f"{key.label}, {key.restriction}"


def _owner_text(key: ApiKey) -> str:
    who = f"user {key.owner_id}" if key.owner_id is not None else "no owner"
    return f"{key.owner_name} ({who})" if key.owner_name else who


def key_changes(old: Snapshot, new: Snapshot, new_users: Mapping[int, User] | None = None) -> list[Change]:
    """API keys and ACME URLs created, revoked, re-owned and re-restricted (issue 17).

    Only when both snapshots read the key list: a list that was not read is unknown, so comparing
    with it would report every key as created (or revoked). A key gone from the list counts as
    revoked. ``user_id`` is the key's owner (0 when it has none); ``key_id`` names the key.
    """
    before, after = old.credentials.keys, new.credentials.keys
    if before is None or after is None:
        return []
    users = new_users if new_users is not None else {user.id: user for user in new.users}
    old_keys = {key.id: key for key in before}
    new_keys = {key.id: key for key in after}

    def change(kind: ChangeKind, key: ApiKey, was: str = "", now: str = "", *, escalation: bool = False) -> Change:
        owner = users.get(key.owner_id) if key.owner_id is not None else None
        # The key's label on both sides, so a CSV row says which key changed without a key column.
        return Change(
            kind=kind,
            user_id=key.owner_id or 0,
            email=owner.email if owner is not None else "",
            before=f"{key.label}: {was}" if was else "",
            after=f"{key.label}: {now}" if kind is not ChangeKind.KEY_CREATED else now,
            escalation=escalation,
            key_id=key.id,
        )

    found: list[Change] = []
    for key_id, key in new_keys.items():
        previous = old_keys.get(key_id)
        if previous is None:
            found.append(change(ChangeKind.KEY_CREATED, key, now=_key_text(key), escalation=key.unrestricted))
            continue
        if previous.is_active and not key.is_active:
            found.append(change(ChangeKind.KEY_REVOKED, key, previous.status, key.status or "(unknown)"))
        if previous.owner_id != key.owner_id:
            found.append(change(ChangeKind.KEY_OWNER, key, _owner_text(previous), _owner_text(key)))
        if previous.restricted_to_role_id != key.restricted_to_role_id:
            found.append(
                change(
                    ChangeKind.KEY_RESTRICTION,
                    key,
                    previous.restriction,
                    key.restriction,
                    escalation=key.unrestricted and not previous.unrestricted,
                )
            )
    for key_id, key in old_keys.items():
        if key_id not in new_keys and key.is_active:
            found.append(change(ChangeKind.KEY_REVOKED, key, key.status, "no longer listed"))
    return found


def apply_changes(old: Snapshot, changes: ChangeSet) -> dict[int, tuple[str | None, ...]]:
    """Replay ``changes`` on ``old``'s watched fields: the inverse view of :func:`diff_snapshots`.

    For users present in both snapshots the result equals the new snapshot's watched fields. A
    joiner's ``ADDED`` change carries only its email and roles (what a reviewer is shown), so a
    joiner's other fields are None here; the property tests compare joiners on those two fields.
    """
    state: dict[int, list[str | None]] = {uid: list(row) for uid, row in watched_fields(old).items()}
    position = {name: index for index, name in enumerate(WATCHED_FIELDS)}
    kind_field = {kind: name for name, kind in _FIELD_KINDS}
    kind_field[ChangeKind.FIRST_SIGN_IN] = "last_sign_in"
    kind_field[ChangeKind.SIGNED_IN] = "last_sign_in"
    for change in changes.changes:
        if change.key_id is not None:
            continue  # a key's change, not a user's watched field
        if change.kind is ChangeKind.REMOVED:
            state.pop(change.user_id, None)
        elif change.kind is ChangeKind.ADDED:
            row: list[str | None] = [None] * len(WATCHED_FIELDS)
            row[position["email"]] = change.email
            row[position["roles"]] = change.after
            state[change.user_id] = row
        else:
            state[change.user_id][position[kind_field[change.kind]]] = change.after
    return {uid: tuple(row) for uid, row in state.items()}
