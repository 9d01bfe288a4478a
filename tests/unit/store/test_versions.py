"""Issue 15: user rows as versions, migration 5, the cheap open check and the full one after a crash."""

from __future__ import annotations

import contextlib
import hashlib
import os
import sqlite3
import subprocess
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from auditor.credentials import MasterKey
from auditor.errors import StoreError
from auditor.models import PullProvenance, RawPage, Role, User
from auditor.store import _MIGRATIONS, DB_NAME, Store, _expected_schema
from auditor.store.versions import member_rows

T0 = datetime(2026, 10, 1, 12, 0, tzinfo=UTC)
KEY = MasterKey.generate()


def _user(user_id: int, *, role: str = "Standard User", **changes: object) -> User:
    values: dict[str, object] = {
        "id": user_id, "email": f"User{user_id}@Example.com", "status": "active", "roles": (Role(5, role),),
    }
    values.update(changes)
    return User(**values)  # type: ignore[arg-type]


def _save(store: Store, users: Sequence[User], *, day: int) -> int:
    at = T0 + timedelta(days=day)
    body = f'{{"day": {day}}}'.encode()
    page = RawPage("/user?limit=500&offset=0", 200, body, hashlib.sha256(body).hexdigest(), at)
    provenance = PullProvenance(
        connection="prod", base_url="https://www.digicert.com/services/v2", account_id=1, key_fingerprint="k",
        tool_version="0.1.0", started_at=at, finished_at=at + timedelta(seconds=3), requests=1, pages=1, retries=0,
        expected_total=len(users), received=len(users), complete=True, notes=(),
        page_digests=((page.endpoint, page.sha256),), details_fetched=False,
    )
    return store.save_snapshot(provenance=provenance, users=users, raw_pages=[page]).id


def _count(path: Path, table: str) -> int:
    with contextlib.closing(sqlite3.connect(path)) as db:
        return int(db.execute(f"SELECT count(*) FROM {table}").fetchone()[0])  # noqa: S608 - fixed names


def _year(store: Store) -> list[int]:
    """Four pulls: unchanged, a sign-in, a promotion and a leaver, a joiner with hostile text."""
    people = [_user(1), _user(2), _user(3)]
    ids = [_save(store, people, day=0), _save(store, people, day=1)]
    people[1] = _user(2, last_login=T0 + timedelta(days=2))
    ids.append(_save(store, people, day=2))
    ids.append(_save(store, [_user(1, role="Administrator"), people[1], _user(4, last_name="x\udfffy")], day=3))
    return ids


def test_an_unchanged_pull_writes_no_user_rows(tmp_path: Path) -> None:
    with Store.open(tmp_path) as store:
        ids = _year(store)
        # 3 first versions, 1 sign-in, 1 promotion, 1 joiner: 6 rows for 12 sightings.
        assert _count(store.path, "user_versions") == 6
        assert [len(store.get_snapshot(i).users) for i in ids] == [3, 3, 3, 3]
        assert store.get_snapshot(ids[3]).users[2].last_name == "x\udfffy"
        history = store.user_history("prod")
        assert history[1].role_history == ((T0, "Standard User"), (T0 + timedelta(days=3), "Administrator"))
        assert history[3].last_seen == T0 + timedelta(days=2)
        assert store.user_history("prod", until=store.get_snapshot(ids[1]))[1].last_seen == T0 + timedelta(days=1)
        assert store.find_user_snapshot("prod", "user3@EXAMPLE.com") == ids[2]
        assert store.find_user_snapshot("prod", "4") == ids[3]


def _as_schema_4(path: Path) -> None:
    """The store as schema 4 wrote it: snapshot_users rows, none of migration 5's tables."""
    (ddl,) = [s for s in _MIGRATIONS[0] if isinstance(s, str) and "CREATE TABLE snapshot_users" in s]
    with contextlib.closing(sqlite3.connect(path, isolation_level=None)) as db:
        db.execute(ddl)
        for (snapshot_id,) in db.execute("SELECT id FROM snapshots").fetchall():
            rows = member_rows(db, snapshot_id)
            insert = f"INSERT INTO snapshot_users VALUES ({', '.join('?' * len(rows[0]))})"  # noqa: S608
            db.executemany(insert, rows)
        version_4 = {(kind, name) for kind, name, _columns in _expected_schema(4)}
        for kind, name in db.execute("SELECT type, name FROM sqlite_master WHERE name NOT LIKE 'sqlite_%'").fetchall():
            if kind == "table" and (kind, name) not in version_4:  # migration 5's tables and any later ones
                db.execute(f"DROP TABLE {name}")
        db.execute("DELETE FROM meta WHERE key LIKE 'migrated_to_%' AND CAST(substr(key, 13) AS INTEGER) >= 5")
        db.execute("PRAGMA user_version = 4")


