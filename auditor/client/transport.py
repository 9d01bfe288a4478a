"""Transport: the read-only guard (only GET leaves the tool), TLS, proxies, and one GET read safely.

:class:`Wire` owns the httpx client. Each answer is streamed against a byte cap (counted
decompressed, so a gzip bomb cannot grow) and the answer's deadline (which also bounds the status
line and headers, through :class:`DeadlineStream`), then scanned for the API key in every form it
could be echoed in. The answer handed back is decoded, fully in memory, and carries no trace of the key.

The guard's scope is CertCentral: the one other host the tool may talk to, an RFC 3161 TSA (one
POST per export, ``--tsa-url``), is asked by ``auditor.evidence.timestamp``'s own client, never
through this transport, so it never sees the API key or its headers.
"""

from __future__ import annotations

import base64
import functools
import os
import ssl
import threading
import urllib.request
import zlib
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any
from urllib.parse import quote, quote_plus, urlsplit

import certifi
import httpcore
import httpx

from auditor.client.errors import KEY_ECHOED_MESSAGE, KeyEchoedError, past_deadline, too_big
from auditor.client.pacing import Retryable
from auditor.errors import ApiBadResponseError, ApiConnectionError

#: Framing of the body as sent; the answer kept holds the decoded body, so these no longer apply.
_BODY_FRAMING = frozenset({b"content-encoding", b"content-length", b"transfer-encoding"})


class WriteAttemptError(RuntimeError):
    """The client was asked to send a request that could change CertCentral.

    A ``RuntimeError`` rather than an :class:`~auditor.errors.AuditorError` on purpose: it can
    only mean a bug in this tool, so the CLI should show a traceback, not a friendly message.
    """


class ReadOnlyTransport(httpx.BaseTransport):
    """An httpx transport that refuses every method except GET before anything is sent.

    The audit tool never needs to write; this makes "read-only" a property of the code path,
    not a promise (a View Only key, §4.2, would be the server-side half of the same guarantee).
    HEAD is refused too: the tool never needs it, and "only GET" is the simpler promise.
    """

    ALLOWED_METHODS = frozenset({"GET"})

    def __init__(self, inner: httpx.BaseTransport) -> None:
        self._inner = inner

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        if request.method.upper() not in self.ALLOWED_METHODS:
            raise WriteAttemptError(
                f"refused to send {request.method} {request.url.path}: "
                "certcentral-auditor is read-only and only sends GET requests"
            )
        return self._inner.handle_request(request)

    def close(self) -> None:
        self._inner.close()


def key_forms(key: str) -> tuple[tuple[bytes, ...], tuple[bytes, ...]]:
    """How an echoed key may look: (case-sensitive forms, forms to match case-insensitively).

    Raw; URL-encoded (``%2F`` or ``%2f``); hex (either case); base64 and URL-safe base64 at each
    of the three alignments a key can have inside a longer encoded text (only the groups made
    of the key's bytes alone, so a prefix or suffix does not hide it).
    """
    raw = key.encode("utf-8")
    exact: set[bytes] = {raw, quote(key, safe="").encode(), quote_plus(key, safe="").encode()}
    folded: set[bytes] = {raw.hex().encode(), quote(key, safe="").lower().encode()}
    for shift in range(3):
        data = b"\0" * shift + raw
        whole_groups = len(data) // 3
        for encoded in (base64.b64encode(data), base64.urlsafe_b64encode(data)):
            core = encoded[4 if shift else 0 : whole_groups * 4]
            if len(core) >= 8:
                exact.add(core)
    return tuple(sorted(exact)), tuple(sorted(folded))


def carries_key(forms: tuple[tuple[bytes, ...], tuple[bytes, ...]], *texts: bytes) -> bool:
    exact, folded = forms
    for text in texts:
        if any(form in text for form in exact):
            return True
        lowered = text.lower()
        if any(form in lowered for form in folded):
            return True
    return False


