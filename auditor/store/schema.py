"""The database schema: the migrations (append only), the schema version, the user-row columns.

The DDL is SQLite's dialect (``AUTOINCREMENT``, ``BLOB``) and the version is SQLite's
``PRAGMA user_version``; another backend would carry its own list with the same steps.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from typing import Final


def _convert_snapshot_users(db: sqlite3.Connection) -> None:
    """Migration 5's Python step (imported when run: versions.py builds on this module)."""
    from auditor.store.versions import convert_snapshot_users

    convert_snapshot_users(db)


#: A step is an SQL statement, or a function run on the connection inside the same transaction.
_Step = str | Callable[[sqlite3.Connection], None]
#: MIGRATIONS[n] takes a database from ``user_version`` n to n + 1. Append; never edit.
_MIGRATIONS: Final[tuple[tuple[_Step, ...], ...]] = (
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
    # 4 -> 5 (issue 15): user rows as versions, written when a user changes (see versions.py); a
    # snapshot's members; the user history as an index updated on save; the headline numbers the
    # rules gave each snapshot (the trend). snapshot_users is converted, then dropped.
    (
        """CREATE TABLE user_versions (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            connection TEXT NOT NULL,
            email_key TEXT NOT NULL,
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
            text_escaped INTEGER NOT NULL
        )""",
        """CREATE INDEX user_versions_by_user ON user_versions (connection, user_id)""",
        """CREATE INDEX user_versions_by_email ON user_versions (connection, email_key)""",
        """CREATE TABLE snapshot_members (
            snapshot_id INTEGER PRIMARY KEY REFERENCES snapshots (id) ON DELETE CASCADE,
            count INTEGER NOT NULL,
            versions BLOB NOT NULL,
            base_id INTEGER
        )""",
        """CREATE TABLE user_presence (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            connection TEXT NOT NULL,
            user_id INTEGER NOT NULL,
            role_names TEXT NOT NULL,
            first_id INTEGER NOT NULL,
            first_at TEXT NOT NULL,
            last_id INTEGER NOT NULL,
            last_at TEXT NOT NULL,
            tag BLOB
        )""",
        """CREATE INDEX user_presence_by_user ON user_presence (connection, user_id, first_id)""",
        """CREATE INDEX user_presence_by_last ON user_presence (connection, last_id)""",
        """CREATE TABLE snapshot_summaries (
            snapshot_id INTEGER PRIMARY KEY REFERENCES snapshots (id) ON DELETE CASCADE,
            rules_version TEXT NOT NULL,
            computed_at TEXT NOT NULL,
            users INTEGER NOT NULL,
            admins INTEGER NOT NULL,
            findings INTEGER NOT NULL,
            by_severity TEXT NOT NULL,
            by_rule TEXT NOT NULL,
            tag BLOB
        )""",
        _convert_snapshot_users,
        """DROP TABLE snapshot_users""",
    ),
    # Step 6 (issue 17; the coordinator renumbers at merge): audit-log runs of the Report Library,
    # archived once each (DigiCert keeps them 90 days) with the snapshot whose pull first saw them.
    # No foreign key to snapshots: a run outlives the snapshot that archived it.
    (
        """CREATE TABLE audit_log_runs (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            connection TEXT NOT NULL,
            report_identifier TEXT NOT NULL,
            run_identifier TEXT NOT NULL,
            started_at TEXT NOT NULL,
            schedule TEXT NOT NULL,
            report_format TEXT NOT NULL,
            endpoint TEXT NOT NULL,
            body_zlib BLOB NOT NULL,
            sha256 TEXT NOT NULL,
            received_at TEXT NOT NULL,
            first_snapshot_id INTEGER NOT NULL,
            tag BLOB,
            UNIQUE (connection, report_identifier, run_identifier)
        )""",
        """CREATE INDEX audit_log_runs_by_connection ON audit_log_runs (connection, first_snapshot_id, id)""",
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
