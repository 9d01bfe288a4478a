"""The local SQLite database: connections, snapshots, raw pages, history, keys and chain heads.

One file, ``auditor.db``, in the data directory (created 0700; the file 0600). Every sqlite3
error is translated here into :class:`StoreError` (or :class:`StoreBusyError` when another
process holds the database), so callers never see a sqlite3 traceback. A snapshot is saved in
one transaction: all of its users and raw pages, or nothing.

Times are stored as fixed-width ISO-8601 UTC text (``2026-10-13T15:15:13.000000+00:00``), so
text order is time order, and returned as aware UTC datetimes.

The pull lock (:func:`pull_lock`) is a separate OS-level file lock per connection: SQLite's own
locking only covers single transactions, while a pull holds its lock for minutes; the export
lock (:func:`export_lock`) likewise serialises exports of one connection.

Authenticated records
---------------------
Opened with the master key (``Store.open(..., master_key=key)``), every record carries an
HMAC-SHA256 tag made with a key derived for its table (``MasterKey.record_authenticator``) and is
checked on every read; a mismatch is :class:`StoreTamperedError` (exit 6) naming the record
("snapshot #3 users"). The tag is computed over an explicit canonical encoding of the columns
listed in :data:`TAGGED_COLUMNS` (see :func:`canonical_record`): the table name, then for each
listed column in that order whose value is not NULL, its name and its typed value, each
length-prefixed. A snapshot carries three tags: its row (with the provenance), its users (every
``snapshot_users`` row in position order, then the count) and its raw pages (likewise). A column
added by a later migration is covered only once it is added to :data:`TAGGED_COLUMNS` (a test
fails until every column is either listed or named in :data:`UNTAGGED_COLUMNS`); NULLs are
left out of the encoding, so adding a nullable column keeps the existing tags valid.

A store written before tags existed is tagged once, when it is first opened with the master key
(:meth:`Store.tag_existing_records`; the command says so). The ``records_tagged`` meta row,
itself tagged, records that this happened: after it, a record without a tag is a changed record.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import os
import re
import secrets
import sqlite3
import stat
import struct
import zlib
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, Final, Protocol

import filelock

from auditor.atomic import make_private_dirs
from auditor.errors import ConfigurationError, CredentialsError, StoreBusyError, StoreError
from auditor.models import (
    Attestation,
    AttestationKind,
    CredentialInventory,
    Division,
    EndpointReconciliation,
    KeyOwner,
    Operator,
    PullProvenance,
    RawPage,
    Role,
    Snapshot,
    User,
    UserHistory,
    is_credential_endpoint,
    utc_now,
)

if TYPE_CHECKING:
    from auditor.credentials import RecordAuthenticator

__all__ = [
    "DB_NAME",
    "SCHEMA_VERSION",
    "TAGGED_COLUMNS",
    "UNTAGGED_COLUMNS",
    "CampaignRecord",
    "ChainHead",
    "ChainMovedError",
    "ConnectionRecord",
    "DecisionRecord",
    "ImportRecord",
    "RecordKeys",
    "SigningKeyRecord",
    "SnapshotSummary",
    "Store",
    "StoreTamperedError",
    "canonical_record",
    "export_lock",
    "pull_lock",
    "sealed_secrets_exist",
    "validate_connection_name",
]


class RecordKeys(Protocol):
    """What the store needs of ``auditor.credentials.MasterKey``: one HMAC key per table."""

    def record_authenticator(self, purpose: str) -> RecordAuthenticator: ...


class StoreTamperedError(StoreError):
    """A stored record no longer matches its authentication tag (exit 6)."""


class ChainMovedError(StoreError):
    """The chain head is no longer the one an export started from (exit 6)."""


class _AnyHead:
    """``advance_chain``'s default: no compare-and-swap, only the continuity rules."""


_ANY_HEAD: Final = _AnyHead()

DB_NAME: Final = "auditor.db"
_CONNECTION_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")

# -- records ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ConnectionRecord:
    """A stored CertCentral connection; the API key stays sealed (see ``credentials``)."""

    name: str
    base_url: str
    region: str | None
    encrypted_key: bytes = field(repr=False)
    key_fingerprint: str
    added_at: datetime
    last_test_at: datetime | None = None
    last_test_result: str | None = None


@dataclass(frozen=True, slots=True)
class SnapshotSummary:
    """One line of ``auditor snapshots``: counts without loading the users."""

    id: int
    connection: str
    taken_at: datetime
    users: int
    admins: int
    complete: bool


@dataclass(frozen=True, slots=True)
class SigningKeyRecord:
    """An Ed25519 evidence signing key; the private half stays sealed under the master key."""

    fingerprint: str
    public_pem: str
    created_at: datetime
    retired_at: datetime | None
    encrypted_private_key: bytes = field(repr=False)


@dataclass(frozen=True, slots=True)
class ChainHead:
    """The latest signed manifest of a connection's evidence chain (controls.md §3)."""

    chain_id: str
    sequence: int
    manifest_sha256: str
    signature: str
    key_fingerprint: str
    exported_at: datetime


@dataclass(frozen=True, slots=True)
class CampaignRecord:
    """An access review campaign bound to one snapshot (see ``auditor.review``)."""

    id: int
    connection: str
    snapshot_id: int
    raw_sha256: str
    scope: str
    due: datetime | None
    opened_at: datetime
    opened_by: str
    #: The worksheet rows as opened (JSON): what an import's data columns are checked against.
    worksheet: str = field(repr=False)
    state: str
    closed_at: datetime | None = None
    closed_by: str | None = None
    statement: str | None = None
    attestation_id: int | None = None
    import_count: int = 0


@dataclass(frozen=True, slots=True)
class ImportRecord:
    """One worksheet file as imported into a campaign, byte for byte."""

    id: int
    campaign_id: int
    file_name: str
    sha256: str
    content: bytes = field(repr=False)
    imported_by: str = ""
    imported_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class DecisionRecord:
    """One reviewer's decision on one user; a later one by the same reviewer supersedes it."""

    id: int
    campaign_id: int
    import_id: int
    user_id: int
    reviewer: str
    decision: str
    new_role: str
    justification: str
    ticket: str
    decided_at: datetime


# -- schema -----------------------------------------------------------------------------------

#: MIGRATIONS[n] takes a database from ``user_version`` n to n + 1. Append; never edit.
_MIGRATIONS: Final[tuple[tuple[str, ...], ...]] = (
    (
        """CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)""",
        """CREATE TABLE connections (
            name TEXT PRIMARY KEY,
            base_url TEXT NOT NULL,
            region TEXT,
            encrypted_key BLOB NOT NULL,
            key_fingerprint TEXT NOT NULL,
            added_at TEXT NOT NULL,
            last_test_at TEXT,
            last_test_result TEXT
        )""",
        # Snapshots outlive their connection's row: they are the retained evidence.
        """CREATE TABLE snapshots (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            connection TEXT NOT NULL,
            taken_at TEXT NOT NULL,
            complete INTEGER NOT NULL,
            details_fetched INTEGER NOT NULL,
            user_count INTEGER NOT NULL,
            admin_count INTEGER NOT NULL,
            provenance TEXT NOT NULL
        )""",
        """CREATE INDEX snapshots_by_connection ON snapshots (connection, taken_at, id)""",
        # Text columns hold str; a row whose text had lone surrogates (possible in JSON from the
        # API) stores those columns as UTF-8 'surrogatepass' BLOBs and sets text_escaped.
        """CREATE TABLE snapshot_users (
            snapshot_id INTEGER NOT NULL REFERENCES snapshots (id) ON DELETE CASCADE,
            position INTEGER NOT NULL,
            user_id INTEGER NOT NULL,
            email TEXT NOT NULL,
            username TEXT NOT NULL,
            first_name TEXT NOT NULL,
            last_name TEXT NOT NULL,
            status TEXT NOT NULL,
            roles TEXT NOT NULL,
            role_names TEXT NOT NULL,
            division TEXT,
            last_login TEXT,
            account_id INTEGER,
            job_title TEXT NOT NULL,
            telephone TEXT NOT NULL,
            user_type TEXT NOT NULL,
            is_service_user INTEGER NOT NULL,
            restricted INTEGER NOT NULL,
            assigned_divisions TEXT NOT NULL,
            is_saml_sso_only INTEGER,
            record_digest TEXT,
            text_escaped INTEGER NOT NULL,
            PRIMARY KEY (snapshot_id, position),
            UNIQUE (snapshot_id, user_id)
        )""",
        """CREATE TABLE raw_pages (
            snapshot_id INTEGER NOT NULL REFERENCES snapshots (id) ON DELETE CASCADE,
            position INTEGER NOT NULL,
            endpoint TEXT NOT NULL,
            status INTEGER NOT NULL,
            body_zlib BLOB NOT NULL,
            sha256 TEXT NOT NULL,
            received_at TEXT NOT NULL,
            PRIMARY KEY (snapshot_id, position)
        )""",
        """CREATE TABLE attestations (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            connection TEXT NOT NULL,
            kind TEXT NOT NULL,
            made_by TEXT NOT NULL,
            statement TEXT NOT NULL,
            made_at TEXT NOT NULL,
            expires TEXT NOT NULL
        )""",
        """CREATE INDEX attestations_by_connection ON attestations (connection, made_at)""",
        """CREATE TABLE signing_keys (
            fingerprint TEXT PRIMARY KEY,
            encrypted_private_key BLOB NOT NULL,
            public_pem TEXT NOT NULL,
            created_at TEXT NOT NULL,
            retired_at TEXT
        )""",
        """CREATE TABLE chain (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            connection TEXT NOT NULL,
            chain_id TEXT NOT NULL,
            sequence INTEGER NOT NULL,
            manifest_sha256 TEXT NOT NULL,
            signature TEXT NOT NULL,
            key_fingerprint TEXT NOT NULL,
            exported_at TEXT NOT NULL,
            UNIQUE (connection, chain_id, sequence)
        )""",
    ),
    # A review signs off one snapshot: which one, and that snapshot's raw-data digest then.
    # Reviews recorded before this step are bound to the latest complete snapshot at the time
    # they were made (what `attest review` now defaults to); their digest stays unknown (NULL).
    (
        """ALTER TABLE attestations ADD COLUMN snapshot_id INTEGER""",
        """ALTER TABLE attestations ADD COLUMN raw_sha256 TEXT""",
        """UPDATE attestations SET snapshot_id = (
            SELECT s.id FROM snapshots AS s
            WHERE s.connection = attestations.connection AND s.complete AND s.taken_at <= attestations.made_at
            ORDER BY s.taken_at DESC, s.id DESC LIMIT 1
        ) WHERE kind = 'review'""",
    ),
    # 2 -> 3: authentication tags (HMAC-SHA256 under keys derived from the master key).
    (
        """ALTER TABLE connections ADD COLUMN tag BLOB""",
        """ALTER TABLE snapshots ADD COLUMN tag BLOB""",
        """ALTER TABLE snapshots ADD COLUMN users_tag BLOB""",
        """ALTER TABLE snapshots ADD COLUMN pages_tag BLOB""",
        # The connection's snapshot before this one when it was saved: deleting a snapshot
        # breaks its successor's link, which its tag covers.
        """ALTER TABLE snapshots ADD COLUMN previous_id INTEGER""",
        """ALTER TABLE attestations ADD COLUMN tag BLOB""",
        """ALTER TABLE signing_keys ADD COLUMN tag BLOB""",
        """ALTER TABLE chain ADD COLUMN tag BLOB""",
    ),
    # Access review campaigns (issue 14): a campaign bound to one snapshot, the worksheets imported
    # into it (kept as imported, hashed) and every decision ever recorded (a later one by the same
    # reviewer supersedes the earlier, which stays).
    (
        """CREATE TABLE campaigns (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            connection TEXT NOT NULL,
            snapshot_id INTEGER NOT NULL,
            raw_sha256 TEXT NOT NULL,
            scope TEXT NOT NULL,
            due TEXT,
            opened_at TEXT NOT NULL,
            opened_by TEXT NOT NULL,
            worksheet TEXT NOT NULL,
            state TEXT NOT NULL,
            closed_at TEXT,
            closed_by TEXT,
            statement TEXT,
            attestation_id INTEGER,
            import_count INTEGER NOT NULL DEFAULT 0,
            tag BLOB
        )""",
        """CREATE INDEX campaigns_by_connection ON campaigns (connection, id)""",
        """CREATE TABLE campaign_imports (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            campaign_id INTEGER NOT NULL REFERENCES campaigns (id),
            file_name TEXT NOT NULL,
            sha256 TEXT NOT NULL,
            content BLOB NOT NULL,
            imported_by TEXT NOT NULL,
            imported_at TEXT NOT NULL,
            decision_count INTEGER NOT NULL,
            tag BLOB
        )""",
        """CREATE TABLE campaign_decisions (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            campaign_id INTEGER NOT NULL REFERENCES campaigns (id),
            import_id INTEGER NOT NULL REFERENCES campaign_imports (id),
            user_id INTEGER NOT NULL,
            reviewer TEXT NOT NULL,
            decision TEXT NOT NULL,
            new_role TEXT NOT NULL,
            justification TEXT NOT NULL,
            ticket TEXT NOT NULL,
            decided_at TEXT NOT NULL,
            tag BLOB
        )""",
        """CREATE INDEX campaign_decisions_by_campaign ON campaign_decisions (campaign_id, user_id, id)""",
    ),
)
#: The schema version this code writes (``PRAGMA user_version``).
SCHEMA_VERSION: Final = len(_MIGRATIONS)

