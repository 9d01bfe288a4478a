"""The sandbox's data: one CertCentral account, its users and the API keys that reach it.

The on-disk format is ``certcentral-sandbox-dataset/1`` (ARCHITECTURE.md): users in API shape,
except that ``container`` is replaced by ``container_id`` and restricted users carry
``container_assignment_ids``; the server expands both. Facts and guesses about the real API
are in ``../shared/certcentral-api.md`` (sections cited inline).

(Over 500 lines: reading and validating the format and the seeded generator of realistic accounts
share one record shape.)
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from auditor.errors import ConfigurationError
from auditor.labels import iso

FORMAT = "certcentral-sandbox-dataset/1"

#: The five fixed CertCentral access roles (certcentral-api.md §4.1).
ROLE_NAMES: dict[int, str] = {
    1: "Administrator",
    2: "Limited User",
    3: "Finance Manager",
    4: "Manager",
    5: "Standard User",
}
#: ``restricted_to_role_id`` values an API key may carry (§4.2).
KEY_RESTRICTIONS: dict[int, str] = {
    0: "none",
    100: "Orders",
    101: "Orders, Domains, Organizations",
    102: "View Only",
    103: "User Management",
}

#: Key order of a user object as the real list response has it (§2.2), then detail-only keys.
USER_KEY_ORDER = (
    "id",
    "username",
    "account_id",
    "first_name",
    "last_name",
    "email",
    "job_title",
    "telephone",
    "status",
    "last_login_date",
    "container_id",
    "access_roles",
    "type",
    "has_container_assignments",
    "container_assignment_ids",
    "is_saml_sso_only",
)
_CONTAINER_KEY_ORDER = ("id", "public_id", "name", "parent_id", "template_id", "ekey", "has_logo", "is_active")
_KEY_KEY_ORDER = ("key", "label", "user_id", "restricted_to_role_id", "description")
_API_KEY_ORDER = (
    "id",
    "user",
    "status",
    "create_date",
    "last_used_date",
    "name",
    "is_legacy",
    "restricted_to_role_id",
    "acme_directory_url",
    "product_name_id",
    "organization_id",
    "validity_years",
    "validity_days",
)
_IP_RULE_ORDER = (
    "id",
    "date_created",
    "container_id",
    "user_id",
    "api_key_id",
    "ip_address",
    "ip_address_end",
    "description",
)
_OPTIONAL_USER_TEXT = ("job_title", "telephone", "last_login_date")
_REQUIRED_USER_TEXT = ("username", "first_name", "last_name", "email", "status")

JsonObject = dict[str, Any]


@dataclass(frozen=True)
class Dataset:
    """One sandbox account: raw dicts in the dataset format, served by ``SandboxServer``.

    The dicts are shared, not copied: treat them as read-only (the server never mutates them).
    """

    account: JsonObject
    containers: tuple[JsonObject, ...]
    users: tuple[JsonObject, ...]
    service_users: tuple[JsonObject, ...]
    keys: tuple[JsonObject, ...]
    as_of: datetime
    #: ``GET /key`` entries in API shape (§11.1): API keys and ACME URLs of the account. These are
    #: what the account *lists*; ``keys`` are what the sandbox *accepts* as X-DC-DEVKEY.
    api_keys: tuple[JsonObject, ...] = ()
    #: ``GET /container/{top}/ip/rules`` entries in API shape (§11.2).
    ip_rules: tuple[JsonObject, ...] = ()
    #: ``GET /account/guest-access`` (§11.3); None: served as ``{"enabled": false}``.
    guest_access: JsonObject | None = None
    #: ``GET /account/subaccount`` entries (§11.6): ``id``, ``name``, ``status``,
    #: ``master_user{email, container_id}``; None: the account has none (the route answers 404).
    subaccounts: tuple[JsonObject, ...] | None = None
    #: The Report Library's scheduled reports and their runs (§11.5, ``auditor/sandbox/reports.py``);
    #: None: no report was ever scheduled.
    report_library: JsonObject | None = None

    def to_json(self) -> str:
        """The dataset as a ``certcentral-sandbox-dataset/1`` document; equal datasets give equal text."""
        document = {
            "format": FORMAT,
            "as_of": self.as_of.astimezone(UTC).isoformat(),
            "account": _ordered(self.account, ("id", "name", "instance")),
            "containers": [_ordered(c, _CONTAINER_KEY_ORDER) for c in self.containers],
            "users": [_ordered(u, USER_KEY_ORDER) for u in self.users],
            "service_users": [_ordered(u, USER_KEY_ORDER) for u in self.service_users],
            "keys": [_ordered(k, _KEY_KEY_ORDER) for k in self.keys],
        }
        # Only when set, so datasets written before credentials were served stay byte-identical.
        if self.api_keys:
            document["api_keys"] = [_ordered(k, _API_KEY_ORDER) for k in self.api_keys]
        if self.ip_rules:
            document["ip_rules"] = [_ordered(r, _IP_RULE_ORDER) for r in self.ip_rules]
        if self.guest_access is not None:
            document["guest_access"] = _ordered(self.guest_access, ("enabled", "guest_access_url"))
        if self.subaccounts is not None:
            document["subaccounts"] = [_ordered(s, ("id", "name", "status", "master_user")) for s in self.subaccounts]
        if self.report_library is not None:
            document["report_library"] = self.report_library
        return json.dumps(document, indent=2, ensure_ascii=False) + "\n"

    @classmethod
    def from_json(cls, text: str, *, source: str = "<string>") -> Dataset:
        """Parse and validate a dataset document; ``source`` names it in error messages."""
        try:
            document = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ConfigurationError(
                f"Sandbox dataset {source} is not valid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno}).",
                hint="Fix the file, or write a fresh one from `Dataset.to_json()`.",
            ) from exc
        return _parse_document(document, source)

    @classmethod
    def generate(cls, n_users: int, *, seed: int = 0) -> Dataset:
        """A deterministic synthetic account of ``n_users`` users, for benchmarks and tests.

        Same ``n_users`` and ``seed`` give an equal dataset. It carries the same six key labels as
        ``default_dataset()`` (keys ``sandbox-<label>-key``), linked to users of the right kind.
        """
        if n_users < 6:
            raise ValueError("generate() needs at least 6 users to link every sandbox key")
        return _generate(n_users, seed)

    def user_by_id(self, user_id: int) -> JsonObject | None:
        """The user or service user with that id, or None."""
        for user in (*self.users, *self.service_users):
            if user["id"] == user_id:
                return user
        return None


def load_dataset(path: Path) -> Dataset:
    """Read and validate a dataset file; problems raise ``ConfigurationError`` naming the file."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigurationError(
            f"Cannot read sandbox dataset {path}: {exc.strerror or exc}.",
            hint="Check the path given to `auditor sandbox --dataset`.",
        ) from exc
    except UnicodeDecodeError as exc:
        raise ConfigurationError(f"Sandbox dataset {path} is not UTF-8 text.") from exc
    return Dataset.from_json(text, source=str(path))


