"""Domain values for unit tests: snapshots built straight from the dataclasses, no pull needed."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from auditor.models import Division, PullProvenance, Role, Snapshot, User

US_BASE_URL = "https://www.digicert.com/services/v2"
STANDARD_USER = Role(5, "Standard User")
HQ = Division(10, "HQ")


def make_user(user_id: int = 1, *, last_login: datetime | None, name: str = "user", **overrides: Any) -> User:
    """An active Standard User in division HQ, ``{name}{id}@example.com``; ``overrides`` replace fields."""
    values: dict[str, Any] = {
        "email": f"{name}{user_id}@example.com",
        "first_name": name.title(),
        "last_name": str(user_id),
        "status": "active",
        "roles": (STANDARD_USER,),
        "division": HQ,
        "last_login": last_login,
    }
    values.update(overrides)
    return User(id=user_id, **values)


def make_snapshot(
    users: Sequence[User],
    *,
    snapshot_id: int = 1,
    taken_at: datetime,
    complete: bool = True,
    notes: tuple[str, ...] = (),
    page_digests: tuple[tuple[str, str], ...] = (),
    connection: str = "prod",
) -> Snapshot:
    """A snapshot of ``users`` as a pull at ``taken_at`` would store it (incomplete: 5 users short)."""
    provenance = PullProvenance(
        connection=connection,
        base_url=US_BASE_URL,
        account_id=1,
        key_fingerprint="sha256:0000000000000000",
        tool_version="0.1.0",
        started_at=taken_at,
        finished_at=taken_at,
        requests=1,
        pages=1,
        retries=0,
        expected_total=len(users) + (0 if complete else 5),
        received=len(users),
        complete=complete,
        notes=notes,
        page_digests=page_digests,
    )
    return Snapshot(id=snapshot_id, connection=connection, taken_at=taken_at, users=tuple(users), provenance=provenance)
