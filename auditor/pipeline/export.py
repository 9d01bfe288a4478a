"""A signed bundle of one snapshot and the signing key (``auditor export``, ``auditor keys public``,
``auditor keys rotate``); the chain advances through the export journal (``auditor.evidence.journal``).
"""

from __future__ import annotations

import gc
import json
import re
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from auditor.errors import ConfigurationError, EvidenceError
from auditor.evidence import ChainPosition, active_signing_key, build_bundle, bundle_context, contents_from, journal
from auditor.evidence import rotate_signing_key as rotate
from auditor.evidence.auditlog import audit_log_context, with_audit_log
from auditor.evidence.recorded import identity_evidence, rule_settings
from auditor.evidence.reperform import rule_inputs_json
from auditor.evidence.timestamp import TimestampAuthority
from auditor.identity import match_users
from auditor.models import RawPage
from auditor.pipeline.campaigns import review_as_of, status_csv
from auditor.pipeline.findings import Evaluation, evaluate, load_identity, raw_digest, rules_version
from auditor.pipeline.reports import evidence_pdf_signer, report_data
from auditor.pipeline.verify import check_users_against_raw_pages
from auditor.pipeline.workspace import Workspace, check_master_key
from auditor.report import render_html, render_pdf
from auditor.store import export_lock

if TYPE_CHECKING:
    from auditor.config import AuditConfig
    from auditor.evidence.reuse import ReusedReport
    from auditor.identity import IdentityRequest, IdentitySource
    from auditor.store import Store


@dataclass(frozen=True)
class ExportOutcome:
    """A written evidence bundle and its place in the connection's chain."""

    path: Path
    chain_id: str
    sequence: int
    manifest_sha256: str
    #: SHA-256 of the whole ZIP file, printed beside the manifest's.
    zip_sha256: str
    #: Why a new chain began ('' when this bundle continues the chain).
    new_chain_reason: str
    signing_key_created: bool
    #: What was done about a bundle left by an interrupted export ('' when there was none).
    recovered: str = ""
    #: One sentence on the RFC 3161 token ('' when no TSA was configured).
    timestamp: str = ""


def timestamp_authority(config: AuditConfig, *, tsa_url: str | None, tsa_optional: bool) -> TimestampAuthority | None:
    """The TSA of an export: ``--tsa-url`` (and ``--tsa-optional``), else ``[evidence]`` of auditor.toml."""
    url = tsa_url or config.tsa_url
    if url is None:
        return None
    return TimestampAuthority(url, optional=tsa_optional or (tsa_url is None and config.tsa_optional))


