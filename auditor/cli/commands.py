"""The command handlers: each turns parsed arguments into one use case and its result into output.

A handler takes ``(args, workspace, out, stdin)`` and returns the exit code; errors propagate to
:func:`auditor.cli.main`, the single place they become messages. The text is built in
:mod:`auditor.cli.text`; this module only wires arguments to use cases.
"""

from __future__ import annotations

import argparse
import getpass
import json
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

from auditor import exports
from auditor.atomic import write_output
from auditor.cli.output import Output, PullProgress, progress_line
from auditor.cli.parser import OutputFormat, values
from auditor.cli.text import (
    connections_table,
    describe_connection,
    describe_export,
    format_changes_text,
    format_findings_text,
    format_history_text,
    format_review_status_text,
    safe,
)
from auditor.cli.text import table as _table
from auditor.cli.workspace import env_secrets
from auditor.demo import run_demo
from auditor.errors import ConfigurationError, ExitCode, ReportError
from auditor.identity import IdentityRequest, preset
from auditor.labels import day, describe_pull, iso
from auditor.models import AttestationKind, FindingsResult, Severity
from auditor.notify import NotifyOn
from auditor.pipeline import (
    NotifySettings,
    RunRequest,
    Workspace,
    attest,
    close_review,
    connect,
    connection_target,
    diff,
    disconnect,
    discover_subaccounts,
    doctor,
    evaluate,
    export_evidence,
    import_review,
    list_connections,
    list_snapshots,
    open_review,
    public_signing_key,
    pull,
    report,
    resolve_connections,
    resolve_settings,
    review_status,
    rotate_signing_key,
    run_accounts,
    run_once,
    status_csv,
    suggested_connection_name,
    test_connection,
    user_timeline,
    verify_evidence,
)
from auditor.pipeline.standards import standards_view
from auditor.report import ReportFormat
from auditor.samples import latest_sample_state
from auditor.sandbox import Faults, RecordedRequest, SandboxServer, load_dataset
from auditor.sandbox.server import ROUTE_FAULTS
from auditor.standards import StandardsFormat

#: Commands that need no data directory (verify works offline on any machine).
NO_WORKSPACE = frozenset({"verify", "demo", "sandbox"})


# --- argument values -------------------------------------------------------------------------


def _identity_request(args: argparse.Namespace) -> IdentityRequest:
    if args.identity_preset is not None:
        preset(args.identity_preset)  # an unknown name is exit 2 at once, naming the valid ones
    return IdentityRequest(files=tuple(args.identity), preset=args.identity_preset)


def _frameworks(value: str | None) -> list[str] | None:
    if not value:
        return None
    names = [part.strip() for part in value.split(",") if part.strip()]
    return names or None


def _formats(value: str) -> list[ReportFormat | StandardsFormat]:
    formats: list[ReportFormat | StandardsFormat] = []
    hint = "Use html, pdf or html,pdf (oscal and ocsf may be added: html,pdf,oscal,ocsf)."
    for part in value.split(","):
        name = part.strip().lower()
        if not name:
            continue
        try:
            formats.append(StandardsFormat(name) if name in values(StandardsFormat) else ReportFormat(name))
        except ValueError:
            raise ConfigurationError(f"Unknown report format {name!r}.", hint=hint) from None
    if not formats:
        raise ConfigurationError("No report format given.", hint=hint)
    return formats


def _due_date(text: str | None) -> datetime | None:
    if text is None:
        return None
    try:
        parsed = datetime.strptime(text, "%Y-%m-%d")
    except ValueError:
        raise ConfigurationError(f"--due {text!r} is not a date.", hint="Give --due YYYY-MM-DD.") from None
    return parsed.replace(hour=23, minute=59, second=59, tzinfo=UTC)


def _read_api_key(args: argparse.Namespace, stdin: TextIO, out: Output) -> str:
    if args.key_stdin:
        key = stdin.readline().strip()
    elif env_key := env_secrets(args).api_key:
        key = env_key.strip()
    elif stdin.isatty():
        key = getpass.getpass("CertCentral API key (input hidden): ").strip()
    else:
        raise ConfigurationError(
            "No API key given.",
            hint="Pipe it with --key-stdin, set DIGICERT_API_KEY, or run in a terminal to be prompted. "
            "A key is never accepted as a command-line value (it would show in the process list).",
        )
    if not key:
        raise ConfigurationError("The API key is empty.", hint="Copy the key in full from Automation → API Keys.")
    return key


