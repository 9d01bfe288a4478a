"""Machine-readable views of snapshots, findings and changes: JSON, CSV and XLSX.

The raw API pages are the primary evidence; everything here is a view of them. Views are
deterministic (sorted rows, no wall-clock time) so the same data always gives the same bytes,
and every spreadsheet cell that came from the API is neutralised against formula injection
(OWASP "CSV injection": https://owasp.org/www-community/attacks/CSV_Injection).

Over 500 lines because each view's one table definition serves its CSV, JSON and XLSX forms alike.
"""

from __future__ import annotations

import csv
import errno
import hashlib
import io
import json
import os
import re
import zipfile
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, date, datetime
from typing import Any

from auditor.labels import iso as iso  # re-exported: exports.iso is the views' timestamp
from auditor.models import (
    CREDENTIAL_PARTS,
    ApiKey,
    ChangeSet,
    EndpointReconciliation,
    ExceptionEntry,
    Finding,
    FindingsResult,
    KeyOwner,
    Operator,
    Snapshot,
    User,
    UserHistory,
)

#: A spreadsheet treats a cell starting with one of these as a formula (or DDE payload).
FORMULA_TRIGGERS = ("=", "+", "-", "@", "\t", "\r")

Row = Sequence[object]


def neutralise_cell(value: object) -> str:
    """Text for a CSV cell that no spreadsheet will evaluate.

    A leading apostrophe is the OWASP-recommended neutraliser: Excel and LibreOffice then show
    the value as text. Applied to every cell, not only API fields, so nothing slips through.
    """
    text = _display(value)
    if text.startswith(FORMULA_TRIGGERS):
        return "'" + text
    return text


def _display(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, datetime):
        return iso(value)
    return str(value)


# --- tables: one definition per view, shared by CSV, XLSX and the report attachments ---

ROSTER_HEADER = (
    "user_id",
    "email",
    "first_name",
    "last_name",
    "username",
    "status",
    "roles",
    "division",
    "restricted",
    "assigned_divisions",
    "last_sign_in",
    "service_user",
    "saml_sso_only",
    "job_title",
    "first_seen",
)


def roster_rows(snapshot: Snapshot, *, history: Mapping[int, UserHistory] | None = None) -> list[Row]:
    """One row per user, sorted by email then id."""
    rows: list[Row] = []
    for user in sorted(snapshot.users, key=_user_sort_key):
        seen = history.get(user.id) if history else None
        rows.append(
            (
                user.id,
                user.email,
                user.first_name,
                user.last_name,
                user.username,
                user.status,
                user.role_names,
                user.division_name,
                user.restricted,
                "; ".join(division.name for division in user.assigned_divisions),
                user.last_login,
                user.is_service_user,
                "" if user.is_saml_sso_only is None else user.is_saml_sso_only,
                user.job_title,
                seen.first_seen if seen else None,
            )
        )
    return rows


FINDINGS_HEADER = (
    "rule",
    "severity",
    "user_id",
    "email",
    "title",
    "explanation",
    "evidence",
    "controls",
    "remediation",
    "suppressed",
    "exception_reason",
    "exception_owner",
    "exception_expires",
)


def findings_rows(findings: Iterable[Finding]) -> list[Row]:
    """One row per finding, in the order given (the rules engine sorts worst first)."""
    rows: list[Row] = []
    for finding in findings:
        exception = finding.suppressed_by
        rows.append(
            (
                finding.rule_id,
                finding.severity.value,
                "" if finding.user_id is None else finding.user_id,
                finding.email,
                finding.title,
                finding.explanation,
                "; ".join(f"{label}: {value}" for label, value in finding.evidence),
                "; ".join(finding.controls),
                finding.remediation,
                finding.suppressed,
                exception.reason if exception else "",
                exception.owner if exception else "",
                exception.expires if exception else None,
            )
        )
    return rows


CHANGES_HEADER = ("kind", "user_id", "email", "before", "after", "escalation", "became_admin", "attribution")


def changes_rows(changes: ChangeSet) -> list[Row]:
    """One row per change, in the change set's deterministic order."""
    return [
        (
            change.kind.value,
            change.user_id,
            change.email,
            change.before,
            change.after,
            change.escalation,
            change.became_admin,
            change.attribution,
        )
        for change in changes.changes
    ]


EXCEPTIONS_HEADER = ("rule", "user", "reason", "owner", "approved_by", "approved_on", "expires")


