"""pandas is never imported on a path that does not need it (issue 13; README, "Dependencies").

Importing pandas costs about a quarter of a second and 50 MB in every command that does it; the
diff no longer uses it. The commands run as a user runs them, in a fresh interpreter, with
``PYTHONPROFILEIMPORTTIME`` listing every module the process imported.
"""

from __future__ import annotations

import io

import pytest
from support import AuditorHome

from auditor.cli import main
from auditor.errors import ExitCode
from auditor.pipeline import Workspace
from auditor.sandbox import SandboxServer

#: Libraries a command must not import unless it uses them.
HEAVY = ("pandas", "numpy")


def imported(stderr: str) -> set[str]:
    """Top-level package names from ``-X importtime`` output (``import time: self | cumulative | name``)."""
    names: set[str] = set()
    for line in stderr.splitlines():
        if line.startswith("import time:") and "|" in line:
            names.add(line.rsplit("|", 1)[1].strip().split(".")[0])
    return names


@pytest.fixture
def pulled(home: AuditorHome, sandbox: SandboxServer) -> AuditorHome:
    """An installation with one pull and one evidence bundle, made in-process (quick)."""
    workspace = Workspace(data_dir=home.data_dir, master_key_file=home.key_file)

    def ok(*argv: str, stdin: str = "") -> None:
        err = io.StringIO()
        code = main(list(argv), stdout=io.StringIO(), stderr=err, stdin=io.StringIO(stdin), workspace=workspace)
        assert code == ExitCode.OK, err.getvalue()

    ok("connect", "--base-url", sandbox.base_url, "--key-stdin", stdin="sandbox-view-only-key\n")
    ok("pull")
    ok("export", "--output", str(home.data_dir.parent / "bundle.zip"), "--no-reports")
    return home


def test_pull_snapshots_diff_and_verify_do_not_import_pandas(pulled: AuditorHome, sandbox: SandboxServer) -> None:
    bundle = pulled.data_dir.parent / "bundle.zip"
    commands = {
        "pull": ("pull",),  # a second pull: it diffs against the first
        "snapshots": ("snapshots",),
        "diff": ("diff",),
        "verify": ("verify", str(bundle), "--allow-unpinned"),
    }
    loaded: dict[str, set[str]] = {}
    for name, argv in commands.items():
        # A fresh process: what it imports from start-up on is the point.
        result = pulled.run(*argv, extra_env={"PYTHONPROFILEIMPORTTIME": "1"}, subprocess=True)
        assert result.returncode == ExitCode.OK, (name, result.stderr[-2000:])
        modules = imported(result.stderr)
        assert "auditor" in modules, "the import log was not captured"
        loaded[name] = modules & set(HEAVY)
    assert loaded == {name: set() for name in commands}

