"""The fake CertCentral, exercised over real HTTP with httpx, as the client and the demo use it."""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from auditor.errors import ConfigurationError
from auditor.sandbox import (
    SANDBOX_KEYS,
    Dataset,
    Faults,
    SandboxServer,
    default_dataset,
    load_dataset,
)
from auditor.sandbox.server import _RateLimiter

ADMIN = "sandbox-admin-key"
ALL_KEYS = [k.key for k in SANDBOX_KEYS]
INVALID_KEY_BODY = {
    "errors": [
        {
            "code": "access_denied|access_denied_invalid_key",
            "message": "Access denied due to access_denied_invalid_key.",
        }
    ]
}
MISSING_PERMISSION_BODY = {
    "errors": [{"code": "access_denied|missing_permission", "message": "Access denied due to missing_permission."}]
}
RATE_LIMITED_BODY = {
    "errors": [{"code": "request_limit_exceeded", "message": "Service unavailable, please limit request volume"}]
}
NO_LIMITS = Faults(rate_limits=())
ISO = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+00:00$")
DOCS = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d$")
SALES, ENGINEERING = 11224, 11225


@pytest.fixture
def server() -> Iterator[SandboxServer]:
    with SandboxServer(default_dataset(), faults=NO_LIMITS) as running:
        yield running


def client(server: SandboxServer, key: str | None = ADMIN) -> httpx.Client:
    headers = {"X-DC-DEVKEY": key} if key is not None else {}
    return httpx.Client(base_url=server.base_url, headers=headers, timeout=10)


def get(server: SandboxServer, path: str, key: str | None = ADMIN, **params: Any) -> httpx.Response:
    with client(server, key) as http:
        return http.get(path, params=params)


def walk(value: object) -> Iterator[object]:
    yield value
    if isinstance(value, dict):
        for item in value.values():
            yield from walk(item)
    elif isinstance(value, list):
        for item in value:
            yield from walk(item)


# --------------------------------------------------------------------------------------------
# pagination and filters


def test_pages_cover_every_user_once_with_page_total_of_all_matches(server: SandboxServer) -> None:
    seen: list[int] = []
    sizes = []
    with client(server) as http:
        for offset in (0, 5, 10, 12, 40):
            body = http.get("/user", params={"limit": 5, "offset": offset}).json()
            assert body["page"] == {"total": 12, "limit": 5, "offset": offset}
            sizes.append(len(body["users"]))
            seen += [u["id"] for u in body["users"]]
    assert sizes == [5, 5, 2, 0, 0]
    assert seen == [u["id"] for u in default_dataset().users]


def test_missing_limit_serves_up_to_1000_and_over_1000_is_clamped_by_default() -> None:
    with SandboxServer(Dataset.generate(2500), faults=NO_LIMITS) as server:
        body = get(server, "/user").json()
        assert (len(body["users"]), body["page"]["limit"], body["page"]["total"]) == (1000, 1000, 2500)
        body = get(server, "/user", limit=1500, offset=2000).json()
        assert (len(body["users"]), body["page"]) == (500, {"total": 2500, "limit": 1000, "offset": 2000})


def test_limit_over_1000_can_be_rejected(server: SandboxServer) -> None:
    server.set_faults(Faults(rate_limits=(), limit_over_1000="reject"))
    response = get(server, "/user", limit=1001)
    assert response.status_code == 400
    assert response.json()["errors"][0]["code"] == "invalid_limit"
    assert get(server, "/user", limit=1000).status_code == 200


