"""User rows as versions, a snapshot's members, and the user history kept up to date on save.

A user row is written when the user changes, not on every pull: ``user_versions`` holds each
distinct record of a user (compared with the user's record in the connection's previous
snapshot), and ``snapshot_members`` holds, per snapshot, the ids of its versions in pull order:
either in full (delta-encoded, compressed) or, usually, against the member list of the
connection's previous snapshot (``base_id``: each member is a step in the base list's positions
or a new version id, compressed), so a pull in which nobody changed adds a few dozen bytes. Every
``KEYFRAME_EVERY``-th list of a chain is stored in full, so reading one list decodes a bounded
chain; snapshots are never deleted, so a base is always there (a missing one is damage).

The rows a snapshot had are rebuilt exactly as ``snapshot_users`` held them before schema 5
(snapshot id, position, the user columns: :func:`member_rows`), so a snapshot's users tag, a
stream tag over those rows, covers its versions and its member list: an edited version row, an
edited or swapped member list, is reported as tampering when a snapshot that uses it is read, and
migration 5 keeps every existing tag valid.

``user_presence`` is the user history as an index, updated on save: one row per run of
consecutive snapshots of a connection in which a user was present with the same role names
(first and last snapshot of the run). ``Store.user_history`` reads it instead of joining every
snapshot's users; each row carries its own tag.
"""

from __future__ import annotations

import sqlite3
import zlib
from array import array
from collections.abc import Callable, Collection, Mapping, Sequence
from itertools import accumulate
from typing import Any, Final

from auditor.errors import StoreError
from auditor.store.codec import _unescape_text
from auditor.store.schema import _SELECT_USER_ROWS, _USER_COLUMNS

#: Tags a ``user_presence`` record (None when the store has no master key).
PresenceTagger = Callable[[Mapping[str, object]], bytes | None]

_VERSION_COLUMNS: Final = tuple(c.strip() for c in _USER_COLUMNS.split(","))
# Built from constants only, never from input.
_INSERT_VERSION: Final = (
    f"INSERT INTO user_versions (connection, email_key, {_USER_COLUMNS})"  # noqa: S608
    f" VALUES ({', '.join('?' * (len(_VERSION_COLUMNS) + 2))})"
)
_SELECT_VERSIONS: Final = f"SELECT id, {_USER_COLUMNS} FROM user_versions WHERE id IN "  # noqa: S608
_SELECT_STATES: Final = "SELECT id, user_id, status, roles FROM user_versions WHERE connection = ? AND user_id IN "
PRESENCE_COLUMNS: Final = (
    "id", "connection", "user_id", "role_names", "first_id", "first_at", "last_id", "last_at",
)
_SELECT_PRESENCE: Final = f"SELECT {', '.join(PRESENCE_COLUMNS)}, tag FROM user_presence"  # noqa: S608
#: Ids per ``IN (...)`` list: below SQLite's historic limit of 999 parameters.
_CHUNK: Final = 900
#: A chain of member lists encoded against their predecessor holds at most this many lists, the
#: first stored in full: reading any list decodes at most this many (about 0.5 ms each at 2,000).
KEYFRAME_EVERY: Final = 16
#: Decoded member lists kept by a :class:`MemberCache` (a walk over many snapshots in id order).
_CACHED_LISTS: Final = 2 * KEYFRAME_EVERY


def encode_members(version_ids: Sequence[int]) -> bytes:
    """A member list in full: each id minus the one before it (8-byte signed), zlib-compressed."""
    deltas = array("q", (b - a for a, b in zip((0, *version_ids), version_ids, strict=False)))
    return zlib.compress(deltas.tobytes(), 6)


def decode_members(blob: bytes, count: int) -> list[int]:
    """The version ids of :func:`encode_members`; ValueError when the blob does not hold ``count``."""
    deltas = _values(blob, count)
    return list(accumulate(deltas))


def encode_against(version_ids: Sequence[int], base: Sequence[int]) -> bytes:
    """A member list against its base list: one 8-byte value per member, zlib-compressed.

    A member that is in the base is ``2 * (its base position - the previous such position - 1)``
    (0 when it follows the member before it there), any other ``2 * (id - the previous new id) + 1``
    (the first compared with the base's largest id): an unchanged list is all zeros, and a day's
    new versions, numbered in a row, are small odd numbers.
    """
    where = {vid: position for position, vid in enumerate(base)}
    values = array("q")
    last_position, last_new = -1, max(base, default=0)
    for vid in version_ids:
        position = where.get(vid)
        if position is None:
            values.append(2 * (vid - last_new) + 1)
            last_new = vid
        else:
            values.append(2 * (position - last_position - 1))
            last_position = position
    return zlib.compress(values.tobytes(), 6)


