"""Reads ``auditor.toml`` and the exceptions file into an ``AuditConfig`` (formats: ARCHITECTURE.md).

(Over 500 lines: most of it is validation that names the file, key and line of every bad value.)

Which file: an explicit ``--config`` path, else the first ``auditor.toml`` in ``search_dirs`` (the
CLI passes the working directory, then the data directory), else built-in defaults.

Default profile: ``soc2``. With no configuration the tool should not claim that a standard requires
its numbers; SOC 2 sets none, so every threshold reads "set by policy" (90 days inactive, quarterly
review), which is also the most common attestation for the companies that run CertCentral.

Every unknown key and bad value is a ``ConfigurationError`` naming the file, the key and its line.
``tomllib`` reports line numbers only for syntax errors, so :func:`find_key_line` scans the text.
"""

from __future__ import annotations

import datetime as dt
import re
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from auditor.errors import ConfigurationError
from auditor.identity import MAPPING_KEYS, PRESET_NAMES, BreakGlass, IdentityConfig
from auditor.inputs import read_input_text
from auditor.models import DEFAULT_PRIVILEGED_ROLES, ExceptionEntry
from auditor.profiles import (
    PROFILE_NAMES,
    RULE_IDS,
    THRESHOLD_FIELDS,
    THRESHOLD_LABELS,
    EffectiveProfile,
    Thresholds,
    combine,
)

CONFIG_FILENAME = "auditor.toml"
DEFAULT_PROFILES: tuple[str, ...] = ("soc2",)
#: Generic mailboxes that should not hold a privileged role (PCI DSS 8.2.2); fnmatch, case-insensitive.
DEFAULT_SHARED_MAILBOX_PATTERNS: tuple[str, ...] = (
    "admin@*",
    "administrator@*",
    "admins@*",
    "it@*",
    "itops@*",
    "sysadmin@*",
    "certs@*",
    "certificates@*",
    "digicert@*",
    "pki@*",
    "security@*",
    "infosec@*",
    "ssl@*",
    "tls@*",
    "noc@*",
    "ops@*",
    "devops@*",
    "webmaster@*",
    "hostmaster@*",
    "postmaster@*",
    "helpdesk@*",
    "support@*",
)
DEFAULT_MAX_ADMINS = 5
#: Upper bound for any day count: a typo such as 9000 is caught instead of silently disabling a rule.
MAX_DAYS = 3650
#: ``user`` value in the exceptions file for account-level rules (too-many-admins, review-overdue...).
ACCOUNT_EXCEPTION_USERS = frozenset({"account", "*"})

_TOP_KEYS = ("profiles", "exceptions_file", "thresholds", "rules", "identity", "review", "notify", "audit_log",
             "evidence")
_AUDIT_LOG_KEYS = ("report_library_url",)
#: ``[evidence]``: the RFC 3161 time-stamping authority of every export (issue 19).
_EVIDENCE_KEYS = ("tsa_url", "tsa_optional")
_IDENTITY_KEYS = ("files", "preset", "map_file", "break_glass", *MAPPING_KEYS)
_REVIEW_KEYS = ("remediation_days",)
#: Default ``[review] remediation_days``.
DEFAULT_REMEDIATION_DAYS = 14
_RULES_KEYS = ("privileged_roles", "allowed_domains", "shared_mailbox_patterns", "max_admins")
_EXCEPTION_KEYS = ("rule", "user", "reason", "owner", "approved_by", "approved_on", "expires")
_DOMAIN_RE = re.compile(r"^(?=.{1,253}$)([a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z0-9-]{2,63}$")