# --------------------------------------------------------------------------------------------
# validation


def _ordered(obj: Mapping[str, Any], order: Sequence[str]) -> JsonObject:
    """Known keys in ``order`` first, then any others sorted: deterministic and readable."""
    result = {key: obj[key] for key in order if key in obj}
    result.update({key: obj[key] for key in sorted(obj) if key not in result})
    return result


def _fail(source: str, problem: str) -> ConfigurationError:
    return ConfigurationError(
        f"Sandbox dataset {source} is not a valid {FORMAT} file: {problem}.",
        hint="See 'Sandbox dataset format' in ARCHITECTURE.md.",
    )


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _objects(document: Mapping[str, Any], key: str, source: str, *, required: bool = True) -> list[JsonObject]:
    if key not in document:
        if required:
            raise _fail(source, f"missing field '{key}'")
        return []
    value = document[key]
    if not isinstance(value, list) or not all(isinstance(item, dict) for item in value):
        raise _fail(source, f"'{key}' must be a list of objects")
    return value


def _require(obj: Mapping[str, Any], where: str, source: str, fields: Iterable[tuple[str, type]]) -> None:
    for name, kind in fields:
        if name not in obj:
            raise _fail(source, f"{where} is missing field '{name}'")
        value = obj[name]
        ok = _is_int(value) if kind is int else isinstance(value, kind)
        if not ok:
            raise _fail(source, f"{where} field '{name}' must be {kind.__name__}, not {type(value).__name__}")