def exceptions_rows(exceptions: Iterable[ExceptionEntry]) -> list[Row]:
    return [
        (entry.rule, entry.user, entry.reason, entry.owner, entry.approved_by, entry.approved_on, entry.expires)
        for entry in exceptions
    ]


def _user_sort_key(user: User) -> tuple[str, int]:
    return (user.email.casefold(), user.id)


# --- CSV -------------------------------------------------------------------------------


def rows_csv(header: Sequence[str], rows: Iterable[Row]) -> bytes:
    """UTF-8 CSV with a byte-order mark (Excel then reads accents right), every cell neutralised."""
    buffer = io.StringIO(newline="")
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(header)
    for row in rows:
        writer.writerow([neutralise_cell(cell) for cell in row])
    return ("\ufeff" + buffer.getvalue()).encode("utf-8")


def roster_csv(snapshot: Snapshot, *, history: Mapping[int, UserHistory] | None = None) -> bytes:
    return rows_csv(ROSTER_HEADER, roster_rows(snapshot, history=history))


def findings_csv(result: FindingsResult) -> bytes:
    return rows_csv(FINDINGS_HEADER, findings_rows(result.findings))


def changes_csv(changes: ChangeSet) -> bytes:
    return rows_csv(CHANGES_HEADER, changes_rows(changes))


def exceptions_csv(exceptions: Iterable[ExceptionEntry]) -> bytes:
    return rows_csv(EXCEPTIONS_HEADER, exceptions_rows(exceptions))


# --- XLSX ------------------------------------------------------------------------------

#: How a time shows in a spreadsheet: sortable, unambiguous, and saying it is UTC.
XLSX_DATETIME_FORMAT = 'yyyy-mm-dd hh:mm:ss "UTC"'
XLSX_DATE_FORMAT = "yyyy-mm-dd"
_MIN_WIDTH, _MAX_WIDTH = 8, 60  # column widths in characters
_WIDTH_SAMPLE = 2000  # rows measured for a column's width (enough to be representative, and fast)
PROVENANCE_SHEET = "provenance"
PROVENANCE_HEADER = ("field", "value")


def workbook_xlsx(
    sheets: Mapping[str, tuple[Sequence[str], Sequence[Row]]],
    *,
    created: datetime,
    provenance: Sequence[tuple[str, object]] = (),
) -> bytes:
    """One workbook, a sheet per view (and a provenance sheet last, when given). Never a formula.

    Laid out for an auditor: the header row bold and frozen, an auto-filter over every column,
    column widths from the content, and times as real date cells (UTC, shown with "UTC") that
    sort and filter as dates. openpyxl turns any string beginning with '=' into a formula on
    assignment, so each text cell has its type forced back to string after assignment; the value
    is kept exactly as the API sent it (spreadsheets show it as text). ``created`` fixes the
    document properties and every ZIP entry's timestamp, so the same data and clock give the same
    bytes.

    Written in openpyxl's write-only mode (issue 15 §2): each row is streamed to the sheet's XML
    as it is made, so no cell objects of a 100,000-row roster are kept. That mode writes a row
    once and never revisits it, so the column widths are measured from the rows before the first
    is written, and the frozen header and auto-filter are declared up front.
    """
    from openpyxl import Workbook  # imported here: only exports pay for it

    workbook = Workbook(write_only=True)
    tables = dict(sheets)
    if provenance:
        tables[PROVENANCE_SHEET] = (PROVENANCE_HEADER, list(provenance))
    try:
        # Write-only sheets stream into temporary files as rows are appended: a full disk
        # surfaces here already, not only when the workbook is saved.
        for title, (header, rows) in tables.items():
            _write_sheet(workbook.create_sheet(title=title[:31]), header, rows)
    except _xml_write_errors() as exc:
        raise _as_os_error(exc) from exc
    naive = _naive_utc(created)
    workbook.properties.created = naive
    workbook.properties.modified = naive
    workbook.properties.creator = "certcentral-auditor"
    return _save_deterministic(workbook, naive)