@dataclass(frozen=True, slots=True)
class AuditConfig:
    """Everything the rules need besides the data: profile, thresholds, rule settings, exceptions."""

    #: The selected profile(s), combined; thresholds before ``auditor.toml`` overrides.
    profile: EffectiveProfile
    #: Thresholds in force: the profile's, with the file's ``[thresholds]`` applied.
    thresholds: Thresholds
    privileged_roles: tuple[str, ...] = DEFAULT_PRIVILEGED_ROLES
    #: Lower-case domains; empty turns the external-domain rule off.
    allowed_domains: tuple[str, ...] = ()
    shared_mailbox_patterns: tuple[str, ...] = DEFAULT_SHARED_MAILBOX_PATTERNS
    max_admins: int = DEFAULT_MAX_ADMINS
    #: Whether ``max_admins`` was set in the file (else the default ceiling, set by policy).
    max_admins_configured: bool = False
    #: ``[review] remediation_days``: days after an access review closes before a revoke or
    #: modify not yet seen in a pull is ``revocation-overdue``.
    remediation_days: int = DEFAULT_REMEDIATION_DAYS
    exceptions: tuple[ExceptionEntry, ...] = ()
    #: The configuration file read, or None for built-in defaults.
    source: Path | None = None
    #: Threshold fields the file overrode (their source reads "set by policy (auditor.toml)").
    overridden: tuple[str, ...] = ()
    #: ``[identity]``: the HR / identity-provider roster and the break-glass accounts.
    identity: IdentityConfig = field(default_factory=IdentityConfig)
    #: ``[evidence] tsa_url`` / ``tsa_optional``: the TSA asked for a token at each export (``--tsa-url``).
    tsa_url: str | None = None
    tsa_optional: bool = False
    #: ``notify = [...]``: apprise URLs ``auditor run`` notifies when no ``--notify`` is given (they may hold tokens).
    notify: tuple[str, ...] = field(default=(), repr=False)
    #: ``[audit_log] report_library_url``: the Report Library base URL (§11.5); None: the instance's default.
    report_library_url: str | None = None

    def describe_thresholds(self) -> tuple[tuple[str, str, str], ...]:
        """(label, value, source) rows for methodology sections, retention last."""
        rows: list[tuple[str, str, str]] = []
        for field_name in THRESHOLD_FIELDS:
            days = getattr(self.thresholds, field_name)
            if field_name in self.overridden:
                where = self.source.name if self.source else CONFIG_FILENAME
                source = f"set by policy ({where})"
            else:
                source = self.profile.origin(field_name).source
            rows.append((THRESHOLD_LABELS[field_name], _days(days), source))
        retention = self.profile.retention
        rows.append(("evidence retention", retention.text, retention.source))
        return tuple(rows)

    def controls_for(self, rule_id: str) -> tuple[str, ...]:
        return self.profile.controls_for(rule_id)

    def retention_manifest(self) -> dict[str, object]:
        """The retention block of an evidence manifest (controls.md §3.11)."""
        retention = self.profile.retention
        return {
            "profile": retention.profile,
            "period": retention.text,
            "days": retention.days,
            "source": retention.source,
        }


def default_config() -> AuditConfig:
    """The configuration used when no ``auditor.toml`` is found."""
    profile = combine(DEFAULT_PROFILES)
    return AuditConfig(profile=profile, thresholds=profile.thresholds)


def _days(days: int) -> str:
    return "1 day" if days == 1 else f"{days} days"


# --- locating keys in the text -------------------------------------------------------------------

_HEADER_RE = re.compile(r"^\s*(\[\[?)\s*([^\]]+?)\s*\]\]?\s*(#.*)?$")
_BARE_OR_QUOTED = r"""(?:"[^"]*"|'[^']*'|[A-Za-z0-9_\-]+)"""
_KEY_RE = re.compile(rf"^\s*({_BARE_OR_QUOTED}(?:\s*\.\s*{_BARE_OR_QUOTED})*)\s*=")


def _split_dotted(key: str) -> tuple[str, ...]:
    parts = re.findall(r""""([^"]*)"|'([^']*)'|([A-Za-z0-9_\-]+)""", key)
    return tuple(a or b or c for a, b, c in parts)


