"""The CertCentral client: read-only HTTP access to users, paced, retried and paginated.

This module owns everything httpx, stamina and pyrate-limiter do for the tool; none of their types
leave it. What comes out are ``auditor.models`` values and ``auditor.errors`` exceptions.

Guarantees:

- **Read-only by construction.** Every request passes through :class:`ReadOnlyTransport`, which
  raises :class:`WriteAttemptError` for any method but GET (and HEAD) before a byte is sent.
- **The API key never appears** in an exception message, a log line, or the client's repr.
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

import email.utils
import hashlib
import json
import logging
import math
import random
import threading
import time
import types
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any, Protocol, TypeVar
from urllib.parse import urlsplit

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
from auditor.models import RawPage, User, utc_now

__all__ = [
    "DEFAULT_PAGE_SIZE",
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


class ReadOnlyTransport(httpx.BaseTransport):
    """An httpx transport that refuses every method except GET and HEAD before anything is sent.

    The audit tool never needs to write; this makes "read-only" a property of the code path,
    not a promise (a View Only key, §4.2, would be the server-side half of the same guarantee).
    """

    ALLOWED_METHODS = frozenset({"GET", "HEAD"})

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


# --------------------------------------------------------------------------------------------
# internals


@dataclass(frozen=True, slots=True)
class _Page:
    offset: int
    users: tuple[Mapping[str, Any], ...]
    total: int


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

    def __init__(self, observer: PullObserver | None) -> None:
        self._lock = threading.Lock()
        self._observer = observer
        self.requests = 0
        self.retries = 0
        self.list_pages = 0
        self._pages: list[tuple[tuple[int, int, int], RawPage]] = []

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


# Sort keys of raw pages: /user/me, then /user by offset, then service users, then details by id.
_GROUP_ME, _GROUP_USERS, _GROUP_SERVICE, _GROUP_DETAIL = range(4)

_T = TypeVar("_T")
_R = TypeVar("_R")


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
        self._key = key
        self._base_url = resolve_base_url(None, base_url)
        self._page_size = page_size
        self._max_concurrency = max_concurrency
        self._sleep = sleep
        self._clock = clock
        self._retry_attempts = retry_attempts
        self._retry_wait_initial = retry_wait_initial
        self._retry_wait_max = retry_wait_max
        self._limiter = _make_limiter(_rate_list(rate_limits)) if rate_limits else None
        # Our own retries replace httpx's connection retries, so failures are counted once.
        inner = transport if transport is not None else httpx.HTTPTransport(retries=0)
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

    # -- public operations -------------------------------------------------------------------

    def get_me(self) -> User:
        """The user the API key is linked to (``GET /user/me``, §3)."""
        return self._get_me(_Run(None))

    def test_connection(self) -> ConnectionReport:
        """Prove the key works and can read users, and say whether it sees the whole account.

        Calls ``GET /user/me`` (DigiCert's own advice for checking what a key may do, §3,
        https://dev.digicert.com/errors/) and then ``GET /user?limit=1&offset=0``.
        """
        run = _Run(None)
        me = self._get_me(run)
        page = self._fetch_page(run, "/user", 0, limit=1, group=_GROUP_USERS)
        assert page is not None  # noqa: S101 - _fetch_page returns None only when asked to allow 404
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
    ) -> PullResult:
        """Read every user the key can see, with the raw pages as evidence.

        ``details`` adds ``GET /user/{id}`` per user for ``is_saml_sso_only`` (only served there,
        §2.2), paced at ``details_per_second``; ``known_details`` (id -> (record digest, value))
        from an earlier pull is reused for users whose list record did not change.
        """
        if details and not details_per_second > 0:
            raise ConfigurationError(f"details_per_second must be positive, not {details_per_second!r}.")
        started_at = self._clock()
        run = _Run(observer)
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
        assert listing is not None  # noqa: S101 - only the service-user list may be absent
        notes.extend(listing.notes)
        notes.extend(service_notes)
        records: dict[int, Mapping[str, Any]] = dict(listing.records)
        service_ids: set[int] = set()
        expected, received, complete = listing.expected, len(listing.records), listing.complete

        if service is not None:
            notes.extend(service.notes)
            expected += service.expected
            received += len(service.records)
            complete = complete and service.complete
            for user_id, record in service.records.items():
                service_ids.add(user_id)
                records.setdefault(user_id, record)

        users, digests = _users_from_records(records, service_ids)

        if details:
            saml = self._pull_details(run, sorted(users), digests, known_details or {}, details_per_second, notes)
            users = {uid: replace(user, is_saml_sso_only=saml.get(uid)) for uid, user in users.items()}

        account_id = me.account_id if me is not None else None
        if account_id is None:
            account_id = next((u.account_id for u in users.values() if u.account_id is not None), None)
        return PullResult(
            users=tuple(users[uid] for uid in sorted(users)),
            raw_pages=run.raw_pages(),
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
        )

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
        """
        for index, path in enumerate(_LIST_PATHS[1:]):
            try:
                listing = self._list(run, path, group=_GROUP_SERVICE, subgroup=index, allow_not_found=True)
            except PermissionDeniedError:
                notes.append(
                    f"Service users could not be listed: GET {path} was refused (missing permission); "
                    "service users that GET /user does not return are missing from this pull."
                )
                return None
            if listing is not None:
                return listing
        notes.append(
            "Service users could not be listed: neither /user/api-only nor /service-user exists at "
            "this base URL (HTTP 404); service users that GET /user does not return are missing."
        )
        return None

    def _list(
        self,
        run: _Run,
        path: str,
        *,
        group: int,
        subgroup: int = 0,
        allow_not_found: bool = False,
        report_total: bool = False,
    ) -> _Listing | None:
        """All pages of one list endpoint, following §2.5 and fetching pages 2..n concurrently.

        R-J1 stops only at ``offset == page.total``, which loops forever if the total shrinks;
        we also stop on an empty page and compare with ``>=`` (§2.5,
        https://dev.digicert.com/services-api/users/list-users/). Offsets can shift when users
        are added or removed mid-pull (ordering without ``sort`` is not promised), hence
        de-duplication by id and the completeness check.
        """
        first = self._fetch_page(run, path, 0, group=group, subgroup=subgroup, allow_not_found=allow_not_found)
        if first is None:
            return None
        # The maximum limit for /user is undocumented (§2.1): if the server quietly returns fewer
        # users than asked for, step by what it returns, or whole slices would be skipped.
        step = self._page_size
        if 0 < len(first.users) < min(self._page_size, first.total):
            step = len(first.users)
        offsets = list(range(step, first.total, step)) if first.users else []
        if report_total:
            run.total(first.total, 1 + len(offsets))

        pages: dict[int, _Page] = {0: first}

        def fetch(offset: int) -> _Page | None:
            return self._fetch_page(run, path, offset, group=group, subgroup=subgroup)

        def collect(page: _Page | None) -> None:
            if page is not None:
                pages[page.offset] = page

        _run_concurrently(fetch, offsets, workers=self._max_concurrency, on_result=collect)

        records = self._merge(pages)
        last = pages[max(pages)]
        total_moved = any(page.total != first.total for page in pages.values())
        if last.users and (len(records) != first.total or total_moved):
            # Users arrived late or shifted past the last page: look a little further, sequentially,
            # until an empty page (the §2.5 stop rule).
            offset = last.offset + step
            for _ in range(FOLLOW_UP_PAGES):
                page = fetch(offset)
                assert page is not None  # noqa: S101 - 404 is only tolerated on the first page
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
        allow_not_found: bool = False,
    ) -> _Page | None:
        """One list page. ``limit`` and ``offset`` are always sent: the default limit is
        undocumented and the examples disagree (§2.1, https://dev.digicert.com/services-api/users/list-users/).
        """
        endpoint = f"{path}?limit={limit or self._page_size}&offset={offset}"
        response = self._get(run, endpoint, allow_not_found=allow_not_found)
        run.keep((group, subgroup, offset), self._raw(endpoint, response), list_page=True)
        if response.status_code == 404:
            return None
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
        return _Page(offset=offset, users=tuple(users), total=total)

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
            response = self._get(run, endpoint, allow_not_found=True)
            run.keep((_GROUP_DETAIL, 0, user_id), self._raw(endpoint, response))
            if response.status_code == 404:
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

    def _get(self, run: _Run, endpoint: str, *, allow_not_found: bool = False) -> httpx.Response:
        """GET ``endpoint`` with pacing and retries; returns a 2xx response (or a 404 if allowed).

        stamina drives the attempts (and its global switches: ``stamina.set_active``,
        instrumentation hooks), but the wait itself is ours: the backoff hook computes it
        (Retry-After or exponential with jitter) and returns 0 to stamina, and the injected
        ``sleep`` waits before the next attempt. So tests never sleep and can see every wait.
        """
        attempt_num = 0
        pending_wait = 0.0

        def backoff(exc: Exception) -> bool | float:
            nonlocal pending_wait
            if not isinstance(exc, _Retryable) or attempt_num >= self._retry_attempts:
                return False
            pending_wait = self._wait_for(exc, attempt_num)
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
                    response = self._attempt(run, endpoint, allow_not_found=allow_not_found)
        except _Retryable as exc:
            raise self._give_up(endpoint, exc, attempt_num) from self._safe_cause(exc.__cause__)
        assert response is not None  # noqa: S101 - the loop either returned a response or raised
        return response

    def _attempt(self, run: _Run, endpoint: str, *, allow_not_found: bool) -> httpx.Response:
        if self._limiter is not None:
            _acquire(self._limiter)
        run.count_request()
        try:
            response = self._http.get(endpoint)
        except (httpx.TimeoutException, httpx.NetworkError, httpx.RemoteProtocolError, httpx.ProxyError) as exc:
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
        if 200 <= status < 300 or (status == 404 and allow_not_found):
            return response
        raise self._error_for(endpoint, response)

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
