"""What the store returns and raises: its record values, its own errors, the connection-name rule."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Protocol

from auditor.errors import ConfigurationError, StoreError

if TYPE_CHECKING:
    from auditor.credentials import RecordAuthenticator


class RecordKeys(Protocol):
    """What the store needs of ``auditor.credentials.MasterKey``: one HMAC key per table."""

    def record_authenticator(self, purpose: str) -> RecordAuthenticator: ...


class StoreTamperedError(StoreError):
    """A stored record no longer matches its authentication tag (exit 6)."""


class ChainMovedError(StoreError):
    """The chain head is no longer the one an export started from (exit 6)."""


_CONNECTION_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")


def validate_connection_name(name: str) -> str:
    """Return ``name`` if it can name a connection (it becomes part of lock-file names)."""
    if not isinstance(name, str) or not _CONNECTION_NAME.fullmatch(name):
        raise ConfigurationError(
            f"{name!r} cannot name a connection.",
            hint="Use 1 to 64 letters, digits, '.', '_' or '-', starting with a letter or digit "
            "(for example 'prod' or 'eu-account').",
        )
    return name


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
