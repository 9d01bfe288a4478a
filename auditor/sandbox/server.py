"""A fake CertCentral Services API v2 speaking real HTTP on loopback, with fault injection.

Serves the read-only user endpoints the tool uses (certcentral-api.md §9) from a ``Dataset``.
Where the real API's behaviour is UNCERTAIN the choice made here is marked so, and the
``Faults`` switches let a test show the other answer. The server never logs or records a key:
requests are recorded with the key's label only.

(Over 500 lines: every endpoint and every fault switch act on the one request path, which reads
best in one place.)
"""

from __future__ import annotations

import base64
import contextlib
import json
import random
import re
import socket
import ssl
import struct
import sys
import threading
import time
import typing
import zlib
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, Literal
from urllib.parse import parse_qs, urlsplit

from auditor.sandbox import reports
from auditor.sandbox.dataset import ROLE_NAMES, USER_KEY_ORDER, Dataset, JsonObject

API_PREFIX = "/services/v2"
#: The largest page the sandbox serves (UNCERTAIN for the real /user, §2.1).
MAX_LIMIT = 1000
#: Page size when ``limit`` is absent or 0 (UNCERTAIN: doc examples show 0 and 1000, §2.1).
DEFAULT_LIMIT = 1000
_MAX_RECORDED = 200_000

# Error bodies (certcentral-api.md §5.2). Only the invalid-key and rate-limit ones are VERIFIED.
INVALID_KEY = ("access_denied|access_denied_invalid_key", "Access denied due to access_denied_invalid_key.")
MISSING_PERMISSION = ("access_denied|missing_permission", "Access denied due to missing_permission.")
ROUTE_NOT_FOUND = ("not_found|route", "The specified route was not found.")
NOT_FOUND = ("not_found", "The requested resource was not found.")
RATE_LIMITED = ("request_limit_exceeded", "Service unavailable, please limit request volume")
_SERVER_ERRORS: dict[int, tuple[str, str]] = {
    500: ("internal_error", "An internal error occurred."),
    502: ("bad_gateway", "Bad gateway"),
    503: ("service_unavailable", "Service is unavailable"),
    504: ("gateway_timeout", "Gateway timeout"),
}


#: What a route answers under ``Faults.route_faults``: CertCentral's documented refusals
#: (403 ``missing_permission``, 404 ``not_found|route``, 404 ``not_found``), a proxy's HTML
#: 403/404 page (undocumented: says nothing about the account), or a persistent 500.
RouteFault = Literal["missing-permission", "route-not-found", "not-found", "html-403", "html-404", "server-error"]
ROUTE_FAULTS: tuple[RouteFault, ...] = typing.get_args(RouteFault)


@dataclass(frozen=True, slots=True)
class Faults:
    """What the sandbox does wrong, on purpose. All off by default; deterministic from ``seed``."""

    latency_ms: int = 0
    #: Share of answers (after auth and rate limiting) replaced by a 5xx from ``error_statuses``.
    error_rate: float = 0.0
    error_statuses: tuple[int, ...] = (500, 503)
    #: 5xx bodies are an HTML page, as a CDN in front of the API would send (§5.1).
    non_json_errors: bool = False
    #: ``{"errors": {...}}`` instead of a list, as one client's fixture has it (§5.1).
    errors_as_object: bool = False
    #: Seconds sent as ``Retry-After`` on 429 and 503 (never sent by default: §5.3).
    retry_after: int | None = None
    #: After each 200 page of /user, this many users are added or removed (a pull racing edits).
    churn_between_pages: int = 0
    #: GET /user with exactly this offset always answers 500: the pull "dies on a page".
    fail_offset: int | None = None
    truncated_json_rate: float = 0.0
    #: Share of 200 answers with an empty body.
    empty_body_rate: float = 0.0
    #: Share of 200 answers whose connection closes half-way through the body.
    reset_rate: float = 0.0
    #: What a ``limit`` above ``max_limit`` does: a 400 ``invalid_limit`` or a smaller page whose
    #: ``page.limit`` says what was served (real behaviour UNCERTAIN; the name predates ``max_limit``).
    limit_over_1000: Literal["reject", "clamp"] = "clamp"
    #: The largest page the list endpoints serve: 1000 (likely for the real /user), or 500 (the
    #: size proven, §2.1), to show a server that does not honour the client's 1000.
    max_limit: int = MAX_LIMIT
    #: ``/user/{id}`` and ``/user/me`` dates: documented ``YYYY-MM-DD HH:MM:SS`` or ISO (§2.4).
    detail_date_format: Literal["iso", "docs"] = "docs"
    seed: int = 0
    #: Rolling windows per key as (requests, seconds) → 429 (§5.3); () turns rate limiting off.
    rate_limits: tuple[tuple[int, float], ...] = ((100, 5.0), (1000, 180.0))
    #: (route, answer) pairs: that route always answers so (after auth). Routes are as served
    #: under /services/v2, e.g. ``/user/api-only``, ``/user/me``; ``/user/{id}`` matches every id.
    #: Which path lists service users, and what a key that may not list them gets, are UNCERTAIN
    #: (§4.3, §5.2): these show every combination.
    route_faults: tuple[tuple[str, RouteFault], ...] = ()
    #: Echo the request's headers (the API key among them) as a misconfigured proxy would:
    #: "404-page" turns every 404 into an HTML page listing them; "header" adds them, base64, to
    #: every answer as ``X-Debug-Request``.
    echo_request_headers: Literal["off", "404-page", "header"] = "off"
    #: Send every answer (status line, headers and body) at this many bytes per second; 0: at once.
    drip_bytes_per_second: int = 0
    #: ``page.total`` claimed by every page of ``GET /user`` (a lying server or proxy).
    page_total: int | None = None
    #: Pages of ``GET /user`` answer a gzip body that inflates to this many zero bytes (a "gzip
    #: bomb"; 2 GiB is about 2 MB on the wire, built without holding the inflated bytes).
    gzip_bomb_bytes: int = 0
    #: ``GET /key`` answers pages of this many keys with a ``page`` object; 0: one unpaged list
    #: (whether the real list pages is UNCERTAIN, §11.1, so both shapes are served).
    key_page_size: int = 0
    #: ``GET /account/subaccount`` list entries: with ``master_user`` ("full") or without it, so the
    #: client reads ``GET /account/subaccount/{id}`` for it ("summary"). Which the list carries is
    #: UNCERTAIN (§11.6), so both are served.
    subaccount_list_shape: Literal["full", "summary"] = "full"
    #: Report Library (§11.5, UNCERTAIN each): which download path exists, the JSON form's column
    #: names, and whether a View Only key may read reports (the docs say only "an Administrator").
    report_download_path: Literal["both", "download", "json"] = "both"
    report_json_keys: Literal["documented", "snake_case"] = "documented"
    report_view_only: Literal["allowed", "denied"] = "allowed"


