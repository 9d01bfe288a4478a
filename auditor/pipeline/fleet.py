"""``auditor run`` over several connections: each in turn (or a few at once), a fleet summary, one notification.

Each account keeps its own snapshot history, evidence chain and bundle (everything is per
connection in the store already); a failing account is recorded and the others go on. With
``--parallel N`` at most N accounts run at once, each with its own client and so its own key's
rate limit.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from auditor.atomic import write_bytes_atomic
from auditor.errors import AuditorError, ConfigurationError, ReportError
from auditor.fleet import (
    HTML_NAME,
    JSON_NAME,
    TEMPLATE,
    AccountSummary,
    FleetSummary,
    cross_account_changes,
    findings_by_severity,
    shared_administrators,
    summary_html,
    summary_json,
    write_order,
)
from auditor.labels import day
from auditor.models import AttestationKind, Subaccount
from auditor.notify import NotifyState
from auditor.pipeline.alerts import (
    AccountAlert,
    AlertOutcome,
    ChangeWatch,
    NotifySettings,
    assess_account,
    load_account_state,
    notify_accounts,
)
from auditor.pipeline.run import RunOutcome, _make_output_dir, check_run_arguments, run_once
from auditor.pipeline.workspace import Workspace
from auditor.report import PDF_ROSTER_LIMIT, account_slug, default_templates_dir
from auditor.report.data import account_name

if TYPE_CHECKING:
    from auditor.identity import IdentityRequest
    from auditor.models import ChangeSet, FindingsResult
    from auditor.report import ReportFormat
    from auditor.standards import StandardsFormat
    from auditor.store import SnapshotSummary, Store

#: Upper bound of ``--parallel``: CertCentral's limits are per key, but the machine's are not.
MAX_PARALLEL = 8


@dataclass(frozen=True)
class RunRequest:
    """What every account's run does: ``run_once``'s arguments but the connection and directories."""

    frameworks: Sequence[str] | None = None
    formats: Sequence[ReportFormat | StandardsFormat] = ()
    templates_dir: Path | None = None
    roster_limit: int = PDF_ROSTER_LIMIT
    details: bool = False
    export: bool = True
    identity: IdentityRequest | None = None
    include_identity_source: bool = False
    #: ``--tsa-url`` / ``--tsa-optional`` / ``--pdf-unsigned`` (issue 19).
    tsa_url: str | None = None
    tsa_optional: bool = False
    sign_pdf: bool = True


@dataclass(frozen=True)
class AccountRun:
    """One account's run: its outcome, or the error that stopped it."""

    connection: str
    output_dir: Path
    outcome: RunOutcome | None = None
    error: AuditorError | None = None
    changes: ChangeSet | None = None
    alert: AccountAlert | None = None


@dataclass(frozen=True)
class FleetOutcome:
    accounts: tuple[AccountRun, ...]
    summary: FleetSummary | None = None
    summary_paths: tuple[Path, ...] = ()
    alert: AlertOutcome | None = None
    outputs: tuple[Path, ...] = field(default=())

    @property
    def failed(self) -> tuple[AccountRun, ...]:
        return tuple(account for account in self.accounts if account.error is not None)


def resolve_connections(workspace: Workspace, *, names: str | None, all_connections: bool) -> tuple[str, ...]:
    """``--connection a,b`` (comma-separated, in the order given) or ``--all-connections`` (every saved one)."""
    if all_connections:
        if names not in (None, "default"):
            raise ConfigurationError("Give either --connection NAME[,NAME] or --all-connections, not both.")
        with workspace.store() as store:
            found = tuple(record.name for record in store.list_connections())
        if not found:
            raise ConfigurationError("--all-connections: there are no saved connections.",
                                     hint="Add one with `auditor connect --connection NAME`.")
        return found
    parts = tuple(dict.fromkeys(part.strip() for part in (names or "default").split(",") if part.strip()))
    if not parts:
        raise ConfigurationError("--connection is empty.", hint="Give --connection NAME or NAME,NAME.")
    return parts


