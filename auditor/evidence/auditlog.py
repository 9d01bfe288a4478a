"""Archived audit-log runs in a bundle (issue 17): written as their own files, read back for ``--reperform``.

Each run is a member ``evidence/audit-log/NNNN-<slug>.json|csv`` holding the bytes downloaded from
the Report Library, with role ``audit-log`` and the run's identifiers in its manifest entry. A later
bundle carries every run archived up to its snapshot, so a run DigiCert deleted after 90 days is
still re-checkable offline: ``verify --reperform`` re-derives attribution and activity from them.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import datetime
from typing import TYPE_CHECKING, Any, Final

from auditor.auditlog import AuditLog, AuditLogRun
from auditor.models import parse_api_datetime

if TYPE_CHECKING:
    from auditor.evidence.bundle import BundleContents

AUDIT_LOG_ROLE: Final = "audit-log"
AUDIT_LOG_DIR: Final = "evidence/audit-log/"


def _iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def audit_log_path(index: int, run: AuditLogRun) -> str:
    """A safe member name; the identifiers themselves are recorded in the manifest entry."""
    slug = re.sub(r"[^a-z0-9]+", "-", f"{run.report_identifier}-{run.run_identifier}".lower()).strip("-")[:60]
    return f"{AUDIT_LOG_DIR}{index:04d}-{slug.strip('-') or 'run'}.{'csv' if run.report_format == 'CSV' else 'json'}"


def audit_log_files(runs: Sequence[AuditLogRun]) -> list[tuple[str, bytes, dict[str, Any]]]:
    """(path, bytes, manifest fields) of each run, oldest first."""
    return [
        (
            audit_log_path(index, run),
            run.body,
            {
                "role": AUDIT_LOG_ROLE,
                "report_identifier": run.report_identifier,
                "run_identifier": run.run_identifier,
                "report_start_date": _iso(run.started_at),
                "schedule": run.schedule,
                "report_format": run.report_format,
                "endpoint": run.endpoint,
                "received_at": _iso(run.received_at),
                "first_snapshot_id": run.first_snapshot_id,
            },
        )
        for index, run in enumerate(runs, start=1)
    ]


def with_audit_log(contents: BundleContents, log: AuditLog | None) -> BundleContents:
    """``contents`` carrying the runs of ``log`` (every run archived up to the snapshot)."""
    return contents if log is None else replace(contents, audit_log_runs=log.runs)


def audit_log_context(log: AuditLog | None) -> dict[str, Any]:
    """The manifest's ``audit_log`` block: how many runs, and which periods they cover."""
    if log is None:
        return {"runs": 0, "coverage": []}
    return {"runs": len(log.runs), "coverage": [[_iso(low), _iso(high)] for low, high in log.coverage]}


def runs_from_manifest(files: Sequence[Mapping[str, Any]], members: Mapping[str, bytes]) -> tuple[AuditLogRun, ...]:
    """The archived runs a verified bundle carries (its manifest entries with role ``audit-log``)."""
    runs: list[AuditLogRun] = []
    for entry in files:
        if entry.get("role") != AUDIT_LOG_ROLE:
            continue
        body = members[entry["path"]]
        started = parse_api_datetime(entry.get("report_start_date"))
        received = parse_api_datetime(entry.get("received_at"))
        if started is None or received is None:
            raise ValueError(f"{entry['path']}: the manifest entry lacks report_start_date or received_at")
        runs.append(
            AuditLogRun(
                report_identifier=str(entry.get("report_identifier", "")),
                run_identifier=str(entry.get("run_identifier", "")),
                started_at=started,
                schedule=str(entry.get("schedule", "")),
                report_format=str(entry.get("report_format", "JSON")),
                endpoint=str(entry.get("endpoint", "")),
                body=body,
                sha256=hashlib.sha256(body).hexdigest(),
                received_at=received,
                first_snapshot_id=int(entry.get("first_snapshot_id", 0)),
            )
        )
    return tuple(runs)
