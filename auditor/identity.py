"""The identity source: an HR or identity-provider roster, read from exported CSV or JSON files.

(Over 500 lines: reading, mapping and matching the roster share its mapping and record types;
split by step, the parts would import each other.)

Leavers and orphans are invisible to CertCentral (it does not know who left the company), so
the rules ``terminated-still-active`` and ``not-in-identity-source`` compare the snapshot with a
roster exported from an HR system or identity provider. This module reads that roster and
matches CertCentral users to its people; the rules decide what the matches mean.

* **Reading.** Files are read through :func:`auditor.inputs.read_input_file` (regular files only,
  never blocking) with their own cap, :data:`MAX_IDENTITY_BYTES` (a 100,000-person roster is far
  larger than the 1 MB allowed for ``auditor.toml``). ``.json`` files are JSON, anything else CSV.
  Every bad input is a :class:`~auditor.errors.ConfigurationError` (exit 2) naming the file, the
  row and the column, raised before any rule runs.
* **Mapping.** Which column holds what is explicit (:class:`IdentityMapping`), with presets for the
  exports people have (:data:`PRESETS`); header names compare case-insensitively.
* **Matching.** Case-insensitive email first, then aliases, then an explicit map file.
* **Time.** Everything is judged as of the snapshot: a person whose termination date lies after
  the snapshot was still employed then.

What a bundle records (``evidence/rule-inputs.json``) is :meth:`IdentitySource.recorded`: the
source's digests and mapping plus only the records some user matched (or could have matched), so
``auditor verify --reperform`` re-derives the same findings without the file, which holds
personal data of everyone in the company.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, time
from pathlib import Path
from typing import Any, Literal

from auditor.errors import ConfigurationError
from auditor.inputs import read_input_file
from auditor.labels import stamp
from auditor.models import User

#: The largest identity file read: 256 MB holds a roster of well over a million people.
MAX_IDENTITY_BYTES = 256 * 1024 * 1024
#: The largest map file read (it is written by hand).
MAX_MAP_BYTES = 16 * 1024 * 1024

#: The mapping keys of ``[identity]`` (and of :class:`IdentityMapping`): the contract.
MAPPING_KEYS = ("email", "status", "terminated_values", "termination_date", "employee_id", "manager", "aliases")

MatchKind = Literal["email", "alias", "map file"]


@dataclass(frozen=True, slots=True)
class IdentityMapping:
    """Which column of an identity export holds what ("" or () means not used).

    ``optional`` names the columns a preset reads only when the file has them (a column set in
    ``auditor.toml`` must exist).
    """

    email: str
    status: str = ""
    #: Status values meaning "gone" (case-insensitive).
    terminated_values: tuple[str, ...] = ()
    termination_date: str = ""
    employee_id: str = ""
    manager: str = ""
    aliases: tuple[str, ...] = ()
    optional: tuple[str, ...] = ()

    def describe(self) -> dict[str, Any]:
        """The mapping as the evidence records it."""
        return {
            "email": self.email,
            "status": self.status or None,
            "terminated_values": list(self.terminated_values),
            "termination_date": self.termination_date or None,
            "employee_id": self.employee_id or None,
            "manager": self.manager or None,
            "aliases": list(self.aliases),
        }


#: The presets. Column names are those each export writes (see README, "Leavers and orphans":
#: Okta's are the least certain, so every preset can be overridden key by key in ``[identity]``).
PRESETS: dict[str, IdentityMapping] = {
    # The default: a plain HR export written for this tool.
    "generic": IdentityMapping(
        email="email",
        status="status",
        terminated_values=("terminated", "inactive", "disabled", "suspended", "deprovisioned"),
        termination_date="termination_date",
        employee_id="employee_id",
        aliases=("aliases",),
        optional=("termination_date", "employee_id", "aliases"),
    ),
    # Okta: the user profile's attribute names (login, email, secondEmail, employeeNumber, managerId)
    # with the user's status and statusChanged; DEPROVISIONED is shown as "Deactivated" in the console.
    "okta": IdentityMapping(
        email="login",
        status="status",
        terminated_values=("deprovisioned", "deactivated", "suspended"),
        termination_date="statusChanged",
        employee_id="employeeNumber",
        manager="managerId",
        aliases=("email", "secondEmail"),
        optional=("statusChanged", "employeeNumber", "managerId", "email", "secondEmail"),
    ),
    # Microsoft Entra ID, Users > All users > Download users (learn.microsoft.com, "Download a list
    # of users"): userPrincipalName, mail, objectId, accountEnabled, alternateEmailAddress.
    "entra": IdentityMapping(
        email="userPrincipalName",
        status="accountEnabled",
        terminated_values=("false",),
        employee_id="objectId",
        aliases=("mail", "alternateEmailAddress", "proxyAddresses"),
        optional=("objectId", "mail", "alternateEmailAddress", "proxyAddresses"),
    ),
    # Google Workspace, Directory > Users > Download users (the Admin console's CSV).
    "google": IdentityMapping(
        email="Email Address [Required]",
        status="Status [READ ONLY]",
        terminated_values=("suspended", "archived"),
        employee_id="Employee ID",
        manager="Manager Email",
        aliases=("Work Secondary Email", "Home Secondary Email"),
        optional=("Employee ID", "Manager Email", "Work Secondary Email", "Home Secondary Email"),
    ),
}
PRESET_NAMES: tuple[str, ...] = tuple(PRESETS)
DEFAULT_PRESET = "generic"


def preset(name: str) -> IdentityMapping:
    """The preset called ``name`` (case-insensitive); ConfigurationError naming the valid ones."""
    key = name.strip().casefold()
    if key not in PRESETS:
        raise ConfigurationError(
            f"Unknown identity preset {name!r}.",
            hint=f"Valid presets: {', '.join(PRESET_NAMES)} (--identity-preset NAME or preset = ... in [identity]).",
        )
    return PRESETS[key]


@dataclass(frozen=True, slots=True)
class BreakGlass:
    """An emergency-access account named in ``[identity]``: reported apart, with its reason, never judged."""

    user: str  #: email (case-insensitive) or numeric user id
    reason: str

    def matches(self, user: User) -> bool:
        wanted = self.user.strip()
        return wanted == str(user.id) or (bool(user.email) and wanted.casefold() == user.email.casefold())


@dataclass(frozen=True, slots=True)
class IdentityConfig:
    """The ``[identity]`` section of ``auditor.toml`` (paths resolved against the file)."""

    files: tuple[Path, ...] = ()
    preset: str = DEFAULT_PRESET
    #: Mapping keys set in the file, on top of the preset: (key, value) pairs.
    overrides: tuple[tuple[str, str | tuple[str, ...]], ...] = ()
    map_file: Path | None = None
    break_glass: tuple[BreakGlass, ...] = ()

    def mapping(self, preset_name: str | None = None) -> IdentityMapping:
        """The preset (``preset_name`` if given, else the configured one) with the overrides applied."""
        base = preset(preset_name or self.preset)
        if not self.overrides:
            return base
        changed = dict(self.overrides)
        optional = tuple(
            column for column in base.optional if column not in _columns_of(changed)
        )
        return replace(base, optional=optional, **changed)  # type: ignore[arg-type]


def _columns_of(values: Mapping[str, str | tuple[str, ...]]) -> set[str]:
    columns: set[str] = set()
    for key, value in values.items():
        if key == "terminated_values":
            continue
        columns.update([value] if isinstance(value, str) else value)
    return columns


@dataclass(frozen=True, slots=True)
class IdentityRequest:
    """What the command line asked for: ``--identity FILE`` (repeatable) and ``--identity-preset NAME``."""

    files: tuple[Path, ...] = ()
    preset: str | None = None


# --- the source ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SourceFile:
    """One file read: what the evidence records about it (never its path, only its name)."""

    name: str
    sha256: str
    rows: int
    #: When the file says it was exported (a JSON export's ``exported_at``); None when it does not.
    exported_at: datetime | None = None
    format: str = "csv"


@dataclass(frozen=True, slots=True)
class IdentityRecord:
    """One person (row) of the identity source."""

    file: str  #: the file's name
    row: int  #: CSV: the spreadsheet row (the header is row 1); JSON: the record's position (from 1)
    email: str  #: as written; matched case-insensitively
    status: str = ""
    terminated: bool = False  #: the status is one of ``terminated_values``
    termination_date: datetime | None = None
    employee_id: str = ""
    manager: str = ""
    aliases: tuple[str, ...] = ()

    @property
    def where(self) -> str:
        return f"{self.file} row {self.row}"

    def gone_at(self, moment: datetime, *, has_status: bool) -> bool:
        """Whether the person had left by ``moment`` (the snapshot's time).

        With a status column: a terminated status, dated on or before ``moment`` (or undated).
        Without one: a termination date on or before ``moment``.
        """
        if has_status:
            return self.terminated and (self.termination_date is None or self.termination_date <= moment)
        return self.termination_date is not None and self.termination_date <= moment


@dataclass(frozen=True, slots=True)
class MapEntry:
    """One line of the map file: this CertCentral user is that person (employee id or email)."""

    user: str
    person: str
    row: int


@dataclass(frozen=True, slots=True)
class IdentitySource:
    """The roster the rules compare against, and what the evidence says about where it came from."""

    files: tuple[SourceFile, ...]
    preset: str
    mapping: IdentityMapping
    records: tuple[IdentityRecord, ...]
    #: Which mapped columns were found and used (a preset's optional columns may be absent).
    columns_used: tuple[str, ...] = ()
    map_file: SourceFile | None = None
    map_entries: tuple[MapEntry, ...] = ()
    #: True when ``records`` are only those recorded in a bundle (the matched ones), not the roster.
    recorded_subset: bool = False

    @property
    def row_count(self) -> int:
        return sum(f.rows for f in self.files)

    @property
    def has_status(self) -> bool:
        return bool(self.mapping.status)

    def evidence(self) -> dict[str, Any]:
        """The record of the source for the manifest's context and the findings."""
        return {
            "files": [
                {
                    "name": f.name,
                    "sha256": f.sha256,
                    "rows": f.rows,
                    "format": f.format,
                    "exported_at": f.exported_at.isoformat() if f.exported_at else None,
                }
                for f in self.files
            ],
            "preset": self.preset,
            "mapping": self.mapping.describe(),
            "columns_used": list(self.columns_used),
            "map_file": {"name": self.map_file.name, "sha256": self.map_file.sha256, "rows": self.map_file.rows}
            if self.map_file
            else None,
        }

    def describe(self) -> str:
        """One line for reports: files, digests, rows, export time and preset."""
        parts = []
        for f in self.files:
            exported = f"exported {stamp(f.exported_at)}" if f.exported_at else "export time not stated"
            parts.append(f"{f.name} ({f.rows:,} rows, {exported}, SHA-256 {f.sha256})")
        text = "; ".join(parts) + f"; preset {self.preset}"
        if self.map_file is not None:
            text += f"; map file {self.map_file.name} ({self.map_file.rows:,} rows, SHA-256 {self.map_file.sha256})"
        return text

    def recorded(self, matches: Mapping[int, Match]) -> IdentitySource:
        """The same source holding only the records the matching looked at: what a bundle records."""
        keep: set[tuple[str, int]] = set()
        for match in matches.values():
            keep.update((r.file, r.row) for r in match.candidates)
        used_maps = {m.map_entry for m in matches.values() if m.map_entry is not None}
        return replace(
            self,
            records=tuple(r for r in self.records if (r.file, r.row) in keep),
            map_entries=tuple(e for e in self.map_entries if e in used_maps),
            recorded_subset=True,
        )


@dataclass(frozen=True, slots=True)
class Match:
    """How one CertCentral user was matched to a person."""

    record: IdentityRecord
    how: MatchKind
    #: Every record with the matching key (a rehire has an old and a new record); ``record`` is one.
    candidates: tuple[IdentityRecord, ...] = ()
    map_entry: MapEntry | None = None


# --- reading ------------------------------------------------------------------------------------

_ALIAS_SPLIT = re.compile(r"[;,|\s]+")
_SMTP = re.compile(r"^(?:smtp|sip):", re.IGNORECASE)


def _aliases(value: object) -> list[str]:
    items = value if isinstance(value, list) else [value]
    found: list[str] = []
    for item in items:
        if item is None:
            continue
        for part in _ALIAS_SPLIT.split(str(item)):
            address = _SMTP.sub("", part.strip())
            if "@" in address:
                found.append(address)
    return found


def _parse_date(text: str) -> datetime | None:
    """A date (start of that day, UTC) or an ISO 8601 timestamp (UTC when it names no zone)."""
    value = text.strip()
    if not value:
        return None
    if len(value) == 10:
        return datetime.combine(date.fromisoformat(value), time.min, tzinfo=UTC)
    if value.endswith(("Z", "z")):
        value = value[:-1] + "+00:00"
    parsed = datetime.fromisoformat(value)
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def _scalar(value: object) -> str:
    if value.__class__ is str:
        return value.strip()
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return ";".join(_scalar(item) for item in value)
    return str(value).strip()


class _Table:
    """The rows of one file as (row number, {lower-case column: value})."""

    def __init__(self, name: str, header: Sequence[str], rows: Iterable[tuple[int, Sequence[str]]]) -> None:
        self.name = name
        self.columns = {column.strip().casefold(): index for index, column in enumerate(header)}
        self.header = tuple(header)
        self.rows = rows


def _csv_table(path: Path, data: bytes) -> _Table:
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise ConfigurationError(
            f"{path}: row {line}: the identity file is not UTF-8 text ({exc.reason}).",
            hint="Export the file as UTF-8 CSV.",
        ) from exc
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    try:
        header = next(reader, None)
    except csv.Error as exc:
        raise ConfigurationError(f"{path}: row 1: not valid CSV ({exc}).") from exc
    if not header:
        raise ConfigurationError(f"{path}: the identity file is empty (no header row).",
                                 hint="Export it with a header row naming the columns.")

    def rows() -> Iterable[tuple[int, Sequence[str]]]:
        # Rows whose cells are all blank are skipped by the reader of the rows (no email, alias or id).
        row_number = 1
        try:
            for row_number, row in enumerate(reader, start=2):
                if row:
                    yield row_number, row
        except csv.Error as exc:
            raise ConfigurationError(f"{path}: row {row_number + 1}: not valid CSV ({exc}).") from exc

    return _Table(path.name, header, rows())


def _json_table(path: Path, data: bytes) -> tuple[_Table, datetime | None]:
    try:
        document = json.loads(data.decode("utf-8-sig"))
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise ConfigurationError(f"{path}: not valid JSON ({exc}).",
                                 hint="Give a list of objects, or an object with a \"users\" list.") from exc
    exported_at: datetime | None = None
    records: object = document
    if isinstance(document, dict):
        for key in ("exported_at", "generated_at", "export_time"):
            if isinstance(document.get(key), str):
                try:
                    exported_at = _parse_date(document[key])
                except ValueError as exc:
                    raise ConfigurationError(
                        f"{path}: '{key}' is {document[key]!r}, not a date or ISO 8601 time."
                    ) from exc
                break
        records = next((document[k] for k in ("users", "people", "records", "employees") if k in document), None)
    if not isinstance(records, list) or not all(isinstance(item, dict) for item in records):
        raise ConfigurationError(f"{path}: expected a list of objects (or an object with a \"users\" list).")
    columns: dict[str, str] = {}
    for item in records:
        for key in item:
            columns.setdefault(str(key).strip().casefold(), str(key))
    header = list(columns.values())

    def rows() -> Iterable[tuple[int, Sequence[str]]]:
        # As text, like CSV cells: true/false for booleans, a list (of aliases) joined with ";".
        for number, item in enumerate(records, start=1):
            lowered = {str(k).strip().casefold(): v for k, v in item.items()}
            yield number, [_scalar(lowered.get(column)) for column in columns]

    return _Table(path.name, header, rows()), exported_at


def _read_file(
    path: Path, mapping: IdentityMapping, seen_ids: dict[str, tuple[str, str, int]]
) -> tuple[SourceFile, list[IdentityRecord], list[str], bytes]:
    data = read_input_file(path, "identity file", limit=MAX_IDENTITY_BYTES)
    is_json = path.suffix.casefold() == ".json"
    exported_at = None
    if is_json:
        table, exported_at = _json_table(path, data)
    else:
        table = _csv_table(path, data)
    where = "record" if is_json else "row"

    def column(name: str) -> int | None:
        if not name:
            return None
        index = table.columns.get(name.strip().casefold())
        if index is None and name not in mapping.optional:
            raise ConfigurationError(
                f"{path}: {where} 1: the mapped column '{name}' is not in the file "
                f"(its columns: {', '.join(table.header[:30])}).",
                hint="Name the right column in [identity] of auditor.toml (email, status, termination_date, "
                "employee_id, manager, aliases), or pick another preset with --identity-preset "
                f"({', '.join(PRESET_NAMES)}).",
            )
        return index

    email_at = column(mapping.email)
    status_at = column(mapping.status)
    date_at = column(mapping.termination_date)
    id_at = column(mapping.employee_id)
    manager_at = column(mapping.manager)
    alias_at = [(name, index) for name in mapping.aliases if (index := column(name)) is not None]
    used = [
        name
        for name, index in (
            (mapping.email, email_at),
            (mapping.status, status_at),
            (mapping.termination_date, date_at),
            (mapping.employee_id, id_at),
            (mapping.manager, manager_at),
            *alias_at,
        )
        if index is not None
    ]
    terminated = frozenset(value.casefold() for value in mapping.terminated_values)

    width = len(table.header)
    name = path.name

    # Every cell is text here (JSON values were made text by _json_table).
    records: list[IdentityRecord] = []
    count = 0
    row: Sequence[str]
    for number, row in table.rows:
        count += 1
        if len(row) < width:
            row = [*row, *([""] * (width - len(row)))]
        email = row[email_at].strip() if email_at is not None else ""
        status = row[status_at].strip() if status_at is not None else ""
        when: datetime | None = None
        raw = row[date_at].strip() if date_at is not None else ""
        if raw:
            try:
                when = _parse_date(raw)
            except ValueError:
                raise ConfigurationError(
                    f"{path}: {where} {number}, column '{mapping.termination_date}': {raw!r} is not a date "
                    "(write it as 2026-10-31, or an ISO 8601 time such as 2026-10-31T17:00:00Z).",
                    hint="Nothing was evaluated. Fix the row, or unmap the column with termination_date = \"\" "
                    "in [identity].",
                ) from None
        employee_id = row[id_at].strip() if id_at is not None else ""
        if employee_id:
            earlier = seen_ids.get(employee_id)
            if earlier is not None:
                raise ConfigurationError(
                    f"{path}: {where} {number}, column '{mapping.employee_id}': employee id {employee_id!r} is "
                    f"already used by {earlier[0]} {earlier[1]} {earlier[2]}.",
                    hint="Nothing was evaluated. An employee id names one person: remove the duplicate row.",
                )
            seen_ids[employee_id] = (name, where, number)
        aliases: list[str] = []
        for _column, index in alias_at:
            value = row[index]
            if value:
                aliases.extend(_aliases(value))
        if not email and not aliases and not employee_id:
            continue
        records.append(
            IdentityRecord(
                name,
                number,
                email,
                status,
                status.casefold() in terminated,
                when,
                employee_id,
                row[manager_at].strip() if manager_at is not None else "",
                tuple(dict.fromkeys(a for a in aliases if a.casefold() != email.casefold())) if aliases else (),
            )
        )
    source = SourceFile(
        name=path.name,
        sha256=hashlib.sha256(data).hexdigest(),
        rows=count,
        exported_at=exported_at,
        format="json" if is_json else "csv",
    )
    return source, records, used, data


def _read_map(path: Path) -> tuple[SourceFile, list[MapEntry]]:
    """The map file: CSV with the columns ``user`` (CertCentral email or id) and ``person``."""
    data = read_input_file(path, "identity map file", limit=MAX_MAP_BYTES)
    table = _csv_table(path, data)
    user_at, person_at = table.columns.get("user"), table.columns.get("person")
    for name, index in (("user", user_at), ("person", person_at)):
        if index is None:
            raise ConfigurationError(
                f"{path}: row 1: the map file has no column '{name}'.",
                hint="The map file is CSV with the columns user (CertCentral email or id) and person "
                "(the person's employee id or email in the identity source).",
            )
    entries: list[MapEntry] = []
    count = 0
    for number, row in table.rows:
        count += 1
        user = _scalar(row[user_at] if user_at is not None and user_at < len(row) else "")
        person = _scalar(row[person_at] if person_at is not None and person_at < len(row) else "")
        if not user or not person:
            raise ConfigurationError(f"{path}: row {number}: both user and person must be given.")
        entries.append(MapEntry(user=user, person=person, row=number))
    return SourceFile(name=path.name, sha256=hashlib.sha256(data).hexdigest(), rows=count), entries


@dataclass(frozen=True, slots=True)
class LoadedIdentity:
    """An identity source read from disk, with the files' bytes (for ``--include-identity-source``)."""

    source: IdentitySource
    raw: tuple[tuple[str, bytes], ...] = field(default=(), repr=False)


def load(config: IdentityConfig, request: IdentityRequest | None = None, *, keep_bytes: bool = False) -> (
    LoadedIdentity | None
):
    """Read the identity source named by the command line (``request``) or ``[identity]``; None when neither.

    ``--identity FILE`` replaces the configuration's files and ``--identity-preset`` its preset; the
    configuration's mapping overrides, map file and break-glass accounts still apply.
    """
    request = request or IdentityRequest()
    if request.preset is not None and not request.files and not config.files:
        raise ConfigurationError(
            "--identity-preset was given without an identity file.",
            hint="Add --identity FILE (or files = [...] in [identity] of auditor.toml).",
        )
    files = request.files or config.files
    if not files:
        return None
    preset_name = (request.preset or config.preset).strip().casefold()
    mapping = config.mapping(preset_name)
    seen_ids: dict[str, tuple[str, str, int]] = {}
    sources: list[SourceFile] = []
    records: list[IdentityRecord] = []
    used: list[str] = []
    raw: list[tuple[str, bytes]] = []
    names = [Path(p).name for p in files]
    if len(set(names)) != len(names):
        raise ConfigurationError(f"Two identity files share a name ({', '.join(names)}); rename one.",
                                 hint="The evidence names each file by its name.")
    for path in files:
        read, rows, columns, data = _read_file(Path(path), mapping, seen_ids)
        sources.append(read)
        records.extend(rows)
        used.extend(c for c in columns if c not in used)
        if keep_bytes:  # the very bytes hashed and parsed, never a second read
            raw.append((read.name, data))
    map_source: SourceFile | None = None
    entries: list[MapEntry] = []
    if config.map_file is not None:
        map_source, entries = _read_map(config.map_file)
        index = IdentityIndex(records)
        for entry in entries:
            if not index.person(entry.person):
                raise ConfigurationError(
                    f"{config.map_file}: row {entry.row}, column 'person': {entry.person!r} is no employee id or "
                    "email in the identity source.",
                    hint="Nothing was evaluated. Correct the map file or the identity export.",
                )
    source = IdentitySource(
        files=tuple(sources),
        preset=preset_name,
        mapping=mapping,
        records=tuple(records),
        columns_used=tuple(used),
        map_file=map_source,
        map_entries=tuple(entries),
    )
    return LoadedIdentity(source=source, raw=tuple(raw))


# --- matching -----------------------------------------------------------------------------------


class IdentityIndex:
    """Records by case-folded email, by alias and by employee id (each key: one record, or a list of them).

    Built by :func:`match_users` for its source; a caller matching several snapshots against one
    source (a report's trend points) builds it once and passes it (about 0.05 s CPU per 100,000
    records, BENCHMARKS.md).
    """

    def __init__(self, records: Sequence[IdentityRecord]) -> None:
        by_email: dict[str, Any] = {}
        by_alias: dict[str, Any] = {}
        self.records = records
        self._by_id: dict[str, IdentityRecord] | None = None
        for record in records:
            if record.email:
                _add(by_email, record.email.casefold(), record)
            for alias in record.aliases:
                _add(by_alias, alias.casefold(), record)
        self.by_email = by_email
        self.by_alias = by_alias

    @staticmethod
    def lookup(table: Mapping[str, Any], key: str) -> list[IdentityRecord]:
        found = table.get(key)
        if found is None:
            return []
        return found if isinstance(found, list) else [found]

    def person(self, key: str) -> list[IdentityRecord]:
        if self._by_id is None:
            self._by_id = {r.employee_id: r for r in self.records if r.employee_id}
        record = self._by_id.get(key.strip())
        if record is not None:
            return [record]
        return self.lookup(self.by_email, key.strip().casefold())


def _add(table: dict[str, Any], key: str, record: IdentityRecord) -> None:
    # One record per key is the rule; a list only where a key repeats (a rehire), to keep 100,000 cheap.
    found = table.get(key)
    if found is None:
        table[key] = record
    elif isinstance(found, list):
        if found[-1] is not record:
            found.append(record)
    elif found is not record:
        table[key] = [found, record]


def _choose(candidates: Sequence[IdentityRecord], moment: datetime, has_status: bool) -> IdentityRecord:
    """Of several records for one address (a rehire), a current one wins; else the latest to leave."""
    if len(candidates) == 1:
        return candidates[0]
    current = [r for r in candidates if not r.gone_at(moment, has_status=has_status)]
    if current:
        return current[0]
    dated = [r for r in candidates if r.termination_date is not None]
    if dated:
        return max(dated, key=lambda r: (r.termination_date or moment, -r.row))
    return candidates[0]


def match_users(
    users: Iterable[User], source: IdentitySource, *, now: datetime, index: IdentityIndex | None = None
) -> dict[int, Match]:
    """User id -> how that user matched a person: email, then alias, then the map file.

    ``index`` is ``IdentityIndex(source.records)``, built here when not given.
    """
    if index is None:
        index = IdentityIndex(source.records)
    maps: dict[str, MapEntry] = {}
    for line in source.map_entries:
        maps.setdefault(line.user.strip().casefold(), line)
    has_status = source.has_status
    tables: tuple[tuple[MatchKind, dict[str, Any]], ...] = (("email", index.by_email), ("alias", index.by_alias))
    matches: dict[int, Match] = {}
    for user in users:
        email, username = user.email.strip().casefold(), user.username.strip().casefold()
        addresses = [email] if not username or username == email else [a for a in (email, username) if a]
        found: Match | None = None
        for how, table in tables:
            if len(addresses) == 1:  # the common case, without building a list per user
                hit = table.get(addresses[0])
                if hit is None:
                    continue
                unique = tuple(dict.fromkeys(hit)) if isinstance(hit, list) else (hit,)
            else:
                candidates = [r for a in addresses for r in index.lookup(table, a)]
                if not candidates:
                    continue
                unique = tuple(dict.fromkeys(candidates))
            found = Match(_choose(unique, now, has_status), how, unique)
            break
        if found is None:
            entry: MapEntry | None = maps.get(str(user.id)) or next((maps[a] for a in addresses if a in maps), None)
            if entry is not None:
                candidates = index.person(entry.person)
                if candidates:
                    unique = tuple(candidates)
                    found = Match(_choose(unique, now, has_status), "map file", unique, entry)
        if found is not None:
            matches[user.id] = found
    return matches


def match_counts(matches: Mapping[int, Match]) -> dict[str, int]:
    counts = {"email": 0, "alias": 0, "map file": 0}
    for match in matches.values():
        counts[match.how] += 1
    return counts
