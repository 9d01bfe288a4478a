"""The audit-log parser and what the log proves (auditor/auditlog.py): both forms, both key styles, as of a time."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime, timedelta

import pytest

from auditor.auditlog import AuditLog, AuditLogRun, csv_body, parse_log_time, parse_run
from auditor.models import Role, User

T = datetime(2026, 11, 1, 6, 0, tzinfo=UTC)
ROWS = [
    {"Date and time (UTC)": "06-Feb-2025 10:28:04", "Action": "User SSO login", "Action taken via": "CertCentral",
     "User ID": "7", "User name": "ann@example.com", "Result": "Success"},
    {"Date and time (UTC)": "2025-02-07 11:00:00", "Action": "User role changed", "Action taken via": "API",
     "User ID": "7", "User name": "ann@example.com", "Message": "Changed the role of bo@example.com to Administrator",
     "Result": "Success"},
]


def _run(body: bytes, fmt: str, start: datetime, schedule: str = "WEEKLY") -> AuditLogRun:
    return AuditLogRun("r", f"run-{start:%j}", start, schedule, fmt, "/report/r/run/download", body,
                       hashlib.sha256(body).hexdigest(), start)


def _snake(row: dict[str, str]) -> dict[str, str]:
    return {key.lower().replace(" (utc)", "_utc").replace(" ", "_"): value for key, value in row.items()}


@pytest.mark.parametrize(
    ("fmt", "body"),
    [
        ("JSON", json.dumps(ROWS).encode()),
        ("JSON", json.dumps({"audit_logs": [_snake(r) for r in ROWS]}).encode()),
        ("CSV", csv_body(ROWS)),
    ],
    ids=["json-documented-names", "json-snake-case-wrapped", "csv"],
)
def test_every_form_parses_to_the_same_rows(fmt: str, body: bytes) -> None:
    entries = parse_run(fmt, body)
    assert [(e.at, e.action, e.channel, e.user_id) for e in entries] == [
        (datetime(2025, 2, 6, 10, 28, 4, tzinfo=UTC), "User SSO login", "console", 7),
        (datetime(2025, 2, 7, 11, 0, tzinfo=UTC), "User role changed", "API", 7),
    ]
    assert entries[0].is_sso and entries[1].is_role_change


def test_log_times_in_each_documented_form() -> None:
    assert parse_log_time("06-Feb-2025 10:28:04") == datetime(2025, 2, 6, 10, 28, 4, tzinfo=UTC)
    assert parse_log_time("2025-02-06T10:28:04Z") == datetime(2025, 2, 6, 10, 28, 4, tzinfo=UTC)
    assert parse_log_time("yesterday") is None


def test_activity_and_attribution_are_as_of_the_moment_asked() -> None:
    rows = [
        {**ROWS[0], "Date and time (UTC)": (T - timedelta(days=3)).strftime("%d-%b-%Y %H:%M:%S")},
        {**ROWS[1], "Date and time (UTC)": (T + timedelta(days=1)).strftime("%d-%b-%Y %H:%M:%S")},
        {**ROWS[0], "Result": "Failed", "Date and time (UTC)": (T - timedelta(days=1)).strftime("%d-%b-%Y %H:%M:%S")},
    ]
    log = AuditLog.of([_run(json.dumps(rows).encode(), "JSON", T - timedelta(hours=1))], until=T)
    activity = log.activity(7)
    assert activity is not None and activity.at == T - timedelta(days=3) and activity.source == "SSO sign-in"
    bo = User(id=8, email="bo@example.com", username="bo@example.com", roles=(Role(1, "Administrator"),))
    assert log.attribution(bo, after=T - timedelta(days=7), until=T) is None, "the change came after T"
    later = AuditLog.of([_run(json.dumps(rows).encode(), "JSON", T - timedelta(hours=1))], until=T + timedelta(days=2))
    assert later.attribution(bo, after=T - timedelta(days=7), until=T + timedelta(days=2)) is not None


def test_coverage_is_each_weekly_run_reaching_back_seven_days_merged() -> None:
    runs = [_run(b"[]", "JSON", T - timedelta(days=d)) for d in (14, 7, 0)]
    log = AuditLog.of(runs, until=T)
    assert log.coverage == ((T - timedelta(days=21), T),)
    assert log.covers(T - timedelta(days=20), T) and not log.covers(T - timedelta(days=22), T)
    gap = AuditLog.of([runs[0], runs[2]], until=T)
    assert not gap.covers(T - timedelta(days=10), T)
    assert not AuditLog.of([runs[0]], until=T).covers(T - timedelta(days=10), T), "a gap at the end is not covered"


def test_a_name_only_matches_the_whole_address() -> None:
    (entry,) = [e for e in parse_run("JSON", json.dumps(ROWS).encode()) if e.is_role_change]
    assert entry.names(User(id=8, email="bo@example.com", username="bo"))
    assert not entry.names(User(id=9, email="o@example.com", username="o@example.com"))
