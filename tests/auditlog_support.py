"""A sandbox account with a Report Library (issue 17, audit log): scheduled runs relative to a fixed day.

The default dataset's Administrator is alice.admin (2700762); judy.sales (2702007) is a Standard
User. Runs hold rows in the documented CSV column names (§11.5).
"""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta
from typing import Any

from auditor.models import ADMINISTRATOR_ROLE_ID
from auditor.sandbox import Dataset, default_dataset

T0 = datetime(2026, 11, 1, 6, 0, tzinfo=UTC)
ALICE, ALICE_EMAIL = 2700762, "alice.admin@example.com"
JUDY, JUDY_EMAIL = 2702007, "judy.sales@example.com"
REPORT = "c0ffee00-audit-weekly"


def row(
    at: datetime,
    action: str,
    *,
    user_id: int = ALICE,
    user_name: str = ALICE_EMAIL,
    via: str = "CertCentral",
    message: str = "",
    result: str = "Success",
) -> dict[str, Any]:
    return {
        "Account ID": "1696530",
        "Action": action,
        "Action taken via": via,
        "Activity": action,
        "Date and time (UTC)": at.strftime("%d-%b-%Y %H:%M:%S"),
        "IP address": "198.51.100.7",
        "Message": message,
        "Result": result,
        "User ID": str(user_id),
        "User name": user_name,
    }


def run(run_id: str, start: datetime, rows: list[dict[str, Any]], *, report: str = REPORT) -> dict[str, Any]:
    return {
        "report_identifier": report,
        "report_run_identifier": run_id,
        "report_start_date": start.strftime("%Y-%m-%d %H:%M:%S"),
        "status": "READY",
        "entries": rows,
    }


def library(
    runs: list[dict[str, Any]], *, schedule: str = "WEEKLY", formats: tuple[str, ...] = ("JSON", "CSV")
) -> dict[str, Any]:
    return {
        "reports": [
            {
                "report_identifier": REPORT,
                "report_name": "Weekly audit log",
                "report_type": "audit-logs",
                "schedule": schedule,
                "formats": list(formats),
            }
        ],
        "runs": runs,
    }


def promote(user: dict[str, Any]) -> dict[str, Any]:
    return {**user, "access_roles": [{"id": ADMINISTRATOR_ROLE_ID, "name": "Administrator"}]}


def account(
    *,
    as_of: datetime = T0,
    report_library: dict[str, Any] | None = None,
    judy_admin: bool = False,
    alice_last_login: datetime | None = None,
) -> Dataset:
    """The default account as of ``as_of``; judy promoted to Administrator when asked."""
    base = default_dataset()
    users = []
    for user in base.users:
        if user["id"] == JUDY and judy_admin:
            user = promote(user)
        if user["id"] == ALICE and alice_last_login is not None:
            user = {**user, "last_login_date": alice_last_login.strftime("%Y-%m-%dT%H:%M:%S+00:00")}
        users.append(user)
    return dataclasses.replace(base, users=tuple(users), as_of=as_of, report_library=report_library)


def promotion_row(at: datetime, *, via: str = "CertCentral") -> dict[str, Any]:
    return row(
        at,
        "User role changed",
        via=via,
        message=f"Changed the role of {JUDY_EMAIL} from Standard User to Administrator",
    )


DAY = timedelta(days=1)
