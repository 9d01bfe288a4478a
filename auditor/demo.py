"""The demo: the whole pipeline against the bundled sample account, no key and no network.

It starts the sandbox in-process on a free loopback port, connects with the sample View Only
key, pulls each monthly state with the clock set to that month, records the sample exceptions
and attestations, renders the reports, exports one evidence bundle per month (a chain), each
timestamped by a sandbox RFC 3161 TSA on loopback whose time is the demo's clock, and verifies
the chain with the signer pinned and the TSA's CA certificate (``tsa/ca.pem``).

The output directory is never emptied blindly. The demo writes only into ``data/``, ``keys/``,
``reports/`` and ``evidence/`` under it and lists every file and directory it wrote in a marker
file (:data:`MARKER`). A re-run removes exactly what that list names; it refuses (exit 2) when
those folders hold anything else, so a file the demo never wrote is never deleted.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from fnmatch import fnmatchcase as fnmatch
from pathlib import Path
from typing import TYPE_CHECKING

from auditor.atomic import make_private_dirs, write_text_atomic
from auditor.errors import ConfigurationError
from auditor.inputs import read_input_text
from auditor.labels import day
from auditor.models import AttestationKind, Operator
from auditor.pipeline import (
    PullOutcome,
    Workspace,
    attest,
    close_review,
    connect,
    import_review,
    open_review,
    public_signing_key,
    run_once,
    verify_evidence,
)
from auditor.pipeline.findings import evaluate
from auditor.pipeline.standards import write_standards
from auditor.report import ReportFormat
from auditor.review import HEADER
from auditor.samples import sample_account_dir, sample_states
from auditor.sandbox import Dataset, SandboxServer, load_dataset
from auditor.standards import StandardsFormat
from auditor.store import Store

if TYPE_CHECKING:
    from auditor.sandbox.tsa import SandboxTsa

DEMO_CONNECTION = "example-corp"
DEMO_KEY = "sandbox-view-only-key"  # View Only is the key the README recommends
#: Pulls happen at 06:00 UTC on each state's day, as a nightly cron job would.
PULL_TIME_OF_DAY = timedelta(hours=6)
#: The last month's 2FA check happens the afternoon before its pull; its review two hours after.
MFA_CHECK_BEFORE_PULL = timedelta(hours=14)
REVIEW_AFTER_PULL = timedelta(hours=2)
#: The folders the demo writes into, under its output directory.
DEMO_FOLDERS = ("data", "keys", "reports", "evidence", "fleet", "standards", "tsa")  # issue 19: OSCAL/OCSF, TSA CA
#: Lists what the demo wrote, so that a re-run removes exactly that and nothing else.
MARKER = ".certcentral-auditor-demo.json"
MARKER_FORMAT = "certcentral-auditor-demo-output/1"


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
    states = [load_dataset(path) for path in sample_states()]
    account_dir = sample_account_dir()
    output_dir = output_dir.resolve()
    # A fresh demo each time (stale data would muddle the chain), removing only what it wrote.
    prepare_output_dir(output_dir)

    def tracked(message: str) -> None:
        step(message)
        _write_marker(output_dir)  # after each step, so even a killed demo leaves an accurate list

    try:
        return _run(output_dir, states, account_dir, tracked, operator=operator)
    finally:
        _write_marker(output_dir)


def _write_standards(
    workspace: Workspace, snapshot_id: int, directory: Path, step: Callable[[str], None]
) -> list[Path]:
    """Issue 19: the latest snapshot's OSCAL documents and OCSF lines, in ``demo-output/standards/``."""
    evaluation = evaluate(workspace, DEMO_CONNECTION, snapshot_id=snapshot_id)
    written = write_standards(
        evaluation, formats=[StandardsFormat.OSCAL, StandardsFormat.OCSF], output_dir=directory, overwrite=True
    )
    step("OSCAL and OCSF: " + ", ".join(str(path) for path in written))
    return written


