"""Tests of the CertCentral client against an in-process fake API (httpx.MockTransport).

The fake speaks the documented shapes (../shared/certcentral-api.md); scripted answers replace
its normal ones for the failure cases. Nothing here sleeps: the client gets a recording sleep.
"""

from __future__ import annotations

import hashlib
import json
import string
import threading
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis_profile import examples

from auditor import __version__
from auditor.client import (
    REGIONS,
    CertCentralClient,
    ReadOnlyTransport,
    WriteAttemptError,
    check_base_url,
    instance_label,
    record_digest,
    resolve_base_url,
)
from auditor.errors import (
    ApiBadResponseError,
    ApiConnectionError,
    ApiError,
    ApiUnavailableError,
    AuthenticationError,
    ConfigurationError,
    ExitCode,
    PermissionDeniedError,
)

BASE = "https://cc.example.test/services/v2"
KEY = "TESTKEY0123456789ABCDEFGHIJKLMNOP"
T0 = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)

INVALID_KEY = {
    "errors": [
        {
            "code": "access_denied|access_denied_invalid_key",
            "message": "Access denied due to access_denied_invalid_key.",
        }
    ]
}
MISSING_PERMISSION = {
    "errors": [{"code": "access_denied|missing_permission", "message": "Access denied due to missing_permission."}]
}
ROUTE_NOT_FOUND = {"errors": [{"code": "not_found|route", "message": "The specified route was not found."}]}
RATE_LIMITED = {
    "errors": [{"code": "request_limit_exceeded", "message": "Service unavailable, please limit request volume"}]
}

Scripted = httpx.Response | Exception | Callable[[httpx.Request], httpx.Response]


def make_user(user_id: int, **overrides: Any) -> dict[str, Any]:
    """A list record in the API's shape (§2.2); optional keys are left out unless given."""
    record: dict[str, Any] = {
        "id": user_id,
        "username": f"user{user_id}@example.com",
        "account_id": 1696530,
        "first_name": "User",
        "last_name": str(user_id),
        "email": f"user{user_id}@example.com",
        "status": "active",
        "container": {"id": 634763, "name": "Example Corp", "parent_id": 0},
        "access_roles": [{"id": 5, "name": "Standard User"}],
        "type": "standard",
        "has_container_assignments": False,
    }
    record.update(overrides)
    return record


ADMIN_ME = make_user(1, access_roles=[{"id": 1, "name": "Administrator"}], email="admin@example.com")


class FakeCertCentral:
    """A small CertCentral: users, service users, /user/me, /user/{id}, plus scripted answers.

    ``script(endpoint, ...)`` queues answers for an exact "path?query" or a bare path; a queued
    answer is used once, before the normal behaviour.
    """

    def __init__(
        self,
        users: list[dict[str, Any]] | None = None,
        *,
        service_users: list[dict[str, Any]] | None = None,
        service_path: str | None = "/user/api-only",
        me: dict[str, Any] | None = None,
        key: str = KEY,
        max_limit: int | None = None,
        saml: Mapping[int, bool] | None = None,
    ) -> None:
        self.users = users if users is not None else [make_user(i) for i in range(1, 4)]
        self.service_users = service_users or []
        self.service_path = service_path
        self.me = me if me is not None else ADMIN_ME
        self.key = key
        self.max_limit = max_limit
        self.saml = saml or {}
        self.requests: list[httpx.Request] = []
        self.scripts: dict[str, list[Scripted]] = {}
        self._lock = threading.Lock()

    def script(self, endpoint: str, *answers: Scripted) -> None:
        self.scripts.setdefault(endpoint, []).extend(answers)

    @property
    def endpoints(self) -> list[str]:
        return [self.endpoint_of(request) for request in self.requests]

    @staticmethod
    def endpoint_of(request: httpx.Request) -> str:
        path = request.url.path.removeprefix("/services/v2")
        query = request.url.query.decode()
        return f"{path}?{query}" if query else path

    def __call__(self, request: httpx.Request) -> httpx.Response:
        endpoint = self.endpoint_of(request)
        path = endpoint.split("?", 1)[0]
        with self._lock:
            self.requests.append(request)
            queue = self.scripts.get(endpoint) or self.scripts.get(path)
            answer = queue.pop(0) if queue else None
        if isinstance(answer, Exception):
            raise answer
        if isinstance(answer, httpx.Response):
            return answer
        if answer is not None:
            return answer(request)
        return self.answer(request, path)

    def answer(self, request: httpx.Request, path: str) -> httpx.Response:
        if request.headers.get("x-dc-devkey") != self.key:
            return httpx.Response(403, json=INVALID_KEY)
        params = request.url.params
        if path == "/user/me":
            return httpx.Response(200, json=self.me)
        if path == "/user":
            return self.page(self.users, params)
        if self.service_path is not None and path == self.service_path:
            return self.page(self.service_users, params)
        if path.startswith("/user/") and path.removeprefix("/user/").isdigit():
            user_id = int(path.removeprefix("/user/"))
            for record in self.users + self.service_users:
                if record["id"] == user_id:
                    detail = dict(record, is_saml_sso_only=self.saml.get(user_id, False))
                    if "last_login_date" in detail:  # the documented User info form (§2.4)
                        detail["last_login_date"] = detail["last_login_date"].replace("T", " ")[:19]
                    return httpx.Response(200, json=detail)
            return httpx.Response(404, json={"errors": [{"code": "not_found", "message": "Not found"}]})
        return httpx.Response(404, json=ROUTE_NOT_FOUND)

    def page(self, users: list[dict[str, Any]], params: httpx.QueryParams) -> httpx.Response:
        limit, offset = int(params["limit"]), int(params["offset"])
        served = min(limit, self.max_limit) if self.max_limit else limit
        body = {
            "users": users[offset : offset + served],
            "page": {"total": len(users), "limit": served, "offset": offset},
        }
        return httpx.Response(200, json=body)


