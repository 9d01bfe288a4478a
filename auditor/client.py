"""The CertCentral client: read-only HTTP access to users, paced, retried and paginated.

This module owns everything httpx, stamina and pyrate-limiter do for the tool; none of their types
leave it. What comes out are ``auditor.models`` values and ``auditor.errors`` exceptions.

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

import base64
import email.utils
import hashlib
import json
import logging
import math
import random
import ssl
import threading
import time
import types
import urllib.request
import zlib
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any, Protocol, TypeVar
from urllib.parse import quote, quote_plus, urlsplit

import httpcore
import httpx
import stamina
from pyrate_limiter import InMemoryBucket, Limiter, Rate, SingleBucketFactory

from auditor import __version__
from auditor.errors import (
    ApiBadResponseError,
    ApiConnectionError,
    ApiError,
    ApiUnavailableError,
    AuthenticationError,
    ConfigurationError,
    PermissionDeniedError,
)
from auditor.models import (
    GUEST_ACCESS_PATH,
    KEY_LIST_PATH,
    CredentialInventory,
    EndpointReconciliation,
    RawPage,
    User,
    ip_rules_path,
    utc_now,
)

__all__ = [
    "DEFAULT_DEADLINE",
    "DEFAULT_MAX_BODY_BYTES",
    "DEFAULT_MAX_USERS",
    "DEFAULT_PAGE_SIZE",
    "KEY_ECHOED_MESSAGE",
    "MAX_PAGE_SIZE",
    "REGIONS",
    "CertCentralClient",
    "ConnectionReport",
    "DerivedUsers",
    "PullObserver",
    "PullResult",
    "ReadOnlyTransport",
    "WriteAttemptError",
    "record_digest",
    "resolve_base_url",
    "users_from_raw_pages",
]

logger = logging.getLogger(__name__)
# stamina logs each scheduled retry at WARNING. With no handler configured, Python's last-resort
# handler would print those bare lines into every cron mail; retries already reach the user
# through PullObserver.on_retry and the pull summary. `auditor -v` configures logging to show them.
logging.getLogger("stamina").addHandler(logging.NullHandler())

# Base URLs (§1.1): https://dev.digicert.com/en/certcentral-apis/services-api.html
REGIONS: Mapping[str, str] = types.MappingProxyType(
    {
        "us": "https://www.digicert.com/services/v2",
        "eu": "https://certcentral.digicert.eu/services/v2",
    }
)

# limit=500 is proven on /user; 1000 is the documented max of other list endpoints and only
# likely for /user (§2.1): https://dev.digicert.com/services-api/users/list-users/
DEFAULT_PAGE_SIZE = 500
#: Pages in flight at once after the first: enough to hide ~100 ms of latency per page, far below the
#: 100-per-5-s limit (the limiter paces anything faster).
DEFAULT_MAX_CONCURRENCY = 8
MAX_PAGE_SIZE = 1000

# Rolling windows of 100 requests / 5 s and 1000 / 3 min per key (§5.3); the older page says
# 1000 / 5 min, so we pace for the stricter one.
# https://dev.digicert.com/en/certcentral-apis/services-api/rate-limits.html
DEFAULT_RATE_LIMITS: tuple[tuple[int, float], ...] = ((100, 5.0), (1000, 180.0))

#: Added to every rate-limit window (at most this many seconds, at most 20% of the window): the
#: server times a request when it arrives, we when we send it, so pacing at exactly the
#: documented limit still met 429s against the sandbox once latency jittered.
RATE_LIMIT_MARGIN = 1.0
#: A 429 without Retry-After: start backing off at the short rate-limit window (§5.3).
RATE_LIMIT_INITIAL_WAIT = 5.0
#: Never sleep longer than this on one Retry-After, whatever the server says.
RETRY_AFTER_CAP = 600.0
#: Extra pages fetched past the expected end when the user count did not add up.
FOLLOW_UP_PAGES = 3

#: A whole pull (every request, retry and back-off) ends within this many seconds (``--deadline``).
DEFAULT_DEADLINE = 1800.0
#: One answer (headers and body) must arrive within this many seconds, however steadily it trickles:
#: the idle ``timeout`` alone never ends a server that sends one byte per second.
DEFAULT_RESPONSE_DEADLINE = 300.0
#: A ``page.total`` above this is refused (``--max-users``): no real account is that large, and
#: paging to it would cost days of requests.
DEFAULT_MAX_USERS = 1_000_000
#: The largest answer kept, decompressed: a 1000-user page is about 1.5 MB.
DEFAULT_MAX_BODY_BYTES = 64 * 1024 * 1024
#: The most time one pull spends waiting on HTTP 429 back-off, summed over every request.
DEFAULT_MAX_RATE_LIMIT_WAIT = 600.0

KEY_ECHOED_MESSAGE = "CertCentral or a proxy echoed the API key; nothing was stored"

_REDACTED = "<redacted>"
_KEY_CHECK_ENDPOINT = "/user/me"
_LIST_PATHS = ("/user", "/user/api-only", "/service-user")

_AUTH_HINT = (
    "Check that the key was copied in full, without spaces, and that it is still active under "
    "Automation → API Keys in CertCentral."
)
_PERMISSION_HINT = (
    "The key's restriction is too narrow to read users (for example an Orders-only key), or its "
    "user's role may not list users. Create a View Only or User Management key linked to an "
    "unrestricted Administrator; if you cannot create keys, ask an account administrator."
)
_BASE_URL_HINT = (
    f"Use region 'us' ({REGIONS['us']}) or 'eu' ({REGIONS['eu']}), or a base URL that ends in /services/v2."
)


class WriteAttemptError(RuntimeError):
    """The client was asked to send a request that could change CertCentral.

    A ``RuntimeError`` rather than an :class:`~auditor.errors.AuditorError` on purpose: it can
    only mean a bug in this tool, so the CLI should show a traceback, not a friendly message.
    """


class KeyEchoedError(ApiBadResponseError):
    """An answer carried the API key (a proxy page echoing request headers, say); nothing is kept (exit 5)."""


class ReadOnlyTransport(httpx.BaseTransport):
    """An httpx transport that refuses every method except GET before anything is sent.

    The audit tool never needs to write; this makes "read-only" a property of the code path,
    not a promise (a View Only key, §4.2, would be the server-side half of the same guarantee).
    HEAD is refused too: the tool never needs it, and "only GET" is the simpler promise.
    """

    ALLOWED_METHODS = frozenset({"GET"})

    def __init__(self, inner: httpx.BaseTransport) -> None:
        self._inner = inner

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        if request.method.upper() not in self.ALLOWED_METHODS:
            raise WriteAttemptError(
                f"refused to send {request.method} {request.url.path}: "
                "certcentral-auditor is read-only and only sends GET requests"
            )
        return self._inner.handle_request(request)

    def close(self) -> None:
        self._inner.close()


def resolve_base_url(region: str | None, base_url: str | None) -> str:
    """Pick the Services API base URL: an explicit ``base_url`` wins, else the region preset.

    ``None`` for both means the US instance, where most accounts live (§1.1). The result has no
    trailing slash. Raises ConfigurationError for an unknown region or a URL that is not http(s).
    """
    if base_url is not None and base_url.strip():
        text = base_url.strip()
        parts = urlsplit(text)
        if parts.scheme.lower() not in {"http", "https"} or not parts.hostname:
            raise ConfigurationError(f"The base URL {text!r} is not an http(s) URL.", hint=_BASE_URL_HINT)
        if parts.username or parts.password or parts.query or parts.fragment:
            raise ConfigurationError(
                "The base URL must not contain credentials, a query or a fragment.",
                hint=_BASE_URL_HINT,
            )
        return text.rstrip("/")
    name = (region or "us").strip().lower()
    if name not in REGIONS:
        known = ", ".join(sorted(REGIONS))
        raise ConfigurationError(f"Unknown CertCentral region {region!r}; known regions: {known}.", hint=_BASE_URL_HINT)
    return REGIONS[name]


def record_digest(raw_user: Mapping[str, Any]) -> str:
    """SHA-256 of a user's list record as canonical JSON, ignoring ``last_login_date``.

    Used to decide whether ``GET /user/{id}`` must be called again: a sign-in alone changes
    nothing that the detail call adds, so it should not cost a request.
    """
    stable = {key: value for key, value in raw_user.items() if key != "last_login_date"}
    canonical = json.dumps(stable, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    # Lone surrogates are valid in JSON (a "\\ud800" escape) though not in UTF-8: keep them hashable.
    return hashlib.sha256(canonical.encode("utf-8", "surrogatepass")).hexdigest()


class PullObserver(Protocol):
    """Progress of a pull, for the CLI's progress bars.

    Calls may come from worker threads, but never two at once.
    """

    def on_total(self, users: int, pages: int) -> None:
        """``GET /user`` reported ``users`` users, which take ``pages`` pages."""

    def on_page(self, endpoint: str, users: int) -> None:
        """One list page arrived with ``users`` users."""

    def on_retry(self, endpoint: str, reason: str, wait_seconds: float) -> None:
        """A request failed with a retryable ``reason``; the next try follows in ``wait_seconds``."""

    def on_detail(self, done: int, total: int) -> None:
        """``done`` of ``total`` ``GET /user/{id}`` calls are finished."""


@dataclass(frozen=True, slots=True)
class ConnectionReport:
    """What a key can see: its own user, and whether an audit with it would cover the account."""

    me: User
    account_id: int | None
    sees_whole_account: bool
    warnings: tuple[str, ...] = ()
    #: ``page.total`` of ``GET /user`` for this key.
    visible_users: int = 0


@dataclass(frozen=True, slots=True)
class PullResult:
    """Everything one pull produced, with the raw evidence and an honest completeness verdict.

    ``expected_total`` and ``received`` add up per list endpoint (``GET /user`` plus the service
    user list); ``users`` is their union by id, so it may be shorter than ``received``.
    ``pages`` counts list pages (``/user``, ``/user/api-only`` or ``/service-user``) answered 200.
    """

    users: tuple[User, ...]
    raw_pages: tuple[RawPage, ...]
    requests: int
    retries: int
    pages: int
    expected_total: int
    received: int
    complete: bool
    notes: tuple[str, ...]
    started_at: datetime
    finished_at: datetime
    me: User | None
    account_id: int | None
    details_fetched: bool
    record_digests: Mapping[int, str] = field(default_factory=lambda: types.MappingProxyType({}))
    #: Per list endpoint read: ``page.total`` against rows received, pages, requests and digests.
    endpoints: tuple[EndpointReconciliation, ...] = ()
    #: Parts of the account that CertCentral documented as not available to this key (e.g.
    #: ``"service_users"``): not read, so unknown, never "none". A pull with any is incomplete.
    not_evaluable: tuple[str, ...] = ()
    #: The proxy the requests went through (from the environment), without credentials; None: direct.
    proxy: str | None = None


# --------------------------------------------------------------------------------------------
# internals


@dataclass(frozen=True, slots=True)
class _Page:
    offset: int
    users: tuple[Mapping[str, Any], ...]
    total: int
    #: ``page.limit`` as echoed (§2.2), when it is a usable whole number.
    limit: int | None = None


@dataclass(frozen=True, slots=True)
class _Refusal:
    """A 403 or 404 answer to an endpoint whose absence is tolerated, with the documented code."""

    path: str
    status: int
    code: str
    response: httpx.Response

    @property
    def documented(self) -> bool:
        """Whether CertCentral documents this answer as "not available to this key/account" (§5.2)."""
        code = self.code.lower()
        if self.status == 403:
            return code == "access_denied|missing_permission"
        return self.status == 404 and code.split("|", 1)[0] == "not_found"


@dataclass(slots=True)
class _Listing:
    """The merged pages of one list endpoint."""

    path: str
    records: dict[int, Mapping[str, Any]]
    expected: int
    complete: bool
    notes: list[str]


class _Retryable(Exception):
    """A failed attempt worth repeating; carries what to tell the user."""

    def __init__(
        self,
        reason: str,
        *,
        status: int | None = None,
        retry_after: float | None = None,
        rate_limited: bool = False,
    ) -> None:
        super().__init__(reason)
        self.reason = reason
        self.status = status
        self.retry_after = retry_after
        self.rate_limited = rate_limited


class _Run:
    """Counters, raw pages and observer calls of one client operation, safe across threads."""

    def __init__(self, observer: PullObserver | None, *, deadline_at: float = math.inf) -> None:
        self._lock = threading.Lock()
        self._observer = observer
        self.requests = 0
        self.retries = 0
        self.list_pages = 0
        self._pages: list[tuple[tuple[int, int, int], RawPage]] = []
        #: Monotonic time by which the whole operation must end (the pull deadline).
        self.deadline_at = deadline_at
        #: Seconds of HTTP 429 back-off spent so far.
        self.rate_limit_wait = 0.0

    def add_rate_limit_wait(self, seconds: float, cap: float) -> bool:
        """Book ``seconds`` of 429 back-off; False (nothing booked) when it would pass ``cap``."""
        with self._lock:
            if self.rate_limit_wait + seconds > cap:
                return False
            self.rate_limit_wait += seconds
            return True

    def count_request(self) -> None:
        with self._lock:
            self.requests += 1

    def retry(self, endpoint: str, reason: str, wait: float) -> None:
        with self._lock:
            self.retries += 1
            if self._observer is not None:
                self._observer.on_retry(endpoint, reason, wait)

    def keep(self, key: tuple[int, int, int], page: RawPage, *, list_page: bool = False) -> None:
        with self._lock:
            self._pages.append((key, page))
            if list_page and page.status == 200:
                self.list_pages += 1

    def total(self, users: int, pages: int) -> None:
        with self._lock:
            if self._observer is not None:
                self._observer.on_total(users, pages)

    def page(self, endpoint: str, users: int) -> None:
        with self._lock:
            if self._observer is not None:
                self._observer.on_page(endpoint, users)

    def detail(self, done: int, total: int) -> None:
        with self._lock:
            if self._observer is not None:
                self._observer.on_detail(done, total)

    def raw_pages(self) -> tuple[RawPage, ...]:
        with self._lock:
            return tuple(page for _, page in sorted(self._pages, key=lambda item: item[0]))

    def raw_pages_of(self, group: int) -> tuple[RawPage, ...]:
        with self._lock:
            return tuple(page for key, page in sorted(self._pages, key=lambda item: item[0]) if key[0] == group)


#: Refusals a caller may inspect instead of failing (see _Refusal.documented).
_TOLERATED = frozenset({403, 404})
#: Framing of the body as sent; the answer kept holds the decoded body, so these no longer apply.
_BODY_FRAMING = frozenset({b"content-encoding", b"content-length", b"transfer-encoding"})
_NOT_FOUND = frozenset({404})

# Sort keys of raw pages: /user/me, then /user by offset, then service users, then details by id,
# then the credential inventory: /key by offset, the IP rules, guest access.
_GROUP_ME, _GROUP_USERS, _GROUP_SERVICE, _GROUP_DETAIL, _GROUP_KEYS, _GROUP_IP, _GROUP_GUEST = range(7)
#: What the IP-rule and guest-access reads tolerate as "not available here" (§11.2, §11.3:
#: 403 missing_permission, or 404 not_found when the feature is not on the account).
_CREDENTIAL_REFUSALS = frozenset({403, 404})

_T = TypeVar("_T")
_R = TypeVar("_R")


def _reconcile(listing: _Listing, raw_pages: Iterable[RawPage]) -> EndpointReconciliation:
    """One list endpoint's completeness record, from its merged pages and the raw pages kept."""
    mine = [page for page in raw_pages if page.endpoint.split("?", 1)[0] == listing.path]
    return EndpointReconciliation(
        path=listing.path,
        announced=listing.expected,
        received=len(listing.records),
        pages=sum(1 for page in mine if page.status == 200),
        complete=listing.complete,
        requests=tuple((page.endpoint, page.sha256) for page in mine),
        note=" ".join(listing.notes),
    )


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _parse_errors(body: bytes) -> tuple[tuple[str, str], ...]:
    """(code, message) pairs from an error body, or () when it is not the documented JSON.

    ``errors`` is documented as a list (§5.1, https://dev.digicert.com/errors/), but a published
    client's fixture has it as one object (riboseinc/digicert ``spec/fixtures/errors.json``), and
    the CDN in front of the API answers HTML; all three must work.
    """
    try:
        data = json.loads(body)
    except (ValueError, RecursionError):
        return ()
    if not isinstance(data, Mapping):
        return ()
    errors = data.get("errors")
    if isinstance(errors, Mapping):
        errors = [errors]
    if not isinstance(errors, list):
        return ()
    pairs: list[tuple[str, str]] = []
    for item in errors:
        if isinstance(item, Mapping):
            code, message = item.get("code"), item.get("message")
            pairs.append((code if isinstance(code, str) else "", message if isinstance(message, str) else ""))
        elif isinstance(item, str):
            pairs.append(("", item))
    return tuple(pairs)


