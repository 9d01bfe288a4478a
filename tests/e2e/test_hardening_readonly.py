"""Issue 8.6: read-only. Every command runs against a recording sandbox; only GET ever arrives.

And the client's guard refuses any other method before a byte leaves the process.
"""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from support import AuditorHome, connect_to

from auditor.client import CertCentralClient, WriteAttemptError
from auditor.sandbox import Dataset, Faults, SandboxServer


def test_every_command_sends_only_get(home: AuditorHome, tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    with SandboxServer(Dataset.generate(15, seed=3), faults=Faults(rate_limits=())) as server:
        steps: list[tuple[str, ...]] = [
            ("test",),
            ("connections",),
            ("pull", "--page-size", "6"),
            ("pull", "--details", "--page-size", "6"),
            ("snapshots",),
            ("diff",),
            ("diff", "--format", "json"),
            ("findings", "--format", "json"),
            ("attest", "mfa", "--by", "Ann <ann@example.com>", "--statement", "2FA enforced in the console"),
            ("attest", "review", "--by", "Ann <ann@example.com>", "--statement", "Reviewed"),
            ("report", "--format", "html", "--output", str(out / "report")),
            ("export", "--no-reports", "--output", str(out / "bundle.zip")),
            ("verify", str(out / "bundle.zip"), "--public-key", str(out / "signer.pem")),
            ("keys", "public"),
            ("keys", "rotate"),
            ("run", "--format", "html", "--output", str(out / "run")),
            ("--retries", "1", "test", "--connection", "missing"),  # an error path too
            ("disconnect", "default"),
        ]
        connect_to(home, server.base_url)
        for step in steps:
            if step[0] == "verify":
                (out / "signer.pem").write_text(home.run("keys", "public").stdout)
            result = home.run(*step)
            expected = 2 if "missing" in step else 0
            assert result.returncode == expected, (step, result.stderr)
        requests = server.requests
    methods = {request.method for request in requests}
    assert methods == {"GET"}, f"non-GET requests reached CertCentral: {methods}"
    paths = {request.path for request in requests}
    # The run really talked to CertCentral for connect, test, pull, details and run.
    assert {"/services/v2/user/me", "/services/v2/user"} <= paths
    assert any(path.startswith("/services/v2/user/") and path[-1].isdigit() for path in paths)


@pytest.mark.parametrize("method", ["POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE", "CONNECT"])
def test_client_refuses_non_get_before_sending(method: str, sandbox: SandboxServer) -> None:
    sent: list[httpx.Request] = []

    def record(request: httpx.Request) -> httpx.Response:
        sent.append(request)
        return httpx.Response(200, json={})

    transport = httpx.MockTransport(record)
    with CertCentralClient("https://www.digicert.com/services/v2", "k" * 32, transport=transport) as mock, \
            pytest.raises(WriteAttemptError, match="read-only"):
        mock._http.request(method, "/user")
    assert sent == []

    # Over real HTTP too: nothing reaches the sandbox.
    with CertCentralClient(sandbox.base_url, "sandbox-admin-key") as client:
        with pytest.raises(WriteAttemptError):
            client._http.request(method, "/user", json={"first_name": "x"})
        client.get_me()
    assert [(r.method, r.path) for r in sandbox.requests] == [("GET", "/services/v2/user/me")]