def _fail_on(result: FindingsResult, threshold: str | None, out: Output) -> int:
    if threshold is None:
        return ExitCode.OK
    limit = Severity(threshold)
    failing = [f for f in result.active if f.severity.at_least(limit)]
    if failing:
        out.info(f"{len(failing)} unsuppressed finding(s) at or above '{threshold}': exit 1.")
        return ExitCode.FINDINGS_OR_VERIFY_FAILED
    return ExitCode.OK


def _write_data(out: Output, payload: bytes | str, output: Path | None) -> None:
    """Data to stdout (no ``--output``, or ``--output -``), else to the file.

    A regular file (or a new one) is replaced atomically; a device, FIFO or other special file
    (``/dev/null``, ``/dev/stdout``, a pipe) is written in place and never replaced.
    """
    if output is None or str(output) == "-":
        out.data(payload.decode("utf-8") if isinstance(payload, bytes) else payload)
        return
    data = payload if isinstance(payload, bytes) else payload.encode("utf-8")
    try:
        write_output(output, data)
    except OSError as exc:
        raise ReportError(f"Could not write {output}: {exc.strerror or exc}.") from exc
    out.info(f"Wrote {output}")


# --- connections ---------------------------------------------------------------------------------


def cmd_connect(args: argparse.Namespace, workspace: Workspace, out: Output, stdin: TextIO) -> int:
    region, base_url = connection_target(args.region, args.base_url)
    api_key = _read_api_key(args, stdin, out)
    report = connect(workspace, args.connection, base_url=base_url, region=region, api_key=api_key)
    for line in describe_connection(report):
        out.info(line)
    out.info(f"Saved connection '{args.connection}' ({base_url}); the key is stored encrypted.")
    return ExitCode.OK


def cmd_test(args: argparse.Namespace, workspace: Workspace, out: Output, stdin: TextIO) -> int:
    for line in describe_connection(test_connection(workspace, args.connection)):
        out.info(line)
    return ExitCode.OK


def cmd_connections(args: argparse.Namespace, workspace: Workspace, out: Output, stdin: TextIO) -> int:
    if args.discover:
        return _discover(args, workspace, out=out)
    records = list_connections(workspace)
    if not records:
        out.info("No connections yet. Add one with `auditor connect`.")
        return ExitCode.OK
    out.data(connections_table(records))
    return ExitCode.OK


def _discover(args: argparse.Namespace, workspace: Workspace, *, out: Output) -> int:
    """``connections --discover``: the subaccounts, and the command that connects each with its own key."""
    found = discover_subaccounts(workspace, args.connection)
    if not found:
        out.info(f"The key of connection '{args.connection}' lists no subaccounts.")
        return ExitCode.OK
    rows = [("ID", "NAME", "STATUS", "MASTER USER", "CONNECT AS")]
    for item in found:
        rows.append((str(item.id), safe(item.name), safe(item.status), safe(item.master_email),
                     suggested_connection_name(item)))
    out.data(_table(rows))
    out.info(f"{len(found)} subaccount(s). Each is read with its own key, so its evidence stays its own: create an "
             "API key in that subaccount (Automation → API Keys), then `auditor connect --connection NAME "
             "--key-stdin`, and `auditor run --all-connections`.")
    return ExitCode.OK


def cmd_disconnect(args: argparse.Namespace, workspace: Workspace, out: Output, stdin: TextIO) -> int:
    disconnect(workspace, args.name)
    out.info(f"Removed connection '{args.name}' and its stored key.")
    return ExitCode.OK


