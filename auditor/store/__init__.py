"""The local SQLite database: connections, snapshots, raw pages, history, keys and chain heads.

One file, ``auditor.db``, in the data directory (created 0700; the file 0600). Every sqlite3
error is translated here into :class:`StoreError` (or :class:`StoreBusyError` when another
process holds the database), so callers never see a sqlite3 traceback. A snapshot is saved in
one transaction: all of its users and raw pages, or nothing.

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
user row in position order, then the count: the rows rebuilt from its user versions exactly as
``snapshot_users`` held them before schema 5, see ``versions.py``) and its raw pages (likewise). A column
added by a later migration is covered only once it is added to :data:`TAGGED_COLUMNS` (a test
fails until every column is either listed or named in :data:`UNTAGGED_COLUMNS`); NULLs are
left out of the encoding, so adding a nullable column keeps the existing tags valid.

A store written before tags existed is tagged once, when it is first opened with the master key
(:meth:`Store.tag_existing_records`; the command says so). The ``records_tagged`` meta row,
itself tagged, records that this happened: after it, a record without a tag is a changed record.

Layout
------
One file per thing. :class:`Store` (``store.py``) is one class gathered from the row areas, each a
class over the tagged plumbing (``_Database`` in ``sqlite.py`` <- ``_Tagged`` in ``tags.py`` <-
``_Connections``, ``_Snapshots``, ... <- ``Store``), so a method is found in the file named for its rows:

- ``sqlite.py``: the file (create, read-only preflight, integrity), connection, transactions,
  translating sqlite3 errors: everything SQLite-specific but the DDL.
- ``schema.py``: the migrations (append only) and the user-row columns.
- ``tags.py``: what each record's tag covers and the checks on read.
- ``codec.py``: values to columns and back (times, users, raw pages, provenance JSON).
- ``connections.py``, ``snapshots.py`` (with raw pages and history), ``attestations.py``,
  ``campaigns.py``, ``signing.py`` (signing keys and the chain head): the rows of each area.
- ``versions.py``: user rows as versions (written when a user changes), member lists, the history index.
- ``history.py``, ``summaries.py``: the user history from that index; what the rules gave each snapshot.
- ``checks.py``: the cheap check on open, the write markers that call for the full one after a crash.
- ``doctor.py``: ``auditor doctor``'s checks, over every area.
- ``locks.py``: the pull and export file locks.
- ``records.py``: the values returned and the store's own errors.

A second backend (PostgreSQL) would replace ``sqlite.py`` and the DDL in ``schema.py`` behind the
same :class:`Store` methods; the row modules use plain SQL with DB-API ``?`` parameters, but for the few
SQLite idioms marked ``SQLite:`` where they are used (``INSERT OR REPLACE``, ``rowid``).
"""

from __future__ import annotations

from auditor.store.doctor import DoctorCheck
from auditor.store.locks import EXPORT_LOCK_TIMEOUT, PULL_LOCK_TIMEOUT, LockTimeouts, export_lock, pull_lock
from auditor.store.records import (
    CampaignRecord,
    ChainHead,
    ChainMovedError,
    ConnectionRecord,
    DecisionRecord,
    ImportRecord,
    RecordKeys,
    SigningKeyRecord,
    SnapshotSummary,
    StoreTamperedError,
    validate_connection_name,
)
from auditor.store.schema import SCHEMA_VERSION
from auditor.store.sqlite import BUSY_TIMEOUT, DB_NAME, sealed_secrets_exist
from auditor.store.store import Store
from auditor.store.tags import TAGGED_COLUMNS, UNTAGGED_COLUMNS, canonical_record

__all__ = [
    "BUSY_TIMEOUT",
    "DB_NAME",
    "EXPORT_LOCK_TIMEOUT",
    "PULL_LOCK_TIMEOUT",
    "SCHEMA_VERSION",
    "TAGGED_COLUMNS",
    "UNTAGGED_COLUMNS",
    "CampaignRecord",
    "ChainHead",
    "ChainMovedError",
    "ConnectionRecord",
    "DecisionRecord",
    "DoctorCheck",
    "ImportRecord",
    "LockTimeouts",
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

# Not public; tests import them from here (the migration steps, the schema each version has).
from auditor.store.schema import _MIGRATIONS as _MIGRATIONS
from auditor.store.sqlite import _expected_schema as _expected_schema