def run_accounts(
    workspace: Workspace,
    connections: Sequence[str],
    *,
    request: RunRequest,
    output_dir: Path,
    fleet: bool,
    parallel: int = 1,
    notify: NotifySettings | None = None,
    step: Callable[[str], None] = lambda _message: None,
) -> FleetOutcome:
    """Run every connection, then (``fleet``) write the summary, then send at most one notification.

    ``fleet``: each account writes into ``output_dir/<connection>/`` and the summary lands in
    ``output_dir``; otherwise the one account writes into ``output_dir`` as ``auditor run`` always has.
    Every account's arguments are checked before the first pull (exit 2 at once for a typo).
    """
    if not 1 <= parallel <= MAX_PARALLEL:
        raise ConfigurationError(f"--parallel must be between 1 and {MAX_PARALLEL}, got {parallel}.",
                                 hint="Pass --parallel 2, or leave it out to run the connections in turn.")
    dirs = {name: (output_dir / name if fleet else output_dir) for name in connections}
    for name in connections:
        check_run_arguments(
            workspace, name, frameworks=request.frameworks, output_dir=dirs[name],
            templates_dir=request.templates_dir, roster_limit=request.roster_limit,
            evidence_dir=dirs[name] if request.export else None, reports=bool(request.formats),
        )
    if fleet and request.export and parallel > 1:
        # The first export creates the signing key: create it once, before accounts race for it.
        from auditor.pipeline.export import public_signing_key

        public_signing_key(workspace)
    lock = threading.Lock()

    def account_step(name: str) -> Callable[[str], None]:
        def emit(message: str) -> None:
            with lock:
                step(f"[{name}] {message}" if fleet else message)

        return emit

    def one(name: str) -> AccountRun:
        return _run_account(workspace, name, request=request, output_dir=dirs[name], notify=notify,
                            step=account_step(name))

    if parallel > 1 and len(connections) > 1:
        with ThreadPoolExecutor(max_workers=parallel, thread_name_prefix="auditor-run") as pool:
            runs = tuple(pool.map(one, connections))
    else:
        runs = tuple(one(name) for name in connections)

    summary: FleetSummary | None = None
    summary_paths: tuple[Path, ...] = ()
    if fleet:
        summary = fleet_summary(workspace, runs)
        summary_paths = write_summary(summary, output_dir=output_dir, templates_dir=request.templates_dir)
        step("Fleet summary: " + ", ".join(str(path) for path in summary_paths))
    outputs = (*summary_paths, *(path for run in runs for path in _outputs(run)))
    alert: AlertOutcome | None = None
    if notify is not None and notify.enabled:
        alerts = [run.alert for run in runs if run.alert is not None]
        alert = notify_accounts(workspace, notify, alerts=alerts, outputs=outputs)
    return FleetOutcome(accounts=runs, summary=summary, summary_paths=summary_paths, alert=alert,
                        outputs=tuple(outputs))


def _run_account(
    workspace: Workspace,
    connection: str,
    *,
    request: RunRequest,
    output_dir: Path,
    notify: NotifySettings | None,
    step: Callable[[str], None],
) -> AccountRun:
    state = load_account_state(workspace, connection) if notify is not None and notify.enabled else None
    # Without notifications the watch only keeps the pull's changes (for the cross-account view).
    watch = ChangeWatch(state or NotifyState(connection=connection))
    outcome: RunOutcome | None = None
    error: AuditorError | None = None
    try:
        outcome = run_once(
            workspace, connection, frameworks=request.frameworks, output_dir=output_dir, formats=request.formats,
            templates_dir=request.templates_dir, roster_limit=request.roster_limit, details=request.details,
            export=request.export, step=step, after_pull=watch, identity=request.identity,
            include_identity_source=request.include_identity_source,
            tsa_url=request.tsa_url, tsa_optional=request.tsa_optional, sign_pdf=request.sign_pdf,
        )
    except AuditorError as caught:
        error = caught
    alert = None
    if state is not None:
        alert = assess_account(state, outcome=outcome, watch=watch, error=error, now=workspace.now())
    return AccountRun(connection=connection, output_dir=output_dir, outcome=outcome, error=error,
                      changes=watch.changes, alert=alert)


def _outputs(run: AccountRun) -> tuple[Path, ...]:
    if run.outcome is None:
        return ()
    bundle = (run.outcome.bundle_path,) if run.outcome.bundle_path is not None else ()
    return (*run.outcome.report_paths, *bundle)


