"""How values become column text and back: times, roles, user and raw-page rows, provenance JSON.

Times are stored as fixed-width ISO-8601 UTC text (``2026-10-13T15:15:13.000000+00:00``), so
text order is time order, and returned as aware UTC datetimes.
"""

from __future__ import annotations

import hashlib
import json
import zlib
from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from auditor.errors import StoreError
from auditor.models import (
    Division,
    EndpointReconciliation,
    KeyOwner,
    Operator,
    PullProvenance,
    RawPage,
    Role,
    User,
)
from auditor.store.schema import _TEXT_FIELDS


def _time(value: datetime) -> str:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"naive datetime {value!r}: the store takes aware UTC datetimes")
    return value.astimezone(UTC).isoformat(timespec="microseconds")


def _opt_time(value: datetime | None) -> str | None:
    return None if value is None else _time(value)


def _parse_time(text: str) -> datetime:
    try:
        parsed = datetime.fromisoformat(text)
    except (TypeError, ValueError) as exc:
        raise StoreError(f"The database holds an unreadable timestamp {text!r}.") from exc
    if parsed.tzinfo is None:
        return parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def _opt_parse_time(text: str | None) -> datetime | None:
    return None if text is None else _parse_time(text)


def _roles_json(roles: tuple[Role, ...]) -> str:
    return json.dumps([[role.id, role.name] for role in roles], separators=(",", ":"))


def _division_list(division: Division) -> list[object]:
    return [division.id, division.name, division.parent_id]


def _escape_text(value: str) -> str | bytes:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return value.encode("utf-8", "surrogatepass")
    return value


def _unescape_text(value: str | bytes) -> str:
    return value.decode("utf-8", "surrogatepass") if isinstance(value, bytes) else value


def _provenance_json(provenance: PullProvenance) -> str:
    return json.dumps(
        {
            "connection": provenance.connection,
            "base_url": provenance.base_url,
            "account_id": provenance.account_id,
            "key_fingerprint": provenance.key_fingerprint,
            "tool_version": provenance.tool_version,
            "started_at": _time(provenance.started_at),
            "finished_at": _time(provenance.finished_at),
            "requests": provenance.requests,
            "pages": provenance.pages,
            "retries": provenance.retries,
            "expected_total": provenance.expected_total,
            "received": provenance.received,
            "complete": provenance.complete,
            "notes": list(provenance.notes),
            "page_digests": [list(pair) for pair in provenance.page_digests],
            "details_fetched": provenance.details_fetched,
            "format_version": provenance.format_version,
            "operator": _operator_json(provenance.operator),
            "key_owner": _key_owner_json(provenance.key_owner),
            "endpoints": [
                {
                    "path": item.path,
                    "announced": item.announced,
                    "received": item.received,
                    "pages": item.pages,
                    "complete": item.complete,
                    "requests": [list(pair) for pair in item.requests],
                    "note": item.note,
                    "page_size": item.page_size,
                }
                for item in provenance.endpoints
            ],
            "not_evaluable": list(provenance.not_evaluable),
        },
        sort_keys=True,
    )


def _operator_json(operator: Operator | None) -> dict[str, str] | None:
    if operator is None:
        return None
    return {
        "account": operator.account,
        "host": operator.host,
        "command": operator.command,
        "tool_version": operator.tool_version,
        "python_version": operator.python_version,
    }


def _key_owner_json(owner: KeyOwner | None) -> dict[str, Any] | None:
    if owner is None:
        return None
    return {
        "user_id": owner.user_id,
        "name": owner.name,
        "email": owner.email,
        "role": owner.role,
        "restricted": owner.restricted,
        "divisions": list(owner.divisions),
    }


def _provenance_from_json(text: str) -> PullProvenance:
    data = json.loads(text)
    return PullProvenance(
        connection=data["connection"],
        base_url=data["base_url"],
        account_id=data["account_id"],
        key_fingerprint=data["key_fingerprint"],
        tool_version=data["tool_version"],
        started_at=_parse_time(data["started_at"]),
        finished_at=_parse_time(data["finished_at"]),
        requests=data["requests"],
        pages=data["pages"],
        retries=data["retries"],
        expected_total=data["expected_total"],
        received=data["received"],
        complete=data["complete"],
        notes=tuple(data["notes"]),
        page_digests=tuple((endpoint, digest) for endpoint, digest in data["page_digests"]),
        details_fetched=data["details_fetched"],
        # Snapshots stored before format 2 carry none of these: they decode as "not recorded".
        format_version=data.get("format_version", 1),
        operator=_operator_from_json(data["operator"]) if data.get("operator") else None,
        key_owner=_key_owner_from_json(data["key_owner"]) if data.get("key_owner") else None,
        endpoints=tuple(
            EndpointReconciliation(
                path=item["path"],
                announced=item["announced"],
                received=item["received"],
                pages=item["pages"],
                complete=item["complete"],
                requests=tuple((endpoint, digest) for endpoint, digest in item["requests"]),
                note=item["note"],
                page_size=item.get("page_size"),  # absent in snapshots stored before issue 15
            )
            for item in data.get("endpoints") or ()
        ),
        not_evaluable=tuple(data.get("not_evaluable", ())),  # absent in snapshots stored before 0.2
    )