@pytest.mark.parametrize(
    ("faults", "answer"),
    [
        (Faults(rate_limits=()), (200, 1000, 1000)),  # honours 1000
        (Faults(rate_limits=(), max_limit=500), (200, 500, 500)),  # caps at 500 and says so
        (Faults(rate_limits=(), max_limit=500, limit_over_1000="reject"), (400, None, None)),  # refuses
    ],
)
def test_the_page_size_switch_honours_1000_or_caps_at_500(faults: Faults, answer: tuple[Any, ...]) -> None:
    dataset = Dataset.generate(1200, seed=3)
    with SandboxServer(dataset, faults=faults) as running:
        response = get(running, "/user", limit=1000, offset=0)
        body = response.json()
        served = (len(body["users"]), body["page"]["limit"]) if response.status_code == 200 else (None, None)
        assert (response.status_code, *served) == answer
        if response.status_code == 400:
            assert body["errors"][0]["code"] == "invalid_limit"
        assert len(get(running, "/user", limit=500, offset=0).json()["users"]) == 500  # 500 always served


@pytest.mark.parametrize("params", [{"offset": -1}, {"limit": -5}, {"limit": "ten"}])
def test_bad_paging_values_are_a_400(server: SandboxServer, params: dict[str, Any]) -> None:
    response = get(server, "/user", **params)
    assert response.status_code == 400
    assert response.json()["errors"][0]["code"] == "invalid_input"


def test_unset_optional_keys_are_left_out_never_null(server: SandboxServer) -> None:
    listed = {u["email"]: u for u in get(server, "/user", limit=100).json()["users"]}
    bob = listed["bob.finance@example.com"]
    for key in ("job_title", "telephone", "last_login_date"):
        assert key not in bob
        assert key not in get(server, f"/user/{bob['id']}").json()
    alice = listed["alice.admin@example.com"]
    assert (alice["job_title"], alice["telephone"]) == ("Security Engineer", "+15555550100")
    assert None not in list(walk(listed))


def test_list_dates_are_iso_and_detail_dates_follow_the_documented_form(server: SandboxServer) -> None:
    listed = get(server, "/user", limit=100).json()["users"]
    dates = [u["last_login_date"] for u in listed if "last_login_date" in u]
    assert len(dates) == 10 and all(ISO.match(d) for d in dates)
    assert get(server, "/user/2700762").json()["last_login_date"] == "2026-10-29 21:00:00"
    assert DOCS.match(get(server, "/user/me").json()["last_login_date"])
    server.set_faults(Faults(rate_limits=(), detail_date_format="iso"))
    assert get(server, "/user/2700762").json()["last_login_date"] == "2026-10-29T21:00:00+00:00"
    assert ISO.match(get(server, "/user", limit=1).json()["users"][0]["last_login_date"])


def test_list_and_detail_shapes(server: SandboxServer) -> None:
    listed = get(server, "/user", limit=1).json()["users"][0]
    assert list(listed)[:6] == ["id", "username", "account_id", "first_name", "last_name", "email"]
    assert listed["container"]["name"] == "Example Corp" and listed["container"]["parent_id"] == 0
    assert "is_saml_sso_only" not in listed and "container_id" not in listed
    detail = get(server, "/user/2702006").json()
    assert detail["is_saml_sso_only"] is True
    assert {"is_cert_central", "is_enterprise", "container_visibility"} <= set(detail)
    carol = get(server, "/user/125039").json()
    assert carol["has_container_assignments"] is True
    assert [c["name"] for c in carol["container_assignments"]] == ["Sales"]


def test_filters(server: SandboxServer) -> None:
    def emails(**params: Any) -> list[str]:
        body = get(server, "/user", limit=100, **params).json()
        assert body["page"]["total"] == len(body["users"])
        return sorted(u["email"] for u in body["users"])

    assert emails(container_id=ENGINEERING) == [
        "dana.ops@example.com",
        "frank.former@example.com",
        "grace.new@example.com",
        "zoe.odegard@example.com",
    ]
    assert emails(access_role_id=99) == ["heidi.ev@example.com"]
    assert emails(access_role_id=1) == ["alice.admin@example.com", "certs@example.com", "frank.former@example.com"]
    # `%` (sent as %25) means "contains"; without it the match is exact (§2.1).
    assert emails(**{"filters[search]": "%SALES"}) == ["carol.sales@example.com", "judy.sales@example.com"]
    assert emails(**{"filters[search]": "sales"}) == ["carol.sales@example.com", "judy.sales@example.com"]
    assert emails(**{"filters[search]": "alice"}) == ["alice.admin@example.com"]
    assert emails(**{"filters[search]": "alice.admin"}) == []
    assert emails(**{"filters[search]": "%ødegå"}) == ["zoe.odegard@example.com"]
    assert emails(**{"filters[status]": "pending"}) == ["grace.new@example.com"]
    users = get(server, "/user", limit=100, without_container="true").json()["users"]
    assert len(users) == 12 and all("container" not in u for u in users)


