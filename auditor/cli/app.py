"""``main``: parse, build the workspace, run one handler, and turn every error into a message and an exit code."""

from __future__ import annotations

import dataclasses
import logging
import sys
import traceback
from collections.abc import Callable, MutableMapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from auditor.cli.env import gather_operator, take_secrets
from auditor.cli.output import Output
from auditor.cli.parser import shared_parser
from auditor.errors import AuditorError, ExitCode

if TYPE_CHECKING:
    from auditor.pipeline import Workspace
    from auditor.store import LockTimeouts


def main(
    argv: Sequence[str] | None = None,
    *,
    stdout: TextIO | None = None,
    stderr: TextIO | None = None,
    stdin: TextIO | None = None,
    workspace: Workspace | None = None,
    environ: MutableMapping[str, str] | None = None,
    cwd: Path | None = None,
    lock_timeouts: LockTimeouts | None = None,
) -> int:
    """Run one command; returns the exit code. The single place errors become messages.

    ``environ`` and ``cwd`` default to the process's own; tests pass their own to run the CLI
    in-process exactly as a shell would run it (secrets are popped from ``environ`` either way);
    ``lock_timeouts`` replaces the workspace's production lock waits (in-process tests shorten them).
    """
    secrets = take_secrets(environ)  # first: nothing started later may inherit a secret
    out = Output(stdout or sys.stdout, stderr or sys.stderr)
    parser = shared_parser()
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
        # Deferred: the handlers import every use case and its libraries; --help and --version need none.
        from auditor.cli.commands import HANDLERS, NO_WORKSPACE
        from auditor.cli.workspace import workspace_from_env

        if workspace is None and args.command not in NO_WORKSPACE:
            workspace = workspace_from_env(args, environ, cwd=cwd)
        elif workspace is not None and workspace.operator is None:
            workspace = dataclasses.replace(workspace, operator=args.operator)
        if workspace is not None:
            workspace = dataclasses.replace(workspace, notice=out.info)
        if workspace is not None and lock_timeouts is not None:
            workspace = dataclasses.replace(workspace, lock_timeouts=lock_timeouts)
        return HANDLERS[args.command](args, workspace, out, stdin or sys.stdin)
    except AuditorError as error:
        if args.verbose:
            traceback.print_exc(file=out.stderr)
        out.info(f"Error: {error.diagnostics()}")
        return int(error.exit_code)
    except KeyboardInterrupt:
        out.info("Interrupted. Nothing was stored by the interrupted step; earlier data is intact.")
        return ExitCode.CERTCENTRAL_UNAVAILABLE if args.command in {"pull", "run"} else ExitCode.INTERRUPTED
    except BrokenPipeError:
        return ExitCode.OK
    except Exception as error:  # a bug: say so plainly, with the traceback behind -v
        if args.verbose:
            traceback.print_exc(file=out.stderr)
        out.info(
            f"Internal error ({type(error).__name__}). This is a bug in certcentral-auditor; "
            "re-run with -v for the traceback and report it. No data was changed by the failed step."
        )
        return ExitCode.INTERNAL_ERROR
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
