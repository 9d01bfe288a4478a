"""Issue 22 (#2, #4, #7, #9): trust boundaries of a pull, through the real CLI and sandbox.

"Could not read" never becomes "none"; an echoed API key is never kept; a slow, lying or
bomb-like server ends the pull with exit 5, a clear message and the pull lock released; TLS
set-up from the environment fails clearly and never writes TLS secrets.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
import resource
import subprocess
import sys
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Literal

import pytest
from support import AuditorHome, Before, all_written_bytes, snapshot_table

from auditor.errors import ExitCode
from auditor.sandbox import Dataset, Faults, SandboxServer
from auditor.sandbox.server import RouteFault

USERS = 120
PAGE_SIZE = 50
KEY = "sandbox-admin-key"
CALM = Faults(rate_limits=())
SERVICE_PATHS = ("/user/api-only", "/service-user")


@pytest.fixture(scope="module")
def server() -> Iterator[SandboxServer]:
    with SandboxServer(Dataset.generate(USERS, seed=7), faults=CALM) as sandbox:
        yield sandbox


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory, server: SandboxServer) -> Before:
    """A data directory with a connection and two complete snapshots (with the service user)."""
    return Before.pulled_twice(tmp_path_factory.mktemp("bounds-template"), server.base_url, page_size=PAGE_SIZE)


@pytest.fixture
def before(tmp_path: Path, template: Before, server: SandboxServer) -> Iterator[Before]:
    copy = template.copy_to(tmp_path)
    server.clear_requests()
    yield copy
    server.set_faults(CALM)


def pull(home: AuditorHome, *global_options: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return home.run(*global_options, "pull", "--page-size", str(PAGE_SIZE), timeout=timeout)


def assert_nothing_stored(before: Before) -> None:
    before.assert_nothing_stored()


def assert_lock_released(before: Before, server: SandboxServer) -> None:
    """The next (healthy) pull is not refused as "another pull is running"."""
    server.set_faults(CALM)
    result = pull(before.home)
    assert result.returncode == 0, result.stderr
    assert snapshot_table(before.home)[-1].rstrip().endswith("yes")


# --- #2 "could not read" never means "none" ------------------------------------------------


@pytest.mark.parametrize("answer", ["route-not-found", "missing-permission"])
def test_unread_service_users_are_incomplete_not_removed(
    before: Before, server: SandboxServer, answer: RouteFault
) -> None:
    """Issue row: /user/api-only and /service-user answer 404 or 403 (CertCentral's documented
    "not available to this key" answers). Before: stored complete, the service Administrator
    "removed". Now: stored INCOMPLETE, never a baseline, no removal, the export unchanged."""
    server.set_faults(Faults(rate_limits=(), route_faults=tuple((path, answer) for path in SERVICE_PATHS)))
    result = pull(before.home)
    assert result.returncode == 0, result.stderr
    assert "INCOMPLETE" in result.stderr and "Service users were NOT read" in result.stderr
    assert "removed" not in result.stderr
    rows = snapshot_table(before.home)
    assert len(rows) == len(before.snapshots) + 1 and rows[-1].rstrip().endswith("NO (incomplete)"), rows
    # The latest complete pair is still what `diff` compares: nothing was turned into a removal,
    # and naming the incomplete snapshot does not make the unread service Administrator "removed".
    diff = before.home.run("diff", "--format", "json")
    assert diff.returncode == 0 and diff.stdout == before.diff
    named = before.home.run("diff", "--to", rows[-1].split()[0], "--format", "json")
    assert named.returncode == 0, named.stderr
    assert '"removed"' not in named.stdout
    # A bundle of that snapshot, if someone names it, says "unknown", never service_users=0.
    bundle = before.home.data_dir.parent / "unread.zip"
    export = before.home.run("export", "--snapshot", rows[-1].split()[0], "--no-reports", "--output", str(bundle))
    assert export.returncode == 0, export.stderr
    with zipfile.ZipFile(bundle) as archive:
        context = json.loads(archive.read("manifest.json"))["context"]
    assert context["pull_complete"] is False
    assert context["record_counts"]["service_users"] is None
    # The next healthy pull diffs against the last complete snapshot, not the unread one.
    server.set_faults(CALM)
    again = pull(before.home)
    assert again.returncode == 0, again.stderr
    assert "0 new, 0 removed" in again.stderr


@pytest.mark.parametrize(
    ("answer", "exit_code", "words"),
    [
        ("html-404", ExitCode.CERTCENTRAL_UNAVAILABLE, "HTTP 404"),
        ("html-403", ExitCode.KEY_NOT_PERMITTED, "HTTP 403"),
    ],
    ids=["service-users-proxy-404", "service-users-proxy-403"],
)
def test_undocumented_refusals_fail_the_pull(
    before: Before, server: SandboxServer, answer: RouteFault, exit_code: ExitCode, words: str
) -> None:
    """A refusal CertCentral does not document as "not available" (a proxy's HTML page) says
    nothing about the account: the pull fails and nothing is stored (before: stored complete)."""
    server.set_faults(Faults(rate_limits=(), route_faults=tuple((path, answer) for path in SERVICE_PATHS)))
    result = pull(before.home, "--retries", "2")
    assert result.returncode == exit_code, result.stderr
    assert words in result.stderr and "Traceback" not in result.stderr
    assert_nothing_stored(before)


def test_an_unread_key_user_is_a_possibly_partial_view_not_a_full_one(before: Before, server: SandboxServer) -> None:
    """GET /user/me refused with CertCentral's missing_permission: the users are stored, but the
    snapshot says the key's scope is unknown instead of passing for a whole-account view."""
    server.set_faults(Faults(rate_limits=(), route_faults=(("/user/me", "missing-permission"),)))
    result = pull(before.home)
    assert result.returncode == 0, result.stderr
    assert "Whether the key sees the whole account is unknown" in result.stderr
    assert "may be a partial view" in result.stderr


def test_details_behind_a_proxy_404_fail_instead_of_unknown(before: Before, server: SandboxServer) -> None:
    """A proxy's 404 page for GET /user/{id} does not mean the user was deleted."""
    server.set_faults(Faults(rate_limits=(), route_faults=(("/user/{id}", "html-404"),)))
    result = before.home.run("pull", "--details", "--page-size", str(PAGE_SIZE))
    assert result.returncode == ExitCode.CERTCENTRAL_UNAVAILABLE, result.stderr
    assert "HTTP 404 for GET /user/" in result.stderr
    assert_nothing_stored(before)


# --- #4 the key is never stored ----------------------------------------------------------------


@pytest.mark.parametrize("mode", ["404-page", "header"])
def test_an_echoed_key_fails_the_pull_and_is_never_stored(
    before: Before, server: SandboxServer, mode: Literal["404-page", "header"]
) -> None:
    """Issue row: a proxy 404 page echoing request headers (raw), or a debug header (base64).
    Before: X-DC-DEVKEY stored as a raw page in auditor.db. Now: exit 5, nothing stored."""
    # With only /service-user served, /user/api-only answers 404: the echoing page.
    routes: tuple[tuple[str, RouteFault], ...] = (("/user/api-only", "route-not-found"),) if mode == "404-page" else ()
    server.set_faults(Faults(rate_limits=(), route_faults=routes, echo_request_headers=mode))
    result = pull(before.home)
    assert result.returncode == ExitCode.CERTCENTRAL_UNAVAILABLE, result.stderr
    assert "CertCentral or a proxy echoed the API key; nothing was stored" in result.stderr
    assert KEY not in result.stderr + result.stdout
    assert_nothing_stored(before)
    for path, data in all_written_bytes(before.home.data_dir):
        assert KEY.encode() not in data, path


# --- #7 bounded pulls --------------------------------------------------------------------------


def test_a_server_dripping_one_byte_per_second_ends_by_the_deadline(before: Before, server: SandboxServer) -> None:
    """Issue row: 1 byte per second with --timeout 5. Before: still pulling after 90 s, the next
    run refused. Now: exit 5 at the deadline, naming it, and the next pull works."""
    server.set_faults(Faults(rate_limits=(), drip_bytes_per_second=1))
    started = time.monotonic()
    result = pull(before.home, "--timeout", "5", "--deadline", "6", timeout=60)
    elapsed = time.monotonic() - started
    assert result.returncode == ExitCode.CERTCENTRAL_UNAVAILABLE, result.stderr
    assert "reached its deadline of 6 s" in result.stderr and "--deadline" in result.stderr
    assert elapsed < 30, elapsed
    assert_nothing_stored(before)
    assert_lock_released(before, server)


def test_a_page_total_above_the_maximum_is_refused_before_paging(before: Before, server: SandboxServer) -> None:
    """Issue row: page.total 5,000,000. Before: 838 requests in 45 s and counting. Now: exit 5
    after the first page, naming the total and --max-users."""
    server.set_faults(Faults(rate_limits=(), page_total=5_000_000))
    result = pull(before.home)
    assert result.returncode == ExitCode.CERTCENTRAL_UNAVAILABLE, result.stderr
    assert "page.total 5,000,000" in result.stderr and "--max-users" in result.stderr
    assert sum(1 for r in server.requests if r.path.endswith("/user")) == 1
    assert_nothing_stored(before)
    assert_lock_released(before, server)


def test_a_lying_page_total_costs_one_window_of_pages(before: Before, server: SandboxServer) -> None:
    """Issue row: the users of page 1 with total 1,000,000 (the maximum, so not refused). Before:
    the step shrank and paging went on for ever. Now: the first empty page ends paging; the
    snapshot is INCOMPLETE (never a baseline), after a handful of requests."""
    server.set_faults(Faults(rate_limits=(), page_total=1_000_000))
    result = pull(before.home, timeout=60)
    assert result.returncode == 0, result.stderr
    assert "INCOMPLETE" in result.stderr and "expected 1000000" in result.stderr
    list_requests = sum(1 for r in server.requests if r.path.endswith("/user"))
    assert list_requests <= USERS // PAGE_SIZE + 1 + 8, list_requests
    assert snapshot_table(before.home)[-1].rstrip().endswith("NO (incomplete)")


def _limit_memory() -> None:  # pragma: no cover - runs in the child
    limit = 1536 * 1024 * 1024
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))


