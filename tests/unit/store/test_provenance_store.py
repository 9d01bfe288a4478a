"""The operator, key owner and per-endpoint reconciliation survive the store, hostile text and all.

(A snapshot stored by an earlier version is tested with that version itself, in
``test_provenance_operator.py::test_a_snapshot_from_an_earlier_version_says_not_recorded``.)
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis_profile import examples

from auditor.models import EndpointReconciliation, KeyOwner, Operator, PullProvenance
from auditor.store import Store

T0 = datetime(2026, 10, 1, 12, 0, tzinfo=UTC)
#: Includes lone surrogates (valid in JSON, not in UTF-8) and control characters.
_text = st.one_of(st.text(max_size=30), st.text(st.characters(exclude_categories=()), max_size=15))
_count = st.integers(min_value=0, max_value=10**9)


def _provenance(**fields: object) -> PullProvenance:
    values: dict[str, object] = {
        "connection": "prod",
        "base_url": "https://www.digicert.com/services/v2",
        "account_id": 1696530,
        "key_fingerprint": "sha256:0000000000000000",
        "tool_version": "0.1.0",
        "started_at": T0,
        "finished_at": T0,
        "requests": 3,
        "pages": 2,
        "retries": 0,
        "expected_total": 7,
        "received": 7,
        "complete": True,
        **fields,
    }
    return PullProvenance(**values)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def shared_store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Store]:
    with Store.open(tmp_path_factory.mktemp("provenance")) as opened:
        yield opened


@settings(max_examples=examples(60), deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    operator=st.none() | st.builds(Operator, _text, _text, _text, _text, _text),
    owner=st.none()
    | st.builds(
        KeyOwner,
        user_id=st.integers(min_value=-(2**63), max_value=2**63 - 1),
        name=_text,
        email=_text,
        role=_text,
        restricted=st.booleans(),
        divisions=st.lists(_text, max_size=3).map(tuple),
    ),
    endpoints=st.lists(
        st.builds(
            EndpointReconciliation,
            path=_text,
            announced=_count,
            received=_count,
            pages=_count,
            complete=st.booleans(),
            requests=st.lists(st.tuples(_text, _text), max_size=3).map(tuple),
            note=_text,
        ),
        max_size=3,
    ).map(tuple),
)
def test_operator_key_owner_and_endpoints_come_back_equal(
    shared_store: Store,
    operator: Operator | None,
    owner: KeyOwner | None,
    endpoints: tuple[EndpointReconciliation, ...],
) -> None:
    provenance = _provenance(operator=operator, key_owner=owner, endpoints=endpoints)
    saved = shared_store.save_snapshot(provenance=provenance, users=[], raw_pages=[])
    loaded = shared_store.get_snapshot(saved.id).provenance
    assert loaded == provenance
    assert not loaded.recorded_by_earlier_version