class Inflater:
    """Decodes a body's ``Content-Encoding`` without ever holding more than ``limit`` bytes.

    httpx's decoders inflate a whole network chunk at once (a 64 KiB gzip chunk can become
    64 MB, a brotli chunk far more); zlib's ``max_length`` lets us stop one byte past the cap.
    Only identity, gzip and deflate are asked for (``Accept-Encoding``), so only those are read.
    """

    def __init__(self, encoding: str, endpoint: str) -> None:
        name = encoding.strip().lower()
        if name in ("", "identity"):
            self._zlib = None
        elif name in ("gzip", "x-gzip", "deflate"):
            self._zlib = zlib.decompressobj(32 + zlib.MAX_WBITS)  # gzip or zlib header, detected
        else:
            raise ApiBadResponseError(
                f"CertCentral answered GET {endpoint} with Content-Encoding {encoding[:40]!r}, which the "
                "tool did not ask for and does not read.",
                hint="A proxy may be re-encoding answers; check the base URL and proxy settings.",
            )

    def feed(self, data: bytes, room: int) -> bytes:
        """Decoded bytes of ``data``: at most ``room + 1`` of them (one more than fits means "too big")."""
        if self._zlib is None:
            return data[: room + 1]
        out = bytearray()
        pending = data
        try:
            while pending and len(out) <= room:
                out += self._zlib.decompress(pending, room + 1 - len(out))
                pending = self._zlib.unconsumed_tail
        except zlib.error as exc:
            raise ApiBadResponseError(f"CertCentral's compressed answer could not be decoded ({exc}).") from None
        return bytes(out)


def tls_context() -> ssl.SSLContext:
    """The TLS context for CertCentral: certifi's roots, or ``SSL_CERT_FILE``/``SSL_CERT_DIR``.

    Built here rather than by httpx so that (1) a broken CA setting from the environment is a clear
    :class:`ApiConnectionError` (exit 5) naming it, and (2) ``SSLKEYLOGFILE`` is ignored:
    ``ssl.create_default_context`` (which httpx uses) honours it, writing the session secrets of
    every request, and so the API key on the wire, to that file.
    """
    # SSL_CERT_FILE / SSL_CERT_DIR: the same settings httpx and OpenSSL read.
    cafile = os.environ.get("SSL_CERT_FILE") or None
    capath = None if cafile else os.environ.get("SSL_CERT_DIR") or None
    source = f"SSL_CERT_FILE={cafile}" if cafile else f"SSL_CERT_DIR={capath}" if capath else "certifi"
    try:
        if cafile is None and capath is None:
            cafile = certifi.where()  # httpx's own dependency
        stamp = Path(cafile or capath or ".").stat()  # a changed CA file is loaded again
        context = _verifying_context(cafile, capath, (stamp.st_mtime_ns, stamp.st_size))
    except (ssl.SSLError, OSError, ValueError) as exc:
        raise ApiConnectionError(
            f"Could not set up TLS: the CA certificates from {source} could not be loaded "
            f"({type(exc).__name__}: {exc}).",
            hint="Unset SSL_CERT_FILE / SSL_CERT_DIR, or point them at a PEM bundle of CA certificates.",
        ) from None
    return context


def environment_proxy(base_url: str) -> str | None:
    """The proxy the environment names for ``base_url`` (``HTTPS_PROXY`` etc., minding ``NO_PROXY``).

    httpx ignores environment proxies once a transport is given, as this client always does (the
    read-only guard wraps it), so the same lookup is done here with the standard library.
    """
    parts = urlsplit(base_url)
    proxies = urllib.request.getproxies()
    proxy = proxies.get(parts.scheme) or proxies.get("all")
    if not proxy or urllib.request.proxy_bypass(parts.hostname or ""):
        return None
    return proxy


def describe_proxy(proxy: str) -> str:
    """A proxy URL without credentials, for provenance and messages."""
    parts = urlsplit(proxy if "://" in proxy else f"http://{proxy}")
    host = parts.hostname or "?"
    return f"{parts.scheme}://{host}{f':{parts.port}' if parts.port else ''}"


