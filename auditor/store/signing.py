"""Evidence signing keys (sealed by ``credentials``) and each connection's chain of signed manifests.

The chain head advances by compare-and-swap in one write transaction (:meth:`_Signing.advance_chain`).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, Final

from auditor.errors import ConfigurationError, StoreError
from auditor.store.codec import (
    _opt_parse_time,
    _parse_time,
    _time,
)
from auditor.store.records import (
    ChainHead,
    ChainMovedError,
    SigningKeyRecord,
)
from auditor.store.sqlite import _new_id
from auditor.store.tags import TAGGED_COLUMNS, _Tagged


class _AnyHead:
    """``advance_chain``'s default: no compare-and-swap, only the continuity rules."""


_ANY_HEAD: Final = _AnyHead()


_SELECT_SIGNING_KEYS: Final = (
    "SELECT fingerprint, encrypted_private_key, public_pem, created_at, retired_at, tag FROM signing_keys"
)
_SELECT_CHAIN: Final = (
    "SELECT id, connection, chain_id, sequence, manifest_sha256, signature, key_fingerprint, exported_at,"
    " tag FROM chain"
)


class _Signing(_Tagged):
    """The ``signing_keys`` and ``chain`` rows."""

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
        # SQLite: rowid (insertion order) breaks ties of created_at, here and in active_signing_key.
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


def _chain_head(row: Sequence[Any]) -> ChainHead:
    return ChainHead(
        chain_id=row[2],
        sequence=row[3],
        manifest_sha256=row[4],
        signature=row[5],
        key_fingerprint=row[6],
        exported_at=_parse_time(row[7]),
    )