def export_evidence(
    workspace: Workspace,
    connection: str,
    *,
    output: Path,
    snapshot_id: int | None = None,
    frameworks: Sequence[str] | None = None,
    include_reports: bool = True,
    new_chain: bool = False,
    overwrite: bool = False,
    evaluation: Evaluation | None = None,
    report_files: Sequence[Path] = (),
    reports_dir: Path | None = None,
    identity: IdentityRequest | None = None,
    include_identity_source: bool = False,
    store: Store | None = None,
    tsa_url: str | None = None,
    tsa_optional: bool = False,
    sign_pdf: bool = True,
) -> ExportOutcome:
    """Write a signed bundle for one snapshot and advance the connection's evidence chain.

    ``report_files`` are reports this process has just rendered from ``evaluation`` (``auditor
    run``): they go into the bundle byte for byte, hashed as delivered. ``reports_dir`` holds
    reports written earlier by ``auditor report`` (``auditor export --reports DIR``): they go in
    the same way, but only when their report id and tool version are those of the snapshot as
    evaluated here (``auditor.evidence.reuse``); any other is refused. Otherwise the reports are
    rendered here.

    The identity source is recorded (names, digests, rows, mapping and the matched records) in the
    manifest's context and the rule inputs; its files go into the bundle only with
    ``include_identity_source`` (they hold personal data of everyone in the roster).

    With a TSA (``tsa_url``, else ``[evidence] tsa_url``) the bundle carries its RFC 3161 token over
    the signature; a TSA that fails stops the export unless ``tsa_optional``.
    """
    if reports_dir is not None and not include_reports:
        raise ConfigurationError(
            "--reports and --no-reports contradict each other.",
            hint="Pass --reports DIR to put those reports into the bundle, or --no-reports to leave reports out.",
        )
    loaded_identity = None
    config = None
    if evaluation is None:
        # The configuration and the identity source are read in full first: their errors come
        # before the store is opened, as for every command.
        config = workspace.load_config(frameworks)
        loaded_identity = load_identity(config, identity, keep_bytes=include_identity_source)
    # One store for the evaluation, the reports and the chain.
    with workspace.store(store) as store:
        if evaluation is None:
            evaluation = evaluate(
                workspace, connection, snapshot_id=snapshot_id, frameworks=frameworks,
                # The trend (every earlier snapshot) is only needed to render reports here.
                with_trend_history=include_reports and reports_dir is None,
                loaded_identity=loaded_identity, config=config, store=store,
            )
        if include_identity_source and evaluation.identity is None:
            raise ConfigurationError(
                "--include-identity-source was given, but there is no identity source.",
                hint="Add --identity FILE (or files = [...] in [identity] of auditor.toml).",
            )
        identity_files = evaluation.identity_raw if include_identity_source else ()
        timestamp = timestamp_authority(evaluation.config, tsa_url=tsa_url, tsa_optional=tsa_optional)
        report_html, report_pdf = _report_bytes(
            workspace, evaluation, include_reports, report_files, reports_dir=reports_dir, store=store,
            sign_pdf=sign_pdf,
        )
        master = workspace.master_key()
        # One export of a connection at a time: the second starts from the head the first recorded
        # (the store's compare-and-swap below still refuses a fork should the lock be bypassed).
        with export_lock(workspace.data_dir, connection, timeout=workspace.lock_timeouts.export):
            # The time is read once the lock is held: an export that waited must not predate the
            # signing key the export before it created.
            now = workspace.now()
            check_master_key(store, master)
            key, created = active_signing_key(store, master, now=now)
            recovered = journal.recover(store, data_dir=workspace.data_dir, connection=connection)
            head = store.chain_head(connection)
            if head is None:
                chain = ChainPosition.start(reason=f"first evidence bundle of connection '{connection}'")
            elif new_chain:
                chain = ChainPosition.start(
                    reason=f"new chain requested with --new-chain; the previous chain {head.chain_id} "
                    f"ended at sequence {head.sequence}"
                )
            else:
                chain = ChainPosition.after(head)
            raw_pages = store.raw_pages(evaluation.snapshot.id)
            check_users_against_raw_pages(evaluation.snapshot, raw_pages)
            exceptions = evaluation.config.exceptions
            rule_inputs = _rule_inputs(evaluation, raw_pages, now=now)
            review_files = _review_files(store, evaluation, now=now)
            try:
                contents = contents_from(
                    evaluation.snapshot,
                    raw_pages=raw_pages,
                    findings=evaluation.findings,
                    changes=evaluation.changes,
                    exceptions=exceptions,
                    attestations=evaluation.attestations,
                    # The views are as of the snapshot, like its findings: an export a year later
                    # gives the same views (only the manifest's export time and chain move on).
                    now=evaluation.snapshot.taken_at,
                    history=evaluation.history,
                    report_html=report_html,
                    report_pdf=report_pdf,
                    rule_inputs=rule_inputs,
                    identity_files=identity_files,
                    review_files=review_files,
                    reviews=evaluation.reviews,
                )
            except OSError as exc:
                # openpyxl builds the XLSX view through temporary files: a full or unwritable
                # temporary directory surfaces here, not as a bug. Its half-run writer generators
                # fail again when collected; collect them now, quietly, instead of at exit.
                exc.__traceback__ = None
                if exc.__cause__ is not None:  # lxml's error, translated by the exports: its frames too
                    exc.__cause__.__traceback__ = None
                hook, sys.unraisablehook = sys.unraisablehook, lambda _unraisable: None
                try:
                    gc.collect()
                finally:
                    sys.unraisablehook = hook
                raise EvidenceError(
                    f"The evidence bundle could not be assembled: a temporary file could not be written "
                    f"({exc.strerror or exc}).",
                    hint=f"Check free space and permissions in {tempfile.gettempdir()} (or set TMPDIR).",
                ) from exc
            contents = with_audit_log(contents, evaluation.audit_log)
            context = bundle_context(
                evaluation.snapshot,
                findings=evaluation.findings,
                changes=evaluation.changes,
                exceptions=exceptions,
                attestations=evaluation.attestations,
                retention=evaluation.config.retention_manifest(),
                raw_pages=len(raw_pages),
                rules_version=rules_version(),
                rule_settings=rule_settings(evaluation.config),
                identity_source=identity_evidence(evaluation.identity, included=bool(identity_files)),
            )
            context["audit_log"] = audit_log_context(evaluation.audit_log)  # issue 17
            bundle = build_bundle(
                contents, signer=key.private_key, chain=chain, context=context, now=now, key_valid_from=key.valid_from,
                timestamp=timestamp,
            )
            # Published and recorded in the chain through the journal, so a crash between the two
            # steps is repaired by the next export (journal.recover above).
            path = journal.publish(
                store, bundle, output, data_dir=workspace.data_dir, connection=connection, expected=head,
                new_chain=new_chain and head is not None, overwrite=overwrite,
            )
    return ExportOutcome(
        path=path,
        chain_id=chain.chain_id,
        sequence=chain.sequence,
        manifest_sha256=bundle.manifest_sha256,
        zip_sha256=bundle.zip_sha256,
        new_chain_reason=chain.new_chain_reason,
        signing_key_created=created,
        recovered=recovered,
        timestamp=_timestamp_note(timestamp, bundle.timestamp_token),
    )


