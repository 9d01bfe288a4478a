"""The use cases the CLI runs: connect, test, pull, diff, findings, attest, report, export.

Each function takes plain values (a :class:`Workspace` for where data lives and what time it
is) and returns values; nothing here reads argv or the environment, prints, or exits. The CLI
turns results into output and errors into exit codes.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from auditor import __version__
from auditor.errors import ConfigurationError
from auditor.labels import describe_pull
from auditor.models import (
    ApiKey,
    Attestation,
    AttestationKind,
    ChangeSet,
    FindingsResult,
    KeyOwner,
    Operator,
    PullProvenance,
    RawPage,
    ReviewItem,
    Snapshot,
    User,
    UserHistory,
    utc_now,
)

if TYPE_CHECKING:
    from auditor.client import CertCentralClient, ConnectionReport, PullObserver, PullResult
    from auditor.config import AuditConfig
    from auditor.credentials import MasterKey
    from auditor.evidence.reperform import Reperformance
    from auditor.identity import IdentityRequest, IdentitySource, LoadedIdentity
    from auditor.report import ReportData, ReportFormat
    from auditor.store import ConnectionRecord, Store


@dataclass(frozen=True)
class Workspace:
    """Where the tool keeps its data and how it tells time; built by the CLI from env and flags."""

    data_dir: Path
    master_key_file: Path
    master_key_env: str | None = field(default=None, repr=False)
    clock: Callable[[], datetime] = utc_now
    config_path: Path | None = None
    #: Extra places to look for auditor.toml (the CLI passes the working directory).
    config_search_dirs: tuple[Path, ...] = ()
    #: An httpx transport for the client (tests and the in-process demo); None = real network.
    transport: Any = None
    #: Extra CertCentralClient options from the CLI (retry_attempts, timeout, ...).
    client_options: Mapping[str, Any] = field(default_factory=dict)
    #: Who runs the tool (OS account, host, command line), gathered by the CLI; recorded with each pull.
    operator: Operator | None = None
    #: Where one-off notices go (the CLI prints them on stderr): e.g. a store tagged on first use.
    notice: Callable[[str], None] = field(default=lambda _message: None, repr=False, compare=False)

    def now(self) -> datetime:
        return self.clock()

    @contextmanager
    def store(self) -> Iterator[Store]:
        """The open store, its records checked against the master key's tags on every read.

        A store written before tags existed is tagged here once (after checking that the key
        opens its sealed secrets) and the notice says so.
        """
        from auditor.store import Store

        master = self.master_key()
        store = Store.open(self.data_dir, clock=self.clock, master_key=master)
        try:
            if store.untagged:
                _check_master_key(store, master)
                tagged = store.tag_existing_records()
                if tagged:
                    self.notice(
                        f"Authenticated {tagged} existing records of {store.path} with tags under the master key "
                        "(done once, on first use of this version); from now on a record changed outside "
                        "certcentral-auditor is refused. If you see this again for the same data directory, "
                        "the database was rolled back or altered: restore it from a backup."
                    )
            yield store
        finally:
            store.close()

    def master_key(self) -> MasterKey:
        """The master key; never a new one while the database holds secrets sealed under one."""
        from auditor.credentials import MasterKey
        from auditor.store import sealed_secrets_exist

        sealed = False
        if not (self.master_key_env and self.master_key_env.strip()) and not self.master_key_file.exists():
            sealed = sealed_secrets_exist(self.data_dir)
        return MasterKey.load_or_create(
            env_value=self.master_key_env, key_file=self.master_key_file, sealed_secrets_exist=sealed
        )

    def load_config(self, frameworks: Sequence[str] | None = None) -> AuditConfig:
        from auditor.config import load_config

        return load_config(
            self.config_path,
            search_dirs=(*self.config_search_dirs, self.data_dir),
            frameworks=frameworks,
        )


# --- connections -------------------------------------------------------------------------


def _client(workspace: Workspace, base_url: str, api_key: str, **options: Any) -> CertCentralClient:
    from auditor.client import CertCentralClient, check_base_url

    return CertCentralClient(
        check_base_url(base_url),
        api_key,
        transport=workspace.transport,
        clock=workspace.clock,
        **{**workspace.client_options, **options},
    )


def connect(
    workspace: Workspace, name: str, *, base_url: str, region: str | None, api_key: str
) -> ConnectionReport:
    """Test the key and, only if the test passes, save the connection with the key encrypted."""
    from auditor.credentials import fingerprint

    _check_connection_name(name)
    master = workspace.master_key()
    with _client(workspace, base_url, api_key) as client:
        report = client.test_connection()
    now = workspace.now()
    with workspace.store() as store:
        store.save_connection(
            name,
            base_url=base_url,
            region=region,
            encrypted_key=master.seal_api_key(name, api_key),
            key_fingerprint=fingerprint(api_key),
            added_at=now,
        )
        store.record_connection_test(name, at=now, result=describe_test_result(report))
    return report


def describe_test_result(report: ConnectionReport) -> str:
    if report.warnings:
        return "ok (partial view)"
    return "ok"


def test_connection(workspace: Workspace, name: str) -> ConnectionReport:
    """Run the connection test with the saved key and record the outcome (pass or fail)."""
    from auditor.errors import ApiError

    with workspace.store() as store:
        record = store.get_connection(name)
        api_key = _decrypt_key(workspace, record)
        try:
            with _client(workspace, record.base_url, api_key) as client:
                report = client.test_connection()
        except ApiError as error:
            store.record_connection_test(name, at=workspace.now(), result=type(error).__name__)
            raise
        store.record_connection_test(name, at=workspace.now(), result=describe_test_result(report))
        return report


def list_connections(workspace: Workspace) -> list[ConnectionRecord]:
    with workspace.store() as store:
        return store.list_connections()


def disconnect(workspace: Workspace, name: str) -> None:
    with workspace.store() as store:
        store.delete_connection(name)


def _check_connection_name(name: str) -> None:
    from auditor.store import validate_connection_name

    validate_connection_name(name)


def _check_master_key(store: Store, master: MasterKey) -> None:
    """Refuse a master key that cannot open the secrets already stored here (CredentialsError).

    Called before a signing key may be created: a new key sealed under the wrong master key
    would be one the right master key can never open.
    """
    for record in store.list_connections()[:1]:
        master.open_api_key(record.name, record.encrypted_key)
    for key in store.signing_keys()[:1]:
        master.open_signing_key(key.encrypted_private_key)


def _decrypt_key(workspace: Workspace, record: ConnectionRecord) -> str:
    return workspace.master_key().open_api_key(record.name, record.encrypted_key)


# --- pull ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class PullOutcome:
    """A stored snapshot and how it compares with the previous complete one."""

    snapshot: Snapshot
    previous: Snapshot | None
    changes: ChangeSet | None


def pull(
    workspace: Workspace,
    connection: str,
    *,
    details: bool = False,
    page_size: int = 500,
    observer: PullObserver | None = None,
    lock_timeout: float = 5.0,
) -> PullOutcome:
    """Read every user and store one snapshot, all or nothing.

    Any error (or Ctrl-C) before the snapshot is saved leaves the store exactly as it was; the
    save itself is a single transaction. A pull that does not add up is stored as incomplete.
    """
    from auditor.diff import diff_snapshots
    from auditor.store import pull_lock

    with pull_lock(workspace.data_dir, connection, timeout=lock_timeout), workspace.store() as store:
        record = store.get_connection(connection)
        api_key = _decrypt_key(workspace, record)
        known = store.known_details(connection) if details else {}
        with _client(workspace, record.base_url, api_key, page_size=page_size) as client:
            result = client.pull_users(details=details, known_details=known, observer=observer, credentials=True)
        provenance = PullProvenance(
            connection=connection,
            base_url=record.base_url,
            account_id=result.account_id,
            key_fingerprint=record.key_fingerprint,
            tool_version=__version__,
            started_at=result.started_at,
            finished_at=result.finished_at,
            requests=result.requests,
            pages=result.pages,
            retries=result.retries,
            expected_total=result.expected_total,
            received=result.received,
            complete=result.complete,
            notes=_pull_notes(result),
            page_digests=tuple((page.endpoint, page.sha256) for page in result.raw_pages),
            details_fetched=result.details_fetched,
            operator=workspace.operator,
            key_owner=KeyOwner.from_user(result.me) if result.me is not None else None,
            endpoints=result.endpoints,
            not_evaluable=result.not_evaluable,
        )
        previous = store.latest_snapshot(connection, complete_only=True)
        snapshot = store.save_snapshot(
            provenance=provenance,
            users=result.users,
            raw_pages=result.raw_pages,
            record_digests=result.record_digests,
        )
    changes = diff_snapshots(previous, snapshot) if previous is not None and snapshot.complete else None
    return PullOutcome(snapshot=snapshot, previous=previous, changes=changes)


def _pull_notes(result: PullResult) -> tuple[str, ...]:
    notes = list(result.notes)
    me = result.me
    if me is not None and (me.restricted or not me.is_admin):
        notes.append(
            f"The key's user ({me.email}, {me.role_names or 'no role'}"
            f"{', division-restricted' if me.restricted else ''}) may not see the whole account: "
            "this snapshot may be a partial view."
        )
    elif me is None:
        # Not read is not "an unrestricted administrator": say the scope is unknown.
        notes.append(
            "Whether the key sees the whole account is unknown (GET /user/me was not read): "
            "this snapshot may be a partial view."
        )
    if result.proxy is not None:
        notes.append(f"Requests went through the proxy {result.proxy} (from the environment).")
    return tuple(notes)


# --- snapshots and diff --------------------------------------------------------------------


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


def diff(
    workspace: Workspace,
    connection: str,
    *,
    from_id: int | None = None,
    to_id: int | None = None,
    allow_incomplete: bool = False,
) -> tuple[Snapshot, Snapshot, ChangeSet]:
    """The change set between two snapshots; by default the latest complete one and the one before."""
    from auditor.diff import diff_snapshots

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
    return old, new, diff_snapshots(old, new)


# --- findings ------------------------------------------------------------------------------


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


def load_identity(
    config: AuditConfig, request: IdentityRequest | None, *, keep_bytes: bool = False
) -> LoadedIdentity | None:
    """Read the identity source (``--identity`` / ``[identity]``) in full, before any rule runs.

    Every problem (unknown preset, missing column, bad date, duplicate employee id) is a
    ConfigurationError naming the file, row and column: nothing is evaluated half.
    """
    from auditor.identity import load

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
) -> Evaluation:
    """Run the rules over a snapshot (default: the latest complete one) as of its own pull time.

    Everything is computed at ``snapshot.taken_at`` from what existed then (snapshots up to it,
    exceptions approved and attestations recorded by then, plus the reviews of this snapshot), so
    a re-run a year later gives the same findings. The workspace clock plays no part.

    The identity source (``identity``, or ``loaded_identity`` already read) is read in full
    before the store is touched; it is an input of the evaluation like the configuration.
    """
    config = workspace.load_config(frameworks)
    if loaded_identity is None:
        loaded_identity = load_identity(config, identity, keep_bytes=keep_identity_bytes)
    source = loaded_identity.source if loaded_identity is not None else None
    with workspace.store() as store:
        snapshot = select_snapshot(store, connection, snapshot_id, allow_incomplete=False)
        if since_id is not None:
            previous: Snapshot | None = select_snapshot(store, connection, since_id, allow_incomplete=True)
        else:
            previous = store.previous_snapshot(snapshot, complete_only=True)
        history = store.user_history(connection, until=snapshot)
        attestations = attestations_as_of(store.attestations(connection), snapshot)
        all_snapshots: tuple[Snapshot, ...] = ()
        if with_trend_history:
            all_snapshots = tuple(
                s for s in store.snapshots(connection) if (s.taken_at, s.id) <= (snapshot.taken_at, snapshot.id)
            )
        key_user_ids = {s.id: store.key_user_id(s.id) for s in (*all_snapshots, snapshot)}
        reviews = review_items_as_of(store, snapshot, config)
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
    )
    return Evaluation(
        snapshot=snapshot,
        previous=previous,
        changes=changes,
        findings=findings,
        config=config,
        attestations=attestations,
        history=dict(history),
        all_snapshots=all_snapshots,
        key_user_ids=key_user_ids,
        identity=source,
        identity_raw=loaded_identity.raw if loaded_identity is not None else (),
        reviews=reviews,
    )


def review_items_as_of(store: Store, snapshot: Snapshot, config: AuditConfig) -> tuple[ReviewItem, ...]:
    """The revoke/modify decisions of campaigns closed by ``snapshot.taken_at``, with their state then.

    Only snapshots taken by then (up to and including this one) prove a remediation, so a later
    pull never changes an earlier snapshot's findings.
    """
    from auditor import review

    campaigns = [
        c for c in store.campaigns(snapshot.connection) if c.closed_at is not None and c.closed_at <= snapshot.taken_at
    ]
    if not campaigns:
        return ()
    first = min(store.get_snapshot(c.snapshot_id).taken_at for c in campaigns)
    later = [
        s
        for s in store.snapshots(snapshot.connection)
        if s.complete and first < s.taken_at and (s.taken_at, s.id) <= (snapshot.taken_at, snapshot.id)
    ]
    decisions: dict[int, list[Any]] = {}
    emails: dict[tuple[int, int], str] = {}
    states: dict[int, review.Remediation] = {}
    for campaign in campaigns:
        closed_at = campaign.closed_at
        assert closed_at is not None  # noqa: S101 - filtered above
        decisions[campaign.id] = [d for d in store.campaign_decisions(campaign.id) if d.decided_at <= closed_at]
        for row in campaign_rows(campaign):
            emails[(campaign.id, int(row["user_id"]))] = str(row["email"])
        for decision in review.effective_decisions(decisions[campaign.id]).values():
            if decision.decision in {"revoke", "modify"}:
                states[decision.id] = review.remediation(
                    user_id=decision.user_id,
                    decision=decision.decision,
                    new_role=decision.new_role,
                    decided_at=decision.decided_at,
                    closed_at=closed_at,
                    later=later,
                    privileged_roles=config.privileged_roles,
                    remediation_days=config.remediation_days,
                    as_of=snapshot.taken_at,
                )
    return review.review_items(campaigns, decisions, emails, states)


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
) -> tuple[FindingsResult, ChangeSet]:
    """The findings and changes of one snapshot: what export ships and `verify --reperform` re-derives.

    The one place both call, so a change to how findings are evaluated reaches both.
    """
    from auditor.diff import diff_snapshots
    from auditor.rules import evaluate as run_rules

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
    )
    changes = (
        diff_snapshots(previous, snapshot, privileged_roles=tuple(config.privileged_roles))
        if previous is not None
        else ChangeSet(from_snapshot=None, to_snapshot=snapshot.id)
    )
    return findings, changes


def rules_version() -> str:
    """The tool version plus a digest of the rule catalogue, recorded in every manifest."""
    import json

    from auditor.rules import RULES

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
) -> Attestation:
    """Record a reviewer's attestation (2FA verified in the console, or an access review done).

    A review signs off one snapshot: ``snapshot_id``, by default the latest complete one now,
    recorded with its raw-data digest. ``valid_days`` says when the next review is due
    (``review-overdue``); it does not extend the sign-off to other snapshots. An MFA attestation
    covers the snapshots taken from now until it expires.
    """
    kind = AttestationKind(kind)
    if not by.strip() or not statement.strip():
        raise ConfigurationError("An attestation needs --by \"NAME <EMAIL>\" and a --statement.")
    if not 1 <= valid_days <= 3660:
        raise ConfigurationError(f"--valid-days must be between 1 and 3660, got {valid_days}.")
    if snapshot_id is not None and kind is not AttestationKind.REVIEW:
        raise ConfigurationError("Only a review names the snapshot it reviewed; drop --snapshot.")
    now = workspace.now()
    with workspace.store() as store:
        store.get_connection(connection)
        reviewed: Snapshot | None = None
        if kind is AttestationKind.REVIEW:
            reviewed = _reviewed_snapshot(store, connection, snapshot_id, now=now)
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


def _reviewed_snapshot(store: Store, connection: str, snapshot_id: int | None, *, now: datetime) -> Snapshot:
    """The complete snapshot a review made at ``now`` signs off; refused if finished after ``now``."""
    reviewed = select_snapshot(store, connection, snapshot_id, allow_incomplete=False)
    if now < reviewed.provenance.finished_at:
        raise ConfigurationError(
            f"Snapshot {reviewed.id} was finished at {reviewed.provenance.finished_at:%Y-%m-%d %H:%M:%S} "
            f"UTC, after this review's time ({now:%Y-%m-%d %H:%M:%S} UTC): a review cannot predate what "
            "it reviewed.",
            hint="Check the system clock, or name the reviewed snapshot with --snapshot ID "
            "(see `auditor snapshots`).",
        )
    return reviewed


def latest_valid(attestations: Sequence[Attestation], kind: AttestationKind, now: datetime) -> Attestation | None:
    """The newest attestation of ``kind`` valid at ``now``, else the newest of that kind, else None."""
    of_kind = sorted((a for a in attestations if a.kind is kind), key=lambda a: a.made_at, reverse=True)
    for attestation in of_kind:
        if attestation.valid_at(now):
            return attestation
    return of_kind[0] if of_kind else None


# --- reports -------------------------------------------------------------------------------


def raw_digest(snapshot: Snapshot) -> str:
    """One SHA-256 over the snapshot's raw pages, in the order fetched (the exports compute it)."""
    from auditor.exports import raw_data_digest

    return raw_data_digest(snapshot)