def cmd_sandbox(args: argparse.Namespace, workspace: Workspace, out: Output, stdin: TextIO) -> int:
    datasets = [load_dataset(path) for path in args.dataset] or [load_dataset(latest_sample_state())]
    dataset = datasets[0]
    route_faults = []
    for item in args.route_fault:
        route, _, answer = item.partition("=")
        if not route.startswith("/") or answer not in ROUTE_FAULTS:
            raise ConfigurationError(
                f"--route-fault {item!r} is not ROUTE=ANSWER.",
                hint="For example --route-fault /user/api-only=missing-permission; answers: "
                f"{', '.join(ROUTE_FAULTS)}.",
            )
        route_faults.append((route, answer))
    faults = Faults(
        latency_ms=args.latency_ms,
        error_rate=args.error_rate,
        retry_after=args.retry_after,
        route_faults=tuple(route_faults),
        echo_request_headers=args.echo_request_headers,
        drip_bytes_per_second=max(0, args.drip_bytes_per_second),
        page_total=args.page_total,
        gzip_bomb_bytes=max(0, args.gzip_bomb_bytes),
    )

    def log_request(request: RecordedRequest) -> None:
        query = f"?{request.query}" if request.query else ""
        out.info(f"{request.status} {request.method} {request.path}{query} [{request.key_label}]")

    server = SandboxServer(
        dataset, host=args.host, port=args.port, faults=faults, on_request=None if args.quiet else log_request
    )
    more = _more_sandboxes(datasets[1:], args, faults=faults, on_request=None if args.quiet else log_request)
    out.info(f"Fake CertCentral serving {len(dataset.users)} users at {server.base_url}")
    for extra in more:
        out.info(f"Fake CertCentral serving {len(extra.dataset.users)} users of account "
                 f"{extra.dataset.account.get('name', '')!r} at {extra.base_url} (same keys as its dataset lists)")
    out.info(f"Report Library (audit log) at {server.report_library_url}")
    out.info("Keys (each shows one connection-test outcome):")
    for key in dataset.keys:
        out.info(f"  {key['key']:<36} {key.get('description', '')}")
    out.info(f"Try: auditor connect --base-url {server.base_url} --key-stdin <<< sandbox-admin-key")
    out.info("Ctrl-C stops it.")
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        out.info("Stopped.")
    finally:
        server.stop()
        for extra in more:
            extra.stop()
    return ExitCode.OK


def _more_sandboxes(
    datasets: list[Any], args: argparse.Namespace, *, faults: Faults,
    on_request: Callable[[RecordedRequest], None] | None,
) -> list[SandboxServer]:
    """``sandbox --dataset A --dataset B``: B and later on the next ports (any free port with --port 0), serving."""
    servers: list[SandboxServer] = []
    try:
        for index, extra in enumerate(datasets, start=1):
            port = args.port + index if args.port else 0
            servers.append(SandboxServer(extra, host=args.host, port=port, faults=faults,
                                         on_request=on_request).start())
    except BaseException:
        for server in servers:
            server.stop()
        raise
    return servers


# --- snapshots -----------------------------------------------------------------------------------


def cmd_pull(args: argparse.Namespace, workspace: Workspace, out: Output, stdin: TextIO) -> int:
    with PullProgress(out) as observer:
        outcome = pull(workspace, args.connection, details=args.details, page_size=args.page_size,
                       observer=observer)
    out.info(describe_pull(outcome))
    return ExitCode.OK


def cmd_snapshots(args: argparse.Namespace, workspace: Workspace, out: Output, stdin: TextIO) -> int:
    summaries = list_snapshots(workspace, args.connection)
    if not summaries:
        out.info("No snapshots yet. Run `auditor pull`.")
        return ExitCode.OK
    rows = [("ID", "CONNECTION", "TAKEN AT", "USERS", "ADMINS", "COMPLETE")]
    for s in summaries:
        rows.append((str(s.id), s.connection, iso(s.taken_at), str(s.users), str(s.admins),
                     "yes" if s.complete else "NO (incomplete)"))
    out.data(_table(rows))
    return ExitCode.OK


def cmd_history(args: argparse.Namespace, workspace: Workspace, out: Output, stdin: TextIO) -> int:
    timeline = user_timeline(workspace, args.connection, args.user)
    user, history = timeline.user, timeline.history
    if args.format == OutputFormat.JSON:
        document = {
            "user": exports.user_dict(user),
            "first_seen": iso(history.first_seen),
            "last_seen": iso(history.last_seen),
            "present_in_latest_snapshot": timeline.present_in_latest,
            "role_history": [{"since": iso(at), "roles": roles} for at, roles in history.role_history],
            # null when the latest snapshot could not read the key list (issue 17)
            "api_keys": None
            if timeline.keys is None
            else [
                {
                    "id": key.id,
                    "name": key.name,
                    "kind": key.kind,
                    "status": key.status,
                    "restriction": key.restriction,
                    "legacy": key.is_legacy,
                    "created": iso(key.created),
                    "last_used": iso(key.last_used),
                }
                for key in timeline.keys
            ],
        }
        out.data(exports.to_json_bytes(document).decode("utf-8"))
        return ExitCode.OK
    out.data(format_history_text(timeline))
    return ExitCode.OK


