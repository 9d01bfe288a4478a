"""Access review campaigns (issue 14): ``auditor review open``, ``auditor review import``,
``auditor review status`` and ``auditor review close``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from auditor import review
from auditor.atomic import write_output
from auditor.errors import ConfigurationError
from auditor.labels import day
from auditor.models import Attestation
from auditor.pipeline.campaigns import CampaignStatus, campaign_rows, campaign_status, later_snapshots, pick_campaign
from auditor.pipeline.findings import evaluate, load_identity, raw_digest, reviewed_snapshot
from auditor.pipeline.workspace import Workspace
from auditor.rules import review_interval

#: A worksheet larger than this is not a worksheet this tool wrote.
MAX_WORKSHEET_BYTES = 64 * 1024 * 1024


@dataclass(frozen=True)
class OpenedCampaign:
    """What ``review open`` did: the campaign recorded and the worksheet written."""

    campaign: Any  # CampaignRecord
    rows: int
    output: Path


def _opened_by(workspace: Workspace) -> str:
    return workspace.operator.label if workspace.operator is not None else "unknown"


def open_review(
    workspace: Workspace,
    connection: str,
    *,
    snapshot_id: int | None,
    scope: str,
    due: datetime | None,
    output: Path,
) -> OpenedCampaign:
    """Open a campaign bound to one snapshot and write its worksheet (CSV or XLSX by suffix).

    The worksheet is written inside the transaction that records the campaign: if writing fails,
    no campaign is recorded.
    """
    suffix = output.suffix.lower()
    if suffix not in {".xlsx", ".csv"}:
        raise ConfigurationError(
            f"--output {output} must end in .xlsx or .csv (the worksheet's format).",
            hint="Give --output review.xlsx or --output review.csv.",
        )
    if scope not in review.SCOPES:
        raise ConfigurationError(
            f"Unknown scope {scope!r}.", hint="Use --scope all, privileged, flagged or with-keys."
        )
    # The configuration and the identity source first (their errors before the store's); then one
    # store for the evaluation and the campaign.
    config = workspace.load_config()
    loaded_identity = load_identity(config, None)
    with workspace.store() as store:
        evaluation = evaluate(
            workspace, connection, snapshot_id=snapshot_id, loaded_identity=loaded_identity, config=config,
            store=store,
        )
        snapshot = evaluation.snapshot
        now = workspace.now()
        if due is not None and due <= now:
            raise ConfigurationError(f"--due {day(due)} is not in the future.", hint="Give a later --due DATE.")
        digest = raw_digest(snapshot)
        counted: list[int] = []

        def build(campaign_id: int) -> str:
            rows = review.build_rows(
                campaign_id,
                snapshot,
                scope=scope,
                findings=evaluation.findings,
                history=evaluation.history,
                privileged_roles=evaluation.config.privileged_roles,
            )
            if suffix == ".csv":
                data = review.worksheet_csv(rows)
            else:
                data = review.worksheet_xlsx(
                    rows, campaign_id=campaign_id, snapshot=snapshot, raw_sha256=digest, due=due, scope=scope,
                    created=now,
                )
            try:
                write_output(output, data)
            except OSError as exc:
                raise ConfigurationError(
                    f"Could not write {output}: {exc.strerror or exc}. No campaign was opened.",
                    hint="Give --output a writable path.",
                ) from exc
            counted.append(len(rows))
            return json.dumps(rows, sort_keys=True)

        campaign = store.open_campaign(
            connection,
            snapshot_id=snapshot.id,
            raw_sha256=digest,
            scope=scope,
            due=due,
            opened_at=now,
            opened_by=_opened_by(workspace),
            worksheet=build,
        )
    return OpenedCampaign(campaign=campaign, rows=counted[0], output=output)


@dataclass(frozen=True)
class ImportOutcome:
    campaign: Any  # CampaignRecord
    recorded: Any  # ImportRecord
    decisions: int
    refused: tuple[Any, ...]  # RefusedRow
    undecided: int
    superseded: int


def import_review(workspace: Workspace, file: Path, *, by: str) -> ImportOutcome:
    """Validate a filled worksheet and record its decisions: none if the file fails as a whole,
    else every row but those refused by a row-level rule (reported in ``refused``)."""
    name, email = review.parse_identity(by)
    try:
        with file.open("rb") as handle:
            content = handle.read(MAX_WORKSHEET_BYTES + 1)
    except OSError as exc:
        raise ConfigurationError(f"Could not read {file}: {exc.strerror or exc}.") from exc
    if len(content) > MAX_WORKSHEET_BYTES:
        raise ConfigurationError(f"{file.name}: larger than {MAX_WORKSHEET_BYTES} bytes; not a review worksheet.")
    campaign_id, campaign_row = review.campaign_of(file.name, content)
    reviewer = f"{name} <{email}>"
    with workspace.store() as store:
        try:
            store.get_campaign(campaign_id)
        except ConfigurationError as exc:
            raise ConfigurationError(
                f"{file.name}: row {campaign_row}, column campaign: {exc.message} Nothing was recorded.",
                hint=exc.hint,
            ) from exc
        campaign = store.get_open_campaign(campaign_id)
        parsed = review.parse_worksheet(
            file.name,
            content,
            campaign_id=campaign.id,
            snapshot_id=campaign.snapshot_id,
            rows=campaign_rows(campaign),
            reviewer=reviewer,
            reviewer_email=email,
        )
        earlier = {
            d.user_id for d in store.campaign_decisions(campaign.id) if d.reviewer.casefold() == reviewer.casefold()
        }
        recorded = store.record_import(
            campaign.id,
            file_name=file.name,
            content=content,
            imported_by=reviewer,
            imported_at=workspace.now(),
            decisions=parsed.decisions,
        )
    return ImportOutcome(
        campaign=campaign,
        recorded=recorded,
        decisions=len(parsed.decisions),
        refused=parsed.refused,
        undecided=parsed.undecided,
        superseded=sum(1 for d in parsed.decisions if d["user_id"] in earlier),
    )


def review_status(workspace: Workspace, *, campaign_id: int | None, connection: str | None) -> CampaignStatus:
    """A campaign's decisions and their remediation as of now (default: the open campaign, else the latest)."""
    config = workspace.load_config()
    now = workspace.now()
    with workspace.store() as store:
        campaign = pick_campaign(store, campaign_id, connection)
        later = later_snapshots(store, campaign.connection, campaign.snapshot_id, until=now)
        return campaign_status(store, campaign, later=later, config=config, as_of=now)


