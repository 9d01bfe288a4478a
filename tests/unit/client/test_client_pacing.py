"""Pacing (auditor/client/pacing.py): retries and the rate limiter on an injected clock and sleep.

Nothing here waits in real time: the fake sleep moves the fake clock.
"""

from __future__ import annotations

import pytest

from auditor.client.pacing import RateLimiter, RetriesExhausted, Retryable, retry
from auditor.errors import ConfigurationError


class FakeTime:
    def __init__(self) -> None:
        self.now = 100.0
        self.sleeps: list[float] = []

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def test_the_limiter_keeps_every_window_on_the_injected_clock() -> None:
    time = FakeTime()
    limiter = RateLimiter(((3, 1.0), (5, 10.0)), monotonic=time.monotonic, sleep=time.sleep, margin=False)
    sent: list[float] = []
    for _ in range(11):
        limiter.acquire()
        sent.append(time.now)
    for index, at in enumerate(sent):
        assert sum(1 for other in sent[: index + 1] if at - other < 1.0) <= 3
        assert sum(1 for other in sent[: index + 1] if at - other < 10.0) <= 5
    # The sixth request waits for the 10 s window to roll past the first: fake seconds, not real ones.
    assert sent[5] - sent[0] >= 10.0 and time.sleeps


def test_the_limiter_pads_each_window_by_the_margin() -> None:
    time = FakeTime()
    limiter = RateLimiter(((1, 5.0),), monotonic=time.monotonic, sleep=time.sleep)
    limiter.acquire()
    limiter.acquire()
    assert time.now - 100.0 >= 6.0  # 5 s plus the 1 s margin


def test_invalid_windows_are_a_configuration_error() -> None:
    time = FakeTime()
    with pytest.raises(ConfigurationError):
        RateLimiter(((0, 1.0),), monotonic=time.monotonic, sleep=time.sleep)
    with pytest.raises(ConfigurationError):
        RateLimiter(((10, 1.0), (5, 60.0)), monotonic=time.monotonic, sleep=time.sleep)


def test_retry_sleeps_the_planned_waits_and_reports_the_last_failure() -> None:
    time = FakeTime()
    calls: list[int] = []

    def failing() -> str:
        calls.append(1)
        raise Retryable(f"HTTP 503 (try {len(calls)})", status=503)

    with pytest.raises(RetriesExhausted) as info:
        retry(failing, attempts=3, plan=lambda _exc, attempt: attempt * 10.0, sleep=time.sleep)
    assert len(calls) == 3 and time.sleeps == [10.0, 20.0]
    assert info.value.attempts == 3 and info.value.last.reason == "HTTP 503 (try 3)"


def test_retry_stops_when_the_plan_refuses_and_lets_other_errors_through() -> None:
    time = FakeTime()

    def refuse(_exc: Retryable, _attempt: int) -> float:
        raise TimeoutError("past the deadline")

    with pytest.raises(TimeoutError):
        retry(lambda: (_ for _ in ()).throw(Retryable("slow")), attempts=5, plan=refuse, sleep=time.sleep)
    with pytest.raises(KeyError):
        retry(lambda: {}["x"], attempts=5, plan=lambda _e, _a: 1.0, sleep=time.sleep)
    assert time.sleeps == []