@dataclass(frozen=True, slots=True)
class RecordedRequest:
    """One request as the sandbox saw it; ``key_label`` is the key's label, never the key."""

    method: str
    path: str
    query: str
    status: int
    key_label: str


# --------------------------------------------------------------------------------------------
# the account as served (mutable only through churn)


class _State:
    """The served account: the dataset plus churn, with lookups the routes need."""

    def __init__(self, dataset: Dataset, *, seed: int) -> None:
        self.dataset = dataset
        self.users: list[JsonObject] = list(dataset.users)
        self.service_users = dataset.service_users
        self.containers = {c["id"]: c for c in dataset.containers}
        self.container_json = {c["id"]: _container_json(c) for c in dataset.containers}
        self.root_id = next(c["id"] for c in dataset.containers if c["parent_id"] == 0)
        self.keys = {k["key"]: k for k in dataset.keys}
        self.by_id: dict[int, JsonObject] = {u["id"]: u for u in (*dataset.users, *dataset.service_users)}
        self.linked_ids = {k["user_id"] for k in dataset.keys}
        self.next_id = max(self.by_id) + 1
        self.churn_rng = random.Random(seed ^ 0x5EED)  # noqa: S311 - deterministic test behaviour
        self.churned = 0

    def descendants(self, roots: Sequence[int]) -> set[int]:
        """The containers ``roots`` and everything below them."""
        children: dict[int, list[int]] = {}
        for container in self.containers.values():
            children.setdefault(container["parent_id"], []).append(container["id"])
        found: set[int] = set()
        pending = list(roots)
        while pending:
            current = pending.pop()
            if current not in found:
                found.add(current)
                pending.extend(children.get(current, []))
        return found

    def churn(self, count: int) -> None:
        """Add or remove ``count`` users at deterministic places (never a key's linked user).

        Copy-on-write: requests being answered keep the list they started with.
        """
        rng = self.churn_rng
        users = list(self.users)
        for _ in range(count):
            removable = len(users) - len(self.linked_ids)
            if removable > 0 and rng.random() < 0.5:
                while True:
                    index = rng.randrange(len(users))
                    if users[index]["id"] not in self.linked_ids:
                        break
                removed = users.pop(index)
                self.by_id.pop(removed["id"], None)
            else:
                user_id = self.next_id
                self.next_id += 1
                user: JsonObject = {
                    "id": user_id,
                    "username": f"churn{user_id}@example.com",
                    "account_id": self.dataset.account["id"],
                    "first_name": "Churn",
                    "last_name": f"User {user_id}",
                    "email": f"churn{user_id}@example.com",
                    "status": "active",
                    "container_id": self.root_id,
                    "access_roles": [{"id": 5, "name": ROLE_NAMES[5]}],
                    "type": "standard",
                    "has_container_assignments": False,
                }
                users.insert(rng.randrange(len(users) + 1), user)
                self.by_id[user_id] = user
            self.churned += 1
        self.users = users

    def current_dataset(self) -> Dataset:
        return Dataset(
            account=self.dataset.account,
            containers=self.dataset.containers,
            users=tuple(self.users),
            service_users=self.service_users,
            keys=self.dataset.keys,
            as_of=self.dataset.as_of,
            api_keys=self.dataset.api_keys,
            ip_rules=self.dataset.ip_rules,
            guest_access=self.dataset.guest_access,
            report_library=self.dataset.report_library,
        )


