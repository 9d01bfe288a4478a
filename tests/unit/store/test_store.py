"""The SQLite store, on real database files: round trips, atomic saves, damage, locks, chains."""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import signal
import sqlite3
import stat
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis_profile import examples
from support import lock_held_by_another_process

from auditor.credentials import MasterKey
from auditor.errors import ConfigurationError, StoreBusyError, StoreError
from auditor.models import (
    AttestationKind,
    Division,
    PullProvenance,
    RawPage,
    Role,
    User,
)
from auditor.store import (
    DB_NAME,
    SCHEMA_VERSION,
    ChainHead,
    Store,
    pull_lock,
)

KEY = MasterKey.generate()
T0 = datetime(2026, 10, 1, 12, 0, tzinfo=UTC)
HOSTILE = [
    "",
    "\x00",
    "a\x00b",
    "\u202egnp.exe",  # RTL override
    "👩‍💻🏳️‍🌈",
    "Ω≈ç√∫",
    "'; DROP TABLE snapshots; --",
    "<script>alert(1)</script>",
    '=HYPERLINK("http://x")',
    "\ud800",  # a lone surrogate: valid in JSON, not in UTF-8
    "x\udfffy",
]


def _user(user_id: int, *, roles: Sequence[str] = ("Standard User",), **changes: object) -> User:
    role_ids = {"Administrator": 1, "Manager": 4, "Standard User": 5}
    values: dict[str, object] = {
        "id": user_id,
        "email": f"user{user_id}@example.com",
        "status": "active",
        "roles": tuple(Role(role_ids.get(name, 99), name) for name in roles),
    }
    values.update(changes)
    return User(**values)  # type: ignore[arg-type]


def _page(body: bytes, *, endpoint: str = "/user?limit=500&offset=0") -> RawPage:
    return RawPage(endpoint, 200, body, hashlib.sha256(body).hexdigest(), T0)


def _provenance(
    *, connection: str = "prod", at: datetime = T0, complete: bool = True, details: bool = False
) -> PullProvenance:
    return PullProvenance(
        connection=connection,
        base_url="https://www.digicert.com/services/v2",
        account_id=1696530,
        key_fingerprint="sha256:0123456789abcdef",
        tool_version="0.1.0",
        started_at=at,
        finished_at=at + timedelta(seconds=3),
        requests=2,
        pages=1,
        retries=0,
        expected_total=2,
        received=2 if complete else 1,
        complete=complete,
        notes=() if complete else ("pagination stopped at offset 500",),
        page_digests=(("/user?limit=500&offset=0", "ab" * 32),),
        details_fetched=details,
    )


def _save(
    store: Store,
    users: Sequence[User],
    *,
    at: datetime = T0,
    complete: bool = True,
    connection: str = "prod",
    details: bool = False,
    digests: dict[int, str] | None = None,
) -> int:
    snapshot = store.save_snapshot(
        provenance=_provenance(connection=connection, at=at, complete=complete, details=details),
        users=users,
        raw_pages=[_page(b'{"users": []}')],
        record_digests=digests,
    )
    return snapshot.id


def _rows(path: Path, sql: str) -> list[tuple[object, ...]]:
    with contextlib.closing(sqlite3.connect(path)) as db:
        return db.execute(sql).fetchall()


def _execute(path: Path, *statements: str) -> None:
    with contextlib.closing(sqlite3.connect(path, isolation_level=None)) as db:
        for statement in statements:
            db.execute(statement)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    with Store.open(tmp_path / "data", master_key=KEY) as opened:
        assert opened.tag_existing_records() == 0
        yield opened


@pytest.fixture
def plain_store(tmp_path: Path) -> Iterator[Store]:
    """A store opened without the master key: nothing tagged, nothing checked against tags."""
    with Store.open(tmp_path / "plain") as opened:
        yield opened