def test_service_users_have_their_own_endpoints(server: SandboxServer) -> None:
    for path in ("/user/api-only", "/service-user"):
        body = get(server, path, limit=10).json()
        assert body["page"]["total"] == 1
        assert body["users"][0]["username"] == "1708859662bbfc56b3e1"
    assert 2703001 not in [u["id"] for u in get(server, "/user", limit=100).json()["users"]]
    assert get(server, "/user/2703001").json()["first_name"] == "CI"


def test_account_containers_and_roles(server: SandboxServer) -> None:
    account = get(server, "/account").json()
    assert (account["id"], account["root_container_id"]) == (1696530, 634763)
    containers = get(server, "/container").json()["containers"]
    assert sorted(c["name"] for c in containers) == ["Engineering", "Example Corp", "Sales"]
    roles = get(server, "/container/634763/role").json()["access_roles"]
    assert [r["id"] for r in roles] == [1, 2, 3, 4, 5]
    assert get(server, "/container/42/role").status_code == 404


def test_response_headers_look_like_the_real_ones(server: SandboxServer) -> None:
    response = get(server, "/user", limit=1)
    assert response.headers["content-type"] == "application/json"
    assert response.headers["server"] == "nginx"
    assert not [h for h in response.headers if h.lower().startswith(("x-ratelimit", "retry-after"))]


def test_not_found_bodies(server: SandboxServer) -> None:
    response = get(server, "/nope")
    assert (response.status_code, response.json()["errors"][0]["code"]) == (404, "not_found|route")
    assert get(server, "/user/abc").json()["errors"][0]["code"] == "not_found|route"
    response = get(server, "/user/1")
    assert (response.status_code, response.json()["errors"][0]["code"]) == (404, "not_found")
    with httpx.Client(headers={"X-DC-DEVKEY": ADMIN}) as http:
        outside = http.get(server.base_url.replace("/services/v2", "/elsewhere"))
    assert outside.status_code == 404


@pytest.mark.parametrize("method", ["POST", "PUT", "PATCH", "DELETE"])
def test_writes_are_refused_and_recorded(server: SandboxServer, method: str) -> None:
    with client(server) as http:
        response = http.request(method, "/user/2700762", json={"status": "inactive"})
        assert response.status_code == 405
        assert response.json()["errors"][0]["code"] == "method_not_allowed"
        assert http.get("/user/2700762").json()["status"] == "active"
    assert [(r.method, r.status) for r in server.requests] == [(method, 405), ("GET", 200)]


# --------------------------------------------------------------------------------------------
# keys


@pytest.mark.parametrize("key", [None, "", "wrong", ADMIN.upper(), "sandbox-admin"])
def test_missing_or_unknown_key_gets_the_verified_body(server: SandboxServer, key: str | None) -> None:
    for path in ("/user", "/user/me", "/account", "/nope"):
        response = get(server, path, key=key)
        assert response.status_code == 403
        assert response.headers["content-type"] == "application/json"
        assert response.json() == INVALID_KEY_BODY
    assert {r.key_label for r in server.requests} == {"unknown"}


def test_header_name_is_case_insensitive(server: SandboxServer) -> None:
    for name in ("x-dc-devkey", "X-DC-DEVKEY", "X-Dc-DevKey"):
        with httpx.Client(base_url=server.base_url, headers={name: ADMIN}) as http:
            assert http.get("/user/me").status_code == 200