def find_key_line(text: str, key: str, *, table: str | None = None, occurrence: int = 0) -> int | None:
    """The 1-based line where ``key`` is assigned, inside ``[table]`` or at the top level.

    For an array of tables (``[[exception]]``) ``occurrence`` picks the n-th table (0-based). With
    ``key=""`` the line of the table header itself is returned. Dotted keys (``thresholds.x = 1``
    at top level) and inline tables on the table's own line are found too. Returns None when the
    key cannot be located (the message then names the key without a line).
    """
    current: tuple[str, ...] = ()
    seen = -1
    in_multiline: str | None = None
    wanted_table = _split_dotted(table) if table else ()
    for number, line in enumerate(text.splitlines(), start=1):
        if in_multiline:
            if line.count(in_multiline) % 2 == 1:
                in_multiline = None
            continue
        header = _HEADER_RE.match(line)
        if header and not _KEY_RE.match(line):
            current = _split_dotted(header.group(2))
            if current == wanted_table:
                seen += 1
                if key == "" and seen == occurrence:
                    return number
            continue
        match = _KEY_RE.match(line)
        if match:
            path = current + _split_dotted(match.group(1))
            in_table = current == wanted_table and (not wanted_table or seen == occurrence)
            if in_table and path == (*wanted_table, key):
                return number
            if not wanted_table and path == (key,):
                return number
            if wanted_table and not current and path == (*wanted_table, key):
                return number  # dotted key at top level
            if wanted_table and not current and path == wanted_table and key in line:
                return number  # inline table: thresholds = { inactive_user_days = 90 }
        for quote in ('"""', "'''"):
            if line.count(quote) % 2 == 1:
                in_multiline = quote
                break
    return None


class _Reader:
    """Validates one parsed TOML document and turns problems into located ConfigurationErrors."""

    def __init__(self, path: Path, text: str) -> None:
        self.path = path
        self.text = text

    def where(self, key: str, *, table: str | None = None, occurrence: int = 0) -> str:
        line = find_key_line(self.text, key, table=table, occurrence=occurrence)
        return f"{self.path}:{line}" if line else str(self.path)

    def error(
        self, message: str, key: str, *, table: str | None = None, occurrence: int = 0, hint: str = ""
    ) -> ConfigurationError:
        return ConfigurationError(f"{self.where(key, table=table, occurrence=occurrence)}: {message}", hint=hint)

    def check_keys(
        self, data: Mapping[str, Any], allowed: Sequence[str], *, table: str | None, occurrence: int = 0
    ) -> None:
        for key in data:
            if key not in allowed:
                name = f"{table}.{key}" if table else key
                raise self.error(
                    f"unknown key '{name}'.",
                    key,
                    table=table,
                    occurrence=occurrence,
                    hint=f"Valid keys{f' in [{table}]' if table else ''}: {', '.join(allowed)}.",
                )

    def string_list(self, value: object, key: str, *, table: str | None, allow_empty: bool) -> tuple[str, ...]:
        name = f"{table}.{key}" if table else key
        if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
            raise self.error(f"'{name}' must be a list of non-empty strings, e.g. {key} = [\"...\"].", key, table=table)
        if not value and not allow_empty:
            raise self.error(f"'{name}' must not be empty.", key, table=table)
        return tuple(dict.fromkeys(v.strip() for v in value))

    def integer(self, value: object, key: str, *, table: str | None, minimum: int, maximum: int) -> int:
        name = f"{table}.{key}" if table else key
        if isinstance(value, bool) or not isinstance(value, int) or not minimum <= value <= maximum:
            raise self.error(
                f"'{name}' must be a whole number from {minimum} to {maximum}, not {value!r}.",
                key,
                table=table,
            )
        return value


#: Deeper nesting than this in a configuration or exceptions file is refused (real files nest 2 or 3 deep).
MAX_NESTING = 50


def _read_toml(path: Path, what: str) -> tuple[str, dict[str, Any]]:
    """Read and parse a TOML file: a regular file of at most 1 MB; every problem names the file and line."""
    text = read_input_text(path, what)
    deep = _deep_nesting_line(text, MAX_NESTING)
    if deep is not None:
        raise ConfigurationError(
            f"{path}:{deep}: values are nested more than {MAX_NESTING} levels deep; the {what} was not read.",
            hint="See ARCHITECTURE.md for the file format.",
        )
    try:
        return text, tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        found = re.search(r"\(at line (\d+), column \d+\)", str(exc))
        if found:
            where = f"{path}:{found.group(1)}"
        elif "end of document" in str(exc):
            where = f"{path}:{len(text.splitlines()) or 1}"
        else:
            where = str(path)
        raise ConfigurationError(
            f"{where}: not valid TOML: {exc}", hint="See ARCHITECTURE.md for the file format."
        ) from exc
    except RecursionError as exc:  # nesting the scan above did not see (it is deliberately simple)
        raise ConfigurationError(
            f"{path}: values are nested too deeply; the {what} was not read.",
            hint="See ARCHITECTURE.md for the file format.",
        ) from exc


