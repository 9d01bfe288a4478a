"""The workspace says how long a pull and an export wait for a held lock; the use cases pass it on.

Production waits (5 s for a pull, 120 s for an export) are what the CLI's workspace has; a test
gives its workspace a fraction of a second instead, so no test waits the production time.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from auditor.cli.parser import build_parser
from auditor.cli.workspace import workspace_from_env
from auditor.errors import StoreBusyError
from auditor.pipeline import Workspace, connect, export_evidence, pull
from auditor.sandbox import SandboxServer
from auditor.store import LockTimeouts, export_lock, pull_lock

SHORT = LockTimeouts(pull=0.2, export=0.2)


def test_the_cli_workspace_waits_the_production_times(tmp_path: Path) -> None:
    args = build_parser().parse_args(["pull"])
    workspace = workspace_from_env(args, {"AUDITOR_HOME": str(tmp_path)}, cwd=tmp_path)
    assert workspace.lock_timeouts == LockTimeouts(pull=5.0, export=120.0)


def test_pull_and_export_wait_as_long_as_the_workspace_says(tmp_path: Path, sandbox: SandboxServer) -> None:
    workspace = Workspace(data_dir=tmp_path / "data", master_key_file=tmp_path / "keys" / "master.key",
                          lock_timeouts=SHORT)
    connect(workspace, "prod", base_url=sandbox.base_url, region=None, api_key="sandbox-admin-key")
    with pull_lock(workspace.data_dir, "prod"):
        began = time.monotonic()
        with pytest.raises(StoreBusyError, match="Another `auditor pull`"):
            pull(workspace, "prod")
        assert time.monotonic() - began < 3, "the pull waited the production five seconds"
    pull(workspace, "prod")
    with export_lock(workspace.data_dir, "prod"):
        began = time.monotonic()
        with pytest.raises(StoreBusyError, match="running for over 0 s"):
            export_evidence(workspace, "prod", output=tmp_path / "b.zip", include_reports=False)
        assert time.monotonic() - began < 3, "the export waited the production two minutes"
