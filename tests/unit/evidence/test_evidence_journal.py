"""The export journal on its own: publish notes the bundle first, recover adopts or drops the note.

A fake chain store stands in for the SQLite store (the journal needs only its chain head and
compare-and-swap); test_export_recovery.py covers the same through a real export.
"""

from __future__ import annotations

import hashlib
import io
import zipfile
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast

import pytest

from auditor.errors import EvidenceError
from auditor.evidence import Bundle, journal
from auditor.store import ChainHead, ChainMovedError

WHEN = datetime(2026, 11, 2, 6, 0, tzinfo=UTC)


@dataclass
class FakeBundle:
    """What the journal reads of a bundle: its bytes and the chain head it becomes."""

    sequence: int = 0
    manifest: bytes = b'{"sequence": 0}'
    data: bytes = field(init=False)

    def __post_init__(self) -> None:
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w") as archive:
            archive.writestr("manifest.json", self.manifest)
        self.data = buffer.getvalue()

    def chain_head_fields(self) -> dict[str, Any]:
        return {
            "chain_id": "chain-a",
            "sequence": self.sequence,
            "manifest_sha256": hashlib.sha256(self.manifest).hexdigest(),
            "signature": "sig",
            "key_fingerprint": "sha256:00",
            "exported_at": WHEN,
        }


@dataclass
class FakeChainStore:
    head: ChainHead | None = None
    fail: BaseException | None = None
    advanced: list[ChainHead] = field(default_factory=list)

    def chain_head(self, connection: str) -> ChainHead | None:
        return self.head

    def advance_chain(
        self, connection: str, head: ChainHead, *, expected: ChainHead | None, new_chain: bool = False
    ) -> None:
        if self.fail is not None:
            raise self.fail
        self.advanced.append(head)
        self.head = head


def publish(store: FakeChainStore, bundle: FakeBundle, output: Path, data_dir: Path) -> Path:
    return journal.publish(
        store, cast(Bundle, bundle), output, data_dir=data_dir, connection="prod", expected=store.head,
        new_chain=False, overwrite=False,
    )


def test_publish_records_the_head_and_leaves_no_note(tmp_path: Path) -> None:
    store = FakeChainStore()
    path = publish(store, FakeBundle(), tmp_path / "b.zip", tmp_path / "data")
    assert path.read_bytes() == FakeBundle().data
    assert [h.sequence for h in store.advanced] == [0]
    assert not journal.pending_path(tmp_path / "data", "prod").exists()
    assert journal.recover(store, data_dir=tmp_path / "data", connection="prod") == ""


def test_publish_discards_the_file_when_the_chain_moved(tmp_path: Path) -> None:
    store = FakeChainStore(fail=ChainMovedError("moved"))
    with pytest.raises(EvidenceError, match="moved on"):
        publish(store, FakeBundle(), tmp_path / "b.zip", tmp_path / "data")
    assert not (tmp_path / "b.zip").exists(), "outside the chain the file would be a fork"
    assert not journal.pending_path(tmp_path / "data", "prod").exists()


def test_a_crash_after_publishing_is_adopted_by_recover(tmp_path: Path) -> None:
    crashed = FakeChainStore(fail=KeyboardInterrupt())
    with pytest.raises(KeyboardInterrupt):
        publish(crashed, FakeBundle(), tmp_path / "b.zip", tmp_path / "data")
    assert journal.pending_path(tmp_path / "data", "prod").exists(), "the note survives the crash"

    store = FakeChainStore()
    said = journal.recover(store, data_dir=tmp_path / "data", connection="prod")
    assert said.startswith("Adopted") and str(tmp_path / "b.zip") in said
    assert [h.manifest_sha256 for h in store.advanced] == [FakeBundle().chain_head_fields()["manifest_sha256"]]
    assert not journal.pending_path(tmp_path / "data", "prod").exists()


def test_a_replaced_file_is_not_adopted(tmp_path: Path) -> None:
    with pytest.raises(KeyboardInterrupt):
        publish(FakeChainStore(fail=KeyboardInterrupt()), FakeBundle(), tmp_path / "b.zip", tmp_path / "data")
    (tmp_path / "b.zip").write_bytes(FakeBundle(manifest=b'{"other": 1}').data)

    store = FakeChainStore()
    said = journal.recover(store, data_dir=tmp_path / "data", connection="prod")
    assert "not adopted" in said
    assert store.advanced == []
    assert not journal.pending_path(tmp_path / "data", "prod").exists()
