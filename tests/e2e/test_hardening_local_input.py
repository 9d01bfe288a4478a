"""Issue 8.7: bad local input. Damaged or foreign databases, bad configuration and exceptions files,
an output directory the tool may not write, a full disk: a clear error, the contract's exit code
(2 configuration, 6 local data), no traceback, and nothing that was stored is lost or changed.

Runs as root here, so "may not write" is made real by running the CLI without the capabilities
that let root ignore permissions; a full disk is ``RLIMIT_FSIZE`` in the CLI's process (tmpfs mounts need
privileges CI may not have).
"""

from __future__ import annotations

import ctypes
import hashlib
import os
import resource
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from support import AuditorHome, check_database, connect_to, snapshot_table

from auditor.errors import ExitCode
from auditor.sandbox import Dataset, Faults, SandboxServer
from auditor.store import SCHEMA_VERSION

PR_CAPBSET_DROP = 24


@pytest.fixture(scope="module")
def sandbox_module() -> Iterator[SandboxServer]:
    with SandboxServer(Dataset.generate(300, seed=2), faults=Faults(rate_limits=())) as server:
        yield server


@dataclass
class Prepared:
    home: AuditorHome
    snapshots: list[str]
    bundle: Path  # the first evidence bundle (sequence 0) exported from the template


@pytest.fixture(scope="module")
def template(sandbox_module: SandboxServer) -> Iterator[Prepared]:
    root = Path(tempfile.mkdtemp(prefix="auditor-local-input-"))
    root.chmod(0o755)
    home = AuditorHome(data_dir=root / "home", key_file=root / "config" / "master.key")
    connect_to(home, sandbox_module.base_url)
    for _ in range(2):
        assert home.run("pull", "--page-size", "100").returncode == 0
    bundle = root / "first.zip"
    assert home.run("export", "--no-reports", "--output", str(bundle)).returncode == 0
    yield Prepared(home=home, snapshots=snapshot_table(home), bundle=bundle)
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def prepared(template: Prepared) -> Iterator[Prepared]:
    root = Path(tempfile.mkdtemp(prefix="auditor-local-input-"))
    root.chmod(0o755)
    shutil.copytree(template.home.data_dir, root / "home")
    shutil.copytree(template.home.key_file.parent, root / "config")
    shutil.copy2(template.bundle, root / "first.zip")
    home = AuditorHome(data_dir=root / "home", key_file=root / "config" / "master.key")
    yield Prepared(home=home, snapshots=template.snapshots, bundle=root / "first.zip")
    shutil.rmtree(root, ignore_errors=True)


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def db_path(home: AuditorHome) -> Path:
    return home.data_dir / "auditor.db"


def assert_clean_failure(result: subprocess.CompletedProcess[str], code: int, *words: str) -> None:
    assert result.returncode == code, result.stderr
    assert "Traceback" not in result.stderr and "Internal error" not in result.stderr, result.stderr
    for word in words:
        assert word in result.stderr, f"{word!r} not in: {result.stderr}"


def assert_nothing_lost(prepared: Prepared) -> None:
    assert snapshot_table(prepared.home) == prepared.snapshots
    check_database(prepared.home.data_dir)
    assert prepared.home.run("diff").returncode == 0


# --- damaged and foreign databases -----------------------------------------------------------


def overwrite_pages(path: Path) -> None:
    data = bytearray(path.read_bytes())
    page = int.from_bytes(data[16:18], "big") or 65536
    for start in range(page, min(len(data), page * 6), page):  # pages 2-6: b-tree roots and interiors
        data[start : start + page] = os.urandom(page)
    path.write_bytes(bytes(data))


