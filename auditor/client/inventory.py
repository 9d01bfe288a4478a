"""The credential inventory a pull reads (§11): ``GET /key`` (paged when it says so), the top
container's IP rules, and guest access; a documented refusal makes a part not evaluable."""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from auditor.client.errors import error_code, json_object
from auditor.client.paging import FOLLOW_UP_PAGES, Refusal
from auditor.client.results import GROUP_GUEST, GROUP_IP, GROUP_KEYS, Run
from auditor.client.session import Session
from auditor.errors import ApiBadResponseError
from auditor.models import GUEST_ACCESS_PATH, KEY_LIST_PATH, User, ip_rules_path
from auditor.parsing import has_bool, has_list, top_container, valid_key_list

#: What the IP-rule and guest-access reads tolerate as "not available here" (§11.2, §11.3:
#: 403 missing_permission, or 404 not_found when the feature is not on the account).
_CREDENTIAL_REFUSALS = frozenset({403, 404})


def read_credentials(
    session: Session,
    run: Run,
    *,
    page_size: int,
    max_users: int,
    me: User | None,
    users: Iterable[User],
    notes: list[str],
) -> list[str]:
    """Read ``GET /key``, the IP rules and guest access; return the parts not evaluable.

    Every answer passes through ``Session.get`` (echoed-key scan, byte caps, deadline, retries) and
    is kept as a raw page, refusals too, so the inventory is re-derivable from evidence.
    """
    missing: list[str] = []
    if not _read_keys(session, run, notes, page_size=page_size, max_users=max_users):
        missing.append("api_keys")
    top = top_container(me, users)
    if top is None:
        missing.append("ip_rules")
        notes.append(
            "IP rules were NOT read: no top-level division (parent_id 0) appears in GET /user/me or "
            "the users, so the container to ask is unknown. Use a key linked to an unrestricted "
            "Administrator."
        )
    elif not _read_part(
        session, run, ip_rules_path(top), group=GROUP_IP, part="IP rules", valid=has_list("ip_rules"), notes=notes
    ):
        missing.append("ip_rules")
    if not _read_part(
        session, run, GUEST_ACCESS_PATH, group=GROUP_GUEST, part="Guest access", valid=has_bool("enabled"), notes=notes
    ):
        missing.append("guest_access")
    return missing


def _read_part(
    session: Session,
    run: Run,
    endpoint: str,
    *,
    group: int,
    part: str,
    valid: Callable[[Mapping[str, Any]], str | None],
    notes: list[str],
    offset: int = 0,
) -> bool:
    """One credential answer: True when read, False for a documented refusal (with a note)."""
    response = session.get(run, endpoint, tolerate=_CREDENTIAL_REFUSALS)
    run.keep((group, 0, offset), session.raw(endpoint, response))
    if response.status_code in _CREDENTIAL_REFUSALS:
        code = error_code(response.content)
        refusal = Refusal(path=endpoint, status=response.status_code, code=code, response=response)
        # /key has no documented 404 (§11.1): only the missing-permission 403 means "not for this key".
        documented = refusal.documented and not (endpoint.startswith(KEY_LIST_PATH) and refusal.status == 404)
        if not documented:
            raise session.error_for(endpoint, response)
        notes.append(
            f"{part} NOT read (GET {endpoint.split('?', 1)[0]} answered {refusal.status} {code}: "
            'CertCentral\'s answer for "not available to this key"): not evaluable, unknown rather '
            "than none. Use a key whose user may read it (see README: what the key needs)."
        )
        return False
    problem = valid(json_object(endpoint, response))
    if problem is not None:
        raise ApiBadResponseError(f"CertCentral answered GET {endpoint} {problem}.")
    return True


def _read_keys(session: Session, run: Run, notes: list[str], *, page_size: int, max_users: int) -> bool:
    """``GET /key``, paged only when the answer carries a ``page`` object (§11.1 UNCERTAIN)."""
    if not _read_part(
        session, run, KEY_LIST_PATH, group=GROUP_KEYS, part="API keys", valid=valid_key_list, notes=notes
    ):
        return False
    first = json.loads(run.raw_pages_of(GROUP_KEYS)[0].body)
    page = first.get("page")
    announced = page.get("total") if isinstance(page, Mapping) else None
    seen = {item["id"] for item in first["api_keys"]}
    if not isinstance(announced, int) or isinstance(announced, bool) or announced <= len(first["api_keys"]):
        return True
    total: int = announced
    if total > max_users:
        raise ApiBadResponseError(
            f"CertCentral answered GET {KEY_LIST_PATH} with page.total {total:,}, more than the "
            f"{max_users:,} records this tool accepts; the pull was refused.",
            hint=f"If the account really has that many keys, raise the limit: `auditor --max-users {total} pull`.",
        )
    echoed = page.get("limit") if isinstance(page, Mapping) else None
    step: int = (
        echoed
        if isinstance(echoed, int) and not isinstance(echoed, bool) and echoed > 0
        else len(first["api_keys"]) or page_size
    )
    offset = step
    for _ in range(math.ceil(total / step) + FOLLOW_UP_PAGES):
        if offset >= total and len(seen) >= total:
            break
        endpoint = f"{KEY_LIST_PATH}?limit={step}&offset={offset}"
        response = session.get(run, endpoint)
        run.keep((GROUP_KEYS, 0, offset), session.raw(endpoint, response))
        data = json_object(endpoint, response)
        problem = valid_key_list(data)
        if problem is not None:
            raise ApiBadResponseError(f"CertCentral answered GET {endpoint} {problem}.")
        if not data["api_keys"]:
            break
        seen.update(item["id"] for item in data["api_keys"])
        offset += step
    if len(seen) != total:
        # All or nothing: a key list that does not add up cannot say which keys exist.
        raise ApiBadResponseError(
            f"GET {KEY_LIST_PATH} did not add up: page.total {total}, {len(seen)} distinct keys received. "
            "Keys were probably added or removed while paging; pull again.",
            hint="Run `auditor pull` again.",
        )
    return True


# -- pull steps --------------------------------------------------------------------------
