"""Each command opens the store once: opening it runs the database's integrity check.

``auditor run`` used to open it for the argument check, the pull, the evaluation, the report's
review section and the export, each time checking the whole database again.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from unittest import mock

import pytest

from auditor.models import AttestationKind
from auditor.pipeline import (
    PullOutcome,
    Workspace,
    attest,
    connect,
    export_evidence,
    list_snapshots,
    open_review,
    pull,
    report,
    run_once,
)
from auditor.report import ReportFormat
from auditor.sandbox import SandboxServer
from auditor.store import Store


@pytest.fixture
def workspace(tmp_path: Path, sandbox: SandboxServer) -> Workspace:
    space = Workspace(
        data_dir=tmp_path / "data",
        master_key_file=tmp_path / "keys" / "master.key",
        clock=lambda: datetime(2026, 11, 2, 6, 0, tzinfo=UTC),
    )
    connect(space, "prod", base_url=sandbox.base_url, region=None, api_key="sandbox-admin-key")
    pull(space, "prod")
    return space


@contextmanager
def counting_opens() -> Iterator[list[Path]]:
    opened: list[Path] = []
    original = Store.open

    def open_and_count(data_dir: Path, **options: object) -> Store:
        opened.append(Path(data_dir))
        return original(data_dir, **options)  # type: ignore[arg-type]

    with mock.patch.object(Store, "open", side_effect=open_and_count):
        yield opened


def test_run_opens_the_store_once(workspace: Workspace, tmp_path: Path) -> None:
    with counting_opens() as opened:
        outcome = run_once(
            workspace, "prod", frameworks=None, output_dir=tmp_path / "out", formats=[ReportFormat.HTML]
        )
    assert outcome.bundle_path is not None and outcome.report_paths
    assert len(opened) == 1


def test_export_opens_the_store_once(workspace: Workspace, tmp_path: Path) -> None:
    with counting_opens() as opened:
        export_evidence(workspace, "prod", output=tmp_path / "bundle.zip", include_reports=False)
    assert len(opened) == 1


def test_report_opens_the_store_once(workspace: Workspace, tmp_path: Path) -> None:
    with counting_opens() as opened:
        _evaluation, paths = report(workspace, "prod", formats=[ReportFormat.HTML], output_dir=tmp_path)
    assert [p.suffix for p in paths] == [".html"]
    assert len(opened) == 1


def test_review_open_opens_the_store_once(workspace: Workspace, tmp_path: Path) -> None:
    with counting_opens() as opened:
        opened_campaign = open_review(
            workspace, "prod", snapshot_id=None, scope="all", due=None, output=tmp_path / "review.csv"
        )
    assert opened_campaign.rows > 0 and opened_campaign.output.is_file()
    assert len(opened) == 1


def test_snapshots_are_listed_through_the_use_case(workspace: Workspace) -> None:
    (summary,) = list_snapshots(workspace, "prod")
    assert summary.connection == "prod" and summary.complete
    assert list_snapshots(workspace, "other") == []


def test_run_hands_its_store_to_after_pull(workspace: Workspace, tmp_path: Path) -> None:
    # The demo records its review of the new snapshot there: on the run's store, not a second one.
    recorded: list[int | None] = []

    def after_pull(pulled: PullOutcome, store: Store) -> None:
        review = attest(
            workspace, "prod", kind=AttestationKind.REVIEW, by="Grace <grace@example.com>", statement="Reviewed",
            valid_days=90, snapshot_id=pulled.snapshot.id, store=store,
        )
        recorded.append(review.snapshot_id)

    with counting_opens() as opened:
        outcome = run_once(
            workspace, "prod", frameworks=None, output_dir=tmp_path / "out", formats=[], after_pull=after_pull
        )
    assert recorded == [outcome.snapshot.id]
    assert len(opened) == 1


@pytest.mark.parametrize("command", ["run", "export"])
def test_a_command_reads_the_configuration_once(workspace: Workspace, tmp_path: Path, command: str) -> None:
    with mock.patch.object(Workspace, "load_config", autospec=True, side_effect=Workspace.load_config) as loaded:
        if command == "run":
            run_once(workspace, "prod", frameworks=None, output_dir=tmp_path / "out", formats=[])
        else:
            export_evidence(workspace, "prod", output=tmp_path / "bundle.zip", include_reports=False)
    assert loaded.call_count == 1
