"""The rate window one connection's processes share: when its recent requests were sent.

CertCentral counts requests per key in rolling windows (100 per 5 s, 1000 per 3 min, §5.3) and
blocks a key that exceeds them. A limiter that forgets its requests when the process ends lets
``auditor pull`` followed at once by ``auditor run`` send a second burst into the first one's
window: a 429 (the key blocked) and a 5 s back-off. So the limiter starts from the times this
file holds and adds its own when the client closes (and every :data:`FLUSH_EVERY` requests).

The file holds wall-clock times in milliseconds and nothing else, never the key; its name is the
connection's. Writes merge with what is there under a file lock and replace the file atomically,
so processes that run at the same time never lose each other's times (each paces against the
times it read when it started). Reading or writing it is best effort: a pull never fails because
of it; the server's 429 and the back-off remain the safety net.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable
from pathlib import Path

import filelock

from auditor.atomic import make_private_dirs, write_bytes_atomic

__all__ = ["FLUSH_EVERY", "FORMAT", "SharedWindow"]

FORMAT = "certcentral-auditor-rate-window/1"
#: A long pull (``--details`` paces 5 requests per second) saves its times this often as well.
FLUSH_EVERY = 100
#: Wait at most this long for another process's write; then skip this write.
_LOCK_TIMEOUT = 5.0
#: Times this far in the future (the wall clock was set back) are dropped.
_SKEW = 1.0


class SharedWindow:
    """Recent request times of one connection, in a file shared by its processes.

    ``horizon`` is the longest window in seconds: older times are dropped. ``wall`` is the
    system's wall clock (``time.time``): the one time base processes share (monotonic clocks
    have no common origin on every platform).
    """

    def __init__(self, path: Path, *, horizon: float, wall: Callable[[], float] = time.time) -> None:
        self.path = path
        self._horizon = horizon
        self._wall = wall

    def wall(self) -> float:
        return self._wall()

    def load(self) -> list[float]:
        """Wall times (seconds) of the requests within the horizon, oldest first; [] when none or unreadable."""
        return sorted(stamp / 1000 for stamp in self._read(self._wall()))

    def save(self, stamps: Iterable[float]) -> None:
        """Merge ``stamps`` (wall seconds) into the file, dropping times past the horizon."""
        own = {round(stamp * 1000) for stamp in stamps}
        try:
            make_private_dirs(self.path.parent)
            with filelock.FileLock(self.path.with_name(self.path.name + ".lock"), timeout=_LOCK_TIMEOUT, mode=0o600):
                now = self._wall()
                merged = sorted(self._read(now) | {ms for ms in own if self._recent(ms, now)})
                body = json.dumps({"format": FORMAT, "sent_ms": merged}, separators=(",", ":"))
                write_bytes_atomic(self.path, body.encode("ascii"), mode=0o600)
        except (OSError, filelock.Timeout):
            return  # best effort: the next pull paces from what it can read

    def _recent(self, ms: int, now: float) -> bool:
        return (now - self._horizon) * 1000 < ms <= (now + _SKEW) * 1000

    def _read(self, now: float) -> set[int]:
        try:
            data = json.loads(self.path.read_bytes())
        except (OSError, ValueError):
            return set()
        stamps = data.get("sent_ms") if isinstance(data, dict) and data.get("format") == FORMAT else None
        if not isinstance(stamps, list):
            return set()
        return {ms for ms in stamps if type(ms) is int and self._recent(ms, now)}