_USER_COLUMNS: Final = (
    "user_id, email, username, first_name, last_name, status, roles, role_names, division,"
    " last_login, account_id, job_title, telephone, user_type, is_service_user, restricted,"
    " assigned_divisions, is_saml_sso_only, record_digest, text_escaped"
)
# Built from constants only, never from input.
_INSERT_USER: Final = (
    f"INSERT INTO snapshot_users (snapshot_id, position, {_USER_COLUMNS})"  # noqa: S608
    f" VALUES ({', '.join('?' * 22)})"
)
_SELECT_CONNECTIONS: Final = (
    "SELECT name, base_url, region, encrypted_key, key_fingerprint, added_at, last_test_at,"
    " last_test_result, tag FROM connections"
)
_SELECT_SNAPSHOT_HEADS: Final = (
    "SELECT id, connection, taken_at, complete, details_fetched, user_count, admin_count, provenance,"
    " tag, users_tag, pages_tag, previous_id FROM snapshots"
)
_SELECT_ATTESTATIONS: Final = (
    "SELECT id, connection, kind, made_by, statement, made_at, expires, snapshot_id, raw_sha256, tag"
    " FROM attestations"
)
_SELECT_SIGNING_KEYS: Final = (
    "SELECT fingerprint, encrypted_private_key, public_pem, created_at, retired_at, tag FROM signing_keys"
)
_SELECT_CHAIN: Final = (
    "SELECT id, connection, chain_id, sequence, manifest_sha256, signature, key_fingerprint, exported_at,"
    " tag FROM chain"
)
_SELECT_USER_ROWS: Final = (
    f"SELECT snapshot_id, position, {_USER_COLUMNS} FROM snapshot_users"  # noqa: S608
    " WHERE snapshot_id = ? ORDER BY position"
)
_SELECT_PAGE_ROWS: Final = (
    "SELECT snapshot_id, position, endpoint, status, body_zlib, sha256, received_at FROM raw_pages"
    " WHERE snapshot_id = ? ORDER BY position"
)
# Positions of the text columns in a user row (after snapshot_id and position are dropped).
_TEXT_FIELDS: Final = frozenset({1, 2, 3, 4, 5, 7, 11, 12, 13})

#: The columns each record's tag covers, in encoding order. A migration that adds a column adds
#: it here (or to UNTAGGED_COLUMNS, saying why) deliberately; tests/test_store_auth.py checks.
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
}
#: Columns no tag covers: the tags themselves, and the meta table (its one authenticated row,
#: ``records_tagged``, carries its tag inside its value).
UNTAGGED_COLUMNS: Final[Mapping[str, frozenset[str]]] = {
    "connections": frozenset({"tag"}),
    "snapshots": frozenset({"tag", "users_tag", "pages_tag"}),
    "snapshot_users": frozenset(),
    "raw_pages": frozenset(),
    "attestations": frozenset({"tag"}),
    "signing_keys": frozenset({"tag"}),
    "chain": frozenset({"tag"}),
    "campaigns": frozenset({"tag"}),
    "campaign_imports": frozenset({"tag"}),
    "campaign_decisions": frozenset({"tag"}),
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
    parts = [head]
    append = parts.append
    for prefix, value in zip(prefixes, values, strict=True):
        if value is None:
            continue
        kind = type(value)
        if kind is str:
            data = value.encode("utf-8", "surrogatepass")  # type: ignore[attr-defined]
            append(prefix + b"s" + len(data).to_bytes(8, "big") + data)
        elif kind is int or kind is bool:
            append(prefix + b"i" + int(value).to_bytes(8, "big", signed=True))  # type: ignore[call-overload]
        elif isinstance(value, bytes | bytearray | memoryview):
            data = bytes(value)
            append(prefix + b"b" + len(data).to_bytes(8, "big") + data)
        elif isinstance(value, float):
            append(prefix + b"f" + struct.pack(">d", value))
        elif isinstance(value, str):  # a str subclass
            data = str(value).encode("utf-8", "surrogatepass")
            append(prefix + b"s" + len(data).to_bytes(8, "big") + data)
        elif isinstance(value, int):
            append(prefix + b"i" + int(value).to_bytes(8, "big", signed=True))
        else:  # pragma: no cover - SQLite returns only the types above
            raise TypeError(f"cannot encode {type(value).__name__} for a column of {table}")
    return b"".join(parts)


def _length_prefixed(name: str) -> bytes:
    data = name.encode("ascii")
    return len(data).to_bytes(2, "big") + data


_PREFIXES: Final = {
    table: (_length_prefixed(table), tuple(_length_prefixed(column) for column in columns))
    for table, columns in TAGGED_COLUMNS.items()
}


def _latest_bytes(key: str, row_id: int) -> bytes:
    return key.encode("utf-8", "surrogatepass") + b"\x00" + str(row_id).encode()


def _framed(record: bytes) -> bytes:
    return len(record).to_bytes(8, "big") + record


def _count_frame(count: int) -> bytes:
    return b"\x00count" + count.to_bytes(8, "big")

# -- helpers ----------------------------------------------------------------------------------


def validate_connection_name(name: str) -> str:
    """Return ``name`` if it can name a connection (it becomes part of lock-file names)."""
    if not isinstance(name, str) or not _CONNECTION_NAME.fullmatch(name):
        raise ConfigurationError(
            f"{name!r} cannot name a connection.",
            hint="Use 1 to 64 letters, digits, '.', '_' or '-', starting with a letter or digit "
            "(for example 'prod' or 'eu-account').",
        )
    return name


def _time(value: datetime) -> str:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"naive datetime {value!r}: the store takes aware UTC datetimes")
    return value.astimezone(UTC).isoformat(timespec="microseconds")


def _opt_time(value: datetime | None) -> str | None:
    return None if value is None else _time(value)


def _parse_time(text: str) -> datetime:
    try:
        parsed = datetime.fromisoformat(text)
    except (TypeError, ValueError) as exc:
        raise StoreError(f"The database holds an unreadable timestamp {text!r}.") from exc
    if parsed.tzinfo is None:
        return parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def _opt_parse_time(text: str | None) -> datetime | None:
    return None if text is None else _parse_time(text)


def _roles_json(roles: tuple[Role, ...]) -> str:
    return json.dumps([[role.id, role.name] for role in roles], separators=(",", ":"))


