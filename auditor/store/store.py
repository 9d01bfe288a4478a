"""The :class:`Store` facade: one open database, its methods gathered from the row modules."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from pathlib import Path

from auditor.models import utc_now
from auditor.store.doctor import _Doctor
from auditor.store.records import RecordKeys
from auditor.store.sqlite import BUSY_TIMEOUT, _open_file


class Store(_Doctor):
    """The open database of one data directory. Use :meth:`open`; close it (or use ``with``)."""

    @classmethod
    def open(
        cls,
        data_dir: Path,
        *,
        master_key: RecordKeys | None = None,
        clock: Callable[[], datetime] = utc_now,
        busy_timeout: float = BUSY_TIMEOUT,
    ) -> Store:
        """Open (creating if needed) ``<data_dir>/auditor.db``, check it, and migrate it forward.

        A damaged file, an empty (0-byte) one, a foreign database or one written by a newer
        version is refused before anything is written to it: it is checked through a read-only
        connection first. A new database is built under a temporary name and linked into place
        complete. ``busy_timeout`` is how many seconds to wait for another process's write to
        finish before StoreBusyError.

        With ``master_key`` every record read is checked against its tag and every record
        written is tagged (see the module docstring); a store not yet tagged reports it in
        :attr:`untagged` and is tagged by :meth:`tag_existing_records`. Without it (tests and
        inspection only: every command passes the key) tags are neither checked nor written,
        and a store that has been tagged cannot be changed.
        """
        timeout_ms = max(0, int(busy_timeout * 1000))
        db, path = _open_file(Path(data_dir), busy_timeout_ms=timeout_ms, clock=clock)
        store = cls(db, path, clock=clock)
        try:
            store._prepare(busy_timeout_ms=timeout_ms)
            store._authenticate(master_key)
            store._adopt_converted_history()
        except BaseException:
            db.close()
            raise
        return store
