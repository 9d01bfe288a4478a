"""The argument parser: every command, flag and choice of ``auditor``, and the help text.

Closed sets come from the model's enums and catalogues (``Severity``, ``ReportFormat``,
``OutputFormat``, the profile catalogue), never from a copy. Importing this module loads no heavy
library: ``auditor --help`` answers before any command module is imported.
"""

from __future__ import annotations

import argparse
import enum
import functools
from pathlib import Path

from auditor import __version__
from auditor.errors import ExitCode
from auditor.models import Severity
from auditor.notify import NotifyOn
from auditor.profiles import PROFILE_NAMES
from auditor.report import PDF_ROSTER_LIMIT, ReportFormat
from auditor.standards import StandardsFormat


class OutputFormat(enum.StrEnum):
    """What a listing command prints: text for people, JSON or CSV for scripts (each command takes a subset)."""

    TEXT = "text"
    JSON = "json"
    CSV = "csv"
    #: Issue 19: the standards views (``auditor.standards``), for ``findings``.
    OSCAL = StandardsFormat.OSCAL.value
    OCSF = StandardsFormat.OCSF.value


def values(members: type[enum.StrEnum] | tuple[enum.StrEnum, ...]) -> tuple[str, ...]:
    """argparse choices from enum members: the plain values, so help and errors read ``text, json``."""
    return tuple(member.value for member in members)


FRAMEWORKS_HELP = ", ".join(PROFILE_NAMES)
REPORT_FORMATS_HELP = ",".join(values(ReportFormat))
#: OSCAL and OCSF (issue 19): ``findings --format``, and ``report``/``run --format`` beside html and pdf.
STANDARDS_FORMATS_HELP = ",".join(values(StandardsFormat))
#: Written out, not imported: loading identity.py and review.py for --help doubles its start-up time;
#: tests/unit/cli/test_cli_main.py checks these against identity.PRESETS and review.SCOPES.
IDENTITY_PRESETS_HELP = "generic (default), okta, entra, google"
REVIEW_SCOPES = ("all", "privileged", "flagged", "with-keys")
#: The formats each listing command prints (a subset of :class:`OutputFormat`).
HISTORY_FORMATS = (OutputFormat.TEXT, OutputFormat.JSON)
DIFF_FORMATS = (OutputFormat.TEXT, OutputFormat.JSON, OutputFormat.CSV)
FINDINGS_FORMATS = (OutputFormat.TEXT, OutputFormat.JSON, OutputFormat.OSCAL, OutputFormat.OCSF)
REVIEW_STATUS_FORMATS = (OutputFormat.TEXT, OutputFormat.JSON, OutputFormat.CSV)

#: What each exit code means, as ``--help`` and the README's table state it.
EXIT_CODE_MEANINGS: dict[ExitCode, str] = {
    ExitCode.OK: "success",
    ExitCode.FINDINGS_OR_VERIFY_FAILED: "findings at or above --fail-on, or evidence that failed verification",
    ExitCode.USAGE: "usage or configuration error (also: missing or wrong master key)",
    ExitCode.KEY_REJECTED: "API key rejected by CertCentral",
    ExitCode.KEY_NOT_PERMITTED: "API key not allowed to read users (restriction too narrow, or the linked user's role)",
    ExitCode.CERTCENTRAL_UNAVAILABLE: "CertCentral unreachable, unavailable, or answering unexpectedly after retries\n"
    "      (also: a pull or run interrupted by Ctrl-C; nothing of it is stored)",
    ExitCode.LOCAL_DATA: "local data problem (database or file corrupt, locked, unreadable, or not writable)",
    ExitCode.NOTIFY_FAILED: "run --notify: evidence written, but a notification was not delivered (retried next run)",
    ExitCode.ACCOUNTS_FAILED: "run over several connections: at least one account failed (the others completed)",
    ExitCode.INTERNAL_ERROR: "internal error (a bug; -v shows the traceback)",
    ExitCode.INTERRUPTED: "interrupted by Ctrl-C (any command but pull and run)",
}

EXIT_CODES_HELP = (
    "exit codes:\n"
    + "".join(f"  {int(code):<3} {EXIT_CODE_MEANINGS[code]}\n" for code in ExitCode)
    + """
environment:
  AUDITOR_HOME             data directory; a relative path is taken from the working directory
                           (default: the platform's user data directory)
  AUDITOR_MASTER_KEY       master key (urlsafe base64, 32 bytes) that encrypts stored secrets
  AUDITOR_MASTER_KEY_FILE  where the master key file lives (default: the user config directory)
  DIGICERT_API_KEY         API key for `auditor connect` (instead of the prompt)
"""
)


class _Formatter(argparse.RawDescriptionHelpFormatter):
    pass