@pytest.fixture(scope="module")
def shared_store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Store]:
    with Store.open(tmp_path_factory.mktemp("shared"), master_key=KEY) as opened:
        opened.tag_existing_records()
        yield opened


# -- users round trip -------------------------------------------------------------------------

_int64 = st.integers(min_value=-(2**63), max_value=2**63 - 1)
_text = st.one_of(
    st.text(max_size=40),
    st.text(st.characters(exclude_categories=()), max_size=20),  # includes lone surrogates
    st.sampled_from(HOSTILE),
)
_times = st.datetimes(
    min_value=datetime(1970, 1, 1),
    max_value=datetime(2200, 1, 1),
    timezones=st.sampled_from([UTC, timezone(timedelta(hours=5, minutes=30)), timezone(-timedelta(hours=8))]),
)
_division = st.builds(Division, id=_int64, name=_text, parent_id=st.none() | _int64)
_users = st.lists(
    st.builds(
        User,
        id=_int64,
        email=_text,
        username=_text,
        first_name=_text,
        last_name=_text,
        status=_text,
        roles=st.lists(st.builds(Role, id=_int64, name=_text), max_size=3).map(tuple),
        division=st.none() | _division,
        last_login=st.none() | _times,
        account_id=st.none() | _int64,
        job_title=_text,
        telephone=_text,
        user_type=_text,
        is_service_user=st.booleans(),
        restricted=st.booleans(),
        assigned_divisions=st.lists(_division, max_size=3).map(tuple),
        is_saml_sso_only=st.none() | st.booleans(),
    ),
    max_size=8,
    unique_by=lambda user: user.id,
)


