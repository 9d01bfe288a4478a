"""Snapshots, diffs, findings and history: the use cases that read what was pulled.

``evaluate`` runs the rules over a snapshot as of its own time; ``evaluate_snapshot`` is the one
place export and ``verify --reperform`` both call.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from auditor import __version__
from auditor.auditlog import AuditLog, attribute_changes
from auditor.diff import diff_snapshots
from auditor.errors import ConfigurationError
from auditor.exports import raw_data_digest
from auditor.identity import load
from auditor.labels import stamp_seconds
from auditor.models import (
    ApiKey,
    Attestation,
    AttestationKind,
    ChangeSet,
    FindingsResult,
    ReviewItem,
    Snapshot,
    SnapshotFindings,
    User,
    UserHistory,
)
from auditor.pipeline.campaigns import review_items_as_of
from auditor.pipeline.workspace import Workspace
from auditor.rules import RULES
from auditor.rules import evaluate as run_rules

if TYPE_CHECKING:
    from auditor.config import AuditConfig
    from auditor.identity import IdentityRequest, IdentitySource, LoadedIdentity
    from auditor.store import SnapshotSummary, Store


def select_snapshot(store: Store, connection: str, snapshot_id: int | None, *, allow_incomplete: bool) -> Snapshot:
    """The snapshot a command works on: the one named, else the latest complete one."""
    if snapshot_id is not None:
        snapshot = store.get_snapshot(snapshot_id)
        if snapshot.connection != connection:
            raise ConfigurationError(
                f"Snapshot {snapshot_id} belongs to connection {snapshot.connection!r}, not {connection!r}.",
                hint=f"Add --connection {snapshot.connection}.",
            )
        return snapshot
    latest = store.latest_snapshot(connection, complete_only=not allow_incomplete)
    if latest is None:
        incomplete = store.latest_snapshot(connection, complete_only=False)
        if incomplete is not None:
            raise ConfigurationError(
                f"Connection {connection!r} has only incomplete snapshots.",
                hint=f"Run `auditor pull --connection {connection}` again, or name one with --snapshot "
                f"{incomplete.id} (it is marked incomplete everywhere).",
            )
        store.get_connection(connection)  # no such connection: advise `auditor connect`, not a pull
        raise ConfigurationError(
            f"Connection {connection!r} has no snapshots yet.",
            hint=f"Run `auditor pull --connection {connection}` first.",
        )
    return latest


def list_snapshots(workspace: Workspace, connection: str | None = None) -> list[SnapshotSummary]:
    """The stored snapshots (of one connection, or all), oldest first, without their users."""
    with workspace.store() as store:
        return store.list_snapshots(connection)


def diff(
    workspace: Workspace,
    connection: str,
    *,
    from_id: int | None = None,
    to_id: int | None = None,
    allow_incomplete: bool = False,
) -> tuple[Snapshot, Snapshot, ChangeSet]:
    """The change set between two snapshots; by default the latest complete one and the one before."""
    with workspace.store() as store:
        new = select_snapshot(store, connection, to_id, allow_incomplete=allow_incomplete)
        if from_id is not None:
            old = select_snapshot(store, connection, from_id, allow_incomplete=True)
        else:
            found = store.previous_snapshot(new, complete_only=not allow_incomplete)
            if found is None:
                raise ConfigurationError(
                    f"Snapshot {new.id} has no earlier complete snapshot to compare with.",
                    hint="Pull again later, or name one with --from ID (see `auditor snapshots`).",
                )
            old = found
        log = audit_log_as_of(store, new)
    changes = attribute_changes(
        diff_snapshots(old, new), log=log, users=new.users, after=old.taken_at, until=new.taken_at
    )
    return old, new, changes


def audit_log_as_of(store: Store, snapshot: Snapshot) -> AuditLog | None:
    """The audit log as of ``snapshot``: the runs archived by its pull or earlier ones, rows up to its time."""
    runs = store.audit_log_runs(snapshot.connection, until_snapshot_id=snapshot.id)
    return AuditLog.of(runs, until=snapshot.taken_at) if runs else None


@dataclass(frozen=True)
class Evaluation:
    """One snapshot evaluated: everything a report or an export needs."""

    snapshot: Snapshot
    previous: Snapshot | None
    changes: ChangeSet
    findings: FindingsResult
    config: AuditConfig
    attestations: tuple[Attestation, ...]
    history: dict[int, UserHistory]
    all_snapshots: tuple[Snapshot, ...]
    #: Snapshot id -> the user its API key belonged to (``GET /user/me``), for this snapshot
    #: and every one in ``all_snapshots``.
    key_user_ids: Mapping[int, int | None] = field(default_factory=dict)
    #: The HR / identity-provider roster the leaver rules used (None: none was given).
    identity: IdentitySource | None = None
    #: The identity files' bytes, kept only when the bundle is to include them.
    identity_raw: tuple[tuple[str, bytes], ...] = field(default=(), repr=False)
    #: Revoke/modify decisions of access review campaigns closed by the snapshot's time, with
    #: their remediation state as of it (rule inputs of ``revocation-overdue``, ``access-regranted``).
    reviews: tuple[ReviewItem, ...] = ()
    #: The stored summary of every complete snapshot up to this one (the trend), when asked for.
    summaries: tuple[SnapshotFindings, ...] | None = None
    #: The archived audit log as of the snapshot (issue 17); None when none was archived.
    audit_log: AuditLog | None = None


def load_identity(
    config: AuditConfig, request: IdentityRequest | None, *, keep_bytes: bool = False
) -> LoadedIdentity | None:
    """Read the identity source (``--identity`` / ``[identity]``) in full, before any rule runs.

    Every problem (unknown preset, missing column, bad date, duplicate employee id) is a
    ConfigurationError naming the file, row and column: nothing is evaluated half.
    """
    return load(config.identity, request, keep_bytes=keep_bytes)


def attestations_as_of(attestations: Sequence[Attestation], snapshot: Snapshot) -> tuple[Attestation, ...]:
    """What counts for ``snapshot``: attestations recorded by its time, and the reviews that sign it off.

    A later attestation never reaches back; a review names the snapshot it reviewed, so it is
    necessarily recorded after it.
    """
    return tuple(
        a
        for a in attestations
        if a.connection == snapshot.connection
        and (a.made_at <= snapshot.taken_at or (a.kind is AttestationKind.REVIEW and a.snapshot_id == snapshot.id))
    )


def evaluate(
    workspace: Workspace,
    connection: str,
    *,
    snapshot_id: int | None = None,
    since_id: int | None = None,
    frameworks: Sequence[str] | None = None,
    with_trend_history: bool = False,
    identity: IdentityRequest | None = None,
    loaded_identity: LoadedIdentity | None = None,
    keep_identity_bytes: bool = False,
    config: AuditConfig | None = None,
    store: Store | None = None,
) -> Evaluation:
    """Run the rules over a snapshot (default: the latest complete one) as of its own pull time.

    Everything is computed at ``snapshot.taken_at`` from what existed then (snapshots up to it,
    exceptions approved and attestations recorded by then, plus the reviews of this snapshot), so
    a re-run a year later gives the same findings. The workspace clock plays no part.

    The identity source (``identity``, or ``loaded_identity`` already read) is read in full
    before the store is touched; it is an input of the evaluation like the configuration.
    ``config``: the configuration the caller already loaded for ``frameworks`` (read once per command).
    """
    if config is None:
        config = workspace.load_config(frameworks)
    if loaded_identity is None:
        loaded_identity = load_identity(config, identity, keep_bytes=keep_identity_bytes)
    source = loaded_identity.source if loaded_identity is not None else None
    with workspace.store(store) as store:
        snapshot = select_snapshot(store, connection, snapshot_id, allow_incomplete=False)
        if since_id is not None:
            previous: Snapshot | None = select_snapshot(store, connection, since_id, allow_incomplete=True)
        else:
            previous = store.previous_snapshot(snapshot, complete_only=True)
        history = store.user_history(connection, until=snapshot)
        attestations = attestations_as_of(store.attestations(connection), snapshot)
        key_user_ids = {snapshot.id: store.key_user_id(snapshot.id)}
        reviews = review_items_as_of(store, snapshot, config)
        log = audit_log_as_of(store, snapshot)
        findings, changes = evaluate_snapshot(
            snapshot,
            previous=previous,
            history=history,
            config=config,
            attestations=attestations,
            now=snapshot.taken_at,
            key_user_id=key_user_ids[snapshot.id],
            identity=source,
            reviews=reviews,
            audit_log=log,
        )
        summaries = None
        if with_trend_history:
            summaries = trend_summaries(
                workspace, store, snapshot, findings, config=config, loaded_identity=loaded_identity
            )
    return Evaluation(
        snapshot=snapshot,
        previous=previous,
        changes=changes,
        findings=findings,
        config=config,
        attestations=attestations,
        history=dict(history),
        all_snapshots=(),
        key_user_ids=key_user_ids,
        identity=source,
        identity_raw=loaded_identity.raw if loaded_identity is not None else (),
        reviews=reviews,
        summaries=summaries,
        audit_log=log,
    )


def trend_summaries(
    workspace: Workspace,
    store: Store,
    snapshot: Snapshot,
    findings: FindingsResult,
    *,
    config: AuditConfig,
    loaded_identity: LoadedIdentity | None,
) -> tuple[SnapshotFindings, ...]:
    """Every complete snapshot's summary up to ``snapshot``, as stored when it was first evaluated.

    A snapshot without one, or with one from another rules version or other rule settings
    (:func:`summary_version`), is evaluated once (as of its own time, like any evaluation) and its
    summary stored: the trend never shows numbers that other rules or settings computed, and never
    re-runs the rules on the next report. ``snapshot``'s own point is always ``findings``.
    """
    version = summary_version(config)
    summaries: list[SnapshotFindings] = []
    for snapshot_id, _taken_at, stored in store.trend_summaries(snapshot):
        if snapshot_id == snapshot.id:
            # This snapshot's point is always what this evaluation found, so the trend's last point
            # and the report's own findings never disagree.
            current = SnapshotFindings.of(snapshot, findings, rules_version=version, computed_at=workspace.now())
            if stored is not None and _same_numbers(stored, current):
                summaries.append(stored)
                continue
            store.save_summary(current)
            summaries.append(current)
            continue
        if stored is not None and stored.rules_version == version:
            summaries.append(stored)
            continue
        evaluation = evaluate(
            workspace, snapshot.connection, snapshot_id=snapshot_id, config=config,
            loaded_identity=loaded_identity, store=store,
        )
        summary = SnapshotFindings.of(
            evaluation.snapshot, evaluation.findings, rules_version=version, computed_at=workspace.now()
        )
        store.save_summary(summary)
        summaries.append(summary)
    return tuple(summaries)


def evaluate_snapshot(
    snapshot: Snapshot,
    *,
    previous: Snapshot | None,
    history: Mapping[int, UserHistory],
    config: AuditConfig,
    attestations: Sequence[Attestation],
    now: datetime,
    key_user_id: int | None,
    identity: IdentitySource | None = None,
    reviews: Sequence[ReviewItem] = (),
    audit_log: AuditLog | None = None,
) -> tuple[FindingsResult, ChangeSet]:
    """The findings and changes of one snapshot: what export ships and `verify --reperform` re-derives.

    The one place both call, so a change to how findings are evaluated reaches both. ``audit_log``
    (the archived runs as of the snapshot) adds activity, attribution and ``privilege-change-unattributed``.
    """
    findings = run_rules(
        snapshot,
        previous=previous,
        history=history,
        config=config,
        attestations=attestations,
        now=now,
        key_user_id=key_user_id,
        identity=identity,
        reviews=reviews,
        audit_log=audit_log,
    )
    if previous is None:
        return findings, ChangeSet(from_snapshot=None, to_snapshot=snapshot.id)
    changes = diff_snapshots(previous, snapshot, privileged_roles=tuple(config.privileged_roles))
    return findings, attribute_changes(
        changes, log=audit_log, users=snapshot.users, after=previous.taken_at, until=snapshot.taken_at
    )


def summary_version(config: AuditConfig) -> str:
    """What a stored trend point was computed with: :func:`rules_version` plus a digest of the rule
    settings and exceptions (the manifest's ``rule_settings``). A point from other thresholds,
    profiles or exceptions is recomputed once, never shown beside numbers the current settings gave.
    The identity source is not part of it: each point keeps the roster it was first evaluated with.
    """
    from auditor.evidence.recorded import rule_settings

    settings = json.dumps([rule_settings(config), repr(config.exceptions)], sort_keys=True, default=str)
    return f"{rules_version()}+settings.{hashlib.sha256(settings.encode()).hexdigest()[:12]}"


def _same_numbers(stored: SnapshotFindings, current: SnapshotFindings) -> bool:
    """Whether ``stored`` says what ``current`` says (all but when it was computed)."""
    return dataclasses.replace(stored, computed_at=current.computed_at) == current


def rules_version() -> str:
    """The tool version plus a digest of the rule catalogue, recorded in every manifest."""
    catalogue = json.dumps(
        [[rule.id, str(rule.severity), rule.title, rule.remediation] for rule in RULES], sort_keys=True
    )
    return f"{__version__}+rules.{hashlib.sha256(catalogue.encode()).hexdigest()[:12]}"


def attest(
    workspace: Workspace,
    connection: str,
    *,
    kind: AttestationKind,
    by: str,
    statement: str,
    valid_days: int,
    snapshot_id: int | None = None,
    store: Store | None = None,
) -> Attestation:
    """Record a reviewer's attestation (2FA verified in the console, or an access review done).

    A review signs off one snapshot: ``snapshot_id``, by default the latest complete one now,
    recorded with its raw-data digest. ``valid_days`` says when the next review is due
    (``review-overdue``); it does not extend the sign-off to other snapshots. An MFA attestation
    covers the snapshots taken from now until it expires. ``store``: one already open (``auditor
    run``'s ``after_pull``), else it is opened here.
    """
    kind = AttestationKind(kind)
    if not by.strip() or not statement.strip():
        raise ConfigurationError("An attestation needs --by \"NAME <EMAIL>\" and a --statement.")
    if not 1 <= valid_days <= 3660:
        raise ConfigurationError(f"--valid-days must be between 1 and 3660, got {valid_days}.")
    if snapshot_id is not None and kind is not AttestationKind.REVIEW:
        raise ConfigurationError("Only a review names the snapshot it reviewed; drop --snapshot.")
    now = workspace.now()
    with workspace.store(store) as store:
        store.get_connection(connection)
        reviewed: Snapshot | None = None
        if kind is AttestationKind.REVIEW:
            reviewed = reviewed_snapshot(store, connection, snapshot_id, now=now)
        return store.add_attestation(
            connection,
            kind=kind,
            by=by.strip(),
            statement=statement.strip(),
            made_at=now,
            expires=now + timedelta(days=valid_days),
            snapshot_id=reviewed.id if reviewed is not None else None,
            raw_sha256=raw_digest(reviewed) if reviewed is not None else "",
        )


def reviewed_snapshot(store: Store, connection: str, snapshot_id: int | None, *, now: datetime) -> Snapshot:
    """The complete snapshot a review made at ``now`` signs off; refused if finished after ``now``."""
    reviewed = select_snapshot(store, connection, snapshot_id, allow_incomplete=False)
    if now < reviewed.provenance.finished_at:
        raise ConfigurationError(
            f"Snapshot {reviewed.id} was finished at {stamp_seconds(reviewed.provenance.finished_at)}, "
            f"after this review's time ({stamp_seconds(now)}): a review cannot predate what "
            "it reviewed.",
            hint="Check the system clock, or name the reviewed snapshot with --snapshot ID "
            "(see `auditor snapshots`).",
        )
    return reviewed


def raw_digest(snapshot: Snapshot) -> str:
    """One SHA-256 over the snapshot's raw pages, in the order fetched (the exports compute it)."""
    return raw_data_digest(snapshot)


@dataclass(frozen=True)
class UserTimeline:
    """One user across every snapshot of a connection: when seen, with which roles, last record."""

    user: User  #: the newest stored record of the user
    history: UserHistory
    present_in_latest: bool
    latest_snapshot: Snapshot
    #: The API keys and ACME URLs the user owns in the latest snapshot (issue 17); None when that
    #: snapshot could not read the key list (unknown, not none).
    keys: tuple[ApiKey, ...] | None = None


def user_timeline(workspace: Workspace, connection: str, who: str) -> UserTimeline:
    """Find a user by email (case-insensitive) or numeric id, in the newest snapshot that has them.

    Found by index (the store's user versions and member lists), so only that snapshot and the
    latest one are loaded, and only this user's history is read, however many snapshots there are.
    """
    wanted = who.strip()
    with workspace.store() as store:
        latest = store.latest_snapshot(connection, complete_only=False)
        if latest is None:
            store.get_connection(connection)  # no such connection: advise `auditor connect`
            raise ConfigurationError(
                f"Connection {connection!r} has no snapshots yet.",
                hint=f"Run `auditor pull --connection {connection}`.",
            )
        found = store.find_user_snapshot(connection, wanted)
        snapshot = store.get_snapshot(found) if found is not None else None
        user = next(
            (
                u
                for u in (snapshot.users if snapshot is not None else ())
                if str(u.id) == wanted or (u.email and u.email.casefold() == wanted.casefold())
            ),
            None,
        )
        if snapshot is None or user is None:
            raise ConfigurationError(
                f"No user {wanted!r} in any snapshot of connection {connection!r}.",
                hint="Give the email address or the numeric CertCentral user id.",
            )
        history = store.user_history(connection, user_ids=[user.id])
    latest_keys = latest.credentials.keys
    return UserTimeline(
        user=user,
        history=history[user.id],
        present_in_latest=snapshot.id == latest.id,
        latest_snapshot=latest,
        keys=None if latest_keys is None else latest.credentials.keys_of(user.id),
    )
