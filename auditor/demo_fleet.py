"""The demo's fleet step (issue 21): a second sample account on a second sandbox instance, one run over both.

Example Subsidiary (``samples/example-subsidiary``) is connected with its own View Only key and
pulled as of October; then, after Example Corp's last month, ``run_accounts`` runs both
connections and writes the fleet summary into ``fleet/`` of the demo's output. It exports no
bundle: the demo's evidence chain stays the five monthly bundles it verifies.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path

from auditor.pipeline import RunRequest, Workspace, connect, pull, run_accounts
from auditor.report import ReportFormat
from auditor.samples import subsidiary_states
from auditor.sandbox import SandboxServer, load_dataset

SUBSIDIARY_CONNECTION = "example-subsidiary"
SUBSIDIARY_KEY = "sandbox-subsidiary-view-only-key"
#: The subsidiary is first pulled at 06:00 UTC on its first state's day, like the main account.
PULL_TIME_OF_DAY = timedelta(hours=6)


def run_fleet_demo(
    workspace: Workspace,
    set_clock: Callable[[datetime], None],
    *,
    main_connection: str,
    at: datetime,
    output_dir: Path,
    step: Callable[[str], None],
) -> list[Path]:
    """Connect and pull the subsidiary, then one fleet run of both accounts at ``at``; the summary's paths."""
    states = [load_dataset(path) for path in subsidiary_states()]
    with SandboxServer(states[0]) as server:
        set_clock(states[0].as_of + PULL_TIME_OF_DAY)
        connect(workspace, SUBSIDIARY_CONNECTION, base_url=server.base_url, region=None, api_key=SUBSIDIARY_KEY)
        first = pull(workspace, SUBSIDIARY_CONNECTION)
        step(f"[fleet] Second sandbox instance at {server.base_url}: connected '{SUBSIDIARY_CONNECTION}' with its "
             f"own View Only key, pulled {len(first.snapshot.users)} users as snapshot {first.snapshot.id}")
        server.set_dataset(states[-1])
        set_clock(at)
        outcome = run_accounts(
            workspace, (main_connection, SUBSIDIARY_CONNECTION),
            request=RunRequest(formats=(ReportFormat.HTML,), export=False),
            output_dir=output_dir, fleet=True, step=lambda message: step(f"[fleet] {message}"),
        )
    return [*(path for run in outcome.accounts for path in (run.outcome.report_paths if run.outcome else ())),
            *outcome.summary_paths]