def account_name(snapshot: Snapshot) -> str:
    """The root division's name (CertCentral names the account's top container after it)."""
    roots = sorted(
        {user.division.name for user in snapshot.users if user.division and user.division.parent_id == 0}
    )
    if roots:
        return roots[0]
    if snapshot.provenance.account_id is not None:
        return f"Account {snapshot.provenance.account_id}"
    return snapshot.connection


def report_data(workspace: Workspace, evaluation: Evaluation) -> ReportData:
    """Everything the templates show, with the trend computed over every complete snapshot."""
    from auditor import exports
    from auditor.client import instance_label
    from auditor.report import ReportData, TrendPoint
    from auditor.rules import evaluate as run_rules
    from auditor.rules import review_of, reviewer_privileges

    snapshot = evaluation.snapshot
    trend: list[TrendPoint] = []
    ordered = [s for s in evaluation.all_snapshots if s.complete and s.taken_at <= snapshot.taken_at]
    previous: Snapshot | None = None
    for past in ordered:
        past_findings = (
            evaluation.findings
            if past.id == snapshot.id
            else run_rules(
                past,
                previous=previous,
                history=evaluation.history,
                config=evaluation.config,
                attestations=evaluation.attestations,
                now=past.taken_at,
                key_user_id=evaluation.key_user_ids.get(past.id),
                identity=evaluation.identity,
            )
        )
        stale = sum(
            1 for f in past_findings.active if f.rule_id in {"stale-login", "admin-dormant", "never-signed-in"}
        )
        trend.append(
            TrendPoint(
                taken_at=past.taken_at,
                users=len(past.users),
                admins=len(past.admins),
                stale=stale,
                findings=len(past_findings.active),
            )
        )
        previous = past
    now = workspace.now()
    digest = raw_digest(snapshot)
    review = review_of(evaluation.attestations, snapshot.id)
    last_review = None
    if review is None:
        last_review = max(
            (
                a
                for a in evaluation.attestations
                if a.kind is AttestationKind.REVIEW and a.made_at <= snapshot.taken_at and a.snapshot_id != snapshot.id
            ),
            key=lambda a: (a.made_at, a.id),
            default=None,
        )
    reviewer_roles = ""
    if review is not None:
        with suppress(LookupError):
            _user, reviewer_roles = reviewer_privileges(review, snapshot, evaluation.config.privileged_roles)
    # The id names what the report says, not when it was rendered: the same snapshot, findings
    # and sign-off give the same id a year later.
    content = hashlib.sha256(exports.findings_json(evaluation.findings)).hexdigest()
    signed = f"{review.id}|{review.made_at.isoformat()}" if review is not None else "-"
    report_id = "CCA-{}-{}".format(
        snapshot.id, hashlib.sha256(f"{digest}|{content}|{signed}".encode()).hexdigest()[:10].upper()
    )
    with workspace.store() as store:
        review_status_then = review_as_of(store, snapshot, evaluation.config, now=now)
    return ReportData(
        review_campaign=review_status_then.to_json() if review_status_then is not None else None,
        account_name=account_name(snapshot),
        account_id=snapshot.provenance.account_id,
        base_url=snapshot.provenance.base_url,
        instance=instance_label(snapshot.provenance.base_url),
        snapshot=snapshot,
        previous=evaluation.previous,
        changes=evaluation.changes,
        findings=evaluation.findings,
        history=evaluation.history,
        trend=tuple(trend),
        mfa_attestation=latest_valid(
            [a for a in evaluation.attestations if a.made_at <= snapshot.taken_at],
            AttestationKind.MFA,
            snapshot.taken_at,
        ),
        review_attestation=review,
        last_review=last_review,
        reviewer_privileged_roles=reviewer_roles,
        report_id=report_id,
        generated_at=now,
        tool_version=__version__,
        frameworks=evaluation.findings.profiles,
        raw_sha256=digest,
    )


