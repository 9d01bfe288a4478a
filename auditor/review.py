"""Access review campaigns: the worksheet a reviewer fills, its validation, and remediation states.

(Over 500 lines: writing the worksheet and validating it back are one contract, the column list
and the row digest, kept in one module so they cannot drift apart.)

A campaign is bound to one snapshot. ``auditor review open`` writes one row per user in scope
(:data:`HEADER`, the contract's column order) as CSV or XLSX; the rows as written are kept in the
campaign record, so an import can compare every data cell with what was sent out and name the
one that changed. Each row also carries ``row_digest``, a SHA-256 over the campaign id and its data
columns, so an edited row is recognised even by someone holding only the file.

Remediation is proven by later pulls (:func:`remediation`): a ``revoke`` is remediated at the first
later snapshot in which the user is gone, inactive or holds no privileged role; a ``modify`` when
the role equals ``new_role``. Nothing here reads the clock, the store or the network: the pipeline
passes everything in.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any, Final

from auditor.errors import ConfigurationError
from auditor.exports import neutralise_cell
from auditor.labels import day
from auditor.models import (
    KNOWN_ROLE_NAMES,
    FindingsResult,
    PrivilegedRoles,
    ReviewItem,
    Severity,
    Snapshot,
    User,
    UserHistory,
)

__all__ = [
    "DATA_COLUMNS",
    "DECISIONS",
    "HEADER",
    "REVIEWER_COLUMNS",
    "SCOPES",
    "ImportResult",
    "RefusedRow",
    "Remediation",
    "build_rows",
    "campaign_of",
    "effective_decisions",
    "parse_identity",
    "parse_worksheet",
    "remediation",
    "role_choices",
    "worksheet_csv",
    "worksheet_xlsx",
]

DATA_COLUMNS: Final = (
    "campaign", "snapshot", "user_id", "email", "name", "role", "division", "status", "last_sign_in",
    "days_inactive", "first_seen", "service_user", "findings", "row_digest",
)
REVIEWER_COLUMNS: Final = ("decision", "new_role", "justification", "ticket")
HEADER: Final = (*DATA_COLUMNS, *REVIEWER_COLUMNS)
DECISIONS: Final = ("keep", "revoke", "modify")
#: ``with-keys``: every user, then every active API key and ACME URL as its own row (issue 17).
SCOPES: Final = ("all", "privileged", "flagged", "with-keys")
REVIEW_SHEET: Final = "Review"
COVER_SHEET: Final = "Cover"
_DATE_COLUMNS: Final = frozenset({"last_sign_in", "first_seen"})
_INT_COLUMNS: Final = frozenset({"campaign", "snapshot", "user_id", "days_inactive"})
_IDENTITY = re.compile(r"^\s*(?P<name>[^<>]*?)\s*<(?P<email>[^<>@\s]+@[^<>@\s]+)>\s*$")
#: Excel refuses a data-validation list formula longer than this (the quotes excluded).
_MAX_LIST_CHARS: Final = 255
#: At most this many problems are listed in one error; the count says how many there were.
_MAX_LISTED: Final = 25


def parse_identity(text: str) -> tuple[str, str]:
    """``"NAME <EMAIL>"`` -> (name, email); anything else is a usage error."""
    match = _IDENTITY.match(text or "")
    if match is None or not match["name"]:
        raise ConfigurationError(
            f"--by {text!r} does not name a person as \"NAME <EMAIL>\".",
            hint='Give --by "Dana Owner <dana@example.com>".',
        )
    return match["name"], match["email"]


# --- building the worksheet ------------------------------------------------------------------


def _day(moment: datetime | None) -> str:
    return day(moment.astimezone(UTC)) if moment is not None else ""


def _role(user: User) -> str:
    return ", ".join(role.name for role in user.roles)


def is_privileged(user: User, privileged: frozenset[str]) -> bool:
    """Whether the user holds one of the (casefolded) ``privileged`` roles, as the rules decide it."""
    return bool(PrivilegedRoles(privileged).held(user))


def row_digest(campaign_id: int, values: Mapping[str, str]) -> str:
    """SHA-256 (first 16 hex digits) over the campaign id and the row's data columns, in order."""
    payload = json.dumps([str(campaign_id), *(values[c] for c in DATA_COLUMNS if c != "row_digest")])
    return hashlib.sha256(payload.encode("utf-8", "surrogatepass")).hexdigest()[:16]