@pytest.mark.parametrize("key", [ADMIN, "sandbox-view-only-key", "sandbox-user-management-key"])
def test_admin_linked_keys_read_every_user(server: SandboxServer, key: str) -> None:
    assert get(server, "/user", key=key, limit=100).json()["page"]["total"] == 12
    me = get(server, "/user/me", key=key).json()
    assert me["access_roles"] == [{"id": 1, "name": "Administrator"}]
    assert me["has_container_assignments"] is False
    assert get(server, "/user/2702001", key=key).status_code == 200
    assert get(server, "/user/api-only", key=key).status_code == 200


def test_orders_only_key_is_refused_on_every_user_endpoint(server: SandboxServer) -> None:
    key = "sandbox-orders-only-key"
    for path in ("/user", "/user/me", "/user/2700762", "/user/api-only", "/service-user", "/container"):
        response = get(server, path, key=key)
        assert (response.status_code, response.json()) == (403, MISSING_PERMISSION_BODY), path
    assert get(server, "/account", key=key).status_code == 200


def test_finance_manager_key_sees_only_itself(server: SandboxServer) -> None:
    key = "sandbox-finance-manager-key"
    me = get(server, "/user/me", key=key)
    assert me.status_code == 200
    assert me.json()["access_roles"] == [{"id": 3, "name": "Finance Manager"}]
    for path in ("/user", "/user/2700762", "/user/api-only"):
        response = get(server, path, key=key)
        assert (response.status_code, response.json()) == (403, MISSING_PERMISSION_BODY), path


def test_division_restricted_key_lists_only_its_divisions(server: SandboxServer) -> None:
    key = "sandbox-division-restricted-key"
    me = get(server, "/user/me", key=key).json()
    assert me["has_container_assignments"] is True
    assert [c["id"] for c in me["container_assignments"]] == [SALES]
    body = get(server, "/user", key=key, limit=100).json()
    expected = [u["id"] for u in default_dataset().users if u["container_id"] == SALES]
    assert [u["id"] for u in body["users"]] == expected and body["page"]["total"] == len(expected) == 4
    assert get(server, "/user/2702002", key=key).status_code == 200  # José, Sales
    assert get(server, "/user/2702001", key=key).status_code == 403  # Dana, Engineering
    assert [c["id"] for c in get(server, "/container", key=key).json()["containers"]] == [SALES]


def test_every_shipped_key_is_in_the_default_dataset() -> None:
    dataset = default_dataset()
    assert {k.label for k in SANDBOX_KEYS} == {
        "admin",
        "view-only",
        "user-management",
        "orders-only",
        "finance-manager",
        "division-restricted",
    }
    assert [k["key"] for k in dataset.keys] == ALL_KEYS
    assert {k["label"] for k in Dataset.generate(50).keys} == {k.label for k in SANDBOX_KEYS}
    restrictions = {k.label: k.restricted_to_role_id for k in SANDBOX_KEYS}
    assert (restrictions["view-only"], restrictions["user-management"], restrictions["orders-only"]) == (
        102,
        103,
        100,
    )


# --------------------------------------------------------------------------------------------
# recording and logging


def test_recorded_requests_carry_labels_never_keys(server: SandboxServer, capfd: pytest.CaptureFixture[str]) -> None:
    secret = "not-a-sandbox-key-7f3a9c"
    for key in [*ALL_KEYS, secret]:
        get(server, "/user/me", key=key)
        get(server, "/user", key=key, limit=2)
    recorded = server.requests
    assert len(recorded) == 2 * (len(ALL_KEYS) + 1)
    assert [r.key_label for r in recorded[::2]] == [k.label for k in SANDBOX_KEYS] + ["unknown"]
    assert recorded[1].query == "limit=2" and recorded[1].path == "/services/v2/user"
    text = repr(recorded)
    for key in [*ALL_KEYS, secret]:
        assert key not in text
    out, err = capfd.readouterr()
    assert out == "" and err == ""  # http.server would log each request line to stderr