class Sleeps:
    """The client's sleep: writes each wait down and moves its own monotonic clock by it, at once."""

    def __init__(self) -> None:
        self.calls: list[float] = []
        self.now = 0.0

    def __call__(self, seconds: float) -> None:
        self.calls.append(seconds)
        self.now += seconds

    def monotonic(self) -> float:
        return self.now


class Clock:
    """Advances one second per reading, so start and finish differ and order is visible."""

    def __init__(self, start: datetime = T0) -> None:
        self.now = start
        self._lock = threading.Lock()

    def __call__(self) -> datetime:
        with self._lock:
            value = self.now
            self.now += timedelta(seconds=1)
            return value


class Recorder:
    """A PullObserver that writes every call down."""

    def __init__(self) -> None:
        self.totals: list[tuple[int, int]] = []
        self.pages: list[tuple[str, int]] = []
        self.retries: list[tuple[str, str, float]] = []
        self.details: list[tuple[int, int]] = []

    def on_total(self, users: int, pages: int) -> None:
        self.totals.append((users, pages))

    def on_page(self, endpoint: str, users: int) -> None:
        self.pages.append((endpoint, users))

    def on_retry(self, endpoint: str, reason: str, wait_seconds: float) -> None:
        self.retries.append((endpoint, reason, wait_seconds))

    def on_detail(self, done: int, total: int) -> None:
        self.details.append((done, total))


def client_for(
    fake: FakeCertCentral, *, key: str = KEY, sleep: Sleeps | None = None, **kwargs: Any
) -> CertCentralClient:
    kwargs.setdefault("clock", Clock())
    # The tests here were written against the 500-user page; the measured 1000 has its own tests
    # (test_client_page_size.py).
    kwargs.setdefault("page_size", 500)
    sleep = sleep or Sleeps()
    kwargs.setdefault("monotonic", sleep.monotonic)  # the limiter and deadlines run on the sleeps' clock
    return CertCentralClient(BASE, key, transport=httpx.MockTransport(fake), sleep=sleep, **kwargs)


def html(status: int, text: str = "<html><body>Blocked</body></html>") -> httpx.Response:
    return httpx.Response(status, text=text, headers={"content-type": "text/html"})


# --------------------------------------------------------------------------------------------
# configuration


def test_regions_and_base_url_resolution() -> None:
    assert resolve_base_url("us", None) == "https://www.digicert.com/services/v2"
    assert resolve_base_url("EU", None) == "https://certcentral.digicert.eu/services/v2"
    assert resolve_base_url(None, None) == REGIONS["us"]
    assert resolve_base_url("eu", "http://127.0.0.1:8080/services/v2/") == "http://127.0.0.1:8080/services/v2"


@pytest.mark.parametrize(
    ("region", "base_url"),
    [
        ("ap", None),
        (None, "ftp://www.digicert.com/services/v2"),
        (None, "www.digicert.com/services/v2"),
        (None, "https://"),
    ],
)
def test_bad_region_or_url_is_a_configuration_error(region: str | None, base_url: str | None) -> None:
    with pytest.raises(ConfigurationError):
        resolve_base_url(region, base_url)


@pytest.mark.parametrize(
    "base_url",
    [
        "https://cc.example.test/services/v2",
        "http://127.0.0.1:8080/services/v2",
        "http://127.8.0.1/x",
        "http://localhost:9/services/v2",
        "http://[::1]:8080/services/v2",
    ],
)
def test_plain_http_is_allowed_on_loopback_only(base_url: str) -> None:
    assert check_base_url(base_url) == base_url
    with pytest.raises(ConfigurationError, match="unencrypted"):
        check_base_url(
            base_url.replace("https://", "http://")
            .replace("127.", "10.")
            .replace("localhost", "cc.example.test")
            .replace("[::1]", "[2001:db8::1]")
        )


def test_instance_labels_name_the_region_the_sandbox_or_custom() -> None:
    assert [
        instance_label(url) for url in (REGIONS["us"], REGIONS["eu"] + "/", "http://127.0.0.1:9/services/v2", BASE)
    ] == ["US", "Europe", "sandbox (loopback)", "custom"]


@pytest.mark.parametrize("page_size", [0, 1001, -5])
def test_page_size_outside_1_to_1000_is_rejected(page_size: int) -> None:
    with pytest.raises(ConfigurationError, match="page_size"):
        client_for(FakeCertCentral(), page_size=page_size)


