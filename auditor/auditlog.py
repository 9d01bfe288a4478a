"""The CertCentral audit log (Report Library runs, §11.5): archived runs, their rows, and what they prove.

A run is kept exactly as downloaded (:class:`AuditLogRun`, JSON or CSV); this module parses it into
:class:`AuditLogEntry` rows and answers the three questions the rules and the diff ask of the log,
always *as of* a moment (only entries up to a snapshot's time count):

- activity: the newest SSO sign-in or API action of a user (``stale-login``, ``admin-dormant``);
- attribution: who changed a user's role, when, and through the console or the API;
- coverage: whether the archived runs cover a period at all (no coverage is a limitation, never
  evidence of absence).

The JSON column names are UNCERTAIN (§11.5 has only the CSV/SIEM names): both the documented
names ("Date and time (UTC)") and their snake_case forms (``date_and_time_utc``) are read. Stdlib
and ``models`` only, so the rules, the evidence re-check and the report can all use it.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any, Final

from auditor.models import Change, ChangeKind, ChangeSet, PrivilegedRoles, Snapshot, User, parse_api_datetime

#: Report Library paths (§11.5), relative to its base URL.
HISTORY_PATH: Final = "/report/history"
AUDIT_LOG_REPORT_TYPE: Final = "audit-logs"
#: DigiCert keeps runs this long (§11.5): archiving them is the point.
RETENTION_DAYS: Final = 90
#: How long a run of each schedule reaches back before its start date (ON_DEMAND: its rows only).
_SCHEDULE_SPAN: Final[Mapping[str, timedelta]] = {"WEEKLY": timedelta(days=7), "MONTHLY": timedelta(days=31)}

#: The documented columns (§11.5) and the keys the JSON form may use for each.
_FIELDS: Final[Mapping[str, tuple[str, ...]]] = {
    "at": ("Date and time (UTC)", "date_and_time_utc", "date_time", "date", "timestamp"),
    "action": ("Action", "action"),
    "via": ("Action taken via", "action_taken_via", "via"),
    "activity": ("Activity", "activity"),
    "user_id": ("User ID", "user_id"),
    "user_name": ("User name", "user_name", "username"),
    "message": ("Message", "message"),
    "result": ("Result", "result"),
    "ip_address": ("IP address", "ip_address"),
    "target_user_id": ("Target user ID", "target_user_id"),
}
#: Column order of the CSV form (the sandbox writes it; the parser reads any order).
CSV_COLUMNS: Final = (
    "Account ID", "Action", "Action taken via", "Activity", "Date and time (UTC)", "Division/Container ID",
    "Division/Container name", "IP address", "IP country", "Message", "Result", "User ID", "User name",
    "Target user ID",
)
_FAILED = ("fail", "denied", "error", "unsuccessful")


@dataclass(frozen=True, slots=True)
class AuditLogRun:
    """One Report Library run as archived: the bytes downloaded, where from, and when first seen."""

    report_identifier: str
    run_identifier: str
    #: ``report_start_date`` from ``GET /report/history`` (UTC).
    started_at: datetime
    schedule: str  #: ON_DEMAND, WEEKLY, MONTHLY (as listed; '' when not)
    report_format: str  #: "JSON" or "CSV": the form actually downloaded
    endpoint: str  #: the download URL path and query it came from
    body: bytes
    sha256: str
    received_at: datetime
    #: The snapshot whose pull first archived it (0 until stored).
    first_snapshot_id: int = 0

    @property
    def key(self) -> tuple[str, str]:
        return (self.report_identifier, self.run_identifier)


@dataclass(frozen=True, slots=True)
class AuditLogEntry:
    """One audit-log row: who did what, when, through which channel."""

    at: datetime
    action: str
    via: str  #: "CertCentral" (the console) or "API", as the log says
    user_id: int | None  #: who acted
    user_name: str
    message: str
    result: str
    activity: str = ""
    target_user_id: int | None = None

    @property
    def succeeded(self) -> bool:
        return not any(word in self.result.lower() for word in _FAILED)

    @property
    def channel(self) -> str:
        """"API" or "console" (CertCentral's web interface)."""
        return "API" if self.via.strip().upper() == "API" else "console"

    @property
    def is_sign_in(self) -> bool:
        words = f"{self.action} {self.activity}".lower()
        return "login" in words or "log in" in words or "sign in" in words or "sign-in" in words

    @property
    def is_sso(self) -> bool:
        return self.is_sign_in and "sso" in f"{self.action} {self.activity}".lower()

    @property
    def is_role_change(self) -> bool:
        """A role change, or a user created or invited (a joiner's role is granted then)."""
        words = f"{self.action} {self.activity}".lower()
        grants = ("role", "user added", "user created", "add user", "create user", "invite")
        return any(word in words for word in grants)

    def names(self, user: User) -> bool:
        """Whether this row is about ``user`` (its target): by target id, else by email or username in the message."""
        if self.target_user_id is not None:
            return self.target_user_id == user.id
        text = self.message.casefold()
        return any(
            value and re.search(rf"(?<![\w.@-]){re.escape(value.casefold())}(?![\w@-])", text)
            for value in (user.email, user.username)
        )


@dataclass(frozen=True, slots=True)
class Activity:
    """A user's newest activity in the audit log, and what it was."""

    at: datetime
    source: str  #: "SSO sign-in", "sign-in", or "API activity"

    def describe(self) -> str:
        return f"{self.source} {self.at.strftime('%Y-%m-%d %H:%M')} UTC (audit log)"


@dataclass(frozen=True, slots=True)
class Attribution:
    """Who made a privilege change, when and through which channel (one audit-log row)."""

    actor: str
    at: datetime
    channel: str

    def describe(self) -> str:
        return f"by {self.actor} on {self.at.strftime('%Y-%m-%d %H:%M')} UTC via the {self.channel}"


class AuditLogParseError(ValueError):
    """An archived run that is neither the JSON nor the CSV form."""


def _value(row: Mapping[str, Any], name: str) -> Any:
    for key in _FIELDS[name]:
        if key in row and row[key] not in (None, ""):
            return row[key]
    return None


def _int(value: object) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().isdigit():
        return int(value.strip())
    return None


def parse_log_time(value: object) -> datetime | None:
    """"06-Feb-2025 10:28:04" (the documented form, UTC), ISO, or "YYYY-MM-DD HH:MM:SS"."""
    if not isinstance(value, str):
        return None
    text = value.strip()
    for form in ("%d-%b-%Y %H:%M:%S", "%d-%b-%Y %H:%M"):
        try:
            return datetime.strptime(text, form).replace(tzinfo=UTC)
        except ValueError:
            continue
    return parse_api_datetime(text)


def _entry(row: Mapping[str, Any]) -> AuditLogEntry | None:
    at = parse_log_time(_value(row, "at"))
    if at is None:
        return None
    return AuditLogEntry(
        at=at,
        action=str(_value(row, "action") or ""),
        via=str(_value(row, "via") or ""),
        user_id=_int(_value(row, "user_id")),
        user_name=str(_value(row, "user_name") or ""),
        message=str(_value(row, "message") or ""),
        result=str(_value(row, "result") or ""),
        activity=str(_value(row, "activity") or ""),
        target_user_id=_int(_value(row, "target_user_id")),
    )


def _json_rows(document: object) -> list[Mapping[str, Any]]:
    """The rows of the JSON form: a list, or the first list of objects in the top-level object."""
    if isinstance(document, list):
        return [row for row in document if isinstance(row, Mapping)]
    if isinstance(document, Mapping):
        for value in document.values():
            if isinstance(value, list) and all(isinstance(row, Mapping) for row in value):
                return list(value)
    raise AuditLogParseError("the JSON form holds no list of rows")


def parse_run(report_format: str, body: bytes) -> tuple[AuditLogEntry, ...]:
    """The rows of one run, oldest first; rows without a readable time are left out."""
    text = body.decode("utf-8-sig", "replace")
    if report_format == "CSV":
        rows: list[Mapping[str, Any]] = list(csv.DictReader(io.StringIO(text)))
    else:
        try:
            rows = _json_rows(json.loads(text))
        except json.JSONDecodeError as exc:
            raise AuditLogParseError(f"not JSON: {exc.msg}") from exc
    entries = [entry for entry in map(_entry, rows) if entry is not None]
    entries.sort(key=lambda e: (e.at, e.action, e.message))
    return tuple(entries)


def csv_body(rows: Iterable[Mapping[str, Any]]) -> bytes:
    """The CSV form of audit-log rows in :data:`CSV_COLUMNS` order (the sandbox serves it)."""
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=CSV_COLUMNS, extrasaction="ignore", lineterminator="\r\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({column: row.get(column, "") for column in CSV_COLUMNS})
    return out.getvalue().encode()


@dataclass(frozen=True, slots=True)
class AuditLog:
    """The archived runs of one connection as of a moment: their rows up to ``until`` and what they cover."""

    runs: tuple[AuditLogRun, ...]
    entries: tuple[AuditLogEntry, ...]
    #: (start, end) periods the runs cover, merged and cut at ``until``.
    coverage: tuple[tuple[datetime, datetime], ...]
    until: datetime

    @classmethod
    def of(cls, runs: Sequence[AuditLogRun], *, until: datetime) -> AuditLog:
        """The log as of ``until``: only runs started and rows dated up to then."""
        kept = tuple(sorted((r for r in runs if r.started_at <= until), key=lambda r: (r.started_at, r.key)))
        entries: list[AuditLogEntry] = []
        spans: list[tuple[datetime, datetime]] = []
        for run in kept:
            rows = [e for e in parse_run(run.report_format, run.body) if e.at <= until]
            entries.extend(rows)
            start = run.started_at - _SCHEDULE_SPAN.get(run.schedule.upper(), timedelta(0))
            if rows:
                start = min(start, rows[0].at)
            spans.append((start, run.started_at))
        entries.sort(key=lambda e: (e.at, e.action, e.message))
        return cls(runs=kept, entries=tuple(entries), coverage=_merge(spans), until=until)

    def covers(self, start: datetime, end: datetime) -> bool:
        """Whether one archived period spans all of ``start`` .. ``end``."""
        return any(low <= start and end <= high for low, high in self.coverage)

    def activity(self, user_id: int) -> Activity | None:
        """The user's newest successful SSO sign-in, sign-in or API action in the log."""
        newest: Activity | None = None
        for entry in self.entries:
            if entry.user_id != user_id or not entry.succeeded:
                continue
            if entry.is_sso:
                source = "SSO sign-in"
            elif entry.is_sign_in:
                source = "sign-in"
            elif entry.channel == "API":
                source = "API activity"
            else:
                continue
            if newest is None or entry.at >= newest.at:
                newest = Activity(at=entry.at, source=source)
        return newest

    def attribution(self, user: User, *, after: datetime, until: datetime) -> Attribution | None:
        """The newest successful role change about ``user`` in ``after`` < time <= ``until``."""
        found: Attribution | None = None
        for entry in self.entries:
            if after < entry.at <= until and entry.is_role_change and entry.succeeded and entry.names(user):
                actor = entry.user_name or (f"user {entry.user_id}" if entry.user_id is not None else "unknown")
                found = Attribution(actor=actor, at=entry.at, channel=entry.channel)
        return found


def _merge(spans: Iterable[tuple[datetime, datetime]]) -> tuple[tuple[datetime, datetime], ...]:
    merged: list[tuple[datetime, datetime]] = []
    for low, high in sorted(spans):
        if merged and low <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], high))
        else:
            merged.append((low, high))
    return tuple(merged)


