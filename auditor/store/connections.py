"""Stored CertCentral connections: base URL, region and the API key, sealed by ``credentials``."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, Final

from auditor.errors import ConfigurationError
from auditor.store.codec import (
    _opt_parse_time,
    _parse_time,
    _time,
)
from auditor.store.records import (
    ConnectionRecord,
    validate_connection_name,
)
from auditor.store.tags import TAGGED_COLUMNS, _Tagged

_SELECT_CONNECTIONS: Final = (
    "SELECT name, base_url, region, encrypted_key, key_fingerprint, added_at, last_test_at,"
    " last_test_result, tag FROM connections"
)


class _Connections(_Tagged):
    """The ``connections`` rows."""

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
            # SQLite: INSERT OR REPLACE is the upsert (ON CONFLICT ... DO UPDATE in PostgreSQL).
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
