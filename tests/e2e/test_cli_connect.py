"""End to end: the real `auditor` CLI against the sandbox on loopback, one test per connection outcome.

Each test asserts what a user sees: the exit code of the contract, the words on stderr, and
whether the connection was saved.
"""

from __future__ import annotations

import socket
import subprocess

import pytest
from support import AuditorHome, all_written_bytes

from auditor.errors import ExitCode
from auditor.sandbox import Faults, SandboxServer

FAST = ("--retries", "2")


def connect(home: AuditorHome, base_url: str, key: str, *extra: str) -> subprocess.CompletedProcess[str]:
    return home.run(*FAST, "connect", "--base-url", base_url, "--key-stdin", *extra, stdin=key + "\n")


def saved_connections(home: AuditorHome) -> str:
    result = home.run("connections")
    assert result.returncode == 0, result.stderr
    return result.stdout


@pytest.mark.parametrize("key", ["sandbox-admin-key", "sandbox-view-only-key", "sandbox-user-management-key"])
def test_working_keys_are_saved(home: AuditorHome, sandbox: SandboxServer, key: str) -> None:
    result = connect(home, sandbox.base_url, key)
    assert result.returncode == ExitCode.OK, result.stderr
    assert "OK: the key works and may read users" in result.stderr
    assert "Saved connection 'default'" in result.stderr
    listing = saved_connections(home)
    assert "default" in listing and "sha256:" in listing
    assert key not in listing


def test_division_restricted_key_warns_of_a_partial_view(home: AuditorHome, sandbox: SandboxServer) -> None:
    result = connect(home, sandbox.base_url, "sandbox-division-restricted-key")
    assert result.returncode == ExitCode.OK, result.stderr
    assert "Warning:" in result.stderr
    assert "partial" in result.stderr.lower() or "division" in result.stderr.lower()


@pytest.mark.parametrize("key", ["sandbox-orders-only-key", "sandbox-finance-manager-key"])
def test_key_not_allowed_to_read_users_exits_4_and_saves_nothing(
    home: AuditorHome, sandbox: SandboxServer, key: str
) -> None:
    result = connect(home, sandbox.base_url, key)
    assert result.returncode == ExitCode.KEY_NOT_PERMITTED, result.stderr
    assert "View Only" in result.stderr and "User Management" in result.stderr
    assert "No connections yet" in home.run("connections").stderr


def test_rejected_key_exits_3(home: AuditorHome, sandbox: SandboxServer) -> None:
    result = connect(home, sandbox.base_url, "not-a-real-key-0000")
    assert result.returncode == ExitCode.KEY_REJECTED, result.stderr
    assert "Automation" in result.stderr and "API Keys" in result.stderr
    assert "not-a-real-key-0000" not in result.stderr + result.stdout


def test_unreachable_certcentral_exits_5(home: AuditorHome) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    result = connect(home, f"http://127.0.0.1:{port}/services/v2", "sandbox-admin-key")
    assert result.returncode == ExitCode.CERTCENTRAL_UNAVAILABLE, result.stderr
    assert "Error:" in result.stderr


def test_maintenance_503_exits_5(home: AuditorHome) -> None:
    from auditor.sandbox import default_dataset

    faults = Faults(error_rate=1.0, error_statuses=(503,), retry_after=0)
    with SandboxServer(default_dataset(), faults=faults) as server:
        result = connect(home, server.base_url, "sandbox-admin-key")
    assert result.returncode == ExitCode.CERTCENTRAL_UNAVAILABLE, result.stderr
    assert "503" in result.stderr


def test_html_error_page_exits_5(home: AuditorHome) -> None:
    from auditor.sandbox import default_dataset

    faults = Faults(error_rate=1.0, error_statuses=(500,), non_json_errors=True, retry_after=0)
    with SandboxServer(default_dataset(), faults=faults) as server:
        result = connect(home, server.base_url, "sandbox-admin-key")
    assert result.returncode == ExitCode.CERTCENTRAL_UNAVAILABLE, result.stderr