def write_reports(
    workspace: Workspace,
    evaluation: Evaluation,
    *,
    formats: Sequence[ReportFormat],
    output_dir: Path,
    overwrite: bool = False,
    templates_dir: Path | None = None,
    roster_limit: int = 500,
    progress: Callable[[str], None] | None = None,
) -> list[Path]:
    from auditor.report import write_reports as render_and_write

    data = report_data(workspace, evaluation)
    return render_and_write(
        data,
        formats=formats,
        output_dir=output_dir,
        overwrite=overwrite,
        templates_dir=templates_dir,
        roster_limit=roster_limit,
        progress=progress,
    )


# --- evidence ------------------------------------------------------------------------------


@dataclass(frozen=True)
class ExportOutcome:
    """A written evidence bundle and its place in the connection's chain."""

    path: Path
    chain_id: str
    sequence: int
    manifest_sha256: str
    #: SHA-256 of the whole ZIP file, printed beside the manifest's.
    zip_sha256: str
    #: Why a new chain began ('' when this bundle continues the chain).
    new_chain_reason: str
    signing_key_created: bool
    #: What was done about a bundle left by an interrupted export ('' when there was none).
    recovered: str = ""


def export_evidence(
    workspace: Workspace,
    connection: str,
    *,
    output: Path,
    snapshot_id: int | None = None,
    frameworks: Sequence[str] | None = None,
    include_reports: bool = True,
    new_chain: bool = False,
    overwrite: bool = False,
    evaluation: Evaluation | None = None,
    report_files: Sequence[Path] = (),
    identity: IdentityRequest | None = None,
    include_identity_source: bool = False,
) -> ExportOutcome:
    """Write a signed bundle for one snapshot and advance the connection's evidence chain.

    ``report_files`` are reports already delivered (``auditor run``): they go into the bundle
    byte for byte, hashed as delivered. Otherwise the reports are rendered here.

    The identity source is recorded (names, digests, rows, mapping and the matched records) in the
    manifest's context and the rule inputs; its files go into the bundle only with
    ``include_identity_source`` (they hold personal data of everyone in the roster).
    """
    from auditor.errors import EvidenceError, StoreError
    from auditor.evidence import (
        ChainPosition,
        active_signing_key,
        build_bundle,
        bundle_context,
        contents_from,
        write_bundle,
    )
    from auditor.store import ChainHead, ChainMovedError, export_lock

    if evaluation is None:
        evaluation = evaluate(
            workspace, connection, snapshot_id=snapshot_id, frameworks=frameworks, with_trend_history=include_reports,
            identity=identity, keep_identity_bytes=include_identity_source,
        )
    if include_identity_source and evaluation.identity is None:
        raise ConfigurationError(
            "--include-identity-source was given, but there is no identity source.",
            hint="Add --identity FILE (or files = [...] in [identity] of auditor.toml).",
        )
    identity_files = evaluation.identity_raw if include_identity_source else ()
    report_html, report_pdf = _report_bytes(workspace, evaluation, include_reports, report_files)
    now = workspace.now()
    master = workspace.master_key()
    # One export of a connection at a time: the second starts from the head the first recorded
    # (the store's compare-and-swap below still refuses a fork should the lock be bypassed).
    with export_lock(workspace.data_dir, connection), workspace.store() as store:
        _check_master_key(store, master)
        key, created = active_signing_key(store, master, now=now)
        recovered = _recover_interrupted_export(workspace, store, connection)
        head = store.chain_head(connection)
        if head is None:
            chain = ChainPosition.start(reason=f"first evidence bundle of connection '{connection}'")
        elif new_chain:
            chain = ChainPosition.start(
                reason=f"new chain requested with --new-chain; the previous chain {head.chain_id} "
                f"ended at sequence {head.sequence}"
            )
        else:
            chain = ChainPosition.after(head)
        raw_pages = store.raw_pages(evaluation.snapshot.id)
        check_users_against_raw_pages(evaluation.snapshot, raw_pages)
        exceptions = evaluation.config.exceptions
        rule_inputs = _rule_inputs(evaluation, raw_pages, now=now)
        review_files = _review_files(store, evaluation, now=now)
        try:
            contents = contents_from(
                evaluation.snapshot,
                raw_pages=raw_pages,
                findings=evaluation.findings,
                changes=evaluation.changes,
                exceptions=exceptions,
                attestations=evaluation.attestations,
                # The views are as of the snapshot, like its findings: an export a year later
                # gives the same views (only the manifest's export time and chain move on).
                now=evaluation.snapshot.taken_at,
                history=evaluation.history,
                report_html=report_html,
                report_pdf=report_pdf,
                rule_inputs=rule_inputs,
                identity_files=identity_files,
                review_files=review_files,
            )
        except OSError as exc:
            # openpyxl builds the XLSX view through temporary files: a full or unwritable
            # temporary directory surfaces here, not as a bug. Its half-run writer generators
            # fail again when collected; collect them now, quietly, instead of at exit.
            import gc
            import sys
            import tempfile

            exc.__traceback__ = None
            if exc.__cause__ is not None:  # lxml's error, translated by the exports: its frames too
                exc.__cause__.__traceback__ = None
            hook, sys.unraisablehook = sys.unraisablehook, lambda _unraisable: None
            try:
                gc.collect()
            finally:
                sys.unraisablehook = hook
            raise EvidenceError(
                f"The evidence bundle could not be assembled: a temporary file could not be written "
                f"({exc.strerror or exc}).",
                hint=f"Check free space and permissions in {tempfile.gettempdir()} (or set TMPDIR).",
            ) from exc
        context = bundle_context(
            evaluation.snapshot,
            findings=evaluation.findings,
            changes=evaluation.changes,
            exceptions=exceptions,
            attestations=evaluation.attestations,
            retention=evaluation.config.retention_manifest(),
            raw_pages=len(raw_pages),
            rules_version=rules_version(),
            rule_settings=_rule_settings(evaluation.config),
            identity_source=identity_evidence(evaluation.identity, included=bool(identity_files)),
        )
        bundle = build_bundle(
            contents, signer=key.private_key, chain=chain, context=context, now=now, key_valid_from=key.valid_from
        )
        head_fields = bundle.chain_head_fields()
        # Publishing the file and advancing the chain cannot be one atomic step. Note the intent
        # first, so a crash between the two is repaired by the next export instead of leaving a
        # valid bundle outside the chain (which the next export would fork).
        pending = _pending_export_path(workspace, connection)
        _write_pending_export(pending, output, head_fields)
        path = write_bundle(bundle, output, overwrite=overwrite)
        try:
            store.advance_chain(
                connection, ChainHead(**head_fields), expected=head, new_chain=new_chain and head is not None
            )
            _clear_pending_export(pending)
        except StoreError as error:
            _clear_pending_export(pending)
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
    return ExportOutcome(
        path=path,
        chain_id=chain.chain_id,
        sequence=chain.sequence,
        manifest_sha256=bundle.manifest_sha256,
        zip_sha256=bundle.zip_sha256,
        new_chain_reason=chain.new_chain_reason,
        signing_key_created=created,
        recovered=recovered,
    )