def _key_forms(key: str) -> tuple[tuple[bytes, ...], tuple[bytes, ...]]:
    """How an echoed key may look: (case-sensitive forms, forms to match case-insensitively).

    Raw; URL-encoded (``%2F`` or ``%2f``); hex (either case); base64 and URL-safe base64 at each
    of the three alignments a key can have inside a longer encoded text (only the groups made
    of the key's bytes alone, so a prefix or suffix does not hide it).
    """
    raw = key.encode("utf-8")
    exact: set[bytes] = {raw, quote(key, safe="").encode(), quote_plus(key, safe="").encode()}
    folded: set[bytes] = {raw.hex().encode(), quote(key, safe="").lower().encode()}
    for shift in range(3):
        data = b"\0" * shift + raw
        whole_groups = len(data) // 3
        for encoded in (base64.b64encode(data), base64.urlsafe_b64encode(data)):
            core = encoded[4 if shift else 0 : whole_groups * 4]
            if len(core) >= 8:
                exact.add(core)
    return tuple(sorted(exact)), tuple(sorted(folded))


def _carries_key(forms: tuple[tuple[bytes, ...], tuple[bytes, ...]], *texts: bytes) -> bool:
    exact, folded = forms
    for text in texts:
        if any(form in text for form in exact):
            return True
        lowered = text.lower()
        if any(form in lowered for form in folded):
            return True
    return False


