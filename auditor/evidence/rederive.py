"""Re-performing one verified bundle (``auditor verify --reperform``, issue 12 §5): its users parsed
again from its raw pages, its snapshot, findings and views re-derived and compared with those shipped.

``reperform.py`` holds the recorded-input format and the comparison; this module runs them over a
bundle. The rules come in as ``evaluate`` (the pipeline passes ``evaluate_snapshot``, the one
function export uses too) with their ``rules_version``, so evidence imports neither the rules nor
the pipeline. Raw pages are parsed by ``auditor.parsing``: no HTTP client is loaded.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import Protocol

from auditor.auditlog import AuditLog
from auditor.config import AuditConfig
from auditor.errors import ApiBadResponseError
from auditor.evidence.assemble import contents_from
from auditor.evidence.auditlog import runs_from_manifest
from auditor.evidence.bundle import IDENTITY_SOURCE_DIR, RULE_INPUTS_PATH
from auditor.evidence.recorded import identity_evidence, rule_settings
from auditor.evidence.reperform import (
    Difference,
    Reperformance,
    RuleInputs,
    compare_member,
    key_user_id_from_pages,
    page_digest_differences,
    parse_rule_inputs,
)
from auditor.evidence.verify import read_verified_members
from auditor.exports import user_dict
from auditor.identity import IdentitySource
from auditor.models import (
    Attestation,
    ChangeSet,
    CredentialInventory,
    FindingsResult,
    PullProvenance,
    RawPage,
    ReviewItem,
    Snapshot,
    User,
    UserHistory,
    parse_api_datetime,
)
from auditor.parsing import users_from_raw_pages

__all__ = ["Evaluate", "reperform_bundle"]


class Evaluate(Protocol):
    """The findings and changes of one snapshot (``auditor.pipeline.evaluate_snapshot``)."""

    def __call__(
        self,
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
    ) -> tuple[FindingsResult, ChangeSet]: ...


@dataclass(frozen=True)
class _Loaded:
    """A verified bundle's recorded inputs, configuration, raw pages and members."""

    inputs: RuleInputs
    config: AuditConfig
    pages: list[RawPage]
    members: dict[str, bytes]


def reperform_bundle(
    bundle: Path, *, previous: Sequence[Path] = (), evaluate: Evaluate, rules_version: str
) -> Reperformance:
    """Re-derive a verified bundle's views from its raw pages and recorded inputs.

    Uses the same functions as export (``evaluate``, ``contents_from``), so a difference is either
    an altered bundle or a tool whose rules changed since (``rules_version`` says which).
    """
    loaded = _load(Path(bundle))
    if isinstance(loaded, str):
        return Reperformance(differences=(), checked=(), error=loaded)
    inputs, config, pages, members = loaded.inputs, loaded.config, loaded.pages, loaded.members
    differences: list[Difference] = page_digest_differences(inputs.provenance, pages)
    context = json.loads(members["manifest.json"])["context"]
    recorded_in_manifest = {key: context.get(key) for key in ("rules_version", "rule_settings", "identity_source")}
    included = any(name.startswith(IDENTITY_SOURCE_DIR) for name in members)
    from_inputs = {
        "rules_version": inputs.rules_version,
        "rule_settings": rule_settings(config),
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
            found = _load(Path(other))
            if not isinstance(found, str) and found.inputs.snapshot_id == previous_snapshot.id:
                match = (Path(other), found)
        if match is None:
            notes.append(
                f"changes are re-derived against the recorded previous snapshot #{previous_snapshot.id}; "
                "pass its bundle with --previous to re-derive that snapshot from its raw pages too"
            )
        else:
            other_path, earlier = match
            rederived_previous = _rederived_users(
                earlier.pages,
                details_fetched=earlier.inputs.provenance.details_fetched,
                details_reused=earlier.inputs.details_reused,
            )
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
                credentials=CredentialInventory.from_raw_pages(earlier.pages),
            )
    # Attribution and activity are re-derived from the archived audit-log runs the bundle carries (issue 17).
    try:
        runs = runs_from_manifest(json.loads(members["manifest.json"])["files"], members)
    except ValueError as exc:
        return Reperformance(differences=tuple(differences), checked=(), error=str(exc))
    findings, changes = evaluate(
        snapshot,
        previous=previous_snapshot,
        history=inputs.history,
        config=config,
        attestations=inputs.attestations,
        now=inputs.evaluated_at,
        key_user_id=key_user_id_from_pages(pages),
        identity=inputs.identity,
        reviews=inputs.reviews,
        audit_log=AuditLog.of(runs, until=inputs.taken_at) if runs else None,
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
        reviews=inputs.reviews,
    )
    checked: list[str] = []
    for path, rederived in contents.views():
        if path not in members:
            continue
        checked.append(path)
        differences.extend(compare_member(path, members[path], rederived))
    if inputs.rules_version != rules_version:
        notes.append(
            f"the bundle was evaluated with rules {inputs.rules_version}; this tool has {rules_version}, so a "
            "difference in findings may come from a changed rule"
        )
    return Reperformance(differences=tuple(differences), checked=tuple(checked), notes=tuple(notes))


def _load(path: Path) -> _Loaded | str:
    """A verified bundle's recorded inputs and raw pages; a string says why it cannot be re-performed."""
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
    return _Loaded(inputs=inputs, config=config, pages=pages, members=members)


def _all_members(path: Path) -> list[str]:
    manifest = json.loads(read_verified_members(path, ["manifest.json"])["manifest.json"])
    return ["manifest.json", *(entry["path"] for entry in manifest["files"])]


def _rederived_users(
    pages: Sequence[RawPage], *, details_fetched: bool, details_reused: Mapping[int, bool | None]
) -> tuple[User, ...]:
    """A bundle's users parsed from its raw pages with the pull's own parser, sorted by id.

    ``is_saml_sso_only`` of a user with no user-info page in the bundle is the value the pull
    reused from an earlier one (recorded in the bundle's rule inputs). ValueError names a page
    the pull could not have accepted.
    """
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