def test_page_total_of_10_to_the_12_is_refused(before: Before, server: SandboxServer) -> None:
    """Issue row: page.total 10^12. Before: exit 70 MemoryError. Now: exit 5, refused."""
    server.set_faults(Faults(rate_limits=(), page_total=10**12))
    result = subprocess.run(
        [sys.executable, "-m", "auditor", "pull", "--page-size", str(PAGE_SIZE)],
        env=before.home.env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        preexec_fn=_limit_memory,
    )
    assert result.returncode == ExitCode.CERTCENTRAL_UNAVAILABLE, result.stderr
    assert "page.total 1,000,000,000,000" in result.stderr
    assert_nothing_stored(before)


def test_a_gzip_bomb_fails_the_pull_with_memory_bounded(before: Before, server: SandboxServer) -> None:
    """Issue row: a 2 MB gzip body inflating to 2 GiB. Before: exit 70 MemoryError (6.4 GB peak).
    Now: exit 5 naming the size limit. The child runs under a 1.5 GB address-space limit, so the
    test never allocates gigabytes even when the cap is broken."""
    server.set_faults(Faults(rate_limits=(), gzip_bomb_bytes=2 << 30))
    result = subprocess.run(
        [sys.executable, "-m", "auditor", "pull", "--page-size", str(PAGE_SIZE)],
        env=before.home.env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        preexec_fn=_limit_memory,
    )
    assert result.returncode == ExitCode.CERTCENTRAL_UNAVAILABLE, result.stderr
    assert "64 MB limit" in result.stderr and "MemoryError" not in result.stderr
    assert_nothing_stored(before)
    assert_lock_released(before, server)


