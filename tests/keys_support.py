"""A sandbox account with API keys of every kind, IP rules and guest access (issue 17).

Dates are relative to the real clock, because a pull's snapshot is taken "now" and the key rules
are evaluated as of the snapshot.
"""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta
from typing import Any

from auditor.sandbox import Dataset, default_dataset

ADMIN = 2700762  # alice.admin, Administrator
FORMER = 2702003  # frank.former, status inactive
JUDY = 2702007  # judy.sales, Standard User
SERVICE = 2703001  # the service (API-only) user
GONE = 2799999  # no such user


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S+00:00")


def api_key(
    key_id: int,
    name: str,
    owner: int,
    *,
    restriction: int = 102,
    created_days: int = 400,
    used_days: int | None = 1,
    status: str = "active",
    legacy: bool = False,
    acme: bool = False,
    now: datetime | None = None,
) -> dict[str, Any]:
    now = now or datetime.now(UTC)
    first, last = {ADMIN: ("Alice", "Admin"), FORMER: ("Frank", "Former"), JUDY: ("Judy", "Sales")}.get(
        owner, ("Svc", "Deploy") if owner == SERVICE else ("Gone", "Person")
    )
    key: dict[str, Any] = {
        "id": key_id,
        "user": {"id": owner, "first_name": first, "last_name": last},
        "status": status,
        "create_date": _iso(now - timedelta(days=created_days)),
        "name": name,
        "is_legacy": legacy,
        "restricted_to_role_id": restriction,
    }
    if used_days is not None:
        key["last_used_date"] = _iso(now - timedelta(days=used_days))
    if acme:
        key.update(
            acme_directory_url="https://acme.digicert.com/v2/acme/directory/Ab***xyz",
            product_name_id="ssl_plus",
            organization_id=112233,
            validity_days=90,
        )
    return key


def keyed_dataset(
    *,
    keys: list[dict[str, Any]] | None = None,
    ip_rules: list[dict[str, Any]] | None = None,
    guest: bool | None = True,
) -> Dataset:
    """The default sandbox account plus a credential inventory (every kind by default)."""
    if keys is None:
        keys = every_kind()
    if ip_rules is None:
        ip_rules = [
            {
                "id": 501,
                "date_created": "2026-01-10T09:00:00+00:00",
                "container_id": 634763,
                "user_id": SERVICE,
                "ip_address": "203.0.113.10",
                "ip_address_end": "203.0.113.20",
                "description": "CI runners",
            }
        ]
    return dataclasses.replace(
        default_dataset(),
        api_keys=tuple(keys),
        ip_rules=tuple(ip_rules),
        guest_access=None
        if guest is None
        else {"enabled": guest, "guest_access_url": "https://www.digicert.com/secure/guest/abc" if guest else ""},
    )


def every_kind() -> list[dict[str, Any]]:
    """One key of each kind; the comments name the rule each should (or should not) raise."""
    return [
        api_key(11, "admin-unrestricted", ADMIN, restriction=0),  # key-unrestricted, high
        api_key(12, "reporting-view-only", ADMIN, restriction=102),  # nothing but key-no-ip-restriction
        api_key(13, "old-integration", ADMIN, legacy=True),  # key-legacy
        api_key(14, "acme-web", JUDY, restriction=0, acme=True),  # key-unrestricted, medium (not admin)
        api_key(15, "retired", FORMER, restriction=0, status="revoked"),  # nothing: revoked
        api_key(16, "made-and-forgotten", ADMIN, created_days=100, used_days=None),  # key-never-used
        api_key(17, "fresh-unused", ADMIN, created_days=80, used_days=None),  # nothing yet
        api_key(18, "quarterly-job", ADMIN, used_days=95),  # key-unused
        api_key(19, "monthly-job", ADMIN, used_days=85),  # nothing yet
        api_key(20, "leaver-key", FORMER),  # key-owner-inactive
        api_key(21, "orphan-key", GONE),  # key-owner-inactive (owner gone)
        api_key(22, "ci-deploy", SERVICE),  # covered by the IP rule for the service user
    ]
