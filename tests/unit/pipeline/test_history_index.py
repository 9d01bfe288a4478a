"""Issue 15: `history EMAIL` by index, and the trend from summary rows computed once per rules version."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from unittest import mock

import pytest

from auditor.pipeline import Workspace, connect, evaluate, findings, pull, user_timeline
from auditor.sandbox import SandboxServer
from auditor.store import Store


class _Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 11, 2, 6, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        self.now += timedelta(hours=1)
        return self.now


@pytest.fixture
def workspace(tmp_path: Path, sandbox: SandboxServer) -> Workspace:
    space = Workspace(data_dir=tmp_path / "data", master_key_file=tmp_path / "keys" / "master.key", clock=_Clock())
    connect(space, "prod", base_url=sandbox.base_url, region=None, api_key="sandbox-admin-key")
    for _ in range(3):
        pull(space, "prod")
    return space


def test_history_reads_only_the_snapshot_that_has_the_user(workspace: Workspace) -> None:
    read = Store._read_snapshot
    with mock.patch.object(Store, "_read_snapshot", autospec=True, side_effect=read) as reads:
        timeline = user_timeline(workspace, "prod", "ALICE.admin@example.com")
    assert timeline.user.id == 2700762 and timeline.present_in_latest
    assert timeline.history.first_seen < timeline.history.last_seen == timeline.latest_snapshot.taken_at
    assert reads.call_count == 1, "the latest snapshot, which has the user: no other is loaded"


def test_the_trend_reads_summaries_and_recomputes_once_for_other_rules(workspace: Workspace) -> None:
    rules = findings.run_rules
    with mock.patch.object(findings, "run_rules", side_effect=rules) as runs:
        first = evaluate(workspace, "prod", with_trend_history=True)
        assert first.summaries is not None and len(first.summaries) == 3 and runs.call_count == 3
        again = evaluate(workspace, "prod", with_trend_history=True)
        assert again.summaries == first.summaries and runs.call_count == 4, "only this snapshot's rules ran"
        with mock.patch.object(findings, "rules_version", return_value="9.9+rules.other"):
            newer = evaluate(workspace, "prod", with_trend_history=True)
            version = findings.summary_version(workspace.load_config())
            assert version.startswith("9.9+rules.other+settings.")
            assert runs.call_count == 7 and {s.rules_version for s in newer.summaries or ()} == {version}
            evaluate(workspace, "prod", with_trend_history=True)
            assert runs.call_count == 8, "recomputed once, then read"
    assert [s.findings for s in newer.summaries or ()] == [s.findings for s in first.summaries]


def test_other_thresholds_recompute_the_trend_once_and_its_last_point_is_this_evaluation(
    workspace: Workspace, tmp_path: Path
) -> None:
    first = evaluate(workspace, "prod", with_trend_history=True)
    assert first.summaries is not None and first.summaries[-1].findings == len(first.findings.active)
    config = tmp_path / "auditor.toml"
    config.write_text("[thresholds]\ninactive_user_days = 1\ninactive_admin_days = 1\n")
    strict = Workspace(data_dir=workspace.data_dir, master_key_file=workspace.master_key_file,
                       clock=workspace.clock, config_path=config)
    rules = findings.run_rules
    with mock.patch.object(findings, "run_rules", side_effect=rules) as runs:
        again = evaluate(strict, "prod", with_trend_history=True)
        assert runs.call_count == 3, "every point recomputed once with the new thresholds"
        evaluate(strict, "prod", with_trend_history=True)
        assert runs.call_count == 4, "then read: only this snapshot's rules ran"
    assert again.summaries is not None
    assert again.summaries[-1].findings == len(again.findings.active) > first.summaries[-1].findings
    assert {s.rules_version for s in again.summaries} == {findings.summary_version(strict.load_config())}
