"""The users' history, read from the index kept on save (``user_presence``), and finding one user."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from auditor.models import Snapshot, UserHistory
from auditor.store.codec import _parse_time, _unescape_text
from auditor.store.snapshots import _Snapshots
from auditor.store.versions import _SELECT_PRESENCE, MemberCache, member_ids, rebuild_presence


class _History(_Snapshots):
    """``user_presence`` rows: the history each rule run and ``auditor history`` read."""

    def user_history(
        self, connection: str, *, until: Snapshot | None = None, user_ids: Sequence[int] | None = None
    ) -> dict[int, UserHistory]:
        """Each user's first and last sighting and role changes, over every stored snapshot.

        With ``until``, only snapshots up to that one count: the history as it stood when that
        snapshot was taken, so later pulls cannot change what it shows. ``user_ids``: only those
        users (``auditor history``). Read from the index, never by joining every snapshot's users.
        """
        sql = _SELECT_PRESENCE + " WHERE connection = ?"
        params: list[object] = [connection]
        if until is not None:
            sql += " AND first_id <= ?"
            params.append(until.id)
        if user_ids is not None:
            wanted = sorted(set(user_ids))
            sql += f" AND user_id IN ({', '.join('?' * len(wanted))})"
            params.extend(wanted)
        doing = f"reading the user history of {connection!r}"
        rows = self._query(sql + " ORDER BY user_id, first_id", params, doing=doing)
        times: dict[str, datetime] = {}

        def when(text: str) -> datetime:
            found = times.get(text)
            if found is None:
                found = times[text] = _parse_time(text)
            return found

        history: dict[int, UserHistory] = {}
        current: dict[int, str] = {}
        changes: dict[int, list[tuple[datetime, str]]] = {}
        first: dict[int, datetime] = {}
        last: dict[int, datetime] = {}
        for row in rows:
            self._check_row("user_presence", row, f"history record #{row[0]} (user {row[2]})")
            user_id, role_names, first_at, last_id, last_at = row[2], _unescape_text(row[3]), row[5], row[6], row[7]
            seen_last = when(last_at) if until is None or last_id <= until.id else until.taken_at
            if user_id not in first:
                first[user_id] = when(first_at)
                changes[user_id] = [(first[user_id], role_names)]
            elif current[user_id] != role_names:
                changes[user_id].append((when(first_at), role_names))
            current[user_id] = role_names
            last[user_id] = seen_last
        for user_id, seen in first.items():
            history[user_id] = UserHistory(
                user_id=user_id, first_seen=seen, last_seen=last[user_id], role_history=tuple(changes[user_id])
            )
        return history

    def find_user_snapshot(self, connection: str, who: str) -> int | None:
        """The newest snapshot of ``connection`` holding a user with that id or email (case-insensitive).

        Found through the version index and the snapshots' member lists, newest first, without
        loading any snapshot; the caller loads the one returned (which checks it).
        """
        wanted = who.strip()
        params: list[object] = [connection, wanted.casefold().encode("utf-8", "replace").decode("utf-8")]
        sql = "SELECT id FROM user_versions WHERE connection = ? AND (email_key = ?"
        if wanted.isdigit():
            sql += " OR user_id = ?"
            params.append(int(wanted))
        versions = {row[0] for row in self._query(sql + ")", params, doing=f"looking up {wanted!r}")}
        if not versions:
            return None
        snapshots = self._query(
            "SELECT id FROM snapshots WHERE connection = ? ORDER BY taken_at DESC, id DESC",
            (connection,),
            doing=f"looking up {wanted!r}",
        )
        cache = MemberCache()
        for (snapshot_id,) in snapshots:
            with self._guard(f"reading snapshot {snapshot_id}"):
                try:
                    ids = member_ids(self._db, snapshot_id, cache=cache) or []
                except ValueError:
                    return int(snapshot_id)  # damaged: loading it reports it
            if not versions.isdisjoint(ids):
                return int(snapshot_id)
        return None

    def _adopt_converted_history(self) -> bool:
        """Tag the history index migration 5 built without the master key, rebuilt from checked snapshots.

        Runs once, on the first open with the master key after the migration (or whenever an index
        row has lost its tag): every snapshot's users are checked against their tag first, so the
        index can only ever hold what the authenticated snapshots say.
        """
        if not self._checking:
            return False
        with self._guard("checking the history index"):
            if self._db.execute("SELECT 1 FROM user_presence WHERE tag IS NULL LIMIT 1").fetchone() is None:
                return False
        with self._write("rebuilding the history index"):
            rebuild_presence(
                self._db,
                presence_tag=lambda record: self._tag("user_presence", record),
                check=self._check_rows_of,
            )
        return True

    def _check_rows_of(self, snapshot_id: int, rows: list[tuple[Any, ...]]) -> None:
        head = self._db.execute("SELECT users_tag FROM snapshots WHERE id = ?", (snapshot_id,)).fetchone()
        self._check_stream("snapshot_users", rows, head[0] if head else None, f"snapshot #{snapshot_id} users")