class _Inflater:
    """Decodes a body's ``Content-Encoding`` without ever holding more than ``limit`` bytes.

    httpx's decoders inflate a whole network chunk at once (a 64 KiB gzip chunk can become
    64 MB, a brotli chunk far more); zlib's ``max_length`` lets us stop one byte past the cap.
    Only identity, gzip and deflate are asked for (``Accept-Encoding``), so only those are read.
    """

    def __init__(self, encoding: str, endpoint: str) -> None:
        name = encoding.strip().lower()
        if name in ("", "identity"):
            self._zlib = None
        elif name in ("gzip", "x-gzip", "deflate"):
            self._zlib = zlib.decompressobj(32 + zlib.MAX_WBITS)  # gzip or zlib header, detected
        else:
            raise ApiBadResponseError(
                f"CertCentral answered GET {endpoint} with Content-Encoding {encoding[:40]!r}, which the "
                "tool did not ask for and does not read.",
                hint="A proxy may be re-encoding answers; check the base URL and proxy settings.",
            )

    def feed(self, data: bytes, room: int) -> bytes:
        """Decoded bytes of ``data``: at most ``room + 1`` of them (one more than fits means "too big")."""
        if self._zlib is None:
            return data[: room + 1]
        out = bytearray()
        pending = data
        try:
            while pending and len(out) <= room:
                out += self._zlib.decompress(pending, room + 1 - len(out))
                pending = self._zlib.unconsumed_tail
        except zlib.error as exc:
            raise ApiBadResponseError(f"CertCentral's compressed answer could not be decoded ({exc}).") from None
        return bytes(out)


def _tls_context() -> ssl.SSLContext:
    """The TLS context for CertCentral: certifi's roots, or ``SSL_CERT_FILE``/``SSL_CERT_DIR``.

    Built here rather than by httpx so that (1) a broken CA setting from the environment is a clear
    :class:`ApiConnectionError` (exit 5) naming it, and (2) ``SSLKEYLOGFILE`` is ignored:
    ``ssl.create_default_context`` (which httpx uses) honours it, writing the session secrets of
    every request, and so the API key on the wire, to that file.
    """
    import os  # SSL_CERT_FILE / SSL_CERT_DIR: the same settings httpx and OpenSSL read

    cafile = os.environ.get("SSL_CERT_FILE") or None
    capath = None if cafile else os.environ.get("SSL_CERT_DIR") or None
    source = f"SSL_CERT_FILE={cafile}" if cafile else f"SSL_CERT_DIR={capath}" if capath else "certifi"
    try:
        if cafile is None and capath is None:
            import certifi  # httpx's own dependency, needed only here

            cafile = certifi.where()
        # Not ssl.create_default_context: it opens SSLKEYLOGFILE (writing a header) before we could
        # turn it off. PROTOCOL_TLS_CLIENT has the same secure defaults (hostname check, verify).
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.load_verify_locations(cafile=cafile, capath=capath)
    except (ssl.SSLError, OSError, ValueError) as exc:
        raise ApiConnectionError(
            f"Could not set up TLS: the CA certificates from {source} could not be loaded "
            f"({type(exc).__name__}: {exc}).",
            hint="Unset SSL_CERT_FILE / SSL_CERT_DIR, or point them at a PEM bundle of CA certificates.",
        ) from None
    return context


def _environment_proxy(base_url: str) -> str | None:
    """The proxy the environment names for ``base_url`` (``HTTPS_PROXY`` etc., minding ``NO_PROXY``).

    httpx ignores environment proxies once a transport is given, as this client always does (the
    read-only guard wraps it), so the same lookup is done here with the standard library.
    """
    parts = urlsplit(base_url)
    proxies = urllib.request.getproxies()
    proxy = proxies.get(parts.scheme) or proxies.get("all")
    if not proxy or urllib.request.proxy_bypass(parts.hostname or ""):
        return None
    return proxy


def _describe_proxy(proxy: str) -> str:
    """A proxy URL without credentials, for provenance and messages."""
    parts = urlsplit(proxy if "://" in proxy else f"http://{proxy}")
    host = parts.hostname or "?"
    return f"{parts.scheme}://{host}{f':{parts.port}' if parts.port else ''}"


class _DeadlineStream(httpcore.NetworkStream):
    """A connection whose every read ends by the current answer's deadline (not only the idle timeout).

    Reading the body in chunks bounds it; this bounds the status line and headers too, which httpcore
    reads before the client sees any of the answer: a read never waits past the deadline, and one
    asked for after it fails at once as a read timeout.
    """

    def __init__(self, inner: httpcore.NetworkStream, remaining: Callable[[], float | None]) -> None:
        self._inner = inner
        self._remaining = remaining

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        left = self._remaining()
        if left is not None:
            if left <= 0:
                raise httpcore.ReadTimeout("the answer's deadline passed")
            timeout = left if timeout is None else min(timeout, left)
        return self._inner.read(max_bytes, timeout)

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self._inner.write(buffer, timeout)

    def close(self) -> None:
        self._inner.close()

    def start_tls(
        self, ssl_context: ssl.SSLContext, server_hostname: str | None = None, timeout: float | None = None
    ) -> httpcore.NetworkStream:
        return _DeadlineStream(self._inner.start_tls(ssl_context, server_hostname, timeout), self._remaining)

    def get_extra_info(self, info: str) -> Any:
        return self._inner.get_extra_info(info)


class _DeadlineBackend(httpcore.NetworkBackend):
    """httpcore's network backend with every connection a :class:`_DeadlineStream`."""

    def __init__(self, inner: httpcore.NetworkBackend, remaining: Callable[[], float | None]) -> None:
        self._inner = inner
        self._remaining = remaining

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.NetworkStream:
        stream = self._inner.connect_tcp(host, port, timeout, local_address, socket_options)
        return _DeadlineStream(stream, self._remaining)

    def connect_unix_socket(
        self, path: str, timeout: float | None = None, socket_options: Iterable[Any] | None = None
    ) -> httpcore.NetworkStream:
        return _DeadlineStream(self._inner.connect_unix_socket(path, timeout, socket_options), self._remaining)

    def sleep(self, seconds: float) -> None:
        self._inner.sleep(seconds)


def _describe_body(response: httpx.Response) -> str:
    """A short, secret-free description of a body we could not read, for messages."""
    if not response.content:
        return "an empty body"
    content_type = response.headers.get("content-type", "no content type").split(";")[0].strip()
    return f"a body that is not JSON ({content_type}, {len(response.content)} bytes)"


def _describe_transport_error(exc: httpx.RequestError) -> str:
    if isinstance(exc, httpx.TimeoutException):
        return f"timed out ({type(exc).__name__})"
    if isinstance(exc, httpx.ConnectError):
        return f"could not connect ({exc or 'no detail'})"
    return f"{type(exc).__name__}: {exc or 'no detail'}"