class DeadlineStream(httpcore.NetworkStream):
    """A connection whose every read ends by the current answer's deadline (not only the idle timeout).

    Reading the body in chunks bounds it; this bounds the status line and headers too, which httpcore
    reads before the client sees any of the answer: a read never waits past the deadline, and one
    asked for after it fails at once as a read timeout.
    """

    def __init__(self, inner: httpcore.NetworkStream, remaining: Callable[[], float | None]) -> None:
        self._inner = inner
        self._remaining = remaining

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        left = self._remaining()
        if left is not None:
            if left <= 0:
                raise httpcore.ReadTimeout("the answer's deadline passed")
            timeout = left if timeout is None else min(timeout, left)
        return self._inner.read(max_bytes, timeout)

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self._inner.write(buffer, timeout)

    def close(self) -> None:
        self._inner.close()

    def start_tls(
        self, ssl_context: ssl.SSLContext, server_hostname: str | None = None, timeout: float | None = None
    ) -> httpcore.NetworkStream:
        return DeadlineStream(self._inner.start_tls(ssl_context, server_hostname, timeout), self._remaining)

    def get_extra_info(self, info: str) -> Any:
        return self._inner.get_extra_info(info)


class DeadlineBackend(httpcore.NetworkBackend):
    """httpcore's network backend with every connection a :class:`DeadlineStream`."""

    def __init__(self, inner: httpcore.NetworkBackend, remaining: Callable[[], float | None]) -> None:
        self._inner = inner
        self._remaining = remaining

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.NetworkStream:
        stream = self._inner.connect_tcp(host, port, timeout, local_address, socket_options)
        return DeadlineStream(stream, self._remaining)

    def connect_unix_socket(
        self, path: str, timeout: float | None = None, socket_options: Iterable[Any] | None = None
    ) -> httpcore.NetworkStream:
        return DeadlineStream(self._inner.connect_unix_socket(path, timeout, socket_options), self._remaining)

    def sleep(self, seconds: float) -> None:
        self._inner.sleep(seconds)


@functools.lru_cache(maxsize=4)
def _verifying_context(cafile: str | None, capath: str | None, _stamp: tuple[int, int]) -> ssl.SSLContext:
    """A client context trusting ``cafile``/``capath``: one per CA setting and file version, as
    loading certifi's roots costs ~25 ms per client (a process that makes several, and the
    in-process test suite, loads them once). A failed load raises, and is not remembered."""
    # Not ssl.create_default_context: it opens SSLKEYLOGFILE (writing a header) before we could
    # turn it off. PROTOCOL_TLS_CLIENT has the same secure defaults (hostname check, verify).
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.load_verify_locations(cafile=cafile, capath=capath)
    return context