def _deep_nesting_line(text: str, limit: int) -> int | None:
    """The 1-based line where arrays or inline tables first nest deeper than ``limit``, else None.

    A light scan outside strings and comments, so a pathological file (100,000 nested arrays)
    is refused with its line instead of overflowing the parser's recursion.
    """
    depth = 0
    line = 1
    index = 0
    length = len(text)
    while index < length:
        char = text[index]
        if char == "\n":
            line += 1
        elif char == "#":
            end = text.find("\n", index)
            index = length if end < 0 else end
            continue
        elif char in "\"'":
            triple = text.startswith(char * 3, index)
            quote = char * 3 if triple else char
            index += len(quote)
            while index < length and not text.startswith(quote, index):
                if text[index] == "\\" and char == '"':
                    index += 1  # the escaped character (an escaped newline still counts as a line)
                if index < length and text[index] == "\n":
                    if not triple:
                        break  # an unterminated string: the parser will say so
                    line += 1
                index += 1
            index += len(quote)
            continue
        elif char in "[{":
            depth += 1
            if depth > limit:
                return line
        elif char in "]}":
            depth = max(0, depth - 1)
        index += 1
    return None


def find_config(search_dirs: Sequence[Path]) -> Path | None:
    """The first ``auditor.toml`` in ``search_dirs``, or None."""
    for directory in search_dirs:
        candidate = Path(directory) / CONFIG_FILENAME
        if candidate.exists():  # a FIFO or device here is refused clearly, not skipped
            return candidate
    return None


def _split_frameworks(frameworks: Sequence[str]) -> tuple[str, ...]:
    names = [part.strip() for item in frameworks for part in item.split(",")]
    return tuple(name for name in names if name)