def decode_against(blob: bytes, count: int, base: Sequence[int]) -> list[int]:
    """The version ids of :func:`encode_against`; ValueError when they cannot be the list it wrote."""
    ids: list[int] = []
    last_position, last_new = -1, max(base, default=0)
    for value in _values(blob, count):
        step = value >> 1  # the signed step, for odd and even values alike
        if value & 1:
            last_new += step
            ids.append(last_new)
            continue
        last_position += 1 + step
        if not 0 <= last_position < len(base):
            raise ValueError("member list pointing outside its base")
        ids.append(base[last_position])
    return ids


def _values(blob: bytes, count: int) -> array[int]:
    try:
        values = array("q")
        values.frombytes(zlib.decompress(bytes(blob)))
    except (zlib.error, ValueError, TypeError) as exc:
        raise ValueError("unreadable member list") from exc
    if len(values) != count:
        raise ValueError("member list of the wrong length")
    return values


class MemberCache:
    """Decoded member lists (snapshot id -> ids, lists since the chain's full one), the last few kept.

    For walks over many snapshots (migration, rebuilding the index, finding a user): each list then
    decodes once instead of once per later list of its chain.
    """

    def __init__(self) -> None:
        self._lists: dict[int, tuple[list[int], int]] = {}

    def get(self, snapshot_id: int) -> tuple[list[int], int] | None:
        return self._lists.get(snapshot_id)

    def put(self, snapshot_id: int, ids: list[int], depth: int) -> None:
        self._lists[snapshot_id] = (ids, depth)
        while len(self._lists) > _CACHED_LISTS:
            del self._lists[next(iter(self._lists))]


def _chain(db: sqlite3.Connection, snapshot_id: int, cache: MemberCache | None) -> tuple[list[int], int] | None:
    """The snapshot's version ids and how many lists back its full one is (None: no member row)."""
    pending: list[tuple[int, int, bytes]] = []
    current = snapshot_id
    while True:
        known = cache.get(current) if cache is not None else None
        if known is not None:
            ids, depth = known
            break
        row = db.execute(
            "SELECT count, versions, base_id FROM snapshot_members WHERE snapshot_id = ?", (current,)
        ).fetchone()
        if row is None:
            if not pending:
                return None
            raise ValueError("the base of a member list is missing")
        count, blob, base_id = int(row[0]), row[1], row[2]
        if base_id is None:
            ids, depth = decode_members(blob, count), 0
            if cache is not None:
                cache.put(current, ids, depth)
            break
        # Bases are older snapshots and chains are short: anything else is a damaged (or edited) row.
        if base_id >= current or len(pending) >= KEYFRAME_EVERY:
            raise ValueError("member list with an impossible base")
        pending.append((current, count, blob))
        current = int(base_id)
    for list_id, count, blob in reversed(pending):
        ids, depth = decode_against(blob, count, ids), depth + 1
        if cache is not None:
            cache.put(list_id, ids, depth)
    return ids, depth


def member_ids(db: sqlite3.Connection, snapshot_id: int, *, cache: MemberCache | None = None) -> list[int] | None:
    """The snapshot's version ids in position order (None: no member row); ValueError if unreadable."""
    found = _chain(db, snapshot_id, cache)
    return None if found is None else found[0]


def versions_by_id(db: sqlite3.Connection, ids: Sequence[int]) -> dict[int, tuple[Any, ...]]:
    """Version id -> its user columns (``_USER_COLUMNS`` order)."""
    found: dict[int, tuple[Any, ...]] = {}
    unique = sorted(set(ids))
    for start in range(0, len(unique), _CHUNK):
        chunk = unique[start : start + _CHUNK]
        sql = _SELECT_VERSIONS + f"({', '.join('?' * len(chunk))})"
        for row in db.execute(sql, chunk):
            found[row[0]] = tuple(row[1:])
    return found