def _run(
    output_dir: Path,
    states: list[Dataset],
    account_dir: Path,
    step: Callable[[str], None],
    *,
    operator: Operator | None,
) -> DemoOutcome:
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
    with SandboxServer(states[0]) as server, _demo_tsa(clock) as tsa:
        step(f"Sandbox CertCentral running at {server.base_url} with {len(states[0].users)} users")
        tsa_ca = _write_tsa_ca(tsa.ca_pem, output_dir / "tsa", step, url=tsa.url)
        paths.append(tsa_ca)
        report = connect(workspace, DEMO_CONNECTION, base_url=server.base_url, region=None, api_key=DEMO_KEY)
        step(f"Connected with the sample View Only key ({report.me.email}, {report.me.role_names})")
        attestations = json.loads(read_input_text(account_dir / "attestations.json", "attestations file"))
        for index, state in enumerate(states):
            clock.now = _state_time(state.as_of)
            server.set_dataset(state)
            last = index == len(states) - 1
            after_pull = None
            if last:
                # 2FA is checked in the console the afternoon before the last pull, so that pull's
                # snapshot falls inside the attestation; the review of that snapshot can only be
                # recorded after it was pulled, and names it.
                pull_time = clock.now
                clock.now = pull_time - MFA_CHECK_BEFORE_PULL
                _record_attestations(workspace, [a for a in attestations if a["kind"] != "review"], step)
                clock.now = pull_time

                def after_pull(pulled: PullOutcome, store: Store, pull_time: datetime = pull_time) -> None:
                    clock.now = pull_time + REVIEW_AFTER_PULL
                    reviews = [a for a in attestations if a["kind"] == "review"]
                    _record_attestations(workspace, reviews, step, snapshot_id=pulled.snapshot.id, store=store)

            outcome = run_once(
                workspace,
                DEMO_CONNECTION,
                frameworks=None,
                output_dir=output_dir / ("reports" if last else "evidence"),
                formats=[ReportFormat.HTML, ReportFormat.PDF] if last else [],
                export=True,
                evidence_dir=output_dir / "evidence",
                step=_prefixed(step, f"[{day(clock.now)}]"),
                after_pull=after_pull,
                tsa_url=tsa.url,
            )
            if index == REVIEW_MONTH and len(states) > REVIEW_MONTH + 1:
                paths.extend(_run_review_campaign(workspace, clock, output_dir / "evidence" / "review", step))
                # Between the months, the account admin carries out the first revocation (ticket
                # SEC-2411) in the console; the next pull proves it. The second one is not done.
                states[index + 1] = _without_user(states[index + 1], REVIEW_REVOKED_DONE)
            if outcome.bundle_path is not None:
                bundles.append(outcome.bundle_path)
            if last:
                paths.extend(outcome.report_paths)
                paths.extend(_write_standards(workspace, outcome.snapshot.id, output_dir / "standards", step))
        paths.extend(_fleet_step(workspace, clock, output_dir=output_dir, step=step))
    latest = bundles[-1]
    public_key = output_dir / "keys" / "evidence-signing-key.pub.pem"
    _write_public_key(workspace, public_key)
    ok, text = verify_evidence(latest, public_keys=[public_key], previous=bundles[:-1], tsa_certs=[tsa_ca])
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


def _demo_tsa(clock: SteppedClock) -> SandboxTsa:
    """Issue 19: the demo's RFC 3161 TSA on loopback (auditor/sandbox/tsa.py), its time the demo's clock."""
    from auditor.sandbox.tsa import SandboxTsa  # deferred: cryptography and pyHanko are the demo's cost only

    return SandboxTsa(clock)


def _write_tsa_ca(ca_pem: bytes, directory: Path, step: Callable[[str], None], *, url: str) -> Path:
    """The demo TSA's CA certificate, for ``auditor verify BUNDLE --tsa-cert demo-output/tsa/ca.pem``."""
    make_private_dirs(directory)
    path = directory / "ca.pem"
    write_text_atomic(path, ca_pem.decode("ascii"))
    step(f"Sandbox time-stamping authority (RFC 3161, simulated time) at {url}; its CA certificate: {path}")
    return path