# --- #9 TLS set-up from the environment ----------------------------------------------------------


def test_a_broken_ca_setting_is_exit_5_naming_it(before: Before) -> None:
    """Issue row: SSL_CERT_FILE=/dev/null. Before: exit 70 SSLError. Now: exit 5 naming it."""
    for command in (("pull",), ("test",)):
        result = before.home.run(*command, extra_env={"SSL_CERT_FILE": "/dev/null"})
        assert result.returncode == ExitCode.CERTCENTRAL_UNAVAILABLE, result.stderr
        assert "SSL_CERT_FILE=/dev/null" in result.stderr and "Traceback" not in result.stderr
    assert_nothing_stored(before)


def _self_signed(directory: Path) -> tuple[Path, Path]:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=2))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return cert_path, key_path


def test_sslkeylogfile_is_ignored_and_ssl_cert_file_still_trusted(tmp_path: Path) -> None:
    """Issue row: SSLKEYLOGFILE set. Before: TLS secrets written to the file. Now: a real HTTPS
    connect and pull (trusting the CA named by SSL_CERT_FILE) write nothing there."""
    import ssl

    cert, key = _self_signed(tmp_path)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    keylog = tmp_path / "tls-secrets.log"
    env = {"SSL_CERT_FILE": str(cert), "SSLKEYLOGFILE": str(keylog)}
    home = AuditorHome(data_dir=tmp_path / "home", key_file=tmp_path / "config" / "master.key")
    with SandboxServer(Dataset.generate(20, seed=3), faults=CALM, ssl_context=context) as tls_server:
        assert tls_server.base_url.startswith("https://")
        connect = home.run("connect", "--base-url", tls_server.base_url, "--key-stdin", stdin=f"{KEY}\n", extra_env=env)
        assert connect.returncode == 0, connect.stderr
        result = home.run("pull", extra_env=env)
        assert result.returncode == 0, result.stderr
    assert not keylog.exists() or keylog.stat().st_size == 0


