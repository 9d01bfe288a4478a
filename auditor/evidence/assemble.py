"""Turns a evaluated snapshot into bundle contents and manifest context, via ``auditor.exports``.

Every CSV and XLSX cell goes through ``exports`` (formula-neutralised CSV with a BOM, XLSX cells
forced to text), so the bundle's views are the same bytes the other commands produce.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from auditor import __version__, exports
from auditor.evidence.bundle import BundleContents
from auditor.models import (
    Attestation,
    ChangeSet,
    ExceptionEntry,
    FindingsResult,
    RawPage,
    ReviewItem,
    Snapshot,
    UserHistory,
)

__all__ = ["ATTESTATIONS_HEADER", "attestations_json", "attestations_rows", "bundle_context", "contents_from"]

ATTESTATIONS_HEADER = ("id", "kind", "by", "statement", "made_at", "expires", "valid_at_export")


def attestations_rows(attestations: Sequence[Attestation], *, now: datetime) -> list[exports.Row]:
    """One row per attestation, oldest first; ``valid_at_export`` says whether it is in effect."""
    return [
        (item.id, item.kind.value, item.by, item.statement, item.made_at, item.expires, item.valid_at(now))
        for item in sorted(attestations, key=lambda a: (a.made_at, a.id))
    ]


def attestations_json(attestations: Sequence[Attestation], *, now: datetime) -> bytes:
    return exports.to_json_bytes(
        {
            "format": "certcentral-auditor-attestations/1",
            "evaluated_at": exports.iso(now),
            "attestations": [
                {
                    "id": item.id,
                    "connection": item.connection,
                    "kind": item.kind.value,
                    "by": item.by,
                    "statement": item.statement,
                    "made_at": exports.iso(item.made_at),
                    "expires": exports.iso(item.expires),
                    # A review signs off the one snapshot it names, with that snapshot's raw digest.
                    "snapshot_id": item.snapshot_id,
                    "raw_sha256": item.raw_sha256,
                    "valid_at_export": item.valid_at(now),
                }
                for item in sorted(attestations, key=lambda a: (a.made_at, a.id))
            ],
        }
    )


def contents_from(
    snapshot: Snapshot,
    *,
    raw_pages: Sequence[RawPage],
    findings: FindingsResult,
    changes: ChangeSet,
    exceptions: Sequence[ExceptionEntry],
    attestations: Sequence[Attestation],
    now: datetime,
    history: Mapping[int, UserHistory] | None = None,
    report_html: bytes | None = None,
    report_pdf: bytes | None = None,
    rule_inputs: bytes | None = None,
    identity_files: Sequence[tuple[str, bytes]] = (),
    review_files: Sequence[tuple[str, bytes]] = (),
    reviews: Sequence[ReviewItem] = (),
) -> BundleContents:
    """All views of one evaluated snapshot, rendered by ``auditor.exports`` (OSCAL by ``auditor.standards``)."""
    exception_list = sorted(exceptions, key=lambda e: (e.rule, e.user.casefold(), e.expires))
    attestation_rows = attestations_rows(attestations, now=now)
    sheets = {
        "users": (exports.ROSTER_HEADER, exports.roster_rows(snapshot, history=history)),
        "findings": (exports.FINDINGS_HEADER, exports.findings_rows(findings.findings)),
        "changes": (exports.CHANGES_HEADER, exports.changes_rows(changes)),
        "exceptions": (exports.EXCEPTIONS_HEADER, exports.exceptions_rows(exception_list)),
        "attestations": (ATTESTATIONS_HEADER, attestation_rows),
        "api keys": (exports.KEYS_HEADER, exports.keys_rows(snapshot)),  # issue 17
    }
    return BundleContents(
        raw_pages=tuple(raw_pages),
        snapshot_json=exports.snapshot_json(snapshot),
        findings_json=exports.findings_json(findings),
        findings_csv=exports.findings_csv(findings),
        changes_json=exports.changes_json(changes),
        changes_csv=exports.changes_csv(changes),
        exceptions_json=exports.to_json_bytes(
            {
                "format": "certcentral-auditor-exceptions/1",
                "exceptions": [
                    {**exports.exception_dict(entry), "expired_at_export": entry.expired(now)}
                    for entry in exception_list
                ],
            }
        ),
        exceptions_csv=exports.exceptions_csv(exception_list),
        attestations_json=attestations_json(attestations, now=now),
        attestations_csv=exports.rows_csv(ATTESTATIONS_HEADER, attestation_rows),
        workbook_xlsx=exports.workbook_xlsx(
            sheets, created=now, provenance=exports.provenance_rows(snapshot, generated_at=now)
        ),
        users_csv=exports.roster_csv(snapshot, history=history),
        report_html=report_html,
        report_pdf=report_pdf,
        rule_inputs_json=rule_inputs,
        identity_files=tuple(identity_files),
        review_files=tuple(review_files),
        keys_csv=exports.keys_csv(snapshot),
        keys_json=exports.keys_json(snapshot),
        standards_files=oscal_files(snapshot, findings, reviews=reviews),
    )


#: Where a bundle carries its OSCAL documents (issue 19).
OSCAL_DIR = "standards/oscal/"


def oscal_files(
    snapshot: Snapshot, findings: FindingsResult, *, reviews: Sequence[ReviewItem] = ()
) -> tuple[tuple[str, bytes], ...]:
    """The bundle's OSCAL documents: (``standards/oscal/<name>``, bytes), as of the evaluation."""
    from auditor.standards import oscal  # deferred: compliance-trestle loads only when a bundle is assembled

    return tuple((OSCAL_DIR + name, data) for name, data in oscal.documents(snapshot, findings, reviews=reviews))


