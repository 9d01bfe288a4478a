"""Issue 22.9: local input fails clearly, and output never replaces what is not a regular file.

Configuration and exceptions files are read only when they are regular files of at most 1 MB;
a FIFO or a device is refused at once (the old code blocked forever on a FIFO and read
``/dev/zero`` until memory ran out); nesting and syntax errors name the file and the line (exit 2,
never the internal-error exit 70). ``--output`` naming a device, FIFO or symlink to one is
written in place; ``-`` is stdout. No test here writes to ``/dev/null`` by name: a regression
would rename a file over the machine's ``/dev/null`` (as root), so a symlink to it and a FIFO
stand in for it.
"""

from __future__ import annotations

import os
import select
import stat
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from support import AuditorHome, connect_to

from auditor.atomic import NotARegularFileError, write_bytes_atomic, write_output
from auditor.errors import ExitCode
from auditor.sandbox import Dataset, Faults, SandboxServer

DEPTH = 100_000


def assert_clean_usage_error(result: subprocess.CompletedProcess[str], *words: str) -> None:
    assert result.returncode == ExitCode.USAGE, (result.returncode, result.stderr)
    assert "Traceback" not in result.stderr and "Internal error" not in result.stderr, result.stderr
    for word in words:
        assert word in result.stderr, f"{word!r} not in: {result.stderr}"


# --- files that are not regular, or too big ------------------------------------------------


@pytest.mark.timeout(60)  # a hang (blocked on the FIFO) fails the test instead of waiting for ever
@pytest.mark.parametrize("kind", ["dev-zero", "fifo-config", "fifo-found-in-cwd", "fifo-exceptions", "directory"])
def test_config_that_is_not_a_regular_file_is_refused_at_once(kind: str, home: AuditorHome, tmp_path: Path) -> None:
    workdir = home.data_dir.parent
    args: tuple[str, ...] = ()
    if kind == "dev-zero":
        args = ("--config", "/dev/zero")
        named = "/dev/zero"
    elif kind == "fifo-config":
        os.mkfifo(tmp_path / "auditor-fifo.toml")
        args = ("--config", str(tmp_path / "auditor-fifo.toml"))
        named = "auditor-fifo.toml"
    elif kind == "fifo-found-in-cwd":
        os.mkfifo(workdir / "auditor.toml")  # found by the search, not named
        named = "auditor.toml"
    elif kind == "fifo-exceptions":
        os.mkfifo(tmp_path / "exceptions.toml")
        (tmp_path / "auditor.toml").write_text('exceptions_file = "exceptions.toml"\n')
        args = ("--config", str(tmp_path / "auditor.toml"))
        named = "exceptions.toml"
    else:
        (tmp_path / "dir.toml").mkdir()
        args = ("--config", str(tmp_path / "dir.toml"))
        named = "dir.toml"
    for command in (("findings",), ("report", "--format", "html"), ("run", "--format", "html")):
        result = home.run(*args, *command)  # the old code never returned for a FIFO: the timeout mark
        assert_clean_usage_error(result, named, "not a regular file")


def test_config_larger_than_a_megabyte_is_refused(home: AuditorHome, tmp_path: Path) -> None:
    big = tmp_path / "auditor.toml"
    big.write_text('profiles = ["soc2"]\n' + "# padding\n" * 120_000)
    assert big.stat().st_size > 1024 * 1024
    assert_clean_usage_error(home.run("--config", str(big), "findings"), "auditor.toml", "1,048,576 bytes")


# --- nesting and syntax errors name the file and the line ----------------------------------


NESTED = {
    "arrays": "profiles = " + "[" * DEPTH + "]" * DEPTH,
    "inline-tables": "rules = " + "{a = " * DEPTH + "1" + "}" * DEPTH,
    "arrays-unclosed": "profiles = " + "[" * DEPTH,
}


@pytest.mark.parametrize("shape", list(NESTED))
def test_deep_nesting_in_auditor_toml_is_a_located_error(shape: str, home: AuditorHome, tmp_path: Path) -> None:
    config = tmp_path / "auditor.toml"
    config.write_text('# a comment with [[[ brackets\nreason = "[[[[ in a string"\n' + NESTED[shape] + "\n")
    result = home.run("--config", str(config), "findings")
    assert_clean_usage_error(result, f"{config}:3", "nested")


def test_deep_nesting_in_the_exceptions_file_is_a_located_error(home: AuditorHome, tmp_path: Path) -> None:
    (tmp_path / "auditor.toml").write_text('exceptions_file = "exceptions.toml"\n')
    (tmp_path / "exceptions.toml").write_text("[[exception]]\nrule = " + "[" * DEPTH + "]" * DEPTH + "\n")
    result = home.run("--config", str(tmp_path / "auditor.toml"), "findings")
    assert_clean_usage_error(result, f"{tmp_path / 'exceptions.toml'}:2", "nested")


def test_valid_files_with_brackets_in_strings_still_load(home: AuditorHome, tmp_path: Path) -> None:
    """The nesting scan skips strings and comments: a reason full of brackets is fine."""
    (tmp_path / "auditor.toml").write_text(
        '# [[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[\n'
        'profiles = ["soc2"] # ]]]]\nexceptions_file = "exceptions.toml"\n'
    )
    brackets = "[" * 80
    (tmp_path / "exceptions.toml").write_text(
        '[[exception]]\nrule = "stale-login"\nuser = "a@example.com"\n'
        f'reason = "{brackets} \\" {brackets}"\nowner = """multi\n{brackets}\nline"""\n'
        'approved_by = "Security Lead <lead@example.com>"\napproved_on = 2026-10-01\nexpires = 2027-01-31\n'
    )
    result = home.run("--config", str(tmp_path / "auditor.toml"), "findings")
    # Past the configuration: the next complaint is about the (missing) connection, not the files.
    assert result.returncode == ExitCode.USAGE and "connection" in result.stderr, result.stderr
    assert "toml" not in result.stderr and "nested" not in result.stderr, result.stderr