def status_changes(
    db: sqlite3.Connection,
    *,
    connection: str,
    snapshot_ids: Sequence[int],
    user_ids: Collection[int],
) -> list[int]:
    """Of ``snapshot_ids`` (in the order given), the first and each whose users of ``user_ids`` differ
    in presence, status or roles from the one before, read from the member lists and version index.

    An unreadable member list counts as a change, so the caller loads (and checks) that snapshot.
    """
    wanted = sorted(set(user_ids))
    states: dict[int, tuple[int, str, str]] = {}
    for start in range(0, len(wanted), _CHUNK):
        chunk = wanted[start : start + _CHUNK]
        sql = _SELECT_STATES + f"({', '.join('?' * len(chunk))})"
        for vid, user_id, status, roles in db.execute(sql, (connection, *chunk)):
            states[vid] = (user_id, status, roles)
    cache = MemberCache()
    changed: list[int] = []
    before: frozenset[tuple[int, str, str]] | None = None
    for snapshot_id in snapshot_ids:
        try:
            ids = member_ids(db, snapshot_id, cache=cache) or []
        except ValueError:
            changed.append(snapshot_id)
            before = None
            continue
        now = frozenset(states[vid] for vid in ids if vid in states)
        if now != before:
            changed.append(snapshot_id)
        before = now
    return changed


def member_rows(
    db: sqlite3.Connection, snapshot_id: int, *, cache: MemberCache | None = None
) -> list[tuple[Any, ...]]:
    """The snapshot's user rows as ``snapshot_users`` held them: (snapshot id, position, columns...).

    A member naming no version, or an unreadable member list, gives rows that cannot match the
    snapshot's users tag: with tags on, the read is refused as tampering; without, StoreError.
    """
    try:
        ids = member_ids(db, snapshot_id, cache=cache)
    except ValueError as exc:
        raise _damaged(snapshot_id) from exc
    if ids is None:
        return []
    versions = versions_by_id(db, ids)
    try:
        return [(snapshot_id, position, *versions[vid]) for position, vid in enumerate(ids)]
    except KeyError as exc:
        raise _damaged(snapshot_id) from exc


class MissingVersionError(StoreError):
    """A snapshot's member list is unreadable or names a user version that is not stored."""


def _damaged(snapshot_id: int) -> MissingVersionError:
    return MissingVersionError(
        f"The users of snapshot {snapshot_id} can no longer be read: its member list is damaged or names "
        "a user version that is not in the database.",
        hint="Run `auditor doctor` for the full check; restore the database from a backup.",
    )


def store_users(
    db: sqlite3.Connection,
    *,
    connection: str,
    snapshot_id: int,
    taken_at: str,
    previous_id: int | None,
    rows: Sequence[Sequence[Any]],
    presence_tag: PresenceTagger,
    cache: MemberCache | None = None,
) -> None:
    """Write a snapshot's users (columns in ``_USER_COLUMNS`` order, pull order) as versions and members.

    A user whose columns equal their record in ``previous_id`` (the connection's snapshot before)
    reuses that version; any other gets a new version row. The member list is stored against the
    previous one's (or in full, see ``KEYFRAME_EVERY``). The history index is advanced too.
    """
    before: dict[int, tuple[int, tuple[Any, ...]]] = {}
    earlier: list[int] = []
    depth = KEYFRAME_EVERY  # no usable predecessor: the list is stored in full
    if previous_id is not None:
        try:
            found = _chain(db, previous_id, cache)
        except ValueError:
            found = None  # an unreadable predecessor: every user becomes a new version
        if found is not None:
            earlier, depth = found
        for vid, columns in versions_by_id(db, earlier).items():
            before[columns[0]] = (vid, columns)
    ids: list[int] = []
    for row in rows:
        columns = tuple(row)
        known = before.get(columns[0])
        if known is not None and known[1] == columns:
            ids.append(known[0])
            continue
        email = _unescape_text(columns[1]).casefold().encode("utf-8", "replace").decode("utf-8")
        cursor = db.execute(_INSERT_VERSION, (connection, email, *columns))
        if cursor.lastrowid is None:  # pragma: no cover - cannot happen after an INSERT
            raise StoreError("The database did not return the id of a new user version.")
        ids.append(cursor.lastrowid)
    blob, base_id, new_depth = encode_members(ids), None, 0
    if depth + 1 < KEYFRAME_EVERY:
        against = encode_against(ids, earlier)
        if len(against) < len(blob):
            blob, base_id, new_depth = against, previous_id, depth + 1
    db.execute(
        "INSERT INTO snapshot_members (snapshot_id, count, versions, base_id) VALUES (?, ?, ?, ?)",
        (snapshot_id, len(ids), blob, base_id),
    )
    if cache is not None:
        cache.put(snapshot_id, ids, new_depth)
    advance_presence(
        db,
        connection=connection,
        snapshot_id=snapshot_id,
        taken_at=taken_at,
        previous_id=previous_id,
        users=[(row[0], row[7]) for row in rows],
        presence_tag=presence_tag,
    )


