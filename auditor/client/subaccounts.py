"""``GET /account/subaccount`` (§11.6): the subaccounts an MSP or partner key lists, to connect each with its own key.

VERIFIED: paged (``limit`` up to 1000, ``offset``); ``GET /account/subaccount/{id}`` carries
``master_user{email, container_id}``. Whether the list entries carry ``master_user`` too is
UNCERTAIN, so an entry without it is completed from ``GET /account/subaccount/{id}``. The list key
is read as ``accounts`` (or ``subaccounts``); the name as ``name`` (or ``account_name``).
A subaccount's users are never read with the parent's key here (UNCERTAIN whether it may): each
subaccount is connected with its own key, so its evidence is its own.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from auditor.client.errors import error_code, json_object
from auditor.client.results import Run
from auditor.client.session import Session
from auditor.errors import ApiBadResponseError, PermissionDeniedError
from auditor.models import Subaccount
from auditor.parsing import is_int

SUBACCOUNT_PATH = "/account/subaccount"
#: The documented maximum page (§11.6).
PAGE_SIZE = 1000
#: More subaccounts than this is not an account anyone connects one by one.
MAX_SUBACCOUNTS = 100_000


def list_subaccounts(session: Session, run: Run) -> tuple[Subaccount, ...]:
    """Every page of the listing, each entry with its master user; a refusal is PermissionDeniedError."""
    records: dict[int, Mapping[str, Any]] = {}
    offset = 0
    while offset < MAX_SUBACCOUNTS:
        endpoint = f"{SUBACCOUNT_PATH}?limit={PAGE_SIZE}&offset={offset}"
        response = session.get(run, endpoint, tolerate=frozenset({403, 404}))
        if response.status_code in (403, 404):
            raise _refused(response.status_code, error_code(response.content))
        data = json_object(endpoint, response)
        entries = data.get("accounts", data.get("subaccounts"))
        if not isinstance(entries, list) or not all(isinstance(e, Mapping) and is_int(e.get("id")) for e in entries):
            raise ApiBadResponseError(f"CertCentral answered GET {endpoint} without a list of accounts with ids.")
        for entry in entries:
            records.setdefault(int(entry["id"]), entry)
        page = data.get("page")
        total = page.get("total") if isinstance(page, Mapping) else None
        offset += len(entries)
        if not entries or not isinstance(total, int) or offset >= total:
            break
    found = []
    for subaccount_id, entry in sorted(records.items()):
        if not isinstance(entry.get("master_user"), Mapping):
            endpoint = f"{SUBACCOUNT_PATH}/{subaccount_id}"
            entry = {**entry, **json_object(endpoint, session.get(run, endpoint))}
        found.append(_subaccount(subaccount_id, entry))
    return tuple(found)


def _subaccount(subaccount_id: int, entry: Mapping[str, Any]) -> Subaccount:
    master = entry.get("master_user")
    master = master if isinstance(master, Mapping) else {}
    name = entry.get("name", entry.get("account_name"))
    container = master.get("container_id")
    return Subaccount(
        id=subaccount_id,
        name=name if isinstance(name, str) else "",
        status=str(entry.get("status") or ""),
        master_email=str(master.get("email") or ""),
        master_container_id=container if isinstance(container, int) and not isinstance(container, bool) else None,
    )


def _refused(status: int, code: str) -> PermissionDeniedError:
    return PermissionDeniedError(
        f"This key may not list subaccounts: GET {SUBACCOUNT_PATH} answered {status} {code or '(no error code)'}. "
        "Only an Administrator's key of an account with subaccounts (MSP or partner accounts) can.",
        hint="Connect each account with its own key instead: `auditor connect --connection NAME --key-stdin`.",
    )