def identity_evidence(source: IdentitySource | None, *, included: bool) -> dict[str, Any] | None:
    """The manifest's record of the identity source: names, SHA-256, rows, export time, mapping."""
    if source is None:
        return None
    return {**source.evidence(), "files_in_bundle": included}


def _recorded_identity(evaluation: Evaluation) -> IdentitySource | None:
    """The identity records a bundle carries: only those some user of the snapshot matched."""
    from auditor.identity import match_users

    source = evaluation.identity
    if source is None:
        return None
    matches = match_users(evaluation.snapshot.users, source, now=evaluation.snapshot.taken_at)
    return source.recorded(matches)


def _rule_inputs(evaluation: Evaluation, raw_pages: Sequence[RawPage], *, now: datetime) -> bytes:
    """``evidence/rule-inputs.json``: what the rules used besides the raw pages (issue 12 §5)."""

    from auditor.evidence.reperform import rule_inputs_json

    config = evaluation.config
    # Only the file's name is shown anywhere; the local path stays out of the bundle.
    identity = config.identity
    identity = replace(
        identity,
        files=tuple(Path(p.name) for p in identity.files),
        map_file=Path(identity.map_file.name) if identity.map_file is not None else None,
    )
    config = replace(
        config, source=Path(config.source.name) if config.source is not None else None, identity=identity
    )
    return rule_inputs_json(
        evaluation.snapshot,
        previous=evaluation.previous,
        history=evaluation.history,
        config=config,
        attestations=evaluation.attestations,
        reviews=evaluation.reviews,
        raw_pages=raw_pages,
        evaluated_at=evaluation.findings.evaluated_at,
        exported_at=now,
        rules_version=rules_version(),
        identity=_recorded_identity(evaluation),
    )


def _review_files(store: Store, evaluation: Evaluation, *, now: datetime) -> tuple[tuple[str, bytes], ...]:
    """``review/campaign-N/...``: the campaign the snapshot's report shows, its worksheets as imported,
    the normalised decisions (JSON and CSV) and the remediation states (issue 14)."""
    import json
    import re

    status = review_as_of(store, evaluation.snapshot, evaluation.config, now=now)
    if status is None:
        return ()
    folder = f"review/campaign-{status.campaign.id}"
    document = status.to_json()
    files: list[tuple[str, bytes]] = [
        (f"{folder}/campaign.json", (json.dumps(
            {key: value for key, value in document.items() if key not in {"decisions", "history"}},
            indent=2, sort_keys=True, ensure_ascii=False,
        ) + "\n").encode("utf-8")),
        (f"{folder}/decisions.json", (json.dumps(
            {"format": "certcentral-auditor-review-decisions/1", "campaign": status.campaign.id,
             "decisions": document["decisions"], "history": document["history"]},
            indent=2, sort_keys=True, ensure_ascii=False,
        ) + "\n").encode("utf-8")),
        (f"{folder}/decisions.csv", status_csv(status).encode("utf-8")),
    ]
    for recorded in status.imports:
        safe = re.sub(r"[^A-Za-z0-9._-]", "_", recorded.file_name)[:100] or "worksheet"
        files.append((f"{folder}/worksheets/{recorded.id:03d}-{safe}", recorded.content))
    return tuple(files)


def _rule_settings(config: AuditConfig) -> dict[str, Any]:
    """The configuration the rules ran with, as the manifest records it (issue 12 §1)."""
    from dataclasses import asdict

    return {
        "threshold_days": asdict(config.thresholds),
        "thresholds_set_by_policy": list(config.overridden),
        "privileged_roles": list(config.privileged_roles),
        "allowed_domains": list(config.allowed_domains),
        "shared_mailbox_patterns": list(config.shared_mailbox_patterns),
        "max_admins": config.max_admins,
        "exceptions": len(config.exceptions),
        "config_file": config.source.name if config.source is not None else None,
        "identity_break_glass": [{"user": e.user, "reason": e.reason} for e in config.identity.break_glass],
    }
def check_users_against_raw_pages(snapshot: Snapshot, raw_pages: Sequence[RawPage]) -> None:
    """Refuse (exit 6) a snapshot whose stored users differ from those its raw pages hold.

    The users are parsed again from the raw pages with the client's parser, the one the pull
    used, and compared field by field; the first difference is named (snapshot, user, field).
    ``is_saml_sso_only`` is compared only for users whose user-info page is in this snapshot:
    the others' value was reused from an earlier pull (``pull --details``).
    """
    import dataclasses

    from auditor.client import users_from_raw_pages
    from auditor.errors import ApiBadResponseError
    from auditor.store import StoreTamperedError

    def refuse(detail: str) -> StoreTamperedError:
        return StoreTamperedError(
            f"Snapshot #{snapshot.id}: {detail}. The stored users do not match the raw API answers they were "
            "parsed from, so the snapshot was changed after the pull; no evidence was signed.",
            hint="Treat the database as untrustworthy: restore it from a backup, or run `auditor pull` and "
            "export the new snapshot with `auditor export --snapshot ID`.",
        )

    if not raw_pages and not snapshot.users:
        return
    try:
        derived = users_from_raw_pages(raw_pages, details_fetched=snapshot.provenance.details_fetched)
    except ApiBadResponseError as exc:
        raise refuse(f"a stored raw page cannot be parsed ({exc.message})") from exc
    stored = {user.id: user for user in snapshot.users}
    for user_id in sorted(set(stored) | set(derived.users)):
        if user_id not in derived.users:
            raise refuse(f"user {user_id} is stored but appears in no raw page")
        if user_id not in stored:
            raise refuse(f"user {user_id} is in the raw pages but was not stored")
        mine, theirs = stored[user_id], derived.users[user_id]
        for item in dataclasses.fields(mine):
            if item.name == "is_saml_sso_only" and user_id not in derived.detailed:
                continue
            if getattr(mine, item.name) != getattr(theirs, item.name):
                kept, received = _shown(getattr(mine, item.name)), _shown(getattr(theirs, item.name))
                raise refuse(
                    f"user {user_id} ({theirs.email or 'no email'}) has {item.name} {kept} stored "
                    f"but {received} in the raw pages"
                )


def _shown(value: object) -> str:
    from auditor.models import Role

    if isinstance(value, tuple) and all(isinstance(item, Role) for item in value):
        return repr(", ".join(role.name for role in value) or "no role")
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _pending_export_path(workspace: Workspace, connection: str) -> Path:
    return workspace.data_dir / "evidence-pending" / f"{connection}.json"


def _clear_pending_export(pending: Path) -> None:
    pending.unlink(missing_ok=True)
    with suppress(OSError):  # keep the data directory tidy; another connection's note may remain
        pending.parent.rmdir()