def _operator_from_json(data: Mapping[str, Any]) -> Operator:
    return Operator(
        account=data["account"],
        host=data["host"],
        command=data["command"],
        tool_version=data["tool_version"],
        python_version=data["python_version"],
    )


def _key_owner_from_json(data: Mapping[str, Any]) -> KeyOwner:
    return KeyOwner(
        user_id=data["user_id"],
        name=data["name"],
        email=data["email"],
        role=data["role"],
        restricted=data["restricted"],
        divisions=tuple(data["divisions"]),
    )


class _Decoder:
    """Turns user rows back into ``User`` values, sharing equal roles and divisions.

    Most users of an account share a handful of role sets and divisions; decoding each JSON
    text once keeps loading 100k users fast and the snapshot small in memory.
    """

    def __init__(self) -> None:
        self.roles: dict[str, tuple[Role, ...]] = {}
        self.divisions: dict[str | None, Division | None] = {None: None}
        self.assigned: dict[str, tuple[Division, ...]] = {}
        self.times: dict[str | None, datetime | None] = {None: None}

    def user(self, row: Sequence[Any]) -> User:
        if row[19]:
            row = [_unescape_text(value) if i in _TEXT_FIELDS else value for i, value in enumerate(row)]
        roles_text, division_text, login_text, assigned_text = row[6], row[8], row[9], row[16]
        roles = self.roles.get(roles_text)
        if roles is None:
            roles = self.roles[roles_text] = tuple(Role(id=i, name=n) for i, n in json.loads(roles_text))
        try:
            division = self.divisions[division_text]
        except KeyError:
            division = self.divisions[division_text] = Division(*json.loads(division_text))
        assigned = self.assigned.get(assigned_text)
        if assigned is None:
            assigned = self.assigned[assigned_text] = tuple(Division(*item) for item in json.loads(assigned_text))
        try:
            last_login = self.times[login_text]
        except KeyError:
            last_login = self.times[login_text] = _parse_time(login_text)
        saml = row[17]
        return User(
            id=row[0],
            email=row[1],
            username=row[2],
            first_name=row[3],
            last_name=row[4],
            status=row[5],
            roles=roles,
            division=division,
            last_login=last_login,
            account_id=row[10],
            job_title=row[11],
            telephone=row[12],
            user_type=row[13],
            is_service_user=bool(row[14]),
            restricted=bool(row[15]),
            assigned_divisions=assigned,
            is_saml_sso_only=None if saml is None else bool(saml),
        )


def _user_rows(
    snapshot_id: int, users: Sequence[User], digests: Mapping[int, str], *, escape: bool
) -> Iterator[Sequence[object]]:
    """Rows for ``snapshot_users``: snapshot id, position, then the ``_USER_COLUMNS``."""
    # Thousands of users share a handful of role sets and divisions: encode each once per save
    # (json.dumps three times a user was a third of the insert's CPU). Role and Division are
    # frozen dataclasses, so equal values hash alike.
    roles_json: dict[tuple[Role, ...], tuple[str, str]] = {}
    division_json: dict[Division | None, str | None] = {None: None}
    assigned_json: dict[tuple[Division, ...], str] = {}
    for position, user in enumerate(users):
        roles = roles_json.get(user.roles)
        if roles is None:
            roles = roles_json[user.roles] = (_roles_json(user.roles), user.role_names)
        division = division_json.get(user.division, "")
        if division == "":
            division = division_json[user.division] = json.dumps(_division_list(user.division))  # type: ignore[arg-type]
        assigned = assigned_json.get(user.assigned_divisions)
        if assigned is None:
            assigned = assigned_json[user.assigned_divisions] = json.dumps(
                [_division_list(d) for d in user.assigned_divisions]
            )
        row: list[object] = [
            user.id,
            user.email,
            user.username,
            user.first_name,
            user.last_name,
            user.status,
            roles[0],
            roles[1],
            division,
            _opt_time(user.last_login),
            user.account_id,
            user.job_title,
            user.telephone,
            user.user_type,
            int(user.is_service_user),
            int(user.restricted),
            assigned,
            None if user.is_saml_sso_only is None else int(user.is_saml_sso_only),
            digests.get(user.id),
            0,
        ]
        if escape:
            for index in _TEXT_FIELDS:
                value = row[index]
                if isinstance(value, str):
                    row[index] = _escape_text(value)
                    if isinstance(row[index], bytes):
                        row[19] = 1
        yield (snapshot_id, position, *row)


def _page_rows(snapshot_id: int, pages: Sequence[RawPage]) -> Iterator[tuple[object, ...]]:
    for position, page in enumerate(pages):
        digest = hashlib.sha256(page.body).hexdigest()
        if digest != page.sha256:
            raise StoreError(
                f"Raw page {position} ({page.endpoint}) does not match its recorded SHA-256 "
                f"({page.sha256}, body hashes to {digest}); the snapshot was not saved.",
                hint="This is a bug in the pull; please report it with the output of `auditor -v pull`.",
            )
        yield (
            snapshot_id,
            position,
            page.endpoint,
            page.status,
            zlib.compress(page.body, 6),
            digest,
            _time(page.received_at),
        )