def truncate_half(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def not_a_database(path: Path) -> None:
    path.write_bytes(b"PK\x03\x04 this is a zip file someone renamed " + os.urandom(5000))


def newer_schema(path: Path) -> None:
    db = sqlite3.connect(path)
    db.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    db.close()


DAMAGE: dict[str, tuple[Callable[[Path], None], tuple[str, ...]]] = {
    "corrupt-pages": (overwrite_pages, ("damaged", "Restore")),
    "truncated": (truncate_half, ("damaged", "Restore")),
    "not-a-database": (not_a_database, ("damaged", "not an auditor database")),
    "newer-schema": (newer_schema, ("newer version", "Upgrade")),
}
COMMANDS: tuple[tuple[str, ...], ...] = (
    ("snapshots",),
    ("pull",),
    ("diff",),
    ("findings",),
    ("connections",),
    ("report", "--format", "html"),
    ("export", "--no-reports", "--output", "new.zip"),
    ("run", "--format", "html"),
)


@pytest.mark.parametrize("damage", list(DAMAGE))
def test_damaged_database_is_refused_and_left_untouched(damage: str, prepared: Prepared) -> None:
    home = prepared.home
    path = db_path(home)
    assert not Path(f"{path}-wal").exists(), "the template must be fully checkpointed"
    damage_fn, words = DAMAGE[damage]
    damage_fn(path)
    before = digest(path)
    for command in COMMANDS:
        result = home.run(*command)
        assert_clean_failure(result, ExitCode.LOCAL_DATA, *words, str(path))
    assert digest(path) == before, "a damaged database was written to"
    leftovers = {p.name for p in home.data_dir.iterdir()} - {"auditor.db", "locks"}
    assert not leftovers - {"auditor.db-wal", "auditor.db-shm"}, leftovers
    assert not list(home.data_dir.parent.glob("*.html")) and not (home.data_dir.parent / "new.zip").exists()


# --- configuration and exceptions files ------------------------------------------------------

CONFIGS = {
    "toml-syntax": ('profiles = ["pci-dss-4"\n', None, ("auditor.toml",)),
    "unknown-profile": ('profiles = ["pci-dss-5"]\n', None, ("pci-dss-5",)),
    "threshold-wrong-type": ('[thresholds]\ninactive_user_days = "ninety"\n', None, ("inactive_user_days",)),
    "threshold-negative": ("[thresholds]\ninactive_admin_days = -4\n", None, ("inactive_admin_days",)),
    "unknown-key": ('profile = "soc2"\n', None, ("profile",)),
    "exceptions-missing": ('exceptions_file = "nope.toml"\n', None, ("nope.toml",)),
    "exceptions-syntax": ('exceptions_file = "exc.toml"\n', "[[exception]\nrule = 1\n", ("exc.toml",)),
    "exceptions-no-reason": (
        'exceptions_file = "exc.toml"\n',
        '[[exception]]\nrule = "stale-login"\nuser = "a@example.com"\nowner = "Sec"\n'
        'approved_by = "CISO"\napproved_on = 2026-10-01\nexpires = 2027-01-31\n',
        ("reason",),
    ),
    "exceptions-bad-date": (
        'exceptions_file = "exc.toml"\n',
        '[[exception]]\nrule = "stale-login"\nuser = "a@example.com"\nreason = "r"\nowner = "Sec"\n'
        'approved_by = "CISO"\napproved_on = 2026-10-01\nexpires = "soon"\n',
        ("expires",),
    ),
    "exceptions-unknown-rule": (
        'exceptions_file = "exc.toml"\n',
        '[[exception]]\nrule = "no-such-rule"\nuser = "a@example.com"\nreason = "r"\nowner = "Sec"\n'
        'approved_by = "CISO"\napproved_on = 2026-10-01\nexpires = 2027-01-31\n',
        ("no-such-rule",),
    ),
    "config-not-utf8": ("profiles = ['\xff\xfe']\n", None, ("auditor.toml",)),
}


@pytest.mark.parametrize("name", list(CONFIGS))
def test_invalid_configuration_is_a_configuration_error(name: str, prepared: Prepared) -> None:
    config, exceptions, words = CONFIGS[name]
    workdir = prepared.home.data_dir.parent  # the CLI's working directory: ./auditor.toml
    if name == "config-not-utf8":
        (workdir / "auditor.toml").write_bytes(config.encode("latin-1"))
    else:
        (workdir / "auditor.toml").write_text(config)
    if exceptions is not None:
        (workdir / "exc.toml").write_text(exceptions)
    for command in (("findings",), ("report", "--format", "html"), ("export", "--no-reports", "--output", "n.zip")):
        result = prepared.home.run(*command)
        assert_clean_failure(result, ExitCode.USAGE, *words)
    assert not (workdir / "n.zip").exists()
    assert_nothing_lost(prepared)


# --- an output directory the tool may not write ----------------------------------------------


def run_unprivileged(home: AuditorHome, *args: str) -> subprocess.CompletedProcess[str]:
    """Run the CLI so that file permissions apply to it: as root, without the capabilities that
    override them (CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH, CAP_FOWNER), dropped from the bounding set."""
    if os.geteuid() != 0:
        return home.run(*args)
    libc = ctypes.CDLL(None, use_errno=True)

    def drop() -> None:
        for capability in (1, 2, 3):
            if libc.prctl(PR_CAPBSET_DROP, capability, 0, 0, 0) != 0:
                raise OSError(ctypes.get_errno(), "prctl(PR_CAPBSET_DROP)")

    return subprocess.run(
        [sys.executable, "-m", "auditor", *args], env=home.env, cwd=home.data_dir.parent,
        capture_output=True, text=True, timeout=120, check=False, preexec_fn=drop,
    )


def test_unwritable_output_directory(prepared: Prepared) -> None:
    locked = prepared.home.data_dir.parent / "locked"
    locked.mkdir()
    locked.chmod(0o555)  # without CAP_DAC_OVERRIDE not even its owner may write here
    result = run_unprivileged(prepared.home, "report", "--format", "html", "--output", str(locked))
    assert_clean_failure(result, ExitCode.LOCAL_DATA, str(locked), "not a writable directory")
    result = run_unprivileged(prepared.home, "export", "--no-reports", "--output", str(locked / "e.zip"))
    assert_clean_failure(result, ExitCode.LOCAL_DATA, "e.zip", "Permission denied")
    result = run_unprivileged(prepared.home, "diff", "--format", "csv", "--output", str(locked / "d.csv"))
    assert_clean_failure(result, ExitCode.LOCAL_DATA, "d.csv", "Permission denied")
    result = run_unprivileged(prepared.home, "run", "--format", "html", "--output", str(locked))
    assert result.returncode == ExitCode.LOCAL_DATA and "Traceback" not in result.stderr, result.stderr
    assert list(locked.iterdir()) == []
    # The failed export did not advance the chain: the next one continues it from the first.
    after = prepared.home.data_dir.parent / "next.zip"
    result = run_unprivileged(prepared.home, "export", "--no-reports", "--output", str(after))
    assert result.returncode == 0, result.stderr
    verify = prepared.home.run("verify", str(after), *pinned(prepared.home), "--previous", str(prepared.bundle))
    assert verify.returncode == 0, verify.stdout
    assert_chain_sequence(after, 1)  # `run` above failed before its export


def assert_chain_sequence(bundle: Path, sequence: int) -> None:
    import json

    with zipfile.ZipFile(bundle) as archive:
        manifest = json.loads(archive.read("manifest.json"))
    assert manifest["chain"]["sequence"] == sequence, manifest["chain"]


# --- a full disk -----------------------------------------------------------------------------


def run_with_file_limit(home: AuditorHome, limit: int, *args: str) -> subprocess.CompletedProcess[str]:
    """Run the CLI (in-process) where no file may grow past ``limit`` bytes: writes fail with EFBIG,
    as on a full disk. The soft limit and SIGXFSZ's handler are this process's, restored after;
    the command's output goes to strings (pipes and sockets are not bound by the limit)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    handler = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # the write fails instead of killing the process
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, hard))
    try:
        return home.run(*args)
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
        signal.signal(signal.SIGXFSZ, handler)


def test_full_disk_during_pull_stores_nothing(prepared: Prepared, sandbox_module: SandboxServer) -> None:
    result = run_with_file_limit(prepared.home, 64 * 1024, "pull", "--page-size", "100")
    assert_clean_failure(result, ExitCode.LOCAL_DATA, "auditor.db")
    assert_nothing_lost(prepared)
    assert prepared.home.run("pull").returncode == 0, "the next pull must work"


def test_full_disk_during_report_and_export_leaves_no_partial_file(prepared: Prepared) -> None:
    out = prepared.home.data_dir.parent / "out"
    out.mkdir()
    limit = 40 * 1024
    result = run_with_file_limit(prepared.home, limit, "report", "--format", "html", "--output", str(out))
    assert_clean_failure(result, ExitCode.LOCAL_DATA, "File too large")
    result = run_with_file_limit(prepared.home, limit, "export", "--output", str(out / "e.zip"))
    assert_clean_failure(result, ExitCode.LOCAL_DATA, "evidence bundle", "File too large")
    result = run_with_file_limit(prepared.home, limit, "export", "--no-reports", "--output", str(out / "e.zip"))
    assert_clean_failure(result, ExitCode.LOCAL_DATA, "evidence bundle", "File too large")
    assert list(out.iterdir()) == [], "a partial file was left behind"
    assert_nothing_lost(prepared)
    # The chain did not move: the next export is sequence 1 and verifies against the first.
    assert prepared.home.run("export", "--no-reports", "--output", str(out / "e.zip")).returncode == 0
    verify = prepared.home.run("verify", str(out / "e.zip"), *pinned(prepared.home), "--previous", str(prepared.bundle))
    assert verify.returncode == 0, verify.stdout
    assert_chain_sequence(out / "e.zip", 1)


def pinned(home: AuditorHome) -> tuple[str, str]:
    """``--public-key PEM`` with the exporter's key, as an auditor pins it (verify fails closed)."""
    with tempfile.NamedTemporaryFile("w", suffix=".pem", delete=False) as pem:
        pem.write(home.run("keys", "public").stdout)
    return "--public-key", pem.name
