"""An export that waited for another export's lock is stamped after it, never before.

The second of two first exports used to read its time before taking the lock; the first then
created the signing key, whose period began after that time ("The signing key's period starts
after the export time", tests/e2e/test_store_auth.py::test_two_first_exports_at_once_make_one_chain).
"""

from __future__ import annotations

import sys
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from auditor.pipeline import ExportOutcome, Workspace, connect, export_evidence, public_signing_key, pull
from auditor.sandbox import SandboxServer
from auditor.store import export_lock


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def waiting_on_a_file_lock(thread: threading.Thread) -> bool:
    frame = sys._current_frames().get(thread.ident or -1)
    while frame is not None:
        if "filelock" in frame.f_code.co_filename:
            return True
        frame = frame.f_back
    return False


def test_an_export_reads_its_time_once_it_holds_the_export_lock(tmp_path: Path, sandbox: SandboxServer) -> None:
    clock = Clock(datetime(2026, 11, 2, 6, 0, tzinfo=UTC))
    workspace = Workspace(data_dir=tmp_path / "data", master_key_file=tmp_path / "keys" / "master.key", clock=clock)
    connect(workspace, "prod", base_url=sandbox.base_url, region=None, api_key="sandbox-admin-key")
    pull(workspace, "prod")
    outcome: list[ExportOutcome | BaseException] = []

    def export() -> None:
        try:
            outcome.append(export_evidence(workspace, "prod", output=tmp_path / "b.zip", include_reports=False))
        except BaseException as exc:  # handed to the test thread
            outcome.append(exc)

    waiting = threading.Thread(target=export)
    with export_lock(workspace.data_dir, "prod"):  # another export holds the lock...
        waiting.start()
        deadline = time.monotonic() + 60
        while not waiting_on_a_file_lock(waiting):
            assert waiting.is_alive() and time.monotonic() < deadline, outcome
            time.sleep(0.01)
        # ... and creates the signing key, a minute later, before it lets go.
        clock.now += timedelta(minutes=1)
        public_signing_key(workspace)
    waiting.join(timeout=60)
    (result,) = outcome
    assert isinstance(result, ExportOutcome), result
    assert result.signing_key_created is False