class Wire:
    """The httpx client behind :class:`ReadOnlyTransport`, sending one GET at a time, each read safely.

    ``transport`` None means the real network: certifi's (or ``SSL_CERT_FILE``'s) roots, the
    environment's proxy, and the deadline-aware network backend.
    """

    def __init__(
        self,
        base_url: str,
        key: str,
        *,
        transport: httpx.BaseTransport | None,
        timeout: float,
        headers: dict[str, str],
        max_body_bytes: int,
        response_deadline: float,
        deadline: float,
        monotonic: Callable[[], float],
    ) -> None:
        self._max_body_bytes = max_body_bytes
        self._response_deadline = response_deadline
        self._deadline = deadline
        self._monotonic = monotonic
        self._answer_deadline = threading.local()  # per worker thread: the answer it is reading
        self._key_forms = key_forms(key)
        #: The environment's proxy for the base URL, without credentials; None when direct.
        self.proxy: str | None = None
        if transport is None:
            proxy = environment_proxy(base_url)
            self.proxy = describe_proxy(proxy) if proxy else None
            # Our own retries replace httpx's connection retries, so failures are counted once.
            real = httpx.HTTPTransport(retries=0, verify=tls_context(), proxy=proxy)
            # httpx has no option for the network backend; its pool keeps one (httpcore API) that
            # we wrap so that headers trickling in are cut off at the deadline too. Tested end to
            # end (test_hardening_pull_bounds.py), so an httpx that moves it fails loudly there.
            pool = getattr(real, "_pool", None)
            backend = getattr(pool, "_network_backend", None)
            if isinstance(backend, httpcore.NetworkBackend):
                pool._network_backend = DeadlineBackend(backend, self._answer_time_left)  # type: ignore[union-attr]
            inner: httpx.BaseTransport = real
        else:
            inner = transport
        self.http = httpx.Client(
            base_url=base_url,
            transport=ReadOnlyTransport(inner),
            timeout=httpx.Timeout(timeout),
            # A redirect means a wrong base URL; following it could carry the key to another host.
            follow_redirects=False,
            headers=headers,
        )

    def close(self) -> None:
        self.http.close()

    def _answer_time_left(self) -> float | None:
        deadline: float | None = getattr(self._answer_deadline, "at", None)
        return None if deadline is None else deadline - self._monotonic()

    def send(self, endpoint: str, *, run_deadline_at: float) -> httpx.Response:
        """One GET, its body read against the byte cap and the deadlines, then scanned for the key.

        The body is streamed (``iter_raw``) and decoded here, so neither a huge nor a bomb-like body
        is ever held whole, and a server that trickles bytes is cut off at the answer's deadline
        (the idle ``timeout`` only bounds the gap between two bytes). ``run_deadline_at`` is the
        pull's deadline (monotonic): reaching it fails the pull, reaching the answer's own is retried.
        """
        request = self.http.build_request("GET", endpoint)
        deadline = min(self._monotonic() + self._response_deadline, run_deadline_at)
        self._answer_deadline.at = deadline
        try:
            response = self.http.send(request, stream=True)
            try:
                body = self._read_body(endpoint, response, deadline, final=deadline >= run_deadline_at)
            finally:
                response.close()
        finally:
            self._answer_deadline.at = None
        header_text = b"\n".join(name + b": " + value for name, value in response.headers.raw)
        if carries_key(self._key_forms, header_text, body):
            raise KeyEchoedError(
                f"{KEY_ECHOED_MESSAGE} (it was in the answer to GET {endpoint.split('?', 1)[0]}, "
                f"HTTP {response.status_code}).",
                hint="A proxy or error page that repeats request headers sits between the tool and CertCentral; "
                "check the base URL and proxy settings, and consider rotating the key.",
            )
        kept = [(k, v) for k, v in response.headers.raw if k.lower() not in _BODY_FRAMING]
        return httpx.Response(response.status_code, headers=kept, content=body, request=request)

    def _read_body(self, endpoint: str, response: httpx.Response, deadline: float, *, final: bool) -> bytes:
        cap = self._max_body_bytes
        if response.is_stream_consumed:  # a transport that hands over a read response (tests' MockTransport)
            if len(response.content) > cap:
                raise too_big(endpoint, f"{len(response.content):,} bytes", max_body_bytes=cap)
            return response.content
        declared = response.headers.get("content-length", "")
        if declared.isdigit() and "content-encoding" not in response.headers and int(declared) > cap:
            raise too_big(endpoint, f"announced {int(declared):,} bytes", max_body_bytes=cap)
        inflater = Inflater(response.headers.get("content-encoding", ""), endpoint)
        chunks: list[bytes] = []
        size = 0
        for chunk in response.iter_raw():
            decoded = inflater.feed(chunk, cap - size)
            size += len(decoded)
            if size > cap:
                raise too_big(endpoint, "counted decompressed", max_body_bytes=cap)
            chunks.append(decoded)
            if self._monotonic() > deadline:
                if final:
                    raise past_deadline(
                        endpoint,
                        f"while the answer was still arriving ({size:,} bytes)",
                        deadline=self._deadline,
                    )
                raise Retryable(
                    f"the answer took longer than {self._response_deadline:.0f} s to arrive ({size:,} bytes so far)"
                )
        return b"".join(chunks)
