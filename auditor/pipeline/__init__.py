"""The use cases the CLI runs: connect, test, pull, diff, findings, attest, report, export, run, review.

Each function takes plain values (a :class:`Workspace` for where data lives and what time it
is) and returns values; nothing here reads argv or the environment, prints, or exits. The CLI
turns results into output and errors into exit codes.

One module per use-case group: ``workspace`` (where data lives; the store), ``connections``
(connections, pull), ``findings`` (snapshots, diff, findings, history, attest), ``reports``,
``export`` (bundle, signing key), ``verify`` (offline checks, re-performance), ``run``,
``campaigns`` (review state as of a time) and ``review`` (the review commands). Each command
opens the store once and passes it through its steps. Every name is importable from here.
"""

from auditor.labels import describe_pull  # the pull summary run prints; kept importable from here
from auditor.pipeline.alerts import AlertOutcome, NotifySettings, resolve_settings
from auditor.pipeline.campaigns import (
    STATUS_CSV_HEADER,
    CampaignStatus,
    StatusRow,
    campaign_rows,
    review_as_of,
    review_items_as_of,
    status_csv,
)
from auditor.pipeline.connections import (
    PullOutcome,
    connect,
    connection_target,
    describe_test_result,
    disconnect,
    list_connections,
    pull,
    test_connection,
)
from auditor.pipeline.doctor import DoctorReport, doctor
from auditor.pipeline.export import ExportOutcome, export_evidence, public_signing_key, rotate_signing_key
from auditor.pipeline.findings import (
    Evaluation,
    UserTimeline,
    attest,
    attestations_as_of,
    diff,
    evaluate,
    evaluate_snapshot,
    list_snapshots,
    load_identity,
    raw_digest,
    rules_version,
    select_snapshot,
    user_timeline,
)
from auditor.pipeline.fleet import (
    AccountRun,
    FleetOutcome,
    RunRequest,
    discover_subaccounts,
    resolve_connections,
    run_accounts,
    suggested_connection_name,
)
from auditor.pipeline.reports import report, report_data, write_reports
from auditor.pipeline.review import (
    MAX_WORKSHEET_BYTES,
    ImportOutcome,
    OpenedCampaign,
    close_review,
    import_review,
    open_review,
    review_status,
)
from auditor.pipeline.run import RunOutcome, check_run_arguments, run_once
from auditor.pipeline.standards import split_formats, standards_files, standards_view, write_standards
from auditor.pipeline.verify import check_users_against_raw_pages, reperform_evidence, verify_evidence
from auditor.pipeline.workspace import Workspace

__all__ = [
    "MAX_WORKSHEET_BYTES",
    "STATUS_CSV_HEADER",
    "AccountRun",
    "AlertOutcome",
    "CampaignStatus",
    "DoctorReport",
    "Evaluation",
    "ExportOutcome",
    "FleetOutcome",
    "ImportOutcome",
    "NotifySettings",
    "OpenedCampaign",
    "PullOutcome",
    "RunOutcome",
    "RunRequest",
    "StatusRow",
    "UserTimeline",
    "Workspace",
    "attest",
    "attestations_as_of",
    "campaign_rows",
    "check_run_arguments",
    "check_users_against_raw_pages",
    "close_review",
    "connect",
    "connection_target",
    "describe_pull",
    "describe_test_result",
    "diff",
    "disconnect",
    "discover_subaccounts",
    "doctor",
    "evaluate",
    "evaluate_snapshot",
    "export_evidence",
    "import_review",
    "list_connections",
    "list_snapshots",
    "load_identity",
    "open_review",
    "public_signing_key",
    "pull",
    "raw_digest",
    "reperform_evidence",
    "report",
    "report_data",
    "resolve_connections",
    "resolve_settings",
    "review_as_of",
    "review_items_as_of",
    "review_status",
    "rotate_signing_key",
    "rules_version",
    "run_accounts",
    "run_once",
    "select_snapshot",
    "status_csv",
    "suggested_connection_name",
    "test_connection",
    "user_timeline",
    "verify_evidence",
    "write_reports",
]
# Issue 19: the OSCAL and OCSF views (kept apart so the list above merges cleanly).
__all__ += ["split_formats", "standards_files", "standards_view", "write_standards"]
