"""The terminal text of each command: tables, summaries and sentences, built from the use cases' values.

Every string that came from the API goes through :func:`safe` first: control characters (escape
sequences, right-to-left overrides) are shown escaped, never sent to the terminal.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from auditor.labels import CHANGE_KIND_LABELS, day, iso, minute, stamp
from auditor.models import ChangeSet, FindingsResult, Severity, Snapshot

if TYPE_CHECKING:
    from auditor.client import ConnectionReport
    from auditor.pipeline import CampaignStatus, Evaluation, ExportOutcome, UserTimeline
    from auditor.store import ConnectionRecord

#: The change-kind column of the terminal diff is as wide as its longest label.
_KIND_WIDTH = max(len(label) for label in CHANGE_KIND_LABELS.values())


def safe(text: str) -> str:
    """Terminal-safe text: control characters from the API (escape sequences, RTL overrides) are shown escaped."""
    return "".join(ch if ch.isprintable() else f"\\u{ord(ch):04x}" for ch in text)


def table(rows: Sequence[Sequence[str]]) -> str:
    """Left-aligned columns two spaces apart, the first row the header; no trailing spaces."""
    widths = [max(len(str(row[i])) for row in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(str(cell).ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
                     for row in rows)


def describe_connection(report: ConnectionReport) -> list[str]:
    """The connection test's outcome: whose key it is, what it sees, each warning."""
    me = report.me
    who = f"{me.full_name} <{me.email}>" if me.full_name else me.email or f"user {me.id}"
    scope = "sees the whole account" if report.sees_whole_account else "sees only part of the account"
    lines = [f"OK: the key works and may read users. It belongs to {who}, role {me.role_names or 'none'}; {scope}."]
    if report.account_id is not None:
        lines.append(f"Account id: {report.account_id}")
    lines.extend(f"Warning: {warning}" for warning in report.warnings)
    lines.extend(connection_extras(report))
    return lines


def connection_extras(report: ConnectionReport) -> list[str]:
    """What the connection test found of the key inventory and the audit log (issue 17)."""
    lines: list[str] = []
    if report.keys_readable is False:
        lines.append(
            "Warning: the key may not read GET /key: API keys and ACME URLs will be not evaluable. "
            "Use a key whose user is an Administrator."
        )
    elif report.keys_readable:
        lines.append("API keys: readable (GET /key).")
    if report.audit_log:
        lines.append(report.audit_log)
    return lines


def connections_table(records: Sequence[ConnectionRecord]) -> str:
    rows = [("NAME", "WHERE", "KEY FINGERPRINT", "ADDED", "LAST TEST")]
    for record in records:
        rows.append(
            (
                record.name,
                record.region or record.base_url,
                record.key_fingerprint,
                iso(record.added_at),
                f"{record.last_test_result or '-'} ({iso(record.last_test_at) or 'never'})",
            )
        )
    return table(rows)


def describe_export(outcome: ExportOutcome) -> str:
    """Where the bundle is and the two hashes to send the auditor out of band."""
    chain = "genesis of a new chain" if outcome.sequence == 0 else f"sequence {outcome.sequence}"
    return (
        f"Evidence bundle {outcome.path} ({chain} {outcome.chain_id}).\n"
        f"Manifest SHA-256: {outcome.manifest_sha256}\n"
        f"Bundle SHA-256:   {outcome.zip_sha256}  (of the whole ZIP file)\n"
        "Send these hashes to your auditor now (e-mail or ticket): an outside copy is what proves the "
        "chain was not rebuilt later by someone holding the signing key "
        "(`auditor verify FILE.zip --manifest-sha256 HEX`)."
        + (f"\n{outcome.timestamp}" if outcome.timestamp else "")
    )


def format_history_text(timeline: UserTimeline) -> str:
    """One user across every snapshot, for a person."""
    user, history = timeline.user, timeline.history
    name = f" ({safe(user.full_name)})" if user.full_name else ""
    lines = [
        f"{safe(user.email) or 'user'} id {user.id}{name}",
        f"  first seen  {stamp(history.first_seen)}",
        f"  last seen   {stamp(history.last_seen)}"
        + ("  (in the latest snapshot)" if timeline.present_in_latest else "  (gone from later snapshots)"),
        f"  status      {safe(user.status) or '-'}",
        f"  last sign-in {iso(user.last_login) or 'never seen'}",
        "  roles:",
    ]
    lines.extend(f"    since {day(at)}  {safe(roles) or '(none)'}" for at, roles in history.role_history)
    if timeline.keys is None:
        lines.append("  API keys: not readable in the latest snapshot (unknown, not none)")
    else:
        lines.append(f"  API keys ({len(timeline.keys)}, latest snapshot):" if timeline.keys else "  API keys: none")
        lines.extend(
            f"    {safe(key.label)}  {key.status or '-'}  {safe(key.restriction)}"
            f"{'  legacy' if key.is_legacy else ''}  last used {iso(key.last_used) or 'never'}"
            for key in timeline.keys
        )
    return "\n".join(lines)


