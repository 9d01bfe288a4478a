"""The CertCentral client: read-only access to users and the credential inventory, paced, retried, paged.

The class sequences the reads of a pull and a connection test; the rooms beside it own the
mechanics (see the package docstring). Guarantees are listed in ``auditor/client/__init__.py``.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx

from auditor import __version__
from auditor.auditlog import AuditLogRun
from auditor.client.base_url import resolve_base_url
from auditor.client.connection import connection_report
from auditor.client.errors import AUTH_HINT, KeyEchoedError, error_code, json_object, parse_errors
from auditor.client.inventory import read_credentials
from auditor.client.pacing import DEFAULT_RATE_LIMITS, Backoff, RateLimiter
from auditor.client.paging import (
    FALLBACK_PAGE_SIZE,
    Listing,
    Page,
    Refusal,
    list_endpoint,
    parse_page,
    reconcile,
    run_concurrently,
)
from auditor.client.reports import SCHEDULE_HINT, AuditLogRead, audit_log_status, read_audit_log
from auditor.client.results import (
    GROUP_DETAIL,
    GROUP_ME,
    GROUP_SERVICE,
    GROUP_USERS,
    ConnectionReport,
    PullObserver,
    PullResult,
    Run,
)
from auditor.client.session import REDACTED, Session
from auditor.client.transport import Wire
from auditor.client.window import SharedWindow
from auditor.errors import ApiBadResponseError, ApiError, ConfigurationError, PermissionDeniedError
from auditor.models import KEY_LIST_PATH, Subaccount, User, utc_now
from auditor.parsing import KEY_CHECK_ENDPOINT, LIST_PATHS, RecordDigests, is_int, users_from_records

# limit=500 is proven on /user; 1000 is the documented max of other list endpoints and only
# likely for /user (§2.1): https://dev.digicert.com/services-api/users/list-users/
# So ask for 1000 and page by what the first page shows: 1000 when served, else what the server
# served, or FALLBACK_PAGE_SIZE after a 400 (paging.list_endpoint). Half the requests at 1000
# keep a 50,000-user pull inside the 100-per-5-s window.
DEFAULT_PAGE_SIZE = 1000
#: Pages in flight at once after the first: enough to hide ~100 ms of latency per page, far below the
#: 100-per-5-s limit (the limiter paces anything faster).
DEFAULT_MAX_CONCURRENCY = 8
MAX_PAGE_SIZE = 1000

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

#: Refusals a caller may inspect instead of failing (see Refusal.documented).
_TOLERATED = frozenset({403, 404})
#: A first page's answer to a limit above FALLBACK_PAGE_SIZE that makes the pager ask for 500.
_LIMIT_REFUSED = frozenset({400})
_NOT_FOUND = frozenset({404})


class CertCentralClient:
    """Read-only client for the CertCentral Services API v2 users endpoints.

    Thread-safe: pages are fetched on a bounded worker pool that shares one httpx connection pool
    and one client-side rate limiter, so a normal run never meets a 429.

    ``sleep``, ``monotonic`` and ``clock`` are injected: every wait (back-off and rate limiting)
    goes through ``sleep``, deadlines and the limiter's windows read ``monotonic`` (so the two must
    agree), raw-page and pull timestamps come from ``clock``.
    ``retry_attempts`` counts every try, the first included. ``rate_limits`` are the server's
    rolling windows as (requests, seconds); each window is padded a little (RATE_LIMIT_MARGIN)
    and ``()`` turns client-side pacing off. The limiter belongs to this client: two clients on
    one key in one process do not share it, unless both name the same ``rate_window`` file
    (:mod:`~auditor.client.window`): then each starts from the requests the other recorded on
    closing, across processes too (the pipeline names one per connection in the data directory).
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
        report_library_url: str | None = None,
        rate_window: Path | None = None,
    ) -> None:
        key = api_key.strip() if isinstance(api_key, str) else ""
        if not key or not key.isascii() or not key.isprintable() or any(c.isspace() for c in key):
            raise ConfigurationError(
                "The API key is empty or contains spaces or characters that cannot be sent in an HTTP header.",
                hint=AUTH_HINT,
            )
        if not is_int(page_size) or not 1 <= page_size <= MAX_PAGE_SIZE:
            raise ConfigurationError(f"page_size must be between 1 and {MAX_PAGE_SIZE}, not {page_size!r}.")
        if not is_int(max_concurrency) or max_concurrency < 1:
            raise ConfigurationError(f"max_concurrency must be at least 1, not {max_concurrency!r}.")
        if not is_int(retry_attempts) or retry_attempts < 1:
            raise ConfigurationError(f"retry_attempts must be at least 1, not {retry_attempts!r}.")
        if not timeout > 0 or retry_wait_initial < 0 or retry_wait_max < retry_wait_initial:
            raise ConfigurationError("timeout must be positive and 0 <= retry_wait_initial <= retry_wait_max.")
        if not deadline > 0 or not response_deadline > 0 or not max_rate_limit_wait >= 0:
            raise ConfigurationError("deadline and response_deadline must be positive, max_rate_limit_wait >= 0.")
        if not is_int(max_users) or max_users < 1 or not is_int(max_body_bytes) or max_body_bytes < 1:
            raise ConfigurationError(f"max_users and max_body_bytes must be at least 1, not {max_users!r}.")
        self._base_url = resolve_base_url(None, base_url)
        # Before the connection pool, so an invalid limit leaves nothing open.
        history = None if rate_window is None else functools.partial(SharedWindow, rate_window)
        limiter = RateLimiter(rate_limits, monotonic=monotonic, sleep=sleep, history=history) if rate_limits else None
        self._limiter = limiter
        self._page_size = page_size
        self._max_concurrency = max_concurrency
        self._max_users = max_users
        self._clock = clock
        #: The Report Library base URL (§11.5; ``auditor.client.reports.report_library_url``); None: not read.
        self._report_library_url = report_library_url.rstrip("/") if report_library_url else None
        self._wire = Wire(
            self._base_url,
            key,
            transport=transport,
            timeout=timeout,
            headers={
                # The key header is case-insensitive in practice (§1.2, R-J1 recording);
                # https://dev.digicert.com/en/certcentral-apis/authentication.html
                "X-DC-DEVKEY": key,
                # Accept: text/csv would turn the list into CSV (§1.3);
                # https://dev.digicert.com/services-api/users/list-users/
                "Accept": "application/json",
                # Only encodings transport.Inflater decodes within the byte cap (httpx would add br/zstd).
                "Accept-Encoding": "gzip, deflate",
                "User-Agent": user_agent or f"certcentral-auditor/{__version__}",
            },
            max_body_bytes=max_body_bytes,
            response_deadline=float(response_deadline),
            deadline=float(deadline),
            monotonic=monotonic,
        )
        #: The httpx client (behind the read-only guard); tests reach in to prove nothing else can write.
        self._http = self._wire.http
        self._sleep = sleep
        self._monotonic = monotonic
        self._session = Session(
            self._wire,
            key,
            base_url=self._base_url,
            limiter=limiter,
            backoff=Backoff(initial=retry_wait_initial, maximum=retry_wait_max),
            attempts=retry_attempts,
            sleep=sleep,
            clock=clock,
            monotonic=monotonic,
            deadline=float(deadline),
            max_rate_limit_wait=float(max_rate_limit_wait),
        )

    # -- lifecycle ---------------------------------------------------------------------------

    def __enter__(self) -> CertCentralClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        """Close connections and record this client's requests in the shared rate window; the
        client cannot be used afterwards."""
        try:
            if self._limiter is not None:
                self._limiter.flush()
        finally:
            self._wire.close()

    def __repr__(self) -> str:
        return f"CertCentralClient(base_url={self._base_url!r}, api_key={REDACTED!r})"

    __str__ = __repr__

    @property
    def base_url(self) -> str:
        return self._base_url

    @property
    def proxy(self) -> str | None:
        """The environment's proxy for the base URL, without credentials; None when direct."""
        return self._wire.proxy

    # -- public operations -------------------------------------------------------------------

    def get_me(self) -> User:
        """The user the API key is linked to (``GET /user/me``, §3)."""
        return self._get_me(self._session.new_run())

    def test_connection(self) -> ConnectionReport:
        """Prove the key works and can read users, and say whether it sees the whole account.

        Calls ``GET /user/me`` (DigiCert's own advice for checking what a key may do, §3,
        https://dev.digicert.com/errors/) and then ``GET /user?limit=1&offset=0``.
        """
        run = self._session.new_run()
        me = self._get_me(run)
        page = self._fetch_page(run, "/user", 0, limit=1, group=GROUP_USERS)
        assert isinstance(page, Page)  # noqa: S101 - a refusal is returned only when tolerated
        report = connection_report(me, page)
        return replace(report, keys_readable=self._keys_readable(run), audit_log=self._audit_log_status(run))

    def _keys_readable(self, run: Run) -> bool | None:
        """Whether the key may read ``GET /key`` (§11.1: a View Only key may not, UNCERTAIN); None: unknown."""
        try:
            response = self._session.get(run, KEY_LIST_PATH, tolerate=_TOLERATED)
        except ApiError:
            return None
        return response.status_code not in _TOLERATED

    def _audit_log_status(self, run: Run) -> str:
        if self._report_library_url is None:
            return ""
        try:
            return audit_log_status(self._session, run, base_url=self._report_library_url)
        except ApiError as error:
            return f"Audit log: could not be checked ({error.message}). {SCHEDULE_HINT}"

    def list_subaccounts(self) -> tuple[Subaccount, ...]:
        """The subaccounts this key can list (§11.6); PermissionDeniedError when it may not."""
        from auditor.client.subaccounts import list_subaccounts

        return list_subaccounts(self._session, self._session.new_run())

    def pull_users(
        self,
        *,
        details: bool = False,
        known_details: Mapping[int, tuple[str, bool]] | None = None,
        details_per_second: float = 5.0,
        observer: PullObserver | None = None,
        credentials: bool = False,
        audit_log_archived: frozenset[tuple[str, str]] | None = None,
    ) -> PullResult:
        """Read every user the key can see, with the raw pages as evidence.

        ``credentials`` also reads the credential inventory (``GET /key``, the top container's
        IP rules, guest access: §11.1-11.3; ``auditor pull`` always does); a documented refusal
        of one makes that part not evaluable (``not_evaluable``), any other failure fails the pull.

        ``details`` adds ``GET /user/{id}`` per user for ``is_saml_sso_only`` (only served there,
        §2.2), paced at ``details_per_second``; ``known_details`` (id -> (record digest, value))
        from an earlier pull is reused for users whose list record did not change.

        ``audit_log_archived`` (the runs already archived, as (report, run) identifiers) also reads
        the Report Library (§11.5) when the client has its base URL: the runs not yet archived are
        downloaded (``PullResult.audit_log_runs``); a documented refusal makes ``audit_log`` not evaluable.
        """
        if details and not details_per_second > 0:
            raise ConfigurationError(f"details_per_second must be positive, not {details_per_second!r}.")
        started_at = self._clock()
        run = self._session.new_run(observer)
        notes: list[str] = []

        # /user/me and the service-user list do not depend on /user: fetch them alongside it,
        # so a pull costs one round trip of latency fewer on each.
        service_notes: list[str] = []
        with ThreadPoolExecutor(max_workers=2, thread_name_prefix="certcentral-side") as side:
            me_future = side.submit(self._get_me, run)
            service_future = side.submit(self._list_service_users, run, service_notes)
            listing = self._list(run, "/user", group=GROUP_USERS, report_total=True)
            me: User | None = None
            try:
                me = me_future.result()
            except PermissionDeniedError:
                # A key may be allowed to list users yet not read its own user (§6.2 is UNCERTAIN);
                # /user decides whether the pull can go on.
                notes.append("GET /user/me was refused (missing permission): whose key this is is unknown.")
            service = service_future.result()
        assert isinstance(listing, Listing)  # noqa: S101 - /user is never tolerated as refused
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

        users, digests = users_from_records(records, service_ids)

        if details:
            saml = self._pull_details(run, sorted(users), digests, known_details or {}, details_per_second, notes)
            users = {uid: replace(user, is_saml_sso_only=saml.get(uid)) for uid, user in users.items()}

        if credentials:
            not_evaluable.extend(
                read_credentials(
                    self._session,
                    run,
                    page_size=self._page_size,
                    max_users=self._max_users,
                    me=me,
                    users=users.values(),
                    notes=notes,
                )
            )

        audit_log_runs: tuple[AuditLogRun, ...] = ()
        if audit_log_archived is not None and self._report_library_url is not None:
            try:
                read = read_audit_log(
                    self._session, run, base_url=self._report_library_url, archived=audit_log_archived, notes=notes
                )
            except KeyEchoedError:
                raise  # a key in an answer is never tolerated, wherever it came from
            except ApiError as error:
                # No audit log is a limitation, never a failure (issue 17): a Report Library that cannot
                # be reached (a wrong or guessed base URL) or answers nonsense leaves the pull standing.
                notes.append(
                    f"The audit log was NOT read from {self._report_library_url}: {error.message} Not evaluable; "
                    "check the Report Library URL (`auditor --report-library-url URL pull`, or "
                    "[audit_log] report_library_url in auditor.toml)."
                )
                read = AuditLogRead(readable=False)
            if not read.readable:
                not_evaluable.append("audit_log")
            audit_log_runs = read.downloaded

        account_id = me.account_id if me is not None else None
        if account_id is None:
            account_id = next((u.account_id for u in users.values() if u.account_id is not None), None)
        raw_pages = run.raw_pages()
        listings = (listing,) if service is None else (listing, service)
        return PullResult(
            users=tuple(users[uid] for uid in sorted(users)),
            raw_pages=raw_pages,
            endpoints=tuple(reconcile(item, raw_pages) for item in listings),
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
            # With details the digests were read above; without, they are parsed again from the
            # raw pages if ever read, so the parsed records need not outlive this call.
            record_digests=digests if details else RecordDigests(pages=raw_pages),
            not_evaluable=tuple(not_evaluable),
            proxy=self._wire.proxy,
            audit_log_runs=audit_log_runs,
        )

    # -- credential inventory (§11) -----------------------------------------------------------
    def _get_me(self, run: Run) -> User:
        response = self._session.get(run, KEY_CHECK_ENDPOINT)
        run.keep((GROUP_ME, 0, 0), self._session.raw(KEY_CHECK_ENDPOINT, response))
        data = json_object(KEY_CHECK_ENDPOINT, response)
        try:
            return User.from_api(data)
        except ValueError as exc:
            raise ApiBadResponseError(
                f"CertCentral answered GET {KEY_CHECK_ENDPOINT} without a numeric user id."
            ) from exc

    def _list_service_users(self, run: Run, notes: list[str]) -> Listing | None:
        """Service (API-only) users come from a separate list (§4.3).

        The docs show ``/user/api-only`` in two crawls and ``/service-user`` in a third, so try
        both: https://dev.digicert.com/en/certcentral-apis/services-api/users/list-service-users.html

        Which answers mean "not available to this key or account" is itself UNCERTAIN, so only the
        documented ones count: 403 ``access_denied|missing_permission`` and 404 ``not_found…``
        (§5.2). When every path answers one of those, service users are *not evaluable* (None,
        with a note); any other refusal (a proxy's HTML page, an unknown 403) fails the pull.
        """
        refusals: list[Refusal] = []
        for index, path in enumerate(LIST_PATHS[1:]):
            got = self._list(run, path, group=GROUP_SERVICE, subgroup=index, tolerate=_TOLERATED)
            if isinstance(got, Listing):
                return got
            refusals.append(got)
        for refusal in refusals:
            if not refusal.documented:
                endpoint = f"{refusal.path}?limit={self._page_size}&offset=0"
                raise self._session.error_for(endpoint, refusal.response)
        answers = " and ".join(f"GET {r.path} answered {r.status} {r.code}" for r in refusals)
        notes.append(
            f"Service users were NOT read ({answers}: CertCentral's answers for \"not available to this "
            'key"). Service users are unknown, not absent, so this snapshot is incomplete and never a '
            "diff baseline. Use a View Only key linked to an unrestricted Administrator."
        )
        return None

    def _list(
        self,
        run: Run,
        path: str,
        *,
        group: int,
        subgroup: int = 0,
        tolerate: frozenset[int] = frozenset(),
        report_total: bool = False,
    ) -> Listing | Refusal:
        """All pages of one list endpoint (:func:`~auditor.client.paging.list_endpoint`); only the
        first page may be a tolerated refusal."""

        def fetch(offset: int, limit: int) -> Page | Refusal:
            first = tolerate | _LIMIT_REFUSED if limit > FALLBACK_PAGE_SIZE else tolerate
            return self._fetch_page(
                run, path, offset, group=group, subgroup=subgroup, limit=limit,
                tolerate=first if offset == 0 else frozenset(),
            )

        return list_endpoint(
            fetch,
            path,
            page_size=self._page_size,
            max_users=self._max_users,
            window=self._max_concurrency,
            on_total=run.total if report_total else None,
        )

    def _fetch_page(
        self,
        run: Run,
        path: str,
        offset: int,
        *,
        group: int,
        subgroup: int = 0,
        limit: int | None = None,
        tolerate: frozenset[int] = frozenset(),
    ) -> Page | Refusal:
        """One list page. ``limit`` and ``offset`` are always sent: the default limit is
        undocumented and the examples disagree (§2.1, https://dev.digicert.com/services-api/users/list-users/).
        """
        asked = limit or self._page_size
        endpoint = f"{path}?limit={asked}&offset={offset}"
        response = self._session.get(run, endpoint, tolerate=tolerate)
        run.keep((group, subgroup, offset), self._session.raw(endpoint, response), list_page=True)
        if response.status_code in tolerate:
            return Refusal(path=path, status=response.status_code, code=error_code(response.content), response=response)
        page = parse_page(endpoint, json_object(endpoint, response), offset=offset, asked=asked)
        run.page(endpoint, len(page.users))
        return page

    def _pull_details(
        self,
        run: Run,
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
        pace = RateLimiter(
            ((1, 1 / per_second),), monotonic=self._monotonic, sleep=self._sleep, margin=False, buffer=0.005
        )
        done = 0
        gone: list[int] = []

        def fetch(user_id: int) -> tuple[int, bool | None]:
            pace.acquire()
            endpoint = f"/user/{user_id}"
            # An unknown id's answer is undocumented (§5.2); a user deleted since the list was
            # read is the likely cause, so keep going and say so.
            response = self._session.get(run, endpoint, tolerate=_NOT_FOUND)
            run.keep((GROUP_DETAIL, 0, user_id), self._session.raw(endpoint, response))
            if response.status_code == 404:
                # Only CertCentral's own not_found says "this user is gone"; a proxy's 404 page
                # says nothing about the user, and must not turn into "unknown" silently.
                if not any(code.lower().startswith("not_found") for code, _ in parse_errors(response.content)):
                    raise self._session.error_for(endpoint, response)
                return user_id, None
            value = json_object(endpoint, response).get("is_saml_sso_only")
            return user_id, value if isinstance(value, bool) else None

        def collect(item: tuple[int, bool | None]) -> None:
            nonlocal done
            user_id, value = item
            result[user_id] = value
            if value is None:
                gone.append(user_id)
            done += 1
            run.detail(done, len(todo))

        run_concurrently(fetch, todo, workers=self._max_concurrency, on_result=collect)
        if gone:
            notes.append(
                f"is_saml_sso_only is unknown for {len(gone)} user(s) whose GET /user/{{id}} answered "
                f"404 or omitted it (ids: {', '.join(map(str, sorted(gone)[:20]))}"
                f"{', ...' if len(gone) > 20 else ''})."
            )
        return result

    # -- HTTP --------------------------------------------------------------------------------