@pytest.mark.parametrize("page_size", [1, 1000])
def test_page_size_bounds_are_accepted_and_sent(page_size: int) -> None:
    fake = FakeCertCentral()
    with client_for(fake, page_size=page_size) as client:
        client.pull_users()
    assert f"/user?limit={page_size}&offset=0" in fake.endpoints


@pytest.mark.parametrize("key", ["", "   ", "two words", "key\nwith-newline", "ключ"])
def test_unusable_key_is_refused_without_echoing_it(key: str) -> None:
    with pytest.raises(ConfigurationError) as info:
        client_for(FakeCertCentral(), key=key)
    if key.strip():
        assert key not in info.value.diagnostics()


def test_invalid_rate_limits_are_a_configuration_error() -> None:
    with pytest.raises(ConfigurationError):
        client_for(FakeCertCentral(), rate_limits=((10, 1.0), (5, 60.0)))
    with pytest.raises(ConfigurationError):
        client_for(FakeCertCentral(), rate_limits=((0, 1.0),))


# --------------------------------------------------------------------------------------------
# requests and parsing


def test_every_request_carries_the_key_accept_and_user_agent() -> None:
    fake = FakeCertCentral()
    with client_for(fake) as client:
        client.pull_users()
    assert fake.requests
    for request in fake.requests:
        assert request.method == "GET"
        assert request.headers["X-DC-DEVKEY"] == KEY
        assert request.headers["Accept"] == "application/json"
        assert request.headers["User-Agent"] == f"certcentral-auditor/{__version__}"
        assert str(request.url).startswith(BASE + "/")


def test_custom_user_agent() -> None:
    fake = FakeCertCentral()
    with client_for(fake, user_agent="acme-audit/2") as client:
        client.get_me()
    assert fake.requests[0].headers["User-Agent"] == "acme-audit/2"


def test_users_parse_both_date_forms_omitted_keys_and_unknown_values() -> None:
    fake = FakeCertCentral(
        [
            make_user(10, last_login_date="2023-10-13T15:15:13+00:00", job_title="Engineer"),
            make_user(11, status="locked", access_roles=[{"id": 77, "name": "EV Verified User"}]),
        ],
        me=dict(ADMIN_ME, last_login_date="2019-06-21 13:37:00"),
    )
    with client_for(fake) as client:
        result = client.pull_users()
    signed_in, never = result.users
    assert signed_in.last_login == datetime(2023, 10, 13, 15, 15, 13, tzinfo=UTC)
    assert signed_in.job_title == "Engineer"
    assert never.last_login is None
    assert never.job_title == "" and never.telephone == ""
    assert never.status == "locked" and not never.is_active
    assert never.role_names == "EV Verified User"
    assert result.me is not None
    assert result.me.last_login == datetime(2019, 6, 21, 13, 37, tzinfo=UTC)


def test_get_me_returns_the_keys_user() -> None:
    with client_for(FakeCertCentral()) as client:
        me = client.get_me()
    assert me.id == 1 and me.is_admin and me.email == "admin@example.com"


# --------------------------------------------------------------------------------------------
# pagination


def test_pull_pages_through_every_user_with_limit_and_offset() -> None:
    fake = FakeCertCentral([make_user(i) for i in range(1, 1235)])
    observer = Recorder()
    with client_for(fake, page_size=500) as client:
        result = client.pull_users(observer=observer)
    assert [u.id for u in result.users] == list(range(1, 1235))
    assert result.complete and result.expected_total == 1234 and result.received == 1234
    user_pages = sorted(e for e in fake.endpoints if e.startswith("/user?"))
    assert user_pages == ["/user?limit=500&offset=0", "/user?limit=500&offset=1000", "/user?limit=500&offset=500"]
    assert observer.totals == [(1234, 3)]
    assert sorted(observer.pages)[:3] == [
        ("/user/api-only?limit=500&offset=0", 0),
        ("/user?limit=500&offset=0", 500),
        ("/user?limit=500&offset=1000", 234),
    ]
    assert result.pages == 4  # three /user pages and the (empty) service-user page
    assert result.requests == len(fake.requests) == 5


def test_remaining_pages_are_fetched_concurrently_within_the_bound() -> None:
    fake = FakeCertCentral([make_user(i) for i in range(1, 51)])
    barrier = threading.Barrier(2, timeout=10)
    lock = threading.Lock()
    in_flight = 0
    peak = 0

    def concurrent_page(request: httpx.Request) -> httpx.Response:
        nonlocal in_flight, peak
        with lock:
            in_flight += 1
            peak = max(peak, in_flight)
        try:
            barrier.wait()  # only passes if two page requests are in flight at once
            return fake.page(fake.users, request.url.params)
        finally:
            with lock:
                in_flight -= 1

    for offset in range(10, 50, 10):
        fake.script(f"/user?limit=10&offset={offset}", concurrent_page)
    with client_for(fake, page_size=10, max_concurrency=2) as client:
        result = client.pull_users()
    assert result.complete and len(result.users) == 50
    assert peak == 2