def cmd_diff(args: argparse.Namespace, workspace: Workspace, out: Output, stdin: TextIO) -> int:
    old, new, changes = diff(workspace, args.connection, from_id=args.from_id, to_id=args.to_id,
                             allow_incomplete=args.allow_incomplete)
    if args.format == OutputFormat.JSON:
        _write_data(out, exports.changes_json(changes), args.output)
    elif args.format == OutputFormat.CSV:
        _write_data(out, exports.changes_csv(changes), args.output)
    else:
        _write_data(out, format_changes_text(old, new, changes), args.output)
    return ExitCode.OK


# --- findings and reviews ------------------------------------------------------------------------


def cmd_findings(args: argparse.Namespace, workspace: Workspace, out: Output, stdin: TextIO) -> int:
    evaluation = evaluate(workspace, args.connection, snapshot_id=args.snapshot,
                          frameworks=_frameworks(args.framework), identity=_identity_request(args))
    result = evaluation.findings
    if args.format == OutputFormat.JSON:
        _write_data(out, exports.findings_json(result), args.output)
    elif args.format in (OutputFormat.OSCAL, OutputFormat.OCSF):
        _write_data(out, standards_view(evaluation, StandardsFormat(args.format)), args.output)
    else:
        _write_data(out, format_findings_text(evaluation), args.output)
    return _fail_on(result, args.fail_on, out)


def cmd_attest(args: argparse.Namespace, workspace: Workspace, out: Output, stdin: TextIO) -> int:
    attestation = attest(workspace, args.connection, kind=AttestationKind(args.kind), by=args.by,
                         statement=args.statement, valid_days=args.valid_days,
                         snapshot_id=getattr(args, "snapshot", None))
    if attestation.snapshot_id is not None:
        out.info(f"Recorded review attestation {attestation.id} by {attestation.by} of snapshot "
                 f"{attestation.snapshot_id} (raw data SHA-256 {attestation.raw_sha256}); next review due "
                 f"{day(attestation.expires)}.")
    else:
        out.info(f"Recorded {attestation.kind.value} attestation {attestation.id} by {attestation.by}, "
                 f"valid until {day(attestation.expires)}.")
    return ExitCode.OK


def cmd_review(args: argparse.Namespace, workspace: Workspace, out: Output, stdin: TextIO) -> int:
    if args.action == "open":
        opened = open_review(workspace, args.connection, snapshot_id=args.snapshot, scope=args.scope,
                             due=_due_date(args.due), output=args.output)
        campaign = opened.campaign
        out.data(str(campaign.id))
        out.info(f"Opened review campaign {campaign.id} of snapshot {campaign.snapshot_id} (raw data SHA-256 "
                 f"{campaign.raw_sha256}), scope {campaign.scope}: {opened.rows} row(s) written to {opened.output}.")
        return ExitCode.OK
    if args.action == "import":
        outcome = import_review(workspace, args.file, by=args.by)
        out.info(f"Recorded {outcome.decisions} decision(s) from {args.file.name} (SHA-256 {outcome.recorded.sha256}) "
                 f"into review campaign {outcome.campaign.id}"
                 + (f", replacing {outcome.superseded} earlier decision(s) of this reviewer" if outcome.superseded
                    else "")
                 + f"; {outcome.undecided} row(s) left undecided.")
        for refused in outcome.refused:
            out.info(f"Refused {args.file.name} row {refused.row}, column {refused.column} (user {refused.user_id}, "
                     f"{safe(refused.email)}): {refused.reason}; {refused.remedy}.")
        return ExitCode.OK
    if args.action == "status":
        status = review_status(workspace, campaign_id=args.campaign, connection=args.connection)
        if args.format == OutputFormat.JSON:
            out.data(json.dumps(status.to_json(), indent=2, ensure_ascii=False))
        elif args.format == OutputFormat.CSV:
            out.stdout.write(status_csv(status))
            out.stdout.flush()
        else:
            out.data(format_review_status_text(status))
        return ExitCode.OK
    closed, attestation, not_reviewed = close_review(
        workspace, campaign_id=args.campaign, connection=args.connection, by=args.by, statement=args.statement,
        allow_undecided=args.allow_undecided,
    )
    out.info(f"Closed review campaign {closed.id}: recorded review attestation {attestation.id} by {attestation.by} "
             f"signing off snapshot {closed.snapshot_id}, next review due {day(attestation.expires)}"
             + (f"; {not_reviewed} row(s) recorded as not reviewed" if not_reviewed else "") + ".")
    return ExitCode.OK