def _write_sheet(sheet: Any, header: Sequence[str], rows: Sequence[Row]) -> None:
    """Stream one view into a write-only sheet: widths, frozen header and filter first, then the rows."""
    from openpyxl.cell import WriteOnlyCell  # deferred like Workbook above: only XLSX exports pay for openpyxl
    from openpyxl.styles import Font
    from openpyxl.utils import get_column_letter

    widths = [len(name) for name in header]
    for row in rows[:_WIDTH_SAMPLE]:
        for column_index, value in enumerate(row):
            shown = _xlsx_width(value)
            if column_index < len(widths):
                widths[column_index] = max(widths[column_index], shown)
            else:
                widths.append(shown)
    for column_index, width in enumerate(widths, start=1):
        sheet.column_dimensions[get_column_letter(column_index)].width = min(_MAX_WIDTH, max(_MIN_WIDTH, width + 2))
    sheet.freeze_panes = "A2"
    if header:
        sheet.auto_filter.ref = f"A1:{get_column_letter(len(widths))}{max(1, len(rows) + 1)}"
    bold = Font(bold=True)
    header_cells = []
    for name in header:
        cell = WriteOnlyCell(sheet, value=_xlsx_text(str(name)))
        cell.data_type = "s"
        cell.font = bold
        header_cells.append(cell)
    sheet.append(header_cells)
    for row in rows:
        sheet.append([_xlsx_cell(sheet, value, WriteOnlyCell) for value in row])


def _xlsx_cell(sheet: Any, value: object, make: Any) -> object:
    """``value`` as the sheet takes it: a number or a plain string as is, else a cell made by
    ``make`` holding a UTC date-time, a date, or text forced to stay text (never a formula)."""
    shown, kind = _xlsx_prepared(value)
    if kind is None or (kind == "s" and not _binds_as_other_than_text(shown)):
        return shown  # a plain value: the sheet makes no cell object to be thrown away
    cell = make(sheet, value=shown)
    if kind == "s":
        cell.data_type = "s"
    else:
        cell.number_format = kind
    return cell


def _binds_as_other_than_text(text: object) -> bool:
    """Whether openpyxl might store this string as something else than text: a formula ('=1+1')
    or an error code ('#N/A'; ``openpyxl.cell.cell.Cell._bind_value``). Such a value goes in as
    a cell forced to text; every other string is text already. The spreadsheet tests open hostile
    values in LibreOffice, so a future openpyxl that binds more strings as formulas shows there."""
    return isinstance(text, str) and text[:1] in ("=", "#")


def _xlsx_width(value: object) -> int:
    """How many characters ``value`` shows as in its cell (the widest line of a text)."""
    shown, kind = _xlsx_prepared(value)
    if kind is None:
        return len(str(shown))
    if kind == XLSX_DATETIME_FORMAT:
        return len("2026-01-01 00:00:00 UTC")
    if kind == XLSX_DATE_FORMAT:
        return len("2026-01-01")
    return max((len(line) for line in str(shown).split("\n")), default=0)


def _xlsx_prepared(value: object) -> tuple[object, str | None]:
    """(cell value, its number format, or "s" for text, or None for a number)."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return value, None
    if isinstance(value, datetime) and _EXCEL_YEARS[0] <= value.year <= _EXCEL_YEARS[1]:
        return _naive_utc(value), XLSX_DATETIME_FORMAT
    if isinstance(value, date) and not isinstance(value, datetime) and _EXCEL_YEARS[0] <= value.year:
        return value, XLSX_DATE_FORMAT
    return _xlsx_text(_display(value)), "s"


#: Years a spreadsheet date can hold (Excel's serial dates start in 1900); others stay text.
_EXCEL_YEARS = (1900, 9999)


def _naive_utc(moment: datetime) -> datetime:
    """openpyxl refuses time-zone-aware values; every time here is UTC, so drop the zone after converting."""
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC)
    return moment.replace(tzinfo=None)


def _xml_write_errors() -> tuple[type[Exception], ...]:
    """What openpyxl raises when a temporary file of the workbook cannot be written.

    Without lxml that is an OSError. With lxml installed (pikepdf, among others, brings it),
    openpyxl streams each worksheet through lxml, which reports the same failure (a full disk, a
    file-size limit) as ``SerialisationError("IO_EFBIG")``.
    """
    try:
        from lxml.etree import SerialisationError  # optional: present only when another package brings lxml
    except ImportError:
        return ()
    return (SerialisationError,)


def _as_os_error(exc: Exception) -> OSError:
    """``SerialisationError("IO_ENOSPC")`` as the OSError it stands for, so callers handle one kind."""
    name = str(exc).strip().removeprefix("IO_")
    code = getattr(errno, name, errno.EIO) if name.isidentifier() else errno.EIO
    return OSError(code, os.strerror(code))


def _save_deterministic(workbook: Any, stamp: datetime) -> bytes:
    """Save without openpyxl's wall-clock "modified" time, and with every ZIP entry dated ``stamp``."""
    from openpyxl.writer.excel import ExcelWriter  # deferred: only XLSX exports pay for openpyxl

    raw = io.BytesIO()
    with zipfile.ZipFile(raw, "w", zipfile.ZIP_DEFLATED, allowZip64=True) as archive:
        try:
            ExcelWriter(workbook, archive).save()  # save_workbook() would stamp "modified" with now
        except _xml_write_errors() as exc:
            raise _as_os_error(exc) from exc
    # A ZIP time cannot be before 1980.
    when = (stamp.year, stamp.month, stamp.day, stamp.hour, stamp.minute, stamp.second)
    if stamp.year < 1980:
        when = (1980, 1, 1, 0, 0, 0)
    out = io.BytesIO()
    with zipfile.ZipFile(raw) as source, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as target:
        for member in source.infolist():
            info = zipfile.ZipInfo(member.filename, date_time=when)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o600 << 16
            target.writestr(info, source.read(member))
    return out.getvalue()