def _parse_retry_after(value: str | None, now: datetime) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or HTTP-date), else None.

    CertCentral is not documented to send it (§5.3), but honour it if it ever does.
    https://dev.digicert.com/en/certcentral-apis/services-api/rate-limits.html
    """
    if value is None or not value.strip():
        return None
    text = value.strip()
    try:
        seconds = float(text)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(text)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:
            return None
        seconds = (when - now).total_seconds()
    if math.isnan(seconds) or math.isinf(seconds):
        return None
    return min(max(seconds, 0.0), RETRY_AFTER_CAP)


def _rate_list(rate_limits: Iterable[tuple[int, float]]) -> list[Rate]:
    rates: list[Rate] = []
    for count, seconds in rate_limits:
        if not _is_int(count) or count < 1 or not seconds > 0:
            raise ConfigurationError(
                f"Invalid rate limit ({count!r} requests per {seconds!r} s): "
                "use a positive whole number of requests per a positive number of seconds."
            )
        padded = seconds + min(RATE_LIMIT_MARGIN, 0.2 * seconds)
        rates.append(Rate(int(count), max(1, round(padded * 1000))))
    return rates


def _make_limiter(rates: list[Rate], *, buffer_ms: int = 50) -> Limiter:
    try:
        bucket = InMemoryBucket(rates)
    except ValueError as exc:
        raise ConfigurationError(
            f"Invalid rate limits {[str(rate) for rate in rates]}: list them from the shortest "
            "window to the longest, each allowing more requests but no higher a rate.",
        ) from exc
    # No background leak thread: the in-memory log is tiny for our request counts, and a
    # daemon thread per client would outlive short-lived clients in tests.
    return Limiter(SingleBucketFactory(bucket, schedule_leak=False), buffer_ms=buffer_ms)


def _acquire(limiter: Limiter) -> None:
    """Block until the limiter admits one request; shared by every thread of a client."""
    admitted = limiter.try_acquire("certcentral", blocking=True)
    if admitted is not True:  # False only when weight can never fit; an awaitable never (sync bucket)
        raise RuntimeError("the client-side rate limiter refused a request it can never admit")


def _run_concurrently(
    func: Callable[[_T], _R], items: list[_T], *, workers: int, on_result: Callable[[_R], None]
) -> None:
    """Run ``func`` over ``items`` on a bounded pool; the first failure cancels the rest."""
    if not items:
        return
    pool = ThreadPoolExecutor(max_workers=max(1, min(workers, len(items))), thread_name_prefix="certcentral")
    futures: list[Future[_R]] = [pool.submit(func, item) for item in items]
    try:
        for future in as_completed(futures):
            on_result(future.result())
    except BaseException:
        pool.shutdown(wait=True, cancel_futures=True)
        raise
    pool.shutdown(wait=True)


class CertCentralClient:
    """Read-only client for the CertCentral Services API v2 users endpoints.

    Thread-safe: pages are fetched on a bounded worker pool that shares one httpx connection pool
    and one client-side rate limiter, so a normal run never meets a 429.

    ``sleep`` and ``clock`` are injected (back-off waits, raw-page and pull timestamps).
    ``retry_attempts`` counts every try, the first included. ``rate_limits`` are the server's
    rolling windows as (requests, seconds); each window is padded a little (RATE_LIMIT_MARGIN)
    and ``()`` turns client-side pacing off. The limiter belongs to this client: two clients on
    one key in one process do not share it.
    """

    def __init__(
        self,
        base_url: str,
        api_key: str,
        *,
        transport: httpx.BaseTransport | None = None,
        timeout: float = 30.0,
        page_size: int = DEFAULT_PAGE_SIZE,
        max_concurrency: int = DEFAULT_MAX_CONCURRENCY,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], datetime] = utc_now,
        retry_attempts: int = 6,
        retry_wait_initial: float = 1.0,
        retry_wait_max: float = 60.0,
        rate_limits: tuple[tuple[int, float], ...] = DEFAULT_RATE_LIMITS,
        user_agent: str | None = None,
        deadline: float = DEFAULT_DEADLINE,
        response_deadline: float = DEFAULT_RESPONSE_DEADLINE,
        max_users: int = DEFAULT_MAX_USERS,
        max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
        max_rate_limit_wait: float = DEFAULT_MAX_RATE_LIMIT_WAIT,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        key = api_key.strip() if isinstance(api_key, str) else ""
        if not key or not key.isascii() or not key.isprintable() or any(c.isspace() for c in key):
            raise ConfigurationError(
                "The API key is empty or contains spaces or characters that cannot be sent in an HTTP header.",
                hint=_AUTH_HINT,
            )
        if not _is_int(page_size) or not 1 <= page_size <= MAX_PAGE_SIZE:
            raise ConfigurationError(f"page_size must be between 1 and {MAX_PAGE_SIZE}, not {page_size!r}.")
        if not _is_int(max_concurrency) or max_concurrency < 1:
            raise ConfigurationError(f"max_concurrency must be at least 1, not {max_concurrency!r}.")
        if not _is_int(retry_attempts) or retry_attempts < 1:
            raise ConfigurationError(f"retry_attempts must be at least 1, not {retry_attempts!r}.")
        if not timeout > 0 or retry_wait_initial < 0 or retry_wait_max < retry_wait_initial:
            raise ConfigurationError("timeout must be positive and 0 <= retry_wait_initial <= retry_wait_max.")
        if not deadline > 0 or not response_deadline > 0 or not max_rate_limit_wait >= 0:
            raise ConfigurationError("deadline and response_deadline must be positive, max_rate_limit_wait >= 0.")
        if not _is_int(max_users) or max_users < 1 or not _is_int(max_body_bytes) or max_body_bytes < 1:
            raise ConfigurationError(f"max_users and max_body_bytes must be at least 1, not {max_users!r}.")
        self._key = key
        self._base_url = resolve_base_url(None, base_url)
        self._page_size = page_size
        self._max_concurrency = max_concurrency
        self._sleep = sleep
        self._clock = clock
        self._retry_attempts = retry_attempts
        self._retry_wait_initial = retry_wait_initial
        self._retry_wait_max = retry_wait_max
        self._deadline = float(deadline)
        self._response_deadline = float(response_deadline)
        self._max_users = max_users
        self._max_body_bytes = max_body_bytes
        self._max_rate_limit_wait = float(max_rate_limit_wait)
        self._monotonic = monotonic
        self._answer_deadline = threading.local()  # per worker thread: the answer it is reading
        self._key_forms = _key_forms(key)
        self._proxy: str | None = None
        if transport is None:
            proxy = _environment_proxy(self._base_url)
            self._proxy = _describe_proxy(proxy) if proxy else None
            # Our own retries replace httpx's connection retries, so failures are counted once.
            real = httpx.HTTPTransport(retries=0, verify=_tls_context(), proxy=proxy)
            # httpx has no option for the network backend; its pool keeps one (httpcore API) that
            # we wrap so that headers trickling in are cut off at the deadline too. Tested end to
            # end (test_hardening_pull_bounds.py), so an httpx that moves it fails loudly there.
            pool = getattr(real, "_pool", None)
            backend = getattr(pool, "_network_backend", None)
            if isinstance(backend, httpcore.NetworkBackend):
                pool._network_backend = _DeadlineBackend(backend, self._answer_time_left)  # type: ignore[union-attr]
            inner: httpx.BaseTransport = real
        else:
            inner = transport
        self._limiter = _make_limiter(_rate_list(rate_limits)) if rate_limits else None
        self._http = httpx.Client(
            base_url=self._base_url,
            transport=ReadOnlyTransport(inner),
            timeout=httpx.Timeout(timeout),
            # A redirect means a wrong base URL; following it could carry the key to another host.
            follow_redirects=False,
            headers={
                # The key header is case-insensitive in practice (§1.2, R-J1 recording);
                # https://dev.digicert.com/en/certcentral-apis/authentication.html
                "X-DC-DEVKEY": key,
                # Accept: text/csv would turn the list into CSV (§1.3);
                # https://dev.digicert.com/services-api/users/list-users/
                "Accept": "application/json",
                # Only encodings _Inflater decodes within the byte cap (httpx would add br/zstd).
                "Accept-Encoding": "gzip, deflate",
                "User-Agent": user_agent or f"certcentral-auditor/{__version__}",
            },
        )

    # -- lifecycle ---------------------------------------------------------------------------

    def __enter__(self) -> CertCentralClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        """Close connections and the rate limiter; the client cannot be used afterwards."""
        self._http.close()
        if self._limiter is not None:
            self._limiter.close()

    def __repr__(self) -> str:
        return f"CertCentralClient(base_url={self._base_url!r}, api_key={_REDACTED!r})"

    __str__ = __repr__

    @property
    def base_url(self) -> str:
        return self._base_url

    @property
    def proxy(self) -> str | None:
        """The environment's proxy for the base URL, without credentials; None when direct."""
        return self._proxy

    def _answer_time_left(self) -> float | None:
        deadline: float | None = getattr(self._answer_deadline, "at", None)
        return None if deadline is None else deadline - self._monotonic()

    def _new_run(self, observer: PullObserver | None = None) -> _Run:
        return _Run(observer, deadline_at=self._monotonic() + self._deadline)

    # -- public operations -------------------------------------------------------------------

    def get_me(self) -> User:
        """The user the API key is linked to (``GET /user/me``, §3)."""
        return self._get_me(self._new_run())

    def test_connection(self) -> ConnectionReport:
        """Prove the key works and can read users, and say whether it sees the whole account.

        Calls ``GET /user/me`` (DigiCert's own advice for checking what a key may do, §3,
        https://dev.digicert.com/errors/) and then ``GET /user?limit=1&offset=0``.
        """
        run = self._new_run()
        me = self._get_me(run)
        page = self._fetch_page(run, "/user", 0, limit=1, group=_GROUP_USERS)
        assert isinstance(page, _Page)  # noqa: S101 - a refusal is returned only when tolerated
        warnings: list[str] = []
        who = me.email or me.username or f"user {me.id}"
        if not me.is_admin:
            warnings.append(
                f"The key's user {who} is not an Administrator (roles: {me.role_names or 'none'}); "
                "CertCentral may show it only some users, so the audit would be partial. Use a View "
                "Only key linked to an unrestricted Administrator."
            )
        if me.restricted:
            divisions = ", ".join(d.name or str(d.id) for d in me.assigned_divisions) or "unknown"
            warnings.append(
                f"The key's user {who} is restricted to some divisions ({divisions}); it sees only "
                "their users, so the audit would be partial. Use a key linked to an unrestricted "
                "Administrator."
            )
        if page.total == 0:
            warnings.append("GET /user reported no users at all for this key.")
        account_id = me.account_id
        if account_id is None and page.users:
            account_id = User.from_api(page.users[0]).account_id
        return ConnectionReport(
            me=me,
            account_id=account_id,
            sees_whole_account=me.is_admin and not me.restricted,
            warnings=tuple(warnings),
            visible_users=page.total,
        )

    def pull_users(
        self,
        *,
        details: bool = False,
        known_details: Mapping[int, tuple[str, bool]] | None = None,
        details_per_second: float = 5.0,
        observer: PullObserver | None = None,
        credentials: bool = False,
    ) -> PullResult:
        """Read every user the key can see, with the raw pages as evidence.

        ``credentials`` also reads the credential inventory (``GET /key``, the top container's
        IP rules, guest access: §11.1-11.3; ``auditor pull`` always does); a documented refusal
        of one makes that part not evaluable (``not_evaluable``), any other failure fails the pull.

        ``details`` adds ``GET /user/{id}`` per user for ``is_saml_sso_only`` (only served there,
        §2.2), paced at ``details_per_second``; ``known_details`` (id -> (record digest, value))
        from an earlier pull is reused for users whose list record did not change.
        """
        if details and not details_per_second > 0:
            raise ConfigurationError(f"details_per_second must be positive, not {details_per_second!r}.")
        started_at = self._clock()
        run = self._new_run(observer)
        notes: list[str] = []

        # /user/me and the service-user list do not depend on /user: fetch them alongside it,
        # so a pull costs one round trip of latency fewer on each.
        service_notes: list[str] = []
        with ThreadPoolExecutor(max_workers=2, thread_name_prefix="certcentral-side") as side:
            me_future = side.submit(self._get_me, run)
            service_future = side.submit(self._list_service_users, run, service_notes)
            listing = self._list(run, "/user", group=_GROUP_USERS, report_total=True)
            me: User | None = None
            try:
                me = me_future.result()
            except PermissionDeniedError:
                # A key may be allowed to list users yet not read its own user (§6.2 is UNCERTAIN);
                # /user decides whether the pull can go on.
                notes.append("GET /user/me was refused (missing permission): whose key this is is unknown.")
            service = service_future.result()
        assert isinstance(listing, _Listing)  # noqa: S101 - /user is never tolerated as refused
        notes.extend(listing.notes)
        notes.extend(service_notes)
        records: dict[int, Mapping[str, Any]] = dict(listing.records)
        service_ids: set[int] = set()
        expected, received, complete = listing.expected, len(listing.records), listing.complete

        not_evaluable: list[str] = []
        if service is not None:
            notes.extend(service.notes)
            expected += service.expected
            received += len(service.records)
            complete = complete and service.complete
            for user_id, record in service.records.items():
                service_ids.add(user_id)
                records.setdefault(user_id, record)
        else:
            # Unknown is not zero: the users /user lists are kept, but this pull cannot say the
            # account has no (other) service users, so it is never complete.
            not_evaluable.append("service_users")
            complete = False

        users, digests = _users_from_records(records, service_ids)

        if details:
            saml = self._pull_details(run, sorted(users), digests, known_details or {}, details_per_second, notes)
            users = {uid: replace(user, is_saml_sso_only=saml.get(uid)) for uid, user in users.items()}

        if credentials:
            not_evaluable.extend(self._read_credentials(run, me, users.values(), notes))

        account_id = me.account_id if me is not None else None
        if account_id is None:
            account_id = next((u.account_id for u in users.values() if u.account_id is not None), None)
        raw_pages = run.raw_pages()
        listings = (listing,) if service is None else (listing, service)
        return PullResult(
            users=tuple(users[uid] for uid in sorted(users)),
            raw_pages=raw_pages,
            endpoints=tuple(_reconcile(item, raw_pages) for item in listings),
            requests=run.requests,
            retries=run.retries,
            pages=run.list_pages,
            expected_total=expected,
            received=received,
            complete=complete,
            notes=tuple(notes),
            started_at=started_at,
            finished_at=self._clock(),
            me=me,
            account_id=account_id,
            details_fetched=details,
            record_digests=types.MappingProxyType(dict(sorted(digests.items()))),
            not_evaluable=tuple(not_evaluable),
            proxy=self._proxy,
        )

    # -- credential inventory (§11) -----------------------------------------------------------

    def _read_credentials(self, run: _Run, me: User | None, users: Iterable[User], notes: list[str]) -> list[str]:
        """Read ``GET /key``, the IP rules and guest access; return the parts not evaluable.

        Every answer passes through ``_get`` (echoed-key scan, byte caps, deadline, retries) and
        is kept as a raw page, refusals too, so the inventory is re-derivable from evidence.
        """
        missing: list[str] = []
        if not self._read_keys(run, notes):
            missing.append("api_keys")
        top = _top_container(me, users)
        if top is None:
            missing.append("ip_rules")
            notes.append(
                "IP rules were NOT read: no top-level division (parent_id 0) appears in GET /user/me or "
                "the users, so the container to ask is unknown. Use a key linked to an unrestricted "
                "Administrator."
            )
        elif not self._read_part(
            run, ip_rules_path(top), group=_GROUP_IP, part="IP rules", valid=_has_list("ip_rules"), notes=notes
        ):
            missing.append("ip_rules")
        if not self._read_part(
            run, GUEST_ACCESS_PATH, group=_GROUP_GUEST, part="Guest access", valid=_has_bool("enabled"), notes=notes
        ):
            missing.append("guest_access")
        return missing

    def _read_part(
        self,
        run: _Run,
        endpoint: str,
        *,
        group: int,
        part: str,
        valid: Callable[[Mapping[str, Any]], str | None],
        notes: list[str],
        offset: int = 0,
    ) -> bool:
        """One credential answer: True when read, False for a documented refusal (with a note)."""
        response = self._get(run, endpoint, tolerate=_CREDENTIAL_REFUSALS)
        run.keep((group, 0, offset), self._raw(endpoint, response))
        if response.status_code in _CREDENTIAL_REFUSALS:
            code = next((c for c, _ in _parse_errors(response.content) if c), "")
            refusal = _Refusal(path=endpoint, status=response.status_code, code=code, response=response)
            # /key has no documented 404 (§11.1): only the missing-permission 403 means "not for this key".
            documented = refusal.documented and not (endpoint.startswith(KEY_LIST_PATH) and refusal.status == 404)
            if not documented:
                raise self._error_for(endpoint, response)
            notes.append(
                f"{part} NOT read (GET {endpoint.split('?', 1)[0]} answered {refusal.status} {code}: "
                'CertCentral\'s answer for "not available to this key"): not evaluable, unknown rather '
                "than none. Use a key whose user may read it (see README: what the key needs)."
            )
            return False
        problem = valid(self._json_object(endpoint, response))
        if problem is not None:
            raise ApiBadResponseError(f"CertCentral answered GET {endpoint} {problem}.")
        return True

    def _read_keys(self, run: _Run, notes: list[str]) -> bool:
        """``GET /key``, paged only when the answer carries a ``page`` object (§11.1 UNCERTAIN)."""
        if not self._read_part(
            run, KEY_LIST_PATH, group=_GROUP_KEYS, part="API keys", valid=_valid_key_list, notes=notes
        ):
            return False
        first = json.loads(run.raw_pages_of(_GROUP_KEYS)[0].body)
        page = first.get("page")
        announced = page.get("total") if isinstance(page, Mapping) else None
        seen = {item["id"] for item in first["api_keys"]}
        if not isinstance(announced, int) or isinstance(announced, bool) or announced <= len(first["api_keys"]):
            return True
        total: int = announced
        if total > self._max_users:
            raise ApiBadResponseError(
                f"CertCentral answered GET {KEY_LIST_PATH} with page.total {total:,}, more than the "
                f"{self._max_users:,} records this tool accepts; the pull was refused.",
                hint=f"If the account really has that many keys, raise the limit: `auditor --max-users {total} pull`.",
            )
        echoed = page.get("limit") if isinstance(page, Mapping) else None
        step: int = (
            echoed
            if isinstance(echoed, int) and not isinstance(echoed, bool) and echoed > 0
            else len(first["api_keys"]) or self._page_size
        )
        offset = step
        for _ in range(math.ceil(total / step) + FOLLOW_UP_PAGES):
            if offset >= total and len(seen) >= total:
                break
            endpoint = f"{KEY_LIST_PATH}?limit={step}&offset={offset}"
            response = self._get(run, endpoint)
            run.keep((_GROUP_KEYS, 0, offset), self._raw(endpoint, response))
            data = self._json_object(endpoint, response)
            problem = _valid_key_list(data)
            if problem is not None:
                raise ApiBadResponseError(f"CertCentral answered GET {endpoint} {problem}.")
            if not data["api_keys"]:
                break
            seen.update(item["id"] for item in data["api_keys"])
            offset += step
        if len(seen) != total:
            # All or nothing: a key list that does not add up cannot say which keys exist.
            raise ApiBadResponseError(
                f"GET {KEY_LIST_PATH} did not add up: page.total {total}, {len(seen)} distinct keys received. "
                "Keys were probably added or removed while paging; pull again.",
                hint="Run `auditor pull` again.",
            )
        return True

    # -- pull steps --------------------------------------------------------------------------

    def _get_me(self, run: _Run) -> User:
        response = self._get(run, _KEY_CHECK_ENDPOINT)
        run.keep((_GROUP_ME, 0, 0), self._raw(_KEY_CHECK_ENDPOINT, response))
        data = self._json_object(_KEY_CHECK_ENDPOINT, response)
        try:
            return User.from_api(data)
        except ValueError as exc:
            raise ApiBadResponseError(
                f"CertCentral answered GET {_KEY_CHECK_ENDPOINT} without a numeric user id."
            ) from exc

    def _list_service_users(self, run: _Run, notes: list[str]) -> _Listing | None:
        """Service (API-only) users come from a separate list (§4.3).

        The docs show ``/user/api-only`` in two crawls and ``/service-user`` in a third, so try
        both: https://dev.digicert.com/en/certcentral-apis/services-api/users/list-service-users.html

        Which answers mean "not available to this key or account" is itself UNCERTAIN, so only the
        documented ones count: 403 ``access_denied|missing_permission`` and 404 ``not_found…``
        (§5.2). When every path answers one of those, service users are *not evaluable* (None,
        with a note); any other refusal (a proxy's HTML page, an unknown 403) fails the pull.
        """
        refusals: list[_Refusal] = []
        for index, path in enumerate(_LIST_PATHS[1:]):
            got = self._list(run, path, group=_GROUP_SERVICE, subgroup=index, tolerate=_TOLERATED)
            if isinstance(got, _Listing):
                return got
            refusals.append(got)
        for refusal in refusals:
            if not refusal.documented:
                endpoint = f"{refusal.path}?limit={self._page_size}&offset=0"
                raise self._error_for(endpoint, refusal.response)
        answers = " and ".join(f"GET {r.path} answered {r.status} {r.code}" for r in refusals)
        notes.append(
            f"Service users were NOT read ({answers}: CertCentral's answers for \"not available to this "
            'key"). Service users are unknown, not absent, so this snapshot is incomplete and never a '
            "diff baseline. Use a View Only key linked to an unrestricted Administrator."
        )
        return None

    def _list(
        self,
        run: _Run,
        path: str,
        *,
        group: int,
        subgroup: int = 0,
        tolerate: frozenset[int] = frozenset(),
        report_total: bool = False,
    ) -> _Listing | _Refusal:
        """All pages of one list endpoint, following §2.5 and fetching pages 2..n concurrently.

        R-J1 stops only at ``offset == page.total``, which loops forever if the total shrinks;
        we also stop on an empty page and compare with ``>=`` (§2.5,
        https://dev.digicert.com/services-api/users/list-users/). Offsets can shift when users
        are added or removed mid-pull (ordering without ``sort`` is not promised), hence
        de-duplication by id and the completeness check.
        """
        first = self._fetch_page(run, path, 0, group=group, subgroup=subgroup, tolerate=tolerate)
        if isinstance(first, _Refusal):
            return first
        if first.total > self._max_users:
            raise ApiBadResponseError(
                f"CertCentral answered GET {path} with page.total {first.total:,}, more users than the "
                f"{self._max_users:,} this tool accepts; the pull was refused before paging.",
                hint="A proxy may be rewriting answers; if the account really is that large, raise the "
                f"limit with `auditor --max-users {first.total} pull`.",
            )
        # The maximum limit for /user is undocumented (§2.1): if the server serves fewer users
        # than asked for, step by the limit it echoes (§2.2), or whole slices would be skipped.
        # Only without an echo, step by what the first page held.
        step = self._page_size
        if first.limit is not None:
            step = min(step, first.limit)
        elif 0 < len(first.users) < min(self._page_size, first.total):
            step = len(first.users)
        offsets = list(range(step, first.total, step)) if first.users else []
        if report_total:
            run.total(first.total, 1 + len(offsets))

        pages: dict[int, _Page] = {0: first}
        ran_dry = not first.users

        def fetch(offset: int) -> _Page:
            page = self._fetch_page(run, path, offset, group=group, subgroup=subgroup)
            assert isinstance(page, _Page)  # noqa: S101 - refusals are tolerated on the first page only
            return page

        def collect(page: _Page) -> None:
            nonlocal ran_dry
            pages[page.offset] = page
            ran_dry = ran_dry or not page.users

        # At most ceil(total / step) pages, a window of them at a time; the first empty page ends
        # paging (§2.5), so a page.total that lies costs one window, not total / step requests.
        window = self._max_concurrency
        for start in range(0, len(offsets), window):
            if ran_dry:
                break
            _run_concurrently(fetch, offsets[start : start + window], workers=window, on_result=collect)

        records = self._merge(pages)
        last = pages[max(pages)]
        total_moved = any(page.total != first.total for page in pages.values())
        if not ran_dry and last.users and (len(records) != first.total or total_moved):
            # Users arrived late or shifted past the last page: look a little further, sequentially,
            # until an empty page (the §2.5 stop rule).
            offset = last.offset + step
            for _ in range(FOLLOW_UP_PAGES):
                page = fetch(offset)
                pages[offset] = page
                if not page.users:
                    break
                offset += step
            records = self._merge(pages)

        totals = sorted({page.total for page in pages.values()})
        notes: list[str] = []
        complete = len(totals) == 1 and len(records) == first.total
        if not complete:
            changed = f" (page.total changed during the pull: {', '.join(map(str, totals))})" if len(totals) > 1 else ""
            notes.append(
                f"GET {path} is incomplete: expected {first.total} users, received {len(records)}"
                f"{changed}. Users were probably added or removed while paging; pull again."
            )
        return _Listing(path=path, records=records, expected=first.total, complete=complete, notes=notes)

    @staticmethod
    def _merge(pages: Mapping[int, _Page]) -> dict[int, Mapping[str, Any]]:
        records: dict[int, Mapping[str, Any]] = {}
        for offset in sorted(pages):
            for record in pages[offset].users:
                user_id = record["id"]
                records.setdefault(user_id, record)
        return records

    def _fetch_page(
        self,
        run: _Run,
        path: str,
        offset: int,
        *,
        group: int,
        subgroup: int = 0,
        limit: int | None = None,
        tolerate: frozenset[int] = frozenset(),
    ) -> _Page | _Refusal:
        """One list page. ``limit`` and ``offset`` are always sent: the default limit is
        undocumented and the examples disagree (§2.1, https://dev.digicert.com/services-api/users/list-users/).
        """
        endpoint = f"{path}?limit={limit or self._page_size}&offset={offset}"
        response = self._get(run, endpoint, tolerate=tolerate)
        run.keep((group, subgroup, offset), self._raw(endpoint, response), list_page=True)
        if response.status_code in tolerate:
            codes = _parse_errors(response.content)
            code = next((c for c, _ in codes if c), "")
            return _Refusal(path=path, status=response.status_code, code=code, response=response)
        data = self._json_object(endpoint, response)
        users = data.get("users")
        if not isinstance(users, list):
            raise ApiBadResponseError(f"CertCentral answered GET {endpoint} without a 'users' list.")
        page = data.get("page")
        total = page.get("total") if isinstance(page, Mapping) else None
        if not isinstance(total, int) or isinstance(total, bool) or total < 0:
            raise ApiBadResponseError(f"CertCentral answered GET {endpoint} without a whole-number page.total.")
        for index, record in enumerate(users):
            if not isinstance(record, Mapping) or not _is_int(record.get("id")):
                raise ApiBadResponseError(
                    f"CertCentral answered GET {endpoint} with user #{index} that has no numeric id."
                )
        run.page(endpoint, len(users))
        echoed = page.get("limit") if isinstance(page, Mapping) else None
        usable = (
            echoed
            if isinstance(echoed, int) and not isinstance(echoed, bool) and 0 < echoed <= (limit or self._page_size)
            else None
        )
        return _Page(offset=offset, users=tuple(users), total=total, limit=usable)

    def _pull_details(
        self,
        run: _Run,
        user_ids: list[int],
        digests: Mapping[int, str],
        known: Mapping[int, tuple[str, bool]],
        per_second: float,
        notes: list[str],
    ) -> dict[int, bool | None]:
        """``is_saml_sso_only`` per user: reused when the list record is unchanged, else fetched.

        The field is served only by User info (§2.2, §3):
        https://dev.digicert.com/services-api/users/user-info/
        """
        result: dict[int, bool | None] = {}
        todo: list[int] = []
        for user_id in user_ids:
            cached = known.get(user_id)
            if cached is not None and cached[0] == digests[user_id]:
                result[user_id] = cached[1]
            else:
                todo.append(user_id)
        if not todo:
            return result
        # Smooth pacing (one request per interval) under the account-wide limiter as well.
        pace = _make_limiter([Rate(1, max(1, round(1000 / per_second)))], buffer_ms=5)
        done = 0
        gone: list[int] = []

        def fetch(user_id: int) -> tuple[int, bool | None]:
            _acquire(pace)
            endpoint = f"/user/{user_id}"
            # An unknown id's answer is undocumented (§5.2); a user deleted since the list was
            # read is the likely cause, so keep going and say so.
            response = self._get(run, endpoint, tolerate=_NOT_FOUND)
            run.keep((_GROUP_DETAIL, 0, user_id), self._raw(endpoint, response))
            if response.status_code == 404:
                # Only CertCentral's own not_found says "this user is gone"; a proxy's 404 page
                # says nothing about the user, and must not turn into "unknown" silently.
                if not any(code.lower().startswith("not_found") for code, _ in _parse_errors(response.content)):
                    raise self._error_for(endpoint, response)
                return user_id, None
            value = self._json_object(endpoint, response).get("is_saml_sso_only")
            return user_id, value if isinstance(value, bool) else None

        def collect(item: tuple[int, bool | None]) -> None:
            nonlocal done
            user_id, value = item
            result[user_id] = value
            if value is None:
                gone.append(user_id)
            done += 1
            run.detail(done, len(todo))

        try:
            _run_concurrently(fetch, todo, workers=self._max_concurrency, on_result=collect)
        finally:
            pace.close()
        if gone:
            notes.append(
                f"is_saml_sso_only is unknown for {len(gone)} user(s) whose GET /user/{{id}} answered "
                f"404 or omitted it (ids: {', '.join(map(str, sorted(gone)[:20]))}"
                f"{', ...' if len(gone) > 20 else ''})."
            )
        return result

    # -- HTTP --------------------------------------------------------------------------------

    def _raw(self, endpoint: str, response: httpx.Response) -> RawPage:
        body = response.content
        return RawPage(
            endpoint=endpoint,
            status=response.status_code,
            body=body,
            sha256=hashlib.sha256(body).hexdigest(),
            received_at=self._clock(),
        )

    def _get(self, run: _Run, endpoint: str, *, tolerate: frozenset[int] = frozenset()) -> httpx.Response:
        """GET ``endpoint`` with pacing and retries; returns a 2xx response (or one in ``tolerate``).

        stamina drives the attempts (and its global switches: ``stamina.set_active``,
        instrumentation hooks), but the wait itself is ours: the backoff hook computes it
        (Retry-After or exponential with jitter) and returns 0 to stamina, and the injected
        ``sleep`` waits before the next attempt. So tests never sleep and can see every wait.
        A wait that would end past the pull's deadline, or push the pull's total 429 back-off past
        ``max_rate_limit_wait``, is not taken: the pull fails at once instead.
        """
        attempt_num = 0
        pending_wait = 0.0
        stop: ApiError | None = None

        def backoff(exc: Exception) -> bool | float:
            nonlocal pending_wait, stop
            if not isinstance(exc, _Retryable) or attempt_num >= self._retry_attempts:
                return False
            wait = self._wait_for(exc, attempt_num)
            if self._monotonic() + wait > run.deadline_at:
                stop = self._past_deadline(endpoint, f"the next retry ({exc.reason}) would start after it")
                return False
            if exc.rate_limited and not run.add_rate_limit_wait(wait, self._max_rate_limit_wait):
                stop = ApiUnavailableError(
                    f"CertCentral kept rate limiting GET {endpoint} (HTTP 429): this pull already waited "
                    f"{run.rate_limit_wait:.0f} s on rate limits, and waits are capped at "
                    f"{self._max_rate_limit_wait:.0f} s per pull.",
                    hint="Another tool may be using the same API key; wait a few minutes and try again.",
                )
                return False
            pending_wait = wait
            logger.info("GET %s failed (%s); retrying in %.1f s", endpoint, exc.reason, pending_wait)
            run.retry(endpoint, exc.reason, pending_wait)
            return 0.0

        response: httpx.Response | None = None
        try:
            for attempt in stamina.retry_context(
                on=backoff, attempts=self._retry_attempts, timeout=None, wait_jitter=0.0
            ):
                with attempt:
                    attempt_num = attempt.num
                    if pending_wait > 0:
                        self._sleep(pending_wait)
                        pending_wait = 0.0
                    response = self._attempt(run, endpoint, tolerate=tolerate)
        except _Retryable as exc:
            if stop is not None:
                raise stop from None
            raise self._give_up(endpoint, exc, attempt_num) from self._safe_cause(exc.__cause__)
        assert response is not None  # noqa: S101 - the loop either returned a response or raised
        return response

    def _attempt(self, run: _Run, endpoint: str, *, tolerate: frozenset[int]) -> httpx.Response:
        if self._limiter is not None:
            _acquire(self._limiter)
        if self._monotonic() >= run.deadline_at:
            raise self._past_deadline(endpoint, "before it was sent")
        run.count_request()
        try:
            response = self._send(run, endpoint)
        except (httpx.TimeoutException, httpx.NetworkError, httpx.RemoteProtocolError, httpx.ProxyError) as exc:
            if isinstance(exc, httpx.TimeoutException) and self._monotonic() >= run.deadline_at:
                raise self._past_deadline(endpoint, "while the answer was still arriving") from None
            raise _Retryable(self._redact(_describe_transport_error(exc))) from exc
        except httpx.RequestError as exc:
            raise ApiConnectionError(
                self._redact(f"Could not send GET {endpoint} to CertCentral: {_describe_transport_error(exc)}."),
                hint=f"Check the base URL ({self._base_url}), proxy settings and network.",
            ) from self._safe_cause(exc)
        status = response.status_code
        if status == 429 or status >= 500:
            # 429 request_limit_exceeded and 5xx/maintenance are transient (§5.2, §5.3):
            # https://dev.digicert.com/errors/ ; the 503 maintenance notice:
            # https://docs.digicert.com/change-log/?tag=simple%20certificate%20enrollment%20profile.
            codes = _parse_errors(response.content)
            code = f" {codes[0][0]}" if codes and codes[0][0] else ""
            reason = "rate limited" if status == 429 else "server error"
            raise _Retryable(
                self._redact(f"HTTP {status}{code} ({reason})"),
                status=status,
                retry_after=_parse_retry_after(response.headers.get("retry-after"), self._clock()),
                rate_limited=status == 429,
            )
        if 200 <= status < 300 or status in tolerate:
            return response
        raise self._error_for(endpoint, response)

    def _send(self, run: _Run, endpoint: str) -> httpx.Response:
        """One GET, its body read against the byte cap and the deadlines, then scanned for the key.

        The body is streamed (``iter_raw``) and decoded here, so neither a huge nor a bomb-like body
        is ever held whole, and a server that trickles bytes is cut off at the answer's deadline
        (the idle ``timeout`` only bounds the gap between two bytes). The answer handed back is
        already decoded and fully in memory, and carries no trace of the key.
        """
        request = self._http.build_request("GET", endpoint)
        deadline = min(self._monotonic() + self._response_deadline, run.deadline_at)
        self._answer_deadline.at = deadline
        try:
            response = self._http.send(request, stream=True)
            try:
                body = self._read_body(run, endpoint, response, deadline)
            finally:
                response.close()
        finally:
            self._answer_deadline.at = None
        header_text = b"\n".join(name + b": " + value for name, value in response.headers.raw)
        if _carries_key(self._key_forms, header_text, body):
            raise KeyEchoedError(
                f"{KEY_ECHOED_MESSAGE} (it was in the answer to GET {endpoint.split('?', 1)[0]}, "
                f"HTTP {response.status_code}).",
                hint="A proxy or error page that repeats request headers sits between the tool and CertCentral; "
                "check the base URL and proxy settings, and consider rotating the key.",
            )
        kept = [(k, v) for k, v in response.headers.raw if k.lower() not in _BODY_FRAMING]
        return httpx.Response(response.status_code, headers=kept, content=body, request=request)

    def _read_body(self, run: _Run, endpoint: str, response: httpx.Response, deadline: float) -> bytes:
        cap = self._max_body_bytes
        if response.is_stream_consumed:  # a transport that hands over a read response (tests' MockTransport)
            if len(response.content) > cap:
                raise self._too_big(endpoint, f"{len(response.content):,} bytes")
            return response.content
        declared = response.headers.get("content-length", "")
        if declared.isdigit() and "content-encoding" not in response.headers and int(declared) > cap:
            raise self._too_big(endpoint, f"announced {int(declared):,} bytes")
        inflater = _Inflater(response.headers.get("content-encoding", ""), endpoint)
        chunks: list[bytes] = []
        size = 0
        for chunk in response.iter_raw():
            decoded = inflater.feed(chunk, cap - size)
            size += len(decoded)
            if size > cap:
                raise self._too_big(endpoint, "counted decompressed")
            chunks.append(decoded)
            if self._monotonic() > deadline:
                if deadline >= run.deadline_at:
                    raise self._past_deadline(endpoint, f"while the answer was still arriving ({size:,} bytes)")
                raise _Retryable(
                    f"the answer took longer than {self._response_deadline:.0f} s to arrive ({size:,} bytes so far)"
                )
        return b"".join(chunks)

    def _too_big(self, endpoint: str, detail: str) -> ApiBadResponseError:
        return ApiBadResponseError(
            f"CertCentral's answer to GET {endpoint} is larger than the "
            f"{self._max_body_bytes / 1048576:.0f} MB limit for one answer ({detail}); it was not kept.",
            hint="A proxy or a compressed ('gzip bomb') body may be at fault; a real page of users is a few MB. "
            "Check the base URL and proxy settings, or pull with a smaller --page-size.",
        )

    def _past_deadline(self, endpoint: str, when: str) -> ApiUnavailableError:
        return ApiUnavailableError(
            f"The pull reached its deadline of {self._deadline:.0f} s during GET {endpoint} ({when}); it was stopped.",
            hint="CertCentral or a proxy is answering too slowly; try again later, or allow more time "
            "with `auditor --deadline SECONDS pull`.",
        )

    def _wait_for(self, exc: _Retryable, attempt: int) -> float:
        """Seconds before the next attempt after attempt number ``attempt`` (1-based) failed."""
        if exc.retry_after is not None:
            return exc.retry_after
        # No Retry-After (CertCentral is not known to send one, §5.3): for 429 start at the
        # 5 s short window; otherwise at retry_wait_initial. Exponential, capped, with jitter.
        initial = (
            max(self._retry_wait_initial, RATE_LIMIT_INITIAL_WAIT) if exc.rate_limited else self._retry_wait_initial
        )
        base = min(self._retry_wait_max, initial * 2 ** (attempt - 1))
        jitter: float = random.uniform(0, base / 4)  # noqa: S311 - spreading retries, not cryptography
        return float(min(self._retry_wait_max, base + jitter))

    def _give_up(self, endpoint: str, exc: _Retryable, attempts: int) -> ApiError:
        tries = f"{attempts} attempt{'s' if attempts != 1 else ''}"
        if exc.rate_limited:
            return ApiUnavailableError(
                f"CertCentral kept rate limiting GET {endpoint} (HTTP 429) after {tries}.",
                hint="Another tool may be using the same API key; wait a few minutes and try again.",
            )
        if exc.status is not None:
            return ApiUnavailableError(
                f"CertCentral failed GET {endpoint} with {exc.reason} after {tries}.",
                hint="CertCentral may be down or in maintenance; try again later.",
            )
        return ApiConnectionError(
            f"Could not reach CertCentral for GET {endpoint}: {exc.reason}, after {tries}.",
            hint=f"Check the network, proxy, DNS and the base URL ({self._base_url}).",
        )

    def _error_for(self, endpoint: str, response: httpx.Response) -> ApiError:
        """Translate a non-retryable answer into the typed error a person can act on (§5.2)."""
        status = response.status_code
        codes = _parse_errors(response.content)
        code = next((c for c, _ in codes if c), "")
        message = next((m for _, m in codes if m), "")
        said = f" ({code}: {message})" if code and message else f" ({code or message})" if code or message else ""
        said = self._redact(said[:300])
        path = endpoint.split("?", 1)[0]
        if status in (401, 403):
            # An invalid key is 403 access_denied|access_denied_invalid_key, not 401, and no 401
            # is documented; older clients map 401 to "no valid key" (§5.2):
            # https://dev.digicert.com/errors/
            lowered = code.lower()
            if status == 403 and "missing_permission" in lowered:
                return PermissionDeniedError(
                    f"CertCentral refused GET {endpoint}: the API key may not read users{said}.",
                    hint=_PERMISSION_HINT,
                )
            if (
                status == 401
                or "invalid_key" in lowered
                or lowered.startswith("access_denied")
                or path == _KEY_CHECK_ENDPOINT
            ):
                return AuthenticationError(
                    f"CertCentral rejected the API key (HTTP {status} on GET {endpoint}){said}.",
                    hint=_AUTH_HINT,
                )
            return PermissionDeniedError(
                f"CertCentral (or a proxy in front of it) refused GET {endpoint} with HTTP 403{said}.",
                hint=_PERMISSION_HINT,
            )
        if status == 404:
            # not_found|route means a wrong path (§5.2); a list endpoint never 404s otherwise.
            if "route" in code.lower() or path in _LIST_PATHS or path == _KEY_CHECK_ENDPOINT:
                return ApiBadResponseError(
                    f"CertCentral answered HTTP 404 for GET {endpoint}{said}: the base URL "
                    f"{self._base_url} is probably wrong.",
                    hint=_BASE_URL_HINT,
                )
            return ApiBadResponseError(f"CertCentral answered HTTP 404 for GET {endpoint}{said}.")
        if 300 <= status < 400:
            return ApiBadResponseError(
                f"CertCentral redirected GET {endpoint} (HTTP {status}); the base URL "
                f"{self._base_url} is probably wrong.",
                hint=_BASE_URL_HINT,
            )
        return ApiBadResponseError(f"CertCentral rejected GET {endpoint} with HTTP {status}{said}.")

    def _json_object(self, endpoint: str, response: httpx.Response) -> dict[str, Any]:
        try:
            data = json.loads(response.content)
        except (ValueError, RecursionError):
            raise ApiBadResponseError(
                f"CertCentral answered GET {endpoint} (HTTP {response.status_code}) with {_describe_body(response)}.",
                hint="A proxy or CDN may have answered instead of the API; check the base URL and try again.",
            ) from None  # the decode error holds the whole body: nothing to add, and bulky
        if not isinstance(data, dict):
            raise ApiBadResponseError(
                f"CertCentral answered GET {endpoint} with JSON that is not an object ({type(data).__name__})."
            )
        return data

    def _safe_cause(self, exc: BaseException | None) -> BaseException | None:
        """``exc`` to chain from, unless its text would show the key (httpx never puts headers
        in messages, but a proxy's error text might echo them)."""
        if exc is None or self._key in f"{exc!s}{exc!r}":
            return None
        return exc

    def _redact(self, text: str) -> str:
        return text.replace(self._key, _REDACTED) if self._key in text else text