def test_users_seen_twice_are_deduplicated_and_the_pull_is_marked_incomplete() -> None:
    users = [make_user(i) for i in range(1, 21)]
    fake = FakeCertCentral(users)
    # Offsets shifted: page 2 starts one user early, so user 10 repeats and user 20 is never seen.
    shifted = {"users": users[9:19], "page": {"total": 20, "limit": 10, "offset": 10}}
    fake.script("/user?limit=10&offset=10", httpx.Response(200, json=shifted))
    fake.script("/user?limit=10&offset=20", httpx.Response(200, json={"users": [], "page": {"total": 20}}))
    with client_for(fake, page_size=10) as client:
        result = client.pull_users()
    assert [u.id for u in result.users] == list(range(1, 20))
    assert not result.complete
    assert result.expected_total == 20 and result.received == 19
    assert any("expected 20 users, received 19" in note for note in result.notes)


def test_users_added_mid_pull_are_found_by_a_bounded_follow_up_and_flagged() -> None:
    users = [make_user(i) for i in range(1, 21)]
    fake = FakeCertCentral(users)

    def grown(request: httpx.Request) -> httpx.Response:
        fake.users = [*users, make_user(21)]
        return fake.page(fake.users, request.url.params)

    fake.script("/user?limit=10&offset=10", grown)
    with client_for(fake, page_size=10) as client:
        result = client.pull_users()
    assert [u.id for u in result.users] == list(range(1, 22))
    assert "/user?limit=10&offset=20" in fake.endpoints  # follow-up found user 21
    assert "/user?limit=10&offset=30" in fake.endpoints  # ... and stopped on the empty page
    assert "/user?limit=10&offset=40" not in fake.endpoints
    assert not result.complete
    assert any("page.total changed" in note for note in result.notes)


def test_follow_up_is_bounded_when_pages_never_run_dry() -> None:
    fake = FakeCertCentral()

    def endless(request: httpx.Request) -> httpx.Response:
        offset = int(request.url.params["offset"])
        # Someone keeps adding users faster than we page: the total grows with every page.
        return httpx.Response(200, json={"users": [make_user(offset + 1)], "page": {"total": offset + 2}})

    fake.script("/user", *([endless] * 50))
    with client_for(fake, page_size=1) as client:
        result = client.pull_users()
    user_pages = [e for e in fake.endpoints if e.startswith("/user?")]
    assert len(user_pages) == 2 + 3  # the two pages page.total promised, plus FOLLOW_UP_PAGES
    assert not result.complete


def test_an_empty_page_stops_the_pull_and_the_shortfall_is_reported() -> None:
    users = [make_user(i) for i in range(1, 11)]
    fake = FakeCertCentral(users)
    claims_30 = {"users": users, "page": {"total": 30, "limit": 10, "offset": 0}}
    fake.script("/user?limit=10&offset=0", httpx.Response(200, json=claims_30))
    with client_for(fake, page_size=10) as client:
        result = client.pull_users()
    user_pages = sorted(e for e in fake.endpoints if e.startswith("/user?"))
    # The fake's own total is 10: offsets 10 and 20 answer empty, and no follow-up is made.
    assert user_pages == ["/user?limit=10&offset=0", "/user?limit=10&offset=10", "/user?limit=10&offset=20"]
    assert not result.complete
    assert any("expected 30 users, received 10" in note for note in result.notes)


def test_a_server_that_returns_smaller_pages_than_asked_is_followed() -> None:
    fake = FakeCertCentral([make_user(i) for i in range(1, 251)], max_limit=100)
    with client_for(fake, page_size=500) as client:
        result = client.pull_users()
    assert result.complete and len(result.users) == 250
    assert "/user?limit=500&offset=100" in fake.endpoints
    assert "/user?limit=500&offset=200" in fake.endpoints


def test_raw_pages_are_exact_bytes_hashed_and_deterministically_ordered() -> None:
    fake = FakeCertCentral([make_user(i) for i in range(1, 31)], saml={3: True})
    with client_for(fake, page_size=10, max_concurrency=3) as client:
        result = client.pull_users(details=True, details_per_second=1000)
    endpoints = [page.endpoint for page in result.raw_pages]
    assert endpoints[:5] == [
        "/user/me",
        "/user?limit=10&offset=0",
        "/user?limit=10&offset=10",
        "/user?limit=10&offset=20",
        "/user/api-only?limit=10&offset=0",
    ]
    assert endpoints[5:] == [f"/user/{i}" for i in range(1, 31)]
    for page in result.raw_pages:
        assert page.sha256 == hashlib.sha256(page.body).hexdigest()
        assert page.status == 200
    assert json.loads(result.raw_pages[1].body)["users"][0]["id"] == 1
    assert result.started_at == T0
    assert result.finished_at > max(page.received_at for page in result.raw_pages) > result.started_at


def test_pull_reports_who_and_which_account() -> None:
    with client_for(FakeCertCentral()) as client:
        result = client.pull_users()
    assert result.me is not None and result.me.id == 1
    assert result.account_id == 1696530
    assert not result.details_fetched


# --------------------------------------------------------------------------------------------
# service users


def test_service_users_are_merged_and_marked() -> None:
    fake = FakeCertCentral(
        [make_user(1), make_user(2)],
        service_users=[make_user(2), make_user(900, username="1708859662bbfc56b3e1")],
    )
    with client_for(fake) as client:
        result = client.pull_users()
    by_id = {u.id: u for u in result.users}
    assert sorted(by_id) == [1, 2, 900]
    assert [by_id[i].is_service_user for i in (1, 2, 900)] == [False, True, True]
    assert result.expected_total == 4 and result.received == 4 and result.complete
    assert "/service-user?limit=500&offset=0" not in fake.endpoints