def _division_list(division: Division) -> list[object]:
    return [division.id, division.name, division.parent_id]


def _escape_text(value: str) -> str | bytes:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return value.encode("utf-8", "surrogatepass")
    return value


def _unescape_text(value: str | bytes) -> str:
    return value.decode("utf-8", "surrogatepass") if isinstance(value, bytes) else value


def _provenance_json(provenance: PullProvenance) -> str:
    return json.dumps(
        {
            "connection": provenance.connection,
            "base_url": provenance.base_url,
            "account_id": provenance.account_id,
            "key_fingerprint": provenance.key_fingerprint,
            "tool_version": provenance.tool_version,
            "started_at": _time(provenance.started_at),
            "finished_at": _time(provenance.finished_at),
            "requests": provenance.requests,
            "pages": provenance.pages,
            "retries": provenance.retries,
            "expected_total": provenance.expected_total,
            "received": provenance.received,
            "complete": provenance.complete,
            "notes": list(provenance.notes),
            "page_digests": [list(pair) for pair in provenance.page_digests],
            "details_fetched": provenance.details_fetched,
            "format_version": provenance.format_version,
            "operator": _operator_json(provenance.operator),
            "key_owner": _key_owner_json(provenance.key_owner),
            "endpoints": [
                {
                    "path": item.path,
                    "announced": item.announced,
                    "received": item.received,
                    "pages": item.pages,
                    "complete": item.complete,
                    "requests": [list(pair) for pair in item.requests],
                    "note": item.note,
                }
                for item in provenance.endpoints
            ],
            "not_evaluable": list(provenance.not_evaluable),
        },
        sort_keys=True,
    )


def _operator_json(operator: Operator | None) -> dict[str, str] | None:
    if operator is None:
        return None
    return {
        "account": operator.account,
        "host": operator.host,
        "command": operator.command,
        "tool_version": operator.tool_version,
        "python_version": operator.python_version,
    }


def _key_owner_json(owner: KeyOwner | None) -> dict[str, Any] | None:
    if owner is None:
        return None
    return {
        "user_id": owner.user_id,
        "name": owner.name,
        "email": owner.email,
        "role": owner.role,
        "restricted": owner.restricted,
        "divisions": list(owner.divisions),
    }


def _provenance_from_json(text: str) -> PullProvenance:
    data = json.loads(text)
    return PullProvenance(
        connection=data["connection"],
        base_url=data["base_url"],
        account_id=data["account_id"],
        key_fingerprint=data["key_fingerprint"],
        tool_version=data["tool_version"],
        started_at=_parse_time(data["started_at"]),
        finished_at=_parse_time(data["finished_at"]),
        requests=data["requests"],
        pages=data["pages"],
        retries=data["retries"],
        expected_total=data["expected_total"],
        received=data["received"],
        complete=data["complete"],
        notes=tuple(data["notes"]),
        page_digests=tuple((endpoint, digest) for endpoint, digest in data["page_digests"]),
        details_fetched=data["details_fetched"],
        # Snapshots stored before format 2 carry none of these: they decode as "not recorded".
        format_version=data.get("format_version", 1),
        operator=_operator_from_json(data["operator"]) if data.get("operator") else None,
        key_owner=_key_owner_from_json(data["key_owner"]) if data.get("key_owner") else None,
        endpoints=tuple(
            EndpointReconciliation(
                path=item["path"],
                announced=item["announced"],
                received=item["received"],
                pages=item["pages"],
                complete=item["complete"],
                requests=tuple((endpoint, digest) for endpoint, digest in item["requests"]),
                note=item["note"],
            )
            for item in data.get("endpoints") or ()
        ),
        not_evaluable=tuple(data.get("not_evaluable", ())),  # absent in snapshots stored before 0.2
    )


def _operator_from_json(data: Mapping[str, Any]) -> Operator:
    return Operator(
        account=data["account"],
        host=data["host"],
        command=data["command"],
        tool_version=data["tool_version"],
        python_version=data["python_version"],
    )


def _key_owner_from_json(data: Mapping[str, Any]) -> KeyOwner:
    return KeyOwner(
        user_id=data["user_id"],
        name=data["name"],
        email=data["email"],
        role=data["role"],
        restricted=data["restricted"],
        divisions=tuple(data["divisions"]),
    )


class _Decoder:
    """Turns user rows back into ``User`` values, sharing equal roles and divisions.

    Most users of an account share a handful of role sets and divisions; decoding each JSON
    text once keeps loading 100k users fast and the snapshot small in memory.
    """

    def __init__(self) -> None:
        self.roles: dict[str, tuple[Role, ...]] = {}
        self.divisions: dict[str | None, Division | None] = {None: None}
        self.assigned: dict[str, tuple[Division, ...]] = {}
        self.times: dict[str | None, datetime | None] = {None: None}

    def user(self, row: Sequence[Any]) -> User:
        if row[19]:
            row = [_unescape_text(value) if i in _TEXT_FIELDS else value for i, value in enumerate(row)]
        roles_text, division_text, login_text, assigned_text = row[6], row[8], row[9], row[16]
        roles = self.roles.get(roles_text)
        if roles is None:
            roles = self.roles[roles_text] = tuple(Role(id=i, name=n) for i, n in json.loads(roles_text))
        try:
            division = self.divisions[division_text]
        except KeyError:
            division = self.divisions[division_text] = Division(*json.loads(division_text))
        assigned = self.assigned.get(assigned_text)
        if assigned is None:
            assigned = self.assigned[assigned_text] = tuple(Division(*item) for item in json.loads(assigned_text))
        try:
            last_login = self.times[login_text]
        except KeyError:
            last_login = self.times[login_text] = _parse_time(login_text)
        saml = row[17]
        return User(
            id=row[0],
            email=row[1],
            username=row[2],
            first_name=row[3],
            last_name=row[4],
            status=row[5],
            roles=roles,
            division=division,
            last_login=last_login,
            account_id=row[10],
            job_title=row[11],
            telephone=row[12],
            user_type=row[13],
            is_service_user=bool(row[14]),
            restricted=bool(row[15]),
            assigned_divisions=assigned,
            is_saml_sso_only=None if saml is None else bool(saml),
        )


def _user_rows(
    snapshot_id: int, users: Sequence[User], digests: Mapping[int, str], *, escape: bool
) -> Iterator[Sequence[object]]:
    """Rows for ``snapshot_users``: snapshot id, position, then the ``_USER_COLUMNS``."""
    for position, user in enumerate(users):
        row: list[object] = [
            user.id,
            user.email,
            user.username,
            user.first_name,
            user.last_name,
            user.status,
            _roles_json(user.roles),
            user.role_names,
            None if user.division is None else json.dumps(_division_list(user.division)),
            _opt_time(user.last_login),
            user.account_id,
            user.job_title,
            user.telephone,
            user.user_type,
            int(user.is_service_user),
            int(user.restricted),
            json.dumps([_division_list(d) for d in user.assigned_divisions]),
            None if user.is_saml_sso_only is None else int(user.is_saml_sso_only),
            digests.get(user.id),
            0,
        ]
        if escape:
            for index in _TEXT_FIELDS:
                value = row[index]
                if isinstance(value, str):
                    row[index] = _escape_text(value)
                    if isinstance(row[index], bytes):
                        row[19] = 1
        yield (snapshot_id, position, *row)


def _page_rows(snapshot_id: int, pages: Sequence[RawPage]) -> Iterator[tuple[object, ...]]:
    for position, page in enumerate(pages):
        digest = hashlib.sha256(page.body).hexdigest()
        if digest != page.sha256:
            raise StoreError(
                f"Raw page {position} ({page.endpoint}) does not match its recorded SHA-256 "
                f"({page.sha256}, body hashes to {digest}); the snapshot was not saved.",
                hint="This is a bug in the pull; please report it with the output of `auditor -v pull`.",
            )
        yield (
            snapshot_id,
            position,
            page.endpoint,
            page.status,
            zlib.compress(page.body, 6),
            digest,
            _time(page.received_at),
        )


# -- creating and checking the file -------------------------------------------------------------


def _apply_migrations(db: sqlite3.Connection, version: int, *, clock: Callable[[], datetime]) -> None:
    """Run the migrations from ``version`` to SCHEMA_VERSION (inside the caller's transaction)."""
    for target in range(version + 1, SCHEMA_VERSION + 1):
        for statement in _MIGRATIONS[target - 1]:
            db.execute(statement)
        db.execute(
            "INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)",
            (f"migrated_to_{target}", _time(clock())),
        )
    db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")


_Schema = frozenset[tuple[str, str, tuple[str, ...]]]


def _schema_of(db: sqlite3.Connection) -> _Schema:
    """Tables and indexes (with their columns) other than SQLite's own."""
    objects = db.execute(
        "SELECT type, name FROM sqlite_master WHERE type IN ('table', 'index', 'view', 'trigger')"
        " AND name NOT LIKE 'sqlite_%'"
    ).fetchall()
    found = set()
    for kind, name in objects:
        columns: tuple[str, ...] = ()
        if kind == "table":
            columns = tuple(row[1] for row in db.execute("SELECT * FROM pragma_table_info(?)", (name,)))
        found.add((str(kind), str(name), columns))
    return frozenset(found)


@functools.cache
def _expected_schema(version: int) -> _Schema:
    """The schema a store at ``version`` has: the migrations applied to an empty database."""
    with contextlib.closing(sqlite3.connect(":memory:", isolation_level=None)) as db:
        for statements in _MIGRATIONS[:version]:
            for statement in statements:
                db.execute(statement)
        return _schema_of(db)


def _newer(path: Path, version: int) -> StoreError:
    return StoreError(
        f"The database {path} was created by a newer version of certcentral-auditor "
        f"(schema {version}; this version understands up to {SCHEMA_VERSION}). "
        "Nothing was changed.",
        hint="Upgrade certcentral-auditor, or set AUDITOR_HOME to another directory.",
    )