def provenance_rows(snapshot: Snapshot, *, generated_at: datetime) -> list[tuple[str, object]]:
    """The workbook's provenance sheet: where the data came from, who pulled it, and when.

    Says "not recorded" where an earlier version did not record something, never a guess.
    """
    p = snapshot.provenance
    earlier = p.recorded_by_earlier_version
    unrecorded = "not recorded (pulled by an earlier version)" if earlier else "not recorded"
    operator = p.operator
    owner = p.key_owner
    state = "complete" if p.complete else "INCOMPLETE"
    return [
        ("source", "DigiCert CertCentral Services API"),
        ("instance", f"{p.connection} · {p.base_url}"),
        ("account_id", "" if p.account_id is None else p.account_id),
        ("snapshot_id", snapshot.id),
        ("snapshot_taken_at", snapshot.taken_at),
        ("pull_started_at", p.started_at),
        ("pull_finished_at", p.finished_at),
        ("users_received", f"{p.received} of {p.expected_total} announced; {state}"),
        ("raw_data_sha256", raw_data_digest(snapshot)),
        ("raw_data_sha256_covers", f"{len(p.page_digests)} raw API pages: SHA-256 over each one's endpoint and digest"),
        ("key_fingerprint", p.key_fingerprint),
        ("operator", f"{operator.label} (command: {operator.command})" if operator is not None else unrecorded),
        (
            "key_owner",
            f"{owner.label}, {owner.role or 'no role'}, {owner.restriction}" if owner is not None else unrecorded,
        ),
        ("tool_version", p.tool_version),
        ("generated_at", generated_at),
        ("times", "all times are UTC"),
    ]


def raw_data_digest(snapshot: Snapshot) -> str:
    """One SHA-256 over the snapshot's raw pages, in the order fetched (as in the report)."""
    digest = hashlib.sha256()
    for endpoint, page_sha in snapshot.provenance.page_digests:
        digest.update(f"{endpoint}\n{page_sha}\n".encode())
    return digest.hexdigest()


#: What XML 1.0 cannot carry: control characters other than tab, newline and carriage return, and lone surrogates.
_XML_ILLEGAL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff]")


def _xlsx_text(text: str) -> str:
    # XML 1.0 cannot carry most control characters; openpyxl would raise IllegalCharacterError.
    # Replace them with U+FFFD so the cell still shows that something was there.
    return _XML_ILLEGAL.sub("\ufffd", text)


# --- JSON ------------------------------------------------------------------------------


def to_json_bytes(data: Any) -> bytes:
    """Deterministic, human-readable JSON (sorted keys, UTF-8, trailing newline)."""
    return (json.dumps(data, sort_keys=True, ensure_ascii=False, indent=2) + "\n").encode("utf-8")


def user_dict(user: User) -> dict[str, Any]:
    return {
        "id": user.id,
        "email": user.email,
        "username": user.username,
        "first_name": user.first_name,
        "last_name": user.last_name,
        "status": user.status,
        "roles": [{"id": role.id, "name": role.name} for role in user.roles],
        "division": (
            None
            if user.division is None
            else {"id": user.division.id, "name": user.division.name, "parent_id": user.division.parent_id}
        ),
        "last_sign_in": iso(user.last_login) or None,
        "account_id": user.account_id,
        "job_title": user.job_title,
        "telephone": user.telephone,
        "type": user.user_type,
        "service_user": user.is_service_user,
        "restricted": user.restricted,
        "assigned_divisions": [{"id": d.id, "name": d.name} for d in user.assigned_divisions],
        "saml_sso_only": user.is_saml_sso_only,
    }


