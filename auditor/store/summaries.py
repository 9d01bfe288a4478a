"""Per-snapshot summary rows: what the rules gave each snapshot, so the trend re-runs nothing."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Final

from auditor.errors import StoreError
from auditor.models import Snapshot, SnapshotFindings
from auditor.store.codec import _parse_time, _time
from auditor.store.snapshots import _Snapshots
from auditor.store.tags import TAGGED_COLUMNS

_COLUMNS: Final = TAGGED_COLUMNS["snapshot_summaries"]
_HEAD: Final = 12  # the snapshot head's columns, as _Snapshots._check_head reads them
_HEADS_AND_SUMMARIES: Final = (  # built from constants only
    "SELECT s.id, s.connection, s.taken_at, s.complete, s.details_fetched, s.user_count, s.admin_count,"  # noqa: S608
    " s.provenance, s.tag, s.users_tag, s.pages_tag, s.previous_id, "
    + ", ".join(f"m.{c}" for c in _COLUMNS)
    + ", m.tag FROM snapshots AS s LEFT JOIN snapshot_summaries AS m ON m.snapshot_id = s.id"
)


class _Summaries(_Snapshots):
    """The ``snapshot_summaries`` rows (one per evaluated snapshot, tagged)."""

    def save_summary(self, summary: SnapshotFindings) -> None:
        """Store (or replace, for another rules version) a snapshot's summary."""
        record: dict[str, object] = {
            "snapshot_id": summary.snapshot_id,
            "rules_version": summary.rules_version,
            "computed_at": _time(summary.computed_at),
            "users": summary.users,
            "admins": summary.admins,
            "findings": summary.findings,
            "by_severity": json.dumps(dict(summary.by_severity), sort_keys=True),
            "by_rule": json.dumps(dict(summary.by_rule), sort_keys=True),
        }
        with self._write(f"saving the summary of snapshot {summary.snapshot_id}"):
            self._db.execute("DELETE FROM snapshot_summaries WHERE snapshot_id = ?", (summary.snapshot_id,))
            self._db.execute(
                f"INSERT INTO snapshot_summaries ({', '.join(_COLUMNS)}, tag)"  # noqa: S608 - constant names
                f" VALUES ({', '.join('?' * (len(_COLUMNS) + 1))})",
                (*record.values(), self._tag("snapshot_summaries", record)),
            )

    def trend_summaries(self, until: Snapshot) -> list[tuple[int, datetime, SnapshotFindings | None]]:
        """Every complete snapshot of ``until``'s connection up to it: (id, taken at, its stored summary or None)."""
        taken = _time(until.taken_at)
        rows = self._query(
            _HEADS_AND_SUMMARIES + " WHERE s.connection = ? AND s.complete >= 1"
            " AND (s.taken_at < ? OR (s.taken_at = ? AND s.id <= ?)) ORDER BY s.taken_at, s.id",
            (until.connection, taken, taken, until.id),
            doing=f"reading the trend of {until.connection!r}",
        )
        self._check_latest("snapshots")
        found: list[tuple[int, datetime, SnapshotFindings | None]] = []
        for row in rows:
            self._check_head(row[:_HEAD])
            snapshot_id, taken_at, stored = row[0], _parse_time(row[2]), row[_HEAD:]
            if stored[0] is None:
                found.append((snapshot_id, taken_at, None))
                continue
            self._check_row("snapshot_summaries", stored, f"summary of snapshot #{snapshot_id}")
            try:
                summary = SnapshotFindings(
                    snapshot_id=snapshot_id,
                    taken_at=taken_at,
                    rules_version=str(stored[1]),
                    computed_at=_parse_time(stored[2]),
                    users=int(stored[3]),
                    admins=int(stored[4]),
                    findings=int(stored[5]),
                    by_severity=tuple(sorted(json.loads(stored[6]).items())),
                    by_rule=tuple(sorted(json.loads(stored[7]).items())),
                )
            except (ValueError, TypeError, AttributeError) as exc:
                raise StoreError(
                    f"The summary of snapshot {snapshot_id} in {self.path} cannot be read.",
                    hint="Run `auditor doctor` for the full check; restore the database from a backup.",
                ) from exc
            found.append((snapshot_id, taken_at, summary))
        return found