def test_on_request_observer_sees_each_request() -> None:
    seen: list[tuple[str, int, str]] = []
    with SandboxServer(default_dataset(), on_request=lambda r: seen.append((r.path, r.status, r.key_label))) as server:
        get(server, "/user/me")
        get(server, "/user/me", key="x")
    assert seen == [("/services/v2/user/me", 200, "admin"), ("/services/v2/user/me", 403, "unknown")]


# --------------------------------------------------------------------------------------------
# rate limits and faults


def test_rate_limit_counts_per_key() -> None:
    faults = Faults(rate_limits=((5, 60.0),))
    with SandboxServer(default_dataset(), faults=faults) as server, client(server) as http:
        statuses = [http.get("/user/me").status_code for _ in range(7)]
        assert statuses == [200] * 5 + [429] * 2
        limited = http.get("/user/me")
        assert limited.json() == RATE_LIMITED_BODY and "retry-after" not in limited.headers
        assert get(server, "/user/me", key="sandbox-view-only-key").status_code == 200  # another key


def test_rate_limit_window_rolls() -> None:
    # The limiter takes the time as an argument: the window rolls without waiting for it.
    limiter = _RateLimiter()
    window = ((5, 3.0),)
    assert [limiter.admit("k", window, now=10.0 + i / 10) for i in range(7)] == [True] * 5 + [False] * 2
    assert not limiter.admit("k", window, now=12.9), "the first call is still inside the window"
    assert limiter.admit("k", window, now=13.05), "the window rolled past the first call"
    assert not limiter.admit("k", window, now=13.06), "only the first call left it"
    assert limiter.admit("other", window, now=13.06)


def test_long_window_and_retry_after() -> None:
    faults = Faults(rate_limits=((100, 5.0), (3, 60.0)), retry_after=7)
    with SandboxServer(default_dataset(), faults=faults) as server, client(server) as http:
        assert [http.get("/user/me").status_code for _ in range(4)] == [200, 200, 200, 429]
        assert http.get("/user/me").headers["retry-after"] == "7"


def test_latency() -> None:
    with SandboxServer(default_dataset(), faults=Faults(latency_ms=150)) as server, client(server) as http:
        started = time.perf_counter()
        assert http.get("/user/me").status_code == 200
        assert time.perf_counter() - started >= 0.15


def test_error_rate_injects_5xx_from_the_given_statuses() -> None:
    faults = Faults(rate_limits=(), error_rate=1.0, error_statuses=(502, 503), retry_after=3)
    with SandboxServer(default_dataset(), faults=faults) as server, client(server) as http:
        responses = [http.get("/user", params={"limit": 5}) for _ in range(20)]
    assert {r.status_code for r in responses} == {502, 503}
    for response in responses:
        assert response.json()["errors"][0]["code"] in {"bad_gateway", "service_unavailable"}
        assert ("retry-after" in response.headers) == (response.status_code == 503)


def test_faults_are_deterministic_from_the_seed() -> None:
    def statuses(seed: int) -> list[int]:
        faults = Faults(rate_limits=(), error_rate=0.5, seed=seed)
        with SandboxServer(default_dataset(), faults=faults) as server, client(server) as http:
            return [http.get("/user/me").status_code for _ in range(30)]

    first = statuses(1)
    assert 200 in first and {500, 503} & set(first)
    assert statuses(1) == first
    assert statuses(2) != first


def test_non_json_and_object_errors(server: SandboxServer) -> None:
    server.set_faults(Faults(rate_limits=(), error_rate=1.0, error_statuses=(503,), non_json_errors=True))
    response = get(server, "/user")
    assert response.status_code == 503 and response.headers["content-type"] == "text/html"
    assert response.text.startswith("<!DOCTYPE html>")
    with pytest.raises(json.JSONDecodeError):
        response.json()
    server.set_faults(Faults(rate_limits=(), errors_as_object=True))
    assert get(server, "/user", key="bad").json() == {"errors": INVALID_KEY_BODY["errors"][0]}
    assert get(server, "/nope").json()["errors"]["code"] == "not_found|route"