@settings(max_examples=examples(150), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(users=_users)
def test_users_come_back_equal(shared_store: Store, users: list[User]) -> None:
    saved = shared_store.save_snapshot(provenance=_provenance(), users=users, raw_pages=[])
    loaded = shared_store.get_snapshot(saved.id)
    assert loaded.users == tuple(users)
    for user in loaded.users:
        assert user.last_login is None or user.last_login.tzinfo is UTC
        assert user.is_saml_sso_only is None or isinstance(user.is_saml_sso_only, bool)
    assert loaded == saved


def test_megabyte_names_and_hostile_text_survive(store: Store) -> None:
    big = "Ω" * 1_000_000
    users = [_user(i, first_name=text, last_name=big, email=text) for i, text in enumerate(HOSTILE)]
    users.append(_user(999, roles=[big, "\x00"], division=Division(1, big)))
    snapshot_id = _save(store, users)
    assert store.get_snapshot(snapshot_id).users == tuple(users)
    assert store.user_history("prod")[999].role_history[0][1] == f"{big}, \x00"


@settings(max_examples=examples(50), deadline=None)
@given(
    notes=st.lists(_text, max_size=3).map(tuple),
    digests=st.lists(st.tuples(_text, _text), max_size=3).map(tuple),
    account_id=st.none() | _int64,
    complete=st.booleans(),
    details=st.booleans(),
    started=_times,
)
def test_provenance_comes_back_equal(
    shared_store: Store,
    notes: tuple[str, ...],
    digests: tuple[tuple[str, str], ...],
    account_id: int | None,
    complete: bool,
    details: bool,
    started: datetime,
) -> None:
    provenance = dataclasses.replace(
        _provenance(),
        notes=notes,
        page_digests=digests,
        account_id=account_id,
        complete=complete,
        details_fetched=details,
        started_at=started,
        finished_at=started + timedelta(minutes=2),
    )
    saved = shared_store.save_snapshot(provenance=provenance, users=[], raw_pages=[])
    loaded = shared_store.get_snapshot(saved.id)
    assert loaded.provenance == provenance
    assert loaded.taken_at == started and loaded.taken_at.tzinfo is UTC
    assert loaded.complete is complete


def test_every_provenance_field_is_stored(store: Store) -> None:
    # A field added to PullProvenance must be added to the store too, or it is silently lost.
    snapshot_id = _save(store, [])
    (stored,) = _rows(store.path, "SELECT provenance FROM snapshots")
    assert store.get_snapshot(snapshot_id).provenance == _provenance()
    assert set(json.loads(str(stored[0]))) == {f.name for f in dataclasses.fields(PullProvenance)}


# -- all or nothing ---------------------------------------------------------------------------


def _counts(store: Store) -> tuple[object, ...]:
    return tuple(
        _rows(store.path, f"SELECT count(*) FROM {table}")[0][0]  # noqa: S608 - fixed names
        for table in ("snapshots", "snapshot_members", "user_versions", "user_presence", "raw_pages")
    )


def test_a_failure_mid_save_stores_nothing_and_keeps_earlier_snapshots(store: Store) -> None:
    earlier = _save(store, [_user(1), _user(2)])
    before = _counts(store)
    good, bad = _page(b"page one"), _page(b"page two")
    tampered = dataclasses.replace(bad, body=b"page two, altered")
    users = [_user(i) for i in range(1, 5001)]
    with pytest.raises(StoreError, match=r"Raw page 1 .* was not saved"):
        store.save_snapshot(provenance=_provenance(), users=users, raw_pages=[good, tampered])
    assert _counts(store) == before
    assert [summary.id for summary in store.list_snapshots()] == [earlier]
    assert store.get_snapshot(earlier).users == (_user(1), _user(2))
    assert store.latest_snapshot("prod") == store.get_snapshot(earlier)


def test_a_value_sqlite_cannot_hold_fails_the_whole_save(store: Store) -> None:
    _save(store, [_user(1)])
    before = _counts(store)
    users = [_user(i) for i in range(1, 100)] + [_user(100, account_id=2**64)]
    with pytest.raises(StoreError, match="too large") as caught:
        store.save_snapshot(provenance=_provenance(), users=users, raw_pages=[])
    assert isinstance(caught.value.__cause__, OverflowError)
    assert _counts(store) == before


def test_a_user_listed_twice_is_refused_by_id(store: Store) -> None:
    with pytest.raises(StoreError, match="user id 7 more than once"):
        _save(store, [_user(7), _user(8), _user(7, email="other@example.com")])
    assert store.list_snapshots() == []


# -- raw pages --------------------------------------------------------------------------------


def test_raw_pages_come_back_exactly_and_are_stored_compressed(store: Store) -> None:
    bodies = [json.dumps({"users": [{"id": i, "email": "a@example.com"} for i in range(500)]}).encode()]
    bodies += [b"", b"\x00\xff" * 10]
    pages = [_page(body, endpoint=f"/user?offset={n}") for n, body in enumerate(bodies)]
    snapshot = store.save_snapshot(provenance=_provenance(), users=[], raw_pages=pages)
    assert store.raw_pages(snapshot.id) == tuple(pages)
    stored = _rows(store.path, "SELECT length(body_zlib) FROM raw_pages WHERE position = 0")
    assert int(str(stored[0][0])) < len(bodies[0]) // 5


@pytest.mark.parametrize(
    "tamper",
    [
        "UPDATE raw_pages SET body_zlib = zeroblob(20)",  # not zlib at all
        "UPDATE raw_pages SET sha256 = '" + "0" * 64 + "'",
    ],
)
def test_a_raw_page_changed_in_the_database_is_reported(plain_store: Store, tamper: str) -> None:
    # Without the master key (no tags) the page's own SHA-256 still catches the change;
    # test_store_auth.py covers the tagged store.
    store = plain_store
    snapshot = store.save_snapshot(provenance=_provenance(), users=[], raw_pages=[_page(b"evidence")])
    _execute(store.path, tamper)
    with pytest.raises(StoreError, match=r"Raw page 0 \(/user.*\) of snapshot \d+ .* was modified"):
        store.raw_pages(snapshot.id)


def test_a_raw_page_replaced_with_other_valid_zlib_is_reported(plain_store: Store) -> None:
    import zlib

    store = plain_store
    snapshot = store.save_snapshot(provenance=_provenance(), users=[], raw_pages=[_page(b"evidence")])
    with contextlib.closing(sqlite3.connect(store.path, isolation_level=None)) as db:
        db.execute("UPDATE raw_pages SET body_zlib = ?", (zlib.compress(b"forged"),))
    with pytest.raises(StoreError, match="was modified"):
        store.raw_pages(snapshot.id)


def test_unknown_snapshot_ids_are_named(store: Store) -> None:
    with pytest.raises(ConfigurationError, match="no snapshot 42"):
        store.get_snapshot(42)
    with pytest.raises(ConfigurationError, match="no snapshot 42"):
        store.raw_pages(42)
    assert store.raw_pages(_save(store, [])) != ()


# -- baselines --------------------------------------------------------------------------------


def test_baselines_skip_incomplete_pulls_unless_asked(store: Store) -> None:
    hour = timedelta(hours=1)
    c1 = _save(store, [_user(1)], at=T0)
    i2 = _save(store, [_user(1)], at=T0 + hour, complete=False)
    c3 = _save(store, [_user(1), _user(2)], at=T0 + 2 * hour)
    i4 = _save(store, [_user(1)], at=T0 + 3 * hour, complete=False)
    _save(store, [_user(1)], at=T0 + 4 * hour, connection="other")

    def ident(snapshot: object) -> int | None:
        return getattr(snapshot, "id", None)

    assert ident(store.latest_snapshot("prod")) == c3
    assert ident(store.latest_snapshot("prod", complete_only=False)) == i4
    third = store.get_snapshot(c3)
    assert ident(store.previous_snapshot(third)) == c1
    assert ident(store.previous_snapshot(third, complete_only=False)) == i2
    assert store.previous_snapshot(store.get_snapshot(c1), complete_only=False) is None
    assert store.latest_snapshot("nobody") is None
    assert [s.id for s in store.snapshots("prod")] == [c1, i2, c3, i4]
    summaries = store.list_snapshots("prod")
    assert [(s.id, s.users, s.complete) for s in summaries] == [
        (c1, 1, True),
        (i2, 1, False),
        (c3, 2, True),
        (i4, 1, False),
    ]
    assert len(store.list_snapshots()) == 5


def test_snapshots_taken_at_the_same_instant_are_ordered_by_id(store: Store) -> None:
    first = _save(store, [_user(1)])
    second = _save(store, [_user(2)])
    assert getattr(store.latest_snapshot("prod"), "id", None) == second
    assert getattr(store.previous_snapshot(store.get_snapshot(second)), "id", None) == first


def test_summaries_count_admins(store: Store) -> None:
    _save(store, [_user(1, roles=["Administrator"]), _user(2, roles=["Manager", "Administrator"]), _user(3)])
    (summary,) = store.list_snapshots()
    assert (summary.users, summary.admins, summary.taken_at) == (3, 2, T0)


# -- history ----------------------------------------------------------------------------------


def test_user_history_tracks_sightings_and_role_changes(store: Store) -> None:
    day = timedelta(days=1)
    _save(store, [_user(1), _user(2, roles=["Administrator"])], at=T0)
    _save(store, [_user(1, roles=["Administrator"]), _user(3)], at=T0 + day, complete=False)
    _save(store, [_user(1, roles=["Administrator"])], at=T0 + 2 * day)
    _save(store, [_user(1), _user(2, roles=["Administrator"])], at=T0 + 3 * day)
    _save(store, [_user(9)], at=T0 + 9 * day, connection="other")
    history = store.user_history("prod")
    assert set(history) == {1, 2, 3}
    one = history[1]
    assert (one.first_seen, one.last_seen) == (T0, T0 + 3 * day)
    assert one.role_history == (
        (T0, "Standard User"),
        (T0 + day, "Administrator"),
        (T0 + 3 * day, "Standard User"),
    )
    assert (history[2].first_seen, history[2].last_seen) == (T0, T0 + 3 * day)
    assert history[2].role_history == ((T0, "Administrator"),)  # absent in between: no change
    assert (history[3].first_seen, history[3].last_seen) == (T0 + day, T0 + day)  # incomplete counts
    assert store.user_history("nobody") == {}


def test_known_details_come_from_the_latest_pull_that_fetched_them(store: Store) -> None:
    day = timedelta(days=1)
    _save(
        store,
        [_user(1, is_saml_sso_only=True), _user(2, is_saml_sso_only=False)],
        at=T0,
        details=True,
        digests={1: "d1-old", 2: "d2-old"},
    )
    _save(
        store,
        [_user(1, is_saml_sso_only=False), _user(2, is_saml_sso_only=None), _user(3, is_saml_sso_only=True)],
        at=T0 + day,
        details=True,
        digests={1: "d1", 2: "d2"},  # user 3 has no digest; user 2 no details
    )
    _save(store, [_user(1), _user(2)], at=T0 + 2 * day, details=False, digests={1: "x", 2: "y"})
    assert store.known_details("prod") == {1: ("d1", False)}
    assert store.known_details("other") == {}


# -- connections ------------------------------------------------------------------------------


def test_connections_round_trip_and_hide_the_sealed_key(store: Store) -> None:
    added = datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=timezone(timedelta(hours=2)))
    store.save_connection(
        "prod",
        base_url="https://www.digicert.com/services/v2",
        region="us",
        encrypted_key=b"\x01SEALED-SECRET",
        key_fingerprint="sha256:aaaa",
        added_at=added,
    )
    record = store.get_connection("prod")
    assert record.encrypted_key == b"\x01SEALED-SECRET"
    assert record.added_at == added and record.added_at.tzinfo is UTC
    assert (record.region, record.last_test_at, record.last_test_result) == ("us", None, None)
    assert "SEALED" not in repr(record)
    store.record_connection_test("prod", at=T0, result="ok: Administrator key")
    tested = store.get_connection("prod")
    assert (tested.last_test_at, tested.last_test_result) == (T0, "ok: Administrator key")
    store.save_connection(
        "prod", base_url="https://eu", region=None, encrypted_key=b"k2", key_fingerprint="f2", added_at=T0
    )
    replaced = store.get_connection("prod")
    assert (replaced.base_url, replaced.region, replaced.last_test_at) == ("https://eu", None, None)
    store.save_connection("eu", base_url="b", region="eu", encrypted_key=b"k", key_fingerprint="f", added_at=T0)
    assert [c.name for c in store.list_connections()] == ["eu", "prod"]


