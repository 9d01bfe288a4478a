"""Issue 22: the sandbox shows each trust-boundary case, also from `auditor sandbox`."""

from __future__ import annotations

import base64
import socket
import time
import zlib
from pathlib import Path

import httpx
from support import AuditorHome

from auditor.sandbox import Dataset, Faults, SandboxServer
from auditor.sandbox.server import gzip_bomb


def test_the_gzip_bomb_is_valid_gzip_of_exactly_that_many_zeros() -> None:
    size = 8 << 20
    bomb = gzip_bomb(size)
    assert len(bomb) < size // 500
    inflated = zlib.decompress(bomb, wbits=31)  # also checks the CRC and length trailer
    assert len(inflated) == size and inflated.count(0) == size


def test_route_faults_show_documented_and_proxy_refusals() -> None:
    faults = Faults(
        rate_limits=(),
        route_faults=(
            ("/user/api-only", "missing-permission"),
            ("/service-user", "html-404"),
            ("/user/{id}", "not-found"),
        ),
    )
    with SandboxServer(Dataset.generate(10, seed=1), faults=faults) as server:
        headers = {"X-DC-DEVKEY": "sandbox-admin-key"}
        with httpx.Client(base_url=server.base_url, headers=headers) as http:
            refused = http.get("/user/api-only")
            proxy = http.get("/service-user")
            detail = http.get("/user/1000001")
            me = http.get("/user/me")
    assert refused.status_code == 403 and refused.json()["errors"][0]["code"] == "access_denied|missing_permission"
    assert proxy.status_code == 404 and proxy.headers["content-type"] == "text/html"
    assert detail.status_code == 404 and detail.json()["errors"][0]["code"] == "not_found"
    assert me.status_code == 200


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_auditor_sandbox_takes_the_fault_switches(tmp_path: Path) -> None:
    home = AuditorHome(data_dir=tmp_path / "home", key_file=tmp_path / "master.key")
    bad = home.run("sandbox", "--route-fault", "user/me")
    assert bad.returncode == 2 and "is not ROUTE=ANSWER" in bad.stderr
    port = _free_port()
    process = home.start(
        "sandbox",
        "--port",
        str(port),
        "--quiet",
        "--route-fault",
        "/user/me=html-403",
        "--echo-request-headers",
        "header",
        "--page-total",
        "5000000",
    )
    try:
        base = f"http://127.0.0.1:{port}/services/v2"
        deadline = time.monotonic() + 30
        while True:
            try:
                with httpx.Client(base_url=base, headers={"X-DC-DEVKEY": "sandbox-admin-key"}) as http:
                    me, users = http.get("/user/me"), http.get("/user", params={"limit": 5, "offset": 0})
                break
            except httpx.ConnectError:
                assert time.monotonic() < deadline and process.poll() is None, "the sandbox did not start"
                time.sleep(0.2)
    finally:
        process.terminate()
        process.communicate(timeout=30)
    assert me.status_code == 403 and me.headers["content-type"] == "text/html"
    assert users.json()["page"]["total"] == 5_000_000
    assert b"sandbox-admin-key" in base64.b64decode(users.headers["x-debug-request"])
