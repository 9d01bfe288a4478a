"""Archived audit-log runs (§11.5): each Report Library run stored once, with the snapshot that first saw it.

DigiCert deletes runs after 90 days; these rows are the only copy afterwards. A run's bytes are
kept as downloaded (zlib-compressed, SHA-256 checked on read) and its row is tagged like every
other record, so a changed run is :class:`~auditor.store.records.StoreTamperedError` on read.
"""

from __future__ import annotations

import hashlib
import zlib
from collections.abc import Sequence
from typing import Any, Final

from auditor.auditlog import AuditLogRun
from auditor.errors import StoreError
from auditor.store.codec import _parse_time, _time
from auditor.store.sqlite import _new_id
from auditor.store.tags import TAGGED_COLUMNS, _Tagged

_COLUMNS: Final = TAGGED_COLUMNS["audit_log_runs"]
_SELECT: Final = f"SELECT {', '.join(_COLUMNS)}, tag FROM audit_log_runs"  # noqa: S608 - constant names


class _AuditLog(_Tagged):
    """The ``audit_log_runs`` rows."""

    def _insert_audit_log_runs(self, connection: str, snapshot_id: int, runs: Sequence[AuditLogRun]) -> None:
        """Archive ``runs`` with ``snapshot_id`` in the caller's transaction; an archived run is kept as it was."""
        for run in runs:
            record: dict[str, object] = {
                "connection": connection,
                "report_identifier": run.report_identifier,
                "run_identifier": run.run_identifier,
                "started_at": _time(run.started_at),
                "schedule": run.schedule,
                "report_format": run.report_format,
                "endpoint": run.endpoint,
                "body_zlib": zlib.compress(run.body, 6),
                "sha256": run.sha256,
                "received_at": _time(run.received_at),
                "first_snapshot_id": snapshot_id,
            }
            exists = self._db.execute(
                "SELECT 1 FROM audit_log_runs WHERE connection = ? AND report_identifier = ? AND run_identifier = ?",
                (connection, run.report_identifier, run.run_identifier),
            ).fetchone()
            if exists is not None:
                continue
            names = [c for c in _COLUMNS if c != "id"]
            cursor = self._db.execute(
                f"INSERT INTO audit_log_runs ({', '.join(names)}) VALUES ({', '.join('?' * len(names))})",  # noqa: S608
                tuple(record[c] for c in names),
            )
            record["id"] = _new_id(cursor)
            tag = self._tag("audit_log_runs", record)
            if tag is not None:
                self._db.execute("UPDATE audit_log_runs SET tag = ? WHERE id = ?", (tag, record["id"]))

    def archived_audit_log_keys(self, connection: str) -> frozenset[tuple[str, str]]:
        """(report, run) identifiers of every run archived for ``connection``: a pull downloads only others."""
        rows = self._query(
            "SELECT report_identifier, run_identifier FROM audit_log_runs WHERE connection = ?",
            (connection,),
            doing="reading the archived audit-log runs",
        )
        return frozenset((str(a), str(b)) for a, b in rows)

    def audit_log_runs(self, connection: str, *, until_snapshot_id: int | None = None) -> tuple[AuditLogRun, ...]:
        """The runs archived for ``connection`` by pulls up to ``until_snapshot_id`` (all when None), checked."""
        sql = _SELECT + " WHERE connection = ?"
        params: list[object] = [connection]
        if until_snapshot_id is not None:
            sql += " AND first_snapshot_id <= ?"
            params.append(until_snapshot_id)
        rows = self._query(sql + " ORDER BY started_at, id", params, doing="reading the archived audit-log runs")
        return tuple(self._stored_run(row) for row in rows)

    def _stored_run(self, row: Sequence[Any]) -> AuditLogRun:
        record = dict(zip(_COLUMNS, row[:-1], strict=True))
        what = f"audit-log run {record['report_identifier']}/{record['run_identifier']}"
        self._check("audit_log_runs", record, row[-1], what)
        try:
            body = zlib.decompress(record["body_zlib"])
        except zlib.error:
            body = None
        if body is None or hashlib.sha256(body).hexdigest() != record["sha256"]:
            raise StoreError(
                f"The archived {what} in {self.path} no longer matches its SHA-256.",
                hint="Treat the archived audit log as untrustworthy; restore the database from a backup.",
            )
        return AuditLogRun(
            report_identifier=str(record["report_identifier"]),
            run_identifier=str(record["run_identifier"]),
            started_at=_parse_time(str(record["started_at"])),
            schedule=str(record["schedule"]),
            report_format=str(record["report_format"]),
            endpoint=str(record["endpoint"]),
            body=body,
            sha256=str(record["sha256"]),
            received_at=_parse_time(str(record["received_at"])),
            first_snapshot_id=int(record["first_snapshot_id"]),
        )
