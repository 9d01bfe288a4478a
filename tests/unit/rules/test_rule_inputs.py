"""The recorded rule inputs round-trip every domain type the rules read (issue 12 §5)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Literal

import pytest
from unit.evidence.test_evidence import T0

from auditor.config import default_config
from auditor.evidence.reperform import decode, encode
from auditor.models import Attestation, AttestationKind, ExceptionEntry, Role, Snapshot, User, UserHistory


@dataclass(frozen=True)
class Future:
    """Fields another change may add (an approval date, a set of ids, a closed choice)."""

    approved_on: date
    ids: frozenset[int]
    mode: Literal["a", "b"]
    note: str | None = None


def round_trip(kind: object, value: object) -> object:
    return decode(kind, json.loads(json.dumps(encode(value))))


def test_config_snapshot_history_attestations_and_exceptions_round_trip() -> None:
    config = default_config()
    entry = ExceptionEntry("stale-login", "dana@example.com", "seasonal", "Security", T0 + timedelta(days=30), line=3)
    config = type(config)(**{**{f: getattr(config, f) for f in config.__dataclass_fields__},
                             "exceptions": (entry,), "source": Path("auditor.toml")})
    user = User(id=7, email="a@example.com", roles=(Role(1, "Administrator"),), last_login=T0, is_saml_sso_only=True)
    attestation = Attestation(1, "prod", AttestationKind.REVIEW, "Ann", "Reviewed", T0, T0 + timedelta(days=90))
    history = UserHistory(7, T0, T0 + timedelta(days=1), ((T0, "Administrator"),))

    assert round_trip(type(config), config) == config
    assert round_trip(User, user) == user
    assert round_trip(Attestation, attestation) == attestation
    assert round_trip(UserHistory, history) == history
    assert round_trip(Snapshot | None, None) is None
    assert round_trip(Future, Future(date(2027, 1, 31), frozenset({1, 2}), "b")) == Future(
        date(2027, 1, 31), frozenset({1, 2}), "b"
    )


@pytest.mark.parametrize(
    ("kind", "value", "message"),
    [
        (User, {"id": "7", "email": "a"}, "whole number"),
        (User, {"id": 7, "email": "a", "admin": True}, "unknown field"),
        (datetime, "2026-11-01T12:00:00", "time zone"),
        (Future, {"approved_on": 5, "ids": [], "mode": "a"}, "date"),
        (Future, {"approved_on": "2027-01-31", "ids": [], "mode": "c"}, "not one of"),
    ],
)
def test_recorded_inputs_of_the_wrong_shape_are_reasons(kind: object, value: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        decode(kind, value)


def test_datetimes_keep_full_precision() -> None:
    moment = datetime(2026, 11, 1, 12, 0, 0, 123456, tzinfo=UTC)
    assert round_trip(datetime, moment) == moment
