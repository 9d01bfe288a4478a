"""The identity index is passed where it is needed (no module-level cache): one index, many matches."""

from __future__ import annotations

from datetime import UTC, datetime

from auditor.identity import PRESETS, IdentityIndex, IdentityRecord, IdentitySource, match_users
from auditor.models import User

NOW = datetime(2026, 11, 1, tzinfo=UTC)


def source(*emails: str) -> IdentitySource:
    records = tuple(IdentityRecord(file="hr.csv", row=n + 2, email=email) for n, email in enumerate(emails))
    return IdentitySource(files=(), preset="generic", mapping=PRESETS["generic"], records=records)


def test_a_given_index_is_the_one_matched_against() -> None:
    users = [User(id=1, email="Ann@Example.com"), User(id=2, email="bob@example.com")]
    roster = source("ann@example.com", "bob@example.com")
    assert set(match_users(users, roster, now=NOW)) == {1, 2}
    only_ann = IdentityIndex(source("ann@example.com").records)
    assert set(match_users(users, roster, now=NOW, index=only_ann)) == {1}