def _parse_time(value: object, where: str, source: str) -> datetime:
    if not isinstance(value, str):
        raise _fail(source, f"{where} must be a date-time string")
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise _fail(source, f"{where} is not an ISO 8601 date-time: {value!r}") from None
    if parsed.tzinfo is None:  # the documented detail form has no zone; read as UTC (§2.4)
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def _check_user(user: JsonObject, where: str, source: str, containers: Mapping[int, JsonObject]) -> None:
    _require(user, where, source, [("id", int)])
    where = f"{where} (id {user['id']})"
    _require(user, where, source, [(name, str) for name in _REQUIRED_USER_TEXT])
    _require(user, where, source, [("container_id", int), ("access_roles", list)])
    for name in _OPTIONAL_USER_TEXT:
        # The API omits unset optional keys; a null would be served as null (§2.2).
        if name in user and not isinstance(user[name], str):
            raise _fail(source, f"{where} field '{name}' must be a string or left out, not {user[name]!r}")
    if "last_login_date" in user:
        _parse_time(user["last_login_date"], f"{where} last_login_date", source)
    if user["container_id"] not in containers:
        raise _fail(source, f"{where} refers to unknown container_id {user['container_id']}")
    for role in user["access_roles"]:
        if not isinstance(role, dict) or not _is_int(role.get("id")) or not isinstance(role.get("name"), str):
            raise _fail(source, f'{where} has an access role that is not {{"id": int, "name": str}}')
    assignments = user.get("container_assignment_ids", [])
    if not isinstance(assignments, list) or not all(_is_int(a) for a in assignments):
        raise _fail(source, f"{where} field 'container_assignment_ids' must be a list of container ids")
    for container_id in assignments:
        if container_id not in containers:
            raise _fail(source, f"{where} is assigned unknown container {container_id}")
    for flag in ("has_container_assignments", "is_saml_sso_only"):
        if flag in user and not isinstance(user[flag], bool):
            raise _fail(source, f"{where} field '{flag}' must be true or false")


def _parse_document(document: object, source: str) -> Dataset:
    if not isinstance(document, dict):
        raise _fail(source, "the top level must be a JSON object")
    if document.get("format") != FORMAT:
        raise _fail(source, f"'format' is {document.get('format')!r}, expected {FORMAT!r}")
    if "as_of" not in document:
        raise _fail(source, "missing field 'as_of'")
    as_of = _parse_time(document["as_of"], "'as_of'", source)
    account = document.get("account")
    if not isinstance(account, dict):
        raise _fail(source, "missing field 'account' (an object)")
    _require(account, "'account'", source, [("id", int), ("name", str)])

    containers = _objects(document, "containers", source)
    if not containers:
        raise _fail(source, "'containers' must hold at least the root container")
    by_id: dict[int, JsonObject] = {}
    for index, container in enumerate(containers):
        where = f"containers[{index}]"
        _require(container, where, source, [("id", int), ("name", str), ("parent_id", int)])
        if container["id"] in by_id:
            raise _fail(source, f"duplicate container id {container['id']}")
        by_id[container["id"]] = container
    if not any(c["parent_id"] == 0 for c in containers):
        raise _fail(source, "no root container (one with parent_id 0)")
    for container in containers:
        if container["parent_id"] != 0 and container["parent_id"] not in by_id:
            raise _fail(source, f"container {container['id']} has unknown parent_id {container['parent_id']}")

    users = _objects(document, "users", source)
    service_users = _objects(document, "service_users", source, required=False)
    seen: set[int] = set()
    for kind, group in (("users", users), ("service_users", service_users)):
        for index, user in enumerate(group):
            _check_user(user, f"{kind}[{index}]", source, by_id)
            if user["id"] in seen:
                raise _fail(source, f"duplicate user id {user['id']}")
            seen.add(user["id"])

    keys = _objects(document, "keys", source)
    key_values: set[str] = set()
    labels: set[str] = set()
    for index, key in enumerate(keys):
        where = f"keys[{index}]"
        _require(key, where, source, [("key", str), ("label", str), ("user_id", int)])
        restriction = key.get("restricted_to_role_id", 0)
        if restriction not in KEY_RESTRICTIONS:
            raise _fail(source, f"{where} restricted_to_role_id must be one of {sorted(KEY_RESTRICTIONS)}")
        if key["user_id"] not in seen:
            raise _fail(source, f"{where} ({key['label']}) is linked to unknown user {key['user_id']}")
        if key["key"] in key_values:
            raise _fail(source, f"{where} duplicates another key's value")
        if key["label"] in labels:
            raise _fail(source, f"duplicate key label {key['label']!r}")
        key_values.add(key["key"])
        labels.add(key["label"])

    api_keys = _objects(document, "api_keys", source, required=False)
    key_ids: set[int] = set()
    for index, item in enumerate(api_keys):
        where = f"api_keys[{index}]"
        _require(item, where, source, [("id", int), ("status", str)])
        if item["id"] in key_ids:
            raise _fail(source, f"duplicate API key id {item['id']}")
        key_ids.add(item["id"])
    ip_rules = _objects(document, "ip_rules", source, required=False)
    for index, item in enumerate(ip_rules):
        _require(item, f"ip_rules[{index}]", source, [("id", int), ("ip_address", str)])
    guest = document.get("guest_access")
    if guest is not None and not (isinstance(guest, dict) and isinstance(guest.get("enabled"), bool)):
        raise _fail(source, "'guest_access' must be an object with a true/false 'enabled'")
    subaccounts: tuple[JsonObject, ...] | None = None
    if "subaccounts" in document:
        subaccounts = tuple(_objects(document, "subaccounts", source))
        for index, item in enumerate(subaccounts):
            _require(item, f"subaccounts[{index}]", source, [("id", int), ("name", str)])
    library = _report_library(document, source)

    return Dataset(
        account=account,
        containers=tuple(containers),
        users=tuple(users),
        service_users=tuple(service_users),
        keys=tuple(keys),
        as_of=as_of,
        api_keys=tuple(api_keys),
        ip_rules=tuple(ip_rules),
        guest_access=guest,
        subaccounts=subaccounts,
        report_library=library,
    )