def bundle_context(
    snapshot: Snapshot,
    *,
    findings: FindingsResult,
    changes: ChangeSet,
    exceptions: Sequence[ExceptionEntry],
    attestations: Sequence[Attestation],
    retention: Mapping[str, Any],
    raw_pages: int,
    rules_version: str | None = None,
    rule_settings: Mapping[str, Any] | None = None,
    identity_source: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The manifest's context (controls.md §3.5): where, when, with what settings, how complete.

    ``retention`` describes the strictest selected profile's period, e.g.
    ``{"profile": "pci-dss-4", "period": "12 months", "days": 365}``.
    """
    p = snapshot.provenance
    return {
        "connection": snapshot.connection,
        "account_id": p.account_id,
        "base_url": p.base_url,
        "api_key_fingerprint": p.key_fingerprint,
        "snapshot_id": snapshot.id,
        "snapshot_taken_at": snapshot.taken_at,
        "pull_started_at": p.started_at,
        "pull_finished_at": p.finished_at,
        "pull_complete": p.complete,
        "pull_notes": list(p.notes),
        "pull_tool_version": p.tool_version,
        # Who ran the pull and with whose key, and each list endpoint's reconciliation (issue 12 §3, §4).
        **exports.operator_fields(snapshot),
        "tool_version": __version__,
        "profiles": list(findings.profiles),
        "thresholds": [
            {"threshold": label, "value": value, "source": source} for label, value, source in findings.thresholds
        ],
        "limitations": list(findings.limitations),
        "record_counts": {
            "users": len(snapshot.users),
            "administrators": len(snapshot.admins),
            # null, never 0, when CertCentral would not list service users to this key.
            "service_users": None
            if "service_users" in p.not_evaluable
            else sum(1 for user in snapshot.users if user.is_service_user),
            "expected_total": p.expected_total,
            "received": p.received,
            "raw_pages": raw_pages,
            "findings": len(findings.findings),
            "findings_active": len(findings.active),
            "findings_suppressed": len(findings.suppressed),
            "changes": len(changes.changes),
            "exceptions": len(exceptions),
            "attestations": len(attestations),
            # Credential inventory (issue 17): null, never 0, when that part was not readable.
            "api_keys": None if snapshot.credentials.keys is None else len(snapshot.credentials.keys),
            "api_keys_active": None
            if snapshot.credentials.keys is None
            else sum(1 for key in snapshot.credentials.keys if key.is_active),
            "ip_rules": None if snapshot.credentials.ip_rules is None else len(snapshot.credentials.ip_rules),
        },
        # The parts CertCentral would not show this key: unknown, not none (issue 17).
        "not_evaluable": list(p.not_evaluable),
        "guest_access": snapshot.credentials.guest_access,
        "previous_snapshot_id": changes.from_snapshot,
        "retention": dict(retention),
        # Issue 12 §1: a re-run with a tool whose rules changed shows as a difference.
        "rules_version": rules_version,
        "rule_settings": dict(rule_settings) if rule_settings is not None else None,
        "findings_evaluated_at": findings.evaluated_at,
        # Issue 18: the HR / identity-provider roster the leaver rules used (None without one).
        "identity_source": dict(identity_source) if identity_source is not None else None,
    }
