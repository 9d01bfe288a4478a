"""The command line: the only place that reads argv and the environment, prints, and exits.

Heavy libraries (httpx, pandas, weasyprint, cryptography) are imported inside the command
handlers, so ``auditor --help`` starts fast.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import os
import sys
from collections.abc import Callable, Mapping, MutableMapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from auditor import __version__
from auditor.errors import AuditorError, ConfigurationError, ExitCode

if TYPE_CHECKING:
    from auditor.client import ConnectionReport
    from auditor.models import ChangeSet, FindingsResult, Operator, Snapshot
    from auditor.pipeline import Evaluation, ExportOutcome, Workspace
    from auditor.sandbox import RecordedRequest

APP_NAME = "certcentral-auditor"
SEVERITIES = ("critical", "high", "medium", "low", "info")
FRAMEWORKS_HELP = "pci-dss-4, cis-v8, nist-800-53-moderate, soc2, iso27001-2022, hipaa, strict"

EXIT_CODES_HELP = """\
exit codes:
  0  success
  1  findings at or above --fail-on, or evidence that failed verification
  2  usage or configuration error (also: missing or wrong master key)
  3  API key rejected by CertCentral
  4  API key not allowed to read users (restriction too narrow, or the linked user's role)
  5  CertCentral unreachable, unavailable, or answering unexpectedly after retries
  6  local data problem (database or file corrupt, locked, unreadable, or not writable)
  70 internal error (a bug; -v shows the traceback)

environment:
  AUDITOR_HOME             data directory (default: the platform's user data directory)
  AUDITOR_MASTER_KEY       master key (urlsafe base64, 32 bytes) that encrypts stored secrets
  AUDITOR_MASTER_KEY_FILE  where the master key file lives (default: the user config directory)
  DIGICERT_API_KEY         API key for `auditor connect` (instead of the prompt)
"""


class _Formatter(argparse.RawDescriptionHelpFormatter):
    pass


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="auditor",
        description="User-access reviews and tamper-evident evidence for DigiCert CertCentral. "
        "Read-only: only GET requests ever leave the tool.",
        epilog=EXIT_CODES_HELP,
        formatter_class=_Formatter,
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="show tracebacks for errors")
    parser.add_argument("--config", type=Path, help="auditor.toml to use (default: ./auditor.toml, then the data dir)")
    parser.add_argument("--retries", type=int, default=6, metavar="N",
                        help="attempts per request on 429/5xx/network errors, with back-off (default 6)")
    parser.add_argument("--timeout", type=float, default=30.0, metavar="SECONDS",
                        help="idle timeout towards CertCentral: longest wait for the next byte (default 30)")
    parser.add_argument("--deadline", type=float, default=1800.0, metavar="SECONDS",
                        help="a whole pull (or connection test) ends within this, retries included (default 1800)")
    parser.add_argument("--max-users", type=int, default=1_000_000, metavar="N",
                        help="refuse a pull whose page.total is above N users (default 1000000)")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    def command(name: str, help_text: str) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, help=help_text, description=help_text, epilog=EXIT_CODES_HELP,
                                  formatter_class=_Formatter)
        return sub

    def connection_option(sub: argparse.ArgumentParser) -> None:
        sub.add_argument("--connection", default="default", metavar="NAME", help="saved connection (default: default)")

    sub = command("connect", "Test an API key and save it (encrypted) as a connection.")
    connection_option(sub)
    where = sub.add_mutually_exclusive_group()
    where.add_argument("--region", choices=("us", "eu"), help="CertCentral instance (default: us)")
    where.add_argument("--base-url", metavar="URL", help="custom base URL, e.g. the sandbox's")
    sub.add_argument("--key-stdin", action="store_true", help="read the API key from standard input")

    sub = command("test", "Run the connection test with a saved key.")
    connection_option(sub)

    command("connections", "List saved connections (never the key: only its fingerprint).")

    sub = command("disconnect", "Forget a saved connection and its key.")
    sub.add_argument("name", metavar="NAME")

    sub = command("sandbox", "Run the fake CertCentral server on loopback (foreground).")
    sub.add_argument("--host", default="127.0.0.1")
    sub.add_argument("--port", type=int, default=8443)
    sub.add_argument("--dataset", type=Path, help="dataset JSON (default: the bundled sample account)")
    sub.add_argument("--latency-ms", type=int, default=0, help="added latency per request")
    sub.add_argument("--error-rate", type=float, default=0.0, help="share of answers replaced by 500/503")
    sub.add_argument("--retry-after", type=int, help="send Retry-After (seconds) on 429/503")
    sub.add_argument("--quiet", action="store_true", help="do not log each request (key labels only, never keys)")
    sub.add_argument("--route-fault", action="append", default=[], metavar="ROUTE=ANSWER",
                     help="make a route always fail, e.g. /user/api-only=missing-permission (answers: "
                     "missing-permission, route-not-found, not-found, html-403, html-404, server-error; "
                     "/user/{id} means every id; also /key, /container/{id}/ip/rules, /account/guest-access; "
                     "repeatable)")
    sub.add_argument("--echo-request-headers", choices=("off", "404-page", "header"), default="off",
                     help="echo request headers (the API key too) as a misconfigured proxy would")
    sub.add_argument("--drip-bytes-per-second", type=int, default=0, metavar="N",
                     help="send every answer at N bytes per second")
    sub.add_argument("--page-total", type=int, metavar="N", help="claim page.total N on every page of GET /user")
    sub.add_argument("--gzip-bomb-bytes", type=int, default=0, metavar="N",
                     help="answer GET /user pages with gzip that inflates to N zero bytes")

    sub = command("pull", "Read every user and store a snapshot (all or nothing).")
    connection_option(sub)
    sub.add_argument("--details", action="store_true",
                     help="also fetch GET /user/{id} for SAML-SSO-only status (slower; reuses earlier details)")
    sub.add_argument("--page-size", type=int, default=500, help="users per page, 1-1000 (default 500)")

    sub = command("snapshots", "List stored snapshots.")
    sub.add_argument("--connection", metavar="NAME", help="only this connection")

    sub = command("history", "One user across every snapshot: first and last seen, role history.")
    connection_option(sub)
    sub.add_argument("user", metavar="EMAIL_OR_ID")
    sub.add_argument("--format", choices=("text", "json"), default="text")

    sub = command("diff", "What changed between two snapshots.")
    connection_option(sub)
    sub.add_argument("--from", dest="from_id", type=int, metavar="ID")
    sub.add_argument("--to", dest="to_id", type=int, metavar="ID")
    sub.add_argument("--format", choices=("text", "json", "csv"), default="text")
    sub.add_argument("--allow-incomplete", action="store_true", help="allow an incomplete snapshot as baseline")
    sub.add_argument("--output", type=Path, metavar="FILE",
                     help="write to this file instead of stdout (- for stdout; a device or pipe is written in place)")

    sub = command("findings", "Evaluate the rules over a snapshot.")
    connection_option(sub)
    sub.add_argument("--snapshot", type=int, metavar="ID")
    sub.add_argument("--framework", metavar="P[,P]", help=f"profiles: {FRAMEWORKS_HELP}")
    sub.add_argument("--format", choices=("text", "json"), default="text")
    sub.add_argument("--fail-on", choices=SEVERITIES, help="exit 1 when an unsuppressed finding is this severe")
    sub.add_argument("--output", type=Path, metavar="FILE",
                     help="write to this file instead of stdout (- for stdout; a device or pipe is written in place)")
    _identity_options(sub)

    sub = command("attest", "Record a reviewer's attestation.")
    attest_kinds = sub.add_subparsers(dest="kind", metavar="KIND", required=True)
    for kind, help_text in (
        ("mfa", "2FA enforcement was verified in the CertCentral console"),
        ("review", "an access review was completed and acknowledged (PCI DSS 7.2.4)"),
    ):
        kind_parser = attest_kinds.add_parser(kind, help=help_text, description=help_text)
        connection_option(kind_parser)
        kind_parser.add_argument("--by", required=True, metavar='"NAME <EMAIL>"')
        kind_parser.add_argument("--statement", required=True, metavar="TEXT")
        kind_parser.add_argument("--valid-days", type=int, default=90)
        if kind == "review":
            kind_parser.add_argument(
                "--snapshot", type=int, metavar="ID",
                help="the snapshot reviewed (default: the latest complete one); the sign-off shows on its report only",
            )

    sub = command("review", "Access review campaigns: a worksheet, decisions per user, a bound sign-off.")
    review_actions = sub.add_subparsers(dest="action", metavar="ACTION", required=True)
    action = review_actions.add_parser("open", help="open a campaign bound to one snapshot and write its worksheet",
                                       description="Open a campaign bound to one snapshot and write its worksheet.")
    connection_option(action)
    action.add_argument("--snapshot", type=int, metavar="N", help="the snapshot reviewed (default: latest complete)")
    action.add_argument("--scope", choices=("all", "privileged", "flagged"), default="all",
                        help="rows: every user (default, PCI DSS 7.2.4), privileged roles, or users with findings")
    action.add_argument("--due", metavar="DATE", help="due date, YYYY-MM-DD (shown on the worksheet)")
    action.add_argument("--output", type=Path, required=True, metavar="FILE.xlsx|FILE.csv")
    action = review_actions.add_parser("import", help="record the decisions of a filled worksheet",
                                       description="Record the decisions of a filled worksheet (CSV or XLSX).")
    action.add_argument("file", type=Path, metavar="FILE")
    action.add_argument("--by", required=True, metavar='"NAME <EMAIL>"', help="the reviewer")
    action = review_actions.add_parser("status", help="rows decided, undecided, by decision and reviewer, remediation",
                                       description="A campaign's decisions and remediation as of now.")
    action.add_argument("--campaign", type=int, metavar="ID", help="default: the open campaign, else the latest")
    action.add_argument("--connection", metavar="NAME", help="only this connection's campaigns")
    action.add_argument("--format", choices=("text", "json", "csv"), default="text")
    action = review_actions.add_parser("close", help="management acknowledgement: the snapshot's review sign-off",
                                       description="Close a campaign: it becomes its snapshot's review sign-off.")
    action.add_argument("--campaign", type=int, metavar="ID", help="default: the open campaign")
    action.add_argument("--connection", metavar="NAME", help="only this connection's campaigns")
    action.add_argument("--by", required=True, metavar='"NAME <EMAIL>"')
    action.add_argument("--statement", required=True, metavar="TEXT")
    action.add_argument("--allow-undecided", action="store_true",
                        help="close with undecided rows, recorded as not reviewed (no change)")

    sub = command("report", "Render the HTML and PDF access-review reports.")
    connection_option(sub)
    _report_options(sub)
    sub.add_argument("--since", type=int, metavar="ID", help="compare against this snapshot")
    sub.add_argument("--overwrite", action="store_true", help="replace existing report files")
    _identity_options(sub)

    sub = command("export", "Write a signed, hash-chained evidence bundle (ZIP).")
    connection_option(sub)
    sub.add_argument("--snapshot", type=int, metavar="ID")
    sub.add_argument("--framework", metavar="P[,P]", help=f"profiles: {FRAMEWORKS_HELP}")
    sub.add_argument("--output", type=Path, required=True, metavar="FILE.zip")
    sub.add_argument("--no-reports", action="store_true", help="leave the HTML/PDF reports out of the bundle")
    sub.add_argument("--new-chain", action="store_true", help="start a new evidence chain (reported as such)")
    sub.add_argument("--overwrite", action="store_true")
    _identity_options(sub, bundle=True)

    sub = command("verify", "Verify an evidence bundle offline (no data directory needed).")
    sub.add_argument("bundle", type=Path, metavar="FILE.zip")
    sub.add_argument("--public-key", type=Path, action="append", default=[], metavar="PEM",
                     help="pin the signer (repeatable, e.g. across a key rotation)")
    sub.add_argument("--manifest-sha256", action="append", default=[], metavar="HEX",
                     help="trust the bundle whose manifest has this SHA-256, received through another channel")
    sub.add_argument("--allow-unpinned", action="store_true",
                     help="without --public-key or --manifest-sha256: check integrity only (says so)")
    sub.add_argument("--previous", type=Path, action="append", default=[], metavar="FILE.zip",
                     help="earlier bundles of the same chain, to check the chain (repeatable)")
    sub.add_argument("--reperform", action="store_true",
                     help="re-derive users, changes and findings from the raw pages and compare with the views")

    sub = command("keys", "The evidence signing key.")
    key_actions = sub.add_subparsers(dest="action", metavar="ACTION", required=True)
    key_actions.add_parser("public", help="print the public key (PEM) and fingerprint for auditors")
    key_actions.add_parser("rotate", help="retire the current signing key and start a new key period")

    sub = command("run", "Pull, then findings, report and evidence export: the one-shot for cron/CI.")
    connection_option(sub)
    _report_options(sub)
    sub.add_argument("--details", action="store_true")
    sub.add_argument("--no-export", action="store_true", help="skip the evidence bundle")
    _identity_options(sub, bundle=True)

    sub = command("demo", "The whole pipeline against the bundled sample account (no key, no network).")
    sub.add_argument("--output", type=Path, default=Path("demo-output"))
    return parser


def _identity_options(sub: argparse.ArgumentParser, *, bundle: bool = False) -> None:
    sub.add_argument("--identity", type=Path, action="append", default=[], metavar="FILE",
                     help="HR or identity-provider export (CSV or JSON; repeatable), instead of [identity] files")
    sub.add_argument("--identity-preset", metavar="NAME",
                     help="column mapping of the identity export: generic (default), okta, entra, google")
    if bundle:
        sub.add_argument("--include-identity-source", action="store_true",
                         help="put the identity files themselves into the bundle (they hold personal data)")


def _identity_request(args: argparse.Namespace) -> Any:
    from auditor.identity import IdentityRequest, preset

    if args.identity_preset is not None:
        preset(args.identity_preset)  # an unknown name is exit 2 at once, naming the valid ones
    return IdentityRequest(files=tuple(args.identity), preset=args.identity_preset)


def _report_options(sub: argparse.ArgumentParser) -> None:
    sub.add_argument("--snapshot", type=int, metavar="ID")
    sub.add_argument("--framework", metavar="P[,P]", help=f"profiles: {FRAMEWORKS_HELP}")
    sub.add_argument("--format", default="html,pdf", metavar="html,pdf")
    sub.add_argument("--output", type=Path, default=Path(), metavar="DIR")
    sub.add_argument("--templates", type=Path, metavar="DIR", help="customised copy of report_templates/")
    sub.add_argument("--pdf-roster-limit", type=int, default=500, metavar="N",
                     help="full roster rows in the PDF before pointing to the attached CSV")
    sub.add_argument("--fail-on", choices=SEVERITIES)


# --- environment ---------------------------------------------------------------------------

#: Variables that hold secrets. :func:`main` takes them out of the environment before anything
#: else happens, so no child process ever inherits them: WeasyPrint's library lookup
#: (``ctypes.util.find_library``) runs ``ld``, ``gcc`` and ``ldconfig``; fontconfig may run helpers.
SECRET_VARIABLES = ("AUDITOR_MASTER_KEY", "DIGICERT_API_KEY")


@dataclass(frozen=True)
class EnvSecrets:
    """The secret variables' values, once removed from the environment (never shown in a repr)."""

    master_key: str | None = field(default=None, repr=False)
    api_key: str | None = field(default=None, repr=False)


def take_secrets(environ: MutableMapping[str, str] | None = None) -> EnvSecrets:
    """Remove :data:`SECRET_VARIABLES` from ``environ`` (default: the process environment) and return them.

    ``os.environ.pop`` also unsets the variable in the C environment that child processes inherit.
    """
    env = os.environ if environ is None else environ
    values = {name: env.pop(name, None) for name in SECRET_VARIABLES}
    return EnvSecrets(
        master_key=values["AUDITOR_MASTER_KEY"] or None,
        api_key=values["DIGICERT_API_KEY"] or None,
    )


def _env_secrets(args: argparse.Namespace) -> EnvSecrets:
    secrets = getattr(args, "env_secrets", None)
    return secrets if isinstance(secrets, EnvSecrets) else EnvSecrets()


#: Flags whose value would be a secret. None takes one today (keys come from the environment or a
#: prompt), but the recorded command line must stay secret-free if one is ever added.
_SECRET_FLAGS = frozenset({"--api-key", "--key", "--devkey", "--token", "--api-token", "--password",
                           "--secret", "--master-key", "--signing-key"})
_REDACTED = "<redacted>"


def redacted_command(argv: Sequence[str]) -> str:
    """``auditor pull --connection prod`` as run, with any value after a secret flag replaced."""
    import shlex

    words: list[str] = []
    hide_next = False
    for word in argv:
        if hide_next:
            words.append(_REDACTED)
            hide_next = False
            continue
        flag, equals, _value = word.partition("=")
        if flag.casefold() in _SECRET_FLAGS:
            if equals:
                words.append(f"{flag}={_REDACTED}")
            else:
                words.append(word)
                hide_next = True
            continue
        words.append(word)
    return shlex.join(["auditor", *words])


def gather_operator(argv: Sequence[str]) -> Operator:
    """Who is running the tool, for the provenance of what it pulls: OS account, host, command line."""
    import getpass
    import platform
    import socket

    from auditor.models import Operator

    try:
        account = getpass.getuser()
    except (OSError, KeyError, ImportError):  # no login name (a container without a passwd entry): go on
        account = "unknown"
    try:
        host = socket.gethostname() or "unknown"
    except OSError:
        host = "unknown"
    return Operator(
        account=account or "unknown",
        host=host,
        command=redacted_command(argv),
        tool_version=__version__,
        python_version=platform.python_version(),
    )


def workspace_from_env(
    args: argparse.Namespace, environ: Mapping[str, str] | None = None, *, cwd: Path | None = None
) -> Workspace:
    from auditor.pipeline import Workspace

    env = dict(os.environ if environ is None else environ)
    home = env.get("AUDITOR_HOME")
    if home:
        data_dir = Path(home).expanduser()
    else:
        import platformdirs

        data_dir = Path(platformdirs.user_data_dir(APP_NAME))
    key_file_env = env.get("AUDITOR_MASTER_KEY_FILE")
    if key_file_env:
        key_file = Path(key_file_env).expanduser()
    else:
        import platformdirs

        key_file = Path(platformdirs.user_config_dir(APP_NAME)) / "master.key"
    return Workspace(
        data_dir=data_dir,
        master_key_file=key_file,
        master_key_env=_env_secrets(args).master_key or env.get("AUDITOR_MASTER_KEY") or None,
        config_path=args.config,
        config_search_dirs=(cwd or Path.cwd(),),
        client_options=_client_options(args),
        operator=getattr(args, "operator", None),
    )


def _client_options(args: argparse.Namespace) -> dict[str, Any]:
    if not 1 <= args.retries <= 20:
        raise ConfigurationError(f"--retries must be between 1 and 20, got {args.retries}.")
    if not 0 < args.timeout <= 600:
        raise ConfigurationError(f"--timeout must be between 0 and 600 seconds, got {args.timeout}.")
    if not 0 < args.deadline <= 86400:
        raise ConfigurationError(f"--deadline must be between 0 and 86400 seconds, got {args.deadline}.")
    if not 1 <= args.max_users <= 100_000_000:
        raise ConfigurationError(f"--max-users must be between 1 and 100000000, got {args.max_users}.")
    return {
        "retry_attempts": args.retries,
        "timeout": args.timeout,
        "deadline": args.deadline,
        "max_users": args.max_users,
    }


def _frameworks(value: str | None) -> list[str] | None:
    if not value:
        return None
    names = [part.strip() for part in value.split(",") if part.strip()]
    return names or None


# --- output helpers ------------------------------------------------------------------------


class Output:
    """stdout for data, stderr for progress and summaries; rich only where it helps."""

    def __init__(self, stdout: TextIO, stderr: TextIO) -> None:
        self.stdout = stdout
        self.stderr = stderr

    def data(self, text: str) -> None:
        self.stdout.write(text if text.endswith("\n") else text + "\n")
        self.stdout.flush()

    def info(self, text: str) -> None:
        self.stderr.write(text + "\n")
        self.stderr.flush()

    @property
    def interactive(self) -> bool:
        return bool(getattr(self.stderr, "isatty", lambda: False)())


def _write_data(out: Output, payload: bytes | str, output: Path | None) -> None:
    """Data to stdout (no ``--output``, or ``--output -``), else to the file.

    A regular file (or a new one) is replaced atomically; a device, FIFO or other special file
    (``/dev/null``, ``/dev/stdout``, a pipe) is written in place and never replaced.
    """
    from auditor.atomic import write_output

    if output is None or str(output) == "-":
        out.data(payload.decode("utf-8") if isinstance(payload, bytes) else payload)
        return
    data = payload if isinstance(payload, bytes) else payload.encode("utf-8")
    try:
        write_output(output, data)
    except OSError as exc:
        from auditor.errors import ReportError

        raise ReportError(f"Could not write {output}: {exc.strerror or exc}.") from exc
    out.info(f"Wrote {output}")


# --- commands ------------------------------------------------------------------------------


def _read_api_key(args: argparse.Namespace, stdin: TextIO, out: Output) -> str:
    if args.key_stdin:
        key = stdin.readline().strip()
    elif env_key := _env_secrets(args).api_key:
        key = env_key.strip()
    elif stdin.isatty():
        import getpass

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


def describe_connection(report: ConnectionReport) -> list[str]:
    me = report.me
    who = f"{me.full_name} <{me.email}>" if me.full_name else me.email or f"user {me.id}"
    scope = "sees the whole account" if report.sees_whole_account else "sees only part of the account"
    lines = [f"OK: the key works and may read users. It belongs to {who}, role {me.role_names or 'none'}; {scope}."]
    if report.account_id is not None:
        lines.append(f"Account id: {report.account_id}")
    lines.extend(f"Warning: {warning}" for warning in report.warnings)
    return lines


def cmd_connect(args: argparse.Namespace, workspace: Workspace, out: Output, stdin: TextIO) -> int:
    from auditor.client import resolve_base_url
    from auditor.pipeline import connect

    region = args.region or (None if args.base_url else "us")
    base_url = resolve_base_url(region, args.base_url)
    api_key = _read_api_key(args, stdin, out)
    report = connect(workspace, args.connection, base_url=base_url, region=region, api_key=api_key)
    for line in describe_connection(report):
        out.info(line)
    out.info(f"Saved connection '{args.connection}' ({base_url}); the key is stored encrypted.")
    return ExitCode.OK


def cmd_test(args: argparse.Namespace, workspace: Workspace, out: Output, stdin: TextIO) -> int:
    from auditor.pipeline import test_connection

    for line in describe_connection(test_connection(workspace, args.connection)):
        out.info(line)
    return ExitCode.OK


def cmd_connections(args: argparse.Namespace, workspace: Workspace, out: Output, stdin: TextIO) -> int:
    from auditor.exports import iso
    from auditor.pipeline import list_connections

    records = list_connections(workspace)
    if not records:
        out.info("No connections yet. Add one with `auditor connect`.")
        return ExitCode.OK
    rows = [("NAME", "WHERE", "KEY FINGERPRINT", "ADDED", "LAST TEST")]
    for record in records:
        rows.append(
            (
                record.name,
                record.region or record.base_url,
                record.key_fingerprint,
                iso(record.added_at),
                f"{record.last_test_result or '-'} ({iso(record.last_test_at) or 'never'})",
            )
        )
    out.data(_table(rows))
    return ExitCode.OK


def _table(rows: Sequence[Sequence[str]]) -> str:
    widths = [max(len(str(row[i])) for row in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(str(cell).ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
                     for row in rows)


def cmd_disconnect(args: argparse.Namespace, workspace: Workspace, out: Output, stdin: TextIO) -> int:
    from auditor.pipeline import disconnect

    disconnect(workspace, args.name)
    out.info(f"Removed connection '{args.name}' and its stored key.")
    return ExitCode.OK


def cmd_sandbox(args: argparse.Namespace, workspace: Workspace, out: Output, stdin: TextIO) -> int:
    from auditor.samples import latest_sample_state
    from auditor.sandbox import Faults, SandboxServer, load_dataset

    dataset = load_dataset(args.dataset) if args.dataset else load_dataset(latest_sample_state())
    from auditor.sandbox.server import ROUTE_FAULTS

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
    out.info(f"Fake CertCentral serving {len(dataset.users)} users at {server.base_url}")
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
    return ExitCode.OK


def cmd_pull(args: argparse.Namespace, workspace: Workspace, out: Output, stdin: TextIO) -> int:
    from auditor.pipeline import describe_pull, pull

    with _pull_progress(out) as observer:
        outcome = pull(workspace, args.connection, details=args.details, page_size=args.page_size,
                       observer=observer)
    out.info(describe_pull(outcome))
    return ExitCode.OK


class _pull_progress:
    """A rich progress display on a TTY; nothing otherwise (cron, CI)."""

    def __init__(self, out: Output) -> None:
        self.out = out
        self.progress: Any = None

    def __enter__(self) -> Any:
        if not self.out.interactive:
            return None
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        self.progress = Progress(
            TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
            TextColumn("{task.fields[status]}"), console=Console(file=self.out.stderr), transient=True,
        )
        self.progress.start()
        return _RichPullObserver(self.progress)

    def __exit__(self, *exc: object) -> None:
        if self.progress is not None:
            self.progress.stop()


class _RichPullObserver:
    def __init__(self, progress: Any) -> None:
        self.progress = progress
        self.pages = progress.add_task("pages", total=None, status="")
        self.details: Any = None
        self.retries = 0

    def on_total(self, users: int, pages: int) -> None:
        self.progress.update(self.pages, total=pages, status=f"{users:,} users")

    def on_page(self, endpoint: str, users: int) -> None:
        self.progress.advance(self.pages)

    def on_retry(self, endpoint: str, reason: str, wait_seconds: float) -> None:
        self.retries += 1
        self.progress.update(self.pages, status=f"retry {self.retries}: {reason}, waiting {wait_seconds:.0f} s")

    def on_detail(self, done: int, total: int) -> None:
        if self.details is None:
            self.details = self.progress.add_task("user details", total=total, status="")
        self.progress.update(self.details, completed=done, total=total)


def cmd_snapshots(args: argparse.Namespace, workspace: Workspace, out: Output, stdin: TextIO) -> int:
    from auditor.exports import iso

    with workspace.store() as store:
        summaries = store.list_snapshots(args.connection)
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
    from auditor import exports
    from auditor.pipeline import user_timeline

    timeline = user_timeline(workspace, args.connection, args.user)
    user, history = timeline.user, timeline.history
    if args.format == "json":
        document = {
            "user": exports.user_dict(user),
            "first_seen": exports.iso(history.first_seen),
            "last_seen": exports.iso(history.last_seen),
            "present_in_latest_snapshot": timeline.present_in_latest,
            "role_history": [{"since": exports.iso(at), "roles": roles} for at, roles in history.role_history],
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
                    "created": exports.iso(key.created),
                    "last_used": exports.iso(key.last_used),
                }
                for key in timeline.keys
            ],
        }
        out.data(exports.to_json_bytes(document).decode("utf-8"))
        return ExitCode.OK
    name = f" ({_safe(user.full_name)})" if user.full_name else ""
    lines = [
        f"{_safe(user.email) or 'user'} id {user.id}{name}",
        f"  first seen  {history.first_seen:%Y-%m-%d %H:%M} UTC",
        f"  last seen   {history.last_seen:%Y-%m-%d %H:%M} UTC"
        + ("  (in the latest snapshot)" if timeline.present_in_latest else "  (gone from later snapshots)"),
        f"  status      {_safe(user.status) or '-'}",
        f"  last sign-in {exports.iso(user.last_login) or 'never seen'}",
        "  roles:",
    ]
    lines.extend(f"    since {at:%Y-%m-%d}  {_safe(roles) or '(none)'}" for at, roles in history.role_history)
    if timeline.keys is None:
        lines.append("  API keys: not readable in the latest snapshot (unknown, not none)")
    else:
        lines.append(f"  API keys ({len(timeline.keys)}, latest snapshot):" if timeline.keys else "  API keys: none")
        lines.extend(
            f"    {_safe(key.label)}  {key.status or '-'}  {_safe(key.restriction)}"
            f"{'  legacy' if key.is_legacy else ''}  last used {exports.iso(key.last_used) or 'never'}"
            for key in timeline.keys
        )
    out.data("\n".join(lines))
    return ExitCode.OK


def cmd_diff(args: argparse.Namespace, workspace: Workspace, out: Output, stdin: TextIO) -> int:
    from auditor import exports
    from auditor.pipeline import diff

    old, new, changes = diff(workspace, args.connection, from_id=args.from_id, to_id=args.to_id,
                             allow_incomplete=args.allow_incomplete)
    if args.format == "json":
        _write_data(out, exports.changes_json(changes), args.output)
    elif args.format == "csv":
        _write_data(out, exports.changes_csv(changes), args.output)
    else:
        _write_data(out, format_changes_text(old, new, changes), args.output)
    return ExitCode.OK


def format_changes_text(old: Snapshot, new: Snapshot, changes: ChangeSet) -> str:
    from auditor.models import ChangeKind

    lines = [f"Changes from snapshot {old.id} ({old.taken_at:%Y-%m-%d %H:%M}) to {new.id} "
             f"({new.taken_at:%Y-%m-%d %H:%M} UTC):"]
    if changes.is_empty:
        lines.append("  no changes")
    labels = {
        ChangeKind.ADDED: "added", ChangeKind.REMOVED: "removed", ChangeKind.ROLE: "role",
        ChangeKind.STATUS: "status", ChangeKind.EMAIL: "email", ChangeKind.NAME: "name",
        ChangeKind.DIVISION: "division", ChangeKind.RESTRICTION: "restriction",
        ChangeKind.FIRST_SIGN_IN: "first sign-in", ChangeKind.SIGNED_IN: "signed in",
        ChangeKind.KEY_CREATED: "key created", ChangeKind.KEY_REVOKED: "key revoked",
        ChangeKind.KEY_OWNER: "key re-owned", ChangeKind.KEY_RESTRICTION: "key restricted",
    }
    for change in changes.changes:
        marker = "!! " if change.became_admin else ("!  " if change.escalation else "   ")
        detail = ""
        if change.before or change.after:
            detail = f": {change.before or '-'} -> {change.after or '-'}"
        who = f"(id {change.user_id})" if change.key_id is None else f"(key {change.key_id}, owner id {change.user_id})"
        lines.append(f"{marker}{labels[change.kind]:<14} {_safe(change.email)} {who}{_safe(detail)}")
    if any(c.became_admin for c in changes.changes):
        lines.append("!! = became Administrator;  ! = gained a privileged role")
    return "\n".join(lines)


def _safe(text: str) -> str:
    """Terminal-safe text: control characters from the API (escape sequences, RTL overrides) are shown escaped."""
    return "".join(ch if ch.isprintable() else f"\\u{ord(ch):04x}" for ch in text)


def cmd_findings(args: argparse.Namespace, workspace: Workspace, out: Output, stdin: TextIO) -> int:
    from auditor import exports
    from auditor.pipeline import evaluate

    evaluation = evaluate(workspace, args.connection, snapshot_id=args.snapshot,
                          frameworks=_frameworks(args.framework), identity=_identity_request(args))
    result = evaluation.findings
    if args.format == "json":
        _write_data(out, exports.findings_json(result), args.output)
    else:
        _write_data(out, format_findings_text(evaluation), args.output)
    return _fail_on(result, args.fail_on, out)


def format_findings_text(evaluation: Evaluation) -> str:
    from auditor.models import Severity

    result = evaluation.findings
    snapshot = evaluation.snapshot
    lines = [f"Findings for snapshot {snapshot.id} ({snapshot.taken_at:%Y-%m-%d %H:%M} UTC), "
             f"profiles: {', '.join(result.profiles)}"]
    if not snapshot.complete:
        lines.append("WARNING: this snapshot is INCOMPLETE; findings may miss users.")
    identity = dict(result.identity_source)
    if identity:
        lines.append(f"Identity source: {_safe(identity['source'])}; {_safe(identity['matched'])}.")
    for severity in Severity:
        group = [f for f in result.active if f.severity is severity]
        if not group:
            continue
        lines.append("")
        lines.append(f"{severity.value.upper()} ({len(group)})")
        for finding in group:
            who = f" {_safe(finding.email)}" if finding.email else ""
            lines.append(f"  [{finding.rule_id}]{who}: {_safe(finding.explanation)}")
            if finding.controls:
                lines.append(f"      controls: {', '.join(finding.controls)}")
            if finding.expired_exception is not None:
                expired = finding.expired_exception.expires
                lines.append(f"      exception expired {expired:%Y-%m-%d}: no longer suppresses")
    if result.suppressed:
        lines.append("")
        lines.append(f"SUPPRESSED ({len(result.suppressed)}), accepted risk:")
        for finding in result.suppressed:
            exc = finding.suppressed_by
            assert exc is not None  # noqa: S101 - suppressed implies an exception
            lines.append(f"  [{finding.rule_id}] {_safe(finding.email)}: {_safe(exc.reason)} "
                         f"(owner {_safe(exc.owner)}, expires {exc.expires:%Y-%m-%d})")
    if result.stale_exceptions:
        lines.append("")
        lines.append("STALE EXCEPTIONS (match nothing; remove them):")
        for exc in result.stale_exceptions:
            lines.append(f"  [{exc.rule}] {_safe(exc.user)}" + (f" (line {exc.line})" if exc.line else ""))
    lines.append("")
    lines.append(f"{len(result.active)} findings, {len(result.suppressed)} suppressed.")
    lines.append("Limitations:")
    lines.extend(f"  - {text}" for text in result.limitations)
    return "\n".join(lines)


def _fail_on(result: FindingsResult, threshold: str | None, out: Output) -> int:
    if threshold is None:
        return ExitCode.OK
    from auditor.models import Severity

    limit = Severity(threshold)
    failing = [f for f in result.active if f.severity.at_least(limit)]
    if failing:
        out.info(f"{len(failing)} unsuppressed finding(s) at or above '{threshold}': exit 1.")
        return ExitCode.FINDINGS_OR_VERIFY_FAILED
    return ExitCode.OK


def cmd_attest(args: argparse.Namespace, workspace: Workspace, out: Output, stdin: TextIO) -> int:
    from auditor.models import AttestationKind
    from auditor.pipeline import attest

    attestation = attest(workspace, args.connection, kind=AttestationKind(args.kind), by=args.by,
                         statement=args.statement, valid_days=args.valid_days,
                         snapshot_id=getattr(args, "snapshot", None))
    if attestation.snapshot_id is not None:
        out.info(f"Recorded review attestation {attestation.id} by {attestation.by} of snapshot "
                 f"{attestation.snapshot_id} (raw data SHA-256 {attestation.raw_sha256}); next review due "
                 f"{attestation.expires:%Y-%m-%d}.")
    else:
        out.info(f"Recorded {attestation.kind.value} attestation {attestation.id} by {attestation.by}, "
                 f"valid until {attestation.expires:%Y-%m-%d}.")
    return ExitCode.OK


def _due_date(text: str | None) -> datetime | None:
    if text is None:
        return None
    try:
        day = datetime.strptime(text, "%Y-%m-%d")
    except ValueError:
        raise ConfigurationError(f"--due {text!r} is not a date.", hint="Give --due YYYY-MM-DD.") from None
    return day.replace(hour=23, minute=59, second=59, tzinfo=UTC)


def cmd_review(args: argparse.Namespace, workspace: Workspace, out: Output, stdin: TextIO) -> int:
    import json

    from auditor import pipeline

    if args.action == "open":
        opened = pipeline.open_review(workspace, args.connection, snapshot_id=args.snapshot, scope=args.scope,
                                      due=_due_date(args.due), output=args.output)
        campaign = opened.campaign
        out.data(str(campaign.id))
        out.info(f"Opened review campaign {campaign.id} of snapshot {campaign.snapshot_id} (raw data SHA-256 "
                 f"{campaign.raw_sha256}), scope {campaign.scope}: {opened.rows} row(s) written to {opened.output}.")
        return ExitCode.OK
    if args.action == "import":
        outcome = pipeline.import_review(workspace, args.file, by=args.by)
        out.info(f"Recorded {outcome.decisions} decision(s) from {args.file.name} (SHA-256 {outcome.recorded.sha256}) "
                 f"into review campaign {outcome.campaign.id}"
                 + (f", replacing {outcome.superseded} earlier decision(s) of this reviewer" if outcome.superseded
                    else "")
                 + f"; {outcome.undecided} row(s) left undecided.")
        for refused in outcome.refused:
            out.info(f"Refused {args.file.name} row {refused.row}, column {refused.column} (user {refused.user_id}, "
                     f"{_safe(refused.email)}): {refused.reason}; {refused.remedy}.")
        return ExitCode.OK
    if args.action == "status":
        status = pipeline.review_status(workspace, campaign_id=args.campaign, connection=args.connection)
        if args.format == "json":
            out.data(json.dumps(status.to_json(), indent=2, ensure_ascii=False))
        elif args.format == "csv":
            out.stdout.write(pipeline.status_csv(status))
            out.stdout.flush()
        else:
            c = status.campaign
            lines = [
                f"Review campaign {c.id} ({c.state}) of connection {c.connection}, snapshot {c.snapshot_id}, "
                f"scope {c.scope}" + (f", due {c.due:%Y-%m-%d}" if c.due else ""),
                f"  rows in scope: {len(status.rows)}; decided {status.decided}, undecided {status.undecided}",
                "  by decision: " + ", ".join(f"{k} {v}" for k, v in status.by_decision().items()),
                "  by reviewer: " + (", ".join(f"{_safe(k)} {v}" for k, v in status.by_reviewer().items()) or "none"),
            ]
            for r in status.rows:
                if r.remediation:
                    lines.append(f"  {r.decision} {_safe(r.email)} by {_safe(r.reviewer)}"
                                 + (f" (ticket {_safe(r.ticket)})" if r.ticket else "") + f": {r.remediation}"
                                 + (f" at snapshot {r.applied_snapshot}" if r.applied_snapshot else ""))
            if c.state == "closed":
                lines.append(
                    f"  closed {c.closed_at:%Y-%m-%d} by {_safe(c.closed_by or '')}: {_safe(c.statement or '')}"
                )
            out.data("\n".join(lines))
        return ExitCode.OK
    closed, attestation, not_reviewed = pipeline.close_review(
        workspace, campaign_id=args.campaign, connection=args.connection, by=args.by, statement=args.statement,
        allow_undecided=args.allow_undecided,
    )
    out.info(f"Closed review campaign {closed.id}: recorded review attestation {attestation.id} by {attestation.by} "
             f"signing off snapshot {closed.snapshot_id}, next review due {attestation.expires:%Y-%m-%d}"
             + (f"; {not_reviewed} row(s) recorded as not reviewed" if not_reviewed else "") + ".")
    return ExitCode.OK


def _formats(value: str) -> list[Any]:
    from auditor.report import ReportFormat

    formats = []
    for part in value.split(","):
        name = part.strip().lower()
        if not name:
            continue
        try:
            formats.append(ReportFormat(name))
        except ValueError:
            raise ConfigurationError(f"Unknown report format {name!r}.", hint="Use html, pdf or html,pdf.") from None
    if not formats:
        raise ConfigurationError("No report format given.", hint="Use html, pdf or html,pdf.")
    return formats


def cmd_report(args: argparse.Namespace, workspace: Workspace, out: Output, stdin: TextIO) -> int:
    from auditor.pipeline import evaluate, write_reports

    formats = _formats(args.format)
    evaluation = evaluate(workspace, args.connection, snapshot_id=args.snapshot, since_id=args.since,
                          frameworks=_frameworks(args.framework), with_trend_history=True,
                          identity=_identity_request(args))
    paths = write_reports(workspace, evaluation, formats=formats, output_dir=args.output,
                          overwrite=args.overwrite, templates_dir=args.templates,
                          roster_limit=args.pdf_roster_limit, progress=_progress_line(out))
    for path in paths:
        out.data(str(path))
    return _fail_on(evaluation.findings, args.fail_on, out)


def _progress_line(out: Output) -> Callable[[str], None] | None:
    if not out.interactive:
        return None
    return lambda message: out.info(message)


def cmd_export(args: argparse.Namespace, workspace: Workspace, out: Output, stdin: TextIO) -> int:
    from auditor.pipeline import export_evidence

    outcome = export_evidence(workspace, args.connection, snapshot_id=args.snapshot,
                              frameworks=_frameworks(args.framework), output=args.output,
                              include_reports=not args.no_reports, new_chain=args.new_chain,
                              overwrite=args.overwrite, identity=_identity_request(args),
                              include_identity_source=args.include_identity_source)
    if outcome.recovered:
        out.info(outcome.recovered)
    out.data(str(outcome.path))
    out.info(describe_export(outcome))
    return ExitCode.OK


def describe_export(outcome: ExportOutcome) -> str:
    chain = "genesis of a new chain" if outcome.sequence == 0 else f"sequence {outcome.sequence}"
    return (
        f"Evidence bundle {outcome.path} ({chain} {outcome.chain_id}).\n"
        f"Manifest SHA-256: {outcome.manifest_sha256}\n"
        f"Bundle SHA-256:   {outcome.zip_sha256}  (of the whole ZIP file)\n"
        "Send these hashes to your auditor now (e-mail or ticket): an outside copy is what proves the "
        "chain was not rebuilt later by someone holding the signing key "
        "(`auditor verify FILE.zip --manifest-sha256 HEX`)."
    )


def cmd_verify(args: argparse.Namespace, workspace: Workspace | None, out: Output, stdin: TextIO) -> int:
    from auditor.pipeline import verify_evidence

    ok, text = verify_evidence(args.bundle, public_keys=args.public_key, manifest_sha256=args.manifest_sha256,
                               allow_unpinned=args.allow_unpinned, previous=args.previous, reperform=args.reperform)
    out.data(text)
    return ExitCode.OK if ok else ExitCode.FINDINGS_OR_VERIFY_FAILED


def cmd_keys(args: argparse.Namespace, workspace: Workspace, out: Output, stdin: TextIO) -> int:
    from auditor.pipeline import public_signing_key, rotate_signing_key

    if args.action == "rotate":
        fingerprint, pem = rotate_signing_key(workspace)
        out.info(f"New signing key period started; the previous key is retired. New key {fingerprint}:")
    else:
        fingerprint, pem = public_signing_key(workspace)
        out.info(f"Evidence signing key {fingerprint} (hand this to your auditor out of band):")
    out.data(pem)
    return ExitCode.OK


def cmd_run(args: argparse.Namespace, workspace: Workspace, out: Output, stdin: TextIO) -> int:
    from auditor.pipeline import run_once

    if args.snapshot is not None:
        raise ConfigurationError(
            "`auditor run` always reports on the snapshot it pulls; --snapshot does not apply.",
            hint=f"Report on an earlier snapshot with `auditor report --snapshot {args.snapshot}`.",
        )
    outcome = run_once(
        workspace, args.connection, frameworks=_frameworks(args.framework), output_dir=args.output,
        formats=_formats(args.format), templates_dir=args.templates, roster_limit=args.pdf_roster_limit,
        details=args.details, export=not args.no_export, step=out.info,
        identity=_identity_request(args), include_identity_source=args.include_identity_source,
    )
    return _fail_on(outcome.findings, args.fail_on, out)


def cmd_demo(args: argparse.Namespace, workspace: Workspace | None, out: Output, stdin: TextIO) -> int:
    from auditor.demo import run_demo

    outcome = run_demo(args.output, step=out.info, operator=args.operator)
    for path in outcome.paths:
        out.data(str(path))
    return ExitCode.OK if outcome.verified else ExitCode.FINDINGS_OR_VERIFY_FAILED


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
}
#: A bug in the tool (sysexits.h EX_SOFTWARE), kept apart from the contract's codes.
INTERNAL_ERROR = 70
#: Commands that need no data directory (verify works offline on any machine).
NO_WORKSPACE = {"verify", "demo", "sandbox"}


def main(
    argv: Sequence[str] | None = None,
    *,
    stdout: TextIO | None = None,
    stderr: TextIO | None = None,
    stdin: TextIO | None = None,
    workspace: Workspace | None = None,
    environ: MutableMapping[str, str] | None = None,
    cwd: Path | None = None,
) -> int:
    """Run one command; returns the exit code. The single place errors become messages.

    ``environ`` and ``cwd`` default to the process's own; tests pass their own to run the CLI
    in-process exactly as a shell would run it (secrets are popped from ``environ`` either way).
    """
    secrets = take_secrets(environ)  # first: nothing started later may inherit a secret
    out = Output(stdout or sys.stdout, stderr or sys.stderr)
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exit_:
        return int(exit_.code or 0)
    args.env_secrets = secrets
    if not args.command:
        parser.print_help(out.stderr)
        return ExitCode.USAGE
    # Recorded with every pull: who ran it, where, and how (the command line holds no secret).
    args.operator = gather_operator(sys.argv[1:] if argv is None else argv)
    stop_logging = _log_to(out.stderr) if args.verbose else None
    try:
        if workspace is None and args.command not in NO_WORKSPACE:
            workspace = workspace_from_env(args, environ, cwd=cwd)
        elif workspace is not None and workspace.operator is None:
            workspace = dataclasses.replace(workspace, operator=args.operator)
        if workspace is not None:
            workspace = dataclasses.replace(workspace, notice=out.info)
        return HANDLERS[args.command](args, workspace, out, stdin or sys.stdin)
    except AuditorError as error:
        if args.verbose:
            import traceback

            traceback.print_exc(file=out.stderr)
        out.info(f"Error: {error.diagnostics()}")
        return int(error.exit_code)
    except KeyboardInterrupt:
        out.info("Interrupted. Nothing was stored by the interrupted step; earlier data is intact.")
        return ExitCode.CERTCENTRAL_UNAVAILABLE if args.command in {"pull", "run"} else 130
    except BrokenPipeError:
        return ExitCode.OK
    except Exception as error:  # a bug: say so plainly, with the traceback behind -v
        if args.verbose:
            import traceback

            traceback.print_exc(file=out.stderr)
        out.info(
            f"Internal error ({type(error).__name__}). This is a bug in certcentral-auditor; "
            "re-run with -v for the traceback and report it. No data was changed by the failed step."
        )
        return INTERNAL_ERROR
    finally:
        if stop_logging is not None:
            stop_logging()


def _log_to(stream: TextIO) -> Callable[[], None]:
    """-v: INFO records on ``stream`` for this call only; returns the undo. (``basicConfig`` would
    set the first call's stream for good: a second in-process ``main`` would log into the first's.)"""
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    previous_level = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)

    def stop() -> None:
        root.removeHandler(handler)
        root.setLevel(previous_level)

    return stop