def _report_library(document: Mapping[str, Any], source: str) -> JsonObject | None:
    library = document.get("report_library")
    if library is None:
        return None
    if not isinstance(library, dict):
        raise _fail(source, "'report_library' must be an object with 'reports' and 'runs'")
    for index, report in enumerate(_objects(library, "reports", source, required=False)):
        _require(report, f"report_library.reports[{index}]", source, [("report_identifier", str)])
    for index, run in enumerate(_objects(library, "runs", source, required=False)):
        where = f"report_library.runs[{index}]"
        _require(
            run, where, source,
            [("report_identifier", str), ("report_run_identifier", str), ("report_start_date", str)],
        )
        try:
            datetime.strptime(run["report_start_date"], "%Y-%m-%d %H:%M:%S")
        except ValueError:
            raise _fail(source, f"{where} report_start_date must be 'YYYY-MM-DD HH:MM:SS'") from None
    return library


# --------------------------------------------------------------------------------------------
# built-in datasets

_ACCOUNT_ID = 1696530
_DEFAULT_AS_OF = datetime(2026, 11, 1, tzinfo=UTC)


def _role(role_id: int, name: str | None = None) -> JsonObject:
    return {"id": role_id, "name": name or ROLE_NAMES[role_id]}


def _container(container_id: int, name: str, parent_id: int, template_id: int) -> JsonObject:
    return {
        "id": container_id,
        "public_id": f"{container_id:08x}{'0' * 24}",
        "name": name,
        "parent_id": parent_id,
        "template_id": template_id,
        "ekey": f"ek{container_id:x}sandbox",
        "has_logo": False,
        "is_active": True,
    }


def _iso(moment: datetime) -> str:
    return iso(moment.astimezone(UTC))


def _user(
    user_id: int,
    email: str,
    first: str,
    last: str,
    roles: list[JsonObject],
    container_id: int,
    *,
    status: str = "active",
    last_login: datetime | None = None,
    job_title: str | None = None,
    telephone: str | None = None,
    assignments: Sequence[int] = (),
    username: str | None = None,
    saml: bool = False,
) -> JsonObject:
    user: JsonObject = {
        "id": user_id,
        "username": username or email,
        "account_id": _ACCOUNT_ID,
        "first_name": first,
        "last_name": last,
        "email": email,
    }
    if job_title is not None:
        user["job_title"] = job_title
    if telephone is not None:
        user["telephone"] = telephone
    user["status"] = status
    if last_login is not None:
        user["last_login_date"] = _iso(last_login)
    user["container_id"] = container_id
    user["access_roles"] = roles
    user["type"] = "standard"
    user["has_container_assignments"] = bool(assignments)
    if assignments:
        user["container_assignment_ids"] = list(assignments)
    user["is_saml_sso_only"] = saml
    return user


