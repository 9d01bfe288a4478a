"""Issue 17: the client's credential reads, against httpx.MockTransport (shapes the sandbox does not serve)."""

from __future__ import annotations

import httpx
import pytest
from test_client import ROUTE_NOT_FOUND, FakeCertCentral, client_for, html, make_user

from auditor.errors import ApiBadResponseError, ApiError
from auditor.models import CredentialInventory

MISSING = {"errors": [{"code": "access_denied|missing_permission", "message": "Access denied."}]}
NOT_FOUND = {"errors": [{"code": "not_found", "message": "Not found"}]}


def key(key_id: int, **overrides: object) -> dict[str, object]:
    record: dict[str, object] = {
        "id": key_id,
        "user": {"id": 1, "first_name": "User", "last_name": "1"},
        "status": "active",
        "create_date": "2026-01-05 10:00:00",  # the documented form (§2.4), not ISO
        "name": f"key {key_id}",
        "is_legacy": False,
        "restricted_to_role_id": 102,
    }
    record.update(overrides)
    return record


class KeyedFake(FakeCertCentral):
    def __init__(self, keys: list[dict[str, object]], *, page: int = 0, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.keys = keys
        self.page_size = page

    def answer(self, request: httpx.Request, path: str) -> httpx.Response:
        if path == "/key":
            if not self.page_size:
                return httpx.Response(200, json={"api_keys": self.keys})
            offset = int(request.url.params.get("offset", 0))
            body = {"api_keys": self.keys[offset : offset + self.page_size]}
            body["page"] = {"total": len(self.keys), "limit": self.page_size, "offset": offset}  # type: ignore[assignment]
            return httpx.Response(200, json=body)
        if path == "/container/634763/ip/rules":
            return httpx.Response(200, json={"ip_rules": [{"id": 9, "user_id": 0, "ip_address": "192.0.2.1"}]})
        if path == "/account/guest-access":
            return httpx.Response(200, json={"enabled": False})
        return super().answer(request, path)


def inventory(result: object) -> CredentialInventory:
    return CredentialInventory.from_raw_pages(result.raw_pages)  # type: ignore[attr-defined]


def test_keys_ip_rules_and_guest_access_are_kept_as_raw_pages_and_parse_back() -> None:
    fake = KeyedFake([key(1), key(2, last_used_date="2026-02-01T00:00:00Z", acme_directory_url="https://a/***")])
    result = client_for(fake).pull_users(credentials=True)
    got = inventory(result)
    assert [k.id for k in got.keys or ()] == [1, 2]
    assert got.keys is not None and got.keys[0].created is not None and got.keys[0].last_used is None
    assert got.keys[1].is_acme and got.keys[1].last_used is not None
    assert got.ip_rules is not None and got.ip_rules[0].account_wide and got.covers(got.keys[0])
    assert got.guest_access is False
    assert result.not_evaluable == () and result.complete
    endpoints = [page.endpoint for page in result.raw_pages]
    assert endpoints[-3:] == ["/key", "/container/634763/ip/rules", "/account/guest-access"]


def test_without_credentials_nothing_extra_is_requested() -> None:
    fake = KeyedFake([key(1)])
    client_for(fake).pull_users()
    assert not [e for e in fake.endpoints if e.startswith(("/key", "/container", "/account"))]


def test_a_paged_key_list_follows_the_echoed_limit() -> None:
    fake = KeyedFake([key(i) for i in range(1, 8)], page=3)
    result = client_for(fake).pull_users(credentials=True)
    assert [k.id for k in inventory(result).keys or ()] == list(range(1, 8))
    requested = [e for e in fake.endpoints if e.startswith("/key")]
    assert requested == ["/key", "/key?limit=3&offset=3", "/key?limit=3&offset=6"]


def test_a_key_list_that_does_not_add_up_fails_the_pull() -> None:
    fake = KeyedFake([key(i) for i in range(1, 8)], page=3)
    fake.script("/key?limit=3&offset=6", httpx.Response(200, json={"api_keys": [], "page": {"total": 7}}))
    with pytest.raises(ApiBadResponseError, match="did not add up"):
        client_for(fake).pull_users(credentials=True)


@pytest.mark.parametrize(
    ("path", "answer", "part"),
    [
        ("/key", httpx.Response(403, json=MISSING), "api_keys"),
        ("/container/634763/ip/rules", httpx.Response(403, json=MISSING), "ip_rules"),
        ("/container/634763/ip/rules", httpx.Response(404, json=NOT_FOUND), "ip_rules"),
        ("/account/guest-access", httpx.Response(403, json=MISSING), "guest_access"),
        ("/account/guest-access", httpx.Response(404, json=ROUTE_NOT_FOUND), "guest_access"),
    ],
)
def test_documented_refusals_are_not_evaluable_and_the_users_stay_complete(
    path: str, answer: httpx.Response, part: str
) -> None:
    fake = KeyedFake([key(1)])
    fake.script(path, answer)
    result = client_for(fake).pull_users(credentials=True)
    assert result.not_evaluable == (part,)
    assert result.complete  # the users were read in full
    assert any("NOT read" in note for note in result.notes)
    got = inventory(result)
    assert {"api_keys": got.keys, "ip_rules": got.ip_rules, "guest_access": got.guest_access}[part] is None


@pytest.mark.parametrize(
    ("path", "answer"),
    [
        ("/key", httpx.Response(404, json=ROUTE_NOT_FOUND)),  # /key has no documented 404
        ("/key", html(403)),
        ("/account/guest-access", html(404)),
        ("/key", httpx.Response(200, json={"keys": []})),
        ("/key", httpx.Response(200, json={"api_keys": [{"name": "no id"}]})),
        ("/account/guest-access", httpx.Response(200, json={"enabled": "yes"})),
    ],
)
def test_other_failures_fail_the_whole_pull(path: str, answer: httpx.Response) -> None:
    fake = KeyedFake([key(1)])
    fake.script(path, answer)
    with pytest.raises(ApiError):
        client_for(fake).pull_users(credentials=True)


def test_without_a_root_division_the_ip_rules_are_not_evaluable() -> None:
    inner = {"id": 5, "name": "Sales", "parent_id": 634763}
    fake = KeyedFake(
        [key(1)],
        users=[make_user(2, container=inner)],
        me=make_user(1, access_roles=[{"id": 1, "name": "Administrator"}], container=inner),
    )
    result = client_for(fake).pull_users(credentials=True)
    assert result.not_evaluable == ("ip_rules",)
    assert not [e for e in fake.endpoints if "/ip/rules" in e]