def test_wrong_base_url_says_so(home: AuditorHome, sandbox: SandboxServer) -> None:
    wrong = sandbox.base_url.replace("/services/v2", "/services/v9")
    result = connect(home, wrong, "sandbox-admin-key")
    assert result.returncode == ExitCode.CERTCENTRAL_UNAVAILABLE, result.stderr
    assert "base URL" in result.stderr


def test_plain_http_to_a_remote_host_is_refused_before_sending(home: AuditorHome) -> None:
    result = connect(home, "http://certcentral.example/services/v2", "sandbox-admin-key")
    assert result.returncode == ExitCode.USAGE
    assert "unencrypted" in result.stderr


def test_no_key_on_a_non_tty_stdin_is_a_usage_error(home: AuditorHome, sandbox: SandboxServer) -> None:
    result = home.run("connect", "--base-url", sandbox.base_url)
    assert result.returncode == ExitCode.USAGE
    assert "--key-stdin" in result.stderr


def test_key_from_environment_variable(home: AuditorHome, sandbox: SandboxServer) -> None:
    result = home.run("connect", "--base-url", sandbox.base_url, extra_env={"DIGICERT_API_KEY": "sandbox-admin-key"})
    assert result.returncode == ExitCode.OK, result.stderr


def test_saved_key_test_and_disconnect(home: AuditorHome, sandbox: SandboxServer) -> None:
    assert connect(home, sandbox.base_url, "sandbox-admin-key", "--connection", "prod").returncode == 0
    tested = home.run("test", "--connection", "prod")
    assert tested.returncode == ExitCode.OK, tested.stderr
    assert "ok" in saved_connections(home)
    assert home.run("test", "--connection", "nope").returncode == ExitCode.USAGE
    gone = home.run("disconnect", "prod")
    assert gone.returncode == ExitCode.OK
    assert home.run("test", "--connection", "prod").returncode == ExitCode.USAGE


def test_wrong_master_key_is_a_clear_error(home: AuditorHome, sandbox: SandboxServer) -> None:
    assert connect(home, sandbox.base_url, "sandbox-admin-key").returncode == 0
    home.key_file.write_bytes(b"\x00" * 32)
    result = home.run("test")
    assert result.returncode == ExitCode.USAGE
    assert "Traceback" not in result.stderr
    assert "master key" in result.stderr.lower()


def test_api_key_never_written_anywhere(home: AuditorHome, sandbox: SandboxServer) -> None:
    key = "sandbox-admin-key"
    outputs = []
    for args in (
        ("connect", "--base-url", sandbox.base_url, "--key-stdin"),
        ("test",),
        ("connections",),
        ("-v", "pull"),
        ("snapshots",),
        ("-v", "findings", "--format", "json"),
    ):
        result = home.run(*args, stdin=key + "\n")
        assert result.returncode == ExitCode.OK, (args, result.stderr)
        outputs.append(result.stdout + result.stderr)
    assert all(key not in text for text in outputs)
    for path, data in all_written_bytes(home.data_dir, home.key_file):
        assert key.encode() not in data, path
    # The sandbox's own log records the key's label, never the key.
    assert all(key not in repr(request) for request in sandbox.requests)


def test_verbose_logs_go_to_each_calls_own_stderr(home: AuditorHome, sandbox: SandboxServer) -> None:
    # Two -v calls in one process (as in-process tests make them): each logs to its own stderr.
    assert connect(home, sandbox.base_url, "sandbox-admin-key").returncode == 0
    first, second = home.run("-v", "test"), home.run("-v", "test")
    assert first.returncode == second.returncode == 0, second.stderr
    assert "HTTP Request: GET" in first.stderr and "HTTP Request: GET" in second.stderr, second.stderr
    assert home.run("test").stderr.count("HTTP Request") == 0, "-v logging outlived its call"
