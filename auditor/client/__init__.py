"""The CertCentral client: read-only HTTP access to users, paced, retried and paginated.

This package owns everything httpx and pyrate-limiter do for the tool; none of their types leave
it. What comes out are ``auditor.models`` values and ``auditor.errors`` exceptions. One room each:

- ``core``: :class:`CertCentralClient`, the reads of a pull and a connection test, in order;
- ``transport``: the read-only guard, TLS, proxies, one answer read against its caps and deadline;
- ``session``: one GET paced, retried and translated, kept as a raw page;
- ``pacing``: retries with back-off (Retry-After) and the rate limiter, clock and sleep injected;
- ``paging``: every page of a list endpoint, merged and reconciled;
- ``errors``: CertCentral's answers and httpx's failures as typed errors;
- ``inventory``: API keys, IP rules and guest access (§11);
- ``connection``: the connection test's verdict; ``results``: what operations return;
- ``base_url``: US/EU hosts, which base URLs are allowed (plain HTTP on loopback only);
- the parser from API JSON to models is :mod:`auditor.parsing` (outside, so evidence
  re-checks can share it without importing the client).

Guarantees:

- **Read-only by construction.** Every request passes through :class:`ReadOnlyTransport`, which
  raises :class:`WriteAttemptError` for any method but GET before a byte is sent.
- **The API key never appears** in an exception message, a log line, or the client's repr, and
  never in anything kept: every answer (headers and decoded body) is scanned for the key in raw,
  base64, hex and URL-encoded form first, and a hit fails the operation (:class:`KeyEchoedError`).
- **Bounded.** A pull ends by its deadline (``deadline``, whatever the server's pace), each answer
  by its own; bodies are read against a byte cap (decompressed size, so a gzip bomb cannot grow),
  ``page.total`` above ``max_users`` is refused, paging stops at the first empty page and after
  ``ceil(total / limit)`` pages plus a few, and waits on HTTP 429 are capped per pull.
- **"Could not read" never means "none".** An endpoint that cannot be read fails the pull, except
  where CertCentral documents an answer meaning "not available to this key" (403
  ``missing_permission``, 404 ``not_found|route`` on both service-user paths): that part is *not
  evaluable* and the pull is marked incomplete (:attr:`PullResult.not_evaluable`).
- **Typed failures.** A rejected key is :class:`~auditor.errors.AuthenticationError`, a key that may
  not read users is :class:`~auditor.errors.PermissionDeniedError`, an unreadable answer or a wrong
  base URL is :class:`~auditor.errors.ApiBadResponseError`; 429, 5xx and network failures are
  retried and, after the last attempt, become :class:`~auditor.errors.ApiUnavailableError` or
  :class:`~auditor.errors.ApiConnectionError`.
- **Honest pulls.** :meth:`CertCentralClient.pull_users` never reports a pull as complete unless
  every page agreed on ``page.total`` and that many distinct users arrived.

The API facts behind each decision are in ``../shared/certcentral-api.md`` (cited as §n);
the upstream page is linked at each quirk.
"""

from __future__ import annotations

from auditor.client.base_url import REGIONS, check_base_url, instance_label, resolve_base_url
from auditor.client.core import (
    DEFAULT_DEADLINE,
    DEFAULT_MAX_BODY_BYTES,
    DEFAULT_MAX_CONCURRENCY,
    DEFAULT_MAX_RATE_LIMIT_WAIT,
    DEFAULT_MAX_USERS,
    DEFAULT_PAGE_SIZE,
    DEFAULT_RESPONSE_DEADLINE,
    MAX_PAGE_SIZE,
    CertCentralClient,
)
from auditor.client.errors import KEY_ECHOED_MESSAGE, KeyEchoedError
from auditor.client.pacing import DEFAULT_RATE_LIMITS
from auditor.client.results import ConnectionReport, PullObserver, PullResult
from auditor.client.transport import ReadOnlyTransport, WriteAttemptError
from auditor.parsing import DerivedUsers, credentials_from_raw_pages, record_digest, users_from_raw_pages

__all__ = [
    "DEFAULT_DEADLINE",
    "DEFAULT_MAX_BODY_BYTES",
    "DEFAULT_MAX_CONCURRENCY",
    "DEFAULT_MAX_RATE_LIMIT_WAIT",
    "DEFAULT_MAX_USERS",
    "DEFAULT_PAGE_SIZE",
    "DEFAULT_RATE_LIMITS",
    "DEFAULT_RESPONSE_DEADLINE",
    "KEY_ECHOED_MESSAGE",
    "MAX_PAGE_SIZE",
    "REGIONS",
    "CertCentralClient",
    "ConnectionReport",
    "DerivedUsers",
    "KeyEchoedError",
    "PullObserver",
    "PullResult",
    "ReadOnlyTransport",
    "WriteAttemptError",
    "check_base_url",
    "credentials_from_raw_pages",
    "instance_label",
    "record_digest",
    "resolve_base_url",
    "users_from_raw_pages",
]
