"""``auditor run``: pull, evaluate, report and export in one command, on one store."""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from auditor.atomic import make_private_dirs
from auditor.errors import ApiBadResponseError, ConfigurationError, ReportError
from auditor.labels import day, describe_pull
from auditor.models import FindingsResult, Snapshot
from auditor.pipeline.connections import PullOutcome, pull
from auditor.pipeline.export import export_evidence, timestamp_authority
from auditor.pipeline.findings import evaluate, load_identity
from auditor.pipeline.reports import write_reports
from auditor.pipeline.workspace import Workspace
from auditor.report import PDF_ROSTER_LIMIT, account_slug
from auditor.report.data import account_name
from auditor.store import validate_connection_name

if TYPE_CHECKING:
    from auditor.config import AuditConfig
    from auditor.identity import IdentityRequest
    from auditor.report import ReportFormat
    from auditor.standards import StandardsFormat
    from auditor.store import Store


@dataclass(frozen=True)
class RunOutcome:
    snapshot: Snapshot
    findings: FindingsResult
    report_paths: tuple[Path, ...]
    bundle_path: Path | None
    manifest_sha256: str | None


def run_once(
    workspace: Workspace,
    connection: str,
    *,
    frameworks: Sequence[str] | None,
    output_dir: Path,
    formats: Sequence[ReportFormat | StandardsFormat],
    templates_dir: Path | None = None,
    roster_limit: int = PDF_ROSTER_LIMIT,
    details: bool = False,
    export: bool = True,
    evidence_dir: Path | None = None,
    step: Callable[[str], None] = lambda _message: None,
    after_pull: Callable[[PullOutcome, Store], None] | None = None,
    identity: IdentityRequest | None = None,
    include_identity_source: bool = False,
    tsa_url: str | None = None,
    tsa_optional: bool = False,
    sign_pdf: bool = True,
) -> RunOutcome:
    """Pull, evaluate, report, export: one summary line per step. A failed pull stops everything.

    ``after_pull`` runs between the pull and the evaluation, on the run's store (the demo records
    its review of the new snapshot there). Every argument and the configuration are checked before
    the pull, so a typo (``--framework nist``) fails at once instead of storing a snapshot every
    night and never a report.
    """
    config = _check_run_inputs(
        workspace, connection, frameworks=frameworks, output_dir=output_dir, templates_dir=templates_dir,
        roster_limit=roster_limit, evidence_dir=evidence_dir if export else None, reports=bool(formats),
    )
    timestamp_authority(config, tsa_url=tsa_url, tsa_optional=tsa_optional)  # a bad --tsa-url fails before the pull
    # One store for the whole run: opening it checks the database's integrity, once.
    with workspace.store() as store:
        store.get_connection(connection)  # unknown connection: the hint names `auditor connect`
        if include_identity_source and not export:
            raise ConfigurationError("--include-identity-source needs the evidence export; drop --no-export.")
        # The identity source is read in full before the pull: a bad row fails the run at once (exit 2).
        loaded_identity = load_identity(config, identity, keep_bytes=include_identity_source and export)
        if include_identity_source and loaded_identity is None:
            raise ConfigurationError(
                "--include-identity-source was given, but there is no identity source.",
                hint="Add --identity FILE (or files = [...] in [identity] of auditor.toml).",
            )
        outcome = pull(workspace, connection, details=details, store=store, config=config)
        snapshot = outcome.snapshot
        step(describe_pull(outcome))
        if after_pull is not None and snapshot.complete:
            after_pull(outcome, store)
        if not snapshot.complete:
            raise ApiBadResponseError(
                f"The pull stored snapshot {snapshot.id} as INCOMPLETE ({' '.join(snapshot.provenance.notes)}); "
                "no report or evidence was produced from it.",
                hint="Run again; if it persists, users are being changed during the pull.",
            )
        evaluation = evaluate(
            workspace, connection, snapshot_id=snapshot.id, frameworks=frameworks, with_trend_history=bool(formats),
            loaded_identity=loaded_identity, config=config, store=store,
        )
        findings = evaluation.findings
        identity_note = ""
        if evaluation.identity is not None:
            identity_note = f"; identity source {', '.join(f.name for f in evaluation.identity.files)}"
        step(
            f"Findings: {len(findings.active)} open, {len(findings.suppressed)} suppressed "
            f"({', '.join(findings.profiles)}){identity_note}"
        )
        paths: list[Path] = []
        if formats:
            _make_output_dir(output_dir)
            paths = write_reports(
                workspace,
                evaluation,
                formats=formats,
                output_dir=output_dir,
                overwrite=True,
                templates_dir=templates_dir,
                roster_limit=roster_limit,
                store=store,
                sign_pdf=sign_pdf,
            )
            step("Reports: " + ", ".join(str(path) for path in paths))
        bundle_path: Path | None = None
        manifest: str | None = None
        if export:
            target_dir = evidence_dir or output_dir
            _make_output_dir(target_dir)
            slug = account_slug(account_name(snapshot), snapshot.provenance.account_id)
            data_name = f"certcentral-evidence-{slug}-{day(snapshot.taken_at)}-s{snapshot.id}.zip"
            exported = export_evidence(
                workspace,
                connection,
                output=target_dir / data_name,
                include_reports=bool(paths),
                overwrite=True,
                evaluation=evaluation,
                report_files=paths,
                include_identity_source=include_identity_source,
                store=store,
                tsa_url=tsa_url,
                tsa_optional=tsa_optional,
            )
            bundle_path, manifest = exported.path, exported.manifest_sha256
            if exported.recovered:
                step(exported.recovered)
            if exported.timestamp:
                step(exported.timestamp)
            step(
                f"Evidence: {exported.path} (chain {exported.chain_id}, sequence {exported.sequence}); "
                f"manifest SHA-256 {exported.manifest_sha256}, bundle SHA-256 {exported.zip_sha256}"
            )
    return RunOutcome(
        snapshot=snapshot,
        findings=findings,
        report_paths=tuple(paths),
        bundle_path=bundle_path,
        manifest_sha256=manifest,
    )