def provenance_dict(snapshot: Snapshot) -> dict[str, Any]:
    """Where the snapshot came from; holds the key's fingerprint, never the key."""
    p = snapshot.provenance
    return {
        "snapshot_id": snapshot.id,
        "connection": p.connection,
        "base_url": p.base_url,
        "account_id": p.account_id,
        "key_fingerprint": p.key_fingerprint,
        "tool_version": p.tool_version,
        "pull_started_at": iso(p.started_at),
        "pull_finished_at": iso(p.finished_at),
        "requests": p.requests,
        "pages": p.pages,
        "retries": p.retries,
        "expected_total": p.expected_total,
        "received": p.received,
        "complete": p.complete,
        "notes": list(p.notes),
        "details_fetched": p.details_fetched,
        "raw_pages": [{"endpoint": endpoint, "sha256": digest} for endpoint, digest in p.page_digests],
        **operator_fields(snapshot),
    }


def operator_fields(snapshot: Snapshot) -> dict[str, Any]:
    """Who pulled it, with whose key, and each list endpoint's reconciliation (for JSON views).

    A snapshot stored before these were recorded says so (``recorded_by_earlier_version``) and
    leaves them null or empty rather than inventing them.
    """
    p = snapshot.provenance
    return {
        "operator": operator_dict(p.operator),
        "key_owner": key_owner_dict(p.key_owner),
        "endpoints": [endpoint_dict(item) for item in p.endpoints],
        "recorded_by_earlier_version": p.recorded_by_earlier_version,
    }


def operator_dict(operator: Operator | None) -> dict[str, str] | None:
    if operator is None:
        return None
    return {
        "os_account": operator.account,
        "host": operator.host,
        "command_line": operator.command,
        "tool_version": operator.tool_version,
        "python_version": operator.python_version,
    }


def key_owner_dict(owner: KeyOwner | None) -> dict[str, Any] | None:
    if owner is None:
        return None
    return {
        "user_id": owner.user_id,
        "name": owner.name,
        "email": owner.email,
        "role": owner.role,
        "division_restricted": owner.restricted,
        "divisions": list(owner.divisions),
    }


def endpoint_dict(item: EndpointReconciliation) -> dict[str, Any]:
    return {
        "path": item.path,
        "page_total": item.announced,
        "received": item.received,
        "pages": item.pages,
        "complete": item.complete,
        "note": item.note,
        "requests": [{"request": request, "sha256": digest} for request, digest in item.requests],
    }


def snapshot_json(snapshot: Snapshot) -> bytes:
    """The parsed snapshot: provenance plus every user, sorted by id."""
    return to_json_bytes(
        {
            "format": "certcentral-auditor-snapshot/1",
            "provenance": provenance_dict(snapshot),
            "taken_at": iso(snapshot.taken_at),
            "users": [user_dict(user) for user in sorted(snapshot.users, key=lambda u: u.id)],
        }
    )


def provenance_json(snapshot: Snapshot) -> bytes:
    return to_json_bytes(provenance_dict(snapshot))


def finding_dict(finding: Finding) -> dict[str, Any]:
    exception = finding.suppressed_by
    expired = finding.expired_exception
    return {
        "rule": finding.rule_id,
        "severity": finding.severity.value,
        "title": finding.title,
        "user_id": finding.user_id,
        "email": finding.email,
        "explanation": finding.explanation,
        "evidence": dict(finding.evidence),
        "controls": list(finding.controls),
        "remediation": finding.remediation,
        "suppressed": finding.suppressed,
        "exception": None if exception is None else exception_dict(exception),
        "expired_exception": None if expired is None else exception_dict(expired),
    }


def exception_dict(entry: ExceptionEntry) -> dict[str, Any]:
    return {
        "rule": entry.rule,
        "user": entry.user,
        "reason": entry.reason,
        "owner": entry.owner,
        "approved_by": entry.approved_by,
        "approved_on": iso(entry.approved_on),
        "expires": iso(entry.expires),
    }