@functools.cache
def shared_parser() -> argparse.ArgumentParser:
    """:func:`build_parser` once per process, for :func:`auditor.cli.main`: parsing leaves a parser
    unchanged, and building it (some 300 arguments) was most of an in-process test command's time."""
    return build_parser()


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
    parser.add_argument("--report-library-url", metavar="URL",
                        help="Report Library base URL for the audit log (default: the instance's, e.g. "
                        "https://api.digicert.com/reports/v1; also [audit_log] report_library_url)")
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

    sub = command("connections", "List saved connections (never the key: only its fingerprint).")
    sub.add_argument("--discover", action="store_true",
                     help="list the subaccounts the --connection key can see (GET /account/subaccount)")
    sub.add_argument("--connection", default="default", metavar="NAME", help="with --discover: whose key asks")

    sub = command("disconnect", "Forget a saved connection and its key.")
    sub.add_argument("name", metavar="NAME")

    sub = command("sandbox", "Run the fake CertCentral server on loopback (foreground).")
    sub.add_argument("--host", default="127.0.0.1")
    sub.add_argument("--port", type=int, default=8443)
    sub.add_argument("--dataset", type=Path, action="append", default=[],
                     help="dataset JSON (default: the bundled sample account); repeatable: one instance each, "
                     "on --port, --port+1, ... (a fleet of accounts)")
    sub.add_argument("--latency-ms", type=int, default=0, help="added latency per request")
    sub.add_argument("--error-rate", type=float, default=0.0, help="share of answers replaced by 500/503")
    sub.add_argument("--retry-after", type=int, help="send Retry-After (seconds) on 429/503")
    sub.add_argument("--quiet", action="store_true", help="do not log each request (key labels only, never keys)")
    sub.add_argument("--route-fault", action="append", default=[], metavar="ROUTE=ANSWER",
                     help="make a route always fail, e.g. /user/api-only=missing-permission (answers: "
                     "missing-permission, route-not-found, not-found, html-403, html-404, server-error; "
                     "/user/{id} means every id; also /key, /container/{id}/ip/rules, /account/guest-access, and the "
                     "Report Library's /report/history and /report/{report}/{run}/download; repeatable)")
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
    sub.add_argument(
        "--page-size", type=int, default=None,
        help="users per page, 1-1000 (default 1000; 500 when CertCentral serves no more, measured per pull)",
    )

    sub = command("snapshots", "List stored snapshots.")
    sub.add_argument("--connection", metavar="NAME", help="only this connection")

    sub = command("history", "One user across every snapshot: first and last seen, role history.")
    connection_option(sub)
    sub.add_argument("user", metavar="EMAIL_OR_ID")
    sub.add_argument("--format", choices=values(HISTORY_FORMATS), default=OutputFormat.TEXT.value)

    sub = command("diff", "What changed between two snapshots.")
    connection_option(sub)
    sub.add_argument("--from", dest="from_id", type=int, metavar="ID")
    sub.add_argument("--to", dest="to_id", type=int, metavar="ID")
    sub.add_argument("--format", choices=values(DIFF_FORMATS), default=OutputFormat.TEXT.value)
    sub.add_argument("--allow-incomplete", action="store_true", help="allow an incomplete snapshot as baseline")
    sub.add_argument("--output", type=Path, metavar="FILE",
                     help="write to this file instead of stdout (- for stdout; a device or pipe is written in place)")

    sub = command("findings", "Evaluate the rules over a snapshot.")
    connection_option(sub)
    sub.add_argument("--snapshot", type=int, metavar="ID")
    sub.add_argument("--framework", metavar="P[,P]", help=f"profiles: {FRAMEWORKS_HELP}")
    sub.add_argument("--format", choices=values(FINDINGS_FORMATS), default=OutputFormat.TEXT.value,
                     help="oscal: an OSCAL assessment-results document; ocsf: OCSF JSON lines (README, Standards)")
    sub.add_argument("--fail-on", choices=values(Severity), help="exit 1 when an unsuppressed finding is this severe")
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
    action.add_argument("--scope", choices=REVIEW_SCOPES, default="all",
                        help="rows: every user (default, PCI DSS 7.2.4), privileged roles, users with findings, "
                        "or every user plus every active API key and ACME URL (with-keys: keep or revoke)")
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
    action.add_argument("--format", choices=values(REVIEW_STATUS_FORMATS), default=OutputFormat.TEXT.value)
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
    _pdf_signing_option(sub)

    sub = command("export", "Write a signed, hash-chained evidence bundle (ZIP).")
    connection_option(sub)
    sub.add_argument("--snapshot", type=int, metavar="ID")
    sub.add_argument("--framework", metavar="P[,P]", help=f"profiles: {FRAMEWORKS_HELP}")
    sub.add_argument("--output", type=Path, required=True, metavar="FILE.zip")
    sub.add_argument("--no-reports", action="store_true", help="leave the HTML/PDF reports out of the bundle")
    sub.add_argument("--reports", type=Path, metavar="DIR",
                     help="re-use the reports `auditor report --output DIR` wrote for this snapshot "
                     "(refused unless of the same snapshot, data and rules) instead of rendering them")
    sub.add_argument("--new-chain", action="store_true", help="start a new evidence chain (reported as such)")
    sub.add_argument("--overwrite", action="store_true")
    _identity_options(sub, bundle=True)
    _timestamp_options(sub)
    _pdf_signing_option(sub)

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
    sub.add_argument("--tsa-cert", type=Path, action="append", default=[], metavar="PEM",
                     help="check the bundle's RFC 3161 token against this TSA CA certificate (and the TSA's own)")

    sub = command("keys", "The evidence signing key.")
    key_actions = sub.add_subparsers(dest="action", metavar="ACTION", required=True)
    key_actions.add_parser("public", help="print the public key (PEM) and fingerprint for auditors")
    key_actions.add_parser("rotate", help="retire the current signing key and start a new key period")

    sub = command("run", "Pull, then findings, report and evidence export: the one-shot for cron/CI.")
    sub.add_argument("--connection", default="default", metavar="NAME[,NAME]",
                     help="saved connection (default: default); several, comma-separated, add a fleet summary")
    _report_options(sub)
    sub.add_argument("--details", action="store_true")
    sub.add_argument("--no-export", action="store_true", help="skip the evidence bundle")
    _identity_options(sub, bundle=True)
    _timestamp_options(sub)
    _pdf_signing_option(sub)
    _run_fleet_options(sub)

    sub = command("demo", "The whole pipeline against the bundled sample account (no key, no network).")
    sub.add_argument("--output", type=Path, default=Path("demo-output"))
    command("doctor", "Check the whole database: integrity of every page, every record's tag, the history "
            "index, the evidence chain, sizes (exit 6 on a problem).")
    return parser


