"""Pacing: retries with back-off (``Retry-After`` honoured) and the client-side rate limiter.

Both take the clock and the sleep from the caller, so a test injects a fake pair and nothing waits
in real time. This replaces stamina, which the client used only to count attempts: its waits are
always slept with ``time.sleep`` (no injectable sleep on the sync path), and here every wait must be
checked against the pull's deadline and its 429 budget before it is taken. The limiter keeps
pyrate-limiter's sliding-window bucket and stamps each request with the injected monotonic clock
(the bucket's ``now()``, pyrate-limiter 4's documented seam); the blocking wait is ours, because
``Limiter.try_acquire(blocking=True)`` sleeps with ``time.sleep``.

Not shared with the sandbox: the sandbox is the server the client's pacing is tested against, so
it keeps its own window count (``auditor/sandbox/server.py``); one algorithm on both sides could
not catch a bug in it.
"""

from __future__ import annotations

import email.utils
import math
import random
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import TypeVar

from pyrate_limiter import InMemoryBucket, Rate, RateItem

from auditor.client.window import FLUSH_EVERY, SharedWindow
from auditor.errors import ConfigurationError

__all__ = [
    "DEFAULT_RATE_LIMITS",
    "RATE_LIMIT_INITIAL_WAIT",
    "RATE_LIMIT_MARGIN",
    "RETRY_AFTER_CAP",
    "Backoff",
    "RateLimiter",
    "RetriesExhausted",
    "Retryable",
    "parse_retry_after",
    "retry",
]

# Rolling windows of 100 requests / 5 s and 1000 / 3 min per key (§5.3); the older page says
# 1000 / 5 min, so we pace for the stricter one.
# https://dev.digicert.com/en/certcentral-apis/services-api/rate-limits.html
DEFAULT_RATE_LIMITS: tuple[tuple[int, float], ...] = ((100, 5.0), (1000, 180.0))

#: Added to every rate-limit window (at most this many seconds, at most 20% of the window): the
#: server times a request when it arrives, we when we send it, so pacing at exactly the
#: documented limit still met 429s against the sandbox once latency jittered.
RATE_LIMIT_MARGIN = 1.0
#: A 429 without Retry-After: start backing off at the short rate-limit window (§5.3).
RATE_LIMIT_INITIAL_WAIT = 5.0
#: Never sleep longer than this on one Retry-After, whatever the server says.
RETRY_AFTER_CAP = 600.0

_T = TypeVar("_T")


class Retryable(Exception):
    """A failed attempt worth repeating; carries what to tell the user."""

    def __init__(
        self,
        reason: str,
        *,
        status: int | None = None,
        retry_after: float | None = None,
        rate_limited: bool = False,
    ) -> None:
        super().__init__(reason)
        self.reason = reason
        self.status = status
        self.retry_after = retry_after
        self.rate_limited = rate_limited


class RetriesExhausted(Exception):
    """Every attempt failed with a :class:`Retryable`; ``last`` is the final one."""

    def __init__(self, last: Retryable, attempts: int) -> None:
        super().__init__(last.reason)
        self.last = last
        self.attempts = attempts


def parse_retry_after(value: str | None, now: datetime) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or HTTP-date), else None.

    CertCentral is not documented to send it (§5.3), but honour it if it ever does.
    https://dev.digicert.com/en/certcentral-apis/services-api/rate-limits.html
    """
    if value is None or not value.strip():
        return None
    text = value.strip()
    try:
        seconds = float(text)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(text)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:
            return None
        seconds = (when - now).total_seconds()
    if math.isnan(seconds) or math.isinf(seconds):
        return None
    return min(max(seconds, 0.0), RETRY_AFTER_CAP)


@dataclass(frozen=True, slots=True)
class Backoff:
    """How long to wait after a failed attempt: Retry-After when given, else exponential with jitter."""

    initial: float
    maximum: float

    def wait(self, exc: Retryable, attempt: int) -> float:
        """Seconds before the next attempt after attempt number ``attempt`` (1-based) failed."""
        if exc.retry_after is not None:
            return exc.retry_after
        # No Retry-After (CertCentral is not known to send one, §5.3): for 429 start at the
        # 5 s short window; otherwise at the initial wait. Exponential, capped, with jitter.
        initial = max(self.initial, RATE_LIMIT_INITIAL_WAIT) if exc.rate_limited else self.initial
        base = min(self.maximum, initial * 2 ** (attempt - 1))
        jitter: float = random.uniform(0, base / 4)  # noqa: S311 - spreading retries, not cryptography
        return float(min(self.maximum, base + jitter))


def retry(
    call: Callable[[], _T],
    *,
    attempts: int,
    plan: Callable[[Retryable, int], float],
    sleep: Callable[[float], None],
) -> _T:
    """Run ``call`` up to ``attempts`` times while it raises :class:`Retryable`.

    ``plan(exc, attempt)`` returns the wait before the next attempt; it may raise instead to stop
    early (a wait past a deadline). Any other exception passes through at once. After the last
    attempt, :class:`RetriesExhausted` carries the final failure.
    """
    attempt = 1
    while True:
        try:
            return call()
        except Retryable as exc:
            if attempt >= attempts:
                raise RetriesExhausted(exc, attempt) from exc
            sleep(plan(exc, attempt))
        attempt += 1


class _ClockedBucket(InMemoryBucket):
    """pyrate-limiter's in-memory sliding-window log, timed by an injected clock (milliseconds)."""

    def __init__(self, rates: list[Rate], now_ms: Callable[[], int]) -> None:
        super().__init__(rates)
        self._now_ms = now_ms

    def now(self) -> int:
        return self._now_ms()