def _fleet_step(
    workspace: Workspace, clock: SteppedClock, *, output_dir: Path, step: Callable[[str], None]
) -> list[Path]:
    """Issue 21: a second sample account and the fleet summary of both, in ``fleet/`` (auditor/demo_fleet.py)."""
    from auditor.demo_fleet import run_fleet_demo

    after = clock.now + timedelta(hours=1)

    def set_clock(moment: datetime) -> None:
        clock.now = moment

    return run_fleet_demo(workspace, set_clock, main_connection=DEMO_CONNECTION, at=after,
                          output_dir=output_dir / "fleet", step=step)


#: The access review campaign opens on the fourth month (index 3), after its pull.
REVIEW_MONTH = 3
REVIEW_OWNERS = (
    # (reviewer, the divisions they own); everyone else goes to the second reviewer.
    ("Nadia Engineering-Owner <nadia.owner@example.net>", ("Engineering", "Platform Security")),
    ("Omar Commercial-Owner <omar.owner@example.net>", ()),
)
REVIEW_CLOSED_BY = "Amelia Yilmaz <amelia.yilmaz@example.com>"
REVIEW_REVOKED_DONE = "marcus.webb@example.com"
REVIEW_REVOKED_PENDING = "oliver.grant@example.com"
REVIEW_REVOKES = {
    REVIEW_REVOKED_DONE: ("Left the security team in September; no certificate duties.", "SEC-2411"),
    REVIEW_REVOKED_PENDING: ("Contract ended; Manager role no longer needed.", "SEC-2412"),
}


def _run_review_campaign(
    workspace: object, clock: SteppedClock, folder: Path, step: Callable[[str], None]
) -> list[Path]:
    """Open a campaign on the month's snapshot, two division owners import, management closes."""
    from openpyxl import load_workbook  # deferred: openpyxl is paid for by the demo's review step only

    assert isinstance(workspace, Workspace)  # noqa: S101
    folder.mkdir(parents=True, exist_ok=True)
    start = clock.now
    clock.now = start + timedelta(hours=1)
    worksheet = folder / "review-worksheet.xlsx"
    opened = open_review(
        workspace, DEMO_CONNECTION, snapshot_id=None, scope="all", due=start + timedelta(days=14), output=worksheet
    )
    campaign = opened.campaign
    step(f"Opened access review campaign {campaign.id} of snapshot {campaign.snapshot_id}: {opened.rows} rows")
    written = [worksheet]
    column = {name: index for index, name in enumerate(HEADER)}
    for number, (reviewer, divisions) in enumerate(REVIEW_OWNERS, start=1):
        workbook = load_workbook(worksheet)
        sheet = workbook["Review"]
        for row in sheet.iter_rows(min_row=2):
            division = str(row[column["division"]].value or "")
            mine = division in divisions if divisions else division not in REVIEW_OWNERS[0][1]
            if not mine:
                continue
            email = str(row[column["email"]].value)
            if email in REVIEW_REVOKES:
                reason, ticket = REVIEW_REVOKES[email]
                values = {"decision": "revoke", "justification": reason, "ticket": ticket}
            else:
                values = {"decision": "keep", "justification": "Role confirmed with the user's manager."}
            for name, value in values.items():
                row[column[name]].value = value
        filled = folder / f"review-{number}-{reviewer.split()[0].lower()}.xlsx"
        workbook.save(filled)
        written.append(filled)
        clock.now = start + timedelta(hours=2 + number)
        outcome = import_review(workspace, filled, by=reviewer)
        step(f"Imported {outcome.decisions} decisions by {reviewer} ({filled.name})")
    clock.now = start + timedelta(days=1)
    closed, attestation, _undecided = close_review(
        workspace,
        campaign_id=campaign.id,
        connection=DEMO_CONNECTION,
        by=REVIEW_CLOSED_BY,
        statement="Quarterly CertCentral access review acknowledged; two revocations ticketed (SEC-2411, SEC-2412).",
        allow_undecided=False,
    )
    step(f"Closed campaign {closed.id}: review attestation {attestation.id} signs off snapshot {closed.snapshot_id}")
    clock.now = start
    return written


