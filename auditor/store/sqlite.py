"""The SQLite file: creating it, checking it before use, the connection, transactions, errors.

Everything specific to SQLite beyond plain SQL lives here (PRAGMAs, WAL, ``BEGIN IMMEDIATE``,
the read-only preflight through an immutable URI, translating ``sqlite3`` errors) and in the
DDL of ``schema.py``; the row modules speak ordinary SQL with ``?`` parameters.
"""

from __future__ import annotations

import contextlib
import functools
import os
import secrets
import sqlite3
import stat
from collections.abc import Callable, Iterable, Iterator
from datetime import datetime
from pathlib import Path
from types import TracebackType
from typing import Any, Final, Self

from auditor.atomic import make_private_dirs
from auditor.errors import StoreBusyError, StoreError
from auditor.models import Snapshot
from auditor.store.checks import clear, crash_markers, header_problems, spot_problems, writing
from auditor.store.codec import _time
from auditor.store.records import RecordKeys
from auditor.store.schema import _MIGRATIONS, SCHEMA_VERSION

DB_NAME: Final = "auditor.db"
#: Seconds ``Store.open`` lets a connection wait for another process's write before StoreBusyError.
BUSY_TIMEOUT: Final = 5.0


class _Database:
    """An open SQLite connection with the store's transactions and error translation."""

    def __init__(self, connection: sqlite3.Connection, path: Path, *, clock: Callable[[], datetime]) -> None:
        self._db = connection
        self._clock = clock
        #: The database file.
        self.path = path
        # A stored snapshot never changes, so one Store loads each at most once: a report asks for
        # the snapshot, its predecessor and then every snapshot for the trend.
        self._loaded: dict[int, Snapshot] = {}
        self._users_checked: set[int] = set()
        self._keys: RecordKeys | None = None
        # Tags are checked once the store has been tagged (the records_tagged meta row).
        self._checking = False
        # A tagged store opened without the master key can be read, not changed: a record
        # written without its tag would read as tampered from then on.
        self._read_only = False

    def _prepare(self, *, busy_timeout_ms: int) -> None:
        db = self._db
        with self._guard("checking the database"):
            db.execute(f"PRAGMA busy_timeout = {busy_timeout_ms:d}")
            version = db.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:  # changed since the read-only check: still refuse
            raise _newer(self.path, version)
        with self._guard("preparing the database"):
            db.execute("PRAGMA foreign_keys = ON")
            mode = db.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            if str(mode).lower() != "wal":
                raise StoreError(f"The database {self.path} cannot use write-ahead logging ({mode}).")
            self._migrate()

    def _migrate(self) -> None:
        db = self._db
        if db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION:
            return
        with writing(self.path), self._transaction():
            # Re-read inside the write lock: another process may have migrated meanwhile.
            version = db.execute("PRAGMA user_version").fetchone()[0]
            _apply_migrations(db, version, clock=self._clock)

    def close(self) -> None:
        """Close the database; safe to call twice."""
        self._db.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Store({str(self.path)!r})"

    # -- plumbing -----------------------------------------------------------------------------

    @contextlib.contextmanager
    def _guard(self, doing: str) -> Iterator[None]:
        try:
            yield
        except sqlite3.Error as exc:
            raise _translate(exc, self.path, doing) from exc
        except OverflowError as exc:  # an integer beyond SQLite's 64 bits
            raise StoreError(
                f"A value too large for the database turned up while {doing}; nothing was stored.",
                hint="This points to unexpected data from CertCentral; run with -v and report it.",
            ) from exc

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[None]:
        # BEGIN IMMEDIATE takes the write lock up front, so a read-then-write (the chain head
        # check) cannot interleave with another process's.
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            if self._db.in_transaction:
                self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    @contextlib.contextmanager
    def _consistent(self) -> Iterator[None]:
        """Several reads that must see one state of the database (a WAL read transaction)."""
        if self._db.in_transaction:
            yield
            return
        self._db.execute("BEGIN")
        try:
            yield
        finally:
            if self._db.in_transaction:
                self._db.execute("COMMIT")

    @contextlib.contextmanager
    def _write(self, doing: str) -> Iterator[None]:
        if self._read_only:
            raise StoreError(
                f"The database {self.path} authenticates its records, and it was opened without the master key: "
                f"it can be read but not changed ({doing}).",
                hint="Open it with the master key (Store.open(..., master_key=...)); every auditor command does.",
            )
        with writing(self.path), self._guard(doing), self._transaction():
            yield

    def _query(self, sql: str, params: Iterable[object] = (), *, doing: str) -> list[Any]:
        with self._guard(doing):
            return self._db.execute(sql, tuple(params)).fetchall()


