"""Offline checks of what was pulled: stored users against their raw pages, bundles verified and re-performed.

Both parse raw pages with the pull's own parser (``auditor.parsing``), so verifying a bundle
offline never loads the HTTP client.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path

from auditor.errors import ApiBadResponseError
from auditor.evidence import format_report, load_public_keys, verify_bundle
from auditor.evidence.rederive import reperform_bundle
from auditor.evidence.reperform import Reperformance, format_reperformance
from auditor.evidence.timestamp import load_tsa_certificates
from auditor.models import RawPage, Role, Snapshot
from auditor.parsing import users_from_raw_pages
from auditor.pipeline.findings import evaluate_snapshot, rules_version
from auditor.store import StoreTamperedError


def check_users_against_raw_pages(snapshot: Snapshot, raw_pages: Sequence[RawPage]) -> None:
    """Refuse (exit 6) a snapshot whose stored users differ from those its raw pages hold.

    The users are parsed again from the raw pages with the parser the pull used
    (``auditor.parsing``) and compared field by field; the first difference is named (snapshot, user, field).
    ``is_saml_sso_only`` is compared only for users whose user-info page is in this snapshot:
    the others' value was reused from an earlier pull (``pull --details``).
    """
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
    tsa_certs: Sequence[Path] = (),
) -> tuple[bool, str]:
    """Verify a bundle offline; returns (intact and trusted, human-readable report).

    Fails closed: without a pinned key or a manifest SHA-256 received separately, a valid
    signature is "signer not trusted" unless ``allow_unpinned`` asks for integrity only.
    ``reperform`` then re-derives every view from the raw pages and recorded inputs.
    """
    report = verify_bundle(
        bundle,
        trusted_keys=load_public_keys(public_keys),
        trusted_manifests=manifest_sha256,
        allow_unpinned=allow_unpinned,
        previous=previous,
        tsa_certificates=[cert for path in tsa_certs for cert in load_tsa_certificates(path)],
    )
    text = format_report(report)
    if not reperform:
        return report.ok, text
    if not report.ok:
        return False, text + "Re-performance: not attempted, because the bundle did not verify.\n"
    result = reperform_evidence(bundle, previous=previous)
    return result.ok, text + format_reperformance(result)


def reperform_evidence(bundle: Path, *, previous: Sequence[Path] = ()) -> Reperformance:
    """Re-derive a verified bundle's views from its raw pages and recorded inputs (issue 12 §5).

    The rules are those export runs (``evaluate_snapshot``), so a difference is either an altered
    bundle or a tool whose rules changed since (``rules_version`` says which).
    """
    return reperform_bundle(bundle, previous=previous, evaluate=evaluate_snapshot, rules_version=rules_version())