# --- reports and evidence ------------------------------------------------------------------------


def cmd_report(args: argparse.Namespace, workspace: Workspace, out: Output, stdin: TextIO) -> int:
    formats = _formats(args.format)
    evaluation, paths = report(workspace, args.connection, formats=formats, output_dir=args.output,
                               snapshot_id=args.snapshot, since_id=args.since, frameworks=_frameworks(args.framework),
                               identity=_identity_request(args), overwrite=args.overwrite,
                               templates_dir=args.templates, roster_limit=args.pdf_roster_limit,
                               progress=progress_line(out), sign_pdf=not args.pdf_unsigned)
    for path in paths:
        out.data(str(path))
    return _fail_on(evaluation.findings, args.fail_on, out)


def cmd_export(args: argparse.Namespace, workspace: Workspace, out: Output, stdin: TextIO) -> int:
    outcome = export_evidence(workspace, args.connection, snapshot_id=args.snapshot,
                              frameworks=_frameworks(args.framework), output=args.output,
                              include_reports=not args.no_reports, reports_dir=args.reports,
                              new_chain=args.new_chain,
                              overwrite=args.overwrite, identity=_identity_request(args),
                              include_identity_source=args.include_identity_source,
                              tsa_url=args.tsa_url, tsa_optional=args.tsa_optional,
                              sign_pdf=not args.pdf_unsigned)
    if outcome.recovered:
        out.info(outcome.recovered)
    out.data(str(outcome.path))
    out.info(describe_export(outcome))
    return ExitCode.OK


def cmd_verify(args: argparse.Namespace, workspace: Workspace | None, out: Output, stdin: TextIO) -> int:
    ok, text = verify_evidence(args.bundle, public_keys=args.public_key, manifest_sha256=args.manifest_sha256,
                               allow_unpinned=args.allow_unpinned, previous=args.previous, reperform=args.reperform,
                               tsa_certs=args.tsa_cert)
    out.data(text)
    return ExitCode.OK if ok else ExitCode.FINDINGS_OR_VERIFY_FAILED


def cmd_keys(args: argparse.Namespace, workspace: Workspace, out: Output, stdin: TextIO) -> int:
    if args.action == "rotate":
        fingerprint, pem = rotate_signing_key(workspace)
        out.info(f"New signing key period started; the previous key is retired. New key {fingerprint}:")
    else:
        fingerprint, pem = public_signing_key(workspace)
        out.info(f"Evidence signing key {fingerprint} (hand this to your auditor out of band):")
    out.data(pem)
    return ExitCode.OK


def cmd_run(args: argparse.Namespace, workspace: Workspace, out: Output, stdin: TextIO) -> int:
    if args.snapshot is not None:
        raise ConfigurationError(
            "`auditor run` always reports on the snapshot it pulls; --snapshot does not apply.",
            hint=f"Report on an earlier snapshot with `auditor report --snapshot {args.snapshot}`.",
        )
    connections = resolve_connections(workspace, names=args.connection, all_connections=args.all_connections)
    notify = resolve_settings(workspace, urls=args.notify, on=NotifyOn(args.notify_on),
                              frameworks=_frameworks(args.framework))
    if args.all_connections or len(connections) > 1 or notify.enabled:
        return _run_accounts(args, workspace, out=out, connections=connections, notify=notify)
    outcome = run_once(
        workspace, args.connection, frameworks=_frameworks(args.framework), output_dir=args.output,
        formats=_formats(args.format), templates_dir=args.templates, roster_limit=args.pdf_roster_limit,
        details=args.details, export=not args.no_export, step=out.info,
        identity=_identity_request(args), include_identity_source=args.include_identity_source,
        tsa_url=args.tsa_url, tsa_optional=args.tsa_optional, sign_pdf=not args.pdf_unsigned,
    )
    return _fail_on(outcome.findings, args.fail_on, out)