def build_rows(
    campaign_id: int,
    snapshot: Snapshot,
    *,
    scope: str,
    findings: FindingsResult,
    history: Mapping[int, UserHistory],
    privileged_roles: Iterable[str],
) -> list[dict[str, Any]]:
    """The worksheet rows (data columns as text, plus ``high``: the user has a high finding)."""
    if scope not in SCOPES:
        raise ConfigurationError(
            f"Unknown scope {scope!r}.", hint="Use --scope all, privileged, flagged or with-keys."
        )
    privileged = frozenset(role.casefold() for role in privileged_roles)
    by_user: dict[int, list[str]] = {}
    high: set[int] = set()
    for finding in findings.active:
        if finding.user_id is None:
            continue
        ids = by_user.setdefault(finding.user_id, [])
        if finding.rule_id not in ids:
            ids.append(finding.rule_id)
        if finding.severity.at_least(Severity.HIGH):
            high.add(finding.user_id)
    rows = []
    for user in sorted(snapshot.users, key=lambda u: (u.email.casefold(), u.id)):
        if scope == "privileged" and not is_privileged(user, privileged):
            continue
        if scope == "flagged" and user.id not in by_user:
            continue
        seen = history.get(user.id)
        first_seen = seen.first_seen if seen is not None else snapshot.taken_at
        since = user.last_login or first_seen
        values = {
            "campaign": str(campaign_id),
            "snapshot": str(snapshot.id),
            "user_id": str(user.id),
            "email": user.email,
            "name": f"{user.first_name} {user.last_name}".strip(),
            "role": _role(user),
            "division": user.division.name if user.division is not None else "",
            "status": user.status,
            "last_sign_in": _day(user.last_login),
            "days_inactive": str(max(0, (snapshot.taken_at - since).days)),
            "first_seen": _day(first_seen),
            "service_user": "yes" if user.is_service_user else "no",
            "findings": " ".join(sorted(by_user.get(user.id, []))),
            "row_digest": "",
        }
        values["row_digest"] = row_digest(campaign_id, values)
        rows.append({**values, "high": user.id in high})
    if scope == "with-keys":
        rows.extend(_key_rows(campaign_id, snapshot, findings))
    return rows


def is_key_row(user_id: int) -> bool:
    """Key rows carry the key's id negated in ``user_id``: a user id is never negative."""
    return user_id < 0


def _key_rows(campaign_id: int, snapshot: Snapshot, findings: FindingsResult) -> list[dict[str, Any]]:
    """One row per active API key or ACME URL (``user_id`` = minus the key id), its owner's email.

    The reviewer keeps or revokes it; the next pull proves a revoke (the key gone or revoked).
    A key list the pull could not read gives no rows (unknown, not none: the campaign says so in its scope).
    """
    keys = snapshot.credentials.keys or ()
    owners = {user.id: user for user in snapshot.users}
    rows = []
    for key in sorted((k for k in keys if k.is_active), key=lambda k: k.id):
        owner = owners.get(key.owner_id) if key.owner_id is not None else None
        rules = sorted({
            f.rule_id for f in findings.active if f.rule_id.startswith("key-") and ("key", key.label) in f.evidence
        })
        since = key.last_used or key.created or snapshot.taken_at
        values = {
            "campaign": str(campaign_id),
            "snapshot": str(snapshot.id),
            "user_id": str(-key.id),
            "email": owner.email if owner is not None else "",
            "name": key.label,
            "role": key.restriction,
            "division": "",
            "status": key.status,
            "last_sign_in": _day(key.last_used),
            "days_inactive": str(max(0, (snapshot.taken_at - since).days)),
            "first_seen": _day(key.created),
            "service_user": key.kind,
            "findings": " ".join(rules),
            "row_digest": "",
        }
        values["row_digest"] = row_digest(campaign_id, values)
        high = any(f.severity.at_least(Severity.HIGH) and ("key", key.label) in f.evidence for f in findings.active)
        rows.append({**values, "high": high})
    return rows