def _timestamp_note(timestamp: TimestampAuthority | None, token: bytes | None) -> str:
    if timestamp is None:
        return ""
    if token is None:
        return f"Trusted timestamp: none; {timestamp.url} gave no token and --tsa-optional let the export proceed."
    return f"Trusted timestamp: RFC 3161 token from {timestamp.url} in signature.tsr (check with --tsa-cert)."


def _recorded_identity(evaluation: Evaluation) -> IdentitySource | None:
    """The identity records a bundle carries: only those some user of the snapshot matched."""
    source = evaluation.identity
    if source is None:
        return None
    matches = match_users(evaluation.snapshot.users, source, now=evaluation.snapshot.taken_at)
    return source.recorded(matches)


def _rule_inputs(evaluation: Evaluation, raw_pages: Sequence[RawPage], *, now: datetime) -> bytes:
    """``evidence/rule-inputs.json``: what the rules used besides the raw pages (issue 12 §5)."""
    config = evaluation.config
    # Only the file's name is shown anywhere; the local path stays out of the bundle.
    identity = config.identity
    identity = replace(
        identity,
        files=tuple(Path(p.name) for p in identity.files),
        map_file=Path(identity.map_file.name) if identity.map_file is not None else None,
    )
    config = replace(
        config, source=Path(config.source.name) if config.source is not None else None, identity=identity
    )
    return rule_inputs_json(
        evaluation.snapshot,
        previous=evaluation.previous,
        history=evaluation.history,
        config=config,
        attestations=evaluation.attestations,
        reviews=evaluation.reviews,
        raw_pages=raw_pages,
        evaluated_at=evaluation.findings.evaluated_at,
        exported_at=now,
        rules_version=rules_version(),
        identity=_recorded_identity(evaluation),
    )