def attribute_changes(
    changes: ChangeSet, *, log: AuditLog | None, users: Sequence[User], after: datetime, until: datetime
) -> ChangeSet:
    """``changes`` with each role change (and each joiner with a privileged role) attributed from the log."""
    if log is None or not log.entries:
        return changes
    by_id = {user.id: user for user in users}
    attributed: list[Change] = []
    for change in changes.changes:
        user = by_id.get(change.user_id)
        if user is not None and change.kind in (ChangeKind.ROLE, ChangeKind.ADDED) and not change.attribution:
            found = log.attribution(user, after=after, until=until)
            if found is not None:
                change = replace(change, attribution=found.describe())
        attributed.append(change)
    return ChangeSet(from_snapshot=changes.from_snapshot, to_snapshot=changes.to_snapshot, changes=tuple(attributed))



def escalations(
    previous: Snapshot, snapshot: Snapshot, privileged: PrivilegedRoles
) -> list[tuple[User, tuple[str, ...]]]:
    """Users of ``snapshot`` holding a privileged role they did not hold in ``previous`` (joiners included)."""
    before = {user.id: user for user in previous.users}
    found: list[tuple[User, tuple[str, ...]]] = []
    for user in snapshot.users:
        earlier = before.get(user.id)
        held_before = set(privileged.held(earlier)) if earlier is not None else set()
        gained = tuple(role for role in privileged.held(user) if role not in held_before)
        if gained:
            found.append((user, gained))
    return found