def worksheet_csv(rows: Sequence[Mapping[str, Any]]) -> bytes:
    """The worksheet as CSV (UTF-8, header row, every cell neutralised against formulas)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(HEADER)
    for row in rows:
        # Integer columns are the tool's own numbers (a key row's user_id is negative): never a formula.
        writer.writerow(
            [row[c] if c in _INT_COLUMNS else neutralise_cell(row[c]) for c in DATA_COLUMNS]
            + [""] * len(REVIEWER_COLUMNS)
        )
    return buffer.getvalue().encode("utf-8")


def worksheet_xlsx(
    rows: Sequence[Mapping[str, Any]],
    *,
    campaign_id: int,
    snapshot: Snapshot,
    raw_sha256: str,
    due: datetime | None,
    scope: str,
    created: datetime,
) -> bytes:
    """The worksheet as XLSX: a cover sheet, then the rows with drop-downs and locked data columns."""
    # Deferred: openpyxl is the slowest import of the package; only the XLSX worksheet needs it.
    from openpyxl import Workbook
    from openpyxl.styles import Font, Protection
    from openpyxl.utils import get_column_letter
    from openpyxl.worksheet.datavalidation import DataValidation

    workbook = Workbook()
    cover = workbook.active
    assert cover is not None  # noqa: S101 - a new workbook has one sheet
    cover.title = COVER_SHEET
    cover_rows: list[tuple[str, object]] = [
        ("Access review campaign", campaign_id),
        ("Connection", snapshot.connection),
        ("Snapshot", snapshot.id),
        ("Snapshot taken at (UTC)", snapshot.taken_at.astimezone(UTC).replace(tzinfo=None)),
        ("Raw data SHA-256", raw_sha256),
        ("Scope", scope),
        ("Due date", due.astimezone(UTC).date() if due is not None else "none set"),
        ("Rows", len(rows)),
        ("Instructions", "On the 'Review' sheet, fill in decision (keep, revoke or modify) for each row you review."),
        ("", "revoke and modify need a justification; keep needs one when the user has a high finding."),
        ("", "modify needs new_role (the role the user should hold). ticket is your change ticket, if any."),
        ("", "Do not change the data columns: the import checks every cell against row_digest."),
        ("", "You may not decide your own row. Leave a decision empty to leave the row undecided."),
        ("", 'Then: auditor review import FILE --by "NAME <EMAIL>"'),
    ]
    for label, value in cover_rows:
        cover.append([label, _xlsx_text(value) if isinstance(value, str) else value])
    cover["B4"].number_format = "yyyy-mm-dd hh:mm:ss"
    if due is not None:
        cover["B7"].number_format = "yyyy-mm-dd"
    for label_cells in cover.iter_rows(min_col=1, max_col=1):
        label_cells[0].font = Font(bold=True)
    cover.column_dimensions["A"].width = 26
    cover.column_dimensions["B"].width = 90

    sheet = workbook.create_sheet(REVIEW_SHEET)
    sheet.append(list(HEADER))
    for cell in sheet[1]:
        cell.font = Font(bold=True)
    unlocked = Protection(locked=False)
    for row_index, row in enumerate(rows, start=2):
        for column_index, column in enumerate(HEADER, start=1):
            cell = sheet.cell(row=row_index, column=column_index)
            if column in REVIEWER_COLUMNS:
                cell.protection = unlocked
                continue
            text = str(row[column])
            if column in _INT_COLUMNS:
                cell.value = int(text)
            elif column in _DATE_COLUMNS and text:
                cell.value = date.fromisoformat(text)
                cell.number_format = "yyyy-mm-dd"
            elif text:
                cell.value = _xlsx_text(text)
                cell.data_type = "s"
    last = max(2, len(rows) + 1)
    decision_column = get_column_letter(HEADER.index("decision") + 1)
    validation = DataValidation(
        type="list", formula1='"' + ",".join(DECISIONS) + '"', allow_blank=True, showErrorMessage=True,
        errorTitle="Unknown decision", error="Choose keep, revoke or modify (or leave it empty).",
    )
    validation.add(f"{decision_column}2:{decision_column}{last}")
    sheet.add_data_validation(validation)
    role_column = get_column_letter(HEADER.index("new_role") + 1)
    roles = DataValidation(
        type="list", formula1='"' + ",".join(role_choices(snapshot)) + '"', allow_blank=True,
        showErrorMessage=True, errorStyle="warning", errorTitle="Role not in the list",
        error="Not a role this account was seen with. Keep it only if CertCentral has that custom role.",
    )
    roles.add(f"{role_column}2:{role_column}{last}")
    sheet.add_data_validation(roles)
    sheet.freeze_panes = "A2"
    sheet.auto_filter.ref = f"A1:{get_column_letter(len(HEADER))}{last}"
    sheet.protection.sheet = True
    sheet.protection.autoFilter = False
    sheet.protection.sort = False
    sheet.protection.formatColumns = False
    for index, column in enumerate(HEADER, start=1):
        sheet.column_dimensions[get_column_letter(index)].width = {"email": 32, "justification": 40}.get(column, 14)
    naive = created.astimezone(UTC).replace(tzinfo=None)
    workbook.properties.created = naive
    workbook.properties.modified = naive
    workbook.properties.creator = "certcentral-auditor"
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


def role_choices(snapshot: Snapshot) -> tuple[str, ...]:
    """The ``new_role`` drop-down: CertCentral's fixed roles, then the account's custom ones.

    A name with a comma or quote cannot be a list entry (the import takes it typed in, as any free
    text), and the entries stop where Excel's 255-character limit for a list would be passed.
    """
    names = list(KNOWN_ROLE_NAMES.values())
    seen = {name.casefold() for name in names}
    for name in sorted({role.name for user in snapshot.users for role in user.roles}, key=str.casefold):
        if name.casefold() not in seen and name.strip() and not set(name) & {",", '"'}:
            seen.add(name.casefold())
            names.append(_xlsx_text(name))
    chosen: list[str] = []
    for name in names:
        if len(",".join([*chosen, name])) > _MAX_LIST_CHARS:
            break
        chosen.append(name)
    return tuple(chosen)


def _xlsx_text(text: str) -> str:
    return "".join(
        "\ufffd" if (ord(char) < 32 and char not in "\t\n\r") or 0xD800 <= ord(char) <= 0xDFFF else char
        for char in text
    )


# --- reading a filled worksheet --------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RefusedRow:
    """A row that recorded nothing while the rest of its file was: where, why, and what to do."""

    row: int
    column: str
    user_id: int
    email: str
    reason: str
    #: The next step ("another reviewer must decide it", "fill it in and import the file again").
    remedy: str


@dataclass(frozen=True, slots=True)
class ImportResult:
    """What a valid worksheet holds: the decisions to record, and the rows refused."""

    decisions: tuple[dict[str, object], ...]
    refused: tuple[RefusedRow, ...]
    undecided: int


def _cell_text(value: object) -> str:
    """An XLSX cell as the text the worksheet was written with."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, datetime):
        return day(value)
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _read_table(file_name: str, content: bytes) -> list[list[str]]:
    """The worksheet's rows as text (header first), from CSV or XLSX bytes."""
    if content[:4] == b"PK\x03\x04":
        from openpyxl import load_workbook  # deferred, as in the writer: a CSV worksheet needs none of it

        try:
            workbook = load_workbook(io.BytesIO(content), read_only=True, data_only=True)
        except Exception as exc:
            raise ConfigurationError(
                f"{file_name}: not a readable XLSX workbook ({type(exc).__name__}). Nothing was recorded.",
                hint="Import the worksheet `auditor review open` wrote, saved as .xlsx or .csv.",
            ) from exc
        try:
            if REVIEW_SHEET not in workbook.sheetnames:
                raise ConfigurationError(
                    f"{file_name}: the workbook has no sheet named {REVIEW_SHEET!r} (it has "
                    f"{', '.join(workbook.sheetnames)}). Nothing was recorded.",
                    hint="Import the worksheet `auditor review open` wrote; keep its sheet names.",
                )
            sheet = workbook[REVIEW_SHEET]
            table = [[_cell_text(v) for v in row] for row in sheet.iter_rows(values_only=True)]
        finally:
            workbook.close()
    else:
        try:
            text = content.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            raise ConfigurationError(
                f"{file_name}: not UTF-8 text (byte {exc.start}). Nothing was recorded.",
                hint="Save the worksheet as CSV UTF-8, or as .xlsx, and run `auditor review import` again.",
            ) from exc
        try:
            table = [list(row) for row in csv.reader(io.StringIO(text, newline=""))]
        except csv.Error as exc:
            raise ConfigurationError(f"{file_name}: not readable as CSV ({exc}). Nothing was recorded.") from exc
    # Spreadsheets pad rows and add empty trailing rows.
    cleaned = []
    for row in table:
        while row and row[-1] == "":
            row.pop()
        cleaned.append(row)
    while cleaned and not cleaned[-1]:
        cleaned.pop()
    return cleaned