def _review_files(store: Store, evaluation: Evaluation, *, now: datetime) -> tuple[tuple[str, bytes], ...]:
    """``review/campaign-N/...``: the campaign the snapshot's report shows, its worksheets as imported,
    the normalised decisions (JSON and CSV) and the remediation states (issue 14)."""
    status = review_as_of(store, evaluation.snapshot, evaluation.config, now=now)
    if status is None:
        return ()
    folder = f"review/campaign-{status.campaign.id}"
    document = status.to_json()
    files: list[tuple[str, bytes]] = [
        (f"{folder}/campaign.json", (json.dumps(
            {key: value for key, value in document.items() if key not in {"decisions", "history"}},
            indent=2, sort_keys=True, ensure_ascii=False,
        ) + "\n").encode("utf-8")),
        (f"{folder}/decisions.json", (json.dumps(
            {"format": "certcentral-auditor-review-decisions/1", "campaign": status.campaign.id,
             "decisions": document["decisions"], "history": document["history"]},
            indent=2, sort_keys=True, ensure_ascii=False,
        ) + "\n").encode("utf-8")),
        (f"{folder}/decisions.csv", status_csv(status).encode("utf-8")),
    ]
    for recorded in status.imports:
        safe = re.sub(r"[^A-Za-z0-9._-]", "_", recorded.file_name)[:100] or "worksheet"
        files.append((f"{folder}/worksheets/{recorded.id:03d}-{safe}", recorded.content))
    return tuple(files)


def _report_bytes(
    workspace: Workspace,
    evaluation: Evaluation,
    include: bool,
    report_files: Sequence[Path],
    *,
    reports_dir: Path | None,
    store: Store,
    sign_pdf: bool = True,
) -> tuple[bytes | None, bytes | None]:
    if not include:
        return None, None
    if reports_dir is not None:
        reused = {report.path.suffix: report.content for report in _reused_reports(evaluation, reports_dir)}
        return reused.get(".html"), reused.get(".pdf")
    if report_files:
        html = next((p.read_bytes() for p in report_files if p.suffix == ".html"), None)
        pdf = next((p.read_bytes() for p in report_files if p.suffix == ".pdf"), None)
        return html, pdf

    data = report_data(workspace, evaluation, store=store)
    signer = evidence_pdf_signer(workspace, store, signed_at=data.generated_at).sign if sign_pdf else None
    return render_html(data).encode("utf-8"), render_pdf(data, sign=signer)


def _reused_reports(evaluation: Evaluation, reports_dir: Path) -> tuple[ReusedReport, ...]:
    """The reports ``auditor report`` wrote into ``reports_dir`` for this snapshot, checked for re-use."""
    from auditor import __version__
    from auditor.evidence.reuse import reuse_reports
    from auditor.report import basename_of
    from auditor.report.data import account_name, report_id
    from auditor.rules import review_of

    snapshot = evaluation.snapshot
    base = basename_of(account_name(snapshot), snapshot.provenance.account_id, snapshot.taken_at)
    candidates = [reports_dir / f"{base}.{suffix}" for suffix in ("html", "pdf")]
    found = [path for path in candidates if path.is_file()]
    if not found:
        raise ConfigurationError(
            f"--reports {reports_dir}: no report of snapshot {snapshot.id} there "
            f"(looked for {candidates[0].name} and {candidates[1].name}).",
            hint=f"Write them with `auditor report --snapshot {snapshot.id} --output {reports_dir}`, "
            "or leave out --reports (the export then renders the reports itself).",
        )
    expected = report_id(
        snapshot, evaluation.findings, review_of(evaluation.attestations, snapshot.id),
        raw_sha256=raw_digest(snapshot),
    )
    return reuse_reports(
        found, expected_id=expected, tool_version=__version__, flag="--reports", snapshot_id=snapshot.id
    )


def public_signing_key(workspace: Workspace) -> tuple[str, str]:
    """The evidence signing key's fingerprint and public PEM (created on first use)."""
    with workspace.store() as store:
        master = workspace.master_key()
        check_master_key(store, master)
        key, _created = active_signing_key(store, master, now=workspace.now())
    return key.fingerprint, key.public_pem


def rotate_signing_key(workspace: Workspace) -> tuple[str, str]:
    """Retire the current signing key and start a new key period."""
    with workspace.store() as store:
        master = workspace.master_key()
        check_master_key(store, master)
        key = rotate(store, master, now=workspace.now())
    return key.fingerprint, key.public_pem
