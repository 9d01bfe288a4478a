"""Test helpers: an isolated auditor installation and its CLI, in-process or in a real subprocess.

:meth:`AuditorHome.run` calls ``auditor.cli.main`` in this process by default (no interpreter start,
no re-import: the suite's main cost when every CLI test started a subprocess). It gives the command
its own copy of the environment (``os.environ`` is swapped for the call, so what the tool reads
from the process environment, e.g. ``LOGNAME`` or ``SSL_CERT_FILE``, is the test's), its own working
directory and string streams, and returns the ``CompletedProcess`` a subprocess would. Where the
process is the point (secrets in a child's environment, signals and kills, crashes mid-write,
processes racing, ``python -m auditor`` itself) a test says so by name: ``run(..., subprocess=True)``
or :meth:`AuditorHome.start`.
"""

from __future__ import annotations

import contextlib
import http.client
import io
import json
import os
import shutil
import sqlite3
import subprocess as _subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

TESTS = Path(__file__).resolve().parent  #: tests/ (helpers, js/), wherever a test file sits below it
REPO = TESTS.parent
#: Debian's chromium (playwright drives it; no browser download) and how tests start it.
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
#: The OS account commands run as where a test checks who ran them: getpass reads LOGNAME first.
AS_OPERATOR = {"LOGNAME": "audit-operator", "USER": "audit-operator"}


@dataclass
class AuditorHome:
    """An isolated installation: data directory and master key file under tmp_path."""

    data_dir: Path
    key_file: Path
    #: In-process commands wait this long for a held pull or export lock (an
    #: ``auditor.store.LockTimeouts``; None: the production waits). Set by conftest's ``lock_wait``.
    lock_timeouts: Any = None

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

    def start(self, *args: str, extra_env: Mapping[str, str] | None = None) -> _subprocess.Popen[str]:
        """Start the real ``auditor`` CLI in the background (to race, interrupt or kill it)."""
        return _subprocess.Popen(
            [sys.executable, "-m", "auditor", *args],
            env={**self.env, **(extra_env or {})},
            cwd=self.data_dir.parent,
            stdout=_subprocess.PIPE,
            stderr=_subprocess.PIPE,
            text=True,
        )

    def run(
        self,
        *args: str,
        stdin: str | None = None,
        extra_env: Mapping[str, str] | None = None,
        cwd: Path | None = None,
        timeout: float = 120,
        subprocess: bool = False,
    ) -> _subprocess.CompletedProcess[str]:
        """Run the ``auditor`` CLI as a user's shell would: in-process, or with ``subprocess=True``
        as a real ``python -m auditor`` child (``timeout`` applies to the child only)."""
        env = {**self.env, **(extra_env or {})}
        workdir = cwd or self.data_dir.parent
        if subprocess:
            return _subprocess.run(
                [sys.executable, "-m", "auditor", *args],
                input=stdin if stdin is not None else "",
                capture_output=True,
                text=True,
                env=env,
                cwd=workdir,
                timeout=timeout,
                check=False,
            )
        options = {} if self.lock_timeouts is None else {"lock_timeouts": self.lock_timeouts}
        return run_in_process(list(args), environ=env, cwd=workdir, stdin=stdin, **options)


class _ThisThread(io.TextIOBase):
    """Writes from the calling thread go to ``mine``, from any other thread to ``others``."""

    def __init__(self, mine: io.StringIO, others: Any) -> None:
        self._mine, self._others, self._thread = mine, others, threading.current_thread()

    def _target(self) -> Any:
        return self._mine if threading.current_thread() is self._thread else self._others

    def write(self, text: str) -> int:
        return int(self._target().write(text))

    def flush(self) -> None:
        self._target().flush()

    def isatty(self) -> bool:
        return False


