"""Record authentication: the canonical encoding each tag covers and the checks made on reads.

Every record carries an HMAC-SHA256 tag under a key derived for its table (see the package
docstring); :class:`_Tagged` adds the tagging and checking to the database plumbing, and every
area of rows builds on it.
"""

from __future__ import annotations

import json
import secrets
import struct
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Final

from auditor.errors import CredentialsError, StoreError
from auditor.store.codec import _time
from auditor.store.records import (
    RecordKeys,
    StoreTamperedError,
)
from auditor.store.schema import (
    _SELECT_PAGE_ROWS,
    _USER_COLUMNS,
)
from auditor.store.sqlite import _Database
from auditor.store.versions import PRESENCE_COLUMNS, member_rows

#: The columns each record's tag covers, in encoding order. A migration that adds a column adds
#: it here (or to UNTAGGED_COLUMNS, saying why) deliberately; tests/e2e/test_store_auth.py checks.
TAGGED_COLUMNS: Final[Mapping[str, tuple[str, ...]]] = {
    "connections": (
        "name", "base_url", "region", "encrypted_key", "key_fingerprint", "added_at", "last_test_at",
        "last_test_result",
    ),
    "snapshots": (
        "id", "connection", "taken_at", "complete", "details_fetched", "user_count", "admin_count", "provenance",
        "previous_id",
    ),
    "snapshot_users": ("snapshot_id", "position", *(c.strip() for c in _USER_COLUMNS.split(","))),
    "raw_pages": ("snapshot_id", "position", "endpoint", "status", "body_zlib", "sha256", "received_at"),
    "attestations": (
        "id", "connection", "kind", "made_by", "statement", "made_at", "expires", "snapshot_id", "raw_sha256",
    ),
    "signing_keys": ("fingerprint", "encrypted_private_key", "public_pem", "created_at", "retired_at"),
    "chain": (
        "id", "connection", "chain_id", "sequence", "manifest_sha256", "signature", "key_fingerprint", "exported_at",
    ),
    "campaigns": (
        "id", "connection", "snapshot_id", "raw_sha256", "scope", "due", "opened_at", "opened_by", "worksheet", "state",
        "closed_at", "closed_by", "statement", "attestation_id", "import_count",
    ),
    "campaign_imports": (
        "id", "campaign_id", "file_name", "sha256", "content", "imported_by", "imported_at", "decision_count",
    ),
    "campaign_decisions": (
        "id", "campaign_id", "import_id", "user_id", "reviewer", "decision", "new_role", "justification", "ticket",
        "decided_at",
    ),
    "user_presence": PRESENCE_COLUMNS,
    "snapshot_summaries": (
        "snapshot_id", "rules_version", "computed_at", "users", "admins", "findings", "by_severity", "by_rule",
    ),
    "audit_log_runs": (
        "id", "connection", "report_identifier", "run_identifier", "started_at", "schedule", "report_format",
        "endpoint", "body_zlib", "sha256", "received_at", "first_snapshot_id",
    ),
}
#: Columns no tag covers: the tags themselves, and the meta table (its one authenticated row,
#: ``records_tagged``, carries its tag inside its value).
UNTAGGED_COLUMNS: Final[Mapping[str, frozenset[str]]] = {
    "connections": frozenset({"tag"}),
    "snapshots": frozenset({"tag", "users_tag", "pages_tag"}),
    "snapshot_users": frozenset(),
    # Versions and member lists carry no tag of their own: each snapshot's users tag is computed over
    # the rows they rebuild (versions.member_rows), so it covers every version and member list it uses.
    "user_versions": frozenset({"id", "connection", "email_key", *TAGGED_COLUMNS["snapshot_users"][2:]}),
    "snapshot_members": frozenset({"snapshot_id", "count", "versions", "base_id"}),
    "user_presence": frozenset({"tag"}),
    "snapshot_summaries": frozenset({"tag"}),
    "raw_pages": frozenset(),
    "attestations": frozenset({"tag"}),
    "signing_keys": frozenset({"tag"}),
    "chain": frozenset({"tag"}),
    "campaigns": frozenset({"tag"}),
    "campaign_imports": frozenset({"tag"}),
    "campaign_decisions": frozenset({"tag"}),
    "audit_log_runs": frozenset({"tag"}),
    "meta": frozenset({"key", "value"}),
}
_TAGGED_MARKER: Final = "records_tagged"