class RateLimiter:
    """Blocks until a request fits every rolling window; shared by all threads of one client.

    ``windows`` are (requests, seconds). With ``margin`` each window is padded a little
    (:data:`RATE_LIMIT_MARGIN`). ``monotonic`` and ``sleep`` must agree: after ``sleep(s)`` the
    clock reads at least ``s`` later (true of ``time.monotonic``/``time.sleep`` and of a fake pair).

    With ``history`` the window outlives the process: the limiter starts from the requests that
    file recorded (other processes of the connection) and records its own there on :meth:`flush`.
    """

    def __init__(
        self,
        windows: Iterable[tuple[int, float]],
        *,
        monotonic: Callable[[], float],
        sleep: Callable[[float], None],
        margin: bool = True,
        buffer: float = 0.05,
        history: Callable[..., SharedWindow] | None = None,
    ) -> None:
        rates: list[Rate] = []
        for count, seconds in windows:
            if not isinstance(count, int) or isinstance(count, bool) or count < 1 or not seconds > 0:
                raise ConfigurationError(
                    f"Invalid rate limit ({count!r} requests per {seconds!r} s): "
                    "use a positive whole number of requests per a positive number of seconds."
                )
            padded = seconds + min(RATE_LIMIT_MARGIN, 0.2 * seconds) if margin else seconds
            rates.append(Rate(int(count), max(1, round(padded * 1000))))
        try:
            self._bucket = _ClockedBucket(rates, lambda: math.floor(monotonic() * 1000))
        except ValueError as exc:
            raise ConfigurationError(
                f"Invalid rate limits {[str(rate) for rate in rates]}: list them from the shortest "
                "window to the longest, each allowing more requests but no higher a rate.",
            ) from exc
        self._sleep = sleep
        self._buffer = buffer
        self._lock = threading.Lock()
        #: Wall times (s) of the requests admitted here and not yet saved to the history.
        self._sent: list[float] = []
        horizon = max(rate.interval for rate in rates) / 1000
        self._history = history(horizon=horizon) if history is not None else None
        self._to_wall = 0.0
        if self._history is not None:
            # The file's wall times, moved onto the injected monotonic clock once: the bucket's
            # items stay sorted by time, as pyrate-limiter's InMemoryBucket keeps them.
            self._to_wall = self._history.wall() - monotonic()
            self._bucket.items = [
                RateItem("certcentral", math.floor((stamp - self._to_wall) * 1000)) for stamp in self._history.load()
            ]

    def acquire(self) -> None:
        """Return once one more request fits; sleep (injected) until it does."""
        while True:
            with self._lock:
                item = RateItem("certcentral", self._bucket.now())
                if self._bucket.put(item):
                    if self._history is not None:
                        self._sent.append(item.timestamp / 1000 + self._to_wall)
                        if len(self._sent) >= FLUSH_EVERY:
                            self._flush_locked()
                    return
                wait_ms = self._bucket.waiting(item)
            if not isinstance(wait_ms, int) or wait_ms < 0:  # only a weight above a limit; ours is 1
                raise RuntimeError("the client-side rate limiter refused a request it can never admit")
            self._sleep(wait_ms / 1000 + self._buffer)

    def flush(self) -> None:
        """Record the requests admitted so far in the shared history (no-op without one)."""
        with self._lock:
            self._flush_locked()

    def _flush_locked(self) -> None:
        if self._history is not None and self._sent:
            sent, self._sent = self._sent, []
            self._history.save(sent)
