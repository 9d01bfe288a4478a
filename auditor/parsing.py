"""The one parser from CertCentral's JSON to models, for live answers and stored raw pages alike.

A pull (``auditor.client``) and its later re-checks (export's store check, ``verify --reperform``)
must turn the same bytes into the same users; this module is that parser, so they share it without
the re-checks importing the client (nothing here sends a request). It imports only models and errors.
"""

from __future__ import annotations

import hashlib
import json
import types
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import urlsplit

from auditor.errors import ApiBadResponseError
from auditor.models import CredentialInventory, RawPage, User

__all__ = [
    "KEY_CHECK_ENDPOINT",
    "LIST_PATHS",
    "DerivedUsers",
    "RecordDigests",
    "credentials_from_raw_pages",
    "has_bool",
    "has_list",
    "is_int",
    "record_digest",
    "top_container",
    "users_from_raw_pages",
    "users_from_records",
    "valid_key_list",
]

#: The key's own user (§3).
KEY_CHECK_ENDPOINT = "/user/me"
#: The user list, then the two documented paths of the service-user list (§4.3).
LIST_PATHS = ("/user", "/user/api-only", "/service-user")


def is_int(value: object) -> bool:
    """A JSON whole number (``True`` is not one)."""
    return isinstance(value, int) and not isinstance(value, bool)


def record_digest(raw_user: Mapping[str, Any]) -> str:
    """SHA-256 of a user's list record as canonical JSON, ignoring ``last_login_date``.

    Used to decide whether ``GET /user/{id}`` must be called again: a sign-in alone changes
    nothing that the detail call adds, so it should not cost a request.
    """
    stable = {key: value for key, value in raw_user.items() if key != "last_login_date"}
    canonical = json.dumps(stable, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    # Lone surrogates are valid in JSON (a "\\ud800" escape) though not in UTF-8: keep them hashable.
    return hashlib.sha256(canonical.encode("utf-8", "surrogatepass")).hexdigest()


def top_container(me: User | None, users: Iterable[User]) -> int | None:
    """The top-level container's id (§11.2): the key user's division when it is the root
    (``parent_id`` 0), else the first root division any listed user is in."""
    candidates = [me] if me is not None else []
    candidates.extend(sorted(users, key=lambda u: u.id))
    for user in candidates:
        division = user.division
        if division is not None and division.parent_id == 0:
            return division.id
    return None


def has_list(name: str) -> Callable[[Mapping[str, Any]], str | None]:
    """A check that an answer has a ``name`` list of objects with numeric ids; it names what is wrong."""

    def check(data: Mapping[str, Any]) -> str | None:
        items = data.get(name)
        if not isinstance(items, list):
            return f"without an '{name}' list"
        for index, item in enumerate(items):
            if not isinstance(item, Mapping) or not is_int(item.get("id")):
                return f"with {name} #{index} that has no numeric id"
        return None

    return check


def has_bool(name: str) -> Callable[[Mapping[str, Any]], str | None]:
    """A check that an answer has a true/false ``name``; it names what is wrong."""

    def check(data: Mapping[str, Any]) -> str | None:
        return None if isinstance(data.get(name), bool) else f"without a true/false '{name}'"

    return check


#: The shape of a ``GET /key`` answer (§11.1).
valid_key_list = has_list("api_keys")


def credentials_from_raw_pages(pages: Sequence[RawPage]) -> CredentialInventory:
    """The credential inventory of a pull, parsed again from its raw pages (see models)."""
    return CredentialInventory.from_raw_pages(pages)


class RecordDigests(Mapping[int, str]):
    """User id -> :func:`record_digest` of its list record, each computed when first read.

    The digests serve only ``--details`` (is a user's ``GET /user/{id}`` still current?); at about
    20 µs a user they were a third of a pull's parsing, so a pull without details computes none.
    """

    __slots__ = ("_digests", "_load", "_records")

    def __init__(
        self, records: Mapping[int, Mapping[str, Any]] | None = None, *, pages: Sequence[RawPage] = ()
    ) -> None:
        """Digests of ``records``, or of the list records in ``pages``, parsed again when first
        read: a pull without details then keeps no parsed records alive while it is stored."""
        self._records = records
        self._load = pages
        self._digests: dict[int, str] = {}

    @property
    def records(self) -> Mapping[int, Mapping[str, Any]]:
        if self._records is None:
            self._records = _merged_records(self._load, details_fetched=False)[0]
            self._load = ()
        return self._records

    def __getitem__(self, user_id: int) -> str:
        digest = self._digests.get(user_id)
        if digest is None:
            digest = self._digests[user_id] = record_digest(self.records[user_id])
        return digest

    def __iter__(self) -> Iterator[int]:
        return iter(self.records)

    def __len__(self) -> int:
        return len(self.records)


def users_from_records(
    records: Mapping[int, Mapping[str, Any]], service_ids: set[int]
) -> tuple[dict[int, User], RecordDigests]:
    """The users and record digests of merged list records: the one parser pull and export share."""
    users = {user_id: User.from_api(record, service_user=user_id in service_ids) for user_id, record in records.items()}
    return users, RecordDigests(records)


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
    records, service, saml = _merged_records(pages, details_fetched=details_fetched)
    users, digests = users_from_records(records, service)
    if details_fetched:
        users = {uid: replace(user, is_saml_sso_only=saml.get(uid)) for uid, user in users.items()}
    return DerivedUsers(
        users=types.MappingProxyType(users),
        record_digests=types.MappingProxyType(digests),
        detailed=frozenset(saml),
    )


def _merged_records(
    pages: Sequence[RawPage], *, details_fetched: bool
) -> tuple[dict[int, Mapping[str, Any]], set[int], dict[int, bool | None]]:
    """The list records of stored raw pages merged as the pull merged them, the service users'
    ids, and ``is_saml_sso_only`` per user-info page (when ``details_fetched``)."""
    listing: dict[int, Mapping[str, Any]] = {}
    service: dict[int, Mapping[str, Any]] = {}
    saml: dict[int, bool | None] = {}
    for page in pages:
        path = urlsplit(page.endpoint).path
        if path in LIST_PATHS:
            if page.status != 200:
                continue  # a service-user list that does not exist here (404)
            target = listing if path == LIST_PATHS[0] else service
            for record in _page_records(page):
                target.setdefault(record["id"], record)
        elif path.startswith("/user/") and path[len("/user/") :].isdigit() and details_fetched:
            user_id = int(path[len("/user/") :])
            value = _page_object(page).get("is_saml_sso_only") if page.status == 200 else None
            saml[user_id] = value if isinstance(value, bool) else None
    records = dict(listing)
    for user_id, record in service.items():
        records.setdefault(user_id, record)
    return records, set(service), saml


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
    if not isinstance(users, list) or not all(isinstance(r, Mapping) and is_int(r.get("id")) for r in users):
        raise ApiBadResponseError(f"The stored answer to GET {page.endpoint} has no valid 'users' list.")
    return users