def _write_pending_export(pending: Path, output: Path, head_fields: Mapping[str, Any]) -> None:
    import json

    from auditor.atomic import write_text_atomic

    pending.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    record = {**head_fields, "exported_at": head_fields["exported_at"].isoformat(), "path": str(output.resolve())}
    write_text_atomic(pending, json.dumps(record, sort_keys=True), mode=0o600)


def _recover_interrupted_export(workspace: Workspace, store: Store, connection: str) -> str:
    """Adopt a bundle that an interrupted export published without advancing the chain.

    The bundle is adopted only if it is still where it was written, its manifest is byte for
    byte the one recorded, and the chain has not moved since; otherwise the note is dropped.
    """
    import json
    import zipfile

    from auditor.models import parse_api_datetime
    from auditor.store import ChainHead

    pending = _pending_export_path(workspace, connection)
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
        _clear_pending_export(pending)
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
        _clear_pending_export(pending)
        return f"An earlier interrupted export left {path}, which no longer matches the chain; it was not adopted."
    store.advance_chain(connection, head, expected=current, new_chain=current is not None and head.sequence == 0)
    _clear_pending_export(pending)
    return (
        f"Adopted {path} (sequence {head.sequence}), published by an export that was interrupted before it "
        "could record it, into the evidence chain."
    )


def _report_bytes(
    workspace: Workspace, evaluation: Evaluation, include: bool, report_files: Sequence[Path]
) -> tuple[bytes | None, bytes | None]:
    if not include:
        return None, None
    if report_files:
        html = next((p.read_bytes() for p in report_files if p.suffix == ".html"), None)
        pdf = next((p.read_bytes() for p in report_files if p.suffix == ".pdf"), None)
        return html, pdf
    from auditor.report import render_html, render_pdf

    data = report_data(workspace, evaluation)
    return render_html(data).encode("utf-8"), render_pdf(data)


def verify_evidence(
    bundle: Path,
    *,
    public_keys: Sequence[Path] = (),
    manifest_sha256: Sequence[str] = (),
    allow_unpinned: bool = False,
    previous: Sequence[Path] = (),
    reperform: bool = False,
) -> tuple[bool, str]:
    """Verify a bundle offline; returns (intact and trusted, human-readable report).

    Fails closed: without a pinned key or a manifest SHA-256 received separately, a valid
    signature is "signer not trusted" unless ``allow_unpinned`` asks for integrity only.
    ``reperform`` then re-derives every view from the raw pages and recorded inputs.
    """
    from auditor.evidence import format_report, load_public_keys, verify_bundle

    report = verify_bundle(
        bundle,
        trusted_keys=load_public_keys(public_keys),
        trusted_manifests=manifest_sha256,
        allow_unpinned=allow_unpinned,
        previous=previous,
    )
    text = format_report(report)
    if not reperform:
        return report.ok, text
    if not report.ok:
        return False, text + "Re-performance: not attempted, because the bundle did not verify.\n"
    from auditor.evidence.reperform import format_reperformance

    result = reperform_evidence(bundle, previous=previous)
    return result.ok, text + format_reperformance(result)


def _rederived_users(
    pages: Sequence[RawPage], *, details_fetched: bool, details_reused: Mapping[int, bool | None]
) -> tuple[User, ...]:
    """A bundle's users parsed from its raw pages with the pull's own parser, sorted by id.

    ``is_saml_sso_only`` of a user with no user-info page in the bundle is the value the pull
    reused from an earlier one (recorded in the bundle's rule inputs). ValueError names a page
    the pull could not have accepted.
    """

    from auditor.client import users_from_raw_pages
    from auditor.errors import ApiBadResponseError

    try:
        derived = users_from_raw_pages(pages, details_fetched=details_fetched)
    except ApiBadResponseError as exc:
        raise ValueError(exc.message) from exc
    users = []
    for user_id in sorted(derived.users):
        user = derived.users[user_id]
        if details_fetched and user_id not in derived.detailed:
            user = replace(user, is_saml_sso_only=details_reused.get(user_id))
        users.append(user)
    return tuple(users)


def reperform_evidence(bundle: Path, *, previous: Sequence[Path] = ()) -> Reperformance:
    """Re-derive a verified bundle's views from its raw pages and recorded inputs (issue 12 §5).

    Uses the same functions as export (``evaluate_snapshot``, ``contents_from``), so a difference
    is either an altered bundle or a tool whose rules changed since (``rules_version`` says which).
    """
    from auditor.config import AuditConfig
    from auditor.evidence import IDENTITY_SOURCE_DIR, RULE_INPUTS_PATH, contents_from, read_verified_members
    from auditor.evidence.reperform import (
        Difference,
        Reperformance,
        compare_member,
        key_user_id_from_pages,
        page_digest_differences,
        parse_rule_inputs,
    )
    from auditor.identity import IdentitySource
    from auditor.models import CredentialInventory, parse_api_datetime

    def load(path: Path) -> tuple[Any, Any, list[RawPage], dict[str, bytes]] | str:
        import json

        members = read_verified_members(path, _all_members(path))
        manifest = json.loads(members["manifest.json"])
        if RULE_INPUTS_PATH not in members:
            return f"{path.name} carries no {RULE_INPUTS_PATH} (made by an older version); it cannot be re-performed."
        try:
            inputs, config = parse_rule_inputs(
                members[RULE_INPUTS_PATH],
                config_type=AuditConfig,
                provenance_type=PullProvenance,
                review_type=ReviewItem,
                attestation_type=Attestation,
                identity_type=IdentitySource,
            )
        except ValueError as exc:
            return f"{path.name}: {RULE_INPUTS_PATH} cannot be read ({exc})."
        pages = [
            RawPage(
                endpoint=str(entry.get("endpoint", "")),
                status=int(entry.get("http_status", 200)),
                body=members[entry["path"]],
                sha256=entry["sha256"],
                received_at=parse_api_datetime(entry.get("received_at")) or inputs.taken_at,
            )
            for entry in manifest["files"]
            if entry.get("role") == "primary-evidence"
        ]
        return inputs, config, pages, members

    loaded = load(Path(bundle))
    if isinstance(loaded, str):
        return Reperformance(differences=(), checked=(), error=loaded)
    inputs, config, pages, members = loaded
    differences: list[Difference] = page_digest_differences(inputs.provenance, pages)
    import json

    context = json.loads(members["manifest.json"])["context"]
    recorded_in_manifest = {key: context.get(key) for key in ("rules_version", "rule_settings", "identity_source")}
    included = any(name.startswith(IDENTITY_SOURCE_DIR) for name in members)
    from_inputs = {
        "rules_version": inputs.rules_version,
        "rule_settings": _rule_settings(config),
        "identity_source": identity_evidence(inputs.identity, included=included),
    }
    differences.extend(
        compare_member(
            "manifest.json",
            json.dumps(recorded_in_manifest, sort_keys=True).encode(),
            json.dumps(from_inputs, sort_keys=True).encode(),
        )
    )
    notes: list[str] = []
    try:
        users = _rederived_users(
            pages, details_fetched=inputs.provenance.details_fetched, details_reused=inputs.details_reused
        )
    except ValueError as exc:
        return Reperformance(differences=tuple(differences), checked=(), error=str(exc))
    snapshot = Snapshot(
        id=inputs.snapshot_id,
        connection=inputs.connection,
        taken_at=inputs.taken_at,
        users=users,
        provenance=inputs.provenance,
        # Keys, IP rules and guest access are re-derived from the raw pages too (issue 17).
        credentials=CredentialInventory.from_raw_pages(pages),
    )
    previous_snapshot = inputs.previous
    if previous_snapshot is not None:
        match = None
        for other in previous:
            found = load(Path(other))
            if not isinstance(found, str) and found[0].snapshot_id == previous_snapshot.id:
                match = (Path(other), found)
        if match is None:
            notes.append(
                f"changes are re-derived against the recorded previous snapshot #{previous_snapshot.id}; "
                "pass its bundle with --previous to re-derive that snapshot from its raw pages too"
            )
        else:
            other_path, (other_inputs, _config, other_pages, _members) = match
            rederived_previous = _rederived_users(
                other_pages,
                details_fetched=other_inputs.provenance.details_fetched,
                details_reused=other_inputs.details_reused,
            )
            import json

            from auditor.exports import user_dict

            recorded = {"users": [user_dict(user) for user in sorted(previous_snapshot.users, key=lambda u: u.id)]}
            actual = {"users": [user_dict(user) for user in rederived_previous]}

            differences.extend(
                compare_member(
                    RULE_INPUTS_PATH,
                    json.dumps(recorded, sort_keys=True).encode(),
                    json.dumps(actual, sort_keys=True).encode(),
                )
            )
            notes.append(f"the previous snapshot #{previous_snapshot.id} was re-derived from {other_path.name}")
            previous_snapshot = replace(
                previous_snapshot,
                users=rederived_previous,
                credentials=CredentialInventory.from_raw_pages(other_pages),
            )
    findings, changes = evaluate_snapshot(
        snapshot,
        previous=previous_snapshot,
        history=inputs.history,
        config=config,
        attestations=inputs.attestations,
        now=inputs.evaluated_at,
        key_user_id=key_user_id_from_pages(pages),
        identity=inputs.identity,
        reviews=inputs.reviews,
    )
    contents = contents_from(
        snapshot,
        raw_pages=pages,
        findings=findings,
        changes=changes,
        exceptions=config.exceptions,
        attestations=inputs.attestations,
        # As export does: the views are as of the snapshot, like its findings.
        now=inputs.evaluated_at,
        history=inputs.history,
    )
    checked: list[str] = []
    for path, rederived in contents.views():
        if path not in members:
            continue
        checked.append(path)
        differences.extend(compare_member(path, members[path], rederived))
    current = rules_version()
    if inputs.rules_version != current:
        notes.append(
            f"the bundle was evaluated with rules {inputs.rules_version}; this tool has {current}, so a "
            "difference in findings may come from a changed rule"
        )
    return Reperformance(differences=tuple(differences), checked=tuple(checked), notes=tuple(notes))