def _open_file(
    data_dir: Path, *, busy_timeout_ms: int, clock: Callable[[], datetime]
) -> tuple[sqlite3.Connection, Path]:
    """A read-write connection to ``<data_dir>/auditor.db``, checked first or created complete."""
    path = data_dir / DB_NAME
    try:
        make_private_dirs(data_dir)  # 0700 from the first command, parents included
    except OSError as exc:
        raise StoreError(
            f"The data directory {data_dir} cannot be used: {exc.strerror}.",
            hint="Check its permissions, or set AUDITOR_HOME to another directory.",
        ) from exc
    if not _preflight(path, busy_timeout_ms=busy_timeout_ms):
        _create_database(path, clock=clock)
    try:
        db = sqlite3.connect(path.as_uri() + "?mode=rw", uri=True, isolation_level=None)
    except sqlite3.Error as exc:
        raise _translate(exc, path, "opening the database") from exc
    return db, path


def _apply_migrations(db: sqlite3.Connection, version: int, *, clock: Callable[[], datetime]) -> None:
    """Run the migrations from ``version`` to SCHEMA_VERSION (inside the caller's transaction)."""
    for target in range(version + 1, SCHEMA_VERSION + 1):
        _run_steps(db, _MIGRATIONS[target - 1])
        db.execute(
            "INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)",
            (f"migrated_to_{target}", _time(clock())),
        )
    db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")


def _run_steps(db: sqlite3.Connection, steps: Iterable[str | Callable[[sqlite3.Connection], None]]) -> None:
    for step in steps:
        if isinstance(step, str):
            db.execute(step)
        else:
            step(db)


_Schema = frozenset[tuple[str, str, tuple[str, ...]]]


def _schema_of(db: sqlite3.Connection) -> _Schema:
    """Tables and indexes (with their columns) other than SQLite's own."""
    objects = db.execute(
        "SELECT type, name FROM sqlite_master WHERE type IN ('table', 'index', 'view', 'trigger')"
        " AND name NOT LIKE 'sqlite_%'"
    ).fetchall()
    found = set()
    for kind, name in objects:
        columns: tuple[str, ...] = ()
        if kind == "table":
            columns = tuple(row[1] for row in db.execute("SELECT * FROM pragma_table_info(?)", (name,)))
        found.add((str(kind), str(name), columns))
    return frozenset(found)


@functools.cache
def _expected_schema(version: int) -> _Schema:
    """The schema a store at ``version`` has: the migrations applied to an empty database."""
    with contextlib.closing(sqlite3.connect(":memory:", isolation_level=None)) as db:
        for statements in _MIGRATIONS[:version]:
            _run_steps(db, statements)
        return _schema_of(db)


def _newer(path: Path, version: int) -> StoreError:
    return StoreError(
        f"The database {path} was created by a newer version of certcentral-auditor "
        f"(schema {version}; this version understands up to {SCHEMA_VERSION}). "
        "Nothing was changed.",
        hint="Upgrade certcentral-auditor, or set AUDITOR_HOME to another directory.",
    )