# --------------------------------------------------------------------------------------------
# re-deriving a snapshot's users from its raw pages (export checks the store with it)


def _top_container(me: User | None, users: Iterable[User]) -> int | None:
    """The top-level container's id (§11.2): the key user's division when it is the root
    (``parent_id`` 0), else the first root division any listed user is in."""
    candidates = [me] if me is not None else []
    candidates.extend(sorted(users, key=lambda u: u.id))
    for user in candidates:
        division = user.division
        if division is not None and division.parent_id == 0:
            return division.id
    return None


def _has_list(name: str) -> Callable[[Mapping[str, Any]], str | None]:
    def check(data: Mapping[str, Any]) -> str | None:
        items = data.get(name)
        if not isinstance(items, list):
            return f"without an '{name}' list"
        for index, item in enumerate(items):
            if not isinstance(item, Mapping) or not _is_int(item.get("id")):
                return f"with {name} #{index} that has no numeric id"
        return None

    return check


def _has_bool(name: str) -> Callable[[Mapping[str, Any]], str | None]:
    def check(data: Mapping[str, Any]) -> str | None:
        return None if isinstance(data.get(name), bool) else f"without a true/false '{name}'"

    return check


_valid_key_list = _has_list("api_keys")


def credentials_from_raw_pages(pages: Sequence[RawPage]) -> CredentialInventory:
    """The credential inventory of a pull, parsed again from its raw pages (see models)."""
    return CredentialInventory.from_raw_pages(pages)