def load_config(
    path: Path | None, *, search_dirs: Sequence[Path], frameworks: Sequence[str] | None = None
) -> AuditConfig:
    """Load the configuration: ``path``, else the first ``auditor.toml`` in ``search_dirs``, else defaults.

    ``frameworks`` (``--framework``, names or comma-separated names) replaces the file's ``profiles``.
    The exceptions file named by ``exceptions_file`` (relative to the configuration file) is loaded
    and validated too.
    """
    chosen = Path(path) if path is not None else find_config(search_dirs)
    framework_names = _split_frameworks(frameworks) if frameworks else ()
    if frameworks is not None and frameworks and not framework_names:
        raise ConfigurationError("--framework is empty.", hint=f"Choose from: {', '.join(PROFILE_NAMES)}.")
    if chosen is None:
        profile = combine(framework_names or DEFAULT_PROFILES)
        return AuditConfig(profile=profile, thresholds=profile.thresholds)

    text, data = _read_toml(chosen, "configuration file")
    reader = _Reader(chosen, text)
    reader.check_keys(data, _TOP_KEYS, table=None)

    profile_names: tuple[str, ...] = DEFAULT_PROFILES
    if "profiles" in data:
        profile_names = reader.string_list(data["profiles"], "profiles", table=None, allow_empty=False)
        for name in profile_names:
            if name.strip().casefold() not in PROFILE_NAMES:
                raise reader.error(
                    f"unknown profile {name!r} in 'profiles'.",
                    "profiles",
                    hint=f"Valid profiles: {', '.join(PROFILE_NAMES)}.",
                )
    profile = combine(framework_names or profile_names)

    overrides: dict[str, int] = {}
    thresholds_table = data.get("thresholds", {})
    if not isinstance(thresholds_table, dict):
        raise reader.error("'thresholds' must be a table: [thresholds].", "thresholds")
    reader.check_keys(thresholds_table, THRESHOLD_FIELDS, table="thresholds")
    for key, value in thresholds_table.items():
        minimum = 0 if key == "never_signed_in_admin_grace_days" else 1
        overrides[key] = reader.integer(value, key, table="thresholds", minimum=minimum, maximum=MAX_DAYS)
    thresholds = Thresholds(**{f: overrides.get(f, getattr(profile.thresholds, f)) for f in THRESHOLD_FIELDS})

    rules_table = data.get("rules", {})
    if not isinstance(rules_table, dict):
        raise reader.error("'rules' must be a table: [rules].", "rules")
    reader.check_keys(rules_table, _RULES_KEYS, table="rules")
    privileged_roles = DEFAULT_PRIVILEGED_ROLES
    if "privileged_roles" in rules_table:
        privileged_roles = reader.string_list(
            rules_table["privileged_roles"], "privileged_roles", table="rules", allow_empty=False
        )
    allowed_domains: tuple[str, ...] = ()
    if "allowed_domains" in rules_table:
        raw = reader.string_list(rules_table["allowed_domains"], "allowed_domains", table="rules", allow_empty=True)
        allowed_domains = tuple(dict.fromkeys(d.casefold().lstrip("@").rstrip(".") for d in raw))
        for domain in allowed_domains:
            if not _DOMAIN_RE.match(domain):
                raise reader.error(
                    f"'rules.allowed_domains' holds {domain!r}, which is not a domain name (write it as example.com).",
                    "allowed_domains",
                    table="rules",
                )
    patterns = DEFAULT_SHARED_MAILBOX_PATTERNS
    if "shared_mailbox_patterns" in rules_table:
        patterns = reader.string_list(
            rules_table["shared_mailbox_patterns"], "shared_mailbox_patterns", table="rules", allow_empty=True
        )
    max_admins = DEFAULT_MAX_ADMINS
    if "max_admins" in rules_table:
        max_admins = reader.integer(rules_table["max_admins"], "max_admins", table="rules", minimum=1, maximum=10_000)

    review_table = data.get("review", {})
    if not isinstance(review_table, dict):
        raise reader.error("'review' must be a table: [review].", "review")
    reader.check_keys(review_table, _REVIEW_KEYS, table="review")
    remediation_days = DEFAULT_REMEDIATION_DAYS
    if "remediation_days" in review_table:
        remediation_days = reader.integer(
            review_table["remediation_days"], "remediation_days", table="review", minimum=1, maximum=3660
        )

    exceptions: tuple[ExceptionEntry, ...] = ()
    if "exceptions_file" in data:
        value = data["exceptions_file"]
        if not isinstance(value, str) or not value.strip():
            raise reader.error("'exceptions_file' must be a path in quotes.", "exceptions_file")
        exceptions_path = Path(value)
        if not exceptions_path.is_absolute():
            exceptions_path = chosen.parent / exceptions_path
        if not exceptions_path.exists():
            raise reader.error(
                f"'exceptions_file' names {exceptions_path}, which does not exist.",
                "exceptions_file",
                hint="Paths are relative to the configuration file.",
            )
        exceptions = load_exceptions(exceptions_path)

    identity = _identity_section(reader, data.get("identity", {}), chosen.parent)
    tsa_url, tsa_optional = _evidence_section(reader, data.get("evidence", {}))
    notify: tuple[str, ...] = ()
    if "notify" in data:
        notify = reader.string_list(data["notify"], "notify", table=None, allow_empty=True)
    report_library_url = _audit_log_section(reader, data.get("audit_log", {}))

    return AuditConfig(
        profile=profile,
        thresholds=thresholds,
        privileged_roles=privileged_roles,
        allowed_domains=allowed_domains,
        shared_mailbox_patterns=patterns,
        max_admins=max_admins,
        max_admins_configured="max_admins" in rules_table,
        remediation_days=remediation_days,
        exceptions=exceptions,
        source=chosen,
        overridden=tuple(f for f in THRESHOLD_FIELDS if f in overrides),
        identity=identity,
        tsa_url=tsa_url,
        tsa_optional=tsa_optional,
        notify=notify,
        report_library_url=report_library_url,
    )


