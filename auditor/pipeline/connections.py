"""Connections and pulls: save and test a connection, pull one snapshot of the account."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from auditor import __version__
from auditor.credentials import fingerprint
from auditor.diff import diff_snapshots
from auditor.errors import ApiError
from auditor.models import ChangeSet, KeyOwner, PullProvenance, Snapshot
from auditor.pipeline.workspace import Workspace
from auditor.store import pull_lock, validate_connection_name

if TYPE_CHECKING:
    from auditor.client import CertCentralClient, ConnectionReport, PullObserver, PullResult
    from auditor.config import AuditConfig
    from auditor.store import ConnectionRecord, Store


def _client(
    workspace: Workspace, base_url: str, api_key: str, *, connection: str, config: AuditConfig | None = None,
    **options: Any,
) -> CertCentralClient:
    # Deferred, as in connection_target: the client loads httpx, which commands that never reach
    # the network (verify, report, snapshots) must not import (tests/e2e/test_verify_offline_imports.py).
    from auditor.client import CertCentralClient, check_base_url

    return CertCentralClient(
        check_base_url(base_url),
        api_key,
        transport=workspace.transport,
        clock=workspace.clock,
        # The connection's recent request times (never its key), shared by its processes so
        # back-to-back commands stay inside CertCentral's per-key windows (client/window.py).
        rate_window=workspace.data_dir / "rate-window" / f"{connection}.json",
        **{
            **workspace.client_options,
            "report_library_url": _report_library(workspace, base_url, config=config),
            **options,
        },
    )


def _report_library(workspace: Workspace, base_url: str, *, config: AuditConfig | None) -> str:
    """The Report Library base URL (§11.5): ``--report-library-url``, else ``[audit_log]``, else the instance's.

    ``config``: the configuration the command already read (``auditor run``), else it is read here.
    """
    from auditor.client.reports import report_library_url  # deferred: it loads httpx (see _client)

    override = workspace.client_options.get("report_library_url")
    if not override:
        override = (config or workspace.load_config()).report_library_url
    return report_library_url(base_url, override)


def connection_target(region: str | None, base_url: str | None) -> tuple[str | None, str]:
    """(region, base URL) of a new connection: ``--base-url`` wins, else the region (default ``us``)."""
    from auditor.client import resolve_base_url  # deferred: it loads httpx (see _client)

    region = region or (None if base_url else "us")
    return region, resolve_base_url(region, base_url)


def connect(
    workspace: Workspace, name: str, *, base_url: str, region: str | None, api_key: str
) -> ConnectionReport:
    """Test the key and, only if the test passes, save the connection with the key encrypted."""
    validate_connection_name(name)
    master = workspace.master_key()
    with _client(workspace, base_url, api_key, connection=name) as client:
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
    with workspace.store() as store:
        record = store.get_connection(name)
        api_key = _decrypt_key(workspace, record)
        try:
            with _client(workspace, record.base_url, api_key, connection=name) as client:
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


def _decrypt_key(workspace: Workspace, record: ConnectionRecord) -> str:
    return workspace.master_key().open_api_key(record.name, record.encrypted_key)


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
    page_size: int | None = None,
    observer: PullObserver | None = None,
    store: Store | None = None,
    config: AuditConfig | None = None,
) -> PullOutcome:
    """Read every user and store one snapshot, all or nothing.

    Any error (or Ctrl-C) before the snapshot is saved leaves the store exactly as it was; the
    save itself is a single transaction. A pull that does not add up is stored as incomplete.
    """
    lock = pull_lock(workspace.data_dir, connection, timeout=workspace.lock_timeouts.pull)
    with lock, workspace.store(store) as store:
        record = store.get_connection(connection)
        api_key = _decrypt_key(workspace, record)
        known = store.known_details(connection) if details else {}
        archived = store.archived_audit_log_keys(connection)
        sized = {} if page_size is None else {"page_size": page_size}
        with _client(workspace, record.base_url, api_key, connection=connection, config=config, **sized) as client:
            result = client.pull_users(
                details=details, known_details=known, observer=observer, credentials=True, audit_log_archived=archived
            )
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
            # Only a pull with details reads the digests again (Store.known_details): computing
            # them for every pull cost about 20 µs a user.
            record_digests=result.record_digests if result.details_fetched else None,
            audit_log_runs=result.audit_log_runs,
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