class ForwardProxy:
    """A plain HTTP forward proxy on loopback that counts what it forwards."""

    def __init__(self) -> None:
        import http.client
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
        from urllib.parse import urlsplit

        self.forwarded: list[str] = []
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                target = urlsplit(self.path)
                proxy.forwarded.append(target.path)
                upstream = http.client.HTTPConnection(target.hostname or "", target.port or 80, timeout=30)
                headers = {k: v for k, v in self.headers.items() if k.lower() not in ("proxy-connection", "connection")}
                path = f"{target.path}?{target.query}" if target.query else target.path
                upstream.request("GET", path, headers=headers)
                answer = upstream.getresponse()
                body = answer.read()
                upstream.close()
                self.send_response(answer.status)
                for name, value in answer.getheaders():
                    if name.lower() not in ("content-length", "connection", "transfer-encoding"):
                        self.send_header(name, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._httpd.server_address[1]}"
        import threading

        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)

    def __enter__(self) -> ForwardProxy:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()


def test_proxies_from_the_environment_are_used_and_named(before: Before) -> None:
    """Issue #9: proxies from the environment still work, and the snapshot's notes name the proxy
    (without credentials). Before: the client's own transport silently bypassed HTTP_PROXY."""
    with ForwardProxy() as proxy:
        env = {"HTTP_PROXY": proxy.url.replace("http://", "http://user:secret@"), "NO_PROXY": ""}
        result = before.home.run("pull", "--page-size", str(PAGE_SIZE), extra_env=env)
    assert result.returncode == 0, result.stderr
    assert any(path.endswith("/user") for path in proxy.forwarded), proxy.forwarded
    assert f"Requests went through the proxy {proxy.url}" in result.stderr
    assert "secret" not in result.stderr