def _without_user(state: Dataset, email: str) -> Dataset:
    return replace(state, users=tuple(u for u in state.users if u["email"] != email))


def prepare_output_dir(output_dir: Path) -> None:
    """Make ``output_dir`` ready for a fresh demo, removing only files an earlier demo wrote there.

    ConfigurationError (exit 2) when its demo folders hold anything the marker does not list.
    """
    if output_dir.exists() and not output_dir.is_dir():
        raise ConfigurationError(f"The demo output {output_dir} exists and is not a directory.",
                                 hint="Choose another directory with `auditor demo --output DIR`.")
    files, dirs = _marker_entries(output_dir)
    listed = set(files)
    foreign = sorted(
        relative
        for relative in (path.relative_to(output_dir).as_posix() for path in _demo_tree(output_dir))
        if relative not in listed and not _is_real_dir(output_dir / relative)
    )
    if foreign:  # checked before anything is removed: a refusal changes nothing
        shown = ", ".join(foreign[:5]) + (f" and {len(foreign) - 5} more" if len(foreign) > 5 else "")
        raise ConfigurationError(
            f"{output_dir} holds files the demo did not write ({shown}); nothing was removed or changed.",
            hint="Move them away, or choose an empty or new directory with `auditor demo --output DIR`.",
        )
    for relative in files:
        path = output_dir / relative
        if path.is_symlink() or path.is_file():
            path.unlink()
    # Deepest first, and only when empty: a directory that still holds something is not ours to remove.
    for relative in sorted(dirs, key=lambda name: name.count("/"), reverse=True):
        path = output_dir / relative
        if _is_real_dir(path) and not any(path.iterdir()):
            path.rmdir()
    make_private_dirs(output_dir)
    (output_dir / MARKER).unlink(missing_ok=True)
    _write_marker(output_dir)


def _marker_entries(output_dir: Path) -> tuple[list[str], list[str]]:
    """The files and directories the marker lists, each checked to lie inside a demo folder."""
    marker = output_dir / MARKER
    if not marker.exists():
        return _legacy_entries(output_dir)
    try:
        document = json.loads(read_input_text(marker, "demo marker file"))
    except (ValueError, RecursionError) as exc:
        raise ConfigurationError(f"{marker} is not a demo marker file the tool wrote: {exc}.",
                                 hint="Choose an empty or new directory with `auditor demo --output DIR`.") from exc
    if not isinstance(document, dict) or document.get("format") != MARKER_FORMAT:
        raise ConfigurationError(f"{marker} is not a demo marker file the tool wrote.",
                                 hint="Choose an empty or new directory with `auditor demo --output DIR`.")

    def entries(key: str) -> list[str]:
        values = document.get(key, [])
        if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
            raise ConfigurationError(f"{marker}: '{key}' is not a list of paths.")
        return [v for v in values if _inside_demo_folder(v)]

    return entries("files"), entries("directories")


#: What demos before the marker file wrote (all named for the sample account, Example Corp).
LEGACY_FILES = (
    "data/auditor.db", "data/auditor.db-wal", "data/auditor.db-shm", "data/locks/example-corp.lock",
    "data/locks/export+example-corp.lock", "data/evidence-pending/example-corp.json",
    "evidence/review/review-worksheet.xlsx", "evidence/review/review-*-*.xlsx",
    "keys/master.key", "keys/evidence-signing-key.pub.pem",
    "reports/certcentral-access-review-example-corp-*.html", "reports/certcentral-access-review-example-corp-*.pdf",
    "evidence/certcentral-evidence-example-corp-*.zip", "evidence/.certcentral-evidence-example-corp-*",
    "standards/certcentral-access-review-example-corp-*.json",
    "standards/certcentral-access-review-example-corp-*.jsonl",
    # The fleet step (issue 21, auditor/demo_fleet.py).
    "data/locks/example-subsidiary.lock", "data/notify/*.json",
    # The connections' shared rate windows (issue 15, auditor/client/window.py).
    "data/rate-window/example-*.json", "data/rate-window/example-*.json.lock",
    "fleet/fleet-summary.html", "fleet/fleet-summary.json",
    "fleet/example-corp/certcentral-access-review-example-corp-*.html",
    "fleet/example-subsidiary/certcentral-access-review-example-subsidiary-*.html",
    "tsa/ca.pem",  # the demo's TSA (issue 19, auditor/sandbox/tsa.py)
)