def test_toml_syntax_error_names_file_and_line(home: AuditorHome, tmp_path: Path) -> None:
    config = tmp_path / "auditor.toml"
    config.write_text('profiles = ["soc2"]\n\n[thresholds]\ninactive_user_days = = 3\n')
    assert_clean_usage_error(home.run("--config", str(config), "findings"), f"{config}:4", "not valid TOML")


# --- --output that is not a regular file ---------------------------------------------------


@pytest.fixture(scope="module")
def pulled_twice(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AuditorHome]:
    root = tmp_path_factory.mktemp("output-targets")
    home = AuditorHome(data_dir=root / "home", key_file=root / "config" / "master.key")
    with SandboxServer(Dataset.generate(30, seed=5), faults=Faults(rate_limits=())) as server:
        connect_to(home, server.base_url)
        assert home.run("pull").returncode == 0
        server.set_dataset(Dataset.generate(31, seed=6))
        assert home.run("pull").returncode == 0
    yield home


class FifoReader(threading.Thread):
    """Reads a FIFO until its writer closes it (or a deadline), without ever blocking the test."""

    def __init__(self, path: Path, deadline: float = 60.0) -> None:
        super().__init__(daemon=True)
        self.path = path
        self.deadline = time.monotonic() + deadline
        self.data = b""
        self.fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)  # a writer may open it from now on

    def run(self) -> None:
        seen = False
        try:
            while time.monotonic() < self.deadline:
                ready, _, _ = select.select([self.fd], [], [], 0.1)
                if not ready:
                    continue
                chunk = os.read(self.fd, 65536)
                if chunk:
                    self.data += chunk
                    seen = True
                elif seen:
                    return  # the writer closed it
                else:
                    time.sleep(0.05)  # no writer yet
        finally:
            os.close(self.fd)


def test_diff_output_to_dev_null_fifo_and_stdout(pulled_twice: AuditorHome, tmp_path: Path) -> None:
    home = pulled_twice
    expected = home.run("diff", "--format", "csv")
    assert expected.returncode == 0 and expected.stdout.count("\n") > 1, expected.stderr

    null_before = Path("/dev/null").stat()
    link = tmp_path / "to-dev-null"
    link.symlink_to("/dev/null")
    result = home.run("diff", "--format", "csv", "--output", str(link))
    assert result.returncode == 0, result.stderr
    assert link.is_symlink() and str(link.readlink()) == "/dev/null", "the symlink was replaced by a file"
    null_after = Path("/dev/null").stat()
    assert stat.S_ISCHR(null_after.st_mode) and null_after.st_rdev == null_before.st_rdev
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")], "a temporary file was left"

    fifo = tmp_path / "changes.fifo"
    os.mkfifo(fifo)
    reader = FifoReader(fifo)
    reader.start()
    result = home.run("diff", "--format", "csv", "--output", str(fifo), timeout=60)
    reader.join(timeout=60)
    assert result.returncode == 0, result.stderr
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode), "the FIFO was replaced by a regular file"
    assert reader.data.decode().splitlines() == expected.stdout.splitlines(), "the reader did not get the data"

    # /dev/stdout by another name (a symlink in tmp: a regression must not replace the real one).
    stdout_link = tmp_path / "stdout"
    stdout_link.symlink_to("/proc/self/fd/1")
    # (A subprocess: the process's own fd 1 is the point, and in-process it would be pytest's.)
    through = home.run("diff", "--format", "csv", "--output", str(stdout_link), subprocess=True)
    assert through.returncode == 0, through.stderr
    assert through.stdout.splitlines() == expected.stdout.splitlines()
    assert stdout_link.is_symlink()

    # A FIFO nobody reads: a clear error at once, never a hang.
    unread = tmp_path / "unread.fifo"
    os.mkfifo(unread)
    result = home.run("diff", "--format", "csv", "--output", str(unread), timeout=30)
    assert result.returncode == ExitCode.LOCAL_DATA and "no process is reading" in result.stderr, result.stderr
    assert stat.S_ISFIFO(os.lstat(unread).st_mode)

    dash = home.run("diff", "--format", "csv", "--output", "-")
    assert dash.returncode == 0 and dash.stdout == expected.stdout
    assert not Path(home.data_dir.parent / "-").exists()

    # A regular file is still replaced atomically, and a symlink to one keeps being a symlink.
    target = tmp_path / "changes.csv"
    target.write_text("old\n")
    alias = tmp_path / "alias.csv"
    alias.symlink_to(target)
    assert home.run("diff", "--format", "csv", "--output", str(alias)).returncode == 0
    assert alias.is_symlink() and target.read_text().splitlines() == expected.stdout.splitlines()


def test_atomic_write_never_replaces_a_special_file(tmp_path: Path) -> None:
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    with pytest.raises(NotARegularFileError):
        write_bytes_atomic(fifo, b"data")
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode)
    link = tmp_path / "null"
    link.symlink_to("/dev/null")
    with pytest.raises(NotARegularFileError):
        write_bytes_atomic(link, b"data")
    write_output(link, b"discarded")  # written in place: the device swallows it
    assert link.is_symlink() and stat.S_ISCHR(Path("/dev/null").stat().st_mode)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["null", "pipe"], "a temporary file was left"