def format_changes_text(old: Snapshot, new: Snapshot, changes: ChangeSet) -> str:
    """The diff for a person: one line per change, escalations marked."""
    lines = [f"Changes from snapshot {old.id} ({minute(old.taken_at)}) to {new.id} ({stamp(new.taken_at)}):"]
    if changes.is_empty:
        lines.append("  no changes")
    for change in changes.changes:
        marker = "!! " if change.became_admin else ("!  " if change.escalation else "   ")
        detail = ""
        if change.before or change.after:
            detail = f": {change.before or '-'} -> {change.after or '-'}"
        who = f"(id {change.user_id})" if change.key_id is None else f"(key {change.key_id}, owner id {change.user_id})"
        label = CHANGE_KIND_LABELS[change.kind]
        lines.append(f"{marker}{label:<{_KIND_WIDTH}} {safe(change.email)} {who}{safe(detail)}")
        if change.attribution:
            lines.append(f"   {'':<{_KIND_WIDTH}} {safe(change.attribution)} (audit log)")
    if any(c.became_admin for c in changes.changes):
        lines.append("!! = became Administrator;  ! = gained a privileged role")
    return "\n".join(lines)


def format_findings_text(evaluation: Evaluation) -> str:
    """The findings by severity, the accepted risks, stale exceptions and the limitations."""
    result: FindingsResult = evaluation.findings
    snapshot = evaluation.snapshot
    lines = [f"Findings for snapshot {snapshot.id} ({stamp(snapshot.taken_at)}), "
             f"profiles: {', '.join(result.profiles)}"]
    if not snapshot.complete:
        lines.append("WARNING: this snapshot is INCOMPLETE; findings may miss users.")
    identity = dict(result.identity_source)
    if identity:
        lines.append(f"Identity source: {safe(identity['source'])}; {safe(identity['matched'])}.")
    for severity in Severity:
        group = [f for f in result.active if f.severity is severity]
        if not group:
            continue
        lines.append("")
        lines.append(f"{severity.value.upper()} ({len(group)})")
        for finding in group:
            who = f" {safe(finding.email)}" if finding.email else ""
            lines.append(f"  [{finding.rule_id}]{who}: {safe(finding.explanation)}")
            if finding.controls:
                lines.append(f"      controls: {', '.join(finding.controls)}")
            if finding.expired_exception is not None:
                lines.append(f"      exception expired {day(finding.expired_exception.expires)}: no longer suppresses")
    if result.suppressed:
        lines.append("")
        lines.append(f"SUPPRESSED ({len(result.suppressed)}), accepted risk:")
        for finding in result.suppressed:
            exc = finding.suppressed_by
            assert exc is not None  # noqa: S101 - suppressed implies an exception
            lines.append(f"  [{finding.rule_id}] {safe(finding.email)}: {safe(exc.reason)} "
                         f"(owner {safe(exc.owner)}, expires {day(exc.expires)})")
    if result.stale_exceptions:
        lines.append("")
        lines.append("STALE EXCEPTIONS (match nothing; remove them):")
        for stale in result.stale_exceptions:
            lines.append(f"  [{stale.rule}] {safe(stale.user)}" + (f" (line {stale.line})" if stale.line else ""))
    lines.append("")
    lines.append(f"{len(result.active)} findings, {len(result.suppressed)} suppressed.")
    lines.append("Limitations:")
    lines.extend(f"  - {text}" for text in result.limitations)
    return "\n".join(lines)


def format_review_status_text(status: CampaignStatus) -> str:
    """A campaign's progress and remediation for a person."""
    c = status.campaign
    lines = [
        f"Review campaign {c.id} ({c.state}) of connection {c.connection}, snapshot {c.snapshot_id}, "
        f"scope {c.scope}" + (f", due {day(c.due)}" if c.due else ""),
        f"  rows in scope: {len(status.rows)}; decided {status.decided}, undecided {status.undecided}",
        "  by decision: " + ", ".join(f"{k} {v}" for k, v in status.by_decision().items()),
        "  by reviewer: " + (", ".join(f"{safe(k)} {v}" for k, v in status.by_reviewer().items()) or "none"),
    ]
    for r in status.rows:
        if r.remediation:
            lines.append(f"  {r.decision} {safe(r.email)} by {safe(r.reviewer)}"
                         + (f" (ticket {safe(r.ticket)})" if r.ticket else "") + f": {r.remediation}"
                         + (f" at snapshot {r.applied_snapshot}" if r.applied_snapshot else ""))
    if c.state == "closed":
        lines.append(f"  closed {day(c.closed_at)} by {safe(c.closed_by or '')}: {safe(c.statement or '')}")
    return "\n".join(lines)