def test_unknown_connections_list_the_known_ones(store: Store) -> None:
    with pytest.raises(ConfigurationError) as none_yet:
        store.get_connection("prod")
    assert "auditor connect" in none_yet.value.diagnostics()
    for name in ("eu", "us"):
        store.save_connection(name, base_url="b", region=None, encrypted_key=b"k", key_fingerprint="f", added_at=T0)
    with pytest.raises(ConfigurationError, match="Known connections: eu, us"):
        store.get_connection("prod")
    with pytest.raises(ConfigurationError, match="no connection named 'prod'"):
        store.record_connection_test("prod", at=T0, result="x")
    with pytest.raises(ConfigurationError, match="no connection named 'prod'"):
        store.delete_connection("prod")


def test_deleting_a_connection_keeps_its_snapshots(store: Store) -> None:
    store.save_connection("prod", base_url="b", region=None, encrypted_key=b"k", key_fingerprint="f", added_at=T0)
    snapshot_id = _save(store, [_user(1)])
    store.delete_connection("prod")
    assert store.list_connections() == []
    assert store.get_snapshot(snapshot_id).users == (_user(1),)


@pytest.mark.parametrize("name", ["", "../etc", "a/b", "with space", ".hidden", "-x", "x" * 65, "é"])
def test_connection_names_that_could_escape_a_path_are_refused(store: Store, name: str) -> None:
    with pytest.raises(ConfigurationError, match="cannot name a connection"):
        store.save_connection(name, base_url="b", region=None, encrypted_key=b"k", key_fingerprint="f", added_at=T0)