def campaign_of(file_name: str, content: bytes) -> tuple[int, int]:
    """The campaign a filled worksheet belongs to: (campaign id, row), from its first data row's ``campaign`` cell."""
    table = _read_table(file_name, content)
    if not table or [c.strip() for c in table[0]][:1] != ["campaign"]:
        raise ConfigurationError(
            f"{file_name}: row 1, column 1: expected the header 'campaign' of a review worksheet. "
            "Nothing was recorded.",
            hint="Import the worksheet `auditor review open` wrote (CSV with its header row, or the XLSX).",
        )
    for number, row in enumerate(table[1:], start=2):
        if row and row[0].strip():
            try:
                return int(row[0].strip()), number
            except ValueError:
                raise ConfigurationError(
                    f"{file_name}: row {number}, column campaign: {row[0]!r} is not a campaign id. "
                    "Nothing was recorded.",
                    hint="Import the worksheet `auditor review open` wrote; do not change its data columns.",
                ) from None
    raise ConfigurationError(f"{file_name}: the worksheet has no rows. Nothing was recorded.")


def parse_worksheet(
    file_name: str,
    content: bytes,
    *,
    campaign_id: int,
    snapshot_id: int,
    rows: Sequence[Mapping[str, Any]],
    reviewer: str,
    reviewer_email: str,
) -> ImportResult:
    """Validate a filled worksheet against the campaign's rows; raise naming file, row and column.

    A problem with the file as a whole (header, campaign, snapshot, an edited data cell, an unknown
    user or decision) fails the whole file. A row breaking a row-level rule (a missing
    justification or new role, or the reviewer deciding their own account) is refused and reported
    with its row and column; the rest of the file is recorded.
    """
    table = _read_table(file_name, content)
    if not table:
        raise ConfigurationError(f"{file_name}: the file is empty. Nothing was recorded.")
    header = [cell.strip() for cell in table[0]]
    is_csv = content[:4] != b"PK\x03\x04"
    problems: list[str] = []
    if header != list(HEADER):
        for index, wanted in enumerate(HEADER):
            found = header[index] if index < len(header) else "(missing)"
            if found != wanted:
                problems.append(f"{file_name}: row 1, column {index + 1}: header {found!r}, expected {wanted!r}")
                break
        if len(header) > len(HEADER):
            problems.append(f"{file_name}: row 1, column {len(HEADER) + 1}: unexpected column {header[len(HEADER)]!r}")
        raise _invalid(file_name, problems)
    expected_rows = {str(row["user_id"]): row for row in rows}
    seen: dict[str, int] = {}
    decisions: list[dict[str, object]] = []
    refused: list[RefusedRow] = []
    undecided = 0
    for number, raw in enumerate(table[1:], start=2):
        if not any(cell.strip() for cell in raw):
            continue
        cells = dict(zip(HEADER, [*raw, *[""] * (len(HEADER) - len(raw))], strict=False))
        if len(raw) > len(HEADER):
            problems.append(f"{file_name}: row {number}: {len(raw)} cells, the header has {len(HEADER)}")
            continue
        where = f"{file_name}: row {number}"
        if cells["campaign"] != str(campaign_id):
            problems.append(f"{where}, column campaign: {cells['campaign']!r} is not this campaign ({campaign_id})")
            continue
        if cells["snapshot"] != str(snapshot_id):
            problems.append(
                f"{where}, column snapshot: {cells['snapshot']!r} is not the campaign's snapshot ({snapshot_id})"
            )
            continue
        user_key = cells["user_id"]
        expected = expected_rows.get(user_key)
        if expected is None:
            problems.append(f"{where}, column user_id: {user_key!r} is not a row of campaign {campaign_id}")
            continue
        if user_key in seen:
            problems.append(f"{where}, column user_id: user {user_key} appears again (first on row {seen[user_key]})")
            continue
        seen[user_key] = number
        edited = False
        for column in DATA_COLUMNS:
            want = str(expected[column])
            shown = neutralise_cell(want) if is_csv else want
            if column in _DATE_COLUMNS or column in _INT_COLUMNS:
                shown = want
            have = cells[column]
            if have != shown and have.strip() != shown.strip():
                problems.append(
                    f"{where}, column {column}: edited data cell ({have!r}, the campaign sent {want!r}); "
                    "data columns must not change"
                )
                edited = True
        if edited:
            continue
        decision = cells["decision"].strip().casefold()
        new_role = cells["new_role"].strip()
        justification = cells["justification"].strip()
        ticket = cells["ticket"].strip()
        if not decision:
            undecided += 1
            continue
        if decision not in DECISIONS:
            problems.append(
                f"{where}, column decision: unknown decision {cells['decision']!r} (use keep, revoke or modify)"
            )
            continue
        refusal = _row_refusal(expected, decision, new_role, justification, reviewer_email)
        if refusal is not None:
            column, reason, remedy = refusal
            refused.append(RefusedRow(number, column, int(user_key), str(expected["email"]), reason, remedy))
            continue
        decisions.append(
            {
                "user_id": int(user_key),
                "reviewer": reviewer,
                "decision": decision,
                "new_role": new_role if decision == "modify" else "",
                "justification": justification,
                "ticket": ticket,
            }
        )
    if problems:
        raise _invalid(file_name, problems)
    return ImportResult(decisions=tuple(decisions), refused=tuple(refused), undecided=undecided)