def _preflight(path: Path, *, busy_timeout_ms: int) -> bool:
    """Check an existing database through a read-only connection; False when there is none.

    Everything that would make the store refuse the file is found here, before a read-write
    connection could change a byte of it (switch it to WAL, migrate it): a non-regular file, an
    empty one (0 bytes: damaged, not new), a damaged one, a newer schema, a foreign database.
    """
    try:
        info = path.stat()
    except FileNotFoundError:
        return False
    except OSError as exc:
        raise StoreError(f"The database {path} cannot be read: {exc.strerror}.") from exc
    if not stat.S_ISREG(info.st_mode):
        raise _corrupt(path, "it is not a regular file")
    if info.st_size == 0:
        raise _corrupt(path, "the file is empty (0 bytes), so whatever it held is gone")
    # With no -wal file, the whole database is in the main file: read it as immutable, which
    # takes no locks and creates no -shm or -wal file (a read-only connection to a WAL-mode
    # file would leave both behind). A bad verdict is looked at again before the file is called
    # damaged: through an ordinary read-only connection if a writer has started meanwhile
    # (its -wal file appeared), else as immutable once more.
    wal = Path(f"{path}-wal")
    immutable = not wal.exists()
    # A writer that died mid-write: this open makes the full check (checks.py), else the cheap one.
    crashed = crash_markers(path)
    full = bool(crashed)
    version, problems, schema = _inspect(path, immutable=immutable, busy_timeout_ms=busy_timeout_ms, full=full)
    if immutable and (problems != ["ok"] or schema != _expected_schema(min(max(version, 0), SCHEMA_VERSION))):
        again = not wal.exists()
        version, problems, schema = _inspect(path, immutable=again, busy_timeout_ms=busy_timeout_ms, full=full)
    if problems != ["ok"]:
        raise _corrupt(path, "; ".join(map(str, problems[:3])))
    clear(crashed)
    if version > SCHEMA_VERSION:
        raise _newer(path, version)
    if version < 0 or (schema != _expected_schema(version) and not (version == 0 and not schema)):
        tables = sorted(name for kind, name, _ in schema if kind == "table")
        raise _corrupt(
            path,
            f"it is not an auditor database: schema version {version} with tables "
            f"{', '.join(tables) if tables else '(none)'}",
        )
    return True


def _inspect(
    path: Path, *, immutable: bool, busy_timeout_ms: int, full: bool = True
) -> tuple[int, list[object], _Schema]:
    """``user_version``, the check (``quick_check`` if ``full``, else the cheap one) and the schema, read-only."""
    problems: list[object] = list(header_problems(path, whole=immutable))
    if problems:
        return 0, problems, frozenset()
    query = "?mode=ro&immutable=1" if immutable else "?mode=ro"
    try:
        db = sqlite3.connect(path.as_uri() + query, uri=True, isolation_level=None)
    except sqlite3.Error as exc:
        raise _translate(exc, path, "opening the database") from exc
    try:
        db.execute(f"PRAGMA busy_timeout = {busy_timeout_ms:d}")
        version = int(db.execute("PRAGMA user_version").fetchone()[0])
        quick = [row[0] for row in db.execute("PRAGMA quick_check")] if full else None
        problems = quick if quick is not None else (list(spot_problems(db)) or ["ok"])
        schema = _schema_of(db) if problems == ["ok"] else frozenset()
    except sqlite3.Error as exc:
        raise _translate(exc, path, "checking the database") from exc
    finally:
        db.close()
    return version, problems, schema


def integrity_problems(path: Path, *, busy_timeout_ms: int = 5000) -> list[str]:
    """The full ``PRAGMA integrity_check`` of the file (every page, every index), read-only; empty: sound."""
    problems = header_problems(path, whole=not Path(f"{path}-wal").exists())
    if problems:
        return problems
    try:
        with contextlib.closing(sqlite3.connect(path.as_uri() + "?mode=ro", uri=True, isolation_level=None)) as db:
            db.execute(f"PRAGMA busy_timeout = {busy_timeout_ms:d}")
            found = [str(row[0]) for row in db.execute("PRAGMA integrity_check")]
    except sqlite3.DatabaseError as exc:
        return [str(exc)]
    return [] if found == ["ok"] else found