def test_service_users_fall_back_to_service_user_path() -> None:
    fake = FakeCertCentral([make_user(1)], service_users=[make_user(900)], service_path="/service-user")
    with client_for(fake) as client:
        result = client.pull_users()
    assert [u.id for u in result.users if u.is_service_user] == [900]
    assert [p.status for p in result.raw_pages if "api-only" in p.endpoint] == [404]
    assert not any("Service users could not be listed" in note for note in result.notes)


def test_missing_service_user_endpoints_make_the_pull_incomplete_not_empty() -> None:
    fake = FakeCertCentral([make_user(1)], service_path=None)
    with client_for(fake) as client:
        result = client.pull_users()
    assert [u.id for u in result.users] == [1]
    assert not result.complete and result.not_evaluable == ("service_users",)
    assert any("Service users were NOT read" in note and "404 not_found|route" in note for note in result.notes)
    assert {"/user/api-only?limit=500&offset=0", "/service-user?limit=500&offset=0"} <= set(fake.endpoints)


def test_refused_service_user_list_makes_the_pull_incomplete_not_empty() -> None:
    fake = FakeCertCentral([make_user(1)])
    fake.script("/user/api-only", httpx.Response(403, json=MISSING_PERMISSION))
    with client_for(fake) as client:
        result = client.pull_users()
    assert [u.id for u in result.users] == [1]
    assert not result.complete and result.not_evaluable == ("service_users",)
    assert any("403 access_denied|missing_permission" in note for note in result.notes)


# --------------------------------------------------------------------------------------------
# malformed answers


@pytest.mark.parametrize(
    "answer",
    [
        html(200),
        httpx.Response(200, content=b""),
        httpx.Response(200, json=["not", "an", "object"]),
        httpx.Response(200, json={"page": {"total": 1}}),
        httpx.Response(200, json={"users": {"id": 1}, "page": {"total": 1}}),
        httpx.Response(200, json={"users": []}),
        httpx.Response(200, json={"users": [], "page": {"total": "3"}}),
        httpx.Response(200, json={"users": [{"email": "no-id@example.com"}], "page": {"total": 1}}),
    ],
    ids=["html", "empty", "array", "no-users", "users-object", "no-page", "total-string", "user-without-id"],
)
def test_unreadable_pages_name_the_endpoint(answer: httpx.Response) -> None:
    fake = FakeCertCentral([make_user(i) for i in range(1, 16)])
    fake.script("/user?limit=5&offset=10", answer)
    with client_for(fake, page_size=5) as client, pytest.raises(ApiBadResponseError) as info:
        client.pull_users()
    assert "/user?limit=5&offset=10" in info.value.message
    assert info.value.exit_code == ExitCode.CERTCENTRAL_UNAVAILABLE


def test_empty_body_is_described_as_empty() -> None:
    fake = FakeCertCentral()
    fake.script("/user/me", httpx.Response(200, content=b""))
    with client_for(fake) as client, pytest.raises(ApiBadResponseError, match="empty body"):
        client.get_me()


# --------------------------------------------------------------------------------------------
# error mapping


@pytest.mark.parametrize(
    "answer",
    [
        httpx.Response(403, json=INVALID_KEY),
        httpx.Response(403, json={"errors": INVALID_KEY["errors"][0]}),  # errors as one object
        httpx.Response(401, json={"errors": [{"code": "unauthorized", "message": "No key"}]}),
        httpx.Response(401, text="Unauthorized"),
        html(403),  # a key check answered without any recognisable code
    ],
    ids=["invalid-key", "errors-object", "401-json", "401-text", "403-html-on-key-check"],
)
def test_rejected_key_is_an_authentication_error(answer: httpx.Response) -> None:
    fake = FakeCertCentral()
    fake.script("/user/me", answer)
    with client_for(fake) as client, pytest.raises(AuthenticationError) as info:
        client.test_connection()
    assert info.value.exit_code == ExitCode.KEY_REJECTED
    assert "Automation → API Keys" in info.value.hint
    assert "without spaces" in info.value.hint
    assert len(fake.requests) == 1  # never retried


def test_wrong_key_against_the_fake_is_rejected() -> None:
    with client_for(FakeCertCentral(), key="WRONGKEY0000000000000000") as client, pytest.raises(AuthenticationError):
        client.pull_users()


@pytest.mark.parametrize("endpoint", ["/user/me", "/user"])
@pytest.mark.parametrize(
    "body",
    [MISSING_PERMISSION, {"errors": MISSING_PERMISSION["errors"][0]}],
    ids=["errors-list", "errors-object"],
)
def test_missing_permission_is_a_permission_error(endpoint: str, body: dict[str, Any]) -> None:
    fake = FakeCertCentral()
    fake.script(endpoint, httpx.Response(403, json=body))
    with client_for(fake) as client, pytest.raises(PermissionDeniedError) as info:
        client.test_connection()
    assert info.value.exit_code == ExitCode.KEY_NOT_PERMITTED
    assert "View Only or User Management" in info.value.hint
    assert "administrator" in info.value.hint
    assert endpoint in info.value.message