def _row_refusal(
    expected: Mapping[str, Any], decision: str, new_role: str, justification: str, reviewer_email: str
) -> tuple[str, str, str] | None:
    """The row-level rule a decided row breaks, as (column, reason, remedy); None when it breaks none."""
    if str(expected["email"]).casefold() == reviewer_email.casefold():
        return "decision", "self-review: a reviewer may not decide their own row", "another reviewer must decide it"
    fill = "fill it in and import the file again"
    if decision == "modify" and is_key_row(int(expected["user_id"])):
        return "decision", "a key row is kept or revoked, not modified", "choose keep or revoke and import again"
    if decision == "modify" and not new_role:
        return "new_role", "a modify decision needs the new role", fill
    if decision in {"revoke", "modify"} and not justification:
        return "justification", f"a {decision} decision needs a justification", fill
    if decision == "keep" and expected.get("high") and not justification:
        return (
            "justification",
            f"keeping a user with a high finding ({expected['findings']}) needs a justification",
            fill,
        )
    return None


def _invalid(file_name: str, problems: Sequence[str]) -> ConfigurationError:
    listed = list(problems[:_MAX_LISTED])
    if len(problems) > _MAX_LISTED:
        listed.append(f"... and {len(problems) - _MAX_LISTED} more")
    return ConfigurationError(
        f"{file_name} failed validation ({len(problems)} problem(s)); nothing was recorded from it:\n  "
        + "\n  ".join(listed),
        hint="Fix the named cells (or start again from the worksheet `auditor review open` wrote) and run "
        "`auditor review import` again.",
    )