def _run_accounts(
    args: argparse.Namespace, workspace: Workspace, *, out: Output, connections: tuple[str, ...],
    notify: NotifySettings,
) -> int:
    """``run`` with --notify, or over several connections (issue 21): exit codes in README's table.

    One account that fails stops nothing: its error is printed and the others run. The exit code is
    the failed run's own (one connection), else 8 when any of several failed, else 7 when the
    notification was not delivered, else --fail-on's.
    """
    fleet = args.all_connections or len(connections) > 1
    request = RunRequest(
        frameworks=_frameworks(args.framework), formats=_formats(args.format), templates_dir=args.templates,
        roster_limit=args.pdf_roster_limit, details=args.details, export=not args.no_export,
        identity=_identity_request(args), include_identity_source=args.include_identity_source,
        tsa_url=args.tsa_url, tsa_optional=args.tsa_optional, sign_pdf=not args.pdf_unsigned,
    )
    outcome = run_accounts(workspace, connections, request=request, output_dir=args.output, fleet=fleet,
                           parallel=args.parallel, notify=notify, step=out.info)
    for account in outcome.failed:
        if fleet and account.error is not None:
            out.info(f"Error in connection '{account.connection}': {account.error.diagnostics()}")
    alert = outcome.alert
    if alert is not None:
        if alert.message is None:
            out.info("Notification: nothing new needs attention since the previous run; none sent.")
        elif alert.failed_urls:
            out.info(f"Error: the notification ({len(alert.items)} item(s)) could not be delivered to "
                     f"{', '.join(alert.failed_urls)}. The run's reports and evidence stand; the items are sent "
                     f"again by the next run (exit {int(ExitCode.NOTIFY_FAILED)}).")
        else:
            out.info(f"Notification sent to {len(notify.urls)} URL(s): {len(alert.items)} item(s)"
                     + (f", {alert.retried} of them retried from an earlier run" if alert.retried else "") + ".")
    if not fleet and outcome.failed and outcome.failed[0].error is not None:
        raise outcome.failed[0].error
    if outcome.failed:
        out.info(f"{len(outcome.failed)} of {len(outcome.accounts)} connection(s) failed: "
                 f"{', '.join(a.connection for a in outcome.failed)} (exit {int(ExitCode.ACCOUNTS_FAILED)}).")
        return ExitCode.ACCOUNTS_FAILED
    if alert is not None and alert.failed_urls:
        return ExitCode.NOTIFY_FAILED
    codes = [_fail_on(a.outcome.findings, args.fail_on, out) for a in outcome.accounts if a.outcome is not None]
    return max(codes, default=ExitCode.OK)


def cmd_demo(args: argparse.Namespace, workspace: Workspace | None, out: Output, stdin: TextIO) -> int:
    outcome = run_demo(args.output, step=out.info, operator=args.operator)
    for path in outcome.paths:
        out.data(str(path))
    return ExitCode.OK if outcome.verified else ExitCode.FINDINGS_OR_VERIFY_FAILED


def cmd_doctor(args: argparse.Namespace, workspace: Workspace, out: Output, stdin: TextIO) -> int:
    result = doctor(workspace)
    lines = [f"Checked {result.path}:"]
    for check in result.checks:
        lines.append(f"  {'ok  ' if check.ok else 'FAIL'}  {check.name}: {check.detail}")
        if not check.ok and check.hint:
            lines.append(f"        {check.hint}")
    out.data("\n".join(lines))
    if result.ok:
        out.info("No problems found.")
        return ExitCode.OK
    out.info(f"{sum(1 for c in result.checks if not c.ok)} checks found problems: see FAIL above.")
    return ExitCode.LOCAL_DATA


Handler = Callable[[argparse.Namespace, Any, Output, TextIO], int]

HANDLERS: dict[str, Handler] = {
    "connect": cmd_connect,
    "test": cmd_test,
    "connections": cmd_connections,
    "disconnect": cmd_disconnect,
    "sandbox": cmd_sandbox,
    "pull": cmd_pull,
    "snapshots": cmd_snapshots,
    "history": cmd_history,
    "diff": cmd_diff,
    "findings": cmd_findings,
    "attest": cmd_attest,
    "review": cmd_review,
    "report": cmd_report,
    "export": cmd_export,
    "verify": cmd_verify,
    "keys": cmd_keys,
    "run": cmd_run,
    "demo": cmd_demo,
    "doctor": cmd_doctor,
}