def test_pull_goes_on_when_only_user_me_is_refused() -> None:
    fake = FakeCertCentral([make_user(5)])
    fake.script("/user/me", httpx.Response(403, json=MISSING_PERMISSION))
    with client_for(fake) as client:
        result = client.pull_users()
    assert result.me is None
    assert [u.id for u in result.users] == [5]
    assert result.account_id == 1696530
    assert any("/user/me was refused" in note for note in result.notes)


def test_pull_stops_when_the_list_is_refused() -> None:
    fake = FakeCertCentral()
    fake.script("/user", httpx.Response(403, json=MISSING_PERMISSION))
    with client_for(fake) as client, pytest.raises(PermissionDeniedError):
        client.pull_users()


@pytest.mark.parametrize(
    ("endpoint", "answer"),
    [
        ("/user/me", httpx.Response(404, json=ROUTE_NOT_FOUND)),
        ("/user/me", httpx.Response(404, json={"errors": ROUTE_NOT_FOUND["errors"][0]})),
        ("/user", html(404, "<h1>Not Found</h1>")),
        ("/user", httpx.Response(404, content=b"")),
    ],
    ids=["route", "route-object", "list-html", "list-empty"],
)
def test_404_means_the_base_url_is_probably_wrong(endpoint: str, answer: httpx.Response) -> None:
    fake = FakeCertCentral()
    fake.script(endpoint, answer)
    with client_for(fake) as client, pytest.raises(ApiBadResponseError) as info:
        client.pull_users()
    assert "base URL" in info.value.message and BASE in info.value.message
    assert endpoint in info.value.message
    assert "/services/v2" in info.value.hint


def test_redirect_is_not_followed() -> None:
    fake = FakeCertCentral()
    fake.script("/user/me", httpx.Response(301, headers={"location": "https://elsewhere.example/"}))
    with client_for(fake) as client, pytest.raises(ApiBadResponseError, match="redirected"):
        client.get_me()
    assert len(fake.requests) == 1


def test_other_client_errors_carry_the_api_code_and_message() -> None:
    fake = FakeCertCentral()
    fake.script("/user", httpx.Response(400, json={"errors": [{"code": "invalid_limit", "message": "Too big"}]}))
    with client_for(fake) as client, pytest.raises(ApiBadResponseError) as info:
        client.pull_users()
    assert (
        "HTTP 400" in info.value.message and "invalid_limit" in info.value.message and "Too big" in info.value.message
    )


# --------------------------------------------------------------------------------------------
# retries


def test_429_is_retried_after_the_retry_after_seconds() -> None:
    fake = FakeCertCentral()
    fake.script("/user/me", httpx.Response(429, json=RATE_LIMITED, headers={"Retry-After": "7"}))
    sleeps = Sleeps()
    observer = Recorder()
    with client_for(fake, sleep=sleeps) as client:
        result = client.pull_users(observer=observer)
    assert sleeps.calls == [7.0]
    assert result.retries == 1 and result.me is not None
    assert observer.retries == [("/user/me", "HTTP 429 request_limit_exceeded (rate limited)", 7.0)]


def test_retry_after_http_date_is_measured_against_the_injected_clock() -> None:
    fake = FakeCertCentral()
    when = format_datetime(T0 + timedelta(seconds=30), usegmt=True)
    fake.script("/user/me", httpx.Response(503, headers={"Retry-After": when}))
    sleeps = Sleeps()
    with client_for(fake, sleep=sleeps, clock=lambda: T0) as client:
        client.get_me()
    assert sleeps.calls == [30.0]


def test_429_without_retry_after_backs_off_from_the_5_second_window() -> None:
    fake = FakeCertCentral()
    fake.script("/user/me", *[httpx.Response(429, json=RATE_LIMITED)] * 3)
    sleeps = Sleeps()
    with client_for(fake, sleep=sleeps, retry_wait_initial=0.5, retry_wait_max=60.0) as client:
        client.get_me()
    assert len(sleeps.calls) == 3
    first, second, third = sleeps.calls
    assert 5.0 <= first <= 6.25 and 10.0 <= second <= 12.5 and 20.0 <= third <= 25.0


def test_server_errors_back_off_exponentially_up_to_the_cap() -> None:
    fake = FakeCertCentral()
    fake.script("/user/me", *[httpx.Response(502, text="Bad gateway")] * 5)
    sleeps = Sleeps()
    with client_for(fake, sleep=sleeps, retry_attempts=6, retry_wait_initial=1.0, retry_wait_max=4.0) as client:
        client.get_me()
    assert len(sleeps.calls) == 5
    assert 1.0 <= sleeps.calls[0] <= 1.25 and 2.0 <= sleeps.calls[1] <= 2.5
    assert sleeps.calls[2:] == [4.0, 4.0, 4.0]


@pytest.mark.parametrize("status", [500, 502, 503, 504])
def test_persistent_server_errors_give_up_as_unavailable(status: int) -> None:
    fake = FakeCertCentral()
    fake.script("/user", *[html(status)] * 10)
    sleeps = Sleeps()
    with client_for(fake, sleep=sleeps, retry_attempts=4) as client, pytest.raises(ApiUnavailableError) as info:
        client.pull_users()
    assert "/user?limit=500&offset=0" in info.value.message
    assert f"HTTP {status}" in info.value.message and "4 attempts" in info.value.message
    assert fake.endpoints.count("/user?limit=500&offset=0") == 4
    assert len(sleeps.calls) == 3