def test_naive_datetimes_are_refused(store: Store) -> None:
    with pytest.raises(ValueError, match="naive"):
        store.record_connection_test("prod", at=datetime(2026, 1, 1), result="x")


# -- attestations and signing keys ------------------------------------------------------------


def test_attestations_newest_first(store: Store) -> None:
    year = timedelta(days=365)
    first = store.add_attestation(
        "prod",
        kind=AttestationKind.MFA,
        by="ciso@example.com",
        statement="SSO enforces MFA",
        made_at=T0,
        expires=T0 + year,
    )
    second = store.add_attestation(
        "prod",
        kind=AttestationKind.REVIEW,
        by="Ann",
        statement="\u202ereviewed",
        made_at=T0 + year,
        expires=T0 + 2 * year,
    )
    store.add_attestation("other", kind=AttestationKind.MFA, by="x", statement="y", made_at=T0, expires=T0 + year)
    assert store.attestations("prod") == [second, first]
    assert first.kind is AttestationKind.MFA and first.id != second.id
    with pytest.raises(ConfigurationError, match="expire after"):
        store.add_attestation("prod", kind=AttestationKind.MFA, by="x", statement="y", made_at=T0, expires=T0)


def test_signing_keys_rotate(store: Store) -> None:
    assert store.active_signing_key() is None
    store.save_signing_key(
        fingerprint="ed25519:old", encrypted_private_key=b"SEALED1", public_pem="PEM1", created_at=T0
    )
    later = T0 + timedelta(days=30)
    store.save_signing_key(
        fingerprint="ed25519:new", encrypted_private_key=b"SEALED2", public_pem="PEM2", created_at=later
    )
    active = store.active_signing_key()
    assert active is not None and active.fingerprint == "ed25519:new" and active.encrypted_private_key == b"SEALED2"
    assert "SEALED" not in repr(active)
    store.retire_signing_key("ed25519:new", at=later + timedelta(days=1))
    store.retire_signing_key("ed25519:new", at=later + timedelta(days=9))  # keeps the first time
    assert getattr(store.active_signing_key(), "fingerprint", None) == "ed25519:old"
    keys = store.signing_keys()
    assert [(k.fingerprint, k.retired_at) for k in keys] == [
        ("ed25519:old", None),
        ("ed25519:new", later + timedelta(days=1)),
    ]
    with pytest.raises(StoreError, match="already stored"):
        store.save_signing_key(fingerprint="ed25519:old", encrypted_private_key=b"x", public_pem="y", created_at=T0)
    with pytest.raises(ConfigurationError, match="no signing key"):
        store.retire_signing_key("ed25519:nope", at=T0)