def _evidence_section(reader: _Reader, table: object) -> tuple[str | None, bool]:
    """``[evidence]``: ``tsa_url`` (the RFC 3161 endpoint) and ``tsa_optional`` (README, "Trusted time")."""
    if not isinstance(table, dict):
        raise reader.error("'evidence' must be a table: [evidence].", "evidence")
    reader.check_keys(table, _EVIDENCE_KEYS, table="evidence")
    url = table.get("tsa_url")
    if url is not None and (not isinstance(url, str) or not url.strip()):
        raise reader.error("'evidence.tsa_url' must be a URL in quotes.", "tsa_url", table="evidence")
    optional = table.get("tsa_optional", False)
    if not isinstance(optional, bool):
        raise reader.error("'evidence.tsa_optional' must be true or false.", "tsa_optional", table="evidence")
    return (url.strip() if url else None), optional


def _audit_log_section(reader: _Reader, table: object) -> str | None:
    """``[audit_log]``: where the Report Library is, when not the instance's default."""
    if not isinstance(table, dict):
        raise reader.error("'audit_log' must be a table: [audit_log].", "audit_log")
    reader.check_keys(table, _AUDIT_LOG_KEYS, table="audit_log")
    value = table.get("report_library_url")
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip().lower().startswith(("https://", "http://")):
        raise reader.error(
            "'audit_log.report_library_url' must be an http(s) URL in quotes, e.g. "
            '"https://api.digicert.com/reports/v1".',
            "report_library_url",
            table="audit_log",
        )
    return value.strip()


def _identity_section(reader: _Reader, table: object, base: Path) -> IdentityConfig:
    """``[identity]``: files, preset, mapping overrides, map file, break-glass accounts (README)."""
    if not isinstance(table, dict):
        raise reader.error("'identity' must be a table: [identity].", "identity")
    reader.check_keys(table, _IDENTITY_KEYS, table="identity")

    def path(value: object, key: str) -> Path:
        if not isinstance(value, str) or not value.strip():
            raise reader.error(f"'identity.{key}' must be a path in quotes.", key, table="identity")
        resolved = Path(value.strip())
        return resolved if resolved.is_absolute() else base / resolved

    files: tuple[Path, ...] = ()
    if "files" in table:
        raw = table["files"]
        items = [raw] if isinstance(raw, str) else raw
        if not isinstance(items, list) or not items:
            raise reader.error("'identity.files' must be a list of paths, e.g. files = [\"hr-export.csv\"].",
                               "files", table="identity")
        files = tuple(path(item, "files") for item in items)
    preset_name = "generic"
    if "preset" in table:
        value = table["preset"]
        if not isinstance(value, str) or value.strip().casefold() not in PRESET_NAMES:
            raise reader.error(f"unknown identity preset {value!r}.", "preset", table="identity",
                               hint=f"Valid presets: {', '.join(PRESET_NAMES)}.")
        preset_name = value.strip().casefold()
    overrides: list[tuple[str, str | tuple[str, ...]]] = []
    for key in MAPPING_KEYS:
        if key not in table:
            continue
        value = table[key]
        if key in ("terminated_values", "aliases"):
            if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
                raise reader.error(f"'identity.{key}' must be a list of non-empty strings (or []).", key,
                                   table="identity")
            overrides.append((key, tuple(v.strip() for v in value)))
        else:
            if not isinstance(value, str) or (key == "email" and not value.strip()):
                unused = "" if key == "email" else ' ("" to leave it unused)'
                raise reader.error(f"'identity.{key}' must be a column name in quotes{unused}.", key,
                                   table="identity")
            overrides.append((key, value.strip()))
    map_file = path(table["map_file"], "map_file") if "map_file" in table else None
    break_glass: list[BreakGlass] = []
    entries = table.get("break_glass", [])
    if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
        raise reader.error("'identity.break_glass' must be a list of tables: "
                           "[[identity.break_glass]] with user and reason.", "break_glass", table="identity")
    for number, entry in enumerate(entries, start=1):
        unknown = sorted(set(entry) - {"user", "reason"})
        user, reason = entry.get("user"), entry.get("reason")
        if unknown or isinstance(user, bool) or not isinstance(user, (str, int)) or not str(user).strip() \
                or not isinstance(reason, str) or not reason.strip():
            raise ConfigurationError(
                f"{reader.where('break_glass', table='identity')}: break-glass account #{number} needs user "
                f"(an email or numeric user id) and reason (why it exists){f', not {unknown}' if unknown else ''}.",
                hint="Write it as [[identity.break_glass]] with user = \"...\" and reason = \"...\".",
            )
        break_glass.append(BreakGlass(user=str(user).strip(), reason=reason.strip()))
    return IdentityConfig(files=files, preset=preset_name, overrides=tuple(overrides), map_file=map_file,
                          break_glass=tuple(break_glass))