# --------------------------------------------------------------------------------------------
# response shapes


def _container_json(container: Mapping[str, Any]) -> JsonObject:
    return {
        "id": container["id"],
        "public_id": container.get("public_id", f"{container['id']:032x}"),
        "name": container["name"],
        "parent_id": container["parent_id"],
        "template_id": container.get("template_id", 5),
        "ekey": container.get("ekey", ""),
        "has_logo": container.get("has_logo", False),
        "is_active": container.get("is_active", True),
    }


def _format_date(value: str, form: Literal["iso", "docs"]) -> str:
    parsed = datetime.fromisoformat(value)
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    parsed = parsed.astimezone(UTC).replace(microsecond=0)
    if form == "docs":
        return parsed.strftime("%Y-%m-%d %H:%M:%S")
    return parsed.isoformat()


_DATASET_ONLY = {"container_id", "container_assignment_ids", "is_saml_sso_only"}
#: The list response's scalar keys, in the real response's order (§2.2).
_LIST_KEYS = USER_KEY_ORDER[: USER_KEY_ORDER.index("last_login_date") + 1]


def _user_json(
    state: _State,
    user: Mapping[str, Any],
    *,
    detail: bool,
    with_container: bool = True,
    date_format: Literal["iso", "docs"] = "iso",
) -> JsonObject:
    """A user in API shape: the list form (§2.2) or the User info form (§3)."""
    out: JsonObject = {}
    for key in _LIST_KEYS:
        if key in user:  # optional keys are left out when unset, never null (§2.2)
            out[key] = user[key]
    if "last_login_date" in out:
        out["last_login_date"] = _format_date(out["last_login_date"], date_format if detail else "iso")
    if with_container:
        out["container"] = state.container_json[user["container_id"]]  # shared; never mutated
    out["access_roles"] = [dict(role) for role in user["access_roles"]]
    if detail:
        out["is_cert_central"] = True
        out["is_enterprise"] = True
        out["is_saml_sso_only"] = bool(user.get("is_saml_sso_only", False))
    out["type"] = user.get("type", "standard")
    assigned = user.get("container_assignment_ids", [])
    out["has_container_assignments"] = bool(user.get("has_container_assignments", bool(assigned)))
    if out["has_container_assignments"]:
        # Item shape UNCERTAIN (§2.2): modelled on `container`.
        out["container_assignments"] = [_container_json(state.containers[c]) for c in assigned]
    if detail:
        visible = state.descendants(assigned) if assigned else set(state.containers)
        out["container_visibility"] = [_container_json(state.containers[c]) for c in sorted(visible)]
    for key, value in user.items():  # pass through anything else the dataset carries
        if key not in out and key not in _DATASET_ONLY and key != "has_container_assignments":
            out[key] = value
    return out


def _error_body(code_message: tuple[str, str], *, as_object: bool) -> JsonObject:
    item = {"code": code_message[0], "message": code_message[1]}
    return {"errors": item if as_object else [item]}


_HTML_ERROR = """<!DOCTYPE html>
<html><head><title>{status} {reason}</title></head>
<body><h1>{status} {reason}</h1><p>The server is temporarily unable to service your request.</p>
<hr><p>Incident ID: sandbox-{incident}</p></body></html>
"""


_BOMBS: dict[int, bytes] = {}
_BOMB_LOCK = threading.Lock()
_MIB = 1 << 20