def fleet_summary(workspace: Workspace, runs: Sequence[AccountRun]) -> FleetSummary:
    """Per account: users, administrators, open findings by severity, review state, last successful run."""
    accounts: list[AccountSummary] = []
    with workspace.store() as store:
        for run in runs:
            accounts.append(_account_summary(store, run))
    return FleetSummary(
        generated_at=workspace.now(),
        accounts=write_order(accounts),
        cross_account=cross_account_changes({run.connection: run.changes for run in runs}),
        shared_administrators=shared_administrators({
            run.connection: [user.email for user in run.outcome.snapshot.admins if user.is_active]
            for run in runs if run.outcome is not None
        }),
    )


def _account_summary(store: Store, run: AccountRun) -> AccountSummary:
    outputs = tuple(str(path) for path in _outputs(run))
    if run.outcome is not None:
        snapshot = run.outcome.snapshot
        return AccountSummary(
            connection=run.connection, ok=True, account_name=account_name(snapshot),
            account_id=snapshot.provenance.account_id, users=len(snapshot.users),
            administrators=len(snapshot.admins), findings=findings_by_severity(run.outcome.findings),
            review=_review_state(store, run.connection, findings=run.outcome.findings),
            last_successful_run=snapshot.taken_at, snapshot_id=snapshot.id, outputs=outputs,
        )
    error = run.error.message.splitlines()[0] if run.error is not None else "failed"
    complete = [s for s in _summaries(store, run.connection) if s.complete]
    last = complete[-1] if complete else None
    return AccountSummary(
        connection=run.connection, ok=False, error=error,
        users=last.users if last else None, administrators=last.admins if last else None,
        last_successful_run=last.taken_at if last else None, snapshot_id=last.id if last else None,
        outputs=outputs,
    )


def _summaries(store: Store, connection: str) -> list[SnapshotSummary]:
    try:
        return list(store.list_snapshots(connection))
    except AuditorError:
        return []


def _review_state(store: Store, connection: str, *, findings: FindingsResult) -> str:
    """Overdue (the rule says so), else the latest sign-off and when the next is due, plus any open campaign."""
    parts: list[str] = []
    if any(finding.rule_id == "review-overdue" for finding in findings.active):
        parts.append("overdue")
    reviews = [a for a in store.attestations(connection) if a.kind is AttestationKind.REVIEW]
    if reviews:
        latest = max(reviews, key=lambda attestation: attestation.made_at)
        parts.append(f"signed off {day(latest.made_at)}, next due {day(latest.expires)}")
    elif not parts:
        parts.append("no review on record")
    open_campaigns = [c.id for c in store.campaigns(connection) if c.state == "open"]
    if open_campaigns:
        parts.append("campaign " + ", ".join(f"#{cid}" for cid in open_campaigns) + " open")
    return "; ".join(parts)


def write_summary(summary: FleetSummary, *, output_dir: Path, templates_dir: Path | None) -> tuple[Path, ...]:
    """``fleet-summary.json`` and ``fleet-summary.html`` in ``output_dir``, each written atomically."""
    _make_output_dir(output_dir)
    # A customised --templates copy made before fleet.html.j2 existed falls back to the shipped one.
    chosen = templates_dir if templates_dir is not None and (templates_dir / TEMPLATE).is_file() else None
    html = summary_html(summary, templates_dir=chosen or default_templates_dir())
    paths = (output_dir / HTML_NAME, output_dir / JSON_NAME)
    try:
        write_bytes_atomic(paths[0], html.encode("utf-8"))
        write_bytes_atomic(paths[1], summary_json(summary))
    except OSError as exc:
        raise ReportError(f"The fleet summary could not be written to {output_dir}: {exc.strerror or exc}.",
                          hint="Choose another directory with --output.") from exc
    return paths


def discover_subaccounts(workspace: Workspace, connection: str) -> tuple[Subaccount, ...]:
    """``connections --discover``: the subaccounts the connection's key lists (§11.6), to connect each.

    PermissionDeniedError (exit 4) when the key may not list them (403) or the account has none (404).
    """
    from auditor.pipeline.connections import _client, _decrypt_key  # the client loads httpx: only here

    with workspace.store() as store:
        record = store.get_connection(connection)
        api_key = _decrypt_key(workspace, record)
    with _client(workspace, record.base_url, api_key, connection=connection) as client:
        return client.list_subaccounts()


def suggested_connection_name(subaccount: Subaccount) -> str:
    """A connection name for a discovered subaccount: its name as a slug (``auditor connect --connection``)."""
    return account_slug(subaccount.name or f"account-{subaccount.id}", subaccount.id)[:64]