def test_persistent_rate_limiting_gives_up_as_unavailable() -> None:
    fake = FakeCertCentral()
    fake.script("/user/me", *[httpx.Response(429, json=RATE_LIMITED)] * 10)
    with client_for(fake, retry_attempts=3) as client, pytest.raises(ApiUnavailableError, match="rate limiting"):
        client.get_me()
    assert len(fake.requests) == 3


@pytest.mark.parametrize(
    "failure",
    [
        httpx.ConnectError("[Errno -2] Name or service not known"),
        httpx.ConnectError("[SSL: CERTIFICATE_VERIFY_FAILED]"),
        httpx.ReadTimeout("timed out"),
        httpx.ReadError("Connection reset by peer"),
        httpx.RemoteProtocolError("Server disconnected without sending a response."),
    ],
    ids=["dns", "tls", "timeout", "reset", "disconnect"],
)
def test_transport_errors_are_retried_then_reported(failure: Exception) -> None:
    fake = FakeCertCentral()
    fake.script("/user/me", failure)
    sleeps = Sleeps()
    with client_for(fake, sleep=sleeps) as client:
        assert client.get_me().id == 1
    assert len(sleeps.calls) == 1

    fake.script("/user/me", *[failure] * 10)
    with client_for(fake, retry_attempts=3) as client, pytest.raises(ApiConnectionError) as info:
        client.get_me()
    assert "/user/me" in info.value.message and "3 attempts" in info.value.message
    assert info.value.exit_code == ExitCode.CERTCENTRAL_UNAVAILABLE


def test_retries_are_counted_in_the_pull_result() -> None:
    fake = FakeCertCentral([make_user(i) for i in range(1, 11)])
    fake.script("/user?limit=5&offset=5", httpx.Response(503), httpx.ReadTimeout("slow"))
    with client_for(fake, page_size=5) as client:
        result = client.pull_users()
    assert result.complete and result.retries == 2
    assert result.requests == len(fake.requests) == 1 + 2 + 2 + 1


def test_client_side_limiter_paces_requests() -> None:
    fake = FakeCertCentral()
    sleeps = Sleeps()
    with client_for(fake, sleep=sleeps, rate_limits=((2, 0.3),)) as client:
        for _ in range(5):
            client.get_me()
    # 5 requests at 2 per 0.3 s need at least two full windows, waited on the injected clock.
    assert len(fake.requests) == 5
    assert sleeps.now >= 0.6 and len(sleeps.calls) >= 2


def test_user_details_are_paced_on_the_injected_clock() -> None:
    fake = FakeCertCentral([make_user(i) for i in range(1, 6)])
    sleeps = Sleeps()
    with client_for(fake, sleep=sleeps) as client:
        client.pull_users(details=True, details_per_second=2)
    # Five GET /user/{id} at two per second: four half-second gaps at least, none slept for real.
    assert sum(1 for e in fake.endpoints if e.startswith("/user/") and e[6:].isdigit()) == 5
    assert sleeps.now >= 2.0


# --------------------------------------------------------------------------------------------
# read-only guard


class RecordingTransport(httpx.BaseTransport):
    def __init__(self) -> None:
        self.sent: list[httpx.Request] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self.sent.append(request)
        return httpx.Response(200, json={})


@pytest.mark.parametrize("method", ["POST", "PUT", "PATCH", "DELETE", "OPTIONS"])
def test_read_only_transport_refuses_writes_before_sending(method: str) -> None:
    inner = RecordingTransport()
    with httpx.Client(transport=ReadOnlyTransport(inner)) as http, pytest.raises(WriteAttemptError):
        http.request(method, "https://www.digicert.com/services/v2/user/5", json={"status": "inactive"})
    assert inner.sent == []


def test_read_only_transport_lets_get_through() -> None:
    inner = RecordingTransport()
    with httpx.Client(transport=ReadOnlyTransport(inner)) as http:
        http.get("https://www.digicert.com/services/v2/user")
    assert [r.method for r in inner.sent] == ["GET"]


def test_the_clients_own_http_session_cannot_write() -> None:
    inner = RecordingTransport()
    client = CertCentralClient(BASE, KEY, transport=inner)
    with client, pytest.raises(WriteAttemptError):
        client._http.delete("/user/5")  # reaching inside on purpose: no public path can write
    assert inner.sent == []


# --------------------------------------------------------------------------------------------
# the key stays secret


def _texts(exc: BaseException) -> list[str]:
    texts: list[str] = []
    seen: BaseException | None = exc
    while seen is not None:
        texts += [str(seen), repr(seen), *(v for v in vars(seen).values() if isinstance(v, str))]
        seen = seen.__cause__ or (None if seen.__suppress_context__ else seen.__context__)
    return texts


