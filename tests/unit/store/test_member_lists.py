"""Issue 15 §3: a member list stored against the previous snapshot's, in a bounded chain."""

from __future__ import annotations

import contextlib
import random
import sqlite3
from pathlib import Path

import pytest
from test_versions import T0, _save, _user

from auditor.credentials import MasterKey
from auditor.store import Store, StoreTamperedError
from auditor.store.versions import KEYFRAME_EVERY, decode_against, decode_members, encode_against, encode_members

KEY = MasterKey.generate()


def _members(path: Path) -> dict[int, tuple[int, int | None]]:
    with contextlib.closing(sqlite3.connect(path)) as db:
        rows = db.execute("SELECT snapshot_id, length(versions), base_id FROM snapshot_members").fetchall()
    return {int(r[0]): (int(r[1]), r[2]) for r in rows}


def test_an_unchanged_pull_of_an_interleaved_list_stores_a_few_bytes_and_loads_its_users_in_order(
    tmp_path: Path,
) -> None:
    """Half the users sign in between the first two pulls, so pull order is not version order (as
    after months of history); the third pull changes nothing and its list is a reference."""
    rng = random.Random(15)  # deterministic test data
    people = [_user(i) for i in range(1, 301)]
    rng.shuffle(people)
    with Store.open(tmp_path, master_key=KEY) as store:
        first = _save(store, people, day=0)
        people = [_user(u.id, last_login=T0) if rng.random() < 0.5 else u for u in people]
        second = _save(store, people, day=1)
        third = _save(store, people, day=2)
        members = _members(store.path)
        assert members[third][1] == second and members[third][0] < 40, members[third]
        assert members[first][1] is None
        assert store.get_snapshot(third).users == tuple(people) == store.get_snapshot(second).users


def test_every_chain_starts_with_a_full_list_within_keyframe_every(tmp_path: Path) -> None:
    people = [_user(1), _user(2), _user(3)]
    with Store.open(tmp_path, master_key=KEY) as store:
        ids = [_save(store, people, day=day) for day in range(KEYFRAME_EVERY + 2)]
        bases = {i: base for i, (_length, base) in _members(store.path).items()}
        assert [bases[i] is None for i in ids].count(True) == 2
        for snapshot_id in ids:
            hops, current = 0, bases[snapshot_id]
            while current is not None:
                hops, current = hops + 1, bases[current]
            assert hops < KEYFRAME_EVERY
        assert all(store.get_snapshot(i).users == tuple(people) for i in ids)


def test_an_edited_base_list_is_tampering_of_the_snapshots_built_on_it(tmp_path: Path) -> None:
    people = [_user(1), _user(2), _user(3)]
    with Store.open(tmp_path, master_key=KEY) as store:
        store.tag_existing_records()
        first, second = _save(store, people, day=0), _save(store, people, day=1)
        path = store.path
    with contextlib.closing(sqlite3.connect(path, isolation_level=None)) as db:
        (versions,) = db.execute("SELECT versions FROM snapshot_members WHERE snapshot_id = ?", (first,)).fetchone()
        assert decode_members(versions, 3) == [1, 2, 3]
        # The first list re-ordered; the second, an unchanged pull, is stored as "the same as the first".
        db.execute("UPDATE snapshot_members SET versions = ? WHERE snapshot_id = ?", (encode_members([2, 1, 3]), first))
    with Store.open(tmp_path, master_key=KEY) as store, pytest.raises(StoreTamperedError):
        store.get_snapshot(second)


@pytest.mark.parametrize(
    ("ids", "base"),
    [([], []), ([5, 6, 7], [5, 6, 7]), ([7, 5, 9, 10, 6], [5, 6, 7]), ([1, 2], [9]), ([3], [1, 2, 3, 4])],
)
def test_a_list_against_its_base_round_trips(ids: list[int], base: list[int]) -> None:
    assert decode_against(encode_against(ids, base), len(ids), base) == ids