def _all_members(path: Path) -> list[str]:
    import json

    from auditor.evidence import read_verified_members

    manifest = json.loads(read_verified_members(path, ["manifest.json"])["manifest.json"])
    return ["manifest.json", *(entry["path"] for entry in manifest["files"])]


def public_signing_key(workspace: Workspace) -> tuple[str, str]:
    """The evidence signing key's fingerprint and public PEM (created on first use)."""
    from auditor.evidence import active_signing_key

    with workspace.store() as store:
        master = workspace.master_key()
        _check_master_key(store, master)
        key, _created = active_signing_key(store, master, now=workspace.now())
    return key.fingerprint, key.public_pem


def rotate_signing_key(workspace: Workspace) -> tuple[str, str]:
    """Retire the current signing key and start a new key period."""
    from auditor.evidence import rotate_signing_key as rotate

    with workspace.store() as store:
        master = workspace.master_key()
        _check_master_key(store, master)
        key = rotate(store, master, now=workspace.now())
    return key.fingerprint, key.public_pem


# --- the one-shot run ----------------------------------------------------------------------


@dataclass(frozen=True)
class RunOutcome:
    snapshot: Snapshot
    findings: FindingsResult
    report_paths: tuple[Path, ...]
    bundle_path: Path | None
    manifest_sha256: str | None


def run_once(
    workspace: Workspace,
    connection: str,
    *,
    frameworks: Sequence[str] | None,
    output_dir: Path,
    formats: Sequence[ReportFormat],
    templates_dir: Path | None = None,
    roster_limit: int = 500,
    details: bool = False,
    export: bool = True,
    evidence_dir: Path | None = None,
    step: Callable[[str], None] = lambda _message: None,
    after_pull: Callable[[PullOutcome], None] | None = None,
    identity: IdentityRequest | None = None,
    include_identity_source: bool = False,
) -> RunOutcome:
    """Pull, evaluate, report, export: one summary line per step. A failed pull stops everything.

    ``after_pull`` runs between the pull and the evaluation (the demo records its review of the
    new snapshot there). Every argument and the configuration are checked before the pull, so a typo (``--framework
    nist``) fails at once instead of storing a snapshot every night and never a report.
    """
    from auditor.report import account_slug

    check_run_arguments(
        workspace, connection, frameworks=frameworks, output_dir=output_dir, templates_dir=templates_dir,
        roster_limit=roster_limit, evidence_dir=evidence_dir if export else None, reports=bool(formats),
    )
    if include_identity_source and not export:
        raise ConfigurationError("--include-identity-source needs the evidence export; drop --no-export.")
    # The identity source is read in full before the pull: a bad row fails the run at once (exit 2).
    loaded_identity = load_identity(
        workspace.load_config(frameworks), identity, keep_bytes=include_identity_source and export
    )
    if include_identity_source and loaded_identity is None:
        raise ConfigurationError(
            "--include-identity-source was given, but there is no identity source.",
            hint="Add --identity FILE (or files = [...] in [identity] of auditor.toml).",
        )
    outcome = pull(workspace, connection, details=details)
    snapshot = outcome.snapshot
    step(describe_pull(outcome))
    if after_pull is not None and snapshot.complete:
        after_pull(outcome)
    if not snapshot.complete:
        from auditor.errors import ApiBadResponseError

        raise ApiBadResponseError(
            f"The pull stored snapshot {snapshot.id} as INCOMPLETE ({' '.join(snapshot.provenance.notes)}); "
            "no report or evidence was produced from it.",
            hint="Run again; if it persists, users are being changed during the pull.",
        )
    evaluation = evaluate(
        workspace, connection, snapshot_id=snapshot.id, frameworks=frameworks, with_trend_history=bool(formats),
        loaded_identity=loaded_identity,
    )
    findings = evaluation.findings
    identity_note = ""
    if evaluation.identity is not None:
        identity_note = f"; identity source {', '.join(f.name for f in evaluation.identity.files)}"
    step(
        f"Findings: {len(findings.active)} open, {len(findings.suppressed)} suppressed "
        f"({', '.join(findings.profiles)}){identity_note}"
    )
    paths: list[Path] = []
    if formats:
        _make_output_dir(output_dir)
        paths = write_reports(
            workspace,
            evaluation,
            formats=formats,
            output_dir=output_dir,
            overwrite=True,
            templates_dir=templates_dir,
            roster_limit=roster_limit,
        )
        step("Reports: " + ", ".join(str(path) for path in paths))
    bundle_path: Path | None = None
    manifest: str | None = None
    if export:
        target_dir = evidence_dir or output_dir
        _make_output_dir(target_dir)
        slug = account_slug(account_name(snapshot), snapshot.provenance.account_id)
        data_name = f"certcentral-evidence-{slug}-{snapshot.taken_at:%Y-%m-%d}-s{snapshot.id}.zip"
        exported = export_evidence(
            workspace,
            connection,
            output=target_dir / data_name,
            include_reports=bool(paths),
            overwrite=True,
            evaluation=evaluation,
            report_files=paths,
            include_identity_source=include_identity_source,
        )
        bundle_path, manifest = exported.path, exported.manifest_sha256
        if exported.recovered:
            step(exported.recovered)
        step(
            f"Evidence: {exported.path} (chain {exported.chain_id}, sequence {exported.sequence}); "
            f"manifest SHA-256 {exported.manifest_sha256}, bundle SHA-256 {exported.zip_sha256}"
        )
    return RunOutcome(
        snapshot=snapshot,
        findings=findings,
        report_paths=tuple(paths),
        bundle_path=bundle_path,
        manifest_sha256=manifest,
    )


def check_run_arguments(
    workspace: Workspace,
    connection: str,
    *,
    frameworks: Sequence[str] | None,
    output_dir: Path,
    templates_dir: Path | None,
    roster_limit: int,
    evidence_dir: Path | None,
    reports: bool,
) -> None:
    """What ``run`` checks before it pulls: the configuration and frameworks, the connection, the paths.

    Raises the error the failing step would raise later (exit 2 for arguments and configuration,
    6 for an output directory that cannot be written), so nothing is pulled or stored for a run
    that cannot finish.
    """
    _check_connection_name(connection)
    workspace.load_config(frameworks)  # unknown profile, bad auditor.toml or exceptions file
    if roster_limit < 0:
        raise ConfigurationError(
            f"--pdf-roster-limit must be 0 or more, got {roster_limit}.", hint="Pass --pdf-roster-limit 500."
        )
    if reports and templates_dir is not None and not Path(templates_dir).is_dir():
        raise ConfigurationError(
            f"The report templates directory {templates_dir} does not exist.",
            hint="Pass --templates DIR pointing at a copy of report_templates/, or leave it out.",
        )
    for directory in dict.fromkeys(d for d in (output_dir, evidence_dir) if d is not None):
        existing = Path(directory)
        while not existing.exists() and existing != existing.parent:
            existing = existing.parent
        if not existing.is_dir() or not os.access(existing, os.W_OK | os.X_OK):
            from auditor.errors import ReportError

            raise ReportError(
                f"The output directory {directory} cannot be used: {existing} is not a writable directory.",
                hint="Choose another directory with --output, or fix its permissions.",
            )
    with workspace.store() as store:
        store.get_connection(connection)  # unknown connection: the hint names `auditor connect`


def _make_output_dir(directory: Path) -> None:
    """Create an output directory (and parents) owner-only: reports and bundles hold names and emails."""
    from auditor.atomic import make_private_dirs
    from auditor.errors import ReportError

    try:
        make_private_dirs(directory)
    except OSError as exc:
        raise ReportError(
            f"The output directory {directory} could not be created: {exc.strerror or exc}.",
            hint="Choose another directory with --output.",
        ) from exc