def canonical_record(table: str, row: Mapping[str, object]) -> bytes:
    """The bytes a record's tag covers: table, then each listed non-NULL column, length-prefixed.

    Each column contributes ``len(name) (2 bytes) || name || type || value``, where the type is
    ``i`` (8-byte signed big-endian integer), ``f`` (IEEE-754 double), ``s`` (UTF-8 text with
    lone surrogates passed through) or ``b`` (bytes); text and bytes are preceded by their
    length (8 bytes). Values are encoded as SQLite stores them, so a tag checks the stored row.
    """
    return _encode(table, [row[column] for column in TAGGED_COLUMNS[table]])


def _encode(table: str, values: Sequence[object]) -> bytes:
    """:func:`canonical_record` of values given in ``TAGGED_COLUMNS[table]`` order."""
    head, prefixes = _PREFIXES[table]
    return head + _encode_columns(table, prefixes, values)


def _encode_columns(table: str, prefixes: Sequence[_Typed], values: Sequence[object]) -> bytes:
    """The columns' part of :func:`_encode`: each column's encoding, concatenated in order."""
    parts: list[bytes] = []
    extend = parts.extend
    for (as_text, as_int, as_bytes, as_float), value in zip(prefixes, values, strict=True):
        if value is None:
            continue
        kind = type(value)
        if kind is str:
            data = value.encode("utf-8", "surrogatepass")  # type: ignore[attr-defined]
            extend((as_text, len(data).to_bytes(8, "big"), data))
        elif kind is int or kind is bool:
            extend((as_int, int(value).to_bytes(8, "big", signed=True)))  # type: ignore[call-overload]
        elif isinstance(value, bytes | bytearray | memoryview):
            data = bytes(value)
            extend((as_bytes, len(data).to_bytes(8, "big"), data))
        elif isinstance(value, float):
            extend((as_float, struct.pack(">d", value)))
        elif isinstance(value, str):  # a str subclass
            data = str(value).encode("utf-8", "surrogatepass")
            extend((as_text, len(data).to_bytes(8, "big"), data))
        elif isinstance(value, int):
            extend((as_int, int(value).to_bytes(8, "big", signed=True)))
        else:  # pragma: no cover - SQLite returns only the types above
            raise TypeError(f"cannot encode {type(value).__name__} for a column of {table}")
    return b"".join(parts)


def _length_prefixed(name: str) -> bytes:
    data = name.encode("ascii")
    return len(data).to_bytes(2, "big") + data


#: A column's prefix followed by each type letter (text, integer, bytes, float).
_Typed = tuple[bytes, bytes, bytes, bytes]


def _typed(column: str) -> _Typed:
    prefix = _length_prefixed(column)
    return (prefix + b"s", prefix + b"i", prefix + b"b", prefix + b"f")


_PREFIXES: Final = {
    table: (_length_prefixed(table), tuple(_typed(column) for column in columns))
    for table, columns in TAGGED_COLUMNS.items()
}


def _latest_bytes(key: str, row_id: int) -> bytes:
    return key.encode("utf-8", "surrogatepass") + b"\x00" + str(row_id).encode()


#: About how many bytes of framed records a stream tag hands to the HMAC at once.
_BATCH_BYTES: Final = 1 << 20


def _count_frame(count: int) -> bytes:
    return b"\x00count" + count.to_bytes(8, "big")


