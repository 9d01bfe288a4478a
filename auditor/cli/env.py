"""What the CLI takes from the process before any command runs: the secret variables and the operator.

Stdlib and ``models`` only: :func:`auditor.cli.main` calls :func:`take_secrets` first thing, before
the parser or any command module is imported.
"""

from __future__ import annotations

import getpass
import os
import platform
import shlex
import socket
from collections.abc import MutableMapping, Sequence
from dataclasses import dataclass, field

from auditor import __version__
from auditor.models import Operator

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


#: Flags whose value would be a secret. None takes one today (keys come from the environment or a
#: prompt), but the recorded command line must stay secret-free if one is ever added.
_SECRET_FLAGS = frozenset({"--api-key", "--key", "--devkey", "--token", "--api-token", "--password",
                           "--secret", "--master-key", "--signing-key"})
_REDACTED = "<redacted>"


def redacted_command(argv: Sequence[str]) -> str:
    """``auditor pull --connection prod`` as run, with any value after a secret flag replaced."""
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