def gzip_bomb(size: int) -> bytes:
    """A valid gzip stream of ``size`` zero bytes (a whole number of MiB), cached per size.

    Each MiB of zeros is one deflate block after a full flush, identical every time, so the
    stream is that block repeated: nothing the size of the inflated data is ever allocated.
    """
    mebibytes = max(1, -(-size // _MIB))
    with _BOMB_LOCK:
        cached = _BOMBS.get(mebibytes)
        if cached is not None:
            return cached
        zeros = bytes(_MIB)
        deflate = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
        block = deflate.compress(zeros) + deflate.flush(zlib.Z_FULL_FLUSH)
        crc = 0
        for _ in range(mebibytes):
            crc = zlib.crc32(zeros, crc)
        end = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS).flush()
        header = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff"
        trailer = struct.pack("<II", crc, (mebibytes * _MIB) & 0xFFFFFFFF)
        bomb = header + block * mebibytes + end + trailer
        _BOMBS[mebibytes] = bomb
        return bomb


def _route_fault(faults: Faults, route: str) -> RouteFault | None:
    generic = "/user/{id}" if _USER_ID_PATH.fullmatch(route) and route != "/user/me" else None
    if _IP_RULES_PATH.fullmatch(route):
        generic = "/container/{id}/ip/rules"
    for pattern, answer in faults.route_faults:
        if pattern in (route, generic):
            return answer
    return None


_HTML_REFUSAL = """<!DOCTYPE html>
<html><head><title>{status} {reason}</title></head>
<body><h1>{status} {reason}</h1><p>{text}</p></body></html>
"""


def _html_refusal(status: int, text: str) -> str:
    reason = {403: "Forbidden", 404: "Not Found"}.get(status, "Error")
    return _HTML_REFUSAL.format(status=status, reason=reason, text=text)


# --------------------------------------------------------------------------------------------
# routing


@dataclass
class _Answer:
    status: int
    payload: object = None  # JSON-serialisable, or None for an empty body
    headers: dict[str, str] = field(default_factory=dict)
    html: str | None = None
    page_of_users: bool = False
    #: A body sent as is (the Report Library's CSV form).
    raw: bytes | None = None


class _Denied(Exception):
    def __init__(self, status: int, code_message: tuple[str, str]) -> None:
        super().__init__(code_message[0])
        self.status = status
        self.code_message = code_message


class _BadInput(Exception):
    pass


_USER_ID_PATH = re.compile(r"/user/(\d+)")
_ROLE_PATH = re.compile(r"/container/(\d+)/role")
_IP_RULES_PATH = re.compile(r"/container/(\d+)/ip/rules")
_USER_ROUTES = ("/user", "/user/api-only", "/service-user")
_SUBACCOUNT_PATH = re.compile(r"/account/subaccount(?:/(\d+))?")


def _flag(value: str | None) -> bool:
    return (value or "").strip().lower() in {"1", "true", "yes"}


def _int_param(query: Mapping[str, list[str]], name: str) -> int | None:
    values = query.get(name)
    if not values or values[-1] == "":
        return None
    try:
        return int(values[-1])
    except ValueError:
        raise _BadInput(f"'{name}' must be an integer") from None


class _Router:
    """Maps an authenticated GET to an answer, applying the key's permissions (§6.2)."""

    def __init__(self, state: _State, faults: Faults, key: Mapping[str, Any]) -> None:
        self.state = state
        self.faults = faults
        self.key = key
        self.user = state.by_id.get(key["user_id"]) or {}
        role_ids = {role["id"] for role in self.user.get("access_roles", [])}
        # Administrators and Managers can see users (§4.1, §6.2); others get 403 (UNCERTAIN).
        self.can_list = bool(role_ids & {1, 4})
        assigned = self.user.get("container_assignment_ids", [])
        restricted = bool(self.user.get("has_container_assignments", bool(assigned)))
        # A restricted user sees only its divisions and their sub-divisions (UNCERTAIN, §6.2).
        self.scope: set[int] | None = state.descendants(assigned) if restricted else None

    def route(self, path: str, query: Mapping[str, list[str]]) -> _Answer:
        restriction = self.key.get("restricted_to_role_id", 0)
        orders_only = restriction in (100, 101)  # users and containers are out of scope (§4.2)
        if path == "/account":
            return self._account()
        match = _SUBACCOUNT_PATH.fullmatch(path)
        if match:
            return self._subaccounts(query, match.group(1))
        users_or_containers = path in ("/user/me", *_USER_ROUTES) or bool(_USER_ID_PATH.fullmatch(path))
        if orders_only and (users_or_containers or path.startswith("/container")):
            raise _Denied(403, MISSING_PERMISSION)
        if path == "/user/me":
            return _Answer(200, self._detail(self.user))
        if path in _USER_ROUTES:
            if not self.can_list:
                raise _Denied(403, MISSING_PERMISSION)
            service = path != "/user"
            return self._list(query, service=service)
        match = _USER_ID_PATH.fullmatch(path)
        if match:
            return self._user(int(match.group(1)))
        if path == "/key":
            return self._api_keys(query)
        if path == "/account/guest-access":
            # Unset: guest access off (the account default). A 404 is a route fault (not-found).
            return _Answer(200, dict(self.state.dataset.guest_access or {"enabled": False}))
        match = _IP_RULES_PATH.fullmatch(path)
        if match:
            if int(match.group(1)) not in self.state.containers:
                raise _Denied(404, NOT_FOUND)
            return _Answer(200, {"ip_rules": [dict(rule) for rule in self.state.dataset.ip_rules]})
        if path == "/container":
            return _Answer(200, {"containers": [_container_json(c) for c in self._visible_containers()]})
        match = _ROLE_PATH.fullmatch(path)
        if match:
            container_id = int(match.group(1))
            if container_id not in self.state.containers:
                raise _Denied(404, NOT_FOUND)
            roles = [{"id": role_id, "name": name} for role_id, name in ROLE_NAMES.items()]
            return _Answer(200, {"access_roles": roles})
        raise _Denied(404, ROUTE_NOT_FOUND)

    def _api_keys(self, query: Mapping[str, list[str]]) -> _Answer:
        """``GET /key`` (§11.1): Administrators and Managers only (UNCERTAIN); paged only when
        ``Faults.key_page_size`` is set, since whether the real list pages is UNCERTAIN."""
        if not self.can_list:
            raise _Denied(403, MISSING_PERMISSION)
        keys = [dict(k) for k in self.state.dataset.api_keys]
        owner = _int_param(query, "user_id")
        if owner is not None:
            keys = [k for k in keys if isinstance(k.get("user"), dict) and k["user"].get("id") == owner]
        size = self.faults.key_page_size
        if not size:
            return _Answer(200, {"api_keys": keys})
        limit = min(_int_param(query, "limit") or size, size)
        offset = _int_param(query, "offset") or 0
        page = keys[offset : offset + limit]
        return _Answer(200, {"api_keys": page, "page": {"total": len(keys), "limit": limit, "offset": offset}})

    def _subaccounts(self, query: Mapping[str, list[str]], one: str | None) -> _Answer:
        """``GET /account/subaccount[/{id}]`` (§11.6): an Administrator's key of an account that has
        subaccounts (``Dataset.subaccounts`` set); any other account answers 404, any other key 403."""
        subaccounts = self.state.dataset.subaccounts
        if subaccounts is None:
            raise _Denied(404, ROUTE_NOT_FOUND)
        if not self.can_list or self.scope is not None:
            raise _Denied(403, MISSING_PERMISSION)
        if one is not None:
            found = next((s for s in subaccounts if s["id"] == int(one)), None)
            if found is None:
                raise _Denied(404, NOT_FOUND)
            return _Answer(200, dict(found))
        limit = min(_int_param(query, "limit") or MAX_LIMIT, MAX_LIMIT)
        offset = _int_param(query, "offset") or 0
        full = self.faults.subaccount_list_shape == "full"
        page = [dict(s) if full else {k: v for k, v in s.items() if k != "master_user"}
                for s in subaccounts[offset : offset + limit]]
        return _Answer(200, {"accounts": page, "page": {"total": len(subaccounts), "limit": limit, "offset": offset}})

    def _visible_containers(self) -> list[JsonObject]:
        containers = self.state.dataset.containers
        return [c for c in containers if self.scope is None or c["id"] in self.scope]

    def _account(self) -> _Answer:
        account = dict(self.state.dataset.account)
        account["root_container_id"] = self.state.root_id
        return _Answer(200, account)

    def _detail(self, user: Mapping[str, Any]) -> JsonObject:
        return _user_json(self.state, user, detail=True, date_format=self.faults.detail_date_format)

    def _user(self, user_id: int) -> _Answer:
        if user_id == self.user.get("id"):
            return _Answer(200, self._detail(self.user))
        if not self.can_list:
            raise _Denied(403, MISSING_PERMISSION)
        user = self.state.by_id.get(user_id)
        # Unknown id → 404 not_found (UNCERTAIN, §5.2); outside a restricted key's scope → 403.
        if user is None:
            raise _Denied(404, NOT_FOUND)
        if self.scope is not None and user["container_id"] not in self.scope:
            raise _Denied(403, MISSING_PERMISSION)
        return _Answer(200, self._detail(user))

    def _list(self, query: Mapping[str, list[str]], *, service: bool) -> _Answer:
        limit = _int_param(query, "limit")
        offset = _int_param(query, "offset") or 0
        if (limit is not None and limit < 0) or offset < 0:
            raise _BadInput("'limit' and 'offset' must not be negative")
        if not limit:
            limit = DEFAULT_LIMIT
        cap = self.faults.max_limit
        if limit > cap:
            if self.faults.limit_over_1000 == "reject":
                raise _BadInput(f"'limit' must be at most {cap}")
            limit = cap
        matches = self._filtered(self.state.service_users if service else self.state.users, query)
        page = matches[offset : offset + limit]
        with_container = not _flag((query.get("without_container") or [""])[-1])
        users = [_user_json(self.state, u, detail=False, with_container=with_container) for u in page]
        body = {"users": users, "page": {"total": len(matches), "limit": limit, "offset": offset}}
        return _Answer(200, body, page_of_users=not service)

    def _filtered(self, users: Sequence[JsonObject], query: Mapping[str, list[str]]) -> Sequence[JsonObject]:
        container_id = _int_param(query, "container_id")
        role_id = _int_param(query, "access_role_id")
        search = (query.get("filters[search]") or [""])[-1]
        status = (query.get("filters[status]") or [""])[-1]
        if self.scope is None and container_id is None and role_id is None and not search and not status:
            return users  # the common case stays O(page) for 100k-user accounts
        scope = self.scope
        contains = search.startswith("%")  # `%25` in the URL: "contains"; otherwise exact (§2.1)
        needle = (search[1:] if contains else search).casefold()

        def keep(user: JsonObject) -> bool:
            if scope is not None and user["container_id"] not in scope:
                return False
            if container_id is not None and user["container_id"] != container_id:
                return False
            if role_id is not None and all(role["id"] != role_id for role in user["access_roles"]):
                return False
            if status and user["status"] != status:
                return False
            if search:
                fields = (user["username"], user["first_name"], user["last_name"], user["email"])
                folded = [f.casefold() for f in fields]
                return any(needle in f for f in folded) if contains else needle in folded
            return True

        return [user for user in users if keep(user)]


# --------------------------------------------------------------------------------------------
# HTTP


class _RateLimiter:
    """Rolling windows per key (§5.3); only admitted requests count towards a window."""

    def __init__(self) -> None:
        self._seen: dict[str, deque[float]] = {}

    def admit(self, key: str, windows: Sequence[tuple[int, float]], now: float) -> bool:
        if not windows:
            return True
        history = self._seen.setdefault(key, deque())
        longest = max(seconds for _, seconds in windows)
        while history and history[0] <= now - longest:
            history.popleft()
        for count, seconds in windows:
            recent = 0
            for moment in reversed(history):  # newest first; stop at the window's edge
                if moment <= now - seconds:
                    break
                recent += 1
            if recent >= count:
                return False
        history.append(now)
        return True

    def reset(self) -> None:
        self._seen.clear()


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    sandbox: SandboxServer

    def __init__(self, address: tuple[str, int], sandbox: SandboxServer) -> None:
        self.sandbox = sandbox
        self._open: set[socket.socket] = set()
        self._open_lock = threading.Lock()
        super().__init__(address, _Handler)

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._open_lock:
            self._open.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self._open_lock:
            self._open.discard(request)
        super().shutdown_request(request)

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that hangs up is normal (and the reset fault causes it); anything else is a bug."""
        if isinstance(sys.exc_info()[1], ConnectionError | TimeoutError):
            return
        super().handle_error(request, client_address)

    def close_open_connections(self) -> None:
        """Unblock handler threads waiting on idle keep-alive connections."""
        with self._open_lock:
            sockets = list(self._open)
        for sock in sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as the real API (and httpx's pool) expects
    timeout = 60  # idle keep-alive connections end after a minute
    disable_nagle_algorithm = True  # headers and body go out in separate writes

    server: _HTTPServer

    def version_string(self) -> str:
        return "nginx"

    def log_message(self, format: str, *args: Any) -> None:
        """Silenced: the stdlib would log the request line; requests are recorded instead."""

    def do_GET(self) -> None:
        self.server.sandbox._handle(self)

    def _not_allowed(self) -> None:
        self.close_connection = True  # the body (if any) is left unread, so end the connection
        self.server.sandbox._handle(self)

    do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = do_TRACE = _not_allowed

    def send(self, status: int, body: bytes, headers: Mapping[str, str], *, cut: bool = False, drip: int = 0) -> None:
        """Write one response; ``cut`` announces the full length but closes half-way; ``drip``
        sends the whole answer, status line and headers included, at that many bytes per second."""
        if drip > 0:
            reason = self.responses.get(status, ("",))[0]
            lines = [f"{self.protocol_version} {status} {reason}", f"Server: {self.version_string()}"]
            lines += [f"{name}: {value}" for name, value in headers.items()]
            lines.append(f"Content-Length: {len(body)}")
            raw = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + (b"" if self.command == "HEAD" else body)
            for start in range(0, len(raw), drip):
                self.wfile.write(raw[start : start + drip])
                self.wfile.flush()
                time.sleep(1.0)
            return
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        if self.close_connection and not cut:
            self.send_header("Connection", "close")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body[: len(body) // 2] if cut else body)
        if cut:
            self.wfile.flush()
            self.close_connection = True


class SandboxServer:
    """The fake CertCentral on loopback: ``with SandboxServer(default_dataset()) as s: s.base_url``.

    The socket is bound on construction (so ``base_url`` is known before serving); ``start()``
    serves on a background thread, ``serve_forever()`` in the calling one, ``stop()`` closes it.
    """

    def __init__(
        self,
        dataset: Dataset,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        faults: Faults = Faults(),
        on_request: Callable[[RecordedRequest], None] | None = None,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        """``ssl_context`` (server side, with a certificate loaded) serves HTTPS instead of HTTP."""
        self._lock = threading.Lock()
        self._faults = faults
        self._state = _State(dataset, seed=faults.seed)
        self._rng = random.Random(faults.seed)  # noqa: S311 - deterministic faults, not security
        self._limiter = _RateLimiter()
        self._recorded: deque[RecordedRequest] = deque(maxlen=_MAX_RECORDED)
        self._on_request = on_request
        self._thread: threading.Thread | None = None
        self._closed = False
        self._serving = threading.Event()
        self._httpd = _HTTPServer((host, port), self)
        self._scheme = "http"
        if ssl_context is not None:
            self._httpd.socket = ssl_context.wrap_socket(self._httpd.socket, server_side=True)
            self._scheme = "https"
        self.host = host
        self.port = int(self._httpd.server_address[1])

    # -- lifecycle ---------------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        """The Services API base URL, e.g. ``http://127.0.0.1:8123/services/v2``."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self._scheme}://{host}:{self.port}{API_PREFIX}"

    @property
    def report_library_url(self) -> str:
        """The Report Library base URL, e.g. ``http://127.0.0.1:8123/reports/v1`` (§11.5)."""
        return self.base_url[: -len(API_PREFIX)] + reports.REPORTS_PREFIX

    def start(self) -> SandboxServer:
        """Serve on a daemon thread; returns self."""
        if self._closed:
            raise RuntimeError("this SandboxServer was stopped; create a new one")
        if self._thread is None and not self._serving.is_set():
            self._serving.set()
            self._thread = threading.Thread(
                target=self._httpd.serve_forever,
                kwargs={"poll_interval": 0.05},
                name=f"sandbox-{self.port}",
                daemon=True,
            )
            self._thread.start()
        return self

    def serve_forever(self) -> None:
        """Serve in the calling thread until ``stop()`` (from another thread) or Ctrl-C."""
        if self._closed:
            raise RuntimeError("this SandboxServer was stopped; create a new one")
        self._serving.set()
        try:
            self._httpd.serve_forever(poll_interval=0.1)
        finally:
            self._close()

    def stop(self) -> None:
        """Stop serving and close the socket and any open connections; safe to call twice."""
        if self._serving.is_set() and not self._closed:
            self._httpd.shutdown()  # returns once the serving loop has ended
        if self._thread is not None:
            self._thread.join()
        self._close()

    def _close(self) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
        self._httpd.close_open_connections()
        self._httpd.server_close()

    def __enter__(self) -> SandboxServer:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    # -- control -----------------------------------------------------------------------------

    def set_dataset(self, dataset: Dataset) -> None:
        """Serve another dataset from the next request on (churn starts over)."""
        state = _State(dataset, seed=self._faults.seed)
        with self._lock:
            self._state = state

    def set_faults(self, faults: Faults) -> None:
        """Switch faults from the next request on; resets the fault sequence and rate windows."""
        with self._lock:
            self._faults = faults
            self._rng = random.Random(faults.seed)  # noqa: S311 - deterministic faults
            self._limiter.reset()

    @property
    def faults(self) -> Faults:
        return self._faults

    @property
    def dataset(self) -> Dataset:
        """The account as currently served, including users added or removed by churn."""
        with self._lock:
            return self._state.current_dataset()

    @property
    def requests(self) -> tuple[RecordedRequest, ...]:
        """Every request received so far (the most recent 200,000), oldest first."""
        with self._lock:
            return tuple(self._recorded)

    def clear_requests(self) -> None:
        with self._lock:
            self._recorded.clear()

    # -- request handling --------------------------------------------------------------------

    def _handle(self, handler: _Handler) -> None:
        split = urlsplit(handler.path)
        path, raw_query = split.path, split.query
        with self._lock:
            faults, state = self._faults, self._state
            # Draw the same number of values for every request so faults stay reproducible.
            draws = [self._rng.random() for _ in range(5)]
            error_status = self._rng.choice(faults.error_statuses) if faults.error_statuses else 500
        devkey = handler.headers.get("X-DC-DEVKEY")
        key = state.keys.get(devkey) if devkey is not None else None
        label = key["label"] if key is not None else "unknown"
        if faults.latency_ms > 0:
            time.sleep(faults.latency_ms / 1000)

        cut = False
        answer = self._answer(handler.command, path, raw_query, key, faults, state, draws, error_status)
        body: bytes
        headers = {"Content-Type": "application/json", "Cache-Control": "private,no-cache"}
        if answer.html is not None:
            headers["Content-Type"] = "text/html"
            body = answer.html.encode()
        elif answer.raw is not None:
            headers["Content-Type"] = "text/csv"
            body = answer.raw
        elif answer.payload is None:
            body = b""
        else:
            body = json.dumps(answer.payload, ensure_ascii=False).encode()
        headers.update(answer.headers)
        if faults.echo_request_headers != "off":
            seen = "\n".join(f"{name}: {value}" for name, value in handler.headers.items())
            if faults.echo_request_headers == "header":
                headers["X-Debug-Request"] = base64.b64encode(seen.encode()).decode()
            elif answer.status == 404:
                headers["Content-Type"] = "text/html"
                body = _html_refusal(404, "No route for this request:<pre>\n" + seen + "</pre>").encode()
        if answer.status == 200 and faults.gzip_bomb_bytes > 0 and answer.page_of_users:
            headers["Content-Encoding"] = "gzip"
            body = gzip_bomb(faults.gzip_bomb_bytes)
        if answer.status == 200:
            if draws[2] < faults.truncated_json_rate:
                body = body[: max(1, len(body) // 2)]
            elif draws[3] < faults.empty_body_rate:
                body = b""
            elif draws[4] < faults.reset_rate:
                cut = True
            if answer.page_of_users and faults.churn_between_pages > 0:
                with self._lock:
                    if self._state is state:
                        state.churn(faults.churn_between_pages)
        record = RecordedRequest(handler.command, path, raw_query, answer.status, label)
        with self._lock:
            self._recorded.append(record)
        if self._on_request is not None:
            self._on_request(record)
        handler.send(answer.status, body, headers, cut=cut, drip=faults.drip_bytes_per_second)

    def _answer(
        self,
        method: str,
        path: str,
        raw_query: str,
        key: Mapping[str, Any] | None,
        faults: Faults,
        state: _State,
        draws: Sequence[float],
        error_status: int,
    ) -> _Answer:
        as_object = faults.errors_as_object

        def error(status: int, code_message: tuple[str, str]) -> _Answer:
            answer = _Answer(status, _error_body(code_message, as_object=as_object))
            if status in (429, 503) and faults.retry_after is not None:
                answer.headers["Retry-After"] = str(faults.retry_after)
            if status >= 500 and faults.non_json_errors:
                reason = {
                    500: "Internal Server Error",
                    502: "Bad Gateway",
                    503: "Service Unavailable",
                    504: "Gateway Timeout",
                }.get(status, "Error")
                answer.payload = None
                answer.html = _HTML_ERROR.format(status=status, reason=reason, incident=int(draws[0] * 1e9))
            return answer

        if method != "GET":  # the tool never writes; tests check that none arrived
            answer = error(405, ("method_not_allowed", f"The {method} method is not allowed here."))
            answer.headers["Allow"] = "GET"
            return answer
        if key is None:
            # Missing and unknown keys get the same VERIFIED body (the missing case is UNCERTAIN, §5.2).
            return error(403, INVALID_KEY)
        with self._lock:
            admitted = self._limiter.admit(key["key"], faults.rate_limits, time.monotonic())
        if not admitted:
            return error(429, RATE_LIMITED)
        if path.startswith(reports.REPORTS_PREFIX + "/"):
            return self._report_answer(path, raw_query, key, faults, state, error)
        if not path.startswith(API_PREFIX + "/"):
            return error(404, ROUTE_NOT_FOUND)
        route = path[len(API_PREFIX) :].rstrip("/") or "/"
        query = parse_qs(raw_query, keep_blank_values=True)
        if faults.fail_offset is not None and route == "/user":
            offset = (query.get("offset") or ["0"])[-1]
            if offset.strip() == str(faults.fail_offset) or (not offset and faults.fail_offset == 0):
                return error(500, _SERVER_ERRORS[500])
        if draws[1] < faults.error_rate:
            return error(error_status, _SERVER_ERRORS.get(error_status, ("server_error", "Server error")))
        fault = _route_fault(faults, route)
        if fault == "missing-permission":
            return error(403, MISSING_PERMISSION)
        if fault == "route-not-found":
            return error(404, ROUTE_NOT_FOUND)
        if fault == "not-found":
            return error(404, NOT_FOUND)
        if fault in ("html-403", "html-404"):
            status = 403 if fault == "html-403" else 404
            return _Answer(status, html=_html_refusal(status, "Request blocked by the gateway."))
        if fault == "server-error":
            return error(500, _SERVER_ERRORS[500])
        try:
            answer = _Router(state, faults, key).route(route, query)
            if faults.page_total is not None and answer.page_of_users and isinstance(answer.payload, dict):
                answer.payload["page"]["total"] = faults.page_total
            return answer
        except _Denied as denied:
            return error(denied.status, denied.code_message)
        except _BadInput as bad:
            code = "invalid_limit" if "limit" in str(bad) and "at most" in str(bad) else "invalid_input"
            return error(400, (code, str(bad) + "."))

    def _report_answer(
        self,
        path: str,
        raw_query: str,
        key: Mapping[str, Any],
        faults: Faults,
        state: _State,
        error: Callable[[int, tuple[str, str]], _Answer],
    ) -> _Answer:
        """A Report Library GET (``auditor/sandbox/reports.py``), with the route faults applied."""
        route = path[len(reports.REPORTS_PREFIX) :].rstrip("/") or "/"
        fault = _route_fault(faults, reports.route_name(route))
        if fault == "missing-permission":
            return error(403, MISSING_PERMISSION)
        if fault in ("route-not-found", "not-found"):
            return error(404, ROUTE_NOT_FOUND if fault == "route-not-found" else NOT_FOUND)
        if fault in ("html-403", "html-404"):
            status = 403 if fault == "html-403" else 404
            return _Answer(status, html=_html_refusal(status, "Request blocked by the gateway."))
        if fault == "server-error":
            return error(500, _SERVER_ERRORS[500])
        user = state.by_id.get(key["user_id"]) or {}
        got = reports.answer(
            state.dataset.report_library,
            as_of=state.dataset.as_of,
            route=route,
            query=parse_qs(raw_query, keep_blank_values=True),
            key=key,
            key_roles={role["id"] for role in user.get("access_roles", [])},
            download_path=faults.report_download_path,
            json_keys=faults.report_json_keys,
            view_only=faults.report_view_only,
        )
        if got.error is not None:
            return error(got.status, got.error)
        return _Answer(got.status, got.payload, raw=got.raw)
