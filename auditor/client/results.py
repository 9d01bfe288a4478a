"""What a client operation reports: progress to an observer, and the results of a pull or connection test.

:class:`Run` is one operation's shared state (counters, raw pages kept, the deadline), safe
across the worker threads of a pull.
"""

from __future__ import annotations

import math
import threading
import types
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from auditor.auditlog import AuditLogRun
from auditor.models import EndpointReconciliation, RawPage, User

# Sort keys of raw pages: /user/me, then /user by offset, then service users, then details by id,
# then the credential inventory: /key by offset, the IP rules, guest access.
GROUP_ME, GROUP_USERS, GROUP_SERVICE, GROUP_DETAIL, GROUP_KEYS, GROUP_IP, GROUP_GUEST = range(7)
#: The Report Library's run listing (§11.5), after everything else (its downloads are archived apart).
GROUP_AUDIT_LOG = 7


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
    #: Whether the key may read ``GET /key`` (False: the key inventory is not evaluable); None: not asked.
    keys_readable: bool | None = None
    #: What the Report Library says of the audit log (scheduled report or not, and how to schedule one).
    audit_log: str = ""


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
    #: User id -> digest of its list record, computed when read (only ``--details`` needs them).
    record_digests: Mapping[int, str] = field(default_factory=lambda: types.MappingProxyType({}))
    #: Per list endpoint read: ``page.total`` against rows received, pages, requests and digests.
    endpoints: tuple[EndpointReconciliation, ...] = ()
    #: Parts of the account that CertCentral documented as not available to this key (e.g.
    #: ``"service_users"``): not read, so unknown, never "none". A pull with any is incomplete.
    not_evaluable: tuple[str, ...] = ()
    #: The proxy the requests went through (from the environment), without credentials; None: direct.
    proxy: str | None = None
    #: Audit-log runs this pull downloaded (not archived before), to archive with its snapshot.
    audit_log_runs: tuple[AuditLogRun, ...] = ()


class Run:
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
