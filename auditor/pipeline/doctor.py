"""``auditor doctor``: the full check of the database that ordinary commands leave out for speed."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from auditor.pipeline.workspace import Workspace
    from auditor.store import DoctorCheck


@dataclass(frozen=True)
class DoctorReport:
    """Every check ``auditor doctor`` made, in order, and the database it checked."""

    path: Path
    checks: tuple[DoctorCheck, ...]

    @property
    def ok(self) -> bool:
        """No check found a problem."""
        return all(check.ok for check in self.checks)


def doctor(workspace: Workspace) -> DoctorReport:
    """Check the whole store: ``PRAGMA integrity_check``, every record's tag, the history index, the chain, sizes.

    A store that cannot even be opened (damaged header, another master key) raises its own error,
    as every command does; anything found once open is reported check by check.
    """
    with workspace.store() as store:
        return DoctorReport(path=store.path, checks=tuple(store.doctor_checks()))