def _preflight(path: Path, *, busy_timeout_ms: int) -> bool:
    """Check an existing database through a read-only connection; False when there is none.

    Everything that would make the store refuse the file is found here, before a read-write
    connection could change a byte of it (switch it to WAL, migrate it): a non-regular file, an
    empty one (0 bytes: damaged, not new), a damaged one, a newer schema, a foreign database.
    """
    try:
        info = path.stat()
    except FileNotFoundError:
        return False
    except OSError as exc:
        raise StoreError(f"The database {path} cannot be read: {exc.strerror}.") from exc
    if not stat.S_ISREG(info.st_mode):
        raise _corrupt(path, "it is not a regular file")
    if info.st_size == 0:
        raise _corrupt(path, "the file is empty (0 bytes), so whatever it held is gone")
    # With no -wal file, the whole database is in the main file: read it as immutable, which
    # takes no locks and creates no -shm or -wal file (a read-only connection to a WAL-mode
    # file would leave both behind). A bad verdict is looked at again before the file is called
    # damaged: through an ordinary read-only connection if a writer has started meanwhile
    # (its -wal file appeared), else as immutable once more.
    wal = Path(f"{path}-wal")
    immutable = not wal.exists()
    version, problems, schema = _inspect(path, immutable=immutable, busy_timeout_ms=busy_timeout_ms)
    if immutable and (problems != ["ok"] or schema != _expected_schema(min(max(version, 0), SCHEMA_VERSION))):
        again = not wal.exists()
        version, problems, schema = _inspect(path, immutable=again, busy_timeout_ms=busy_timeout_ms)
    if problems != ["ok"]:
        raise _corrupt(path, "; ".join(map(str, problems[:3])))
    if version > SCHEMA_VERSION:
        raise _newer(path, version)
    if version < 0 or (schema != _expected_schema(version) and not (version == 0 and not schema)):
        tables = sorted(name for kind, name, _ in schema if kind == "table")
        raise _corrupt(
            path,
            f"it is not an auditor database: schema version {version} with tables "
            f"{', '.join(tables) if tables else '(none)'}",
        )
    return True


def _inspect(path: Path, *, immutable: bool, busy_timeout_ms: int) -> tuple[int, list[object], _Schema]:
    """``user_version``, ``quick_check`` and the schema, read without writing to the file."""
    query = "?mode=ro&immutable=1" if immutable else "?mode=ro"
    try:
        db = sqlite3.connect(path.as_uri() + query, uri=True, isolation_level=None)
    except sqlite3.Error as exc:
        raise _translate(exc, path, "opening the database") from exc
    try:
        db.execute(f"PRAGMA busy_timeout = {busy_timeout_ms:d}")
        version = int(db.execute("PRAGMA user_version").fetchone()[0])
        problems = [row[0] for row in db.execute("PRAGMA quick_check")]
        schema = _schema_of(db) if problems == ["ok"] else frozenset()
    except sqlite3.Error as exc:
        raise _translate(exc, path, "checking the database") from exc
    finally:
        db.close()
    return version, problems, schema


def sealed_secrets_exist(data_dir: Path) -> bool:
    """Whether ``<data_dir>/auditor.db`` holds API or signing keys sealed under a master key.

    Read through a read-only connection after the same checks as :meth:`Store.open`, so a
    missing master key can be told apart from a first run without changing anything.
    """
    path = Path(data_dir) / DB_NAME
    if not _preflight(path, busy_timeout_ms=5000):
        return False
    try:
        with contextlib.closing(sqlite3.connect(path.as_uri() + "?mode=ro", uri=True, isolation_level=None)) as db:
            db.execute("PRAGMA busy_timeout = 5000")
            found = db.execute(
                "SELECT EXISTS (SELECT 1 FROM connections) OR EXISTS (SELECT 1 FROM signing_keys)"
            ).fetchone()[0]
    except sqlite3.OperationalError as exc:
        if "no such table" in str(exc):
            return False  # an empty database (schema 0)
        raise _translate(exc, path, "looking for sealed keys") from exc
    except sqlite3.Error as exc:
        raise _translate(exc, path, "looking for sealed keys") from exc
    return bool(found)


