"""The demo: the whole pipeline against the bundled sample account, no key and no network.

It starts the sandbox in-process on a free loopback port, connects with the sample View Only
key, pulls each monthly state with the clock set to that month, records the sample exceptions
and attestations, renders the reports, exports one evidence bundle per month (a chain), and
verifies the chain with the signer pinned.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from auditor.models import AttestationKind, Operator
from auditor.samples import sample_account_dir, sample_states

DEMO_CONNECTION = "example-corp"
DEMO_KEY = "sandbox-view-only-key"  # View Only is the key the README recommends
#: Pulls happen at 06:00 UTC on each state's day, as a nightly cron job would.
PULL_TIME_OF_DAY = timedelta(hours=6)


@dataclass(frozen=True)
class DemoOutcome:
    paths: tuple[Path, ...]
    verified: bool
    summary: str


class SteppedClock:
    """A clock the demo moves forward month by month."""

    def __init__(self, start: datetime) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now


def run_demo(
    output_dir: Path, *, step: Callable[[str], None] = lambda _message: None, operator: Operator | None = None
) -> DemoOutcome:
    from auditor.pipeline import Workspace, connect, run_once, verify_evidence
    from auditor.report import ReportFormat
    from auditor.sandbox import SandboxServer, load_dataset

    states = [load_dataset(path) for path in sample_states()]
    account_dir = sample_account_dir()
    output_dir = output_dir.resolve()
    # A fresh demo each time: stale data from an earlier run would muddle the chain.
    for stale in ("data", "keys", "reports", "evidence"):
        shutil.rmtree(output_dir / stale, ignore_errors=True)
    output_dir.mkdir(parents=True, exist_ok=True)

    clock = SteppedClock(_state_time(states[0].as_of))
    workspace = Workspace(
        data_dir=output_dir / "data",
        # Demo only: the master key sits in the output folder. Real installs keep it in the
        # user config directory, apart from the data (see README, "Security model").
        master_key_file=output_dir / "keys" / "master.key",
        clock=clock,
        config_path=account_dir / "auditor.toml",
        operator=operator,
    )
    bundles: list[Path] = []
    paths: list[Path] = []
    with SandboxServer(states[0]) as server:
        step(f"Sandbox CertCentral running at {server.base_url} with {len(states[0].users)} users")
        report = connect(workspace, DEMO_CONNECTION, base_url=server.base_url, region=None, api_key=DEMO_KEY)
        step(f"Connected with the sample View Only key ({report.me.email}, {report.me.role_names})")
        attestations = json.loads((account_dir / "attestations.json").read_text(encoding="utf-8"))
        for index, state in enumerate(states):
            clock.now = _state_time(state.as_of)
            server.set_dataset(state)
            last = index == len(states) - 1
            if last:
                _record_attestations(workspace, attestations, step)
            outcome = run_once(
                workspace,
                DEMO_CONNECTION,
                frameworks=None,
                output_dir=output_dir / ("reports" if last else "evidence"),
                formats=[ReportFormat.HTML, ReportFormat.PDF] if last else [],
                export=True,
                evidence_dir=output_dir / "evidence",
                step=_prefixed(step, f"[{clock.now:%Y-%m-%d}]"),
            )
            if outcome.bundle_path is not None:
                bundles.append(outcome.bundle_path)
            if last:
                paths.extend(outcome.report_paths)
    latest = bundles[-1]
    public_key = output_dir / "keys" / "evidence-signing-key.pub.pem"
    _write_public_key(workspace, public_key)
    ok, text = verify_evidence(latest, public_keys=[public_key], previous=bundles[:-1])
    step(text)
    paths.extend(bundles)
    paths.append(public_key)
    summary = (
        f"Demo finished: {len(states)} monthly pulls, reports in {output_dir / 'reports'}, "
        f"{len(bundles)} chained evidence bundles in {output_dir / 'evidence'}, "
        f"verification {'passed' if ok else 'FAILED'}."
    )
    step(summary)
    return DemoOutcome(paths=tuple(paths), verified=ok, summary=summary)


def _prefixed(step: Callable[[str], None], prefix: str) -> Callable[[str], None]:
    return lambda message: step(f"{prefix} {message}")


def _state_time(as_of: datetime) -> datetime:
    return as_of + PULL_TIME_OF_DAY


def _record_attestations(workspace: object, attestations: list[dict[str, object]], step: Callable[[str], None]) -> None:
    from auditor.pipeline import Workspace, attest

    assert isinstance(workspace, Workspace)  # noqa: S101 - internal call
    for item in attestations:
        recorded = attest(
            workspace,
            DEMO_CONNECTION,
            kind=AttestationKind(str(item["kind"])),
            by=str(item["by"]),
            statement=str(item["statement"]),
            valid_days=int(str(item.get("valid_days", 90))),
        )
        step(f"Recorded {recorded.kind.value} attestation by {recorded.by}")


def _write_public_key(workspace: object, path: Path) -> None:
    from auditor.atomic import write_text_atomic
    from auditor.pipeline import Workspace, public_signing_key

    assert isinstance(workspace, Workspace)  # noqa: S101 - internal call
    _fingerprint, pem = public_signing_key(workspace)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_text_atomic(path, pem)
