"""``auditor report``: the report data of an evaluated snapshot (``auditor.report.data``) and its files."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from auditor.pipeline.campaigns import review_as_of
from auditor.pipeline.findings import Evaluation, evaluate, load_identity, raw_digest
from auditor.pipeline.standards import refuse_existing, split_formats, write_standards
from auditor.pipeline.workspace import Workspace
from auditor.report import PDF_ROSTER_LIMIT
from auditor.report import write_reports as render_and_write
from auditor.report.data import report_data as build

if TYPE_CHECKING:
    from auditor.identity import IdentityRequest
    from auditor.report import ReportData, ReportFormat
    from auditor.standards import StandardsFormat
    from auditor.store import Store


def report_data(workspace: Workspace, evaluation: Evaluation, *, store: Store | None = None) -> ReportData:
    """Everything the templates show (``auditor.report.data``), with the review campaign of the snapshot."""
    from auditor.client import instance_label  # deferred: the client loads httpx, a report needs none of it

    now = workspace.now()
    with workspace.store(store) as opened:
        review_status_then = review_as_of(opened, evaluation.snapshot, evaluation.config, now=now)
    return build(
        evaluation,
        raw_sha256=raw_digest(evaluation.snapshot),
        instance=instance_label(evaluation.snapshot.provenance.base_url),
        review_campaign=review_status_then.to_json() if review_status_then is not None else None,
        now=now,
    )


def write_reports(
    workspace: Workspace,
    evaluation: Evaluation,
    *,
    formats: Sequence[ReportFormat | StandardsFormat],
    output_dir: Path,
    overwrite: bool = False,
    templates_dir: Path | None = None,
    roster_limit: int = PDF_ROSTER_LIMIT,
    progress: Callable[[str], None] | None = None,
    store: Store | None = None,
) -> list[Path]:
    """Render and write the reports of an evaluated snapshot (HTML, PDF), then its OSCAL/OCSF files."""
    report_formats, standards = split_formats(formats)
    if not report_formats and standards:
        return write_standards(evaluation, formats=standards, output_dir=output_dir, overwrite=overwrite)
    if standards and not overwrite and Path(output_dir).is_dir():
        refuse_existing(evaluation, standards, output_dir)  # before anything is rendered, as for the reports
    data = report_data(workspace, evaluation, store=store)
    written = render_and_write(
        data,
        formats=report_formats,
        output_dir=output_dir,
        overwrite=overwrite,
        templates_dir=templates_dir,
        roster_limit=roster_limit,
        progress=progress,
    )
    if standards:
        written += write_standards(evaluation, formats=standards, output_dir=output_dir, overwrite=overwrite)
    return written


def report(
    workspace: Workspace,
    connection: str,
    *,
    formats: Sequence[ReportFormat | StandardsFormat],
    output_dir: Path,
    snapshot_id: int | None = None,
    since_id: int | None = None,
    frameworks: Sequence[str] | None = None,
    identity: IdentityRequest | None = None,
    overwrite: bool = False,
    templates_dir: Path | None = None,
    roster_limit: int = PDF_ROSTER_LIMIT,
    progress: Callable[[str], None] | None = None,
) -> tuple[Evaluation, list[Path]]:
    """``auditor report``: evaluate a snapshot (with the trend) and write its reports, on one store."""
    config = workspace.load_config(frameworks)
    loaded_identity = load_identity(config, identity)  # read in full before the store is opened
    with workspace.store() as store:
        evaluation = evaluate(
            workspace, connection, snapshot_id=snapshot_id, since_id=since_id, frameworks=frameworks,
            with_trend_history=True, loaded_identity=loaded_identity, config=config, store=store,
        )
        paths = write_reports(
            workspace, evaluation, formats=formats, output_dir=output_dir, overwrite=overwrite,
            templates_dir=templates_dir, roster_limit=roster_limit, progress=progress, store=store,
        )
    return evaluation, paths