def run_in_process(
    argv: list[str],
    *,
    environ: Mapping[str, str],
    cwd: Path,
    stdin: str | None = None,
    **main_options: Any,
) -> _subprocess.CompletedProcess[str]:
    """``auditor.cli.main(argv)`` in this process with ``environ`` as the whole process environment
    and ``cwd`` as the working directory for the call (both restored after), stdin/stdout/stderr as
    strings; extra keywords (``workspace``, ``lock_timeouts``) go to ``main``. Returns what ``subprocess.run`` would."""
    from auditor.cli import main

    out, err = io.StringIO(), io.StringIO()
    saved_env = dict(os.environ)
    saved_cwd = Path.cwd()
    os.environ.clear()
    os.environ.update(environ)
    try:
        os.chdir(cwd)
        # argparse writes usage errors, --help and --version to sys.stdout/sys.stderr itself; what
        # other threads print there (a sandbox thread's traceback) is not the command's output.
        with contextlib.redirect_stdout(_ThisThread(out, sys.stdout)), \
                contextlib.redirect_stderr(_ThisThread(err, sys.stderr)):
            code = main(
                argv, stdout=out, stderr=err, stdin=io.StringIO(stdin or ""), environ=os.environ, cwd=cwd,
                **main_options,
            )
    finally:
        os.chdir(saved_cwd)
        os.environ.clear()
        os.environ.update(saved_env)
    return _subprocess.CompletedProcess(["auditor", *argv], code, out.getvalue(), err.getvalue())


@dataclass(frozen=True)
class DemoRun:
    """One ``auditor demo --output DIR`` run: what it printed and the directory it wrote."""

    output: Path
    result: _subprocess.CompletedProcess[str]
    #: How it ran: the README's command (``make demo``) or ``auditor demo (in-process)``.
    command: str

    def copy_to(self, target: Path) -> Path:
        """A copy of the output to change (timestamps kept), at ``target``."""
        shutil.copytree(self.output, target, symlinks=True)
        return target


@dataclass(frozen=True)
class SharedArtefacts:
    """Read-only artefacts built once per test session and shared by its xdist workers (a
    rendered report, a signed PDF, the demo's output): the first worker to ask builds one under a
    file lock, the others wait for it and read the same directory. A test that changes an
    artefact works on a copy. Built per worker, a module's fixture runs again on every worker
    that takes one of its tests (work stealing spreads a module over several)."""

    #: The session's directory (shared by its workers, not by other sessions).
    root: Path

    def directory(self, name: str, build: Callable[[Path], None]) -> Path:
        """``root/shared-NAME``, made by ``build(directory)`` unless a worker already did. A build
        that raises leaves no artefact: the next worker to ask builds it again from an empty directory."""
        import filelock

        directory = self.root / f"shared-{name}"
        done = directory / ".built"
        with filelock.FileLock(str(self.root / f"shared-{name}.lock")):
            if not done.exists():
                shutil.rmtree(directory, ignore_errors=True)
                directory.mkdir()
                build(directory)
                done.touch()
        return directory

    def file(self, name: str, build: Callable[[], bytes | str]) -> Path:
        """One file, ``root/shared-NAME/NAME``, holding what ``build()`` returns (text as UTF-8)."""

        def write(directory: Path) -> None:
            content = build()
            (directory / name).write_bytes(content.encode("utf-8") if isinstance(content, str) else content)

        return self.directory(name, write) / name


#: Where the README's demo command writes (the Makefile's ``--output``).
DEMO_OUTPUT = "demo-output"


def readme_setup_commands() -> list[str]:
    """The commands of the README's first code block (the set-up commands)."""
    import re

    block = re.search(r"```sh\n(.*?)```", (REPO / "README.md").read_text(encoding="utf-8"), re.DOTALL)
    assert block, "README has no sh code block"
    return [line.split("#", 1)[0].strip() for line in block.group(1).splitlines() if line.strip()]


def readme_demo_command() -> str:
    return readme_setup_commands()[0]


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
            members = db.execute("SELECT count FROM snapshot_members WHERE snapshot_id = ?", key).fetchone()
            stored = members[0] if members else 0
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