def check_run_arguments(
    workspace: Workspace,
    connection: str,
    *,
    frameworks: Sequence[str] | None,
    output_dir: Path,
    templates_dir: Path | None,
    roster_limit: int,
    evidence_dir: Path | None,
    reports: bool,
) -> None:
    """What ``run`` checks before it pulls: the configuration and frameworks, the connection, the paths.

    Raises the error the failing step would raise later (exit 2 for arguments and configuration,
    6 for an output directory that cannot be written), so nothing is pulled or stored for a run
    that cannot finish.
    """
    _check_run_inputs(
        workspace, connection, frameworks=frameworks, output_dir=output_dir, templates_dir=templates_dir,
        roster_limit=roster_limit, evidence_dir=evidence_dir, reports=reports,
    )
    with workspace.store() as store:
        store.get_connection(connection)  # unknown connection: the hint names `auditor connect`


def _check_run_inputs(
    workspace: Workspace,
    connection: str,
    *,
    frameworks: Sequence[str] | None,
    output_dir: Path,
    templates_dir: Path | None,
    roster_limit: int,
    evidence_dir: Path | None,
    reports: bool,
) -> AuditConfig:
    """The checks of :func:`check_run_arguments` that need no store; returns the configuration."""
    validate_connection_name(connection)
    config = workspace.load_config(frameworks)  # unknown profile, bad auditor.toml or exceptions file
    if roster_limit < 0:
        raise ConfigurationError(
            f"--pdf-roster-limit must be 0 or more, got {roster_limit}.", hint="Pass --pdf-roster-limit 500."
        )
    if reports and templates_dir is not None and not Path(templates_dir).is_dir():
        raise ConfigurationError(
            f"The report templates directory {templates_dir} does not exist.",
            hint="Pass --templates DIR pointing at a copy of report_templates/, or leave it out.",
        )
    for directory in dict.fromkeys(d for d in (output_dir, evidence_dir) if d is not None):
        existing = Path(directory)
        while not existing.exists() and existing != existing.parent:
            existing = existing.parent
        if not existing.is_dir() or not os.access(existing, os.W_OK | os.X_OK):
            raise ReportError(
                f"The output directory {directory} cannot be used: {existing} is not a writable directory.",
                hint="Choose another directory with --output, or fix its permissions.",
            )
    return config


def _make_output_dir(directory: Path) -> None:
    """Create an output directory (and parents) owner-only: reports and bundles hold names and emails."""
    try:
        make_private_dirs(directory)
    except OSError as exc:
        raise ReportError(
            f"The output directory {directory} could not be created: {exc.strerror or exc}.",
            hint="Choose another directory with --output.",
        ) from exc
