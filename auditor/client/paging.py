"""Paging: every page of a list endpoint, pages 2..n in a bounded window of threads, merged and reconciled.

Follows §2.5 of the API notes (https://dev.digicert.com/services-api/users/list-users/): ``limit``
and ``offset`` always sent, stop at the first empty page or past ``page.total``, de-duplicate by id,
and call a listing complete only when every page agreed on ``page.total`` and that many users arrived.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from typing import Any, TypeVar

import httpx

from auditor.errors import ApiBadResponseError
from auditor.models import EndpointReconciliation, RawPage
from auditor.parsing import is_int

#: Extra pages fetched past the expected end when the user count did not add up.
FOLLOW_UP_PAGES = 3
#: The page size proven on ``/user`` (§2.1, R-J1): asked for when a larger ``limit`` is refused.
FALLBACK_PAGE_SIZE = 500

_T = TypeVar("_T")
_R = TypeVar("_R")


@dataclass(frozen=True, slots=True)
class Page:
    """One list answer: its offset, records, announced total and echoed limit."""

    offset: int
    users: tuple[Mapping[str, Any], ...]
    total: int
    #: ``page.limit`` as echoed (§2.2), when it is a usable whole number.
    limit: int | None = None


@dataclass(frozen=True, slots=True)
class Refusal:
    """A 403 or 404 answer to an endpoint whose absence is tolerated, with the documented code;
    or a first page's 400 to a ``limit`` above :data:`FALLBACK_PAGE_SIZE` (the page size measured)."""

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
class Listing:
    """The merged pages of one list endpoint."""

    path: str
    records: dict[int, Mapping[str, Any]]
    expected: int
    complete: bool
    notes: list[str]
    #: Users per page the endpoint was paged by, as measured on its first page.
    page_size: int | None = None


def reconcile(listing: Listing, raw_pages: Iterable[RawPage]) -> EndpointReconciliation:
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
        page_size=listing.page_size,
    )


def run_concurrently(
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


def parse_page(endpoint: str, data: Mapping[str, Any], *, offset: int, asked: int) -> Page:
    """One list answer (already a JSON object) as a :class:`Page`, or ApiBadResponseError naming the fault."""
    users = data.get("users")
    if not isinstance(users, list):
        raise ApiBadResponseError(f"CertCentral answered GET {endpoint} without a 'users' list.")
    page = data.get("page")
    total = page.get("total") if isinstance(page, Mapping) else None
    if not isinstance(total, int) or isinstance(total, bool) or total < 0:
        raise ApiBadResponseError(f"CertCentral answered GET {endpoint} without a whole-number page.total.")
    for index, record in enumerate(users):
        if not isinstance(record, Mapping) or not is_int(record.get("id")):
            raise ApiBadResponseError(f"CertCentral answered GET {endpoint} with user #{index} that has no numeric id.")
    echoed = page.get("limit") if isinstance(page, Mapping) else None
    usable = echoed if isinstance(echoed, int) and not isinstance(echoed, bool) and 0 < echoed <= asked else None
    return Page(offset=offset, users=tuple(users), total=total, limit=usable)


def list_endpoint(
    fetch: Callable[[int, int], Page | Refusal],
    path: str,
    *,
    page_size: int,
    max_users: int,
    window: int,
    on_total: Callable[[int, int], None] | None = None,
) -> Listing | Refusal:
    """All pages of one list endpoint, fetching pages 2..n concurrently, ``window`` at a time.

    ``fetch(offset, limit)`` reads one page; only the first may come back as a :class:`Refusal`
    (the caller decides which statuses it tolerates there, and must tolerate 400 there when
    ``limit`` is above :data:`FALLBACK_PAGE_SIZE`).

    The page size is measured, not assumed: ``/user`` is proven at 500 and only likely to serve
    1000 (§2.1). A server that refuses ``page_size`` outright (HTTP 400 on the first page) is
    asked again for :data:`FALLBACK_PAGE_SIZE`; one that serves fewer users than asked is paged
    by what it served (below).

    R-J1 stops only at ``offset == page.total``, which loops forever if the total shrinks;
    we also stop on an empty page and compare with ``>=`` (§2.5). Offsets can shift when users
    are added or removed mid-pull (ordering without ``sort`` is not promised), hence
    de-duplication by id and the completeness check.
    """
    asked = page_size
    first = fetch(0, asked)
    if isinstance(first, Refusal) and first.status == 400 and asked > FALLBACK_PAGE_SIZE:
        asked = FALLBACK_PAGE_SIZE
        first = fetch(0, asked)
    if isinstance(first, Refusal):
        return first
    if first.total > max_users:
        raise ApiBadResponseError(
            f"CertCentral answered GET {path} with page.total {first.total:,}, more users than the "
            f"{max_users:,} this tool accepts; the pull was refused before paging.",
            hint="A proxy may be rewriting answers; if the account really is that large, raise the "
            f"limit with `auditor --max-users {first.total} pull`.",
        )
    # The maximum limit for /user is undocumented (§2.1): if the server serves fewer users
    # than asked for, step by the limit it echoes (§2.2), or whole slices would be skipped.
    # Only without an echo, step by what the first page held.
    step = asked
    if first.limit is not None:
        step = min(step, first.limit)
    elif 0 < len(first.users) < min(asked, first.total):
        step = len(first.users)
    offsets = list(range(step, first.total, step)) if first.users else []
    if on_total is not None:
        on_total(first.total, 1 + len(offsets))

    pages: dict[int, Page] = {0: first}
    ran_dry = not first.users

    def fetch_more(offset: int) -> Page:
        page = fetch(offset, asked)
        assert isinstance(page, Page)  # noqa: S101 - refusals are tolerated on the first page only
        return page

    def collect(page: Page) -> None:
        nonlocal ran_dry
        pages[page.offset] = page
        ran_dry = ran_dry or not page.users

    # At most ceil(total / step) pages, a window of them at a time; the first empty page ends
    # paging (§2.5), so a page.total that lies costs one window, not total / step requests.
    for start in range(0, len(offsets), window):
        if ran_dry:
            break
        run_concurrently(fetch_more, offsets[start : start + window], workers=window, on_result=collect)

    records = merge(pages)
    last = pages[max(pages)]
    total_moved = any(page.total != first.total for page in pages.values())
    if not ran_dry and last.users and (len(records) != first.total or total_moved):
        # Users arrived late or shifted past the last page: look a little further, sequentially,
        # until an empty page (the §2.5 stop rule).
        offset = last.offset + step
        for _ in range(FOLLOW_UP_PAGES):
            page = fetch_more(offset)
            pages[offset] = page
            if not page.users:
                break
            offset += step
        records = merge(pages)

    totals = sorted({page.total for page in pages.values()})
    notes: list[str] = []
    complete = len(totals) == 1 and len(records) == first.total
    if not complete:
        changed = f" (page.total changed during the pull: {', '.join(map(str, totals))})" if len(totals) > 1 else ""
        notes.append(
            f"GET {path} is incomplete: expected {first.total} users, received {len(records)}"
            f"{changed}. Users were probably added or removed while paging; pull again."
        )
    return Listing(
        path=path, records=records, expected=first.total, complete=complete, notes=notes, page_size=step
    )


def merge(pages: Mapping[int, Page]) -> dict[int, Mapping[str, Any]]:
    """The records of all pages by id, in offset order; the first record of an id wins."""
    records: dict[int, Mapping[str, Any]] = {}
    for offset in sorted(pages):
        for record in pages[offset].users:
            records.setdefault(record["id"], record)
    return records
