"""An export interrupted between publishing its bundle and recording it in the chain is repaired.

The crash is injected at exactly that point (the store's chain update raises, as a SIGKILL
would stop it); the random-kill loop in test_hardening_crashes.py rarely lands there.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from unittest import mock

import pytest

from auditor.pipeline import Workspace, connect, export_evidence, public_signing_key, pull, verify_evidence
from auditor.sandbox import SandboxServer
from auditor.store import Store


@pytest.fixture
def workspace(tmp_path: Path, sandbox: SandboxServer) -> Workspace:
    space = Workspace(
        data_dir=tmp_path / "data",
        master_key_file=tmp_path / "keys" / "master.key",
        clock=lambda: datetime(2026, 11, 2, 6, 0, tzinfo=UTC),
    )
    connect(space, "prod", base_url=sandbox.base_url, region=None, api_key="sandbox-admin-key")
    pull(space, "prod")
    return space


def crash_between_publish_and_chain(workspace: Workspace, output: Path) -> None:
    with (
        mock.patch.object(Store, "advance_chain", side_effect=KeyboardInterrupt),
        pytest.raises(KeyboardInterrupt),
    ):
        export_evidence(workspace, "prod", output=output, include_reports=False)


def test_next_export_adopts_the_published_bundle(workspace: Workspace, tmp_path: Path) -> None:
    orphan = tmp_path / "first.zip"
    crash_between_publish_and_chain(workspace, orphan)
    assert orphan.is_file(), "the crash happened after publishing"

    second = export_evidence(workspace, "prod", output=tmp_path / "second.zip", include_reports=False)
    assert "Adopted" in second.recovered and str(orphan) in second.recovered
    assert second.sequence == 1, "the adopted bundle is sequence 0; the new one follows it"
    ok, text = verify_evidence(second.path, public_keys=[signer(workspace, tmp_path)], previous=[orphan])
    assert ok, text


def test_a_bundle_gone_since_the_crash_is_not_adopted(workspace: Workspace, tmp_path: Path) -> None:
    orphan = tmp_path / "first.zip"
    crash_between_publish_and_chain(workspace, orphan)
    orphan.unlink()

    second = export_evidence(workspace, "prod", output=tmp_path / "second.zip", include_reports=False)
    assert "nothing to recover" in second.recovered
    assert second.sequence == 0, "with nothing adopted the chain starts at genesis"


def test_a_replaced_file_is_not_adopted(workspace: Workspace, tmp_path: Path) -> None:
    orphan = tmp_path / "first.zip"
    crash_between_publish_and_chain(workspace, orphan)
    other = export_evidence(workspace, "prod", output=tmp_path / "other.zip", include_reports=False)
    assert "Adopted" in other.recovered
    # A later crash whose file is then overwritten by something else must not be adopted.
    crash_between_publish_and_chain(workspace, tmp_path / "third.zip")
    (tmp_path / "third.zip").write_bytes(orphan.read_bytes())
    fourth = export_evidence(workspace, "prod", output=tmp_path / "fourth.zip", include_reports=False)
    assert "not adopted" in fourth.recovered
    assert fourth.sequence == other.sequence + 1
    ok, text = verify_evidence(fourth.path, public_keys=[signer(workspace, tmp_path)], previous=[orphan, other.path])
    assert ok, text


def signer(workspace: Workspace, directory: Path) -> Path:
    """The exporter's public key as a PEM file, pinned as an auditor would (fail-closed verify)."""
    path = directory / "signer.pem"
    path.write_text(public_signing_key(workspace)[1])
    return path
