"""Access review campaigns: a campaign bound to one snapshot, its imported worksheets, every decision."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Final

from auditor.errors import ConfigurationError
from auditor.labels import day
from auditor.models import Attestation, AttestationKind
from auditor.store.attestations import _Attestations
from auditor.store.codec import (
    _opt_parse_time,
    _opt_time,
    _parse_time,
    _time,
)
from auditor.store.records import (
    CampaignRecord,
    DecisionRecord,
    ImportRecord,
    StoreTamperedError,
)
from auditor.store.sqlite import _new_id
from auditor.store.tags import TAGGED_COLUMNS


class _Campaigns(_Attestations):
    """The ``campaigns``, ``campaign_imports`` and ``campaign_decisions`` rows.

    Built on the attestations: closing a campaign records its sign-off in the same transaction.
    """

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
                f"Review campaign #{campaign.id} was closed on {day(campaign.closed_at)} by {campaign.closed_by}: "
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
