"""The Report Library reads (§11.5): ready audit-log runs listed, each run not yet archived downloaded.

A read-only tool cannot create or run a report (both are POSTs); it reads the runs an administrator
scheduled in CertCentral. The Report Library has its own base URL (:func:`report_library_url`),
reached through the same guarded session as every other read (only GET, key-echo scan, byte caps,
deadline, retries). A documented refusal (403 ``missing_permission``, 404 ``not_found``) of the
listing makes the audit log *not evaluable*; it never fails a pull.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final
from urllib.parse import urlsplit, urlunsplit

from auditor.auditlog import AUDIT_LOG_REPORT_TYPE, HISTORY_PATH, AuditLogParseError, AuditLogRun, parse_run
from auditor.client.base_url import REGIONS, check_base_url, resolve_base_url
from auditor.client.errors import error_code, json_object
from auditor.client.paging import Refusal
from auditor.client.results import GROUP_AUDIT_LOG, Run
from auditor.client.session import Session
from auditor.errors import ApiBadResponseError

#: Report Library base URLs per instance. US: VERIFIED (§11.5). EU: UNCERTAIN (not documented;
#: DigiCert's EU hosts mirror the US ones under ``.digicert.eu``); override it when it differs
#: (``--report-library-url``, or ``report_library_url`` in auditor.toml).
REPORT_LIBRARY_URLS: Final[Mapping[str, str]] = {
    "us": "https://api.digicert.com/reports/v1",
    "eu": "https://api.digicert.eu/reports/v1",
}
_SERVICES_SUFFIX = "/services/v2"
_REPORTS_SUFFIX = "/reports/v1"
_REFUSALS = frozenset({403, 404})
#: A schedule that runs by itself (a report an administrator set up once).
SCHEDULED = frozenset({"WEEKLY", "MONTHLY", "DAILY"})
SCHEDULE_HINT = (
    "Schedule one in CertCentral: Reports → Report Library → Create report, choose the Audit log report, "
    "the JSON or CSV format and a weekly schedule; `auditor pull` then archives every run it finds."
)


def report_library_url(services_base_url: str, override: str | None = None) -> str:
    """The Report Library base URL for a connection: the override, else the instance's default.

    US and EU Services API base URLs map to their Report Library hosts; any other base URL (the
    sandbox, a gateway) is taken to serve the Report Library on the same host under ``/reports/v1``.
    """
    if override is not None and override.strip():
        return check_base_url(resolve_base_url(None, override))
    base = services_base_url.rstrip("/")
    for region, url in REGIONS.items():
        if base == url:
            return REPORT_LIBRARY_URLS[region]
    parts = urlsplit(base)
    path = parts.path[: -len(_SERVICES_SUFFIX)] if parts.path.endswith(_SERVICES_SUFFIX) else ""
    return check_base_url(urlunsplit((parts.scheme, parts.netloc, path + _REPORTS_SUFFIX, "", "")))


@dataclass(frozen=True, slots=True)
class ListedRun:
    """One run as ``GET /report/history`` lists it."""

    report_identifier: str
    run_identifier: str
    started_at: datetime
    status: str
    schedule: str


@dataclass(frozen=True, slots=True)
class AuditLogRead:
    """What one pull read of the Report Library."""

    #: Every ready audit-log run listed (archived or not).
    listed: tuple[ListedRun, ...] = ()
    #: The runs downloaded by this pull (those not archived before).
    downloaded: tuple[AuditLogRun, ...] = ()
    #: False: the listing was refused (documented 403/404): the audit log is not evaluable.
    readable: bool = True

    @property
    def scheduled(self) -> bool:
        return any(run.schedule.upper() in SCHEDULED for run in self.listed)


def _history_endpoint(base_url: str, *, ready_only: bool) -> str:
    query = f"report_type={AUDIT_LOG_REPORT_TYPE}" + ("&status=READY" if ready_only else "")
    return f"{base_url}{HISTORY_PATH}?{query}"


def _start(value: object) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        return datetime.strptime(value.strip(), "%Y-%m-%d %H:%M:%S").replace(tzinfo=UTC)
    except ValueError:
        return None


def _listed(endpoint: str, data: Mapping[str, Any]) -> tuple[ListedRun, ...]:
    """The runs of a history answer: the first list of objects in it (the wrapper key is UNCERTAIN)."""
    items = next((v for v in data.values() if isinstance(v, list)), None)
    if items is None:
        raise ApiBadResponseError(f"CertCentral answered GET {endpoint} without a list of report runs.")
    runs: list[ListedRun] = []
    for item in items:
        if not isinstance(item, Mapping):
            raise ApiBadResponseError(f"CertCentral answered GET {endpoint} with a run that is not an object.")
        report, run = item.get("report_identifier"), item.get("report_run_identifier")
        start = _start(item.get("report_start_date"))
        if not isinstance(report, str) or not isinstance(run, str) or not report or not run or start is None:
            raise ApiBadResponseError(
                f"CertCentral answered GET {endpoint} with a run lacking report_identifier, "
                "report_run_identifier or a 'YYYY-MM-DD HH:MM:SS' report_start_date."
            )
        runs.append(ListedRun(report, run, start, str(item.get("status") or ""), str(item.get("schedule") or "")))
    return tuple(sorted(runs, key=lambda r: (r.started_at, r.report_identifier, r.run_identifier)))


def _refused(session: Session, endpoint: str, response: Any) -> Refusal:
    refusal = Refusal(path=endpoint, status=response.status_code, code=error_code(response.content), response=response)
    if not refusal.documented:
        raise session.error_for(endpoint, response)
    return refusal


def read_audit_log(
    session: Session, run: Run, *, base_url: str, archived: frozenset[tuple[str, str]], notes: list[str]
) -> AuditLogRead:
    """List ready audit-log runs and download each one not in ``archived`` (JSON, else CSV).

    Download paths: ``…/{report}/{run}/download?report_format=JSON``, then ``…/{report}/{run}/json``
    (some integrations use it; which exists is UNCERTAIN, §11.5), then the CSV form. The listing is
    kept as a raw page of the pull; each run is returned as an :class:`AuditLogRun` to archive.
    """
    endpoint = _history_endpoint(base_url, ready_only=True)
    response = session.get(run, endpoint, tolerate=_REFUSALS)
    run.keep((GROUP_AUDIT_LOG, 0, 0), session.raw(endpoint, response))
    if response.status_code in _REFUSALS:
        refusal = _refused(session, endpoint, response)
        notes.append(
            f"The audit log was NOT read (GET {endpoint.split('?', 1)[0]} answered {refusal.status} {refusal.code}): "
            "not evaluable. The Report Library needs a key whose user is an Administrator "
            "(see README: what the key needs)."
        )
        return AuditLogRead(readable=False)
    listed = _listed(endpoint, json_object(endpoint, response))
    downloaded: list[AuditLogRun] = []
    for item in listed:
        if (item.report_identifier, item.run_identifier) in archived or item.status.upper() not in ("READY", ""):
            continue
        got = _download(session, run, base_url, item)
        if isinstance(got, Refusal):
            notes.append(
                f"The audit log was NOT read: downloading run {item.report_identifier}/{item.run_identifier} "
                f"answered {got.status} {got.code}. Not evaluable; nothing was archived by this pull, and the next "
                "pull tries again. The Report Library needs a key whose user is an Administrator."
            )
            return AuditLogRead(listed=listed, readable=False)
        if got is None:
            notes.append(
                f"Audit-log run {item.report_identifier}/{item.run_identifier} was listed but could not be "
                "downloaded in JSON or CSV (404 not_found): it may have expired meanwhile."
            )
            continue
        downloaded.append(got)
    return AuditLogRead(listed=listed, downloaded=tuple(downloaded))


def _download(session: Session, run: Run, base_url: str, item: ListedRun) -> AuditLogRun | Refusal | None:
    """The run in the first form and path that answers; a documented 403 is returned, a 404 tries the next."""
    prefix = f"{base_url}/report/{item.report_identifier}/{item.run_identifier}"
    for report_format, endpoint in (
        ("JSON", f"{prefix}/download?report_format=JSON"),
        ("JSON", f"{prefix}/json"),
        ("CSV", f"{prefix}/download?report_format=CSV"),
    ):
        response = session.get(run, endpoint, tolerate=_REFUSALS)
        if response.status_code in _REFUSALS:
            refusal = _refused(session, endpoint, response)
            if refusal.status == 403:
                return refusal
            continue
        body = response.content
        try:
            if report_format == "JSON":
                json.loads(body)
            parse_run(report_format, body)
        except (ValueError, AuditLogParseError) as exc:
            raise ApiBadResponseError(
                f"CertCentral answered GET {endpoint.split('?', 1)[0]} with a body that is not the "
                f"{report_format} form of an audit log ({exc})."
            ) from exc
        page = session.raw(endpoint, response)
        return AuditLogRun(
            report_identifier=item.report_identifier,
            run_identifier=item.run_identifier,
            started_at=item.started_at,
            schedule=item.schedule,
            report_format=report_format,
            endpoint=endpoint,
            body=body,
            sha256=hashlib.sha256(body).hexdigest(),
            received_at=page.received_at,
        )
    return None


def audit_log_status(session: Session, run: Run, *, base_url: str) -> str:
    """The connection test's words on the audit log: is a scheduled audit-log report there, and readable?"""
    endpoint = _history_endpoint(base_url, ready_only=False)
    response = session.get(run, endpoint, tolerate=_REFUSALS)
    if response.status_code in _REFUSALS:
        refusal = _refused(session, endpoint, response)
        return (
            f"Audit log: not readable with this key (GET {HISTORY_PATH} answered {refusal.status} {refusal.code}); "
            "the Report Library needs a key whose user is an Administrator. Pulls will state it as a limitation."
        )
    listed = _listed(endpoint, json_object(endpoint, response))
    scheduled = [r for r in listed if r.schedule.upper() in SCHEDULED]
    if not scheduled:
        found = f" ({len(listed)} on-demand run(s) only)" if listed else ""
        return f"Audit log: no scheduled audit-log report found{found}. {SCHEDULE_HINT}"
    reports = sorted({r.report_identifier for r in scheduled})
    return (
        f"Audit log: {len(reports)} scheduled audit-log report(s) ({', '.join(reports)}), "
        f"{len(listed)} run(s) listed; each pull archives the runs not yet archived (DigiCert keeps runs 90 days)."
    )