# -- evidence chain ---------------------------------------------------------------------------


def _head(chain_id: str, sequence: int) -> ChainHead:
    return ChainHead(
        chain_id=chain_id,
        sequence=sequence,
        manifest_sha256=hashlib.sha256(f"{chain_id}/{sequence}".encode()).hexdigest(),
        signature=f"sig-{chain_id}-{sequence}",
        key_fingerprint="ed25519:k",
        exported_at=T0 + timedelta(days=sequence),
    )


def test_the_chain_advances_one_step_at_a_time(store: Store) -> None:
    assert store.chain_head("prod") is None
    with pytest.raises(StoreError, match="fork"):
        store.advance_chain("prod", _head("A", 1))  # a chain starts at 0
    for sequence in range(3):
        store.advance_chain("prod", _head("A", sequence))
    assert store.chain_head("prod") == _head("A", 2)
    for bad in (_head("A", 2), _head("A", 1), _head("A", 4), _head("B", 3), _head("A", 0)):
        with pytest.raises(StoreError, match="fork the chain") as caught:
            store.advance_chain("prod", bad)
        assert "Nothing was changed" in caught.value.message
    assert store.chain_head("prod") == _head("A", 2)
    with pytest.raises(StoreError, match="fork"):
        store.advance_chain("prod", _head("B", 0))  # a new chain only when asked for
    store.advance_chain("prod", _head("B", 0), new_chain=True)  # a restart is a new chain
    store.advance_chain("prod", _head("B", 1))
    with pytest.raises(StoreError, match="fork"):
        store.advance_chain("prod", _head("A", 3))  # the old chain cannot be resumed
    assert store.chain_head("other") is None
    assert store.exports("prod") == [_head("A", 0), _head("A", 1), _head("A", 2), _head("B", 0), _head("B", 1)]


