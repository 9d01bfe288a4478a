"""``auditor run --notify``: a run's items needing attention, sent once, retried while undelivered."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from auditor.diff import diff_snapshots
from auditor.errors import AuditorError, StoreError
from auditor.notify import (
    Assessment,
    AttentionItem,
    Message,
    NotifyOn,
    NotifyState,
    Sender,
    apprise_sender,
    assess_failure,
    assess_run,
    check_urls,
    compose,
    deliver,
    load_state,
    save_state,
)

if TYPE_CHECKING:
    from auditor.models import ChangeSet
    from auditor.pipeline.connections import PullOutcome
    from auditor.pipeline.run import RunOutcome
    from auditor.pipeline.workspace import Workspace
    from auditor.store import Store


@dataclass(frozen=True)
class NotifySettings:
    """Where and when to notify: apprise URLs (``--notify``, else ``notify = [...]``) and ``--notify-on``."""

    urls: tuple[str, ...] = ()
    on: NotifyOn = NotifyOn.CHANGE
    #: Sends one message to one URL; apprise unless a test injects another.
    sender: Sender = apprise_sender

    @property
    def enabled(self) -> bool:
        return bool(self.urls)


def resolve_settings(workspace: Workspace, *, urls: Sequence[str], on: NotifyOn, sender: Sender | None = None,
                     frameworks: Sequence[str] | None = None) -> NotifySettings:
    """``--notify`` URLs win over ``notify = [...]`` in auditor.toml; each URL checked before the pull (exit 2)."""
    chosen = tuple(urls) or workspace.load_config(frameworks).notify
    settings = NotifySettings(urls=chosen, on=on, sender=sender or apprise_sender)
    if settings.enabled and sender is None:
        check_urls(settings.urls)
    return settings


class ChangeWatch:
    """The ``after_pull`` hook of a notifying run: the changes since the previous *run*.

    The pull's own diff is against the previous complete snapshot; when pulls ran in between
    (``auditor pull``), the base is the snapshot the previous run recorded, so a new administrator
    seen first by a plain pull is still reported.
    """

    def __init__(self, state: NotifyState) -> None:
        self.state = state
        self.changes: ChangeSet | None = None

    def __call__(self, outcome: PullOutcome, store: Store) -> None:
        self.changes = outcome.changes
        base_id = self.state.snapshot_id
        if base_id is None or outcome.previous is None or outcome.previous.id == base_id:
            return
        try:
            base = store.get_snapshot(base_id)
        except (AuditorError, LookupError):
            return  # the previous run's snapshot is gone: the pull's own diff is the best base left
        if base.complete and base.connection == outcome.snapshot.connection:
            self.changes = diff_snapshots(base, outcome.snapshot)


@dataclass(frozen=True)
class AccountAlert:
    """One connection's part of a notification: its new items, and its state before and after."""

    connection: str
    assessment: Assessment
    before: NotifyState


def assess_account(
    state: NotifyState, *, outcome: RunOutcome | None, watch: ChangeWatch | None, error: AuditorError | None,
    now: datetime,
) -> AccountAlert:
    """What one account's run (``outcome``) or failure (``error``) adds to the notification."""
    if error is not None:
        return AccountAlert(state.connection, assess_failure(state, error, now=now), state)
    if outcome is None:
        raise ValueError("assess_account needs the run's outcome or its error")
    changes = watch.changes if watch is not None else None
    assessment = assess_run(state, snapshot=outcome.snapshot, changes=changes, findings=outcome.findings)
    return AccountAlert(state.connection, assessment, state)


@dataclass(frozen=True)
class AlertOutcome:
    """What the notification did: sent (to how many URLs), nothing to send, or failed (redacted URLs)."""

    message: Message | None
    items: tuple[AttentionItem, ...]
    failed_urls: tuple[str, ...] = ()
    retried: int = 0

    @property
    def delivered(self) -> bool:
        return self.message is not None and not self.failed_urls


def notify_accounts(
    workspace: Workspace,
    settings: NotifySettings,
    *,
    alerts: Sequence[AccountAlert],
    outputs: Sequence[Path] = (),
) -> AlertOutcome:
    """Send one message with every account's undelivered and new items; keep the state either way.

    Delivered: each account's state advances with nothing pending. Not delivered: the state still
    advances (the same findings are not "new" again) but every item stays pending, so the next run
    sends it, marked with the time it was first seen.
    """
    pending = tuple(item for alert in alerts for item in alert.before.pending)
    new = tuple(item for alert in alerts for item in alert.assessment.items)
    items = _unique((*pending, *new))
    message = compose(
        items, heartbeat=settings.on is NotifyOn.ALWAYS, now=workspace.now(),
        connections=[alert.connection for alert in alerts], outputs=outputs,
    )
    failed: tuple[str, ...] = ()
    if message is not None:
        failed = deliver(settings.urls, message, sender=settings.sender)
    for alert in alerts:
        own = tuple(item for item in items if item.connection == alert.connection) if failed else ()
        state = replace(alert.assessment.state, pending=own, last_run_at=workspace.now())
        try:
            save_state(workspace.data_dir, state)
        except StoreError as error:
            workspace.notice(f"Warning: {error.diagnostics()}")
    return AlertOutcome(message=message, items=items, failed_urls=failed, retried=len(pending))


def load_account_state(workspace: Workspace, connection: str) -> NotifyState:
    return load_state(workspace.data_dir, connection)


def _unique(items: Sequence[AttentionItem]) -> tuple[AttentionItem, ...]:
    seen: dict[str, AttentionItem] = {}
    for item in items:
        seen.setdefault(item.key, item)
    return tuple(seen.values())