def _legacy_entries(output_dir: Path) -> tuple[list[str], list[str]]:
    """An output directory from a demo before the marker file: the files named as that demo named them.

    Anything else in the demo folders is foreign, so the demo refuses before removing anything.
    """
    files: list[str] = []
    dirs: list[str] = []
    for path in _demo_tree(output_dir):
        relative = path.relative_to(output_dir).as_posix()
        if _is_real_dir(path):
            dirs.append(relative)
        elif path.is_file() and not path.is_symlink() and any(fnmatch(relative, p) for p in LEGACY_FILES):
            files.append(relative)
    if not any(name.startswith("evidence/") for name in files):
        return [], []  # not recognisably a demo's output
    return files, dirs


def _inside_demo_folder(relative: str) -> bool:
    parts = Path(relative).parts
    return bool(parts) and parts[0] in DEMO_FOLDERS and ".." not in parts and not Path(relative).is_absolute()


def _is_real_dir(path: Path) -> bool:
    return path.is_dir() and not path.is_symlink()


def _demo_tree(output_dir: Path) -> Iterator[Path]:
    """Every file, link and directory under the demo folders (the folders themselves included)."""
    for folder in DEMO_FOLDERS:
        root = output_dir / folder
        if not root.exists() and not root.is_symlink():
            continue
        yield root
        if root.is_dir() and not root.is_symlink():
            for current, dirnames, filenames in os.walk(root):
                for name in (*dirnames, *filenames):
                    yield Path(current) / name


def _write_marker(output_dir: Path) -> None:
    """List everything now under the demo folders: the demo wrote all of it (they were empty before)."""
    if not output_dir.is_dir():
        return
    files: list[str] = []
    dirs: list[str] = []
    for path in _demo_tree(output_dir):
        relative = path.relative_to(output_dir).as_posix()
        (dirs if path.is_dir() and not path.is_symlink() else files).append(relative)
    document = {
        "format": MARKER_FORMAT,
        "note": "Written by `auditor demo`: the files it wrote here. A re-run removes these and nothing else.",
        "files": sorted(files),
        "directories": sorted(dirs),
    }
    write_text_atomic(output_dir / MARKER, json.dumps(document, indent=2) + "\n", mode=0o600)


def _prefixed(step: Callable[[str], None], prefix: str) -> Callable[[str], None]:
    return lambda message: step(f"{prefix} {message}")


def _state_time(as_of: datetime) -> datetime:
    return as_of + PULL_TIME_OF_DAY


def _record_attestations(
    workspace: object,
    attestations: list[dict[str, object]],
    step: Callable[[str], None],
    *,
    snapshot_id: int | None = None,
    store: Store | None = None,
) -> None:
    assert isinstance(workspace, Workspace)  # noqa: S101 - internal call
    for item in attestations:
        recorded = attest(
            workspace,
            DEMO_CONNECTION,
            kind=AttestationKind(str(item["kind"])),
            by=str(item["by"]),
            statement=str(item["statement"]),
            valid_days=int(str(item.get("valid_days", 90))),
            snapshot_id=snapshot_id,
            store=store,
        )
        of = f" of snapshot {recorded.snapshot_id}" if recorded.snapshot_id is not None else ""
        step(f"Recorded {recorded.kind.value} attestation{of} by {recorded.by}")


def _write_public_key(workspace: object, path: Path) -> None:
    assert isinstance(workspace, Workspace)  # noqa: S101 - internal call

    _fingerprint, pem = public_signing_key(workspace)
    make_private_dirs(path.parent)
    write_text_atomic(path, pem)