def _pdf_signing_option(sub: argparse.ArgumentParser) -> None:
    sub.add_argument("--pdf-unsigned", action="store_true",
                     help="leave the PDF report unsigned (by default it carries a PAdES signature of the evidence key)")


def _timestamp_options(sub: argparse.ArgumentParser) -> None:
    sub.add_argument("--tsa-url", metavar="URL",
                     help="RFC 3161 time-stamping authority to countersign the bundle (else [evidence] tsa_url)")
    sub.add_argument("--tsa-optional", action="store_true",
                     help="a TSA that does not answer lets the export proceed without a token (stated)")


def _run_fleet_options(sub: argparse.ArgumentParser) -> None:
    """``run``'s alerts (issue 21) and many accounts at once."""
    sub.add_argument("--notify", action="append", default=[], metavar="URL",
                     help="apprise URL to notify when something needs attention (mailto://, json://, slack://, ...; "
                     "repeatable; default: notify = [...] in auditor.toml)")
    sub.add_argument("--notify-on", choices=values(NotifyOn), default=NotifyOn.CHANGE.value,
                     help="change: only when something new needs attention (default); always: every run (a heartbeat)")
    sub.add_argument("--all-connections", action="store_true",
                     help="run every saved connection, then write fleet-summary.html and .json into --output")
    sub.add_argument("--parallel", type=int, default=1, metavar="N",
                     help="run up to N connections at once, each within its own key's rate limit (default 1)")


def _identity_options(sub: argparse.ArgumentParser, *, bundle: bool = False) -> None:
    sub.add_argument("--identity", type=Path, action="append", default=[], metavar="FILE",
                     help="HR or identity-provider export (CSV or JSON; repeatable), instead of [identity] files")
    sub.add_argument("--identity-preset", metavar="NAME",
                     help=f"column mapping of the identity export: {IDENTITY_PRESETS_HELP}")
    if bundle:
        sub.add_argument("--include-identity-source", action="store_true",
                         help="put the identity files themselves into the bundle (they hold personal data)")


def _report_options(sub: argparse.ArgumentParser) -> None:
    sub.add_argument("--snapshot", type=int, metavar="ID")
    sub.add_argument("--framework", metavar="P[,P]", help=f"profiles: {FRAMEWORKS_HELP}")
    sub.add_argument("--format", default=REPORT_FORMATS_HELP, metavar=REPORT_FORMATS_HELP,
                     help=f"one or more of {REPORT_FORMATS_HELP},{STANDARDS_FORMATS_HELP}, comma-separated")
    sub.add_argument("--output", type=Path, default=Path(), metavar="DIR")
    sub.add_argument("--templates", type=Path, metavar="DIR", help="customised copy of report_templates/")
    sub.add_argument("--pdf-roster-limit", type=int, default=PDF_ROSTER_LIMIT, metavar="N",
                     help="full roster rows in the PDF before pointing to the attached CSV")
    sub.add_argument("--fail-on", choices=values(Severity))
