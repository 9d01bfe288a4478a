"""Snapshots, their users and raw pages (saved in one transaction), and the users' history."""

from __future__ import annotations

import hashlib
import json
import zlib
from collections.abc import Collection, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, Final

from auditor.auditlog import AuditLogRun
from auditor.errors import ConfigurationError, StoreError
from auditor.models import (
    CredentialInventory,
    PullProvenance,
    RawPage,
    Snapshot,
    User,
    is_credential_endpoint,
)
from auditor.store.auditlog import _AuditLog
from auditor.store.codec import (
    _Decoder,
    _page_rows,
    _parse_time,
    _provenance_from_json,
    _provenance_json,
    _time,
    _user_rows,
)
from auditor.store.records import (
    SnapshotSummary,
    StoreTamperedError,
)
from auditor.store.schema import _SELECT_PAGE_ROWS
from auditor.store.sqlite import _new_id
from auditor.store.tags import TAGGED_COLUMNS
from auditor.store.versions import MissingVersionError, member_rows, status_changes, store_users

_SELECT_SNAPSHOT_HEADS: Final = (
    "SELECT id, connection, taken_at, complete, details_fetched, user_count, admin_count, provenance,"
    " tag, users_tag, pages_tag, previous_id FROM snapshots"
)


class _Snapshots(_AuditLog):
    """The ``snapshots``, ``snapshot_users`` and ``raw_pages`` rows (on the audit-log runs a pull archives)."""

    def save_snapshot(
        self,
        *,
        provenance: PullProvenance,
        users: Sequence[User],
        raw_pages: Sequence[RawPage],
        record_digests: Mapping[int, str] | None = None,
        audit_log_runs: Sequence[AuditLogRun] = (),
    ) -> Snapshot:
        """Store one pull in a single transaction and return it with its new id.

        Either every user and raw page is stored, or (on any error) nothing is. ``audit_log_runs``
        (the Report Library runs the pull downloaded) are archived in the same transaction.
        """
        digests = record_digests or {}
        seen: set[int] = set()
        for user in users:
            if user.id in seen:
                raise StoreError(
                    f"The pull lists user id {user.id} more than once; the snapshot was not saved.",
                    hint="Re-run `auditor pull`; if it happens again, report it with -v output.",
                )
            seen.add(user.id)
        users = tuple(users)
        admins = sum(1 for user in users if user.is_admin)
        snapshot_id = 0
        for escape in (False, True):
            try:
                with self._write("saving the snapshot"):
                    snapshot_id = self._insert_snapshot(
                        provenance, users, raw_pages, digests, admins=admins, escape=escape
                    )
                    if audit_log_runs:
                        self._insert_audit_log_runs(provenance.connection, snapshot_id, audit_log_runs)
                break
            except UnicodeEncodeError as exc:
                # Lone surrogates (valid in JSON, not in UTF-8): retry storing those as bytes.
                if escape:
                    raise StoreError(
                        "The pull holds text that cannot be stored; the snapshot was not saved.",
                        hint="Run with -v and report it.",
                    ) from exc
        return Snapshot(
            id=snapshot_id,
            connection=provenance.connection,
            taken_at=provenance.started_at.astimezone(UTC),
            users=users,
            provenance=provenance,
            credentials=CredentialInventory.from_raw_pages(raw_pages),
        )

    def _insert_snapshot(
        self,
        provenance: PullProvenance,
        users: tuple[User, ...],
        pages: Sequence[RawPage],
        digests: Mapping[int, str],
        *,
        admins: int,
        escape: bool,
    ) -> int:
        previous = self._db.execute(
            "SELECT max(id) FROM snapshots WHERE connection = ?", (provenance.connection,)
        ).fetchone()[0]
        record: dict[str, object] = {
            "connection": provenance.connection,
            "taken_at": _time(provenance.started_at),
            "complete": int(provenance.complete),
            "details_fetched": int(provenance.details_fetched),
            "user_count": len(users),
            "admin_count": admins,
            "provenance": _provenance_json(provenance),
            "previous_id": previous,
        }
        cursor = self._db.execute(
            "INSERT INTO snapshots (connection, taken_at, complete, details_fetched, user_count,"
            " admin_count, provenance, previous_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            tuple(record.values()),
        )
        snapshot_id = record["id"] = _new_id(cursor)
        user_rows = list(_user_rows(snapshot_id, users, digests, escape=escape))
        store_users(
            self._db,
            connection=provenance.connection,
            snapshot_id=snapshot_id,
            taken_at=str(record["taken_at"]),
            previous_id=previous,
            rows=[row[2:] for row in user_rows],
            presence_tag=lambda presence: self._tag("user_presence", presence),
        )
        page_rows = list(_page_rows(snapshot_id, pages))
        self._db.executemany(
            "INSERT INTO raw_pages (snapshot_id, position, endpoint, status, body_zlib, sha256,"
            " received_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
            page_rows,
        )
        self._set_latest("snapshots", provenance.connection, snapshot_id)
        if self._keys is not None:
            self._db.execute(
                "UPDATE snapshots SET tag = ?, users_tag = ?, pages_tag = ? WHERE id = ?",
                (
                    self._tag("snapshots", record),
                    self._stream_tag("snapshot_users", user_rows),
                    self._stream_tag("raw_pages", page_rows),
                    snapshot_id,
                ),
            )
        return snapshot_id

    def get_snapshot(self, snapshot_id: int) -> Snapshot:
        """The snapshot with that id, users in the order they were pulled."""
        return self._load_snapshot(snapshot_id, _Decoder())

    def _load_snapshot(self, snapshot_id: int, decoder: _Decoder) -> Snapshot:
        cached = self._loaded.get(snapshot_id)
        if cached is None:
            cached = self._loaded[snapshot_id] = self._read_snapshot(snapshot_id, decoder)
        return cached

    def _read_snapshot(self, snapshot_id: int, decoder: _Decoder) -> Snapshot:
        doing = f"reading snapshot {snapshot_id}"
        with self._guard(doing):
            head = self._db.execute(_SELECT_SNAPSHOT_HEADS + " WHERE id = ?", (snapshot_id,)).fetchone()
            if head is None:
                raise _unknown_snapshot(snapshot_id)
            self._check_head(head)
            rows = self._member_rows(snapshot_id)
        if snapshot_id not in self._users_checked:
            self._check_stream("snapshot_users", rows, head[9], f"snapshot #{snapshot_id} users")
            self._users_checked.add(snapshot_id)
        try:
            users = tuple(decoder.user(row[2:]) for row in rows)
            provenance = _provenance_from_json(head[7])
        except (ValueError, TypeError, KeyError, IndexError) as exc:
            raise StoreError(
                f"Snapshot {snapshot_id} in {self.path} holds a row that cannot be read.",
                hint="The database may have been edited or damaged; restore it from a backup.",
            ) from exc
        return Snapshot(
            id=snapshot_id,
            connection=head[1],
            taken_at=_parse_time(head[2]),
            users=users,
            provenance=provenance,
            credentials=self._stored_credentials(snapshot_id, provenance),
        )

    def _stored_credentials(self, snapshot_id: int, provenance: PullProvenance) -> CredentialInventory:
        """The credential inventory, derived from the snapshot's own raw pages.

        Not a table of its own: the raw pages are the primary evidence, so parsing them on load can
        never disagree with the bundle's raw pages (re-performance parses the same bytes). Only the
        credential pages are read, and each is checked against the page digests in the snapshot's
        provenance, which the snapshot's tag covers: an edited, added or deleted credential page is
        refused as tampering, without reading (and HMAC-ing) every user page on each load.
        """
        recorded = [(path, digest) for path, digest in provenance.page_digests if is_credential_endpoint(path)]
        with self._guard(f"reading the credential pages of snapshot {snapshot_id}"):
            rows = self._db.execute(
                "SELECT position, endpoint, status, body_zlib, sha256, received_at FROM raw_pages"
                " WHERE snapshot_id = ? AND (endpoint = '/key' OR endpoint LIKE '/key?%'"
                " OR endpoint = '/account/guest-access' OR endpoint LIKE '/container/%/ip/rules')"
                " ORDER BY position",
                (snapshot_id,),
            ).fetchall()
        pages = [self._stored_page(snapshot_id, row) for row in rows if is_credential_endpoint(row[1])]
        if self._checking and [(page.endpoint, page.sha256) for page in pages] != recorded:
            raise self._tampered(f"snapshot #{snapshot_id} raw pages")
        return CredentialInventory.from_raw_pages(pages)

    def _check_head(self, head: Sequence[Any]) -> None:
        record = dict(zip(TAGGED_COLUMNS["snapshots"], (*head[:8], head[11]), strict=True))
        self._check("snapshots", record, head[8], f"snapshot #{head[0]} (its summary and provenance)")
        previous = head[11]
        if self._checking and previous is not None:
            found = self._db.execute(
                "SELECT 1 FROM snapshots WHERE id = ? AND connection = ?", (previous, head[1])
            ).fetchone()
            if found is None:
                raise StoreTamperedError(
                    f"Snapshot #{head[0]} of connection {head[1]!r} in {self.path} follows snapshot #{previous}, "
                    "which is no longer in the database: it was deleted outside certcentral-auditor.",
                    hint=f"Treat the data as untrustworthy: restore {self.path} from a backup.",
                )

    def latest_snapshot(self, connection: str, *, complete_only: bool = True) -> Snapshot | None:
        """The newest snapshot of ``connection`` (only complete pulls, unless told otherwise)."""
        self._check_latest("snapshots")
        # complete >= 1 keeps complete pulls only; complete >= 0 keeps every pull.
        rows = self._query(
            "SELECT id FROM snapshots WHERE connection = ? AND complete >= ? ORDER BY taken_at DESC, id DESC LIMIT 1",
            (connection, int(complete_only)),
            doing=f"finding the latest snapshot of {connection!r}",
        )
        return self.get_snapshot(rows[0][0]) if rows else None

    def previous_snapshot(self, snapshot: Snapshot, *, complete_only: bool = True) -> Snapshot | None:
        """The snapshot of the same connection just before ``snapshot``: the diff baseline."""
        taken_at = _time(snapshot.taken_at)
        rows = self._query(
            "SELECT id FROM snapshots WHERE connection = ? AND complete >= ?"
            " AND (taken_at < ? OR (taken_at = ? AND id < ?))"
            " ORDER BY taken_at DESC, id DESC LIMIT 1",
            (snapshot.connection, int(complete_only), taken_at, taken_at, snapshot.id),
            doing=f"finding the snapshot before {snapshot.id}",
        )
        return self.get_snapshot(rows[0][0]) if rows else None

    def list_snapshots(self, connection: str | None = None) -> list[SnapshotSummary]:
        """Summaries of the stored snapshots (of one connection, or all), oldest first."""
        sql = _SELECT_SNAPSHOT_HEADS
        params: tuple[object, ...] = ()
        if connection is not None:
            sql += " WHERE connection = ?"
            params = (connection,)
        rows = self._query(sql + " ORDER BY taken_at, id", params, doing="listing snapshots")
        self._check_latest("snapshots")
        for row in rows:
            self._check_head(row)
        return [
            SnapshotSummary(
                id=row[0],
                connection=row[1],
                taken_at=_parse_time(row[2]),
                users=row[5],
                admins=row[6],
                complete=bool(row[3]),
            )
            for row in rows
        ]

    def snapshots(self, connection: str) -> list[Snapshot]:
        """Every snapshot of ``connection``, complete or not, oldest first (for trends)."""
        self._check_latest("snapshots")
        rows = self._query(
            "SELECT id FROM snapshots WHERE connection = ? ORDER BY taken_at, id",
            (connection,),
            doing=f"listing snapshots of {connection!r}",
        )
        decoder = _Decoder()  # shared: equal roles and divisions become one object
        return [self._load_snapshot(row[0], decoder) for row in rows]

    def review_snapshots(
        self,
        summaries: Sequence[SnapshotSummary],
        *,
        user_ids: Collection[int],
        cuts: Collection[datetime] = (),
    ) -> list[Snapshot]:
        """Of ``summaries`` (one connection's, in time order), loaded: the first, each in which a user of
        ``user_ids`` appears, leaves or changes status or roles, and the first after each ``cuts`` time.

        What remediation needs (review.remediation sees the same states at the same first snapshots)
        without loading every snapshot of a long history: the ones in between are read through the
        version index and member lists only; each one returned is loaded and checked in full.
        """
        if not summaries:
            return []
        with self._guard("reading the reviewed users' history"):
            changed = set(
                status_changes(
                    self._db,
                    connection=summaries[0].connection,
                    snapshot_ids=[s.id for s in summaries],
                    user_ids=user_ids,
                )
            )
        picked = []
        previous: datetime | None = None
        for summary in summaries:
            cut = previous is not None and any(previous <= at < summary.taken_at for at in cuts)
            if summary.id in changed or cut:
                picked.append(self.get_snapshot(summary.id))
            previous = summary.taken_at
        return picked

    def raw_pages(self, snapshot_id: int) -> tuple[RawPage, ...]:
        """The snapshot's raw API responses, each checked against its stored SHA-256."""
        rows = self._query(_SELECT_PAGE_ROWS, (snapshot_id,), doing=f"reading the raw pages of snapshot {snapshot_id}")
        heads = self._query(
            _SELECT_SNAPSHOT_HEADS + " WHERE id = ?", (snapshot_id,), doing=f"reading snapshot {snapshot_id}"
        )
        if not heads:
            raise _unknown_snapshot(snapshot_id)
        self._check_head(heads[0])
        self._check_stream("raw_pages", rows, heads[0][10], f"snapshot #{snapshot_id} raw pages")
        return tuple(self._stored_page(snapshot_id, row[1:]) for row in rows)

    def _stored_page(self, snapshot_id: int, row: Sequence[Any]) -> RawPage:
        """A raw page from its row (position, endpoint, status, body_zlib, sha256, received_at), body checked."""
        position, endpoint, status, compressed, digest, received_at = row
        try:
            body = zlib.decompress(compressed)
        except zlib.error:
            body = None
        if body is None or hashlib.sha256(body).hexdigest() != digest:
            raise StoreError(
                f"Raw page {position} ({endpoint}) of snapshot {snapshot_id} in {self.path} "
                "was modified after it was stored: it no longer matches its SHA-256.",
                hint="Treat this snapshot as untrustworthy; restore the database from a backup or pull again.",
            )
        return RawPage(endpoint=endpoint, status=status, body=body, sha256=digest, received_at=_parse_time(received_at))

    def key_user_id(self, snapshot_id: int) -> int | None:
        """The id of the user the pull's API key belongs to, from its stored ``GET /user/me`` page."""
        rows = self._query(
            "SELECT body_zlib, sha256 FROM raw_pages WHERE snapshot_id = ? AND endpoint = '/user/me'"
            " AND status = 200 ORDER BY position LIMIT 1",
            (snapshot_id,),
            doing=f"reading the key's user of snapshot {snapshot_id}",
        )
        for compressed, digest in rows:
            try:
                body = zlib.decompress(compressed)
                data = json.loads(body) if hashlib.sha256(body).hexdigest() == digest else None
            except (zlib.error, ValueError):
                data = None
            value = data.get("id") if isinstance(data, dict) else None
            return value if isinstance(value, int) and not isinstance(value, bool) else None
        return None

    def known_details(self, connection: str) -> dict[int, tuple[str, bool]]:
        """User id -> (record digest, is_saml_sso_only) from the latest pull that fetched details.

        Lets a pull skip ``GET /user/{id}`` for users whose list record has not changed.
        """
        latest = self._query(
            "SELECT id FROM snapshots WHERE connection = ? AND details_fetched ORDER BY taken_at DESC, id DESC LIMIT 1",
            (connection,),
            doing=f"reading the known user details of {connection!r}",
        )
        if not latest:
            return {}
        rows = self._check_users(latest[0][0])
        # user_id, record_digest and is_saml_sso_only of the rows (snapshot id, position, columns...).
        return {
            row[2]: (row[20], bool(row[19])) for row in rows if row[20] is not None and row[19] is not None
        }


    def _check_users(self, snapshot_id: int) -> list[tuple[Any, ...]]:
        """A snapshot's user rows, checked against its tag without decoding them (details, doctor)."""
        with self._guard(f"reading snapshot {snapshot_id}"):
            head = self._db.execute("SELECT users_tag FROM snapshots WHERE id = ?", (snapshot_id,)).fetchone()
            if head is None:
                raise _unknown_snapshot(snapshot_id)
            rows = self._member_rows(snapshot_id)
        if snapshot_id not in self._users_checked:
            self._check_stream("snapshot_users", rows, head[0], f"snapshot #{snapshot_id} users")
            self._users_checked.add(snapshot_id)
        return rows

    def _member_rows(self, snapshot_id: int) -> list[tuple[Any, ...]]:
        """The snapshot's user rows rebuilt from its versions; a broken member list is tampering once tagged."""
        try:
            return member_rows(self._db, snapshot_id)
        except MissingVersionError:
            if self._checking:
                raise self._tampered(f"snapshot #{snapshot_id} users") from None
            raise


def _unknown_snapshot(snapshot_id: int) -> ConfigurationError:
    return ConfigurationError(
        f"There is no snapshot {snapshot_id}.",
        hint="List the stored snapshots with `auditor snapshots`.",
    )