def _failures(key: str) -> list[Scripted]:
    echo = f"Access denied for key {key}."
    return [
        httpx.Response(403, json=INVALID_KEY),
        httpx.Response(403, json={"errors": [{"code": "access_denied|missing_permission", "message": echo}]}),
        httpx.Response(401, text=echo),
        httpx.Response(400, json={"errors": {"code": "bad_request", "message": echo}}),
        httpx.Response(500, text=echo),
        httpx.Response(200, text=echo),
        httpx.ConnectError(echo),
    ]


@settings(max_examples=examples(25), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    key=st.text(alphabet=string.ascii_letters + string.digits + "-_", min_size=16, max_size=64),
    index=st.integers(min_value=0, max_value=6),
)
def test_the_key_never_appears_in_errors_or_repr(key: str, index: int) -> None:
    fake = FakeCertCentral(key=key)
    fake.script("/user", *[_failures(key)[index]] * 3)
    client = client_for(fake, key=key, retry_attempts=2)
    with client:
        assert key not in repr(client) and key not in str(client)
        with pytest.raises(ApiError) as info:
            client.pull_users()
    assert key not in info.value.diagnostics()
    for text in _texts(info.value):
        assert key not in text


# --------------------------------------------------------------------------------------------
# details


def test_details_read_saml_flag_per_user() -> None:
    fake = FakeCertCentral([make_user(1, last_login_date="2026-10-01T08:00:00+00:00"), make_user(2)], saml={1: True})
    observer = Recorder()
    with client_for(fake) as client:
        result = client.pull_users(details=True, details_per_second=1000, observer=observer)
    assert [u.is_saml_sso_only for u in result.users] == [True, False]
    assert result.users[0].last_login == datetime(2026, 10, 1, 8, tzinfo=UTC)  # from the list record
    assert result.details_fetched
    assert sorted(observer.details) == [(1, 2), (2, 2)]
    assert sorted(e for e in fake.endpoints if e.startswith("/user/") and e[6:].isdigit()) == ["/user/1", "/user/2"]


def test_known_details_are_reused_while_the_record_is_unchanged() -> None:
    users = [make_user(i, last_login_date="2026-10-01T08:00:00+00:00") for i in range(1, 5)]
    fake = FakeCertCentral(users, saml={1: True, 2: True, 3: False, 4: False})
    with client_for(fake) as client:
        first = client.pull_users(details=True, details_per_second=1000)
    known = {u.id: (first.record_digests[u.id], bool(u.is_saml_sso_only)) for u in first.users}

    fake.users = [
        dict(users[0], last_login_date="2026-10-30T09:00:00+00:00"),  # only signed in: reuse
        dict(users[1], access_roles=[{"id": 1, "name": "Administrator"}]),  # changed: fetch
        users[2],
        users[3],
        make_user(5),  # new: fetch
    ]
    fake.requests.clear()
    with client_for(fake) as client:
        second = client.pull_users(details=True, known_details=known, details_per_second=1000)
    fetched = sorted(e for e in fake.endpoints if e.startswith("/user/") and e[6:].isdigit())
    assert fetched == ["/user/2", "/user/5"]
    assert {u.id: u.is_saml_sso_only for u in second.users} == {1: True, 2: True, 3: False, 4: False, 5: False}


def test_a_user_deleted_before_its_details_is_noted_not_fatal() -> None:
    fake = FakeCertCentral([make_user(1), make_user(2)])
    fake.script("/user/2", httpx.Response(404, json={"errors": [{"code": "not_found", "message": "Not found"}]}))
    with client_for(fake) as client:
        result = client.pull_users(details=True, details_per_second=1000)
    assert [u.is_saml_sso_only for u in result.users] == [False, None]
    assert any("is_saml_sso_only is unknown for 1 user" in note for note in result.notes)


def test_record_digest_ignores_sign_ins_but_not_role_changes() -> None:
    record = make_user(1, last_login_date="2026-01-01T00:00:00+00:00")
    assert record_digest(record) == record_digest(dict(record, last_login_date="2026-02-01T00:00:00+00:00"))
    assert record_digest(record) == record_digest(dict(reversed(list(record.items()))))
    assert record_digest(record) != record_digest(dict(record, access_roles=[{"id": 1, "name": "Administrator"}]))


# --------------------------------------------------------------------------------------------
# connection test


def test_connection_with_an_unrestricted_admin_sees_everything() -> None:
    fake = FakeCertCentral([make_user(i) for i in range(1, 8)])
    with client_for(fake) as client:
        report = client.test_connection()
    assert report.sees_whole_account and report.warnings == ()
    assert report.me.id == 1 and report.account_id == 1696530 and report.visible_users == 7
    # Then whether the key may read the key inventory (issue 17); no Report Library URL is set here.
    assert fake.endpoints == ["/user/me", "/user?limit=1&offset=0", "/key"]


def test_connection_warns_for_non_admin_and_restricted_users() -> None:
    me = make_user(
        7,
        access_roles=[{"id": 4, "name": "Manager"}],
        has_container_assignments=True,
        container_assignments=[{"id": 11224, "name": "Sales", "parent_id": 634763}],
    )
    with client_for(FakeCertCentral(me=me)) as client:
        report = client.test_connection()
    assert not report.sees_whole_account
    assert len(report.warnings) == 2
    assert "not an Administrator" in report.warnings[0] and "Manager" in report.warnings[0]
    assert "Sales" in report.warnings[1] and "partial" in report.warnings[1]