class _Tagged(_Database):
    """The database with record tags: written on every insert, checked on every read."""

    @property
    def untagged(self) -> bool:
        """Opened with the master key, but its records were never tagged (a store from 0.1)."""
        return self._keys is not None and not self._checking

    def _authenticate(self, keys: RecordKeys | None) -> None:
        """Check the store against ``keys`` (its tags from now on); without keys, only note if it is tagged."""
        with self._guard("checking the database's authentication"):
            row = self._db.execute("SELECT value FROM meta WHERE key = ?", (_TAGGED_MARKER,)).fetchone()
        if keys is None:
            self._read_only = row is not None
            return
        self._keys = keys
        if row is None:
            return
        self._check_marker(str(row[0]))
        self._checking = True

    def _marker_tag(self, at: str) -> bytes:
        assert self._keys is not None  # noqa: S101 - only called when authenticated
        return self._keys.record_authenticator("meta").tag(_TAGGED_MARKER.encode() + b"\x00" + at.encode())

    def _check_marker(self, value: str) -> None:
        assert self._keys is not None  # noqa: S101
        try:
            record = json.loads(value)
            at, tag = str(record["at"]), bytes.fromhex(record["tag"])
        except (ValueError, TypeError, KeyError) as exc:
            raise self._tampered("the record of when this store was first tagged (meta records_tagged)") from exc
        if not secrets.compare_digest(self._marker_tag(at), tag):
            source = getattr(self._keys, "source", "the given key")
            label = getattr(self._keys, "fingerprint", "")
            raise CredentialsError(
                f"The records in {self.path} were authenticated under a different master key: they, and "
                f"the stored keys, cannot be decrypted with this master key (from {source}"
                + (f", {label}" if label else "")
                + "); was AUDITOR_MASTER_KEY or the key file changed?",
                hint="Restore the original master key (AUDITOR_MASTER_KEY or the key file named by "
                "AUDITOR_MASTER_KEY_FILE). Nothing was changed.",
            )

    def tag_existing_records(self) -> int:
        """Tag every record of a store written before tags existed; returns how many were tagged.

        Done once, in one transaction; afterwards every record must carry a valid tag. Call it
        only after checking that the master key opens the stored secrets (a wrong key would tag
        everything under itself and lock the right one out).
        """
        if self._keys is None:
            raise StoreError("The store was opened without the master key; its records cannot be tagged.")
        tagged = 0
        with self._write("tagging the stored records"):
            row = self._db.execute("SELECT value FROM meta WHERE key = ?", (_TAGGED_MARKER,)).fetchone()
            if row is not None:  # another process tagged it meanwhile
                self._check_marker(str(row[0]))
                self._checking = True
                return 0
            self._db.execute(
                "UPDATE snapshots SET previous_id = (SELECT max(earlier.id) FROM snapshots AS earlier"
                " WHERE earlier.connection = snapshots.connection AND earlier.id < snapshots.id)"
                " WHERE previous_id IS NULL"
            )
            for table, key in (
                ("connections", "name"),
                ("attestations", "id"),
                ("signing_keys", "fingerprint"),
                ("chain", "id"),
                ("snapshots", "id"),
                ("user_presence", "id"),
                ("snapshot_summaries", "snapshot_id"),
            ):
                columns = TAGGED_COLUMNS[table]
                rows = self._db.execute(
                    f"SELECT {', '.join(columns)} FROM {table}"  # noqa: S608 - constant names
                ).fetchall()
                for values in rows:
                    record = dict(zip(columns, values, strict=True))
                    updates = {"tag": self._tag(table, record)}
                    if table == "snapshots":
                        updates["users_tag"] = self._users_tag(record["id"])
                        updates["pages_tag"] = self._pages_tag(record["id"])
                    self._db.execute(
                        f"UPDATE {table} SET {', '.join(f'{c} = ?' for c in updates)} WHERE {key} = ?",  # noqa: S608
                        (*updates.values(), record[key]),
                    )
                    tagged += 1
            for table in ("snapshots", "chain"):
                newest = self._db.execute(
                    f"SELECT connection, max(id) FROM {table} GROUP BY connection"  # noqa: S608 - constant
                ).fetchall()
                for connection, row_id in newest:
                    self._set_latest(table, connection, row_id)
            at = _time(self._clock())
            self._db.execute(
                "INSERT INTO meta (key, value) VALUES (?, ?)",
                (_TAGGED_MARKER, json.dumps({"at": at, "tag": self._marker_tag(at).hex()})),
            )
        self._checking = True
        return tagged

    def _tag(self, table: str, record: Mapping[str, object]) -> bytes | None:
        if self._keys is None:
            return None
        return self._keys.record_authenticator(table).tag(canonical_record(table, record))

    def _check_row(self, table: str, row: Sequence[Any], what: str) -> None:
        """:meth:`_check` of a row read as ``TAGGED_COLUMNS[table]`` followed by its tag."""
        self._check(table, dict(zip(TAGGED_COLUMNS[table], row[:-1], strict=True)), row[-1], what)

    def _check(self, table: str, record: Mapping[str, object], tag: object, what: str) -> None:
        if not self._checking:
            return
        assert self._keys is not None  # noqa: S101
        if not self._keys.record_authenticator(table).check(tag, canonical_record(table, record)):
            raise self._tampered(what)

    def _stream_tag(self, table: str, rows: Iterable[Sequence[object]]) -> bytes | None:
        """The tag over a snapshot's rows of ``table`` (users or raw pages), in position order."""
        if self._keys is None:
            return None
        mac = self._keys.record_authenticator(table).stream()
        # The framed records go to the HMAC in batches (the HMAC of a concatenation is that of its
        # parts fed in turn): one update call a user row cost about as much as hashing the row.
        batch: list[bytes] = []
        size = count = 0
        for row in rows:
            record = _encode(table, row)
            batch.append(len(record).to_bytes(8, "big"))
            batch.append(record)
            size += len(record)
            count += 1
            if size >= _BATCH_BYTES:
                mac.update(b"".join(batch))
                batch.clear()
                size = 0
        batch.append(_count_frame(count))
        mac.update(b"".join(batch))
        return mac.finalize()

    def _users_tag(self, snapshot_id: int) -> bytes | None:
        return self._stream_tag("snapshot_users", member_rows(self._db, snapshot_id))

    def _pages_tag(self, snapshot_id: int) -> bytes | None:
        return self._stream_tag("raw_pages", self._db.execute(_SELECT_PAGE_ROWS, (snapshot_id,)))

    def _check_stream(self, table: str, rows: Iterable[Sequence[object]], tag: object, what: str) -> None:
        if not self._checking:
            return
        expected = self._stream_tag(table, rows)
        if expected is None or not isinstance(tag, bytes) or not secrets.compare_digest(expected, tag):
            raise self._tampered(what)

    # The newest snapshot and chain record of each connection are remembered in tagged meta rows
    # (``latest/<table>/<connection>``): deleting the newest record, which no later record links
    # to, is then detected too.

    def _set_latest(self, table: str, connection: str, row_id: int) -> None:
        if self._keys is None:
            return
        key = f"latest/{table}/{connection}"
        tag = self._keys.record_authenticator("meta").tag(_latest_bytes(key, row_id))
        # SQLite: INSERT OR REPLACE is the upsert (ON CONFLICT ... DO UPDATE in PostgreSQL).
        self._db.execute(
            "INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)",
            (key, json.dumps({"id": row_id, "tag": tag.hex()})),
        )

    def _check_latest(self, table: str) -> None:
        """Every connection's newest ``table`` record is the one last written by the tool."""
        if not self._checking:
            return
        assert self._keys is not None  # noqa: S101
        authenticator = self._keys.record_authenticator("meta")
        noun = {"snapshots": "snapshot", "chain": "evidence chain record"}[table]
        with self._guard(f"checking the newest records of {table}"), self._consistent():
            actual = dict(
                self._db.execute(
                    f"SELECT connection, max(id) FROM {table} GROUP BY connection"  # noqa: S608 - constant
                ).fetchall()
            )
            remembered = self._db.execute(
                "SELECT key, value FROM meta WHERE key >= ? AND key < ?", (f"latest/{table}/", f"latest/{table}0")
            ).fetchall()
        expected: dict[str, int] = {}
        for key, value in remembered:
            connection = str(key)[len(f"latest/{table}/") :]
            try:
                record = json.loads(value)
                row_id, tag = int(record["id"]), bytes.fromhex(record["tag"])
            except (ValueError, TypeError, KeyError) as exc:
                raise self._tampered(f"record of the newest {noun} of connection {connection!r}") from exc
            if not authenticator.check(tag, _latest_bytes(str(key), row_id)):
                raise self._tampered(f"record of the newest {noun} of connection {connection!r}")
            expected[connection] = row_id
        for connection in sorted(set(actual) | set(expected)):
            have, want = actual.get(connection), expected.get(connection)
            if have != want:
                raise StoreTamperedError(
                    f"The newest {noun} of connection {connection!r} in {self.path} should be #{want}, "
                    f"but the database's newest is {'none' if have is None else f'#{have}'}: records were "
                    "deleted or added outside certcentral-auditor.",
                    hint=f"Treat the data as untrustworthy: restore {self.path} from a backup.",
                )

    def _tampered(self, what: str) -> StoreTamperedError:
        return StoreTamperedError(
            f"The stored {what} in {self.path} does not match its authentication tag: it was changed "
            "outside certcentral-auditor, or the database is damaged. Nothing was read from it.",
            hint=f"Treat the data as untrustworthy: restore {self.path} from a backup, or move it aside "
            "and run `auditor connect` and `auditor pull` to start again.",
        )
