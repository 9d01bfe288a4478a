"""One GET as the client sends it: paced, retried, bounded by the pull's deadline, failures translated.

The pieces are elsewhere (:mod:`~auditor.client.transport` reads an answer, :mod:`~auditor.client.pacing`
waits, :mod:`~auditor.client.errors` words the failure); this module puts them in order for every
request a pull or a connection test makes, and keeps each answer as a raw page.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable
from datetime import datetime

import httpx

from auditor.client.errors import (
    describe_transport_error,
    error_for,
    give_up,
    parse_errors,
    past_deadline,
    rate_limit_budget_spent,
)
from auditor.client.pacing import Backoff, RateLimiter, RetriesExhausted, Retryable, parse_retry_after, retry
from auditor.client.results import PullObserver, Run
from auditor.client.transport import Wire
from auditor.errors import ApiConnectionError, ApiError
from auditor.models import RawPage

#: Retries are logged here at INFO (``auditor -v`` shows them); the user sees them through
#: PullObserver.on_retry and the pull summary.
logger = logging.getLogger("auditor.client")

REDACTED = "<redacted>"


class Session:
    """Sends GETs for one client: limiter, retries with back-off, deadlines, the raw page kept."""

    def __init__(
        self,
        wire: Wire,
        key: str,
        *,
        base_url: str,
        limiter: RateLimiter | None,
        backoff: Backoff,
        attempts: int,
        sleep: Callable[[float], None],
        clock: Callable[[], datetime],
        monotonic: Callable[[], float],
        deadline: float,
        max_rate_limit_wait: float,
    ) -> None:
        self.wire = wire
        self._key = key
        self.base_url = base_url
        self._limiter = limiter
        self._backoff = backoff
        self._attempts = attempts
        self._sleep = sleep
        self._clock = clock
        self._monotonic = monotonic
        self._deadline = deadline
        self._max_rate_limit_wait = max_rate_limit_wait

    def new_run(self, observer: PullObserver | None = None) -> Run:
        """The state of one operation, its deadline starting now."""
        return Run(observer, deadline_at=self._monotonic() + self._deadline)

    def raw(self, endpoint: str, response: httpx.Response) -> RawPage:
        """The answer as evidence: exact bytes, their SHA-256, when it arrived."""
        body = response.content
        return RawPage(
            endpoint=endpoint,
            status=response.status_code,
            body=body,
            sha256=hashlib.sha256(body).hexdigest(),
            received_at=self._clock(),
        )

    def get(self, run: Run, endpoint: str, *, tolerate: frozenset[int] = frozenset()) -> httpx.Response:
        """GET ``endpoint`` with pacing and retries; returns a 2xx response (or one in ``tolerate``).

        The wait before each retry comes from :class:`~auditor.client.pacing.Backoff` (Retry-After,
        or exponential with jitter) and is slept with the injected ``sleep``, so tests never sleep
        and can see every wait. A wait that would end past the pull's deadline, or push the pull's
        total 429 back-off past ``max_rate_limit_wait``, is not taken: the pull fails at once instead.
        """

        def plan(exc: Retryable, attempt: int) -> float:
            wait = self._backoff.wait(exc, attempt)
            if self._monotonic() + wait > run.deadline_at:
                raise past_deadline(
                    endpoint, f"the next retry ({exc.reason}) would start after it", deadline=self._deadline
                ) from None
            if exc.rate_limited and not run.add_rate_limit_wait(wait, self._max_rate_limit_wait):
                raise rate_limit_budget_spent(
                    endpoint, waited=run.rate_limit_wait, cap=self._max_rate_limit_wait
                ) from None
            logger.info("GET %s failed (%s); retrying in %.1f s", endpoint, exc.reason, wait)
            run.retry(endpoint, exc.reason, wait)
            return wait

        try:
            return retry(
                lambda: self._attempt(run, endpoint, tolerate=tolerate),
                attempts=self._attempts,
                plan=plan,
                sleep=self._sleep,
            )
        except RetriesExhausted as gave_up:
            last = gave_up.last
            raise give_up(endpoint, last, gave_up.attempts, base_url=self.base_url) from self.safe_cause(last.__cause__)

    def _attempt(self, run: Run, endpoint: str, *, tolerate: frozenset[int]) -> httpx.Response:
        if self._limiter is not None:
            self._limiter.acquire()
        if self._monotonic() >= run.deadline_at:
            raise past_deadline(endpoint, "before it was sent", deadline=self._deadline)
        run.count_request()
        try:
            response = self.wire.send(endpoint, run_deadline_at=run.deadline_at)
        except (httpx.TimeoutException, httpx.NetworkError, httpx.RemoteProtocolError, httpx.ProxyError) as exc:
            if isinstance(exc, httpx.TimeoutException) and self._monotonic() >= run.deadline_at:
                raise past_deadline(endpoint, "while the answer was still arriving", deadline=self._deadline) from None
            raise Retryable(self.redact(describe_transport_error(exc))) from exc
        except httpx.RequestError as exc:
            raise ApiConnectionError(
                self.redact(f"Could not send GET {endpoint} to CertCentral: {describe_transport_error(exc)}."),
                hint=f"Check the base URL ({self.base_url}), proxy settings and network.",
            ) from self.safe_cause(exc)
        status = response.status_code
        if status == 429 or status >= 500:
            # 429 request_limit_exceeded and 5xx/maintenance are transient (§5.2, §5.3):
            # https://dev.digicert.com/errors/ ; the 503 maintenance notice:
            # https://docs.digicert.com/change-log/?tag=simple%20certificate%20enrollment%20profile.
            codes = parse_errors(response.content)
            code = f" {codes[0][0]}" if codes and codes[0][0] else ""
            reason = "rate limited" if status == 429 else "server error"
            raise Retryable(
                self.redact(f"HTTP {status}{code} ({reason})"),
                status=status,
                retry_after=parse_retry_after(response.headers.get("retry-after"), self._clock()),
                rate_limited=status == 429,
            )
        if 200 <= status < 300 or status in tolerate:
            return response
        raise self.error_for(endpoint, response)

    def error_for(self, endpoint: str, response: httpx.Response) -> ApiError:
        """The typed error for a non-retryable answer, with the key redacted."""
        return error_for(endpoint, response, base_url=self.base_url, redact=self.redact)

    def safe_cause(self, exc: BaseException | None) -> BaseException | None:
        """``exc`` to chain from, unless its text would show the key (httpx never puts headers
        in messages, but a proxy's error text might echo them)."""
        if exc is None or self._key in f"{exc!s}{exc!r}":
            return None
        return exc

    def redact(self, text: str) -> str:
        return text.replace(self._key, REDACTED) if self._key in text else text