def test_two_processes_cannot_both_extend_the_same_head(tmp_path: Path) -> None:
    with Store.open(tmp_path) as one, Store.open(tmp_path) as two:
        one.advance_chain("prod", _head("A", 0))
        seen_by_both = two.chain_head("prod")
        assert seen_by_both == _head("A", 0)
        one.advance_chain("prod", _head("A", 1))
        with pytest.raises(StoreError, match="fork"):
            two.advance_chain("prod", dataclasses.replace(_head("A", 1), signature="other"))
        assert two.chain_head("prod") == _head("A", 1)


# -- opening, permissions, damage -------------------------------------------------------------


def test_files_are_private(tmp_path: Path) -> None:
    data = tmp_path / "a" / "data"
    with Store.open(data) as store:
        _save(store, [_user(1)])
        assert stat.S_IMODE(data.stat().st_mode) == 0o700
        for name in (DB_NAME, DB_NAME + "-wal", DB_NAME + "-shm"):
            assert stat.S_IMODE((data / name).stat().st_mode) == 0o600, name
    with pull_lock(data, "prod"):
        assert stat.S_IMODE((data / "locks").stat().st_mode) == 0o700
        assert stat.S_IMODE((data / "locks" / "prod.lock").stat().st_mode) == 0o600


def test_a_fresh_database_is_at_the_current_schema_and_reopens(tmp_path: Path) -> None:
    with Store.open(tmp_path) as store:
        snapshot_id = _save(store, [_user(1)])
    assert _rows(tmp_path / DB_NAME, "PRAGMA user_version") == [(SCHEMA_VERSION,)]
    assert _rows(tmp_path / DB_NAME, "PRAGMA journal_mode") == [("wal",)]
    with Store.open(tmp_path) as store:
        assert store.get_snapshot(snapshot_id).users == (_user(1),)