# --- decisions and remediation ---------------------------------------------------------------


def effective_decisions(decisions: Sequence[Any]) -> dict[int, Any]:
    """User id -> the decision in force: the newest recorded for that user (records are in id order)."""
    current: dict[int, Any] = {}
    for decision in decisions:
        current[decision.user_id] = decision
    return current


@dataclass(frozen=True, slots=True)
class Remediation:
    """Where one revoke/modify decision stands as of a moment."""

    state: str  # remediated, pending, overdue, regranted
    snapshot_id: int | None = None
    at: datetime | None = None
    regranted_snapshot_id: int | None = None
    regranted_at: datetime | None = None


def remediation(
    *,
    user_id: int,
    decision: str,
    new_role: str,
    decided_at: datetime,
    closed_at: datetime | None,
    later: Sequence[Snapshot],
    privileged_roles: Iterable[str],
    remediation_days: int,
    as_of: datetime,
) -> Remediation:
    """The state of a revoke/modify decision from the complete snapshots taken after it, up to ``as_of``."""
    privileged = frozenset(role.casefold() for role in privileged_roles)
    done: tuple[int, datetime] | None = None
    if is_key_row(user_id):
        return _key_remediation(-user_id, decided_at=decided_at, closed_at=closed_at, later=later,
                                remediation_days=remediation_days, as_of=as_of)
    for snapshot in sorted(later, key=lambda s: (s.taken_at, s.id)):
        if snapshot.taken_at <= decided_at or snapshot.taken_at > as_of or not snapshot.complete:
            continue
        user = next((u for u in snapshot.users if u.id == user_id), None)
        if done is None:
            if decision == "revoke":
                met = user is None or user.status.casefold() != "active" or not is_privileged(user, privileged)
            else:
                met = user is not None and _role(user).casefold() == new_role.casefold()
            if met:
                done = (snapshot.id, snapshot.taken_at)
        elif (
            decision == "revoke"
            and user is not None
            and user.status.casefold() == "active"
            and is_privileged(user, privileged)
        ):
            return Remediation("regranted", done[0], done[1], snapshot.id, snapshot.taken_at)
    if done is not None:
        return Remediation("remediated", done[0], done[1])
    if closed_at is not None and as_of > closed_at + timedelta(days=remediation_days):
        return Remediation("overdue")
    return Remediation("pending")


