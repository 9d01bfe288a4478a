"""Labels and formatters shared by the CLI, the reports and the exports: one wording and one date format each.

Outside the CLI so that ``report``, ``exports`` and ``rules`` may import it (the core never imports the
CLI). Stdlib and ``models`` only.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from types import MappingProxyType
from typing import Protocol

from auditor.models import ChangeKind, ChangeSet, Snapshot

#: What each kind of change is called, in the terminal diff and in the report's change list.
CHANGE_KIND_LABELS: Mapping[ChangeKind, str] = MappingProxyType({
    ChangeKind.ADDED: "added",
    ChangeKind.REMOVED: "removed",
    ChangeKind.ROLE: "role",
    ChangeKind.STATUS: "status",
    ChangeKind.EMAIL: "email",
    ChangeKind.NAME: "name",
    ChangeKind.DIVISION: "division",
    ChangeKind.RESTRICTION: "division restriction",
    ChangeKind.FIRST_SIGN_IN: "first sign-in",
    ChangeKind.SIGNED_IN: "signed in",
    ChangeKind.KEY_CREATED: "API key created",
    ChangeKind.KEY_REVOKED: "API key revoked",
    ChangeKind.KEY_OWNER: "API key re-owned",
    ChangeKind.KEY_RESTRICTION: "API key restriction",
})

#: The limitation every findings result and every report states: 2FA cannot be checked per user.
TWO_FA_LIMITATION = (
    "CertCentral enforces two-factor authentication, but its API does not expose whether each "
    "user has 2FA set up, so this tool cannot check it per user."
)


# --- dates and times: always UTC as stored; the format says what precision the reader gets -------


def iso(moment: datetime | None) -> str:
    """UTC ISO-8601 with seconds (``2026-11-01T09:30:05+00:00``), or '' for None: machine-readable views."""
    if moment is None:
        return ""
    return moment.isoformat(timespec="seconds")


def day(moment: datetime | None) -> str:
    """``2026-11-01``, or '' for None."""
    return moment.date().isoformat() if moment else ""


def minute(moment: datetime) -> str:
    """``2026-11-01 09:30`` (the caller says UTC where the sentence needs it)."""
    return moment.strftime("%Y-%m-%d %H:%M")


def stamp(moment: datetime | None) -> str:
    """``2026-11-01 09:30 UTC``, or '' for None."""
    return f"{minute(moment)} UTC" if moment else ""


def stamp_seconds(moment: datetime) -> str:
    """``2026-11-01 09:30:05 UTC``: a pull lasts seconds, so minutes are too coarse for its span."""
    return moment.strftime("%Y-%m-%d %H:%M:%S UTC")


# --- sentences -------------------------------------------------------------------------------------


class PullSummary(Protocol):
    """What :func:`describe_pull` reads of a pull's outcome (``pipeline.PullOutcome``)."""

    @property
    def snapshot(self) -> Snapshot: ...
    @property
    def previous(self) -> Snapshot | None: ...
    @property
    def changes(self) -> ChangeSet | None: ...


def describe_pull(outcome: PullSummary) -> str:
    """The one-line pull summary users see on stderr (and cron mails), from ``pull`` and ``run`` alike."""
    snapshot = outcome.snapshot
    provenance = snapshot.provenance
    seconds = (provenance.finished_at - provenance.started_at).total_seconds()
    line = (
        f"Pulled {len(snapshot.users):,} users ({len(snapshot.admins):,} administrators) in {seconds:.1f} s "
        f"as snapshot {snapshot.id}"
    )
    if outcome.changes is not None and outcome.previous is not None:
        line += (
            f"; {len(outcome.changes.of_kind(ChangeKind.ADDED))} new, "
            f"{len(outcome.changes.of_kind(ChangeKind.REMOVED))} removed since {day(outcome.previous.taken_at)}"
        )
    if not snapshot.complete:
        line += ". INCOMPLETE: " + " ".join(provenance.notes) + " It will not be used as a diff baseline."
    elif provenance.notes:
        line += ". Note: " + " ".join(provenance.notes)
    return line