# --- exceptions file -----------------------------------------------------------------------------


def _expiry(value: object) -> dt.datetime | None:
    """A TOML date means "through that day" (UTC end of day); a datetime is taken as given (UTC if naive)."""
    if isinstance(value, dt.datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=dt.UTC)
        return value.astimezone(dt.UTC)
    if isinstance(value, dt.date):
        return dt.datetime.combine(value, dt.time.max, tzinfo=dt.UTC)
    return None


def _approval(value: object) -> dt.datetime | None:
    """A TOML date means "from the start of that day" (UTC); a datetime is taken as given (UTC if naive).

    An exception is in force from its approval on: it never suppresses a finding of a snapshot
    taken before it was approved.
    """
    if isinstance(value, dt.datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=dt.UTC)
        return value.astimezone(dt.UTC)
    if isinstance(value, dt.date):
        return dt.datetime.combine(value, dt.time.min, tzinfo=dt.UTC)
    return None


def load_exceptions(path: Path) -> tuple[ExceptionEntry, ...]:
    """Read ``[[exception]]`` entries; every field is required and every problem names its line."""
    text, data = _read_toml(Path(path), "exceptions file")
    reader = _Reader(Path(path), text)
    reader.check_keys(data, ("exception",), table=None)
    entries = data.get("exception", [])
    if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
        raise reader.error("'exception' must be written as [[exception]] tables.", "exception")
    result: list[ExceptionEntry] = []
    for index, entry in enumerate(entries):
        header = find_key_line(text, "", table="exception", occurrence=index)
        at = f"{path}:{header}" if header else str(path)

        def err(message: str, key: str, hint: str = "", index: int = index) -> ConfigurationError:
            return reader.error(message, key, table="exception", occurrence=index, hint=hint)

        reader.check_keys(entry, _EXCEPTION_KEYS, table="exception", occurrence=index)
        for key in _EXCEPTION_KEYS:
            if key not in entry:
                raise ConfigurationError(
                    f"{at}: exception #{index + 1} is missing '{key}'.",
                    hint=f"Every exception needs: {', '.join(_EXCEPTION_KEYS)}.",
                )
        rule = entry["rule"]
        if not isinstance(rule, str) or rule.strip() not in RULE_IDS:
            raise err(
                f"unknown rule {rule!r} in exception #{index + 1}.",
                "rule",
                hint=f"Valid rule ids: {', '.join(RULE_IDS)}.",
            )
        user = entry["user"]
        if isinstance(user, bool) or not isinstance(user, (str, int)) or not str(user).strip():
            raise err(f"'user' of exception #{index + 1} must be an email or a numeric user id.", "user")
        for key in ("reason", "owner", "approved_by"):
            value = entry[key]
            if not isinstance(value, str) or not value.strip():
                raise err(f"'{key}' of exception #{index + 1} must be non-empty text.", key)
        expires = _expiry(entry["expires"])
        if expires is None:
            raise err(
                f"'expires' of exception #{index + 1} must be a date such as 2027-01-31, not {entry['expires']!r}.",
                "expires",
            )
        approved_on = _approval(entry["approved_on"])
        if approved_on is None:
            raise err(
                f"'approved_on' of exception #{index + 1} must be a date such as 2026-10-15, "
                f"not {entry['approved_on']!r}.",
                "approved_on",
            )
        if approved_on >= expires:
            raise err(
                f"exception #{index + 1} is approved on {approved_on:%Y-%m-%d}, after it expires "
                f"({expires:%Y-%m-%d}).",
                "approved_on",
            )
        result.append(
            ExceptionEntry(
                rule=rule.strip(),
                user=str(user).strip(),
                reason=entry["reason"].strip(),
                owner=entry["owner"].strip(),
                expires=expires,
                line=header,
                approved_by=entry["approved_by"].strip(),
                approved_on=approved_on,
            )
        )
    return tuple(result)