def test_a_database_from_a_newer_version_is_refused_untouched(tmp_path: Path) -> None:
    with Store.open(tmp_path) as store:
        _save(store, [_user(1)])
    _execute(tmp_path / DB_NAME, f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    before = (tmp_path / DB_NAME).read_bytes()
    with pytest.raises(StoreError, match="created by a newer version") as caught:
        Store.open(tmp_path)
    assert "Nothing was changed" in caught.value.message and str(tmp_path / DB_NAME) in caught.value.message
    assert (tmp_path / DB_NAME).read_bytes() == before


def _damaged(tmp_path: Path) -> Path:
    with Store.open(tmp_path) as store:
        for n in range(3):
            _save(store, [_user(i, last_name="x" * 200) for i in range(2000)], at=T0 + timedelta(days=n))
    path = tmp_path / DB_NAME
    assert not Path(str(path) + "-wal").exists() or Path(str(path) + "-wal").stat().st_size == 0
    return path


@pytest.mark.parametrize(
    "damage",
    ["truncate", "header", "pages", "text", "zeros"],
)
def test_a_damaged_database_is_refused_with_the_next_step(tmp_path: Path, damage: str) -> None:
    path = _damaged(tmp_path)
    data = bytearray(path.read_bytes())
    if damage == "truncate":
        data = data[: len(data) // 2]
    elif damage == "header":
        data[:16] = b"not an sqlite db"
    elif damage == "pages":
        for page in range(2, len(data) // 4096, 3):  # scribble over many b-tree page headers
            data[page * 4096 : page * 4096 + 12] = b"\xff" * 12
    elif damage == "text":
        data = bytearray(b"# just a text file\n" * 100)
    else:
        data = bytearray(len(data))
    path.write_bytes(bytes(data))
    with pytest.raises(StoreError) as caught:
        Store.open(tmp_path)
    text = caught.value.diagnostics()
    assert str(path) in text
    assert "Nothing was changed" in text and "backup" in text
    assert path.read_bytes() == bytes(data)


def test_a_data_directory_that_cannot_be_created_is_reported(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    with pytest.raises(StoreError, match="cannot be used"):
        Store.open(tmp_path / "file" / "data")


def test_a_write_while_another_process_writes_is_busy(tmp_path: Path) -> None:
    with Store.open(tmp_path, busy_timeout=0.2) as store:
        with contextlib.closing(sqlite3.connect(tmp_path / DB_NAME, isolation_level=None)) as other:
            other.execute("BEGIN IMMEDIATE")
            with pytest.raises(StoreBusyError, match="busy"):
                _save(store, [_user(1)])
            other.execute("ROLLBACK")
        _save(store, [_user(1)])
        assert len(store.list_snapshots()) == 1


# -- the pull lock ----------------------------------------------------------------------------

def test_a_second_pull_of_the_same_connection_is_told_to_wait(tmp_path: Path) -> None:
    with lock_held_by_another_process(tmp_path, "prod"):
        with pytest.raises(StoreBusyError) as caught, pull_lock(tmp_path, "prod", timeout=0.2):
            pytest.fail("acquired a lock another process holds")
        message = caught.value.diagnostics()
        assert "Another `auditor pull` for connection 'prod' is running" in message
        assert str(tmp_path / "locks" / "prod.lock") in message
        assert "Wait for it to finish" in message
        with pull_lock(tmp_path, "eu", timeout=0.2):  # other connections are not blocked
            pass
    with pull_lock(tmp_path, "prod", timeout=5):  # released when the holder exits
        pass


def test_a_killed_pull_does_not_leave_the_lock_held(tmp_path: Path) -> None:
    with lock_held_by_another_process(tmp_path, "prod") as proc:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
        with pull_lock(tmp_path, "prod", timeout=5):
            assert (tmp_path / "locks" / "prod.lock").exists()


def test_an_odd_connection_name_cannot_steer_the_lock_file(tmp_path: Path) -> None:
    with pull_lock(tmp_path / "data", "../../escape"):
        pass
    assert not (tmp_path / "escape.lock").exists()
    assert [p.parent for p in (tmp_path / "data" / "locks").iterdir()] == [tmp_path / "data" / "locks"]


def test_a_store_reads_each_snapshot_once_and_a_new_store_reads_the_file(store: Store, tmp_path: Path) -> None:
    first = _save(store, [_user(1), _user(2)])
    second = _save(store, [_user(1)], at=T0 + timedelta(days=1))
    current = store.get_snapshot(second)
    assert store.previous_snapshot(current) is store.get_snapshot(first)
    assert [s.id for s in store.snapshots("prod")] == [first, second]
    assert store.snapshots("prod")[1] is current, "the trend reuses the snapshots already read"
    # The cache lives with one Store: another process's view (a new Store) reads the file.
    with contextlib.closing(sqlite3.connect(store.path, isolation_level=None)) as db:
        db.execute("UPDATE user_versions SET email = 'changed@example.com' WHERE user_id = 1")
    with Store.open(store.path.parent) as reopened:
        assert reopened.get_snapshot(second).users[0].email == "changed@example.com"
