"""Issue 22.11: nothing lost by ordinary use, as a new user would try things.

- ``auditor demo --output DIR`` removes only what an earlier demo wrote (its marker file lists it)
  and refuses when the folders it writes into hold anything else;
- ``auditor run`` with a typo pulls nothing: arguments and configuration are checked first;
- every directory the tool creates is private (0700) from the very first command;
- advice follows the actual state, and every advised command parses.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from support import AuditorHome, DemoRun, connect_to

from auditor.cli import build_parser
from auditor.demo import MARKER, prepare_output_dir
from auditor.errors import ExitCode
from auditor.sandbox import SandboxServer


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@contextmanager
def umask(value: int) -> Iterator[None]:
    old = os.umask(value)
    try:
        yield
    finally:
        os.umask(old)


def tree(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


# --- the demo never deletes what it did not write --------------------------------------------


@pytest.mark.slow
def test_demo_removes_only_what_it_wrote(
    home: AuditorHome, tmp_path: Path, demo_run: DemoRun, stub_pdf: list[object]
) -> None:
    # The re-runs below write a stand-in PDF (the demo's real one is demo_run's, checked by the
    # report tests): what is checked here is which files a re-run keeps, removes or refuses.
    assert demo_run.result.returncode == 0, demo_run.result.stderr[-3000:]
    out = demo_run.copy_to(tmp_path / "demo")  # a first demo's output
    marker = json.loads((out / MARKER).read_text())
    assert "evidence" in {Path(p).parts[0] for p in marker["files"]}
    assert all((out / p).exists() for p in marker["files"] if not p.startswith("data/"))

    # A user's own files, in the folders the demo writes into and beside them.
    mine = {
        out / "reports" / "my-notes.txt": b"review notes",
        out / "evidence" / "sent-to-auditor.zip": b"PK keep me",
        out / "data" / "backup.db": b"precious",
        out / "README.txt": b"beside the demo folders",
    }
    for path, data in mine.items():
        path.write_bytes(data)
    before = tree(out)
    refused = home.run("demo", "--output", str(out), timeout=600)
    assert refused.returncode == ExitCode.USAGE, refused.stderr[-3000:]
    assert "did not write" in refused.stderr and "reports/my-notes.txt" in refused.stderr
    assert "Traceback" not in refused.stderr
    assert tree(out) == before, "the refused demo removed or changed files"

    # Without the foreign files in its folders, a re-run into its own output works (make demo twice)
    # and the file beside the folders survives it.
    for path in mine:
        if path.name != "README.txt":
            path.unlink()
    again = home.run("demo", "--output", str(out), timeout=600)
    assert again.returncode == 0, again.stderr[-3000:]
    assert "verification passed" in again.stderr
    assert (out / "README.txt").read_bytes() == b"beside the demo folders"
    assert len(list((out / "evidence").glob("*.zip"))) == 5
    assert stub_pdf, "the re-run rendered no PDF report"
    for folder in ("data", "keys", "reports", "evidence"):
        assert mode(out / folder) == 0o700, folder

    # An output directory from a demo before the marker file (make demo on an old checkout) is
    # recognised by its file names and emptied for the new run, as long as it holds nothing else
    # (what the demo then writes into an emptied directory is what the runs above proved).
    (out / MARKER).unlink()
    foreign = out / "evidence" / "certcentral-evidence-other-corp-2026-11-01-s1.zip"
    foreign.write_bytes(b"PK someone else's")
    refused = home.run("demo", "--output", str(out), timeout=600)
    assert refused.returncode == ExitCode.USAGE and "other-corp" in refused.stderr, refused.stderr
    foreign.unlink()
    prepare_output_dir(out)
    assert tree(out) == {MARKER: (out / MARKER).read_bytes(), "README.txt": b"beside the demo folders"}


def test_demo_refuses_a_directory_it_never_wrote(home: AuditorHome, tmp_path: Path) -> None:
    out = tmp_path / "project"
    (out / "reports").mkdir(parents=True)
    (out / "reports" / "q3-review.pdf").write_bytes(b"%PDF the real one")
    (out / "keys").mkdir()
    (out / "keys" / "id_ed25519").write_bytes(b"not the demo's")
    before = tree(out)
    result = home.run("demo", "--output", str(out))
    assert result.returncode == ExitCode.USAGE, result.stderr
    assert "did not write" in result.stderr and "--output" in result.stderr
    assert tree(out) == before
    assert not (out / MARKER).exists() and not (out / "data").exists()


def test_demo_marker_cannot_point_outside_its_folders(home: AuditorHome, tmp_path: Path) -> None:
    out = tmp_path / "demo"
    out.mkdir()
    victim = tmp_path / "victim.txt"
    victim.write_text("keep")
    (out / "notes.txt").write_text("keep too")
    (out / MARKER).write_text(json.dumps({
        "format": "certcentral-auditor-demo-output/1",
        "files": [str(victim), "../victim.txt", "notes.txt", "data/../../victim.txt"],
        "directories": [],
    }))
    # The demo itself would run now; checking the clean-up alone keeps this test fast.
    from auditor.demo import prepare_output_dir

    prepare_output_dir(out)
    assert victim.read_text() == "keep" and (out / "notes.txt").read_text() == "keep too"


# --- run checks everything before it pulls ---------------------------------------------------


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (("run", "--framework", "nist"), ("nist", "nist-800-53-moderate", "pci-dss-4")),
        (("run", "--format", "html,docx"), ("docx", "html")),
        (("run", "--templates", "/nonexistent/templates"), ("/nonexistent/templates", "--templates")),
        (("run", "--pdf-roster-limit", "-1"), ("--pdf-roster-limit",)),
        (("run", "--snapshot", "1"), ("--snapshot", "auditor report --snapshot 1")),
        (("--config", "BAD", "run"), ("max_admin",)),
        (("run", "--connection", "prod"), ("prod", "auditor connect --connection prod")),
    ],
    ids=["framework-typo", "format", "templates", "roster-limit", "snapshot", "config", "connection"],
)
def test_run_with_a_bad_argument_pulls_nothing(
    args: tuple[str, ...], words: tuple[str, ...], home: AuditorHome, sandbox: SandboxServer, tmp_path: Path
) -> None:
    connect_to(home, sandbox.base_url)
    config = tmp_path / "bad.toml"
    config.write_text("[rules]\nmax_admin = 3\n")
    args = tuple(str(config) if arg == "BAD" else arg for arg in args)
    sandbox.clear_requests()
    result = home.run(*args, "--output", str(tmp_path / "out"))
    assert result.returncode == ExitCode.USAGE, result.stderr
    assert "Traceback" not in result.stderr
    for word in words:
        assert word in result.stderr, f"{word!r} not in {result.stderr}"
    assert not sandbox.requests, "run talked to CertCentral before checking its arguments"
    assert "No snapshots yet" in home.run("snapshots").stderr
    assert not (tmp_path / "out").exists()


# --- directories are private from the first command ------------------------------------------


def test_first_command_creates_private_directories(tmp_path: Path, sandbox: SandboxServer) -> None:
    home = AuditorHome(data_dir=tmp_path / "deep" / "er" / "home", key_file=tmp_path / "cfg" / "sub" / "master.key")

    def run(*args: str, stdin: str | None = None) -> None:
        result = home.run(*args, stdin=stdin, cwd=tmp_path)
        assert result.returncode == 0, (args, result.stderr)

    with umask(0o022):
        pulled = home.run("pull", cwd=tmp_path)  # before any connect: fails, but created the data directory
        assert pulled.returncode == ExitCode.USAGE, pulled.stderr
        for path in (tmp_path / "deep", tmp_path / "deep" / "er", home.data_dir, home.data_dir / "locks"):
            assert mode(path) == 0o700, (path, oct(mode(path)))
        run("connect", "--base-url", sandbox.base_url, "--key-stdin", stdin="sandbox-admin-key\n")
        assert mode(home.key_file.parent) == 0o700 and mode(home.key_file.parent.parent) == 0o700
        run("run", "--format", "html", "--output", str(tmp_path / "out" / "monthly"))
        assert mode(tmp_path / "out") == 0o700 and mode(tmp_path / "out" / "monthly") == 0o700
        run("report", "--format", "html", "--output", str(tmp_path / "reports"))
        assert mode(tmp_path / "reports") == 0o700
        existing = tmp_path / "shared"
        existing.mkdir()
        existing.chmod(0o755)
        run("report", "--format", "html", "--output", str(existing))
        assert mode(existing) == 0o755, "an existing directory's mode is the owner's choice"


# --- advice follows the state, and every advised command exists ------------------------------


def advised_commands(stderr: str) -> list[list[str]]:
    return [shlex.split(found)[1:] for found in re.findall(r"`(auditor [^`]+)`", stderr)]


def assert_advice_parses(stderr: str) -> None:
    commands = advised_commands(stderr)
    assert commands, f"no command advised in: {stderr}"
    parser = build_parser()
    for argv in commands:
        argv = [arg.replace("ID", "1").replace("NAME", "prod") for arg in argv]
        try:
            parser.parse_args(argv)
        except SystemExit:  # pragma: no cover - the assertion below names the command
            pytest.fail(f"advised command does not parse: auditor {' '.join(argv)}")


def test_advice_follows_the_state(home: AuditorHome, sandbox: SandboxServer) -> None:
    for command in (("report", "--format", "html"), ("findings",), ("diff",), ("history", "a@example.com")):
        result = home.run(*command)
        assert result.returncode == ExitCode.USAGE, result.stderr
        assert "auditor connect --connection default" in result.stderr, (command, result.stderr)
        assert "auditor pull" not in result.stderr, (command, result.stderr)
        assert_advice_parses(result.stderr)
    connect_to(home, sandbox.base_url)
    for command in (("report", "--format", "html"), ("findings",), ("diff",), ("history", "a@example.com")):
        result = home.run(*command)
        assert result.returncode == ExitCode.USAGE, result.stderr
        assert "auditor pull --connection default" in result.stderr, (command, result.stderr)
        assert_advice_parses(result.stderr)
    other = home.run("findings", "--connection", "prod")
    assert "Known connections: default" in other.stderr
    assert_advice_parses(other.stderr)
