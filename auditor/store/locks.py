"""The pull and export locks: OS-level file locks per connection, released when the holder exits.

SQLite's own locking covers single transactions, while a pull holds its lock for minutes; the
export lock likewise serialises exports of one connection.
"""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import filelock

from auditor.atomic import make_private_dirs
from auditor.errors import StoreBusyError, StoreError
from auditor.store.records import _CONNECTION_NAME

#: How long a second pull of one connection waits for the first before StoreBusyError (seconds).
#: Callers (and tests, which pass a fraction of a second) give their own with ``timeout=``.
PULL_LOCK_TIMEOUT: Final = 5.0
#: How long an export waits for another export of the same connection (seconds).
EXPORT_LOCK_TIMEOUT: Final = 120.0


@dataclass(frozen=True)
class LockTimeouts:
    """How long a pull and an export wait for a held lock before StoreBusyError (seconds).

    A :class:`~auditor.pipeline.Workspace` carries one and the use cases pass it to the locks;
    in-process tests give a workspace a fraction of a second instead of the production waits.
    """

    pull: float = PULL_LOCK_TIMEOUT
    export: float = EXPORT_LOCK_TIMEOUT


def _lock_stem(connection: str) -> str:
    if _CONNECTION_NAME.fullmatch(connection):
        return connection
    return "conn-" + hashlib.sha256(connection.encode("utf-8", "surrogatepass")).hexdigest()[:16]


@contextlib.contextmanager
def _file_lock(data_dir: Path, name: str, *, timeout: float, busy: Callable[[Path], StoreBusyError]) -> Iterator[None]:
    locks = Path(data_dir) / "locks"
    path = locks / name
    try:
        make_private_dirs(locks)  # may be the first directory created (pull before connect)
    except OSError as exc:
        raise StoreError(f"The lock directory {locks} cannot be created: {exc.strerror}.") from exc
    lock = filelock.FileLock(path, timeout=timeout, mode=0o600)
    try:
        lock.acquire()
    except filelock.Timeout as exc:
        raise busy(path) from exc
    except OSError as exc:
        raise StoreError(f"The lock file {path} cannot be used: {exc.strerror}.") from exc
    try:
        yield
    finally:
        lock.release()


def pull_lock(
    data_dir: Path, connection: str, *, timeout: float = PULL_LOCK_TIMEOUT
) -> contextlib.AbstractContextManager[None]:
    """Hold ``<data_dir>/locks/<connection>.lock`` for the duration of a pull.

    The OS releases the lock when the holder exits, even after a crash, so a leftover lock
    file never blocks anyone; it need not (and should not) be deleted by hand.
    """

    def busy(path: Path) -> StoreBusyError:
        return StoreBusyError(
            f"Another `auditor pull` for connection {connection!r} is running (lock file {path}).",
            hint="Wait for it to finish, then run this again. The lock is released when that "
            "process exits, even if it crashes; there is no need to delete the file.",
        )

    return _file_lock(data_dir, f"{_lock_stem(connection)}.lock", timeout=timeout, busy=busy)


def export_lock(
    data_dir: Path, connection: str, *, timeout: float = EXPORT_LOCK_TIMEOUT
) -> contextlib.AbstractContextManager[None]:
    """Hold ``<data_dir>/locks/export+<connection>.lock`` while an export reads and advances the chain.

    Exports of one connection then follow each other: the second starts from the head the first
    recorded instead of racing it. ('+' cannot occur in a connection name, so this never
    collides with a pull lock.)
    """

    def busy(path: Path) -> StoreBusyError:
        return StoreBusyError(
            f"Another `auditor export` for connection {connection!r} has been running for over "
            f"{timeout:.0f} s (lock file {path}).",
            hint="Wait for it to finish, then run the export again.",
        )

    return _file_lock(data_dir, f"export+{_lock_stem(connection)}.lock", timeout=timeout, busy=busy)