# --- one user's history --------------------------------------------------------------------


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
    """Find a user by email (case-insensitive) or numeric id, in the newest snapshot that has them."""
    wanted = who.strip()
    with workspace.store() as store:
        snapshots = store.snapshots(connection)
        history = store.user_history(connection)
        if not snapshots:
            store.get_connection(connection)  # no such connection: advise `auditor connect`
    if not snapshots:
        raise ConfigurationError(
            f"Connection {connection!r} has no snapshots yet.", hint=f"Run `auditor pull --connection {connection}`."
        )
    for snapshot in reversed(snapshots):
        for user in snapshot.users:
            if str(user.id) == wanted or (user.email and user.email.casefold() == wanted.casefold()):
                latest_keys = snapshots[-1].credentials.keys
                return UserTimeline(
                    user=user,
                    history=history[user.id],
                    present_in_latest=snapshot is snapshots[-1],
                    latest_snapshot=snapshots[-1],
                    keys=None if latest_keys is None else snapshots[-1].credentials.keys_of(user.id),
                )
    raise ConfigurationError(
        f"No user {wanted!r} in any snapshot of connection {connection!r}.",
        hint="Give the email address or the numeric CertCentral user id.",
    )


# --- access review campaigns (issue 14) ----------------------------------------------------

#: A worksheet larger than this is not a worksheet this tool wrote.
MAX_WORKSHEET_BYTES = 64 * 1024 * 1024


@dataclass(frozen=True)
class OpenedCampaign:
    """What ``review open`` did: the campaign recorded and the worksheet written."""

    campaign: Any  # CampaignRecord
    rows: int
    output: Path


def _opened_by(workspace: Workspace) -> str:
    return workspace.operator.label if workspace.operator is not None else "unknown"


def open_review(
    workspace: Workspace,
    connection: str,
    *,
    snapshot_id: int | None,
    scope: str,
    due: datetime | None,
    output: Path,
) -> OpenedCampaign:
    """Open a campaign bound to one snapshot and write its worksheet (CSV or XLSX by suffix).

    The worksheet is written inside the transaction that records the campaign: if writing fails,
    no campaign is recorded.
    """
    import json

    from auditor import review
    from auditor.atomic import write_output

    suffix = output.suffix.lower()
    if suffix not in {".xlsx", ".csv"}:
        raise ConfigurationError(
            f"--output {output} must end in .xlsx or .csv (the worksheet's format).",
            hint="Give --output review.xlsx or --output review.csv.",
        )
    if scope not in review.SCOPES:
        raise ConfigurationError(f"Unknown scope {scope!r}.", hint="Use --scope all, privileged or flagged.")
    evaluation = evaluate(workspace, connection, snapshot_id=snapshot_id)
    snapshot = evaluation.snapshot
    now = workspace.now()
    if due is not None and due <= now:
        raise ConfigurationError(f"--due {due:%Y-%m-%d} is not in the future.", hint="Give a later --due DATE.")
    digest = raw_digest(snapshot)
    counted: list[int] = []

    def build(campaign_id: int) -> str:
        rows = review.build_rows(
            campaign_id,
            snapshot,
            scope=scope,
            findings=evaluation.findings,
            history=evaluation.history,
            privileged_roles=evaluation.config.privileged_roles,
        )
        if suffix == ".csv":
            data = review.worksheet_csv(rows)
        else:
            data = review.worksheet_xlsx(
                rows, campaign_id=campaign_id, snapshot=snapshot, raw_sha256=digest, due=due, scope=scope,
                created=now,
            )
        try:
            write_output(output, data)
        except OSError as exc:
            raise ConfigurationError(
                f"Could not write {output}: {exc.strerror or exc}. No campaign was opened.",
                hint="Give --output a writable path.",
            ) from exc
        counted.append(len(rows))
        return json.dumps(rows, sort_keys=True)

    with workspace.store() as store:
        campaign = store.open_campaign(
            connection,
            snapshot_id=snapshot.id,
            raw_sha256=digest,
            scope=scope,
            due=due,
            opened_at=now,
            opened_by=_opened_by(workspace),
            worksheet=build,
        )
    return OpenedCampaign(campaign=campaign, rows=counted[0], output=output)


def campaign_rows(campaign: Any) -> list[dict[str, Any]]:
    """The worksheet rows a campaign was opened with."""
    import json

    rows: list[dict[str, Any]] = json.loads(campaign.worksheet)
    return rows


@dataclass(frozen=True)
class ImportOutcome:
    campaign: Any  # CampaignRecord
    recorded: Any  # ImportRecord
    decisions: int
    refused: tuple[Any, ...]  # RefusedRow
    undecided: int
    superseded: int


def import_review(workspace: Workspace, file: Path, *, by: str) -> ImportOutcome:
    """Validate a filled worksheet and record its decisions: none if the file fails as a whole,
    else every row but those refused by a row-level rule (reported in ``refused``)."""
    from auditor import review

    name, email = review.parse_identity(by)
    try:
        with file.open("rb") as handle:
            content = handle.read(MAX_WORKSHEET_BYTES + 1)
    except OSError as exc:
        raise ConfigurationError(f"Could not read {file}: {exc.strerror or exc}.") from exc
    if len(content) > MAX_WORKSHEET_BYTES:
        raise ConfigurationError(f"{file.name}: larger than {MAX_WORKSHEET_BYTES} bytes; not a review worksheet.")
    campaign_id, campaign_row = review.campaign_of(file.name, content)
    reviewer = f"{name} <{email}>"
    with workspace.store() as store:
        try:
            store.get_campaign(campaign_id)
        except ConfigurationError as exc:
            raise ConfigurationError(
                f"{file.name}: row {campaign_row}, column campaign: {exc.message} Nothing was recorded.",
                hint=exc.hint,
            ) from exc
        campaign = store.get_open_campaign(campaign_id)
        parsed = review.parse_worksheet(
            file.name,
            content,
            campaign_id=campaign.id,
            snapshot_id=campaign.snapshot_id,
            rows=campaign_rows(campaign),
            reviewer=reviewer,
            reviewer_email=email,
        )
        earlier = {
            d.user_id for d in store.campaign_decisions(campaign.id) if d.reviewer.casefold() == reviewer.casefold()
        }
        recorded = store.record_import(
            campaign.id,
            file_name=file.name,
            content=content,
            imported_by=reviewer,
            imported_at=workspace.now(),
            decisions=parsed.decisions,
        )
    return ImportOutcome(
        campaign=campaign,
        recorded=recorded,
        decisions=len(parsed.decisions),
        refused=parsed.refused,
        undecided=parsed.undecided,
        superseded=sum(1 for d in parsed.decisions if d["user_id"] in earlier),
    )


@dataclass(frozen=True)
class StatusRow:
    """One worksheet row's state: the decision in force (if any) and its remediation."""

    user_id: int
    email: str
    decision: str  # keep, revoke, modify, or "" (undecided / "not reviewed" once closed)
    new_role: str
    justification: str
    reviewer: str
    ticket: str
    decided_at: datetime | None
    applied_at: datetime | None
    applied_snapshot: int | None
    remediation: str  # remediated, pending, overdue, regranted, or ""