def _keys(admin: int, finance: int, restricted_manager: int, service: int) -> tuple[JsonObject, ...]:
    def key(label: str, user_id: int, restriction: int, description: str) -> JsonObject:
        return {
            "key": f"sandbox-{label}-key",
            "label": label,
            "user_id": user_id,
            "restricted_to_role_id": restriction,
            "description": description,
        }

    return (
        key("admin", admin, 0, "Unrestricted key linked to an Administrator: reads everything."),
        key("view-only", admin, 102, "View Only key (102) linked to an Administrator: the recommended key."),
        key("user-management", admin, 103, "User Management key (103) linked to an Administrator: works."),
        key("orders-only", service, 100, "Orders key (100): 403 missing_permission on every user endpoint."),
        key(
            "finance-manager",
            finance,
            0,
            "Linked to a Finance Manager: /user/me works, /user and /user/{id} give 403 missing_permission.",
        ),
        key(
            "division-restricted",
            restricted_manager,
            0,
            "Linked to a division-restricted Manager: /user lists only the users of its divisions.",
        ),
    )


def default_dataset() -> Dataset:
    """The built-in demo account: 12 users over 3 divisions, one service user, six keys.

    Covers every role, a restricted Manager, an unknown sub-role (§4.1), accents, a user who
    never signed in, and the assumed statuses ``inactive`` and ``pending``: only ``active`` is
    VERIFIED (§4.4), the other two are ASSUMED so the tool is tested against open values.
    """
    now = _DEFAULT_AS_OF
    root, sales, eng = 634763, 11224, 11225
    containers = (
        _container(root, "Example Corp", 0, 5),
        _container(sales, "Sales", root, 6),
        _container(eng, "Engineering", root, 6),
    )
    days = timedelta(days=1)
    users = (
        _user(
            2700762,
            "alice.admin@example.com",
            "Alice",
            "Admin",
            [_role(1)],
            root,
            last_login=now - 2 * days - timedelta(hours=3),
            job_title="Security Engineer",
            telephone="+15555550100",
        ),
        _user(2701143, "bob.finance@example.com", "Bob", "Finance", [_role(3)], root),  # never signed in
        _user(
            125039,
            "carol.sales@example.com",
            "Carol",
            "Sales",
            [_role(4)],
            sales,
            last_login=now - 11 * days,
            job_title="Sales Director",
            assignments=[sales],
        ),
        _user(
            2702001,
            "dana.ops@example.com",
            "Dana",
            "Ops",
            [_role(5)],
            eng,
            last_login=now - 140 * days,
            job_title="Operations",
        ),
        _user(2702002, "jose.nunez@example.com", "José", "Núñez", [_role(2)], sales, last_login=now - 30 * days),
        _user(
            2702003,
            "frank.former@example.com",
            "Frank",
            "Former",
            [_role(1)],
            eng,
            status="inactive",
            last_login=now - 400 * days,
        ),  # "inactive" is ASSUMED (§4.4)
        _user(
            2702004, "grace.new@example.com", "Grace", "Newcomer", [_role(5)], eng, status="pending"
        ),  # "pending" is ASSUMED (§4.4): invited, not yet set up
        _user(
            2702005,
            "heidi.ev@example.com",
            "Heidi",
            "Verified",
            [_role(5), _role(99, "EV Verified User")],
            sales,
            last_login=now - 5 * days,
        ),  # §4.1 sub-role
        _user(
            2702006,
            "ivan.manager@example.com",
            "Ivan",
            "Manager",
            [_role(4)],
            root,
            last_login=now - 1 * days,
            telephone="+15555550123",
            saml=True,
        ),
        _user(2702007, "judy.sales@example.com", "Judy", "Sales", [_role(5)], sales, last_login=now - 60 * days),
        _user(
            2702008, "certs@example.com", "Shared", "Certificates Mailbox", [_role(1)], root, last_login=now - 8 * days
        ),
        _user(
            2702009,
            "zoe.odegard@example.com",
            "Zoë",
            "Ødegård",
            [_role(2)],
            eng,
            last_login=now - 95 * days,
            job_title="Ingénieure",
        ),
    )
    service_users = (
        _user(
            2703001,
            "1708859662bbfc56b3e1@example.com",
            "CI",
            "Automation",
            [_role(1)],
            root,
            username="1708859662bbfc56b3e1",
            job_title="Service user for CI",
        ),
    )
    return Dataset(
        account={"id": _ACCOUNT_ID, "name": "Example Corp", "instance": "us"},
        containers=containers,
        users=users,
        service_users=service_users,
        keys=_keys(admin=2700762, finance=2701143, restricted_manager=125039, service=2703001),
        as_of=now,
    )