def test_fail_offset_always_fails_that_page(server: SandboxServer) -> None:
    server.set_faults(Faults(rate_limits=(), fail_offset=5))
    with client(server) as http:
        assert http.get("/user", params={"limit": 5, "offset": 0}).status_code == 200
        assert [http.get("/user", params={"limit": 5, "offset": 5}).status_code for _ in range(3)] == [500] * 3
        assert http.get("/user", params={"limit": 5, "offset": 10}).status_code == 200
        assert http.get("/user/me").status_code == 200


def test_truncated_and_empty_bodies_still_say_200(server: SandboxServer) -> None:
    server.set_faults(Faults(rate_limits=(), truncated_json_rate=1.0))
    response = get(server, "/user")
    assert response.status_code == 200 and response.content
    with pytest.raises(json.JSONDecodeError):
        response.json()
    server.set_faults(Faults(rate_limits=(), empty_body_rate=1.0))
    response = get(server, "/user")
    assert (response.status_code, response.content) == (200, b"")
    assert get(server, "/user", key="bad").json() == INVALID_KEY_BODY  # errors are untouched


def test_reset_closes_the_connection_mid_body(server: SandboxServer) -> None:
    server.set_faults(Faults(rate_limits=(), reset_rate=1.0))
    with client(server) as http, pytest.raises(httpx.RemoteProtocolError):
        http.get("/user")
    server.set_faults(NO_LIMITS)
    assert get(server, "/user").status_code == 200


def test_churn_between_pages_changes_the_account_deterministically() -> None:
    def pull(seed: int) -> tuple[list[int], list[int], list[int]]:
        faults = Faults(rate_limits=(), churn_between_pages=3, seed=seed)
        with SandboxServer(default_dataset(), faults=faults) as server, client(server) as http:
            totals, ids, offset = [], [], 0
            for _ in range(4):
                body = http.get("/user", params={"limit": 4, "offset": offset}).json()
                totals.append(body["page"]["total"])
                ids += [u["id"] for u in body["users"]]
                offset += len(body["users"])
            final = [u["id"] for u in server.dataset.users]
            assert http.get("/user", params={"limit": 100}).json()["page"]["total"] == len(final)
        return totals, ids, final

    totals, ids, final = pull(0)
    assert totals[0] == 12 and len(set(totals)) > 1  # the total moved while paging
    assert final != [u["id"] for u in default_dataset().users]
    assert {k["user_id"] for k in default_dataset().keys} - {2703001} <= set(final)
    assert pull(0) == (totals, ids, final)
    assert pull(5) != (totals, ids, final)


def test_set_dataset_switches_what_is_served(server: SandboxServer) -> None:
    assert get(server, "/user").json()["page"]["total"] == 12
    server.set_dataset(Dataset.generate(30))
    assert get(server, "/user").json()["page"]["total"] == 30
    assert get(server, "/user/me").json()["email"] == "admin@generated.example"


# --------------------------------------------------------------------------------------------
# lifecycle


def test_stop_closes_idle_keep_alive_connections_and_is_idempotent() -> None:
    server = SandboxServer(default_dataset()).start()
    with client(server) as http:
        assert http.get("/user/me").status_code == 200  # leaves a pooled keep-alive connection
        started = time.monotonic()
        server.stop()
        assert time.monotonic() - started < 2
        with pytest.raises(httpx.TransportError):
            http.get("/user/me")
    server.stop()


def test_serve_forever_in_the_foreground_until_stopped() -> None:
    server = SandboxServer(default_dataset())
    thread = threading.Thread(target=server.serve_forever)
    thread.start()
    try:
        assert get(server, "/user/me").status_code == 200
    finally:
        server.stop()
        thread.join(timeout=5)
    assert not thread.is_alive()


