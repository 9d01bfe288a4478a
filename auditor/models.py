"""Domain values shared by every layer: users, snapshots, changes, findings.

(Over 500 lines: one frozen dataclass or enum per domain value every layer shares; split, it
would only add import paths.)

Everything here is a frozen dataclass or a ``str`` enum. Values are parsed once at the
boundary (``User.from_api``) and never carry httpx, pandas or weasyprint types.

API quirks handled here are documented in ``../shared/certcentral-api.md`` (sections cited
inline); upstream: https://dev.digicert.com/services-api/users/list-users/
"""

from __future__ import annotations

import enum
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

#: CertCentral's fixed access-role ids (certcentral-api.md §4.1). Match on id first, then name.
ADMINISTRATOR_ROLE_ID = 1
MANAGER_ROLE_ID = 4
KNOWN_ROLE_NAMES = {
    1: "Administrator",
    2: "Limited User",
    3: "Finance Manager",
    4: "Manager",
    5: "Standard User",
}


class Severity(enum.StrEnum):
    """How urgently a finding needs action; ordered from most to least severe."""

    CRITICAL = "critical"
    HIGH = "high"
    MEDIUM = "medium"
    LOW = "low"
    INFO = "info"

    @property
    def rank(self) -> int:
        """Smaller is worse: critical is 0, info is 4. Sorting by rank puts the worst first."""
        return list(Severity).index(self)

    def at_least(self, threshold: Severity) -> bool:
        """True when this severity is ``threshold`` or worse."""
        return self.rank <= threshold.rank


def parse_api_datetime(value: object) -> datetime | None:
    """Parse a CertCentral timestamp in either documented form, or return None.

    The list endpoint returns ``2023-10-13T15:15:13+00:00``; the User info docs show
    ``2019-06-21 13:37:00`` (no zone, read as UTC). Missing, null and empty all mean
    "never signed in / unknown" (certcentral-api.md §2.4). A value that does not parse is
    also treated as unknown rather than crashing the pull: the raw page keeps the original.
    """
    if not isinstance(value, str) or not value.strip():
        return None
    text = value.strip()
    if text.endswith("Z"):
        text = text[:-1] + "+00:00"
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def _text(value: object) -> str:
    """Coerce an optional API scalar to text; the API sometimes omits keys (§2.2).

    A lone surrogate (valid in JSON as a ``\\ud800`` escape, not encodable as UTF-8) becomes
    U+FFFD: every report, CSV and bundle is UTF-8. The raw page keeps the original.
    """
    if value is None:
        return ""
    text = value if isinstance(value, str) else str(value)
    if not text.isascii() and _has_surrogate(text):
        return "".join("\ufffd" if "\ud800" <= char <= "\udfff" else char for char in text)
    return text