def _users_from_records(
    records: Mapping[int, Mapping[str, Any]], service_ids: set[int]
) -> tuple[dict[int, User], dict[int, str]]:
    """The users and record digests of merged list records: the one parser pull and export share."""
    users = {user_id: User.from_api(record, service_user=user_id in service_ids) for user_id, record in records.items()}
    return users, {user_id: record_digest(record) for user_id, record in records.items()}


@dataclass(frozen=True, slots=True)
class DerivedUsers:
    """Users parsed again from a snapshot's raw pages, as :meth:`CertCentralClient.pull_users` did."""

    users: Mapping[int, User]
    record_digests: Mapping[int, str]
    #: Users whose ``is_saml_sso_only`` came from a ``GET /user/{id}`` page of this snapshot (the
    #: others' value, if any, was reused from an earlier pull and cannot be re-derived here).
    detailed: frozenset[int]


def users_from_raw_pages(pages: Sequence[RawPage], *, details_fetched: bool) -> DerivedUsers:
    """Parse the users out of stored raw pages exactly as the pull that fetched them did.

    The list pages are merged in their stored order (by endpoint group, then offset), the first
    record of an id wins, service users come from whichever service-user list answered, and
    ``is_saml_sso_only`` from the user-info pages. Raises ApiBadResponseError for a page that
    the pull could not have accepted.
    """
    listing: dict[int, Mapping[str, Any]] = {}
    service: dict[int, Mapping[str, Any]] = {}
    saml: dict[int, bool | None] = {}
    for page in pages:
        path = urlsplit(page.endpoint).path
        if path in _LIST_PATHS:
            if page.status != 200:
                continue  # a service-user list that does not exist here (404)
            target = listing if path == _LIST_PATHS[0] else service
            for record in _page_records(page):
                target.setdefault(record["id"], record)
        elif path.startswith("/user/") and path[len("/user/") :].isdigit() and details_fetched:
            user_id = int(path[len("/user/") :])
            value = _page_object(page).get("is_saml_sso_only") if page.status == 200 else None
            saml[user_id] = value if isinstance(value, bool) else None
    records = dict(listing)
    for user_id, record in service.items():
        records.setdefault(user_id, record)
    users, digests = _users_from_records(records, set(service))
    if details_fetched:
        users = {uid: replace(user, is_saml_sso_only=saml.get(uid)) for uid, user in users.items()}
    return DerivedUsers(
        users=types.MappingProxyType(users),
        record_digests=types.MappingProxyType(digests),
        detailed=frozenset(saml),
    )


def _page_object(page: RawPage) -> dict[str, Any]:
    try:
        data = json.loads(page.body)
    except (ValueError, RecursionError):
        data = None
    if not isinstance(data, dict):
        raise ApiBadResponseError(f"The stored answer to GET {page.endpoint} is not a JSON object.")
    return data


def _page_records(page: RawPage) -> list[Mapping[str, Any]]:
    users = _page_object(page).get("users")
    if not isinstance(users, list) or not all(isinstance(r, Mapping) and _is_int(r.get("id")) for r in users):
        raise ApiBadResponseError(f"The stored answer to GET {page.endpoint} has no valid 'users' list.")
    return users
