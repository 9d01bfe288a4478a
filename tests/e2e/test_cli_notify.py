"""End to end: `auditor run --notify` delivers for real, to an SMTP server and a webhook on loopback.

Two runs without change send nothing; a change sends exactly one message naming it; a message that
cannot be delivered leaves the evidence, exits 7 and is sent by the next run; nothing secret is sent.
"""

from __future__ import annotations

import base64
import email
import email.policy
import json
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult
from support import AuditorHome, connect_to, with_new_admin

from auditor.errors import ExitCode
from auditor.sandbox import Faults, SandboxServer, default_dataset

FAST = ("--format", "html")


class Webhook:
    """A JSON webhook receiver (stdlib http.server) on loopback; ``status`` is what it answers."""

    def __init__(self) -> None:
        self.received: list[dict[str, Any]] = []
        self.status = 200
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                if owner.status == 200:
                    owner.received.append(json.loads(body))
                self.send_response(owner.status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()
        self.url = f"json://127.0.0.1:{self.server.server_address[1]}/hook"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class Mailbox:
    """Every message the SMTP server on loopback accepted."""

    def __init__(self) -> None:
        self.messages: list[email.message.EmailMessage] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append(email.message_from_bytes(envelope.content, policy=email.policy.default))  # type: ignore[arg-type]
        return "250 OK"


def accept_login(server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any) -> AuthResult:
    return AuthResult(success=True)


@pytest.fixture
def webhook() -> Iterator[Webhook]:
    hook = Webhook()
    yield hook
    hook.close()


@pytest.fixture(scope="module")
def smtp() -> Iterator[tuple[Mailbox, int]]:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    mailbox = Mailbox()
    # Logins are accepted without TLS on loopback: the URL carries a password the tool must not leak.
    controller = Controller(mailbox, hostname="127.0.0.1", port=port, authenticator=accept_login,
                            auth_require_tls=False)
    controller.start()
    yield mailbox, port
    controller.stop()


def text_of(message: email.message.EmailMessage) -> str:
    part = message.get_body(preferencelist=("plain",))
    assert part is not None
    return str(message["Subject"]) + "\n" + part.get_content()


def test_webhook_two_runs_without_change_send_nothing_then_one_change_sends_one_message_naming_it(
    home: AuditorHome, webhook: Webhook, tmp_path: Path
) -> None:
    with SandboxServer(default_dataset()) as sandbox:
        connect_to(home, sandbox.base_url)
        out = str(tmp_path / "out")
        first = home.run("run", *FAST, "--no-export", "--output", out, "--notify", webhook.url)
        assert first.returncode == ExitCode.OK, first.stderr
        assert len(webhook.received) == 1, "the first run tells about today's high findings once"
        assert "New finding" in webhook.received[0]["message"]
        for _ in range(2):
            again = home.run("run", *FAST, "--no-export", "--output", out, "--notify", webhook.url)
            assert again.returncode == ExitCode.OK, again.stderr
            assert "nothing new" in again.stderr
        assert len(webhook.received) == 1, "runs without change send nothing"

        sandbox.set_dataset(with_new_admin(sandbox.dataset))
        changed = home.run("run", *FAST, "--no-export", "--output", out, "--notify", webhook.url)
        assert changed.returncode == ExitCode.OK, changed.stderr
        assert len(webhook.received) == 2, "a change sends exactly one message"
        message = webhook.received[1]["message"]
        assert "New privileged user: mallory@example.com" in message
        assert "[default]" in message and "since 20" in message
        assert "1 item(s) need attention" in webhook.received[1]["title"]


def test_mail_is_delivered_and_holds_no_secret(
    home: AuditorHome, smtp: tuple[Mailbox, int], tmp_path: Path
) -> None:
    mailbox, port = smtp
    before = len(mailbox.messages)
    url = f"mailto://notifier:SmtpPassw0rd@127.0.0.1:{port}?from=auditor@example.com&to=security@example.com"
    with SandboxServer(default_dataset()) as sandbox:
        connect_to(home, sandbox.base_url)
        result = home.run("run", *FAST, "--output", str(tmp_path / "out"), "--notify", url,
                          "--notify-on", "always")
        assert result.returncode == ExitCode.OK, result.stderr
        sandbox.set_dataset(with_new_admin(sandbox.dataset))
        result = home.run("run", *FAST, "--output", str(tmp_path / "out"), "--notify", url)
        assert result.returncode == ExitCode.OK, result.stderr
    delivered = mailbox.messages[before:]
    assert len(delivered) == 2
    assert "mallory@example.com" in text_of(delivered[1])
    master_key = home.key_file.read_bytes()
    secrets = ("sandbox-admin-key", "SmtpPassw0rd", base64.urlsafe_b64encode(master_key).decode().rstrip("="),
               master_key.hex())
    for message in delivered:
        raw = message.as_string()
        for secret in secrets:
            assert secret not in raw
        assert "://" not in text_of(message), "no link outside the run's own outputs"
        assert str(tmp_path / "out") in text_of(message)


def test_heartbeat_sends_every_run(home: AuditorHome, webhook: Webhook, tmp_path: Path) -> None:
    with SandboxServer(default_dataset()) as sandbox:
        connect_to(home, sandbox.base_url)
        for _ in range(2):
            result = home.run("run", *FAST, "--no-export", "--output", str(tmp_path), "--notify", webhook.url,
                              "--notify-on", "always")
            assert result.returncode == ExitCode.OK, result.stderr
    assert len(webhook.received) == 2
    assert "nothing new" in webhook.received[1]["title"]


def test_undeliverable_keeps_the_evidence_exits_7_and_is_sent_by_the_next_run(
    home: AuditorHome, webhook: Webhook, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    with SandboxServer(default_dataset()) as sandbox:
        connect_to(home, sandbox.base_url)
        assert home.run("run", *FAST, "--output", str(out), "--notify", webhook.url).returncode == ExitCode.OK
        sandbox.set_dataset(with_new_admin(sandbox.dataset))
        webhook.status = 500
        failed = home.run("run", *FAST, "--output", str(out), "--notify", webhook.url)
        assert failed.returncode == ExitCode.NOTIFY_FAILED, failed.stderr
        assert "could not be delivered to json://127.0.0.1:" in failed.stderr
        assert "/hook" not in failed.stderr, "the URL's path (where tokens live) is never printed"
        assert len(list(out.glob("*-s2.zip"))) == 1, "the evidence stands"

        webhook.status = 200
        retried = home.run("run", *FAST, "--output", str(out), "--notify", webhook.url)
        assert retried.returncode == ExitCode.OK, retried.stderr
        assert "retried from an earlier run" in retried.stderr
    assert len(webhook.received) == 2
    assert "mallory@example.com" in webhook.received[1]["message"]

    quiet = home.run("--retries", "1", "run", *FAST, "--output", str(out), "--notify", webhook.url)
    assert quiet.returncode != ExitCode.NOTIFY_FAILED  # the sandbox is gone: a failed run is its own item
    assert len(webhook.received) == 3 and "Run failed" in webhook.received[2]["message"]


def test_a_failing_pull_is_notified_once_and_keeps_its_exit_code(
    home: AuditorHome, webhook: Webhook, tmp_path: Path
) -> None:
    with SandboxServer(default_dataset()) as sandbox:
        connect_to(home, sandbox.base_url)
        sandbox.set_faults(Faults(error_rate=1.0, error_statuses=(503,), retry_after=0))
        for _ in range(2):
            result = home.run("--retries", "1", "run", *FAST, "--output", str(tmp_path), "--notify", webhook.url)
            assert result.returncode == ExitCode.CERTCENTRAL_UNAVAILABLE, result.stderr
    assert len(webhook.received) == 1, "a lasting failure is sent once"
    assert "Run failed" in webhook.received[0]["message"]


def test_notify_urls_from_auditor_toml(home: AuditorHome, webhook: Webhook, tmp_path: Path) -> None:
    config = tmp_path / "auditor.toml"
    config.write_text(f'notify = ["{webhook.url}"]\n', encoding="utf-8")
    with SandboxServer(default_dataset()) as sandbox:
        connect_to(home, sandbox.base_url)
        result = home.run("--config", str(config), "run", *FAST, "--no-export", "--output", str(tmp_path))
    assert result.returncode == ExitCode.OK, result.stderr
    assert len(webhook.received) == 1


def test_an_unknown_notification_scheme_is_refused_before_the_pull(
    home: AuditorHome, sandbox: SandboxServer, tmp_path: Path
) -> None:
    connect_to(home, sandbox.base_url)
    sandbox.clear_requests()
    result = home.run("run", "--output", str(tmp_path), "--notify", "nosuchscheme://token123@host/x")
    assert result.returncode == ExitCode.USAGE, result.stderr
    assert "token123" not in result.stderr
    assert sandbox.requests == ()