def _key_remediation(
    key_id: int,
    *,
    decided_at: datetime,
    closed_at: datetime | None,
    later: Sequence[Snapshot],
    remediation_days: int,
    as_of: datetime,
) -> Remediation:
    """A revoked key is remediated at the first later snapshot that read the key list and shows it
    gone or not active; a snapshot that could not read keys proves nothing."""
    for snapshot in sorted(later, key=lambda s: (s.taken_at, s.id)):
        keys = snapshot.credentials.keys
        if snapshot.taken_at <= decided_at or snapshot.taken_at > as_of or not snapshot.complete or keys is None:
            continue
        key = next((k for k in keys if k.id == key_id), None)
        if key is None or not key.is_active:
            return Remediation("remediated", snapshot.id, snapshot.taken_at)
    if closed_at is not None and as_of > closed_at + timedelta(days=remediation_days):
        return Remediation("overdue")
    return Remediation("pending")


def review_items(
    campaigns: Sequence[Any],
    decisions: Mapping[int, Sequence[Any]],
    emails: Mapping[tuple[int, int], str],
    states: Mapping[int, Remediation],
) -> tuple[ReviewItem, ...]:
    """The rule inputs: every revoke/modify decision in force in a closed campaign, with its state."""
    items = []
    for campaign in campaigns:
        if campaign.closed_at is None:
            continue
        for decision in effective_decisions(decisions.get(campaign.id, ())).values():
            if decision.decision not in {"revoke", "modify"}:
                continue
            state = states[decision.id]
            items.append(
                ReviewItem(
                    campaign_id=campaign.id,
                    snapshot_id=campaign.snapshot_id,
                    user_id=decision.user_id,
                    email=emails.get((campaign.id, decision.user_id), ""),
                    decision=decision.decision,
                    new_role=decision.new_role,
                    reviewer=decision.reviewer,
                    ticket=decision.ticket,
                    justification=decision.justification,
                    closed_at=campaign.closed_at,
                    state=state.state,
                    remediated_snapshot_id=state.snapshot_id,
                    regranted_snapshot_id=state.regranted_snapshot_id,
                )
            )
    return tuple(items)