def close_review(
    workspace: Workspace,
    *,
    campaign_id: int | None,
    connection: str | None,
    by: str,
    statement: str,
    allow_undecided: bool,
) -> tuple[Any, Attestation, int]:
    """Management's acknowledgement: the campaign snapshot's review sign-off; the campaign becomes immutable.

    The sign-off counts for the review interval in force (the profiles' strictest ``full_review_days``,
    or ``privileged_review_days`` when the snapshot has privileged users and that is shorter; either
    overridden in ``auditor.toml``), so ``review-overdue`` and the sign-off's expiry agree. The
    sign-off and the close are one store transaction. Returns (campaign, the review attestation,
    rows recorded as not reviewed).
    """
    name, email = review.parse_identity(by)
    if not statement.strip():
        raise ConfigurationError("Closing a review needs a --statement.")
    config = workspace.load_config()
    now = workspace.now()
    with workspace.store() as store:
        campaign = store.get_open_campaign(pick_campaign(store, campaign_id, connection).id)
        later = later_snapshots(store, campaign.connection, campaign.snapshot_id, until=now)
        status = campaign_status(store, campaign, later=later, config=config, as_of=now)
        if status.undecided and not allow_undecided:
            raise ConfigurationError(
                f"Review campaign #{campaign.id} has {status.undecided} undecided row(s) of {len(status.rows)}; "
                "nothing was closed.",
                hint=f"Import the missing decisions (`auditor review import FILE --by ...`), or close with "
                f"--allow-undecided to record them as not reviewed "
                f"(see `auditor review status --campaign {campaign.id}`).",
            )
        snapshot = reviewed_snapshot(store, campaign.connection, campaign.snapshot_id, now=now)
        valid_days, _field = review_interval(snapshot, config)
        text = (
            f"Access review campaign #{campaign.id} ({campaign.scope}; {status.decided} of {len(status.rows)} rows "
            "decided" + (f", {status.undecided} not reviewed" if status.undecided else "") + f"): {statement.strip()}"
        )
        closed, attestation = store.close_campaign(
            campaign.id,
            closed_at=now,
            closed_by=f"{name} <{email}>",
            statement=statement.strip(),
            sign_off=text,
            expires=now + timedelta(days=valid_days),
            raw_sha256=raw_digest(snapshot),
        )
    return closed, attestation, status.undecided
