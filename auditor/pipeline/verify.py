"""Offline checks of what was pulled: stored users against their raw pages, bundles verified and re-performed.

Both parse raw pages with the pull's own parser (``auditor.parsing``), so verifying a bundle
offline never loads the HTTP client.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from auditor.models import Attestation, PullProvenance, RawPage, ReviewItem, Snapshot, User
from auditor.pipeline.findings import evaluate_snapshot, rules_version

if TYPE_CHECKING:
    from auditor.evidence.reperform import Reperformance


def check_users_against_raw_pages(snapshot: Snapshot, raw_pages: Sequence[RawPage]) -> None:
    """Refuse (exit 6) a snapshot whose stored users differ from those its raw pages hold.

    The users are parsed again from the raw pages with the parser the pull used
    (``auditor.parsing``) and compared field by field; the first difference is named (snapshot, user, field).
    ``is_saml_sso_only`` is compared only for users whose user-info page is in this snapshot:
    the others' value was reused from an earlier pull (``pull --details``).
    """
    import dataclasses

    from auditor.errors import ApiBadResponseError
    from auditor.parsing import users_from_raw_pages
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

    from auditor.errors import ApiBadResponseError
    from auditor.parsing import users_from_raw_pages

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
    from auditor.evidence.recorded import identity_evidence, rule_settings
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
