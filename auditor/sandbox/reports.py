"""The sandbox's Report Library (§11.5): scheduled audit-log runs, listed and downloaded, 90 days kept.

Served under ``/reports/v1`` on the sandbox's own port (the real one has its own host). Every fact
§11.5 marks UNCERTAIN is switchable (:class:`~auditor.sandbox.server.Faults`): which download path
exists (``…/download?report_format=`` or ``…/json``), the JSON form's column names (the documented
CSV names, or snake_case), and whether a View Only key may read reports.

Dataset shape (``report_library`` in a sandbox dataset)::

    {"reports": [{"report_identifier": "r-1", "report_name": "Weekly audit log",
                  "report_type": "audit-logs", "schedule": "WEEKLY", "formats": ["JSON", "CSV"]}],
     "runs": [{"report_identifier": "r-1", "report_run_identifier": "run-1",
               "report_start_date": "2026-10-26 00:00:00", "status": "READY",
               "entries": [{"Date and time (UTC)": "25-Oct-2026 09:00:00", "Action": "User SSO login", ...}]}]}

Runs whose start is more than 90 days before the dataset's ``as_of`` are gone (listed nowhere,
downloads answer 404), as DigiCert deletes them; runs starting after ``as_of`` have not run yet.
``report_library.as_of`` (optional, ISO) replaces the dataset's ``as_of`` as the Report Library's
"now" (the sample account's states are dated midnight, its pulls and runs 06:00).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from auditor.auditlog import RETENTION_DAYS, csv_body

REPORTS_PREFIX = "/reports/v1"
_DOWNLOAD = re.compile(r"/report/([^/]+)/([^/]+)/(download|json)")
#: Route names for ``Faults.route_faults`` (one name for every run's download).
HISTORY_ROUTE = "/report/history"
DOWNLOAD_ROUTE = "/report/{report}/{run}/download"


@dataclass(frozen=True, slots=True)
class ReportAnswer:
    status: int
    payload: object = None
    raw: bytes | None = None
    #: (code, message) of a CertCentral-style error body; None on success.
    error: tuple[str, str] | None = None


def route_name(route: str) -> str:
    """The ``Faults.route_faults`` name of a Report Library route."""
    return DOWNLOAD_ROUTE if _DOWNLOAD.fullmatch(route) else route


def _start(run: Mapping[str, Any]) -> datetime:
    return datetime.strptime(str(run["report_start_date"]), "%Y-%m-%d %H:%M:%S").replace(tzinfo=UTC)


def _alive(run: Mapping[str, Any], as_of: datetime) -> bool:
    start = _start(run)
    return as_of - timedelta(days=RETENTION_DAYS) <= start <= as_of


def _snake(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_")


def answer(
    library: Mapping[str, Any] | None,
    *,
    as_of: datetime,
    route: str,
    query: Mapping[str, list[str]],
    key: Mapping[str, Any],
    key_roles: set[int],
    download_path: Literal["both", "download", "json"],
    json_keys: Literal["documented", "snake_case"],
    view_only: Literal["allowed", "denied"],
) -> ReportAnswer:
    """One Report Library GET after authentication; ``library`` None means no report was ever scheduled."""
    denied = ReportAnswer(403, error=("access_denied|missing_permission", "Access denied due to missing_permission."))
    restriction = key.get("restricted_to_role_id", 0)
    # The key must belong to an Administrator (§11.5, VERIFIED); View Only is UNCERTAIN (switchable).
    if 1 not in key_roles or restriction in (100, 101, 103) or (restriction == 102 and view_only == "denied"):
        return denied
    if library is not None and isinstance(library.get("as_of"), str):
        as_of = datetime.fromisoformat(library["as_of"]).astimezone(UTC)
    reports = {r["report_identifier"]: r for r in (library or {}).get("reports", [])}
    runs: Sequence[Mapping[str, Any]] = (library or {}).get("runs", [])
    if route == HISTORY_ROUTE:
        wanted_type = (query.get("report_type") or [""])[-1]
        wanted_status = (query.get("status") or [""])[-1].upper()
        listed = []
        for run in runs:
            report = reports.get(run["report_identifier"], {})
            if wanted_type and report.get("report_type") != wanted_type:
                continue
            if wanted_status and str(run.get("status", "READY")).upper() != wanted_status:
                continue
            if not _alive(run, as_of):
                continue
            listed.append({
                "report_identifier": run["report_identifier"],
                "report_run_identifier": run["report_run_identifier"],
                "report_name": report.get("report_name", ""),
                "report_type": report.get("report_type", ""),
                "report_start_date": run["report_start_date"],
                "split_report_count": 1,
                "status": run.get("status", "READY"),
                "schedule": report.get("schedule", "ON_DEMAND"),
            })
        return ReportAnswer(200, {"report_history": listed, "total_report_history_count": len(listed)})
    match = _DOWNLOAD.fullmatch(route)
    not_found = ReportAnswer(404, error=("not_found", "The requested resource was not found."))
    if match is None:
        return ReportAnswer(404, error=("not_found|route", "The specified route was not found."))
    report_id, run_id, style = match.groups()
    if download_path != "both" and style != download_path:
        return ReportAnswer(404, error=("not_found|route", "The specified route was not found."))
    chosen: Mapping[str, Any] | None = next(
        (r for r in runs if r["report_identifier"] == report_id and r["report_run_identifier"] == run_id), None
    )
    if chosen is None or not _alive(chosen, as_of) or str(chosen.get("status", "READY")).upper() != "READY":
        return not_found
    fmt = "JSON" if style == "json" else (query.get("report_format") or ["JSON"])[-1].upper()
    formats = [str(f).upper() for f in reports.get(report_id, {}).get("formats", ["JSON", "CSV"])]
    if fmt not in formats:
        return not_found
    entries: Sequence[Mapping[str, Any]] = chosen.get("entries", [])
    if fmt == "CSV":
        return ReportAnswer(200, raw=csv_body(entries))
    if json_keys == "snake_case":
        return ReportAnswer(200, [{_snake(k): v for k, v in row.items()} for row in entries])
    return ReportAnswer(200, [dict(row) for row in entries])