# --------------------------------------------------------------------------------------------
# datasets


def test_default_dataset_covers_the_cases_the_tool_must_handle() -> None:
    dataset = default_dataset()
    users = dataset.users
    assert len(users) == 12 and len(dataset.containers) == 3 and len(dataset.service_users) == 1
    assert {r["id"] for u in users for r in u["access_roles"]} == {1, 2, 3, 4, 5, 99}
    assert {u["status"] for u in users} == {"active", "inactive", "pending"}
    assert any("last_login_date" not in u for u in users)
    assert any(u["has_container_assignments"] and u["access_roles"][0]["id"] == 4 for u in users)
    assert any(not u["first_name"].isascii() or not u["last_name"].isascii() for u in users)


def test_to_json_round_trips_and_is_deterministic(tmp_path: Path) -> None:
    for dataset in (default_dataset(), Dataset.generate(200, seed=3)):
        text = dataset.to_json()
        assert text == dataset.to_json()
        path = tmp_path / "dataset.json"
        path.write_text(text, encoding="utf-8")
        assert load_dataset(path) == dataset
        assert json.loads(text)["format"] == "certcentral-sandbox-dataset/1"


def _document(**changes: Any) -> dict[str, Any]:
    document: dict[str, Any] = json.loads(default_dataset().to_json())
    document.update(changes)
    return document


def _with_user_change(**changes: Any) -> dict[str, Any]:
    document = _document()
    document["users"][1].update(changes)
    return document


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("{not json", "not valid JSON"),
        ("[]", "top level must be a JSON object"),
        (json.dumps(_document(format="something-else/2")), "'format' is 'something-else/2'"),
        (json.dumps({k: v for k, v in _document().items() if k != "users"}), "missing field 'users'"),
        (json.dumps(_document(as_of="yesterday")), "'as_of' is not an ISO 8601"),
        (json.dumps(_with_user_change(id=2700762)), "duplicate user id 2700762"),
        (json.dumps(_with_user_change(job_title=None)), "'job_title' must be a string or left out"),
        (json.dumps(_with_user_change(container_id=1)), "unknown container_id 1"),
        (json.dumps(_with_user_change(email=7)), "'email' must be str"),
        (json.dumps(_with_user_change(access_roles=[{"name": "Administrator"}])), "access role"),
        (
            json.dumps(_document(containers=[*_document()["containers"], _document()["containers"][0]])),
            "duplicate container id 634763",
        ),
        (
            json.dumps(_document(keys=[*_document()["keys"], {**_document()["keys"][0], "label": "again"}])),
            "duplicates another key",
        ),
        (json.dumps(_document(keys=[{**_document()["keys"][0], "user_id": 5}])), "linked to unknown user 5"),
    ],
)
def test_load_dataset_names_the_file_and_the_problem(tmp_path: Path, text: str, problem: str) -> None:
    path = tmp_path / "broken.json"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigurationError) as caught:
        load_dataset(path)
    assert str(path) in caught.value.message
    assert problem in caught.value.message


def test_load_dataset_of_a_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match=r"Cannot read sandbox dataset .*missing\.json"):
        load_dataset(tmp_path / "missing.json")


def test_generate_is_deterministic_and_well_formed() -> None:
    dataset = Dataset.generate(3000, seed=1)
    assert dataset == Dataset.generate(3000, seed=1)
    assert dataset != Dataset.generate(3000, seed=2)
    assert len(dataset.users) == 3000
    assert len({u["id"] for u in dataset.users}) == 3000
    assert len({u["email"] for u in dataset.users}) == 3000
    assert {u["status"] for u in dataset.users} == {"active", "inactive", "pending"}
    assert 0 < sum("last_login_date" not in u for u in dataset.users) < 3000
    Dataset.from_json(dataset.to_json())  # passes its own validation
    with pytest.raises(ValueError, match="at least 6"):
        Dataset.generate(3)