@dataclass(frozen=True)
class CampaignStatus:
    campaign: Any  # CampaignRecord
    rows: tuple[StatusRow, ...]
    history: tuple[Any, ...]  # DecisionRecord, every one recorded
    imports: tuple[Any, ...]  # ImportRecord

    @property
    def decided(self) -> int:
        return sum(1 for r in self.rows if r.decision)

    @property
    def undecided(self) -> int:
        return len(self.rows) - self.decided

    def by_decision(self) -> dict[str, int]:
        counts = {"keep": 0, "revoke": 0, "modify": 0}
        for row in self.rows:
            if row.decision:
                counts[row.decision] += 1
        return counts

    def by_reviewer(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for row in self.rows:
            if row.reviewer:
                counts[row.reviewer] = counts.get(row.reviewer, 0) + 1
        return counts

    def by_remediation(self) -> dict[str, int]:
        """Counts per remediation state, in a fixed order (remediated, pending, overdue, regranted)."""
        counts = {state: sum(1 for r in self.rows if r.remediation == state)
                  for state in ("remediated", "pending", "overdue", "regranted")}
        return {state: n for state, n in counts.items() if n}

    def to_json(self) -> dict[str, Any]:
        c = self.campaign

        def when(value: datetime | None) -> str | None:
            return None if value is None else value.isoformat(timespec="seconds")

        return {
            "campaign": c.id,
            "connection": c.connection,
            "snapshot": c.snapshot_id,
            "raw_sha256": c.raw_sha256,
            "scope": c.scope,
            "due": when(c.due),
            "state": c.state,
            "opened_at": when(c.opened_at),
            "opened_by": c.opened_by,
            "closed_at": when(c.closed_at),
            "closed_by": c.closed_by,
            "statement": c.statement,
            "attestation_id": c.attestation_id,
            "rows": len(self.rows),
            "decided": self.decided,
            "undecided": self.undecided,
            "by_decision": self.by_decision(),
            "by_reviewer": self.by_reviewer(),
            "by_remediation": self.by_remediation(),
            "decisions": [
                {
                    "user_id": r.user_id,
                    "user": r.email,
                    "decision": r.decision or ("not reviewed" if c.state == "closed" else ""),
                    "new_role": r.new_role,
                    "justification": r.justification,
                    "reviewer": r.reviewer,
                    "ticket": r.ticket,
                    "decided_at": when(r.decided_at),
                    "applied_at": when(r.applied_at),
                    "applied_snapshot": r.applied_snapshot,
                    "remediation": r.remediation,
                }
                for r in self.rows
            ],
            "history": [
                {
                    "id": d.id,
                    "user_id": d.user_id,
                    "reviewer": d.reviewer,
                    "decision": d.decision,
                    "new_role": d.new_role,
                    "justification": d.justification,
                    "ticket": d.ticket,
                    "decided_at": when(d.decided_at),
                    "import_id": d.import_id,
                }
                for d in self.history
            ],
            "imports": [
                {"id": i.id, "file_name": i.file_name, "sha256": i.sha256, "imported_by": i.imported_by,
                 "imported_at": when(i.imported_at)}
                for i in self.imports
            ],
        }


STATUS_CSV_HEADER = ("user", "decision", "justification", "reviewer", "decided at", "applied at", "remediation status")


def status_csv(status: CampaignStatus) -> str:
    """The Entra-style review history: one line per row in scope."""
    import csv
    import io

    from auditor.exports import neutralise_cell

    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(STATUS_CSV_HEADER)
    closed = status.campaign.state == "closed"
    for r in status.rows:
        writer.writerow(
            [
                neutralise_cell(r.email),
                r.decision or ("not reviewed" if closed else ""),
                neutralise_cell(r.justification),
                neutralise_cell(r.reviewer),
                r.decided_at.isoformat(timespec="seconds") if r.decided_at else "",
                r.applied_at.isoformat(timespec="seconds") if r.applied_at else "",
                r.remediation,
            ]
        )
    return buffer.getvalue()


def _campaign_status(
    store: Store,
    campaign: Any,
    *,
    later: Sequence[Snapshot],
    config: AuditConfig,
    as_of: datetime,
    decisions_as_of: datetime | None = None,
) -> CampaignStatus:
    """Decisions recorded by ``decisions_as_of`` (default ``as_of``), remediation as of ``as_of``."""
    from auditor import review

    decided_by = decisions_as_of or as_of
    history = [d for d in store.campaign_decisions(campaign.id) if d.decided_at <= decided_by]
    current = review.effective_decisions(history)
    rows = []
    for row in campaign_rows(campaign):
        user_id = int(row["user_id"])
        decision = current.get(user_id)
        if decision is None:
            rows.append(StatusRow(user_id, str(row["email"]), "", "", "", "", "", None, None, None, ""))
            continue
        state = None
        if decision.decision in {"revoke", "modify"}:
            state = review.remediation(
                user_id=user_id,
                decision=decision.decision,
                new_role=decision.new_role,
                decided_at=decision.decided_at,
                closed_at=campaign.closed_at if campaign.closed_at and campaign.closed_at <= as_of else None,
                later=later,
                privileged_roles=config.privileged_roles,
                remediation_days=config.remediation_days,
                as_of=as_of,
            )
        rows.append(
            StatusRow(
                user_id=user_id,
                email=str(row["email"]),
                decision=decision.decision,
                new_role=decision.new_role,
                justification=decision.justification,
                reviewer=decision.reviewer,
                ticket=decision.ticket,
                decided_at=decision.decided_at,
                applied_at=state.at if state else None,
                applied_snapshot=state.snapshot_id if state else None,
                remediation=state.state if state else "",
            )
        )
    imports = tuple(
        i for i in store.campaign_imports(campaign.id) if i.imported_at is None or i.imported_at <= decided_by
    )
    return CampaignStatus(campaign=campaign, rows=tuple(rows), history=tuple(history), imports=imports)


def review_as_of(store: Store, snapshot: Snapshot, config: AuditConfig, *, now: datetime) -> CampaignStatus | None:
    """The campaign a report of ``snapshot`` shows: the one reviewing this snapshot, else the
    latest closed by its time, with remediation proven by the snapshots taken up to it."""
    campaigns = store.campaigns(snapshot.connection)
    own = [c for c in campaigns if c.snapshot_id == snapshot.id]
    if own:
        campaign = own[-1]
        decided_by = campaign.closed_at or now
    else:
        closed = [c for c in campaigns if c.closed_at is not None and c.closed_at <= snapshot.taken_at]
        if not closed:
            return None
        campaign = closed[-1]
        decided_by = campaign.closed_at or snapshot.taken_at
    later = _later_snapshots(store, snapshot.connection, campaign.snapshot_id, until=snapshot.taken_at)
    later = [s for s in later if (s.taken_at, s.id) <= (snapshot.taken_at, snapshot.id)]
    return _campaign_status(
        store, campaign, later=later, config=config, as_of=snapshot.taken_at, decisions_as_of=decided_by
    )


def _later_snapshots(store: Store, connection: str, after_id: int, *, until: datetime) -> list[Snapshot]:
    after = store.get_snapshot(after_id)
    return [
        s
        for s in store.snapshots(connection)
        if s.complete and (s.taken_at, s.id) > (after.taken_at, after.id) and s.taken_at <= until
    ]


def _pick_campaign(store: Store, campaign_id: int | None, connection: str | None) -> Any:
    if campaign_id is not None:
        return store.get_campaign(campaign_id)
    campaigns = store.campaigns(connection)
    if not campaigns:
        raise ConfigurationError(
            "There is no review campaign yet" + (f" for connection {connection!r}." if connection else "."),
            hint="Open one with `auditor review open --output review.xlsx`.",
        )
    open_ones = [c for c in campaigns if c.state == "open"]
    return open_ones[-1] if open_ones else campaigns[-1]


def review_status(workspace: Workspace, *, campaign_id: int | None, connection: str | None) -> CampaignStatus:
    """A campaign's decisions and their remediation as of now (default: the open campaign, else the latest)."""
    config = workspace.load_config()
    now = workspace.now()
    with workspace.store() as store:
        campaign = _pick_campaign(store, campaign_id, connection)
        later = _later_snapshots(store, campaign.connection, campaign.snapshot_id, until=now)
        return _campaign_status(store, campaign, later=later, config=config, as_of=now)


def close_review(
    workspace: Workspace,
    *,
    campaign_id: int | None,
    connection: str | None,
    by: str,
    statement: str,
    allow_undecided: bool,
) -> tuple[Any, Attestation, int]:
    """Management's acknowledgement: the campaign snapshot's review sign-off; the campaign becomes immutable.

    The sign-off counts for the review interval in force (the profiles' strictest ``full_review_days``,
    or ``privileged_review_days`` when the snapshot has privileged users and that is shorter; either
    overridden in ``auditor.toml``), so ``review-overdue`` and the sign-off's expiry agree. The
    sign-off and the close are one store transaction. Returns (campaign, the review attestation,
    rows recorded as not reviewed).
    """
    from auditor import review
    from auditor.rules import review_interval

    name, email = review.parse_identity(by)
    if not statement.strip():
        raise ConfigurationError("Closing a review needs a --statement.")
    config = workspace.load_config()
    now = workspace.now()
    with workspace.store() as store:
        campaign = store.get_open_campaign(_pick_campaign(store, campaign_id, connection).id)
        later = _later_snapshots(store, campaign.connection, campaign.snapshot_id, until=now)
        status = _campaign_status(store, campaign, later=later, config=config, as_of=now)
        if status.undecided and not allow_undecided:
            raise ConfigurationError(
                f"Review campaign #{campaign.id} has {status.undecided} undecided row(s) of {len(status.rows)}; "
                "nothing was closed.",
                hint=f"Import the missing decisions (`auditor review import FILE --by ...`), or close with "
                f"--allow-undecided to record them as not reviewed "
                f"(see `auditor review status --campaign {campaign.id}`).",
            )
        snapshot = _reviewed_snapshot(store, campaign.connection, campaign.snapshot_id, now=now)
        valid_days, _field = review_interval(snapshot, config)
        text = (
            f"Access review campaign #{campaign.id} ({campaign.scope}; {status.decided} of {len(status.rows)} rows "
            "decided" + (f", {status.undecided} not reviewed" if status.undecided else "") + f"): {statement.strip()}"
        )
        closed, attestation = store.close_campaign(
            campaign.id,
            closed_at=now,
            closed_by=f"{name} <{email}>",
            statement=statement.strip(),
            sign_off=text,
            expires=now + timedelta(days=valid_days),
            raw_sha256=raw_digest(snapshot),
        )
    return closed, attestation, status.undecided
