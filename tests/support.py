"""Test helpers: an isolated auditor installation and the real CLI in a subprocess."""

from __future__ import annotations

import http.client
import json
import os
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

REPO = Path(__file__).resolve().parent.parent


@dataclass
class AuditorHome:
    """An isolated installation: data directory and master key file under tmp_path."""

    data_dir: Path
    key_file: Path

    @property
    def env(self) -> dict[str, str]:
        env = {key: value for key, value in os.environ.items() if not key.startswith(("AUDITOR_", "DIGICERT_"))}
        env.update(
            {
                "AUDITOR_HOME": str(self.data_dir),
                "AUDITOR_MASTER_KEY_FILE": str(self.key_file),
                "PYTHONPATH": str(REPO),
            }
        )
        return env

    def master_key(self) -> Any:
        """The installation's master key (from its key file), to open its store with tags checked:
        ``Store.open(home.data_dir, master_key=home.master_key())``."""
        from auditor.credentials import MasterKey

        return MasterKey(self.key_file.read_bytes(), source=str(self.key_file))

    def start(self, *args: str, extra_env: Mapping[str, str] | None = None) -> subprocess.Popen[str]:
        """Start the real ``auditor`` CLI in the background (to race, interrupt or kill it)."""
        return subprocess.Popen(
            [sys.executable, "-m", "auditor", *args],
            env={**self.env, **(extra_env or {})},
            cwd=self.data_dir.parent,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    def run(
        self,
        *args: str,
        stdin: str | None = None,
        extra_env: Mapping[str, str] | None = None,
        cwd: Path | None = None,
        timeout: float = 120,
    ) -> subprocess.CompletedProcess[str]:
        """Run the real ``auditor`` CLI in a subprocess, as a user's shell would."""
        env = {**self.env, **(extra_env or {})}
        return subprocess.run(
            [sys.executable, "-m", "auditor", *args],
            input=stdin if stdin is not None else "",
            capture_output=True,
            text=True,
            env=env,
            cwd=cwd or self.data_dir.parent,
            timeout=timeout,
            check=False,
        )


def all_written_bytes(*roots: Path) -> Iterator[tuple[Path, bytes]]:
    """Every file under the given roots, for scanning what the tool wrote."""
    for root in roots:
        if root.is_file():
            yield root, root.read_bytes()
            continue
        for path in sorted(root.rglob("*")):
            if path.is_file():
                yield path, path.read_bytes()


def connect_to(home: AuditorHome, base_url: str, *, key: str = "sandbox-admin-key", name: str = "default") -> None:
    """``auditor connect`` with the key on stdin; fails the test if the connection test fails."""
    result = home.run("connect", "--connection", name, "--base-url", base_url, "--key-stdin", stdin=f"{key}\n")
    assert result.returncode == 0, result.stderr


# A rewrite hook sees (path with query, status, headers, body) and returns the answer to send
# instead, or None to pass the upstream answer through unchanged.
Rewrite = Callable[[str, int, dict[str, str], bytes], "tuple[int, dict[str, str], bytes] | None"]


class RewritingProxy:
    """A loopback HTTP proxy in front of the sandbox that can rewrite chosen answers.

    For faults the sandbox has no switch for (a page whose ``users`` is not a list, duplicate ids
    across pages, hostile field values the dataset format refuses): the test sets ``rewrite``
    and the tool talks to ``base_url`` as if it were CertCentral. Every request still reaches
    the sandbox, so its request records stay complete.
    """

    def __init__(self, upstream_base_url: str) -> None:
        upstream = urlsplit(upstream_base_url)
        self.upstream_host = upstream.hostname or "127.0.0.1"
        self.upstream_port = upstream.port or 80
        self.rewrite: Rewrite | None = None
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                self._forward()

            do_POST = do_PUT = do_PATCH = do_DELETE = do_OPTIONS = do_GET

            def _forward(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else None
                headers = {k: v for k, v in self.headers.items() if k.lower() not in {"host", "connection"}}
                conn = http.client.HTTPConnection(proxy.upstream_host, proxy.upstream_port, timeout=60)
                try:
                    conn.request(self.command, self.path, body=body, headers=headers)
                    answer = conn.getresponse()
                    out_headers = {k: v for k, v in answer.getheaders()
                                   if k.lower() not in {"content-length", "connection", "transfer-encoding"}}
                    status = answer.status
                    try:
                        data = answer.read()
                    except http.client.IncompleteRead as cut:
                        # The upstream hung up mid-body: do the same to the client.
                        self.send_response(status)
                        for name, value in out_headers.items():
                            self.send_header(name, value)
                        self.send_header("Content-Length", str(len(cut.partial) + (cut.expected or 1)))
                        self.end_headers()
                        self.wfile.write(cut.partial)
                        self.close_connection = True
                        return
                finally:
                    conn.close()
                hook = proxy.rewrite
                replaced = hook(self.path, status, out_headers, data) if hook is not None else None
                if replaced is not None:
                    status, out_headers, data = replaced
                self.send_response(status)
                for name, value in out_headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self.base_url = f"http://127.0.0.1:{self._httpd.server_address[1]}{upstream.path}"
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    def __enter__(self) -> RewritingProxy:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join()


def json_answer(status: int, payload: object) -> tuple[int, dict[str, str], bytes]:
    """A JSON answer for a :data:`Rewrite` hook."""
    return status, {"Content-Type": "application/json"}, json.dumps(payload).encode()


def snapshot_table(home: AuditorHome) -> list[str]:
    """``auditor snapshots`` rows without the header (fails the test if the command fails)."""
    result = home.run("snapshots")
    assert result.returncode == 0, result.stderr
    return result.stdout.splitlines()[1:]


def check_database(data_dir: Path) -> list[tuple[int, int, int, bool]]:
    """PRAGMA integrity_check is ok and no snapshot is half stored; returns (id, users, admins, complete).

    Every snapshot's stored user rows equal its recorded count and what its provenance received,
    its raw pages equal the pages its provenance lists, and a complete one received all it expected.
    """
    db = sqlite3.connect(f"file:{data_dir / 'auditor.db'}?mode=ro", uri=True)
    try:
        assert db.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        rows = db.execute(
            "SELECT id, user_count, admin_count, complete, provenance FROM snapshots ORDER BY id"
        ).fetchall()
        found = []
        for snapshot_id, user_count, admin_count, complete, provenance_text in rows:
            provenance = json.loads(provenance_text)
            key = (snapshot_id,)
            stored = db.execute("SELECT COUNT(*) FROM snapshot_users WHERE snapshot_id = ?", key).fetchone()[0]
            pages = db.execute("SELECT COUNT(*) FROM raw_pages WHERE snapshot_id = ?", key).fetchone()[0]
            assert stored == user_count, f"snapshot {snapshot_id}: {stored} user rows, {user_count} recorded"
            assert pages == len(provenance["page_digests"]), f"snapshot {snapshot_id}: half its raw pages"
            assert bool(complete) == provenance["complete"]
            # /user and the service-user list may both return a user: stored is their union by id.
            assert 0 < stored <= provenance["received"], f"snapshot {snapshot_id}: users do not match provenance"
            if complete:
                assert provenance["received"] == provenance["expected_total"], f"snapshot {snapshot_id} is short"
            found.append((snapshot_id, user_count, admin_count, bool(complete)))
        return found
    finally:
        db.close()


def wait_for_requests(server: Any, path: str, *, timeout: float = 60.0) -> None:
    """Block until the sandbox has answered a request for ``path`` (a pull is under way)."""
    deadline = time.monotonic() + timeout
    while not any(request.path == path for request in server.requests):
        assert time.monotonic() < deadline, f"no request for {path} within {timeout} s"
        time.sleep(0.05)