def sealed_secrets_exist(data_dir: Path) -> bool:
    """Whether ``<data_dir>/auditor.db`` holds API or signing keys sealed under a master key.

    Read through a read-only connection after the same checks as :meth:`Store.open`, so a
    missing master key can be told apart from a first run without changing anything.
    """
    path = Path(data_dir) / DB_NAME
    if not _preflight(path, busy_timeout_ms=5000):
        return False
    try:
        with contextlib.closing(sqlite3.connect(path.as_uri() + "?mode=ro", uri=True, isolation_level=None)) as db:
            db.execute("PRAGMA busy_timeout = 5000")
            found = db.execute(
                "SELECT EXISTS (SELECT 1 FROM connections) OR EXISTS (SELECT 1 FROM signing_keys)"
            ).fetchone()[0]
    except sqlite3.OperationalError as exc:
        if "no such table" in str(exc):
            return False  # an empty database (schema 0)
        raise _translate(exc, path, "looking for sealed keys") from exc
    except sqlite3.Error as exc:
        raise _translate(exc, path, "looking for sealed keys") from exc
    return bool(found)


def _create_database(path: Path, *, clock: Callable[[], datetime]) -> None:
    """Build a new, complete database under a temporary name and link it into place.

    ``link`` fails when the name exists, so of two processes creating the store at once one
    wins and the other uses its file; a crash leaves only the hidden temporary file, never an
    empty ``auditor.db`` (which the next open would have to call damaged).
    """
    temp = path.with_name(f".{path.name}.{secrets.token_hex(8)}.tmp")
    try:
        # Created by us, so it is 0600 from the start; SQLite gives -wal and -shm the same mode.
        os.close(os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
        try:
            with contextlib.closing(sqlite3.connect(temp, isolation_level=None)) as db:
                db.execute("PRAGMA journal_mode = WAL")
                db.execute("BEGIN IMMEDIATE")
                _apply_migrations(db, 0, clock=clock)
                db.execute("COMMIT")
            with contextlib.suppress(FileExistsError):
                os.link(temp, path)
        finally:
            for leftover in (temp, Path(f"{temp}-wal"), Path(f"{temp}-shm")):
                with contextlib.suppress(OSError):
                    leftover.unlink()
    except sqlite3.Error as exc:
        raise _translate(exc, path, "creating the database") from exc
    except OSError as exc:
        raise StoreError(
            f"The database {path} cannot be created: {exc.strerror}.",
            hint="Check the permissions of the data directory, or set AUDITOR_HOME to another directory.",
        ) from exc


def _new_id(cursor: sqlite3.Cursor) -> int:
    if cursor.lastrowid is None:  # cannot happen after an INSERT; keeps the type honest
        raise StoreError("The database did not return the id of a new row.")
    return cursor.lastrowid


# -- errors -----------------------------------------------------------------------------------

_CORRUPT_MARKERS: Final = ("malformed", "not a database", "corrupt", "disk image", "file is encrypted")


def _corrupt(path: Path, detail: str) -> StoreError:
    return StoreError(
        f"The database {path} is damaged or is not an auditor database ({detail}). Nothing was changed.",
        hint=f"Restore {path} from a backup, or move it aside to start with an empty database "
        "(the stored connections and snapshots are then lost).",
    )


def _translate(exc: sqlite3.Error, path: Path, doing: str) -> StoreError:
    text = str(exc)
    lowered = text.lower()
    if "locked" in lowered or "busy" in lowered:
        return StoreBusyError(
            f"The database {path} is busy: another auditor process is writing to it ({doing}).",
            hint="Wait for the other process to finish, then try again.",
        )
    if isinstance(exc, sqlite3.DatabaseError) and any(marker in lowered for marker in _CORRUPT_MARKERS):
        return _corrupt(path, text)
    if "unable to open" in lowered or "readonly" in lowered or "read-only" in lowered:
        return StoreError(
            f"The database {path} cannot be opened for writing ({text}).",
            hint="Check the permissions of the file and its directory.",
        )
    return StoreError(
        f"The database {path} failed while {doing}: {text}.",
        hint="Run with -v for details; if it persists, restore the database from a backup.",
    )