def advance_presence(
    db: sqlite3.Connection,
    *,
    connection: str,
    snapshot_id: int,
    taken_at: str,
    previous_id: int | None,
    users: Sequence[tuple[int, Any]],
    presence_tag: PresenceTagger,
) -> None:
    """Extend each user's run that ended at ``previous_id`` (same role names), or start a new one."""
    open_runs: dict[int, tuple[Any, ...]] = {}
    if previous_id is not None:
        for row in db.execute(_SELECT_PRESENCE + " WHERE connection = ? AND last_id = ?", (connection, previous_id)):
            open_runs[row[2]] = tuple(row[:-1])
    for user_id, role_names in users:
        run = open_runs.get(user_id)
        if run is not None and _unescape_text(run[3]) == _unescape_text(role_names):
            record = dict(zip(PRESENCE_COLUMNS, (*run[:6], snapshot_id, taken_at), strict=True))
            db.execute(
                "UPDATE user_presence SET last_id = ?, last_at = ?, tag = ? WHERE id = ?",
                (snapshot_id, taken_at, presence_tag(record), run[0]),
            )
            continue
        cursor = db.execute(
            "INSERT INTO user_presence (connection, user_id, role_names, first_id, first_at, last_id, last_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?)",
            (connection, user_id, role_names, snapshot_id, taken_at, snapshot_id, taken_at),
        )
        values = (cursor.lastrowid, connection, user_id, role_names, snapshot_id, taken_at, snapshot_id, taken_at)
        tag = presence_tag(dict(zip(PRESENCE_COLUMNS, values, strict=True)))
        if tag is not None:
            db.execute("UPDATE user_presence SET tag = ? WHERE id = ?", (tag, cursor.lastrowid))


def snapshots_in_order(db: sqlite3.Connection) -> list[tuple[int, str, str, int | None]]:
    """Every snapshot as (id, connection, taken_at, the connection's snapshot before it by id)."""
    previous: dict[str, int] = {}
    ordered = []
    for snapshot_id, connection, taken_at in db.execute("SELECT id, connection, taken_at FROM snapshots ORDER BY id"):
        ordered.append((snapshot_id, connection, taken_at, previous.get(connection)))
        previous[connection] = snapshot_id
    return ordered


def rebuild_presence(
    db: sqlite3.Connection,
    *,
    presence_tag: PresenceTagger,
    check: Callable[[int, list[tuple[Any, ...]]], None] = lambda _id, _rows: None,
) -> None:
    """Recompute the whole history index from the snapshots' members (``check`` sees each one's rows)."""
    db.execute("DELETE FROM user_presence")
    cache = MemberCache()
    for snapshot_id, connection, taken_at, previous_id in snapshots_in_order(db):
        rows = member_rows(db, snapshot_id, cache=cache)
        check(snapshot_id, rows)
        advance_presence(
            db,
            connection=connection,
            snapshot_id=snapshot_id,
            taken_at=taken_at,
            previous_id=previous_id,
            users=[(row[2], row[9]) for row in rows],
            presence_tag=presence_tag,
        )


def convert_snapshot_users(db: sqlite3.Connection) -> None:
    """Migration 5: every ``snapshot_users`` row into versions, members and the history index.

    Runs inside the migration's transaction: on any error nothing is converted. The rows each
    snapshot yields afterwards (:func:`member_rows`) are the rows it held, so its tag stays valid.
    """
    cache = MemberCache()
    for snapshot_id, connection, taken_at, previous_id in snapshots_in_order(db):
        rows = db.execute(_SELECT_USER_ROWS, (snapshot_id,)).fetchall()
        if [row[1] for row in rows] != list(range(len(rows))):
            raise StoreError(
                f"Snapshot {snapshot_id} has gaps in its user positions, so it cannot be converted to schema 5; "
                "nothing was changed.",
                hint="Restore the database from a backup, or run the previous version of certcentral-auditor.",
            )
        store_users(
            db,
            connection=connection,
            snapshot_id=snapshot_id,
            taken_at=taken_at,
            previous_id=previous_id,
            rows=[row[2:] for row in rows],
            presence_tag=lambda _record: None,
            cache=cache,
        )
