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
    from datetime import datetime

    from auditor.identity import IdentityRequest
    from auditor.report import ReportData, ReportFormat
    from auditor.report._sign import PdfSigner
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
    sign_pdf: bool = True,
) -> list[Path]:
    """Render and write the reports of an evaluated snapshot (HTML, PDF), then its OSCAL/OCSF files;
    the PDF is signed unless not ``sign_pdf``."""
    report_formats, standards = split_formats(formats)
    if not report_formats and standards:
        return write_standards(evaluation, formats=standards, output_dir=output_dir, overwrite=overwrite)
    if standards and not overwrite and Path(output_dir).is_dir():
        refuse_existing(evaluation, standards, output_dir)  # before anything is rendered, as for the reports
    data = report_data(workspace, evaluation, store=store)
    signer = None
    if sign_pdf and "pdf" in report_formats:
        signer = evidence_pdf_signer(workspace, store, signed_at=data.generated_at).sign
    written = render_and_write(
        data,
        formats=report_formats,
        output_dir=output_dir,
        overwrite=overwrite,
        templates_dir=templates_dir,
        roster_limit=roster_limit,
        progress=progress,
        sign_pdf=signer,
    )
    if standards:
        written += write_standards(evaluation, formats=standards, output_dir=output_dir, overwrite=overwrite)
    return written


def evidence_pdf_signer(workspace: Workspace, store: Store | None, *, signed_at: datetime) -> PdfSigner:
    """The PAdES signer of PDF reports: the evidence signing key (created on first use), as for bundles."""
    from auditor.errors import CredentialsError
    from auditor.evidence import active_signing_key
    from auditor.pipeline.workspace import check_master_key
    from auditor.report._sign import PdfSigner

    with workspace.store(store) as opened:
        try:
            master = workspace.master_key()
            check_master_key(opened, master)
        except CredentialsError as exc:  # a report without the master key can still be written unsigned
            raise CredentialsError(
                exc.message, hint=f"{exc.hint} Or pass --pdf-unsigned to write the PDF report unsigned.".strip()
            ) from exc
        key, _created = active_signing_key(opened, master, now=workspace.now())
    return PdfSigner(key.private_key, key.fingerprint, key.valid_from, signed_at)


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
    sign_pdf: bool = True,
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
            sign_pdf=sign_pdf,
        )
    return evaluation, paths