def _has_surrogate(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def _list(value: object) -> list[object]:
    return value if isinstance(value, list) else []


def _int_or_none(value: object) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    # ASCII digits only: str.isdigit() also accepts "²" or "٣", which int() then rejects.
    if isinstance(value, str) and re.fullmatch(r"-?[0-9]+", value.strip()):
        return int(value.strip())
    return None


@dataclass(frozen=True, slots=True, order=True)
class Role:
    """One CertCentral access role (``access_roles[]``), kept as the API named it."""

    id: int
    name: str

    @classmethod
    def from_api(cls, data: object) -> Role | None:
        if not isinstance(data, Mapping):
            return None
        role_id = _int_or_none(data.get("id"))
        name = _text(data.get("name"))
        if role_id is None and not name:
            return None
        if not name and role_id is not None:
            name = KNOWN_ROLE_NAMES.get(role_id, f"role {role_id}")
        return cls(id=role_id if role_id is not None else -1, name=name)

    @property
    def is_administrator(self) -> bool:
        return self.id == ADMINISTRATOR_ROLE_ID or self.name.casefold() == "administrator"

    @property
    def is_manager(self) -> bool:
        return self.id == MANAGER_ROLE_ID or self.name.casefold() == "manager"


@dataclass(frozen=True, slots=True)
class Division:
    """A CertCentral container, shown as "division" in the console (§4.5)."""

    id: int
    name: str
    parent_id: int | None = None

    @classmethod
    def from_api(cls, data: object) -> Division | None:
        if not isinstance(data, Mapping):
            return None
        division_id = _int_or_none(data.get("id"))
        if division_id is None:
            return None
        return cls(
            id=division_id,
            name=_text(data.get("name")),
            parent_id=_int_or_none(data.get("parent_id")),
        )


@dataclass(frozen=True, slots=True)
class User:
    """One CertCentral user as seen in one pull.

    ``status`` stays an open string (only ``active`` is verified, §4.4); ``is_active`` means
    exactly ``status == "active"``. ``last_login`` is None when the API omitted it.
    """

    id: int
    email: str
    username: str = ""
    first_name: str = ""
    last_name: str = ""
    status: str = ""
    roles: tuple[Role, ...] = ()
    division: Division | None = None
    last_login: datetime | None = None
    account_id: int | None = None
    job_title: str = ""
    telephone: str = ""
    user_type: str = ""
    is_service_user: bool = False
    restricted: bool = False
    assigned_divisions: tuple[Division, ...] = ()
    #: From ``GET /user/{id}`` only (``--details``); None when not fetched.
    is_saml_sso_only: bool | None = None

    @classmethod
    def from_api(cls, data: Mapping[str, Any], *, service_user: bool = False) -> User:
        """Parse one user object from ``/user``, ``/user/{id}`` or ``/user/api-only``.

        Raises ValueError only when the object has no usable ``id``: everything else the
        API may omit or vary is tolerated (§2.2, §2.4, §4).
        """
        # The hot path of a pull (one call a user): the common shapes (ASCII text, whole numbers,
        # a shared role set or division) are taken inline; everything else goes through the same
        # helpers as before, so every value is what they give.
        get = data.get
        user_id = get("id")
        if type(user_id) is not int:
            user_id = _int_or_none(user_id)
            if user_id is None:
                raise ValueError("user object without a numeric 'id'")
        account_id = get("account_id")
        if type(account_id) is not int:
            account_id = _int_or_none(account_id)
        texts = [value if type(value) is str and value.isascii() else _text(value) for value in map(get, _USER_TEXT)]
        assigned_raw = get("container_assignments")
        saml = get("is_saml_sso_only")
        return cls(
            id=user_id,
            email=texts[0],
            username=texts[1],
            first_name=texts[2],
            last_name=texts[3],
            status=texts[4],
            roles=_roles_of(get("access_roles")),
            division=_division_of(get("container")),
            last_login=parse_api_datetime(get("last_login_date")),
            account_id=account_id,
            job_title=texts[5],
            telephone=texts[6],
            user_type=texts[7],
            is_service_user=service_user or get("is_api_only") is True,
            restricted=get("has_container_assignments") is True,
            assigned_divisions=tuple(filter(None, map(Division.from_api, assigned_raw)))
            if isinstance(assigned_raw, list) and assigned_raw
            else (),
            is_saml_sso_only=saml if isinstance(saml, bool) else None,
        )

    @property
    def is_active(self) -> bool:
        return self.status == "active"

    @property
    def is_admin(self) -> bool:
        return any(role.is_administrator for role in self.roles)

    @property
    def is_manager(self) -> bool:
        return any(role.is_manager for role in self.roles)

    @property
    def full_name(self) -> str:
        return " ".join(part for part in (self.first_name, self.last_name) if part)

    @property
    def role_names(self) -> str:
        """Roles as one display string, e.g. ``Administrator`` or ``Manager, EV Verified User``."""
        return ", ".join(role.name for role in self.roles)

    @property
    def division_name(self) -> str:
        return self.division.name if self.division else ""


#: The text fields of a user object, in ``User``'s order: email, username, first_name, last_name,
#: status, then job_title, telephone and type.
_USER_TEXT = ("email", "username", "first_name", "last_name", "status", "job_title", "telephone", "type")
#: Parsed role sets and divisions by their raw values: an account has a handful of each, shared
#: by thousands of users. Bounded, so hostile input cannot grow them without limit.
_ROLE_SETS: dict[tuple[tuple[object, ...], ...], tuple[Role, ...]] = {}
_DIVISIONS: dict[tuple[object, ...], Division | None] = {}
_CACHE_LIMIT = 4096


def _roles_of(raw: object) -> tuple[Role, ...]:
    """``User.roles`` of a raw ``access_roles``: the roles it names, sorted (see ``Role.from_api``)."""
    items = _list(raw)
    try:
        # The types are part of the key: 1, 1.0 and True are equal as keys but parse differently.
        key = tuple(
            (type(i := item["id"]), i, type(n := item["name"]), n) for item in items  # type: ignore[index]
        )
        found = _ROLE_SETS.get(key)
    except (TypeError, KeyError):  # not objects, a key missing, or unhashable values: no caching
        return tuple(sorted(filter(None, map(Role.from_api, items))))
    if found is None:
        found = tuple(sorted(filter(None, map(Role.from_api, items))))
        if len(_ROLE_SETS) < _CACHE_LIMIT:
            _ROLE_SETS[key] = found
    return found


def _division_of(raw: object) -> Division | None:
    """``User.division`` of a raw ``container`` (see ``Division.from_api``)."""
    if raw is None:
        return None
    try:
        division_id, name, parent = raw["id"], raw["name"], raw.get("parent_id")  # type: ignore[index, attr-defined]
        key = (type(division_id), division_id, type(name), name, type(parent), parent)
        found = _DIVISIONS.get(key, False)
    except (TypeError, KeyError, AttributeError):
        return Division.from_api(raw)
    if found is False:
        found = Division.from_api(raw)
        if len(_DIVISIONS) < _CACHE_LIMIT:
            _DIVISIONS[key] = found
    return found  # type: ignore[return-value]


#: The roles treated as privileged unless ``[rules] privileged_roles`` in auditor.toml says otherwise.
DEFAULT_PRIVILEGED_ROLES: tuple[str, ...] = ("Administrator", "Manager")


@dataclass(frozen=True, slots=True)
class PrivilegedRoles:
    """Which roles count as privileged: the one definition the diff, the rules and reviews use.

    A role is privileged when its own name, or CertCentral's fixed name for its id
    (:data:`KNOWN_ROLE_NAMES`, so a role the API renames still counts), is one of ``names``,
    compared case-insensitively.
    """

    #: The privileged role names, casefolded.
    names: frozenset[str]

    @classmethod
    def of(cls, names: Iterable[str]) -> PrivilegedRoles:
        return cls(frozenset(name.casefold() for name in names))

    def matched(self, user: User) -> frozenset[str]:
        """The privileged names (casefolded) the user's roles match: what "gained a role" compares."""
        held: set[str] = set()
        for role in user.roles:
            for name in (role.name.casefold(), KNOWN_ROLE_NAMES.get(role.id, "").casefold()):
                if name and name in self.names:
                    held.add(name)
        return frozenset(held)

    def held(self, user: User) -> tuple[str, ...]:
        """The privileged roles the user holds, by display name, in the user's role order."""
        names: list[str] = []
        for role in user.roles:
            known = KNOWN_ROLE_NAMES.get(role.id, "").casefold()
            if (role.name.casefold() in self.names or (known and known in self.names)) and role.name not in names:
                names.append(role.name)
        return tuple(names)


@dataclass(frozen=True, slots=True)
class RawPage:
    """One API response body exactly as received: the primary evidence of a pull."""

    endpoint: str  #: path and query, e.g. ``/user?limit=500&offset=0``
    status: int
    body: bytes
    sha256: str
    received_at: datetime


#: ``restricted_to_role_id`` of an API key (certcentral-api.md §11.1, VERIFIED): 0 is no restriction.
KEY_RESTRICTION_LABELS = {
    0: "None (unrestricted)",
    100: "Orders",
    101: "Orders, Domains and Organizations",
    102: "View Only",
    103: "User Management",
}
#: The parts of the credential inventory a pull reads; each may be *not evaluable* (a documented 403).
CREDENTIAL_PARTS = ("api_keys", "ip_rules", "guest_access")
KEY_LIST_PATH = "/key"
GUEST_ACCESS_PATH = "/account/guest-access"


def ip_rules_path(container_id: int) -> str:
    """``/container/{top}/ip/rules`` (§11.2)."""
    return f"/container/{container_id}/ip/rules"


def _is_ip_rules_path(path: str) -> bool:
    parts = path.split("/")
    return len(parts) == 5 and parts[1] == "container" and parts[2].isdigit() and parts[3:] == ["ip", "rules"]


def is_credential_endpoint(endpoint: str) -> bool:
    """Whether a raw page's endpoint belongs to the credential inventory (§11.1-11.3)."""
    path = endpoint.split("?", 1)[0]
    return path in (KEY_LIST_PATH, GUEST_ACCESS_PATH) or _is_ip_rules_path(path)


@dataclass(frozen=True, slots=True)
class ApiKey:
    """One API key or ACME directory URL from ``GET /key`` (§11.1), as one pull saw it.

    ``restricted_to_role_id`` is None when the API omitted it: unknown, never "unrestricted".
    ``last_used`` is None when the key was never used (the API omits ``last_used_date`` then).
    """

    id: int
    name: str = ""
    owner_id: int | None = None
    owner_name: str = ""
    status: str = ""
    created: datetime | None = None
    last_used: datetime | None = None
    restricted_to_role_id: int | None = None
    is_legacy: bool = False
    acme_directory_url: str = ""
    product_name_id: str = ""
    organization_id: int | None = None
    validity_years: int | None = None
    validity_days: int | None = None

    @classmethod
    def from_api(cls, data: Mapping[str, Any]) -> ApiKey:
        """Parse one ``api_keys[]`` entry; ValueError only without a numeric ``id``."""
        key_id = _int_or_none(data.get("id"))
        if key_id is None:
            raise ValueError("API key object without a numeric 'id'")
        owner = data.get("user")
        owner = owner if isinstance(owner, Mapping) else {}
        name = " ".join(p for p in (_text(owner.get("first_name")), _text(owner.get("last_name"))) if p)
        product = data.get("product_name_id")
        return cls(
            id=key_id,
            name=_text(data.get("name")),
            owner_id=_int_or_none(owner.get("id")),
            owner_name=name,
            status=_text(data.get("status")),
            created=parse_api_datetime(data.get("create_date")),
            last_used=parse_api_datetime(data.get("last_used_date")),
            restricted_to_role_id=_int_or_none(data.get("restricted_to_role_id")),
            is_legacy=data.get("is_legacy") is True,
            acme_directory_url=_text(data.get("acme_directory_url")),
            product_name_id=_text(product) if isinstance(product, str) else "",
            organization_id=_int_or_none(data.get("organization_id")),
            validity_years=_int_or_none(data.get("validity_years")),
            validity_days=_int_or_none(data.get("validity_days")),
        )

    @property
    def is_active(self) -> bool:
        return self.status == "active"

    @property
    def is_acme(self) -> bool:
        return bool(self.acme_directory_url)

    @property
    def kind(self) -> str:
        return "ACME URL" if self.is_acme else "API key"

    @property
    def unrestricted(self) -> bool:
        """No restriction (``restricted_to_role_id`` 0); False when unknown."""
        return self.restricted_to_role_id == 0

    @property
    def restriction(self) -> str:
        """The restriction's label, e.g. ``View Only``; ``unknown`` when omitted."""
        role = self.restricted_to_role_id
        if role is None:
            return "unknown"
        return KEY_RESTRICTION_LABELS.get(role, f"role {role}")

    @property
    def label(self) -> str:
        """``ci-deploy (key 12)``."""
        return f"{self.name} ({self.kind.lower()} {self.id})" if self.name else f"{self.kind} {self.id}"


@dataclass(frozen=True, slots=True)
class IpRule:
    """One IP restriction rule (§11.2); ``user_id``/``api_key_id`` None when not specific."""

    id: int
    ip_address: str = ""
    ip_address_end: str = ""
    container_id: int | None = None
    user_id: int | None = None
    api_key_id: int | None = None
    description: str = ""
    created: datetime | None = None

    @classmethod
    def from_api(cls, data: Mapping[str, Any]) -> IpRule:
        rule_id = _int_or_none(data.get("id"))
        if rule_id is None:
            raise ValueError("IP rule object without a numeric 'id'")
        user_id = _int_or_none(data.get("user_id"))
        key_id = _int_or_none(data.get("api_key_id"))
        return cls(
            id=rule_id,
            ip_address=_text(data.get("ip_address")),
            ip_address_end=_text(data.get("ip_address_end")),
            container_id=_int_or_none(data.get("container_id")),
            user_id=user_id or None,
            api_key_id=key_id or None,
            description=_text(data.get("description")),
            created=parse_api_datetime(data.get("date_created")),
        )

    @property
    def account_wide(self) -> bool:
        return self.user_id is None and self.api_key_id is None

    @property
    def span(self) -> str:
        end = self.ip_address_end
        return f"{self.ip_address}-{end}" if end and end != self.ip_address else self.ip_address


@dataclass(frozen=True, slots=True)
class CredentialInventory:
    """The account's API keys, IP rules and guest access at one pull (§11.1-11.3).

    Each part is None when it was not read: a documented refusal (then it is named in the pull's
    ``not_evaluable``) or a snapshot stored before the tool read credentials. None is unknown,
    never "none": an empty tuple means the API answered with an empty list.
    """

    keys: tuple[ApiKey, ...] | None = None
    ip_rules: tuple[IpRule, ...] | None = None
    guest_access: bool | None = None
    guest_access_url: str = ""

    @property
    def read_anything(self) -> bool:
        return self.keys is not None or self.ip_rules is not None or self.guest_access is not None

    def keys_of(self, user_id: int) -> tuple[ApiKey, ...]:
        return tuple(key for key in self.keys or () if key.owner_id == user_id)

    def covers(self, key: ApiKey) -> bool:
        """Whether an IP rule applies to this key: account-wide, its owner's, or its own (§11.2)."""
        return any(
            rule.account_wide
            or rule.api_key_id == key.id
            or (rule.user_id is not None and rule.user_id == key.owner_id)
            for rule in self.ip_rules or ()
        )

    @classmethod
    def from_raw_pages(cls, pages: Sequence[RawPage]) -> CredentialInventory:
        """Parse the inventory out of a pull's raw pages: the one parser pull, store and
        re-performance share. A page that answered other than 200 leaves its part None.
        Malformed entries are skipped only when they have no id; a body that is not JSON leaves
        the part unknown (the pull itself never stores such a page as a 200).
        """
        keys: dict[int, ApiKey] | None = None
        rules: dict[int, IpRule] | None = None
        guest: bool | None = None
        url = ""
        for page in pages:
            path = page.endpoint.split("?", 1)[0]
            if path == KEY_LIST_PATH:
                data = _json_object(page)
                if data is None:
                    continue
                keys = {} if keys is None else keys
                for item in _list(data.get("api_keys")):
                    if isinstance(item, Mapping) and _int_or_none(item.get("id")) is not None:
                        key = ApiKey.from_api(item)
                        keys.setdefault(key.id, key)
            elif _is_ip_rules_path(path):
                data = _json_object(page)
                if data is None:
                    continue
                rules = {} if rules is None else rules
                for item in _list(data.get("ip_rules")):
                    if isinstance(item, Mapping) and _int_or_none(item.get("id")) is not None:
                        rule = IpRule.from_api(item)
                        rules.setdefault(rule.id, rule)
            elif path == GUEST_ACCESS_PATH:
                data = _json_object(page)
                if data is None or not isinstance(data.get("enabled"), bool):
                    continue
                guest = bool(data["enabled"])
                url = _text(data.get("guest_access_url"))
        return cls(
            keys=None if keys is None else tuple(keys[k] for k in sorted(keys)),
            ip_rules=None if rules is None else tuple(rules[r] for r in sorted(rules)),
            guest_access=guest,
            guest_access_url=url,
        )


def _json_object(page: RawPage) -> Mapping[str, Any] | None:
    if page.status != 200:
        return None
    try:
        data = json.loads(page.body)
    except (ValueError, RecursionError):
        return None
    return data if isinstance(data, dict) else None


#: Version of the provenance record. 1: before the operator, key owner and per-endpoint
#: reconciliation were recorded (a snapshot stored by an earlier version decodes as 1).
PROVENANCE_FORMAT = 2


@dataclass(frozen=True, slots=True)
class Operator:
    """Who ran a pull: gathered by the CLI (the only reader of env and argv), never a secret."""

    account: str  #: the OS account (``getpass.getuser()``), or "unknown"
    host: str
    command: str  #: the command line, with any value after a secret-looking flag redacted
    tool_version: str
    python_version: str

    @property
    def label(self) -> str:
        """``alice@build-01``."""
        return f"{self.account}@{self.host}"


@dataclass(frozen=True, slots=True)
class KeyOwner:
    """The CertCentral user the API key is linked to, as ``GET /user/me`` answered at pull time."""

    user_id: int
    name: str
    email: str
    role: str  #: role names, e.g. ``Administrator``; "" when the user has none
    #: True when the user is restricted to some divisions (then the pull sees only those).
    restricted: bool = False
    divisions: tuple[str, ...] = ()  #: the divisions it is restricted to, by name (or id)

    @classmethod
    def from_user(cls, user: User) -> KeyOwner:
        return cls(
            user_id=user.id,
            name=user.full_name,
            email=user.email,
            role=user.role_names,
            restricted=user.restricted,
            divisions=tuple(d.name or str(d.id) for d in user.assigned_divisions),
        )

    @property
    def label(self) -> str:
        """``Alice Admin <alice@example.com>``, or just the email or id when the name is unset."""
        who = self.email or f"user {self.user_id}"
        return f"{self.name} <{who}>" if self.name else who

    @property
    def restriction(self) -> str:
        if not self.restricted:
            return "no division restriction"
        return "restricted to divisions: " + (", ".join(self.divisions) or "unknown")


@dataclass(frozen=True, slots=True)
class EndpointReconciliation:
    """One list endpoint of a pull: the API's own ``page.total`` against the rows received."""

    path: str  #: e.g. ``/user``
    announced: int  #: ``page.total`` of the first page
    received: int  #: distinct users (by id) received over all pages
    pages: int  #: pages answered 200
    complete: bool
    #: (request path with its query string, SHA-256 of the response body), in the order stored.
    requests: tuple[tuple[str, str], ...] = ()
    #: Why it does not add up ("" when complete).
    note: str = ""
    #: Users per page it was paged by, measured on its first page (1000 when served, else what the
    #: server served or the 500 asked after a refused 1000); None: not recorded (an earlier version).
    page_size: int | None = None


@dataclass(frozen=True, slots=True)
class PullProvenance:
    """Where a snapshot came from and how the pull went; never holds the API key."""

    connection: str
    base_url: str
    account_id: int | None
    key_fingerprint: str
    tool_version: str
    started_at: datetime
    finished_at: datetime
    requests: int
    pages: int
    retries: int
    expected_total: int
    received: int
    complete: bool
    #: Why a pull is incomplete, or other caveats (restricted key, service users unavailable, ...).
    notes: tuple[str, ...] = ()
    #: (endpoint, sha256) of each raw page, in the order fetched.
    page_digests: tuple[tuple[str, str], ...] = ()
    details_fetched: bool = False
    #: Who ran the pull; None when not recorded (library use, or an earlier version).
    operator: Operator | None = None
    #: Whose key it was (``GET /user/me``); None when /user/me was refused or not recorded.
    key_owner: KeyOwner | None = None
    #: Per list endpoint, its completeness reconciliation; () when not recorded.
    endpoints: tuple[EndpointReconciliation, ...] = ()
    #: :data:`PROVENANCE_FORMAT` of the tool that stored it; 1 = an earlier version.
    format_version: int = PROVENANCE_FORMAT

    @property
    def division_restricted(self) -> bool:
        """The key's user is restricted to some divisions (``GET /user/me``): the pull saw only those."""
        return self.key_owner is not None and self.key_owner.restricted

    @property
    def recorded_by_earlier_version(self) -> bool:
        """True for a snapshot stored before operator and reconciliation were recorded."""
        return self.format_version < PROVENANCE_FORMAT

    #: Parts CertCentral documented as not available to the key (e.g. ``"service_users"``): not
    #: read, so unknown, never zero. ``service_users`` makes the snapshot incomplete; the
    #: credential parts (:data:`CREDENTIAL_PARTS`) leave the user list complete, and only their
    #: own rules and key changes become not evaluable.
    not_evaluable: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Snapshot:
    """All users of one account at one moment, with the pull's provenance."""

    id: int
    connection: str
    taken_at: datetime
    users: tuple[User, ...]
    provenance: PullProvenance
    #: API keys, IP rules and guest access, parsed from the snapshot's own raw pages (each part
    #: None when not read). Empty for a snapshot made before credentials were read.
    credentials: CredentialInventory = field(default_factory=CredentialInventory)

    @property
    def complete(self) -> bool:
        return self.provenance.complete

    @property
    def admins(self) -> tuple[User, ...]:
        return tuple(user for user in self.users if user.is_admin)


@dataclass(frozen=True, slots=True)
class UserHistory:
    """One user across every stored snapshot of a connection.

    CertCentral gives no creation date, so "never signed in" is measured from ``first_seen``.
    """

    user_id: int
    first_seen: datetime
    last_seen: datetime
    #: (snapshot taken_at, role names) each time the roles differed from the time before.
    role_history: tuple[tuple[datetime, str], ...] = ()


@dataclass(frozen=True, slots=True)
class SnapshotFindings:
    """A snapshot's headline numbers as the rules gave them, stored with it (the trend's points).

    ``rules_version`` names the tool and rule catalogue that computed them; numbers from another
    version are recomputed once rather than shown stale.
    """

    snapshot_id: int
    taken_at: datetime
    users: int
    admins: int
    #: Active (not suppressed) findings.
    findings: int
    by_severity: tuple[tuple[str, int], ...]
    by_rule: tuple[tuple[str, int], ...]
    rules_version: str
    computed_at: datetime

    @classmethod
    def of(
        cls, snapshot: Snapshot, findings: FindingsResult, *, rules_version: str, computed_at: datetime
    ) -> SnapshotFindings:
        """The summary of ``findings`` (what the rules gave ``snapshot``)."""
        severities: dict[str, int] = {}
        rules: dict[str, int] = {}
        for finding in findings.active:
            severities[str(finding.severity)] = severities.get(str(finding.severity), 0) + 1
            rules[finding.rule_id] = rules.get(finding.rule_id, 0) + 1
        return cls(
            snapshot_id=snapshot.id,
            taken_at=snapshot.taken_at,
            users=len(snapshot.users),
            admins=len(snapshot.admins),
            findings=len(findings.active),
            by_severity=tuple(sorted(severities.items())),
            by_rule=tuple(sorted(rules.items())),
            rules_version=rules_version,
            computed_at=computed_at,
        )


class ChangeKind(enum.StrEnum):
    """What changed for one user between two snapshots."""

    ADDED = "added"
    REMOVED = "removed"
    ROLE = "role"
    STATUS = "status"
    EMAIL = "email"
    NAME = "name"
    DIVISION = "division"
    RESTRICTION = "restriction"
    FIRST_SIGN_IN = "first-sign-in"
    SIGNED_IN = "signed-in"
    #: API keys and ACME URLs (``Change.key_id`` names the key; ``user_id`` is its owner).
    KEY_CREATED = "key-created"
    KEY_REVOKED = "key-revoked"
    KEY_OWNER = "key-owner"
    KEY_RESTRICTION = "key-restriction"


@dataclass(frozen=True, slots=True)
class Change:
    """One difference for one user; ``before``/``after`` are display strings ('' = none)."""

    kind: ChangeKind
    user_id: int
    email: str
    before: str = ""
    after: str = ""
    #: The change grants more privilege (a new privileged role, or a joiner with one).
    escalation: bool = False
    #: The user became Administrator with this change (joiner or role change).
    became_admin: bool = False
    #: The API key this change is about (key changes only); None for user changes.
    key_id: int | None = None
    #: Who made it, when and through which channel, from the archived audit log ("" when unknown).
    attribution: str = ""


@dataclass(frozen=True, slots=True)
class ChangeSet:
    """Everything that changed from one snapshot to the next, sorted deterministically."""

    from_snapshot: int | None
    to_snapshot: int
    changes: tuple[Change, ...] = ()

    def of_kind(self, kind: ChangeKind) -> tuple[Change, ...]:
        return tuple(change for change in self.changes if change.kind is kind)

    @property
    def is_empty(self) -> bool:
        return not self.changes


@dataclass(frozen=True, slots=True)
class ExceptionEntry:
    """An accepted risk: a rule that is not to count for one user until ``expires``."""

    rule: str
    user: str  #: email (case-insensitive) or numeric id as text
    reason: str
    owner: str
    expires: datetime
    line: int | None = None  #: where it stands in the exceptions file, for messages
    #: Who approved the accepted risk ("NAME <EMAIL>"), and from when it is in force (UTC).
    approved_by: str = ""
    approved_on: datetime | None = None

    def matches(self, rule_id: str, user_id: int | None, email: str) -> bool:
        if self.rule != rule_id:
            return False
        wanted = self.user.strip()
        if user_id is not None and wanted == str(user_id):
            return True
        return bool(email) and wanted.casefold() == email.casefold()

    def expired(self, now: datetime) -> bool:
        return now >= self.expires

    def approved_at(self, now: datetime) -> bool:
        """Whether the exception had been approved by ``now`` (one approved later never reaches back)."""
        return self.approved_on is None or self.approved_on <= now


class AttestationKind(enum.StrEnum):
    """What a reviewer attested to."""

    MFA = "mfa"
    REVIEW = "review"


@dataclass(frozen=True, slots=True)
class Attestation:
    """A person's signed-off statement, valid until ``expires``.

    A review attestation names the snapshot it reviewed (``snapshot_id``) and that snapshot's
    raw-data digest; it signs off that snapshot only. ``None`` for MFA attestations.
    """

    id: int
    connection: str
    kind: AttestationKind
    by: str
    statement: str
    made_at: datetime
    expires: datetime
    snapshot_id: int | None = None
    #: The reviewed snapshot's raw-data digest at the time of the review ('' when not recorded).
    raw_sha256: str = ""

    def valid_at(self, now: datetime) -> bool:
        return self.made_at <= now < self.expires


@dataclass(frozen=True, slots=True)
class Finding:
    """One rule's verdict on one user (or on the account when ``user_id`` is None)."""

    rule_id: str
    severity: Severity
    title: str
    explanation: str
    remediation: str
    user_id: int | None = None
    email: str = ""
    #: What triggered it, as ordered (label, value) pairs for display and JSON.
    evidence: tuple[tuple[str, str], ...] = ()
    #: Control references of the active profiles, e.g. ("PCI DSS 8.2.6", "NIST AC-2(3)").
    controls: tuple[str, ...] = ()
    suppressed_by: ExceptionEntry | None = None
    #: An exception that matched but has expired, so it no longer suppresses.
    expired_exception: ExceptionEntry | None = None

    @property
    def suppressed(self) -> bool:
        return self.suppressed_by is not None


@dataclass(frozen=True, slots=True)
class ReviewItem:
    """A revoke/modify decision of a closed access review campaign, with its remediation state.

    ``state`` is ``remediated``, ``pending``, ``overdue`` or ``regranted`` as of the snapshot
    evaluated (only campaigns closed, and snapshots taken, by then count): the rules
    ``revocation-overdue`` and ``access-regranted`` read it.
    """

    campaign_id: int
    snapshot_id: int
    user_id: int
    email: str
    decision: str
    new_role: str
    reviewer: str
    ticket: str
    justification: str
    closed_at: datetime
    state: str
    remediated_snapshot_id: int | None = None
    regranted_snapshot_id: int | None = None


@dataclass(frozen=True, slots=True)
class FindingsResult:
    """The outcome of running every rule over one snapshot."""

    snapshot_id: int
    evaluated_at: datetime
    profiles: tuple[str, ...]
    #: Worst first, in the one order every view keeps (``rules.finding_sort_key``): severity, the
    #: rule catalogue's order, email, user id, explanation.
    findings: tuple[Finding, ...]
    #: Exceptions that matched no finding (reported so they can be cleaned up).
    stale_exceptions: tuple[ExceptionEntry, ...] = ()
    #: Thresholds in force, for methodology sections: (label, value, source) e.g.
    #: ("inactive admin", "90 days", "PCI DSS 8.2.6") or (..., "set by policy").
    thresholds: tuple[tuple[str, str, str], ...] = ()
    #: Plain statements of what could not be checked (always includes the 2FA limitation).
    limitations: tuple[str, ...] = field(default_factory=tuple)
    #: The subset only the rules can know (e.g. new-admin unchecked without a previous snapshot);
    #: the rest restates the snapshot's provenance, which a report shows from the source itself.
    rule_limitations: tuple[str, ...] = field(default_factory=tuple)
    #: The identity source the leaver rules compared against, as (label, value) facts for the
    #: report's source area and the findings JSON; () when none was given.
    identity_source: tuple[tuple[str, str], ...] = ()

    @property
    def active(self) -> tuple[Finding, ...]:
        return tuple(finding for finding in self.findings if not finding.suppressed)

    @property
    def suppressed(self) -> tuple[Finding, ...]:
        return tuple(finding for finding in self.findings if finding.suppressed)


@dataclass(frozen=True, slots=True)
class Subaccount:
    """One subaccount an MSP or partner key can list (``GET /account/subaccount``, §11.6)."""

    id: int
    name: str
    status: str = ""
    #: The subaccount's master user ('' / None when CertCentral did not say).
    master_email: str = ""
    master_container_id: int | None = None


def utc_now() -> datetime:
    """The real clock; inject another callable wherever time matters."""
    return datetime.now(UTC)