def test_migration_5_converts_in_place_and_every_snapshot_loads_identically(tmp_path: Path) -> None:
    with Store.open(tmp_path, master_key=KEY) as store:
        store.tag_existing_records()
        ids = _year(store)
    _as_schema_4(tmp_path / DB_NAME)
    with Store.open(tmp_path, master_key=KEY) as store:  # the old rows, read as schema 4 stored them
        assert _count(store.path, "user_versions") == 6  # ...converted on this open
    _as_schema_4(tmp_path / DB_NAME)
    with contextlib.closing(sqlite3.connect(tmp_path / DB_NAME)) as db:
        before_rows = db.execute("SELECT * FROM snapshot_users ORDER BY snapshot_id, position").fetchall()
        before_pages = db.execute("SELECT * FROM raw_pages ORDER BY snapshot_id, position").fetchall()
    with Store.open(tmp_path, master_key=KEY) as store:
        after_rows = [row for i in ids for row in member_rows(store._db, i)]
        loaded = [store.get_snapshot(i) for i in ids]  # every tag checked, as before the migration
        pages = [store.raw_pages(i) for i in ids]
        history = store.user_history("prod")
    assert after_rows == before_rows
    with contextlib.closing(sqlite3.connect(tmp_path / DB_NAME)) as db:
        assert db.execute("SELECT * FROM raw_pages ORDER BY snapshot_id, position").fetchall() == before_pages
        assert db.execute("SELECT count(*) FROM user_presence WHERE tag IS NULL").fetchone()[0] == 0
        assert db.execute("PRAGMA user_version").fetchone()[0] == len(_MIGRATIONS)
    with Store.open(tmp_path, master_key=KEY) as fresh:
        assert [fresh.get_snapshot(i) for i in ids] == loaded
        assert [fresh.raw_pages(i) for i in ids] == pages and fresh.user_history("prod") == history


def test_a_migration_that_fails_changes_nothing(tmp_path: Path) -> None:
    with Store.open(tmp_path) as store:
        _year(store)
    path = tmp_path / DB_NAME
    _as_schema_4(path)
    with contextlib.closing(sqlite3.connect(path, isolation_level=None)) as db:
        db.execute("UPDATE snapshot_users SET position = position + 10 WHERE snapshot_id = 3")
    with pytest.raises(StoreError, match="gaps in its user positions"):
        Store.open(tmp_path)
    with contextlib.closing(sqlite3.connect(path)) as db:
        assert db.execute("PRAGMA user_version").fetchone()[0] == 4
        assert db.execute("SELECT count(*) FROM snapshot_users").fetchone()[0] == 12
        tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert "user_versions" not in tables


def _scribble_over_index(path: Path) -> None:
    with contextlib.closing(sqlite3.connect(path, isolation_level=None)) as db:
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        (root,) = db.execute("SELECT rootpage FROM sqlite_master WHERE name = 'user_versions_by_email'").fetchone()
        page_size = db.execute("PRAGMA page_size").fetchone()[0]
    data = bytearray(path.read_bytes())
    data[(root - 1) * page_size : root * page_size] = os.urandom(page_size)
    path.write_bytes(bytes(data))


def test_an_open_checks_cheaply_and_fully_after_a_writer_died(tmp_path: Path) -> None:
    with Store.open(tmp_path) as store:
        _year(store)
    _scribble_over_index(tmp_path / DB_NAME)
    # The damage is in an index no open reads: the cheap check on open does not look there...
    Store.open(tmp_path).close()
    # ...but after a writer died mid-write (its marker is left, its process gone) the full one does.
    gone = subprocess.Popen(["true"])
    gone.wait()
    marker = tmp_path / "locks" / f"writing-{gone.pid}"
    marker.touch()
    with pytest.raises(StoreError, match="damaged"):
        Store.open(tmp_path)
    assert marker.exists(), "the marker stays until a full check passes"


def test_a_write_leaves_no_marker_and_a_sound_store_clears_a_dead_one(tmp_path: Path) -> None:
    with Store.open(tmp_path) as store:
        _year(store)
    assert not list((tmp_path / "locks").glob("writing-*"))
    gone = subprocess.Popen(["true"])
    gone.wait()
    marker = tmp_path / "locks" / f"writing-{gone.pid}"
    marker.touch()
    Store.open(tmp_path).close()
    assert not marker.exists()
