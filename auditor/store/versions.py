"""User rows as versions, a snapshot's members, and the user history kept up to date on save.

A user row is written when the user changes, not on every pull: ``user_versions`` holds each
distinct record of a user (compared with the user's record in the connection's previous
snapshot), and ``snapshot_members`` holds, per snapshot, the ids of its versions in pull order
(delta-encoded, compressed: a pull in which nobody changed adds a few hundred bytes).

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
from collections.abc import Callable, Mapping, Sequence
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
PRESENCE_COLUMNS: Final = (
    "id", "connection", "user_id", "role_names", "first_id", "first_at", "last_id", "last_at",
)
_SELECT_PRESENCE: Final = f"SELECT {', '.join(PRESENCE_COLUMNS)}, tag FROM user_presence"  # noqa: S608
#: Ids per ``IN (...)`` list: below SQLite's historic limit of 999 parameters.
_CHUNK: Final = 900


def encode_members(version_ids: Sequence[int]) -> bytes:
    """The member list as stored: each id minus the one before it (8-byte signed), zlib-compressed."""
    deltas = array("q", (b - a for a, b in zip((0, *version_ids), version_ids, strict=False)))
    return zlib.compress(deltas.tobytes(), 6)


def decode_members(blob: bytes, count: int) -> list[int]:
    """The version ids of :func:`encode_members`; ValueError when the blob does not hold ``count``."""
    try:
        deltas = array("q")
        deltas.frombytes(zlib.decompress(bytes(blob)))
    except (zlib.error, ValueError, TypeError) as exc:
        raise ValueError("unreadable member list") from exc
    if len(deltas) != count:
        raise ValueError("member list of the wrong length")
    ids: list[int] = []
    total = 0
    for delta in deltas:
        total += delta
        ids.append(total)
    return ids


def member_ids(db: sqlite3.Connection, snapshot_id: int) -> list[int] | None:
    """The snapshot's version ids in position order (None: no member row); ValueError if unreadable."""
    row = db.execute("SELECT count, versions FROM snapshot_members WHERE snapshot_id = ?", (snapshot_id,)).fetchone()
    return None if row is None else decode_members(row[1], int(row[0]))


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


def member_rows(db: sqlite3.Connection, snapshot_id: int) -> list[tuple[Any, ...]]:
    """The snapshot's user rows as ``snapshot_users`` held them: (snapshot id, position, columns...).

    A member naming no version, or an unreadable member list, gives rows that cannot match the
    snapshot's users tag: with tags on, the read is refused as tampering; without, StoreError.
    """
    try:
        ids = member_ids(db, snapshot_id)
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
) -> None:
    """Write a snapshot's users (columns in ``_USER_COLUMNS`` order, pull order) as versions and members.

    A user whose columns equal their record in ``previous_id`` (the connection's snapshot before)
    reuses that version; any other gets a new version row. The history index is advanced too.
    """
    before: dict[int, tuple[int, tuple[Any, ...]]] = {}
    if previous_id is not None:
        try:
            earlier = member_ids(db, previous_id) or []
        except ValueError:
            earlier = []  # an unreadable predecessor: every user becomes a new version
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
    db.execute(
        "INSERT INTO snapshot_members (snapshot_id, count, versions) VALUES (?, ?, ?)",
        (snapshot_id, len(ids), encode_members(ids)),
    )
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
    for snapshot_id, connection, taken_at, previous_id in snapshots_in_order(db):
        rows = member_rows(db, snapshot_id)
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
        )