def _create_database(path: Path, *, clock: Callable[[], datetime]) -> None:
    """Build a new, complete database under a temporary name and link it into place.

    ``link`` fails when the name exists, so of two processes creating the store at once one
    wins and the other uses its file; a crash leaves only the hidden temporary file, never an
    empty ``auditor.db`` (which the next open would have to call damaged).
    """
    temp = path.with_name(f".{path.name}.{secrets.token_hex(8)}.tmp")
    try:
        # Created by us, so it is 0600 from the start; SQLite gives -wal and -shm the same mode.
        os.close(os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
        try:
            with contextlib.closing(sqlite3.connect(temp, isolation_level=None)) as db:
                db.execute("PRAGMA journal_mode = WAL")
                db.execute("BEGIN IMMEDIATE")
                _apply_migrations(db, 0, clock=clock)
                db.execute("COMMIT")
            with contextlib.suppress(FileExistsError):
                os.link(temp, path)
        finally:
            for leftover in (temp, Path(f"{temp}-wal"), Path(f"{temp}-shm")):
                with contextlib.suppress(OSError):
                    leftover.unlink()
    except sqlite3.Error as exc:
        raise _translate(exc, path, "creating the database") from exc
    except OSError as exc:
        raise StoreError(
            f"The database {path} cannot be created: {exc.strerror}.",
            hint="Check the permissions of the data directory, or set AUDITOR_HOME to another directory.",
        ) from exc


# -- the store --------------------------------------------------------------------------------


class Store:
    """The open database of one data directory. Use :meth:`open`; close it (or use ``with``)."""

    def __init__(self, connection: sqlite3.Connection, path: Path, *, clock: Callable[[], datetime]) -> None:
        self._db = connection
        self._clock = clock
        #: The database file.
        self.path = path
        # A stored snapshot never changes, so one Store loads each at most once: a report asks for
        # the snapshot, its predecessor and then every snapshot for the trend.
        self._loaded: dict[int, Snapshot] = {}
        self._users_checked: set[int] = set()
        self._keys: RecordKeys | None = None
        # Tags are checked once the store has been tagged (the records_tagged meta row).
        self._checking = False
        # A tagged store opened without the master key can be read, not changed: a record
        # written without its tag would read as tampered from then on.
        self._read_only = False

    # -- opening ------------------------------------------------------------------------------

    @classmethod
    def open(
        cls,
        data_dir: Path,
        *,
        master_key: RecordKeys | None = None,
        clock: Callable[[], datetime] = utc_now,
        busy_timeout: float = 5.0,
    ) -> Store:
        """Open (creating if needed) ``<data_dir>/auditor.db``, check it, and migrate it forward.

        A damaged file, an empty (0-byte) one, a foreign database or one written by a newer
        version is refused before anything is written to it: it is checked through a read-only
        connection first. A new database is built under a temporary name and linked into place
        complete. ``busy_timeout`` is how many seconds to wait for another process's write to
        finish before StoreBusyError.

        With ``master_key`` every record read is checked against its tag and every record
        written is tagged (see the module docstring); a store not yet tagged reports it in
        :attr:`untagged` and is tagged by :meth:`tag_existing_records`. Without it (tests and
        inspection only: every command passes the key) tags are neither checked nor written,
        and a store that has been tagged cannot be changed.
        """
        data_dir = Path(data_dir)
        path = data_dir / DB_NAME
        try:
            make_private_dirs(data_dir)  # 0700 from the first command, parents included
        except OSError as exc:
            raise StoreError(
                f"The data directory {data_dir} cannot be used: {exc.strerror}.",
                hint="Check its permissions, or set AUDITOR_HOME to another directory.",
            ) from exc
        timeout_ms = max(0, int(busy_timeout * 1000))
        if not _preflight(path, busy_timeout_ms=timeout_ms):
            _create_database(path, clock=clock)
        try:
            db = sqlite3.connect(path.as_uri() + "?mode=rw", uri=True, isolation_level=None)
        except sqlite3.Error as exc:
            raise _translate(exc, path, "opening the database") from exc
        store = cls(db, path, clock=clock)
        try:
            store._prepare(busy_timeout_ms=timeout_ms)
            if master_key is not None:
                store._authenticate(master_key)
            else:
                with store._guard("checking the database's authentication"):
                    store._read_only = (
                        db.execute("SELECT 1 FROM meta WHERE key = ?", (_TAGGED_MARKER,)).fetchone() is not None
                    )
        except BaseException:
            db.close()
            raise
        return store

    def _prepare(self, *, busy_timeout_ms: int) -> None:
        db = self._db
        with self._guard("checking the database"):
            db.execute(f"PRAGMA busy_timeout = {busy_timeout_ms:d}")
            version = db.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:  # changed since the read-only check: still refuse
            raise _newer(self.path, version)
        with self._guard("preparing the database"):
            db.execute("PRAGMA foreign_keys = ON")
            mode = db.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            if str(mode).lower() != "wal":
                raise StoreError(f"The database {self.path} cannot use write-ahead logging ({mode}).")
            self._migrate()

    def _migrate(self) -> None:
        db = self._db
        if db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION:
            return
        with self._transaction():
            # Re-read inside the write lock: another process may have migrated meanwhile.
            version = db.execute("PRAGMA user_version").fetchone()[0]
            _apply_migrations(db, version, clock=self._clock)

    # -- authentication -----------------------------------------------------------------------

    @property
    def untagged(self) -> bool:
        """Opened with the master key, but its records were never tagged (a store from 0.1)."""
        return self._keys is not None and not self._checking

    def _authenticate(self, keys: RecordKeys) -> None:
        self._keys = keys
        with self._guard("checking the database's authentication"):
            row = self._db.execute("SELECT value FROM meta WHERE key = ?", (_TAGGED_MARKER,)).fetchone()
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
        count = 0
        for row in rows:
            mac.update(_framed(_encode(table, row)))
            count += 1
        mac.update(_count_frame(count))
        return mac.finalize()

    def _users_tag(self, snapshot_id: int) -> bytes | None:
        return self._stream_tag("snapshot_users", self._db.execute(_SELECT_USER_ROWS, (snapshot_id,)))

    def _pages_tag(self, snapshot_id: int) -> bytes | None:
        return self._stream_tag("raw_pages", self._db.execute(_SELECT_PAGE_ROWS, (snapshot_id,)))

    def _check_stream(self, table: str, rows: Iterable[Sequence[object]], tag: object, what: str) -> None:
        if not self._checking:
            return
        expected = self._stream_tag(table, rows)
        if expected is None or not isinstance(tag, bytes) or not secrets.compare_digest(expected, tag):
            raise self._tampered(what)

    def _check_users(self, snapshot_id: int) -> None:
        """Check a snapshot's users against its tag without decoding them (history, details)."""
        if not self._checking or snapshot_id in self._users_checked:
            return
        with self._guard(f"reading snapshot {snapshot_id}"):
            head = self._db.execute("SELECT users_tag FROM snapshots WHERE id = ?", (snapshot_id,)).fetchone()
            if head is None:
                raise _unknown_snapshot(snapshot_id)
            rows = self._db.execute(_SELECT_USER_ROWS, (snapshot_id,))
            self._check_stream("snapshot_users", rows, head[0], f"snapshot #{snapshot_id} users")
        self._users_checked.add(snapshot_id)

    # The newest snapshot and chain record of each connection are remembered in tagged meta rows
    # (``latest/<table>/<connection>``): deleting the newest record, which no later record links
    # to, is then detected too.

    def _set_latest(self, table: str, connection: str, row_id: int) -> None:
        if self._keys is None:
            return
        key = f"latest/{table}/{connection}"
        tag = self._keys.record_authenticator("meta").tag(_latest_bytes(key, row_id))
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

    def close(self) -> None:
        """Close the database; safe to call twice."""
        self._db.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Store({str(self.path)!r})"

    # -- plumbing -----------------------------------------------------------------------------

    @contextlib.contextmanager
    def _guard(self, doing: str) -> Iterator[None]:
        try:
            yield
        except sqlite3.Error as exc:
            raise _translate(exc, self.path, doing) from exc
        except OverflowError as exc:  # an integer beyond SQLite's 64 bits
            raise StoreError(
                f"A value too large for the database turned up while {doing}; nothing was stored.",
                hint="This points to unexpected data from CertCentral; run with -v and report it.",
            ) from exc

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[None]:
        # BEGIN IMMEDIATE takes the write lock up front, so a read-then-write (the chain head
        # check) cannot interleave with another process's.
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            if self._db.in_transaction:
                self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    @contextlib.contextmanager
    def _consistent(self) -> Iterator[None]:
        """Several reads that must see one state of the database (a WAL read transaction)."""
        if self._db.in_transaction:
            yield
            return
        self._db.execute("BEGIN")
        try:
            yield
        finally:
            if self._db.in_transaction:
                self._db.execute("COMMIT")

    @contextlib.contextmanager
    def _write(self, doing: str) -> Iterator[None]:
        if self._read_only:
            raise StoreError(
                f"The database {self.path} authenticates its records, and it was opened without the master key: "
                f"it can be read but not changed ({doing}).",
                hint="Open it with the master key (Store.open(..., master_key=...)); every auditor command does.",
            )
        with self._guard(doing), self._transaction():
            yield

    def _query(self, sql: str, params: Iterable[object] = (), *, doing: str) -> list[Any]:
        with self._guard(doing):
            return self._db.execute(sql, tuple(params)).fetchall()

    # -- connections --------------------------------------------------------------------------

    def save_connection(
        self,
        name: str,
        *,
        base_url: str,
        region: str | None,
        encrypted_key: bytes,
        key_fingerprint: str,
        added_at: datetime,
    ) -> None:
        """Store a connection, replacing one of the same name (and its last test result)."""
        validate_connection_name(name)
        record: dict[str, object] = {
            "name": name,
            "base_url": base_url,
            "region": region,
            "encrypted_key": bytes(encrypted_key),
            "key_fingerprint": key_fingerprint,
            "added_at": _time(added_at),
            "last_test_at": None,
            "last_test_result": None,
        }
        with self._write(f"saving connection {name!r}"):
            self._db.execute(
                "INSERT OR REPLACE INTO connections (name, base_url, region, encrypted_key,"
                " key_fingerprint, added_at, last_test_at, last_test_result, tag)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (*record.values(), self._tag("connections", record)),
            )

    def get_connection(self, name: str) -> ConnectionRecord:
        """The named connection; ConfigurationError naming the known ones when it is unknown."""
        rows = self._query(
            _SELECT_CONNECTIONS + " WHERE name = ?",
            (name,),
            doing=f"reading connection {name!r}",
        )
        if not rows:
            with self._guard("listing connections"):
                raise self._unknown_connection(name)
        return self._connection(rows[0])

    def list_connections(self) -> list[ConnectionRecord]:
        """Every stored connection, by name."""
        rows = self._query(_SELECT_CONNECTIONS + " ORDER BY name", doing="listing connections")
        return [self._connection(row) for row in rows]

    def _connection(self, row: Sequence[Any]) -> ConnectionRecord:
        self._check_row("connections", row, f"connection {row[0]!r}")
        return _connection(row)

    def record_connection_test(self, name: str, *, at: datetime, result: str) -> None:
        """Remember when the connection was last tested and how it went."""
        tested_at = _time(at)
        with self._write(f"recording the test of connection {name!r}"):
            row = self._db.execute(_SELECT_CONNECTIONS + " WHERE name = ?", (name,)).fetchone()
            if row is None:
                raise self._unknown_connection(name)
            self._connection(row)
            record = dict(zip(TAGGED_COLUMNS["connections"], row[:-1], strict=True))
            record.update(last_test_at=tested_at, last_test_result=result)
            self._db.execute(
                "UPDATE connections SET last_test_at = ?, last_test_result = ?, tag = ? WHERE name = ?",
                (record["last_test_at"], result, self._tag("connections", record), name),
            )

    def delete_connection(self, name: str) -> None:
        """Forget a connection and its sealed key. Its snapshots and evidence history are kept."""
        with self._write(f"deleting connection {name!r}"):
            cursor = self._db.execute("DELETE FROM connections WHERE name = ?", (name,))
            if cursor.rowcount == 0:
                raise self._unknown_connection(name)

    def _unknown_connection(self, name: str) -> ConfigurationError:
        names = [row[0] for row in self._db.execute("SELECT name FROM connections ORDER BY name")]
        if not names:
            return ConfigurationError(
                f"There is no connection named {name!r}: no connection has been set up yet.",
                hint=f"Run `auditor connect --connection {name}` to add one.",
            )
        return ConfigurationError(
            f"There is no connection named {name!r}. Known connections: {', '.join(names)}.",
            hint=f"Pick one of those with --connection, or run `auditor connect --connection {name}` to add it.",
        )

    # -- snapshots ----------------------------------------------------------------------------

    def save_snapshot(
        self,
        *,
        provenance: PullProvenance,
        users: Sequence[User],
        raw_pages: Sequence[RawPage],
        record_digests: Mapping[int, str] | None = None,
    ) -> Snapshot:
        """Store one pull in a single transaction and return it with its new id.

        Either every user and raw page is stored, or (on any error) nothing is.
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
        self._db.executemany(_INSERT_USER, user_rows)
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
            rows = self._db.execute(_SELECT_USER_ROWS, (snapshot_id,)).fetchall()
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
        pages = []
        for position, endpoint, status, compressed, digest, received_at in rows:
            if not is_credential_endpoint(endpoint):
                continue
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
            pages.append(RawPage(endpoint, status, body, digest, _parse_time(received_at)))
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
        pages = []
        for _snapshot, position, endpoint, status, compressed, digest, received_at in rows:
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
            pages.append(
                RawPage(
                    endpoint=endpoint,
                    status=status,
                    body=body,
                    sha256=digest,
                    received_at=_parse_time(received_at),
                )
            )
        return tuple(pages)

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

    # -- history ------------------------------------------------------------------------------

    def user_history(self, connection: str, *, until: Snapshot | None = None) -> dict[int, UserHistory]:
        """Each user's first and last sighting and role changes, over every stored snapshot.

        With ``until``, only snapshots up to that one (by time, then id) count: the history as it
        stood when that snapshot was taken, so later pulls cannot change what it shows.
        """
        where = " WHERE s.connection = ?"
        params: tuple[object, ...] = (connection,)
        if until is not None:
            cutoff = _time(until.taken_at)
            where += " AND (s.taken_at < ? OR (s.taken_at = ? AND s.id <= ?))"
            params = (connection, cutoff, cutoff, until.id)
        with self._guard(f"reading the user history of {connection!r}"), self._consistent():
            # One read transaction: a snapshot saved meanwhile is neither checked nor counted.
            if self._checking:
                ids = self._db.execute("SELECT s.id FROM snapshots AS s" + where, params).fetchall()  # noqa: S608
                for (snapshot_id,) in ids:
                    self._check_users(snapshot_id)
            rows = self._db.execute(
                "SELECT u.user_id, s.taken_at, u.role_names FROM snapshots AS s"  # noqa: S608
                " JOIN snapshot_users AS u ON u.snapshot_id = s.id" + where + " ORDER BY s.taken_at, s.id",
                params,
            ).fetchall()
        times: dict[str, datetime] = {}
        first: dict[int, datetime] = {}
        last: dict[int, datetime] = {}
        current: dict[int, str] = {}
        changes: dict[int, list[tuple[datetime, str]]] = {}
        for user_id, taken_text, stored_names in rows:
            role_names = _unescape_text(stored_names)
            taken = times.get(taken_text)
            if taken is None:
                taken = times[taken_text] = _parse_time(taken_text)
            if user_id not in first:
                first[user_id] = taken
                changes[user_id] = [(taken, role_names)]
            elif current[user_id] != role_names:
                changes[user_id].append((taken, role_names))
            current[user_id] = role_names
            last[user_id] = taken
        return {
            user_id: UserHistory(
                user_id=user_id,
                first_seen=first[user_id],
                last_seen=last[user_id],
                role_history=tuple(changes[user_id]),
            )
            for user_id in first
        }

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
        self._check_users(latest[0][0])
        rows = self._query(
            "SELECT user_id, record_digest, is_saml_sso_only FROM snapshot_users"
            " WHERE snapshot_id = ? AND record_digest IS NOT NULL AND is_saml_sso_only IS NOT NULL",
            (latest[0][0],),
            doing=f"reading the known user details of {connection!r}",
        )
        return {user_id: (digest, bool(saml)) for user_id, digest, saml in rows}

    # -- attestations -------------------------------------------------------------------------

    def add_attestation(
        self,
        connection: str,
        *,
        kind: AttestationKind,
        by: str,
        statement: str,
        made_at: datetime,
        expires: datetime,
        snapshot_id: int | None = None,
        raw_sha256: str = "",
    ) -> Attestation:
        """Record a reviewer's statement (MFA enforced, access reviewed) valid until ``expires``.

        A review names the snapshot it signs off (``snapshot_id``, with its raw-data digest).
        """
        with self._write(f"recording an attestation for {connection!r}"):
            return self._insert_attestation(
                connection, kind=kind, by=by, statement=statement, made_at=made_at, expires=expires,
                snapshot_id=snapshot_id, raw_sha256=raw_sha256,
            )

    def _insert_attestation(
        self,
        connection: str,
        *,
        kind: AttestationKind,
        by: str,
        statement: str,
        made_at: datetime,
        expires: datetime,
        snapshot_id: int | None,
        raw_sha256: str,
    ) -> Attestation:
        """``add_attestation``'s write, inside the caller's transaction (a campaign's close joins it)."""
        kind = AttestationKind(kind)
        if expires <= made_at:
            raise ConfigurationError(
                f"An attestation must expire after it is made ({_time(expires)} is not after {_time(made_at)}).",
                hint="Give --valid-days 1 or more.",
            )
        record: dict[str, object] = {
            "connection": connection,
            "kind": kind.value,
            "made_by": by,
            "statement": statement,
            "made_at": _time(made_at),
            "expires": _time(expires),
            "snapshot_id": snapshot_id,
            "raw_sha256": raw_sha256 or None,
        }
        cursor = self._db.execute(
            "INSERT INTO attestations (connection, kind, made_by, statement, made_at, expires,"
            " snapshot_id, raw_sha256) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            tuple(record.values()),
        )
        attestation_id = record["id"] = _new_id(cursor)
        self._db.execute(
            "UPDATE attestations SET tag = ? WHERE id = ?", (self._tag("attestations", record), attestation_id)
        )
        return Attestation(
            id=attestation_id,
            connection=connection,
            kind=kind,
            by=by,
            statement=statement,
            made_at=made_at.astimezone(UTC),
            expires=expires.astimezone(UTC),
            snapshot_id=snapshot_id,
            raw_sha256=raw_sha256,
        )

    def attestations(self, connection: str) -> list[Attestation]:
        """The connection's attestations, newest first (expired ones included)."""
        rows = self._query(
            _SELECT_ATTESTATIONS + " WHERE connection = ? ORDER BY made_at DESC, id DESC",
            (connection,),
            doing=f"reading the attestations of {connection!r}",
        )
        for row in rows:
            self._check_row("attestations", row, f"attestation #{row[0]} of connection {connection!r}")
        try:
            return [
                Attestation(
                    id=row[0],
                    connection=row[1],
                    kind=AttestationKind(row[2]),
                    by=row[3],
                    statement=row[4],
                    made_at=_parse_time(row[5]),
                    expires=_parse_time(row[6]),
                    snapshot_id=row[7],
                    raw_sha256=row[8] or "",
                )
                for row in rows
            ]
        except ValueError as exc:
            raise StoreError(
                f"An attestation in {self.path} has a kind this version does not know.",
                hint="It was probably written by a newer version; upgrade certcentral-auditor.",
            ) from exc

    # -- access review campaigns --------------------------------------------------------------

    def open_campaign(
        self,
        connection: str,
        *,
        snapshot_id: int,
        raw_sha256: str,
        scope: str,
        due: datetime | None,
        opened_at: datetime,
        opened_by: str,
        worksheet: Callable[[int], str],
    ) -> CampaignRecord:
        """Record a new open campaign; refused while the connection has another open one.

        ``worksheet(campaign_id)`` builds (and may write out) the worksheet, returning its rows as
        JSON; it runs inside the transaction, so if it fails no campaign is recorded.
        """
        record: dict[str, object] = {
            "connection": connection,
            "snapshot_id": snapshot_id,
            "raw_sha256": raw_sha256,
            "scope": scope,
            "due": _opt_time(due),
            "opened_at": _time(opened_at),
            "opened_by": opened_by,
            "worksheet": "",
            "state": "open",
        }
        with self._write(f"opening a review campaign for {connection!r}"):
            for existing in self._campaign_rows(" WHERE connection = ? AND state = 'open'", (connection,)):
                raise ConfigurationError(
                    f"Connection {connection!r} already has an open review campaign (#{existing.id}, of snapshot "
                    f"{existing.snapshot_id}); one open campaign per connection.",
                    hint=f"Close it first: `auditor review close --campaign {existing.id} --by \"NAME <EMAIL>\" "
                    "--statement TEXT`.",
                )
            cursor = self._db.execute(
                "INSERT INTO campaigns (connection, snapshot_id, raw_sha256, scope, due, opened_at, opened_by,"
                " worksheet, state) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                tuple(record.values()),
            )
            campaign_id = record["id"] = _new_id(cursor)
            record["worksheet"] = worksheet(campaign_id)
            full = {column: record.get(column) for column in TAGGED_COLUMNS["campaigns"]}
            full["import_count"] = 0
            self._db.execute(
                "UPDATE campaigns SET worksheet = ?, tag = ? WHERE id = ?",
                (record["worksheet"], self._tag("campaigns", full), campaign_id),
            )
        return self.get_campaign(campaign_id)

    _SELECT_CAMPAIGNS: Final = f"SELECT {', '.join(TAGGED_COLUMNS['campaigns'])}, tag FROM campaigns"  # noqa: S608

    def _campaign_rows(self, where: str, params: tuple[object, ...]) -> list[CampaignRecord]:
        rows = self._db.execute(self._SELECT_CAMPAIGNS + where + " ORDER BY id", params).fetchall()
        found = []
        for row in rows:
            self._check_row("campaigns", row, f"review campaign #{row[0]}")
            found.append(
                CampaignRecord(
                    id=row[0], connection=row[1], snapshot_id=row[2], raw_sha256=row[3], scope=row[4],
                    due=_opt_parse_time(row[5]), opened_at=_parse_time(row[6]), opened_by=row[7], worksheet=row[8],
                    state=row[9], closed_at=_opt_parse_time(row[10]), closed_by=row[11], statement=row[12],
                    attestation_id=row[13], import_count=row[14] or 0,
                )
            )
        return found

    def campaigns(self, connection: str | None = None) -> list[CampaignRecord]:
        """Review campaigns, oldest first (of one connection, or all)."""
        where, params = ("", ()) if connection is None else (" WHERE connection = ?", (connection,))
        with self._guard("reading the review campaigns"), self._consistent():
            return self._campaign_rows(where, params)

    def get_campaign(self, campaign_id: int) -> CampaignRecord:
        with self._guard(f"reading review campaign {campaign_id}"), self._consistent():
            found = self._campaign_rows(" WHERE id = ?", (campaign_id,))
        if not found:
            raise ConfigurationError(
                f"There is no review campaign #{campaign_id}.",
                hint="See `auditor review status` for the campaigns there are.",
            )
        return found[0]

    def get_open_campaign(self, campaign_id: int) -> CampaignRecord:
        """The campaign, if it is still open; a closed campaign is immutable, so this refuses it."""
        campaign = self.get_campaign(campaign_id)
        self._refuse_closed(campaign)
        return campaign

    def _refuse_closed(self, campaign: CampaignRecord) -> None:
        if campaign.state != "open":
            raise ConfigurationError(
                f"Review campaign #{campaign.id} was closed on {campaign.closed_at:%Y-%m-%d} by {campaign.closed_by}: "
                "a closed campaign is immutable. Nothing was recorded.",
                hint="Open a new campaign with `auditor review open --output FILE.xlsx`.",
            )

    def record_import(
        self,
        campaign_id: int,
        *,
        file_name: str,
        content: bytes,
        imported_by: str,
        imported_at: datetime,
        decisions: Sequence[Mapping[str, object]],
    ) -> ImportRecord:
        """Store a worksheet as imported and its decisions, in one transaction (all or nothing)."""
        sha = hashlib.sha256(content).hexdigest()
        with self._write(f"recording an import into review campaign {campaign_id}"):
            found = self._campaign_rows(" WHERE id = ?", (campaign_id,))
            if not found:
                raise ConfigurationError(f"There is no review campaign #{campaign_id}.")
            self._refuse_closed(found[0])
            record: dict[str, object] = {
                "campaign_id": campaign_id, "file_name": file_name, "sha256": sha, "content": content,
                "imported_by": imported_by, "imported_at": _time(imported_at), "decision_count": len(decisions),
            }
            cursor = self._db.execute(
                "INSERT INTO campaign_imports (campaign_id, file_name, sha256, content, imported_by, imported_at,"
                " decision_count) VALUES (?, ?, ?, ?, ?, ?, ?)",
                tuple(record.values()),
            )
            import_id = record["id"] = _new_id(cursor)
            self._db.execute(
                "UPDATE campaign_imports SET tag = ? WHERE id = ?", (self._tag("campaign_imports", record), import_id)
            )
            for decision in decisions:
                row: dict[str, object] = {
                    "campaign_id": campaign_id,
                    "import_id": import_id,
                    "user_id": int(decision["user_id"]),  # type: ignore[call-overload]
                    "reviewer": str(decision["reviewer"]),
                    "decision": str(decision["decision"]),
                    "new_role": str(decision.get("new_role") or ""),
                    "justification": str(decision.get("justification") or ""),
                    "ticket": str(decision.get("ticket") or ""),
                    "decided_at": _time(imported_at),
                }
                cursor = self._db.execute(
                    "INSERT INTO campaign_decisions (campaign_id, import_id, user_id, reviewer, decision, new_role,"
                    " justification, ticket, decided_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    tuple(row.values()),
                )
                decision_id = row["id"] = _new_id(cursor)
                self._db.execute(
                    "UPDATE campaign_decisions SET tag = ? WHERE id = ?",
                    (self._tag("campaign_decisions", row), decision_id),
                )
            self._bump_imports(campaign_id)
        return ImportRecord(
            id=import_id, campaign_id=campaign_id, file_name=file_name, sha256=sha, content=content,
            imported_by=imported_by, imported_at=imported_at,
        )

    def _bump_imports(self, campaign_id: int) -> None:
        """Count one more import in the campaign's (tagged) row: a deleted import is then detected."""
        columns = TAGGED_COLUMNS["campaigns"]
        values = self._db.execute(
            f"SELECT {', '.join(columns)} FROM campaigns WHERE id = ?", (campaign_id,)  # noqa: S608
        ).fetchone()
        record = dict(zip(columns, values, strict=True))
        record["import_count"] = int(record["import_count"] or 0) + 1
        self._db.execute(
            "UPDATE campaigns SET import_count = ?, tag = ? WHERE id = ?",
            (record["import_count"], self._tag("campaigns", record), campaign_id),
        )

    def _check_counts(self, campaign_id: int) -> None:
        """Imports and decisions of a campaign are all there: none deleted outside the tool."""
        if not self._checking:
            return
        with self._guard(f"checking review campaign {campaign_id}"), self._consistent():
            found = self._campaign_rows(" WHERE id = ?", (campaign_id,))
            imports = self._db.execute(
                "SELECT id, decision_count FROM campaign_imports WHERE campaign_id = ?", (campaign_id,)
            ).fetchall()
            counted = dict(
                self._db.execute(
                    "SELECT import_id, count(*) FROM campaign_decisions WHERE campaign_id = ? GROUP BY import_id",
                    (campaign_id,),
                ).fetchall()
            )
        expected = found[0].import_count if found else 0
        if len(imports) != expected or any(counted.get(i, 0) != n for i, n in imports) or (
            set(counted) - {i for i, _n in imports}
        ):
            raise StoreTamperedError(
                f"Review campaign #{campaign_id} in {self.path} should hold {expected} import(s) with the decisions "
                "each recorded, but records were deleted or added outside certcentral-auditor.",
                hint=f"Treat the data as untrustworthy: restore {self.path} from a backup.",
            )

    def campaign_imports(self, campaign_id: int) -> list[ImportRecord]:
        """The worksheets imported into a campaign, oldest first, as imported."""
        self._check_counts(campaign_id)
        columns = TAGGED_COLUMNS["campaign_imports"]
        rows = self._query(
            f"SELECT {', '.join(columns)}, tag FROM campaign_imports WHERE campaign_id = ? ORDER BY id",  # noqa: S608
            (campaign_id,),
            doing=f"reading the imports of review campaign {campaign_id}",
        )
        found = []
        for row in rows:
            self._check_row("campaign_imports", row, f"worksheet import #{row[0]} of review campaign {campaign_id}")
            found.append(
                ImportRecord(
                    id=row[0], campaign_id=row[1], file_name=row[2], sha256=row[3], content=bytes(row[4]),
                    imported_by=row[5], imported_at=_parse_time(row[6]),
                )
            )
        return found

    def campaign_decisions(self, campaign_id: int) -> list[DecisionRecord]:
        """Every decision recorded in a campaign, oldest first (superseded ones included)."""
        self._check_counts(campaign_id)
        columns = TAGGED_COLUMNS["campaign_decisions"]
        rows = self._query(
            f"SELECT {', '.join(columns)}, tag FROM campaign_decisions WHERE campaign_id = ? ORDER BY id",  # noqa: S608
            (campaign_id,),
            doing=f"reading the decisions of review campaign {campaign_id}",
        )
        found = []
        for row in rows:
            self._check_row("campaign_decisions", row, f"decision #{row[0]} of review campaign {campaign_id}")
            found.append(
                DecisionRecord(
                    id=row[0], campaign_id=row[1], import_id=row[2], user_id=row[3], reviewer=row[4],
                    decision=row[5], new_role=row[6], justification=row[7], ticket=row[8],
                    decided_at=_parse_time(row[9]),
                )
            )
        return found

    def close_campaign(
        self,
        campaign_id: int,
        *,
        closed_at: datetime,
        closed_by: str,
        statement: str,
        sign_off: str,
        expires: datetime,
        raw_sha256: str,
    ) -> tuple[CampaignRecord, Attestation]:
        """Close a campaign (immutable from now on) and record its sign-off, in one transaction.

        The sign-off is the review attestation of the campaign's snapshot, made by ``closed_by`` at
        ``closed_at`` with the text ``sign_off``, valid until ``expires``. Either both are recorded
        or, on any failure, neither: no sign-off of a campaign still open, no campaign closed
        without one.
        """
        with self._write(f"closing review campaign {campaign_id}"):
            found = self._campaign_rows(" WHERE id = ?", (campaign_id,))
            if not found:
                raise ConfigurationError(f"There is no review campaign #{campaign_id}.")
            self._refuse_closed(found[0])
            attestation = self._insert_attestation(
                found[0].connection, kind=AttestationKind.REVIEW, by=closed_by, statement=sign_off,
                made_at=closed_at, expires=expires, snapshot_id=found[0].snapshot_id, raw_sha256=raw_sha256,
            )
            record = dict(
                zip(
                    TAGGED_COLUMNS["campaigns"],
                    self._db.execute(
                        f"SELECT {', '.join(TAGGED_COLUMNS['campaigns'])} FROM campaigns WHERE id = ?",  # noqa: S608
                        (campaign_id,),
                    ).fetchone(),
                    strict=True,
                )
            )
            record.update(
                state="closed", closed_at=_time(closed_at), closed_by=closed_by, statement=statement,
                attestation_id=attestation.id,
            )
            self._db.execute(
                "UPDATE campaigns SET state = 'closed', closed_at = ?, closed_by = ?, statement = ?,"
                " attestation_id = ?, tag = ? WHERE id = ?",
                (
                    record["closed_at"], closed_by, statement, attestation.id, self._tag("campaigns", record),
                    campaign_id,
                ),
            )
        return self.get_campaign(campaign_id), attestation

    # -- signing keys -------------------------------------------------------------------------

    def save_signing_key(
        self, *, fingerprint: str, encrypted_private_key: bytes, public_pem: str, created_at: datetime
    ) -> None:
        """Store a new evidence signing key (sealed by the caller under the master key)."""
        with self._write(f"saving signing key {fingerprint}"):
            exists = self._db.execute("SELECT 1 FROM signing_keys WHERE fingerprint = ?", (fingerprint,)).fetchone()
            if exists:
                raise StoreError(
                    f"A signing key with fingerprint {fingerprint} is already stored; it was not replaced."
                )
            record: dict[str, object] = {
                "fingerprint": fingerprint,
                "encrypted_private_key": bytes(encrypted_private_key),
                "public_pem": public_pem,
                "created_at": _time(created_at),
                "retired_at": None,
            }
            self._db.execute(
                "INSERT INTO signing_keys (fingerprint, encrypted_private_key, public_pem,"
                " created_at, retired_at, tag) VALUES (?, ?, ?, ?, ?, ?)",
                (*record.values(), self._tag("signing_keys", record)),
            )

    def retire_signing_key(self, fingerprint: str, *, at: datetime) -> None:
        """Mark a key as no longer used for signing (kept, so old bundles still verify).

        Retiring a key twice keeps the first retirement time.
        """
        with self._write(f"retiring signing key {fingerprint}"):
            row = self._db.execute(_SELECT_SIGNING_KEYS + " WHERE fingerprint = ?", (fingerprint,)).fetchone()
            if row is None:
                raise ConfigurationError(
                    f"There is no signing key with fingerprint {fingerprint}.",
                    hint="Show the current signing key with `auditor keys public`.",
                )
            self._signing_key(row)
            if row[4] is None:
                record = dict(zip(TAGGED_COLUMNS["signing_keys"], row[:-1], strict=True))
                record["retired_at"] = _time(at)
                self._db.execute(
                    "UPDATE signing_keys SET retired_at = ?, tag = ? WHERE fingerprint = ?",
                    (record["retired_at"], self._tag("signing_keys", record), fingerprint),
                )

    def signing_keys(self) -> list[SigningKeyRecord]:
        """Every signing key, retired or not, oldest first."""
        rows = self._query(_SELECT_SIGNING_KEYS + " ORDER BY created_at, rowid", doing="reading the signing keys")
        return [self._signing_key(row) for row in rows]

    def _signing_key(self, row: Sequence[Any]) -> SigningKeyRecord:
        self._check_row("signing_keys", row, f"signing key {row[0]}")
        return SigningKeyRecord(
            fingerprint=row[0],
            public_pem=row[2],
            created_at=_parse_time(row[3]),
            retired_at=_opt_parse_time(row[4]),
            encrypted_private_key=bytes(row[1]),
        )

    def active_signing_key(self) -> SigningKeyRecord | None:
        """The newest key that is not retired, or None."""
        rows = self._query(
            _SELECT_SIGNING_KEYS + " WHERE retired_at IS NULL ORDER BY created_at DESC, rowid DESC LIMIT 1",
            doing="reading the signing keys",
        )
        return self._signing_key(rows[0]) if rows else None

    # -- evidence chain -----------------------------------------------------------------------

    def chain_head(self, connection: str) -> ChainHead | None:
        """The latest manifest of the connection's evidence chain, or None before the first."""
        self._check_latest("chain")
        rows = self._query(
            _SELECT_CHAIN + " WHERE connection = ? ORDER BY id DESC LIMIT 1",
            (connection,),
            doing=f"reading the evidence chain of {connection!r}",
        )
        return self._chain_row(rows[0], head=True) if rows else None

    def _chain_row(self, row: Sequence[Any], *, head: bool = False) -> ChainHead:
        record = dict(zip(TAGGED_COLUMNS["chain"], row[:-1], strict=True))
        what = (
            f"chain head of connection {row[1]!r}"
            if head
            else f"evidence chain record #{row[0]} (sequence {row[3]}) of connection {row[1]!r}"
        )
        self._check("chain", record, row[-1], what)
        return _chain_head(row)

    def advance_chain(
        self,
        connection: str,
        head: ChainHead,
        *,
        expected: ChainHead | _AnyHead | None = _ANY_HEAD,
        new_chain: bool = False,
    ) -> None:
        """Record ``head`` as the connection's new chain head, if the head is still ``expected``.

        A compare-and-swap, in one write transaction: ``expected`` is the head the export started
        from (None: there was none; left out, whatever head ``head`` continues). If another
        export advanced the chain meanwhile, nothing is
        changed and :class:`ChainMovedError` is raised, so of two racing exports only one records
        its bundle. ``head`` must continue ``expected`` (same id, sequence + 1) or, only when
        there is no head yet or ``new_chain`` is given (``export --new-chain``), start a chain
        with an id never used for this connection at sequence 0.
        """
        with self._write(f"advancing the evidence chain of {connection!r}"):
            self._check_latest("chain")
            row = self._db.execute(
                _SELECT_CHAIN + " WHERE connection = ? ORDER BY id DESC LIMIT 1", (connection,)
            ).fetchone()
            current = None if row is None else self._chain_row(row, head=True)
            if not isinstance(expected, _AnyHead) and current != expected:
                raise ChainMovedError(
                    f"The evidence chain of {connection!r} moved on since this export started (its head is "
                    + (f"{current.chain_id} sequence {current.sequence}" if current else "gone")
                    + ", not "
                    + (f"{expected.chain_id} sequence {expected.sequence}" if expected else "empty")
                    + "); recording this manifest would fork the chain. Nothing was changed.",
                    hint="Another export ran at the same time; run the export again.",
                )
            continues = current is not None and head.chain_id == current.chain_id
            if continues:
                assert current is not None  # noqa: S101 - for the type checker
                if head.sequence != current.sequence + 1:
                    raise StoreError(
                        f"Manifest {head.sequence} of evidence chain {head.chain_id} for "
                        f"{connection!r} does not follow the chain head (sequence {current.sequence}); "
                        "recording it would fork the chain. Nothing was changed.",
                        hint="Export again: the export starts from the stored chain head.",
                    )
            else:
                used = self._db.execute(
                    "SELECT 1 FROM chain WHERE connection = ? AND chain_id = ? LIMIT 1",
                    (connection, head.chain_id),
                ).fetchone()
                if used or head.sequence != 0 or (current is not None and not new_chain):
                    raise StoreError(
                        f"Manifest {head.sequence} of evidence chain {head.chain_id} for "
                        f"{connection!r} neither continues the current chain"
                        + (f" ({current.chain_id}, sequence {current.sequence})" if current else "")
                        + " nor starts a requested new one at sequence 0; recording it would fork the chain. "
                        "Nothing was changed.",
                        hint="Export again: the export starts from the stored chain head "
                        "(`auditor export --new-chain` starts a new chain on purpose).",
                    )
            record: dict[str, object] = {
                "connection": connection,
                "chain_id": head.chain_id,
                "sequence": head.sequence,
                "manifest_sha256": head.manifest_sha256,
                "signature": head.signature,
                "key_fingerprint": head.key_fingerprint,
                "exported_at": _time(head.exported_at),
            }
            cursor = self._db.execute(
                "INSERT INTO chain (connection, chain_id, sequence, manifest_sha256, signature,"
                " key_fingerprint, exported_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                tuple(record.values()),
            )
            record["id"] = row_id = _new_id(cursor)
            self._db.execute("UPDATE chain SET tag = ? WHERE id = ?", (self._tag("chain", record), row_id))
            self._set_latest("chain", connection, row_id)

    def exports(self, connection: str) -> list[ChainHead]:
        """Every manifest recorded for the connection, oldest first (chains and restarts)."""
        rows = self._query(
            _SELECT_CHAIN + " WHERE connection = ? ORDER BY id",
            (connection,),
            doing=f"reading the evidence chain of {connection!r}",
        )
        return [self._chain_row(row) for row in rows]


def _unknown_snapshot(snapshot_id: int) -> ConfigurationError:
    return ConfigurationError(
        f"There is no snapshot {snapshot_id}.",
        hint="List the stored snapshots with `auditor snapshots`.",
    )


def _new_id(cursor: sqlite3.Cursor) -> int:
    if cursor.lastrowid is None:  # cannot happen after an INSERT; keeps the type honest
        raise StoreError("The database did not return the id of a new row.")
    return cursor.lastrowid


def _connection(row: Sequence[Any]) -> ConnectionRecord:
    return ConnectionRecord(
        name=row[0],
        base_url=row[1],
        region=row[2],
        encrypted_key=bytes(row[3]),
        key_fingerprint=row[4],
        added_at=_parse_time(row[5]),
        last_test_at=_opt_parse_time(row[6]),
        last_test_result=row[7],
    )


def _chain_head(row: Sequence[Any]) -> ChainHead:
    return ChainHead(
        chain_id=row[2],
        sequence=row[3],
        manifest_sha256=row[4],
        signature=row[5],
        key_fingerprint=row[6],
        exported_at=_parse_time(row[7]),
    )


# -- errors -----------------------------------------------------------------------------------

_CORRUPT_MARKERS: Final = ("malformed", "not a database", "corrupt", "disk image", "file is encrypted")


def _corrupt(path: Path, detail: str) -> StoreError:
    return StoreError(
        f"The database {path} is damaged or is not an auditor database ({detail}). Nothing was changed.",
        hint=f"Restore {path} from a backup, or move it aside to start with an empty database "
        "(the stored connections and snapshots are then lost).",
    )


def _translate(exc: sqlite3.Error, path: Path, doing: str) -> StoreError:
    text = str(exc)
    lowered = text.lower()
    if "locked" in lowered or "busy" in lowered:
        return StoreBusyError(
            f"The database {path} is busy: another auditor process is writing to it ({doing}).",
            hint="Wait for the other process to finish, then try again.",
        )
    if isinstance(exc, sqlite3.DatabaseError) and any(marker in lowered for marker in _CORRUPT_MARKERS):
        return _corrupt(path, text)
    if "unable to open" in lowered or "readonly" in lowered or "read-only" in lowered:
        return StoreError(
            f"The database {path} cannot be opened for writing ({text}).",
            hint="Check the permissions of the file and its directory.",
        )
    return StoreError(
        f"The database {path} failed while {doing}: {text}.",
        hint="Run with -v for details; if it persists, restore the database from a backup.",
    )


# -- the pull lock ----------------------------------------------------------------------------


def _lock_stem(connection: str) -> str:
    if _CONNECTION_NAME.fullmatch(connection):
        return connection
    return "conn-" + hashlib.sha256(connection.encode("utf-8", "surrogatepass")).hexdigest()[:16]


@contextlib.contextmanager
def _file_lock(data_dir: Path, name: str, *, timeout: float, busy: Callable[[Path], StoreBusyError]) -> Iterator[None]:
    locks = Path(data_dir) / "locks"
    path = locks / name
    try:
        make_private_dirs(locks)  # may be the first directory created (pull before connect)
    except OSError as exc:
        raise StoreError(f"The lock directory {locks} cannot be created: {exc.strerror}.") from exc
    lock = filelock.FileLock(path, timeout=timeout, mode=0o600)
    try:
        lock.acquire()
    except filelock.Timeout as exc:
        raise busy(path) from exc
    except OSError as exc:
        raise StoreError(f"The lock file {path} cannot be used: {exc.strerror}.") from exc
    try:
        yield
    finally:
        lock.release()


def pull_lock(data_dir: Path, connection: str, *, timeout: float = 5.0) -> contextlib.AbstractContextManager[None]:
    """Hold ``<data_dir>/locks/<connection>.lock`` for the duration of a pull.

    The OS releases the lock when the holder exits, even after a crash, so a leftover lock
    file never blocks anyone; it need not (and should not) be deleted by hand.
    """

    def busy(path: Path) -> StoreBusyError:
        return StoreBusyError(
            f"Another `auditor pull` for connection {connection!r} is running (lock file {path}).",
            hint="Wait for it to finish, then run this again. The lock is released when that "
            "process exits, even if it crashes; there is no need to delete the file.",
        )

    return _file_lock(data_dir, f"{_lock_stem(connection)}.lock", timeout=timeout, busy=busy)


def export_lock(data_dir: Path, connection: str, *, timeout: float = 120.0) -> contextlib.AbstractContextManager[None]:
    """Hold ``<data_dir>/locks/export+<connection>.lock`` while an export reads and advances the chain.

    Exports of one connection then follow each other: the second starts from the head the first
    recorded instead of racing it. ('+' cannot occur in a connection name, so this never
    collides with a pull lock.)
    """

    def busy(path: Path) -> StoreBusyError:
        return StoreBusyError(
            f"Another `auditor export` for connection {connection!r} has been running for over "
            f"{timeout:.0f} s (lock file {path}).",
            hint="Wait for it to finish, then run the export again.",
        )

    return _file_lock(data_dir, f"export+{_lock_stem(connection)}.lock", timeout=timeout, busy=busy)
