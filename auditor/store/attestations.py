"""Attestations: a reviewer's statement (MFA enforced, access reviewed) valid until it expires."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Final

from auditor.errors import ConfigurationError, StoreError
from auditor.models import (
    Attestation,
    AttestationKind,
)
from auditor.store.codec import (
    _parse_time,
    _time,
)
from auditor.store.sqlite import _new_id
from auditor.store.tags import _Tagged

_SELECT_ATTESTATIONS: Final = (
    "SELECT id, connection, kind, made_by, statement, made_at, expires, snapshot_id, raw_sha256, tag"
    " FROM attestations"
)


class _Attestations(_Tagged):
    """The ``attestations`` rows."""

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
