"""Issue 22 (#2, #4, #7, #9) at the client: bounded pulls, the key never kept, unread is not none.

Same style as test_client.py: httpx.MockTransport, an injected clock, sleep and monotonic clock,
so nothing here sleeps or waits for real.
"""

from __future__ import annotations

import base64
import json
import ssl
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpcore
import httpx
import pytest
from test_client import (
    KEY,
    MISSING_PERMISSION,
    RATE_LIMITED,
    FakeCertCentral,
    Sleeps,
    client_for,
    html,
    make_user,
)

from auditor.client import KEY_ECHOED_MESSAGE, ReadOnlyTransport, WriteAttemptError
from auditor.client.transport import DeadlineStream, tls_context
from auditor.errors import (
    ApiBadResponseError,
    ApiConnectionError,
    ApiUnavailableError,
    ExitCode,
    PermissionDeniedError,
)
from auditor.sandbox.server import gzip_bomb


class Monotonic:
    """A monotonic clock that moves only when told to (or when the client sleeps)."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class AdvancingSleeps(Sleeps):
    def __init__(self, clock: Monotonic) -> None:
        super().__init__()
        self.clock = clock

    def __call__(self, seconds: float) -> None:
        super().__call__(seconds)
        self.clock.now += seconds


class Drip(httpx.SyncByteStream):
    """A body arriving one byte per (fake) second."""

    def __init__(self, body: bytes, clock: Monotonic) -> None:
        self.body = body
        self.clock = clock
        self.sent = 0

    def __iter__(self) -> Iterator[bytes]:
        for byte in self.body:
            self.clock.now += 1.0
            self.sent += 1
            yield bytes([byte])


def streamed(status: int, body: bytes | Iterator[bytes], **headers: str) -> httpx.Response:
    """A response whose body is read by the client, not already read by httpx."""
    chunks = [body] if isinstance(body, bytes) else body
    return httpx.Response(status, headers=headers, stream=httpx.ByteStream(b"".join(chunks)))


def texts_of(exc: BaseException) -> str:
    seen: list[str] = []
    current: BaseException | None = exc
    while current is not None:
        seen.append(f"{current!s} {current!r} {getattr(current, 'hint', '')}")
        current = current.__cause__ or current.__context__
    return " ".join(seen)


# --- #4 the key is never kept ------------------------------------------------------------------


def _echo_forms() -> dict[str, bytes]:
    raw = KEY.encode()
    forms = {
        "raw": raw,
        "url-encoded": quote(f"{KEY}/+", safe="").encode(),
        "hex-lower": raw.hex().encode(),
        "hex-upper": raw.hex().upper().encode(),
    }
    for shift in range(3):
        prefix = b"X-Dc-Devkey: "[: 3 + shift]
        forms[f"base64-shift{shift}"] = base64.b64encode(prefix + raw + b"\r\n")
        forms[f"base64url-shift{shift}"] = base64.urlsafe_b64encode(prefix + raw)
    return forms


@pytest.mark.parametrize("form", sorted(_echo_forms()))
@pytest.mark.parametrize("where", ["body", "header", "error-page"])
def test_an_echoed_key_in_any_form_fails_the_pull(form: str, where: str) -> None:
    echoed = _echo_forms()[form]
    fake = FakeCertCentral([make_user(1)])
    if where == "body":
        page = json.dumps({"users": [make_user(1)], "page": {"total": 1, "limit": 500, "offset": 0}}).encode()
        fake.script("/user", streamed(200, page[:-1] + b', "debug": "' + echoed + b'"}'))
    elif where == "header":
        body = json.dumps({"users": [make_user(1)], "page": {"total": 1}}).encode()
        fake.script("/user", streamed(200, body, **{"x-debug-request": echoed.decode()}))
    else:
        fake.script("/user/api-only", streamed(404, b"<html><pre>" + echoed + b"</pre></html>"))
    with client_for(fake) as client, pytest.raises(ApiBadResponseError) as info:
        client.pull_users()
    assert KEY_ECHOED_MESSAGE in info.value.message
    assert info.value.exit_code == ExitCode.CERTCENTRAL_UNAVAILABLE
    assert KEY not in texts_of(info.value)


def test_an_answer_without_the_key_is_not_mistaken_for_an_echo() -> None:
    fake = FakeCertCentral([make_user(1, first_name=KEY[:-1], last_name=KEY[1:].lower())])
    with client_for(fake) as client:
        result = client.pull_users()
    assert [user.id for user in result.users] == [1]


# --- #7 bounded pulls --------------------------------------------------------------------------


def test_a_dripping_body_ends_at_the_pull_deadline() -> None:
    clock = Monotonic()
    drips: list[Drip] = []

    def slow(request: httpx.Request) -> httpx.Response:
        drips.append(Drip(json.dumps(make_user(1)).encode(), clock))
        return httpx.Response(200, stream=drips[-1])

    fake = FakeCertCentral([make_user(1)])
    fake.script("/user/me", slow)
    with (
        client_for(fake, monotonic=clock, sleep=AdvancingSleeps(clock), deadline=20, max_concurrency=1) as client,
        pytest.raises(ApiUnavailableError) as info,
    ):
        client.get_me()
    assert "reached its deadline of 20 s during GET /user/me" in info.value.message
    assert "--deadline" in info.value.hint
    assert drips[0].sent <= 21  # stopped at the deadline, not at the end of the body


def test_a_slow_answer_is_retried_after_the_response_deadline() -> None:
    clock = Monotonic()
    fake = FakeCertCentral()
    fake.script("/user/me", lambda request: httpx.Response(200, stream=Drip(json.dumps(make_user(1)).encode(), clock)))
    sleeps = AdvancingSleeps(clock)
    with client_for(fake, monotonic=clock, sleep=sleeps, response_deadline=10, deadline=600) as client:
        me = client.get_me()
    assert me.id == 1  # the second attempt got the normal, fast answer
    assert fake.endpoints.count("/user/me") == 2


def test_a_back_off_past_the_deadline_is_not_slept() -> None:
    clock = Monotonic()
    fake = FakeCertCentral()
    fake.script("/user/me", *[httpx.Response(429, json=RATE_LIMITED, headers={"Retry-After": "120"})] * 3)
    sleeps = AdvancingSleeps(clock)
    with (
        client_for(fake, monotonic=clock, sleep=sleeps, deadline=200) as client,
        pytest.raises(ApiUnavailableError) as info,
    ):
        client.get_me()
    assert sleeps.calls == [120.0]  # the second 120 s wait would end after the deadline
    assert "deadline of 200 s" in info.value.message


def test_time_waiting_on_429_is_capped_per_pull() -> None:
    clock = Monotonic()
    fake = FakeCertCentral()
    fake.script("/user/me", *[httpx.Response(429, json=RATE_LIMITED, headers={"Retry-After": "100"})] * 5)
    sleeps = AdvancingSleeps(clock)
    with (
        client_for(fake, monotonic=clock, sleep=sleeps, max_rate_limit_wait=250) as client,
        pytest.raises(ApiUnavailableError) as info,
    ):
        client.get_me()
    assert sleeps.calls == [100.0, 100.0]
    assert "capped at 250 s per pull" in info.value.message


def test_a_page_total_above_the_maximum_is_refused_after_one_page() -> None:
    fake = FakeCertCentral([make_user(1)])
    fake.script(
        "/user?limit=500&offset=0", httpx.Response(200, json={"users": [make_user(1)], "page": {"total": 10**12}})
    )
    with client_for(fake, max_users=1_000_000) as client, pytest.raises(ApiBadResponseError) as info:
        client.pull_users()
    assert "page.total 1,000,000,000,000" in info.value.message and "--max-users" in info.value.hint
    assert [e for e in fake.endpoints if e.startswith("/user?")] == ["/user?limit=500&offset=0"]


def test_a_lying_total_with_one_user_costs_one_window_not_a_million_pages() -> None:
    fake = FakeCertCentral([make_user(1)])

    def lying(request: httpx.Request) -> httpx.Response:
        offset = int(request.url.params["offset"])
        users = [make_user(1)] if offset == 0 else []
        return httpx.Response(200, json={"users": users, "page": {"total": 1_000_000, "limit": 500, "offset": offset}})

    fake.script("/user", *[lying] * 100)
    with client_for(fake, max_concurrency=4) as client:
        result = client.pull_users()
    pages = [e for e in fake.endpoints if e.startswith("/user?")]
    assert len(pages) == 1 + 4  # the first page, then one window that came back empty
    assert not result.complete and result.expected_total == 1_000_000


def test_the_step_follows_the_echoed_limit_not_the_number_of_users() -> None:
    fake = FakeCertCentral([make_user(i) for i in range(1, 11)])

    def one_user_pages(request: httpx.Request) -> httpx.Response:
        offset = int(request.url.params["offset"])
        users = [make_user(offset + 1)] if offset < 10 else []
        return httpx.Response(200, json={"users": users, "page": {"total": 10, "limit": 5, "offset": offset}})

    fake.script("/user", *[one_user_pages] * 20)
    with client_for(fake, page_size=5) as client:
        client.pull_users()
    assert [e for e in fake.endpoints if e.startswith("/user?")][:2] == [
        "/user?limit=5&offset=0",
        "/user?limit=5&offset=5",
    ]


def test_a_gzip_bomb_is_refused_without_inflating_it() -> None:
    bomb = gzip_bomb(2 << 30)
    assert len(bomb) < 3 * 1024 * 1024
    fake = FakeCertCentral([make_user(1)])
    fake.script("/user", streamed(200, bomb, **{"content-encoding": "gzip"}))
    with client_for(fake, max_body_bytes=8 * 1024 * 1024) as client, pytest.raises(ApiBadResponseError) as info:
        client.pull_users()
    assert "8 MB limit" in info.value.message and "gzip bomb" in info.value.hint


def test_gzip_answers_within_the_cap_are_decoded() -> None:
    page = json.dumps({"users": [make_user(1)], "page": {"total": 1, "limit": 500, "offset": 0}}).encode()
    fake = FakeCertCentral([make_user(1)])
    fake.script("/user", streamed(200, zlib.compress(page, wbits=31), **{"content-encoding": "gzip"}))
    with client_for(fake) as client:
        result = client.pull_users()
    assert [u.id for u in result.users] == [1]
    raw = next(p for p in result.raw_pages if p.endpoint.startswith("/user?"))
    assert raw.body == page  # kept decoded, as the digest promises


def test_a_body_announced_above_the_cap_is_refused_before_reading() -> None:
    fake = FakeCertCentral([make_user(1)])
    fake.script("/user", httpx.Response(200, headers={"content-length": str(10**9)}, stream=httpx.ByteStream(b"{}")))
    with client_for(fake, max_body_bytes=1024) as client, pytest.raises(ApiBadResponseError) as info:
        client.pull_users()
    assert "announced 1,000,000,000 bytes" in info.value.message


def test_an_encoding_the_client_did_not_ask_for_is_refused() -> None:
    fake = FakeCertCentral([make_user(1)])
    fake.script("/user", streamed(200, b"\x00" * 10, **{"content-encoding": "br"}))
    with client_for(fake) as client, pytest.raises(ApiBadResponseError) as info:
        client.pull_users()
    assert "Content-Encoding 'br'" in info.value.message
    assert all(r.headers["accept-encoding"] == "gzip, deflate" for r in fake.requests)


# --- #2 unread is not none -----------------------------------------------------------------------


def test_a_proxy_404_on_both_service_user_paths_fails_the_pull() -> None:
    fake = FakeCertCentral([make_user(1)], service_path=None)
    fake.script("/user/api-only", html(404))
    fake.script("/service-user", html(404))
    with client_for(fake) as client, pytest.raises(ApiBadResponseError) as info:
        client.pull_users()
    assert "HTTP 404" in info.value.message and "/user/api-only" in info.value.message


def test_an_undocumented_403_on_service_users_fails_the_pull() -> None:
    fake = FakeCertCentral([make_user(1)], service_path=None)
    fake.script("/user/api-only", html(403))
    with client_for(fake) as client, pytest.raises(PermissionDeniedError):
        client.pull_users()


def test_service_users_at_the_second_path_after_a_proxy_404_are_read() -> None:
    fake = FakeCertCentral([make_user(1)], service_users=[make_user(900)], service_path="/service-user")
    fake.script("/user/api-only", html(404))
    with client_for(fake) as client:
        result = client.pull_users()
    assert result.complete and result.not_evaluable == ()
    assert [u.id for u in result.users if u.is_service_user] == [900]


def test_a_proxy_404_for_a_users_details_fails_instead_of_unknown() -> None:
    fake = FakeCertCentral([make_user(1), make_user(2)])
    fake.script("/user/2", html(404))
    with client_for(fake) as client, pytest.raises(ApiBadResponseError):
        client.pull_users(details=True)


def test_a_documented_missing_permission_on_service_users_is_not_evaluable() -> None:
    fake = FakeCertCentral([make_user(1)])
    fake.script("/user/api-only", httpx.Response(403, json=MISSING_PERMISSION))
    fake.script("/service-user", httpx.Response(403, json=MISSING_PERMISSION))
    with client_for(fake) as client:
        result = client.pull_users()
    assert not result.complete and result.not_evaluable == ("service_users",)


# --- #9 TLS from the environment, GET only -------------------------------------------------------


def test_a_broken_ca_file_from_the_environment_is_a_connection_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SSL_CERT_FILE", "/dev/null")
    with pytest.raises(ApiConnectionError) as info:
        tls_context()
    assert "SSL_CERT_FILE=/dev/null" in info.value.message
    assert info.value.exit_code == ExitCode.CERTCENTRAL_UNAVAILABLE


def test_the_tls_context_never_logs_keys(monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> None:
    keylog = tmp_path / "keys.log"
    monkeypatch.setenv("SSLKEYLOGFILE", str(keylog))
    monkeypatch.delenv("SSL_CERT_FILE", raising=False)
    monkeypatch.delenv("SSL_CERT_DIR", raising=False)
    context = tls_context()
    assert context.keylog_filename is None and not keylog.exists()
    assert context.verify_mode == ssl.CERT_REQUIRED and context.check_hostname


def test_head_is_refused_before_sending() -> None:
    sent: list[httpx.Request] = []

    def record(request: httpx.Request) -> httpx.Response:
        sent.append(request)
        return httpx.Response(200)

    with (
        httpx.Client(transport=ReadOnlyTransport(httpx.MockTransport(record))) as http,
        pytest.raises(WriteAttemptError),
    ):
        http.head("https://www.digicert.com/services/v2/user")
    assert sent == []


class RecordingStream(httpcore.NetworkStream):
    def __init__(self) -> None:
        self.timeouts: list[float | None] = []

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        self.timeouts.append(timeout)
        return b"H"


def test_every_network_read_is_clipped_to_the_answers_deadline() -> None:
    """Status line and headers are read by httpcore before the client sees the answer: each read
    waits at most until the deadline, and none starts after it."""
    left: list[float | None] = [None, 3.0, 0.0]
    inner = RecordingStream()
    stream = DeadlineStream(inner, lambda: left[0])
    stream.read(100, timeout=30.0)
    left[0] = left[1]
    stream.read(100, timeout=30.0)
    assert inner.timeouts == [30.0, 3.0]
    left[0] = left[2]
    with pytest.raises(httpcore.ReadTimeout):
        stream.read(100, timeout=30.0)
    assert len(inner.timeouts) == 2


def test_the_tls_context_is_loaded_once_per_ca_file_version(monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> None:
    import certifi

    bundle = tmp_path / "ca.pem"
    roots = Path(certifi.where()).read_text()
    bundle.write_text(roots)
    monkeypatch.setenv("SSL_CERT_FILE", str(bundle))
    first = tls_context()
    assert tls_context() is first  # certifi's roots cost ~25 ms to load: once per process
    bundle.write_text(roots + "\n")  # a changed CA file is read again, never served from before
    assert tls_context() is not first
    bundle.write_text("not a certificate")
    with pytest.raises(ApiConnectionError):
        tls_context()
