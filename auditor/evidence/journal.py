"""The export journal: publishing a bundle and advancing the chain survive a crash between the two.

Writing the ZIP and recording its manifest as the connection's chain head cannot be one atomic
step. :func:`publish` notes the intent first (``<data_dir>/evidence-pending/<connection>.json``),
so a crash between the two is repaired by the next export's :func:`recover`, instead of leaving
a valid bundle outside the chain that the next export would fork.
"""

from __future__ import annotations

import hashlib
import json
import zipfile
from collections.abc import Mapping
from contextlib import suppress
from pathlib import Path
from typing import Any, Protocol

from auditor.atomic import write_text_atomic
from auditor.errors import EvidenceError, StoreError
from auditor.evidence.bundle import Bundle, write_bundle
from auditor.models import parse_api_datetime
from auditor.store import ChainHead, ChainMovedError

__all__ = ["ChainStore", "pending_path", "publish", "recover"]


class ChainStore(Protocol):
    """What the journal needs of the store: the chain head and its compare-and-swap."""

    def chain_head(self, connection: str) -> ChainHead | None: ...

    def advance_chain(
        self, connection: str, head: ChainHead, *, expected: ChainHead | None, new_chain: bool = False
    ) -> None: ...


def pending_path(data_dir: Path, connection: str) -> Path:
    """Where an export notes the bundle it is about to publish."""
    return data_dir / "evidence-pending" / f"{connection}.json"


def publish(
    store: ChainStore,
    bundle: Bundle,
    output: Path,
    *,
    data_dir: Path,
    connection: str,
    expected: ChainHead | None,
    new_chain: bool,
    overwrite: bool,
) -> Path:
    """Write ``bundle`` to ``output`` and record it as the chain head that follows ``expected``.

    If the chain moved on meanwhile (or the store refuses the head), the written file is removed:
    outside the chain it would be a fork. Raises EvidenceError for a moved chain, else the store's error.
    """
    head_fields = bundle.chain_head_fields()
    pending = pending_path(data_dir, connection)
    _write_pending(pending, output, head_fields)
    path = write_bundle(bundle, output, overwrite=overwrite)
    try:
        store.advance_chain(connection, ChainHead(**head_fields), expected=expected, new_chain=new_chain)
        _clear_pending(pending)
    except StoreError as error:
        _clear_pending(pending)
        # Not recorded in the chain, this file would be a fork (or evidence from a store that
        # failed its checks). Remove it.
        path.unlink(missing_ok=True)
        if not isinstance(error, ChainMovedError):
            raise
        raise EvidenceError(
            f"The evidence chain of '{connection}' moved on while this bundle was written; "
            "the bundle was discarded so the chain does not fork.",
            hint="Run the export again.",
        ) from error
    return path


def recover(store: ChainStore, *, data_dir: Path, connection: str) -> str:
    """Adopt a bundle that an interrupted export published without advancing the chain.

    The bundle is adopted only if it is still where it was written, its manifest is byte for
    byte the one recorded, and the chain has not moved since; otherwise the note is dropped.
    Returns what was done ('' when no export was interrupted).
    """
    pending = pending_path(data_dir, connection)
    if not pending.exists():
        return ""
    try:
        record = json.loads(pending.read_text(encoding="utf-8"))
        path = Path(record.pop("path"))
        exported_at = parse_api_datetime(record["exported_at"])
        head = ChainHead(**{**record, "exported_at": exported_at})
        with zipfile.ZipFile(path) as archive:
            on_disk = hashlib.sha256(archive.read("manifest.json")).hexdigest()
    except (OSError, ValueError, KeyError, TypeError, zipfile.BadZipFile):
        _clear_pending(pending)
        return "An earlier export was interrupted before its bundle was complete; nothing to recover."
    current = store.chain_head(connection)
    follows = (current is None and head.sequence == 0) or (
        current is not None
        and (
            (current.chain_id == head.chain_id and current.sequence + 1 == head.sequence)
            or (current.chain_id != head.chain_id and head.sequence == 0)
        )
    )
    if on_disk != head.manifest_sha256 or not follows:
        _clear_pending(pending)
        return f"An earlier interrupted export left {path}, which no longer matches the chain; it was not adopted."
    store.advance_chain(connection, head, expected=current, new_chain=current is not None and head.sequence == 0)
    _clear_pending(pending)
    return (
        f"Adopted {path} (sequence {head.sequence}), published by an export that was interrupted before it "
        "could record it, into the evidence chain."
    )


def _clear_pending(pending: Path) -> None:
    pending.unlink(missing_ok=True)
    with suppress(OSError):  # keep the data directory tidy; another connection's note may remain
        pending.parent.rmdir()


def _write_pending(pending: Path, output: Path, head_fields: Mapping[str, Any]) -> None:
    pending.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    record = {**head_fields, "exported_at": head_fields["exported_at"].isoformat(), "path": str(output.resolve())}
    write_text_atomic(pending, json.dumps(record, sort_keys=True), mode=0o600)
