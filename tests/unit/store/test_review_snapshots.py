"""Issue 15 §3: review state as of a time reads the snapshots that can change it, not every one."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import timedelta

import pytest
from test_versions import T0, _save, _user

from auditor import review
from auditor.credentials import MasterKey
from auditor.models import Snapshot
from auditor.store import Store

KEY = MasterKey.generate()
DAYS = 12


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Store]:
    """User 1 signs in every day; user 2 is an Administrator until day 5, absent on day 8, back as one on day 9."""
    with Store.open(tmp_path_factory.mktemp("review"), master_key=KEY) as opened:
        opened.tag_existing_records()
        for day in range(DAYS):
            people = [_user(1, last_login=T0 + timedelta(days=day)), _user(3)]
            if day != 8:
                people.append(_user(2, role="Administrator" if day < 5 or day >= 9 else "Standard User"))
            _save(opened, people, day=day)
        yield opened


def test_only_the_first_and_the_snapshots_where_a_reviewed_user_changes_or_a_decision_falls_are_loaded(
    store: Store,
) -> None:
    summaries = store.list_snapshots("prod")
    decided = T0 + timedelta(days=2, hours=3)
    picked = store.review_snapshots(summaries, user_ids={1, 2}, cuts={decided})
    # first; day 3, the first after the decision; 5 demoted; 8 gone; 9 back: the sign-ins of user 1 are no change.
    assert [s.taken_at - T0 for s in picked] == [timedelta(days=d) for d in (0, 3, 5, 8, 9)]


@pytest.mark.parametrize("decided_day", [0, 2, 4, 6, 8, 10])
@pytest.mark.parametrize(("decision", "new_role"), [("revoke", ""), ("modify", "Standard User")])
def test_remediation_from_the_snapshots_loaded_is_that_of_every_snapshot(
    store: Store, decided_day: int, decision: str, new_role: str
) -> None:
    summaries = store.list_snapshots("prod")
    decided = T0 + timedelta(days=decided_day, hours=1)
    every = [store.get_snapshot(s.id) for s in summaries]
    picked = store.review_snapshots(summaries, user_ids={2}, cuts={decided})

    def state(later: Sequence[Snapshot]) -> review.Remediation:
        return review.remediation(
            user_id=2, decision=decision, new_role=new_role, decided_at=decided, closed_at=decided,
            later=later, privileged_roles=("Administrator",), remediation_days=30, as_of=T0 + timedelta(days=DAYS),
        )

    assert len(picked) < len(every)
    assert state(picked) == state(every)