def findings_json(result: FindingsResult) -> bytes:
    return to_json_bytes(
        {
            "format": "certcentral-auditor-findings/1",
            "snapshot_id": result.snapshot_id,
            "evaluated_at": iso(result.evaluated_at),
            "profiles": list(result.profiles),
            "counts": {
                "total": len(result.findings),
                "active": len(result.active),
                "suppressed": len(result.suppressed),
            },
            "findings": [finding_dict(finding) for finding in result.findings],
            "stale_exceptions": [exception_dict(entry) for entry in result.stale_exceptions],
            "thresholds": [
                {"threshold": label, "value": value, "source": source}
                for label, value, source in result.thresholds
            ],
            "limitations": list(result.limitations),
            # The identity source the leaver rules used (null: none, so leavers were not checked).
            "identity_source": dict(result.identity_source) if result.identity_source else None,
        }
    )


def changes_json(changes: ChangeSet) -> bytes:
    return to_json_bytes(
        {
            "format": "certcentral-auditor-changes/1",
            "from_snapshot": changes.from_snapshot,
            "to_snapshot": changes.to_snapshot,
            "changes": [
                {
                    "kind": change.kind.value,
                    "user_id": change.user_id,
                    "email": change.email,
                    "before": change.before,
                    "after": change.after,
                    "escalation": change.escalation,
                    "became_admin": change.became_admin,
                    # Key changes only (issue 17): user changes keep their shape.
                    **({"key_id": change.key_id} if change.key_id is not None else {}),
                    # Who made it, from the archived audit log (issue 17), when known.
                    **({"attribution": change.attribution} if change.attribution else {}),
                }
                for change in changes.changes
            ],
        }
    )


# --- API keys and automation (issue 17) -------------------------------------------------

KEYS_HEADER = (
    "key_id",
    "name",
    "kind",
    "status",
    "owner_id",
    "owner_name",
    "owner_email",
    "owner_status",
    "owner_roles",
    "restriction_id",
    "restriction",
    "legacy",
    "created",
    "last_used",
    "ip_rule_covers",
    "acme_directory_url",
    "product_name_id",
    "organization_id",
    "validity",
)


def _validity(key: ApiKey) -> str:
    if key.validity_days is not None:
        return f"{key.validity_days} days"
    if key.validity_years is not None:
        return f"{key.validity_years} years"
    return ""


def keys_rows(snapshot: Snapshot) -> list[Row]:
    """One row per API key or ACME URL, by key id; [] when the key list was not read."""
    inventory = snapshot.credentials
    users = {user.id: user for user in snapshot.users}
    rows: list[Row] = []
    for key in inventory.keys or ():
        owner = users.get(key.owner_id) if key.owner_id is not None else None
        covered = None if inventory.ip_rules is None else inventory.covers(key)
        rows.append(
            (
                key.id,
                key.name,
                key.kind,
                key.status,
                key.owner_id,
                key.owner_name,
                owner.email if owner is not None else "",
                owner.status if owner is not None else "not a user of the account",
                owner.role_names if owner is not None else "",
                key.restricted_to_role_id,
                key.restriction,
                key.is_legacy,
                key.created,
                key.last_used,
                "unknown" if covered is None else covered,
                key.acme_directory_url,
                key.product_name_id,
                key.organization_id,
                _validity(key),
            )
        )
    return rows


def keys_csv(snapshot: Snapshot) -> bytes:
    return rows_csv(KEYS_HEADER, keys_rows(snapshot))


def keys_json(snapshot: Snapshot) -> bytes:
    """The credential inventory; a part that was not read is null, never empty."""
    inventory = snapshot.credentials
    not_read = [part for part in CREDENTIAL_PARTS if part in snapshot.provenance.not_evaluable]
    return to_json_bytes(
        {
            "format": "certcentral-auditor-keys/1",
            "snapshot_id": snapshot.id,
            "taken_at": iso(snapshot.taken_at),
            "not_evaluable": not_read,
            "api_keys": None
            if inventory.keys is None
            else [
                {
                    header: (iso(value) if isinstance(value, datetime) else value)
                    for header, value in zip(KEYS_HEADER, row, strict=True)
                }
                for row in keys_rows(snapshot)
            ],
            "ip_rules": None
            if inventory.ip_rules is None
            else [
                {
                    "id": rule.id,
                    "ip_address": rule.ip_address,
                    "ip_address_end": rule.ip_address_end,
                    "container_id": rule.container_id,
                    "user_id": rule.user_id,
                    "api_key_id": rule.api_key_id,
                    "description": rule.description,
                    "created": iso(rule.created),
                }
                for rule in inventory.ip_rules
            ],
            "guest_access": None
            if inventory.guest_access is None
            else {"enabled": inventory.guest_access, "guest_access_url": inventory.guest_access_url},
        }
    )