_FIRST = (
    "Ana",
    "Ben",
    "Chloé",
    "David",
    "Emma",
    "François",
    "Gita",
    "Hiro",
    "Inés",
    "Jonas",
    "Kofi",
    "Lena",
    "Mateo",
    "Nora",
    "Olu",
    "Priya",
    "Quinn",
    "Raúl",
    "Sven",
    "Tamar",
)
_LAST = (
    "Smith",
    "García",
    "Müller",
    "Nguyen",
    "Okafor",
    "Rossi",
    "Sato",
    "Kowalski",
    "Dubois",
    "Øster",
    "Brown",
    "Silva",
    "Haddad",
    "Ivanova",
    "Jensen",
    "Khan",
)
_TITLES = ("Engineer", "PKI Engineer", "Accountant", "Sales", "IT Admin", "Contractor")


def _generate(n_users: int, seed: int) -> Dataset:
    rng = random.Random(seed)  # noqa: S311 - synthetic test data, not security
    now = _DEFAULT_AS_OF
    root = 500000
    n_divisions = max(3, min(200, n_users // 500))
    containers = [_container(root, "Generated Corp", 0, 5)]
    containers += [_container(root + i, f"Division {i:03d}", root, 6) for i in range(1, n_divisions)]
    division_ids = [c["id"] for c in containers]

    # Fixed anchors so every key has a user of the right kind.
    anchors: list[JsonObject] = [
        _user(1000000, "admin@generated.example", "Gen", "Admin", [_role(1)], root, last_login=now - timedelta(days=1)),
        _user(1000001, "finance@generated.example", "Gen", "Finance", [_role(3)], root),
        _user(
            1000002,
            "manager@generated.example",
            "Gen",
            "Manager",
            [_role(4)],
            division_ids[1],
            last_login=now - timedelta(days=3),
            assignments=division_ids[1:3],
        ),
    ]
    roles_by_weight = [5] * 60 + [2] * 20 + [3] * 7 + [4] * 8 + [1] * 2 + [99] * 3
    statuses = ["active"] * 94 + ["inactive"] * 4 + ["pending"] * 2
    users = anchors
    seconds_per_year = 365 * 86400
    for i in range(len(anchors), n_users):
        user_id = 1000000 + i
        first = _FIRST[rng.randrange(len(_FIRST))]
        last = _LAST[rng.randrange(len(_LAST))]
        role_id = roles_by_weight[rng.randrange(len(roles_by_weight))]
        roles = [_role(5), _role(99, "EV Verified User")] if role_id == 99 else [_role(role_id)]
        email = f"{first.lower()}.{last.lower()}.{i}@generated.example"
        container_id = division_ids[rng.randrange(n_divisions)]
        user: JsonObject = {
            "id": user_id,
            "username": email,
            "account_id": _ACCOUNT_ID,
            "first_name": first,
            "last_name": last,
            "email": email,
        }
        if rng.random() < 0.4:
            user["job_title"] = _TITLES[rng.randrange(len(_TITLES))]
        if rng.random() < 0.2:
            user["telephone"] = f"+1555{rng.randrange(10**7):07d}"
        user["status"] = statuses[rng.randrange(len(statuses))]
        if rng.random() < 0.9:
            user["last_login_date"] = _iso(now - timedelta(seconds=rng.randrange(seconds_per_year)))
        user["container_id"] = container_id
        user["access_roles"] = roles
        user["type"] = "standard"
        restricted = role_id == 4 and container_id != root and rng.random() < 0.5
        user["has_container_assignments"] = restricted
        if restricted:
            user["container_assignment_ids"] = [container_id]
        user["is_saml_sso_only"] = rng.random() < 0.1
        users.append(user)

    n_service = n_users // 1000 + 1
    service_users = tuple(
        _user(
            9000000 + i,
            f"svc{i}@generated.example",
            "Service",
            f"User {i}",
            [_role(1)],
            root,
            username=f"{rng.getrandbits(80):020x}",
        )
        for i in range(n_service)
    )
    return Dataset(
        account={"id": _ACCOUNT_ID, "name": "Generated Corp", "instance": "us"},
        containers=tuple(containers),
        users=tuple(users),
        service_users=service_users,
        keys=_keys(admin=1000000, finance=1000001, restricted_manager=1000002, service=9000000),
        as_of=now,
    )


@dataclass(frozen=True, slots=True)
class SandboxKey:
    """One built-in sandbox key and what a client should see with it (for `auditor sandbox`)."""

    key: str
    label: str
    restricted_to_role_id: int
    description: str


#: The keys every dataset the project ships carries, one per connection-test case.
SANDBOX_KEYS: tuple[SandboxKey, ...] = tuple(
    SandboxKey(k["key"], k["label"], k["restricted_to_role_id"], k["description"]) for k in default_dataset().keys
)