@contextlib.contextmanager
def lock_held_by_another_process(data_dir: Path, connection: str = "default") -> Iterator[_subprocess.Popen[str]]:
    """Another process (a real one: the lock is an OS-level file lock) holds ``connection``'s pull
    lock until the block ends, as a running ``auditor pull`` would; yields it (to kill it, say)."""
    holder = _subprocess.Popen(
        [sys.executable, "-c",
         "import sys; from pathlib import Path; from auditor.store import pull_lock\n"
         "with pull_lock(Path(sys.argv[1]), sys.argv[2]):\n"
         "    print('held', flush=True); sys.stdin.read()",
         str(data_dir), connection],
        stdin=_subprocess.PIPE, stdout=_subprocess.PIPE, text=True, env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "held\n", "the lock holder did not start"
        yield holder
    finally:
        for stream in (holder.stdin, holder.stdout):
            if stream is not None:
                with contextlib.suppress(OSError):
                    stream.close()
        holder.wait(timeout=30)


class Clock:
    """A clock the test moves: ``clock.now = ...``; calling it returns ``now``."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@dataclass
class ClockedCli:
    """The CLI in-process over one data directory under ``tmp``, its workspace (and so its clock,
    which the test moves) injected: a re-run "a year later" needs no waiting."""

    tmp: Path
    clock: Clock
    config: Path | None = None

    @property
    def workspace(self) -> Any:
        from auditor.pipeline import Workspace

        return Workspace(data_dir=self.tmp / "data", master_key_file=self.tmp / "keys" / "master.key",
                         clock=self.clock, config_path=self.config)

    def run(self, *argv: str, stdin: str = "") -> tuple[int, str, str]:
        from auditor.cli import main

        out, err = io.StringIO(), io.StringIO()
        code = main(list(argv), stdout=out, stderr=err, stdin=io.StringIO(stdin), workspace=self.workspace)
        return code, out.getvalue(), err.getvalue()

    def ok(self, *argv: str, stdin: str = "") -> str:
        code, out, err = self.run(*argv, stdin=stdin)
        assert code == 0, err
        return out

    def fails(self, *argv: str) -> str:
        code, _out, err = self.run(*argv)
        assert code != 0, err
        return err

    def connect(self, base_url: str, key: str = "sandbox-view-only-key") -> None:
        self.ok("connect", "--base-url", base_url, "--key-stdin", stdin=key + "\n")

    def pull(self, at: datetime) -> None:
        self.clock.now = at
        self.ok("pull")

    def findings(self, *extra: str) -> Any:
        return json.loads(self.ok("findings", "--format", "json", *extra))


@dataclass
class Before:
    """A data directory that already holds two complete pulls, with its snapshot table and diff then."""

    home: AuditorHome
    snapshots: list[str]
    diff: str

    @classmethod
    def pulled_twice(cls, root: Path, base_url: str, *, page_size: int) -> Before:
        """Connect to ``base_url`` and pull twice, in a new data directory under ``root``."""
        home = AuditorHome(data_dir=root / "home", key_file=root / "config" / "master.key")
        connect_to(home, base_url)
        for _ in range(2):
            result = home.run("pull", "--page-size", str(page_size))
            assert result.returncode == 0, result.stderr
        diff = home.run("diff", "--format", "json")
        assert diff.returncode == 0, diff.stderr
        return cls(home=home, snapshots=snapshot_table(home), diff=diff.stdout)

    def copy_to(self, root: Path) -> Before:
        """A copy of the data directory and master key under ``root``, for one test to change."""
        shutil.copytree(self.home.data_dir, root / "home")
        shutil.copytree(self.home.key_file.parent, root / "config")
        home = AuditorHome(data_dir=root / "home", key_file=root / "config" / "master.key")
        return Before(home=home, snapshots=self.snapshots, diff=self.diff)

    def assert_nothing_stored(self) -> None:
        """A failed pull left no snapshot, and the earlier ones (and their diff) are unchanged."""
        assert snapshot_table(self.home) == self.snapshots
        diff = self.home.run("diff", "--format", "json")
        assert diff.returncode == 0, diff.stderr
        assert diff.stdout == self.diff
        check_database(self.home.data_dir)


def with_new_admin(dataset: Any, *, email: str = "mallory@example.com", user_id: int = 9_100_001) -> Any:
    """A sandbox ``Dataset`` with one more Administrator: a copy of its first one under a new id and address."""
    import dataclasses

    admin = next(u for u in dataset.users if any(r["id"] == 1 for r in u["access_roles"]))
    new = {**admin, "id": user_id, "username": email, "email": email, "first_name": "Mallory", "last_name": "New"}
    return dataclasses.replace(dataset, users=(*dataset.users, new))
