"""The cheap check every open makes, and the write markers that call for the full one after a crash.

A full ``PRAGMA quick_check`` reads every page (0.45 s at 59 MB, growing with the history), so an
ordinary open checks only what is cheap and catches the usual damage: the file header (magic,
page size, a size that matches the header's page count: truncation), the schema, and one
descent from each table's root to its first and last rows (scribbled b-tree pages). The full
check runs on ``auditor doctor`` and on the first open after a writer died mid-write: each
write transaction leaves ``locks/writing-<pid>`` while it runs, and a marker whose process is
gone means a crash.

SQLite-specific throughout (the file format, ``rowid``); another backend has its own checks.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Final

_MAGIC: Final = b"SQLite format 3\x00"
_MARKER_PREFIX: Final = "writing-"


def header_problems(path: Path, *, whole: bool) -> list[str]:
    """What is wrong with the file's 100-byte header and size (empty: nothing).

    ``whole``: no write-ahead log holds pages the main file lacks, so its size must match its header.
    """
    try:
        with path.open("rb") as handle:
            header = handle.read(100)
        size = path.stat().st_size
    except OSError as exc:
        return [f"the file cannot be read ({exc.strerror})"]
    if len(header) < 100 or header[:16] != _MAGIC:
        return ["the file does not start with an SQLite header"]
    page_size = int.from_bytes(header[16:18], "big")
    page_size = 65536 if page_size == 1 else page_size
    if page_size < 512 or page_size & (page_size - 1):
        return [f"the header gives an impossible page size ({page_size})"]
    if size % page_size:
        return [f"the file size ({size} bytes) is not a whole number of {page_size}-byte pages"]
    pages = int.from_bytes(header[28:32], "big")
    # The page count is valid when its "version valid for" matches the change counter (SQLite >= 3.7.0).
    if whole and header[92:96] == header[24:28] and pages and pages * page_size != size:
        return [f"the file holds {size // page_size} pages where its header records {pages}: it was truncated"]
    return []


def spot_problems(db: sqlite3.Connection) -> list[str]:
    """One descent to the first and last row of every table (a damaged root or edge page fails)."""
    problems = []
    tables = db.execute(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name"
    ).fetchall()
    for (name,) in tables:
        quoted = '"' + str(name).replace('"', '""') + '"'
        try:
            db.execute(f"SELECT min(rowid), max(rowid) FROM {quoted}").fetchone()  # noqa: S608 - a schema name
        except sqlite3.DatabaseError as exc:
            problems.append(f"table {name}: {exc}")
    return problems


def _markers(path: Path) -> list[Path]:
    locks = path.parent / "locks"
    try:
        return [p for p in locks.iterdir() if p.name.startswith(_MARKER_PREFIX)]
    except OSError:
        return []


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError, ValueError):
        return True
    return True


def crash_markers(path: Path) -> list[Path]:
    """The write markers left by processes that died mid-write (their pid is gone)."""
    dead = []
    for marker in _markers(path):
        try:
            pid = int(marker.name[len(_MARKER_PREFIX) :])
        except ValueError:
            dead.append(marker)
            continue
        if pid != os.getpid() and not _alive(pid):
            dead.append(marker)
    return dead


def clear(markers: list[Path]) -> None:
    """Remove markers once the full check has passed."""
    for marker in markers:
        with contextlib.suppress(OSError):
            marker.unlink()


@contextlib.contextmanager
def writing(path: Path) -> Iterator[None]:
    """Leave ``locks/writing-<pid>`` while a write transaction runs (best effort: no directory, no marker)."""
    marker = path.parent / "locks" / f"{_MARKER_PREFIX}{os.getpid()}"
    made = False
    try:
        marker.parent.mkdir(mode=0o700, exist_ok=True)
        marker.touch(mode=0o600, exist_ok=True)
        made = True
    except OSError:
        pass
    try:
        yield
    finally:
        if made:
            with contextlib.suppress(OSError):
                marker.unlink()
