"""The tool's errors: each explains itself to a person and carries the CLI's exit code.

Modeled on sigstore-python's ``Error.diagnostics()``: the message names what went wrong and the
next step. A secret never appears in any message: callers pass fingerprints, never keys.
"""

from __future__ import annotations

import enum


class ExitCode(enum.IntEnum):
    """The CLI's exit codes; users' scripts depend on these numbers (README, ``--help``)."""

    OK = 0
    FINDINGS_OR_VERIFY_FAILED = 1
    USAGE = 2
    KEY_REJECTED = 3
    KEY_NOT_PERMITTED = 4
    CERTCENTRAL_UNAVAILABLE = 5
    LOCAL_DATA = 6
    #: ``run --notify``: the run's evidence was written, but a notification could not be delivered
    #: (it is sent again by the next run).
    NOTIFY_FAILED = 7
    #: ``run`` over several connections: at least one account failed; the others' evidence was written.
    ACCOUNTS_FAILED = 8
    #: A bug in the tool (sysexits.h ``EX_SOFTWARE``): the CLI's catch-all for unexpected exceptions.
    INTERNAL_ERROR = 70
    #: Ctrl-C (128 + SIGINT, as shells report it); an interrupted pull or run exits 5 instead.
    INTERRUPTED = 130


class AuditorError(Exception):
    """Base of every error the tool reports to a person instead of a traceback."""

    exit_code: ExitCode = ExitCode.USAGE

    def __init__(self, message: str, *, hint: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def diagnostics(self) -> str:
        """The full explanation shown to the user: what happened, then what to do."""
        if self.hint:
            return f"{self.message}\n{self.hint}"
        return self.message


class ConfigurationError(AuditorError):
    """Bad configuration, arguments, exceptions file or missing connection (exit 2)."""

    exit_code = ExitCode.USAGE


class CredentialsError(AuditorError):
    """The master key is missing or wrong, or a stored secret cannot be decrypted (exit 2)."""

    exit_code = ExitCode.USAGE


class ApiError(AuditorError):
    """Base of problems talking to CertCentral."""

    exit_code = ExitCode.CERTCENTRAL_UNAVAILABLE


class ApiConnectionError(ApiError):
    """CertCentral could not be reached: DNS, TLS, timeout, connection reset (exit 5)."""


class ApiUnavailableError(ApiError):
    """CertCentral answered 5xx / maintenance, or rate limited us after every retry (exit 5)."""


class ApiBadResponseError(ApiError):
    """CertCentral answered something we cannot read: non-JSON, wrong shape, 404 route (exit 5)."""


class AuthenticationError(ApiError):
    """The API key was rejected (403 access_denied_invalid_key, or 401) (exit 3)."""

    exit_code = ExitCode.KEY_REJECTED


class PermissionDeniedError(ApiError):
    """The key works but may not read users (403 access_denied|missing_permission) (exit 4)."""

    exit_code = ExitCode.KEY_NOT_PERMITTED


class StoreError(AuditorError):
    """The local database is corrupt, locked, of an unknown schema, or unreadable (exit 6)."""

    exit_code = ExitCode.LOCAL_DATA


class StoreBusyError(StoreError):
    """Another auditor process holds the data directory's lock (exit 6)."""


class ReportError(AuditorError):
    """A report could not be rendered or written (exit 6)."""

    exit_code = ExitCode.LOCAL_DATA


class EvidenceError(AuditorError):
    """An evidence bundle could not be written, or read as a bundle (exit 6)."""

    exit_code = ExitCode.LOCAL_DATA
