"""The command line: the only place that reads argv and the environment, prints, and exits.

| module | owns |
|---|---|
| ``parser`` | every command, flag and choice, the help text; closed sets from the model's enums |
| ``app`` | :func:`main`: parse, build the workspace, run a handler, errors to messages and exit codes |
| ``commands`` | one handler per command: arguments to a use case, its result to stdout or ``--output`` |
| ``text`` | the terminal text: tables, summaries, findings and diff listings |
| ``output`` | stdout for data, stderr for progress, the pull progress display on a terminal |
| ``env`` | secret variables taken from the environment first, the operator recorded with a pull |
| ``workspace`` | the data directory, master key and client options from the environment and flags |

``auditor --help`` imports ``parser`` only; the command modules load once a command is parsed.
"""

from auditor.cli.app import main
from auditor.cli.env import SECRET_VARIABLES, EnvSecrets, gather_operator, redacted_command, take_secrets
from auditor.cli.parser import build_parser

__all__ = [
    "SECRET_VARIABLES",
    "EnvSecrets",
    "build_parser",
    "gather_operator",
    "main",
    "redacted_command",
    "take_secrets",
]
