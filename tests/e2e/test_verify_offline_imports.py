"""Verifying a bundle offline, re-performance included, never loads the HTTP client (httpx).

The re-checks parse raw pages with ``auditor.parsing``, the parser the pull used, not through
``auditor.client``; an auditor's machine needs no network stack for ``verify --reperform``.
"""

from __future__ import annotations

import io

from support import AuditorHome

from auditor.cli import main
from auditor.errors import ExitCode
from auditor.pipeline import Workspace
from auditor.sandbox import SandboxServer


def test_verify_reperform_does_not_import_httpx(home: AuditorHome, sandbox: SandboxServer) -> None:
    workspace = Workspace(data_dir=home.data_dir, master_key_file=home.key_file)
    bundle = home.data_dir.parent / "bundle.zip"
    for argv, stdin in (
        (["connect", "--base-url", sandbox.base_url, "--key-stdin"], "sandbox-admin-key\n"),
        (["pull"], ""),
        (["export", "--output", str(bundle), "--no-reports"], ""),
    ):
        err = io.StringIO()
        code = main(argv, stdout=io.StringIO(), stderr=err, stdin=io.StringIO(stdin), workspace=workspace)
        assert code == ExitCode.OK, err.getvalue()

    result = home.run(
        "verify", str(bundle), "--allow-unpinned", "--reperform", extra_env={"PYTHONPROFILEIMPORTTIME": "1"},
        subprocess=True,  # a fresh interpreter: what it imports is the point
    )
    assert result.returncode == ExitCode.OK, result.stderr[-2000:]
    modules = {
        line.rsplit("|", 1)[1].strip().split(".")[0]
        for line in result.stderr.splitlines()
        if line.startswith("import time:") and "|" in line
    }
    assert "auditor" in modules, "the import log was not captured"
    assert "httpx" not in modules
