"""The full check of a store (``auditor doctor``): integrity, every tag, the history index, the chain, sizes."""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from auditor.errors import AuditorError, StoreError
from auditor.models import UserHistory
from auditor.store.attestations import _Attestations
from auditor.store.campaigns import _Campaigns
from auditor.store.connections import _Connections
from auditor.store.history import _History
from auditor.store.signing import _Signing
from auditor.store.sqlite import integrity_problems
from auditor.store.summaries import _Summaries


@dataclass(frozen=True, slots=True)
class DoctorCheck:
    """One check of ``auditor doctor``: what was checked, what it found, what to do about it."""

    name: str
    ok: bool
    detail: str
    hint: str = ""


class _Doctor(_Connections, _History, _Summaries, _Campaigns, _Attestations, _Signing):
    """The checks ``auditor doctor`` runs (each one reported, none stopping the others), over every row area."""

    def doctor_checks(self) -> list[DoctorCheck]:
        """Run every check; the last one reports sizes (never a problem in itself)."""
        restore = f"Restore {self.path} from a backup; keep the damaged copy for inspection."
        checks = [self._integrity(restore)]
        connections = sorted(
            str(row[0])
            for row in self._query(
                "SELECT connection FROM snapshots UNION SELECT name FROM connections", doing="listing connections"
            )
        )
        checks.append(self._run("connections", restore, lambda: f"{len(self.list_connections())} checked"))
        for connection in connections:
            checks.extend(self._connection_checks(connection, restore))
        checks.append(self._run("review campaigns", restore, self._campaigns_ok))
        checks.append(DoctorCheck("sizes", True, self._sizes()))
        return checks

    def _connection_checks(self, connection: str, restore: str) -> list[DoctorCheck]:
        rebuild = (
            "The index is rebuilt from the checked snapshots when its rows lose their tags: restore "
            f"{self.path} from a backup, or report it with `auditor -v doctor` output."
        )
        return [
            self._run(f"snapshots of {connection}", restore, functools.partial(self._snapshots_ok, connection)),
            self._run(f"history index of {connection}", rebuild, functools.partial(self._history_ok, connection)),
            self._run(f"attestations of {connection}", restore, functools.partial(self._attestations_ok, connection)),
            self._run(f"evidence chain of {connection}", restore, functools.partial(self._chain_ok, connection)),
        ]

    def _attestations_ok(self, connection: str) -> str:
        return f"{len(self.attestations(connection))} checked"

    def _run(self, name: str, hint: str, check: Callable[[], str]) -> DoctorCheck:
        try:
            return DoctorCheck(name, True, check())
        except AuditorError as exc:
            return DoctorCheck(name, False, exc.message, exc.hint or hint)

    def _integrity(self, restore: str) -> DoctorCheck:
        problems = integrity_problems(self.path)
        if problems:
            return DoctorCheck("integrity", False, "; ".join(problems[:5]), restore)
        return DoctorCheck("integrity", True, "PRAGMA integrity_check: ok (every page and index read)")

    def _snapshots_ok(self, connection: str) -> str:
        """Every snapshot's head, users and raw pages against their tags and digests; the summaries."""
        self._check_latest("snapshots")
        ids = [row[0] for row in self._query(
            "SELECT id FROM snapshots WHERE connection = ? ORDER BY taken_at, id", (connection,), doing="listing"
        )]
        for snapshot_id in ids:
            self._check_users(snapshot_id)
            self.raw_pages(snapshot_id)
        latest = self.latest_snapshot(connection)
        summaries = len([s for _i, _t, s in self.trend_summaries(latest) if s is not None]) if latest else 0
        return f"{len(ids)} snapshots: users, raw pages and {summaries} summaries match their tags"

    def _history_ok(self, connection: str) -> str:
        """The index against the history recomputed from every snapshot's (checked) users."""
        indexed = self.user_history(connection)
        recomputed = _history_of(self._all_snapshots(connection))
        if indexed != recomputed:
            differing = sorted(set(indexed) ^ set(recomputed) | {
                u for u in set(indexed) & set(recomputed) if indexed[u] != recomputed[u]
            })
            raise StoreError(
                f"The user history index of {connection!r} disagrees with its snapshots for "
                f"{len(differing)} users (first: {differing[:3]}).",
                hint="Rows of the index were deleted or changed outside certcentral-auditor: restore "
                f"{self.path} from a backup.",
            )
        return f"{len(indexed)} users: the index matches every snapshot"

    def _all_snapshots(self, connection: str) -> list[_Sightings]:
        ids = self._query(
            "SELECT id FROM snapshots WHERE connection = ? ORDER BY taken_at, id", (connection,), doing="listing"
        )
        # Read one at a time and not kept: a year of snapshots would not fit the cache.
        snapshots = []
        for (snapshot_id,) in ids:
            snapshot = self.get_snapshot(snapshot_id)
            self._loaded.pop(snapshot_id, None)
            snapshots.append(_Sightings(snapshot.id, snapshot.taken_at, {u.id: u.role_names for u in snapshot.users}))
        return snapshots

    def _chain_ok(self, connection: str) -> str:
        self._check_latest("chain")
        heads = self.exports(connection)
        chains: dict[str, list[int]] = {}
        for head in heads:
            chains.setdefault(head.chain_id, []).append(head.sequence)
        for chain_id, sequences in chains.items():
            if sequences != list(range(sequences[0], sequences[0] + len(sequences))):
                raise StoreError(
                    f"The evidence chain {chain_id} of {connection!r} has gaps in its sequence numbers: {sequences}.",
                    hint=f"Restore {self.path} from a backup; `auditor verify BUNDLE` checks delivered bundles.",
                )
        return f"{len(heads)} exports in {len(chains)} chains, sequences without gaps"

    def _campaigns_ok(self) -> str:
        campaigns = self.campaigns()
        for campaign in campaigns:
            self.campaign_imports(campaign.id)
            self.campaign_decisions(campaign.id)
        return f"{len(campaigns)} campaigns with their imports and decisions checked"

    def _sizes(self) -> str:
        def size(path: str) -> int:
            try:
                return Path(path).stat().st_size
            except OSError:
                return 0

        counts = {
            table: self._query(f"SELECT count(*) FROM {table}", doing="counting")[0][0]  # noqa: S608 - constants
            for table in ("snapshots", "user_versions", "user_presence", "raw_pages", "snapshot_summaries")
        }
        raw = self._query("SELECT coalesce(sum(length(body_zlib)), 0) FROM raw_pages", doing="sizing")[0][0]
        free = self._query("PRAGMA freelist_count", doing="sizing")[0][0]  # SQLite: free pages
        page = self._query("PRAGMA page_size", doing="sizing")[0][0]
        return (
            f"file {size(str(self.path)) / 1e6:.1f} MB (write-ahead log {size(f'{self.path}-wal') / 1e6:.1f} MB, "
            f"free {free * page / 1e6:.1f} MB); raw pages {raw / 1e6:.1f} MB compressed; "
            + ", ".join(f"{n} {table}" for table, n in counts.items())
        )


@dataclass(frozen=True, slots=True)
class _Sightings:
    id: int
    taken_at: datetime
    roles: dict[int, str]


def _history_of(snapshots: list[_Sightings]) -> dict[int, UserHistory]:
    """The history from the snapshots themselves (the reference the index is checked against)."""
    first: dict[int, datetime] = {}
    last: dict[int, datetime] = {}
    current: dict[int, str] = {}
    changes: dict[int, list[tuple[datetime, str]]] = {}
    for snapshot in snapshots:
        for user_id, role_names in snapshot.roles.items():
            if user_id not in first:
                first[user_id] = snapshot.taken_at
                changes[user_id] = [(snapshot.taken_at, role_names)]
            elif current[user_id] != role_names:
                changes[user_id].append((snapshot.taken_at, role_names))
            current[user_id] = role_names
            last[user_id] = snapshot.taken_at
    return {
        user_id: UserHistory(user_id, first[user_id], last[user_id], tuple(changes[user_id])) for user_id in first
    }
