"""Turns :class:`ReportData` into plain display values for the templates.

Templates stay declarative: every count, ordering and display string is decided here, once,
for both formats. Nothing here reads the clock; "days inactive" is measured at the snapshot. The PDF's bounds
(rows per printed table, findings per rule, items per evidence list) are decided here too.
(Over 500 lines: every section's display values, kept in the one place both formats read.)
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, NamedTuple
from urllib.parse import parse_qsl, urlsplit

from auditor.labels import CHANGE_KIND_LABELS, TWO_FA_LIMITATION, day, stamp, stamp_seconds
from auditor.models import Change, ChangeKind, ExceptionEntry, Finding, PullProvenance, Severity, Snapshot, User
from auditor.report._keys import keys_block

from ._chart import trend_svg

if TYPE_CHECKING:
    from auditor.report import ReportData

#: Shown beside the severity word (never colour alone); aria-hidden in the markup.
SEVERITY_ICONS = {
    Severity.CRITICAL: "‼",
    Severity.HIGH: "▲",
    Severity.MEDIUM: "■",
    Severity.LOW: "▼",
    Severity.INFO: "ℹ",
}

#: Change groups in the order a reviewer should read them: escalations (to Administrator above
#: all) first, then joiners and leavers, other role and status changes, the rest, sign-ins last.
CHANGE_GROUPS = (
    ("admin", "Became Administrator"),
    ("escalation", "Privilege escalation"),
    ("joiner", "Joiner"),
    ("leaver", "Leaver"),
    ("role", "Role change"),
    ("status", "Status change"),
    ("division", "Division change"),
    ("other", "Other change"),
    ("signin", "Sign-in"),
)
#: The same groups counted in a sentence ("5 joiners, 1 role change").
_GROUP_COUNTED = {
    "admin": ("became Administrator", "became Administrator"),
    "escalation": ("privilege escalation", "privilege escalations"),
    "joiner": ("joiner", "joiners"),
    "leaver": ("leaver", "leavers"),
    "role": ("role change", "role changes"),
    "status": ("status change", "status changes"),
    "division": ("division change", "division changes"),
    "other": ("other change", "other changes"),
    "signin": ("sign-in", "sign-ins"),
}
#: Sign-ins are activity, not access: summarised in one line, listed in a collapsed table (HTML)
#: or left to the attached changes.csv (PDF).
ACTIVITY_GROUPS = frozenset({"signin"})
#: Critical and high findings are "high-risk" in the headline; the rest are counted apart.
HIGH_RISK = frozenset({Severity.CRITICAL, Severity.HIGH})
#: At most this many rules get their own line in "Action required"; the rest are one summary line.
ACTION_LIMIT = 6
_GROUP_RANK = {key: rank for rank, (key, _label) in enumerate(CHANGE_GROUPS)}
_GROUP_LABEL = dict(CHANGE_GROUPS)


READ_ONLY_STATEMENT = (
    "The tool only reads from CertCentral: it changed nothing in the account. Removing or changing "
    "access is done by an administrator in the CertCentral console."
)
#: What every report's Limitations state once each (issue 12 §4); 2FA has its own item (TWO_FA_LIMITATION).
COMPLETENESS_STATEMENT = (
    "Completeness is reconciled to the API's own totals (page.total of each list endpoint), not "
    "proven against the CertCentral console: a user the API does not list would not be counted."
)
LAST_LOGIN_STATEMENT = (
    "Sign-in dates are CertCentral's last_login_date, which may not count activity through API "
    "keys or SAML single sign-on: a user shown as inactive may still be using the account that way."
)
NEVER_SIGNED_IN_STATEMENT = (
    "CertCentral gives no creation date, so how long a user has “never signed in” is measured from "
    "the first snapshot that saw them, not from when the account was created."
)
SCOPE_STATEMENT = (
    "The scope follows the API key's role and divisions: the API lists only the users the key's "
    "user may see, so a key linked to a restricted or non-Administrator user gives a partial view."
)
SYSTEM = "DigiCert CertCentral Services API v2"
#: Said of provenance a snapshot stored before it was recorded, rather than inventing it.
NOT_RECORDED_EARLIER = "not recorded (pulled by an earlier version)"


class RosterRow(NamedTuple):
    email: str
    name: str
    roles: str
    status: str
    division: str
    last_sign_in: str
    days: str
    kind: str
    first_seen: str
    user_id: int


class FindingRow(NamedTuple):
    anchor: str  #: ``rule-<id>`` on the first finding of each rule (the action list links to it)
    severity: str
    label: str
    icon: str
    rule: str
    title: str
    user: str
    user_id: str
    why: str
    evidence: tuple[tuple[str, str], ...]
    controls: str
    remediation: str
    note: str  #: an expired exception, said plainly


class SuppressedRow(NamedTuple):
    severity: str
    label: str
    icon: str
    rule: str
    user: str
    title: str
    reason: str
    owner: str
    expires: str
    approved: str = ""  #: "NAME <EMAIL> on YYYY-MM-DD"


class ChangeRow(NamedTuple):
    group: str
    group_label: str
    kind: str
    user: str
    user_id: int
    before: str
    after: str
    #: Who made the change, from the archived audit log (issue 17); "" when unknown.
    attribution: str = ""


@dataclass(frozen=True)
class Tuning:
    """Layout switches for the PDF. The defaults are the fast ones; the benchmark turns each off
    in turn to record what it buys (see ``bench/bench_report.py``)."""

    fixed_layout: bool = True  #: ``table-layout: fixed``: column widths from the first row only
    row_borders: bool = False  #: a border under every cell (many more drawn boxes)
    compact_roster: bool = True  #: 6 roster columns instead of 9 in print (fewer boxes per row)


def days_inactive(user: User, at: datetime) -> str:
    if user.last_login is None:
        return ""
    return str(max(0, (at - user.last_login).days))


def user_label(user: User) -> str:
    return user.email or user.username or f"user {user.id}"


def roster_row(user: User, snapshot: Snapshot, first_seen: datetime | None) -> RosterRow:
    kind = "service" if user.is_service_user else (user.user_type or "standard")
    return RosterRow(
        email=user_label(user),
        name=user.full_name,
        roles=user.role_names or "(none)",
        status=user.status or "(unknown)",
        division=user.division_name,
        last_sign_in=day(user.last_login) or "never",
        days=days_inactive(user, snapshot.taken_at),
        kind=kind,
        first_seen=day(first_seen),
        user_id=user.id,
    )


def without_subject(text: str, email: str) -> str:
    """The explanation without the user's address: the finding already names the user once.

    ``alice@x holds ...`` -> ``Holds ...``; ``alice@x's domain`` -> ``The domain``;
    ``Service user alice@x is`` -> ``This service user is``; any other mention -> ``this user``.
    """
    if not email or email not in text:
        return text
    for prefix, replacement in (
        (f"Service user {email} ", "This service user "),
        (f"{email}'s ", "The user's "),
    ):
        if text.startswith(prefix):
            return replacement + text[len(prefix):].replace(email, "this user")
    if text.startswith(email + " "):
        rest = text[len(email) + 1:].replace(email, "this user")
        return rest[:1].upper() + rest[1:]
    return text.replace(email, "this user")


def first_sentence(text: str) -> str:
    """The first sentence of a remediation, for the one-line action list."""
    # A sentence ends at ". " before a capital, but not after an abbreviation such as "e.g.".
    match = re.match(r"(.+?(?<!\be\.g)(?<!\bi\.e)\.)\s+[A-Z(]", text)
    return match.group(1) if match else text


def finding_row(finding: Finding, anchor: str = "") -> FindingRow:
    expired = finding.expired_exception
    note = ""
    if expired is not None:
        note = (
            f"An exception for this finding expired on {day(expired.expires)} "
            f"(owner {expired.owner}); it no longer suppresses it."
        )
    return FindingRow(
        anchor=anchor,
        severity=finding.severity.value,
        label=finding.severity.value.capitalize(),
        icon=SEVERITY_ICONS[finding.severity],
        rule=finding.rule_id,
        title=finding.title,
        user=finding.email or ("Account" if finding.user_id is None else f"user {finding.user_id}"),
        user_id="" if finding.user_id is None else str(finding.user_id),
        why=without_subject(finding.explanation, finding.email),
        evidence=finding.evidence,
        controls=", ".join(finding.controls),
        remediation=finding.remediation,
        note=note,
    )


class FindingGroup(NamedTuple):
    """The findings of one rule that share title, remediation and controls (the PDF's blocks)."""

    anchor: str
    severity: str
    label: str
    rule: str
    title: str
    remediation: str
    controls: str
    rows: tuple[FindingRow, ...]
    total: int  #: findings in the group; ``rows`` may show fewer (the PDF's per-rule limit)


#: The PDF prints at most this many findings per rule; the rest are in the attached findings.csv.
PDF_FINDINGS_PER_RULE = 10
#: The PDF prints at most this many access changes, privileged users and API keys (each table
#: says how many more its attached CSV holds); the HTML lists every row. Layout is WeasyPrint's
#: cost, a few ms per printed line: bounded tables keep the PDF's time flat in the account's size.
PDF_TABLE_LIMIT = 50
#: The PDF's roster lists this many users by default (``--pdf-roster-limit``); roster.csv has all.
PDF_ROSTER_LIMIT = 50


def capped(rows: Sequence[Any], limit: int | None) -> list[Any]:
    """The first ``limit`` rows (all of them for None)."""
    return list(rows) if limit is None else list(rows[:limit])


def finding_rows(findings: Sequence[Finding]) -> list[FindingRow]:
    """Rows worst first; the first finding of each rule carries the ``rule-<id>`` anchor."""
    seen: set[str] = set()
    rows: list[FindingRow] = []
    for finding in findings:
        anchor = "" if finding.rule_id in seen else f"rule-{finding.rule_id}"
        seen.add(finding.rule_id)
        rows.append(finding_row(finding, anchor))
    return rows


def finding_groups(rows: Sequence[FindingRow], *, limit: int | None = None) -> list[FindingGroup]:
    """Consecutive rows of one rule with the same title, remediation and controls, as one block.

    ``limit`` caps the rows each block shows (``total`` still counts them all).
    """
    blocks: list[list[FindingRow]] = []
    for row in rows:
        key = (row.severity, row.rule, row.title, row.remediation, row.controls)
        last = blocks[-1][0] if blocks else None
        if last is not None and (last.severity, last.rule, last.title, last.remediation, last.controls) == key:
            blocks[-1].append(row)
        else:
            blocks.append([row])
    return [
        FindingGroup(first.anchor, first.severity, first.label, first.rule, first.title, first.remediation,
                     first.controls, tuple(block if limit is None else block[:limit]), len(block))
        for block in blocks
        for first in block[:1]
    ]


#: In print, an evidence value listing more items than this ("who: a@x, b@x, ...", one per
#: Administrator of the account) shows the first ones and a count; findings.csv has them all.
PDF_EVIDENCE_ITEMS = 10


def printed_evidence(value: str) -> str:
    """``value``, a long comma-separated list cut to its first :data:`PDF_EVIDENCE_ITEMS` items."""
    items = value.split(", ")
    if len(items) <= PDF_EVIDENCE_ITEMS:
        return value
    rest = len(items) - PDF_EVIDENCE_ITEMS
    return ", ".join(items[:PDF_EVIDENCE_ITEMS]) + f" and {rest:,} more (all in the attached findings.csv)"


def printed_group(group: FindingGroup) -> FindingGroup:
    """The group as the PDF prints it: every evidence value bounded (:func:`printed_evidence`)."""
    rows = tuple(
        row._replace(evidence=tuple((label, printed_evidence(value)) for label, value in row.evidence))
        for row in group.rows
    )
    return group._replace(rows=rows)


def action_items(rows: Sequence[FindingRow]) -> tuple[list[dict[str, Any]], str]:
    """One line per rule, worst first: what to do and for whom, linked to its findings.

    Returns the items and a summary of the rules left out beyond :data:`ACTION_LIMIT`.
    """
    by_rule: dict[str, list[FindingRow]] = {}
    for row in rows:
        by_rule.setdefault(row.rule, []).append(row)
    items: list[dict[str, Any]] = []
    for rule, found in by_rule.items():
        users = [row.user for row in found]
        shown = ", ".join(users[:3]) + (f" and {len(users) - 3} more" if len(users) > 3 else "")
        items.append({
            "anchor": f"rule-{rule}",
            "severity": found[0].severity,
            "label": found[0].label,
            "rule": rule,
            "title": found[0].title,
            "count": len(found),
            "who": shown,
            "todo": first_sentence(found[0].remediation),
        })
    rest = items[ACTION_LIMIT:]
    left_out = ""
    if rest:
        count = sum(item["count"] for item in rest)
        left_out = (
            f"{count:,} more finding{'' if count == 1 else 's'} under {len(rest)} further "
            f"rule{'' if len(rest) == 1 else 's'} ({', '.join(item['rule'] for item in rest)}): see Findings."
        )
    return items[:ACTION_LIMIT], left_out


def plural(count: int, word: str, words: str | None = None) -> str:
    return f"{count:,} {word if count == 1 else (words or word + 's')}"


def headline(
    active: Sequence[Finding], *, signed_off: bool, overdue: Sequence[str], access_changes: int,
    first_snapshot: bool,
) -> list[str]:
    # A sign-off recorded after the snapshot: the rules, run as of the snapshot, still saw the
    # review overdue; say both rather than "signed off" beside "overdue: the access review".
    """The cover's one-line verdict, as its parts: findings, review state, overdue items, access."""
    high = sum(1 for f in active if f.severity in HIGH_RISK)
    rest = len(active) - high
    if high:
        findings = f"{plural(high, 'high-risk finding')} need{'s' if high == 1 else ''} action"
        if rest:
            findings += f" (and {rest:,} lower-risk)"
    elif rest:
        findings = f"No high-risk findings; {plural(rest, 'lower-risk finding')} open"
    else:
        findings = "No open findings"
    parts = [findings]
    if signed_off:
        late = any(f.rule_id == "review-overdue" for f in active)
        when = " (it was overdue when the snapshot was taken)" if late else ""
        parts.append("review of this snapshot signed off" + when)
    else:
        parts.append("review of this snapshot not signed off")
    if overdue:
        parts.append("overdue: " + ", ".join(overdue))
    if not first_snapshot:
        parts.append(f"{plural(access_changes, 'access change')} since the previous snapshot")
    return parts


def overdue_items(active: Sequence[Finding], *, mfa_valid: bool | None, signed_off: bool) -> list[str]:
    """What is past its date at the snapshot: the access review, expired exceptions, the 2FA check.

    A review signed off after the snapshot was taken is no longer outstanding: the headline says
    it was overdue then (``review_was_overdue``) instead of listing it as overdue now.
    """
    items: list[str] = []
    if not signed_off and any(f.rule_id == "review-overdue" for f in active):
        items.append("the access review")
    expired = sum(1 for f in active if f.expired_exception is not None)
    if expired:
        items.append(plural(expired, "expired exception"))
    if mfa_valid is False:
        items.append("the 2FA attestation")
    return items


def trend_sentence(trend: Sequence[Any]) -> str:
    """One computed sentence on the trend: where findings went and what drove the change most."""
    if len(trend) < 2:
        return ""
    first, last = trend[0], trend[-1]
    span = f"over {len(trend)} snapshots ({day(first.taken_at)} to {day(last.taken_at)})"

    def moved(a: int, b: int) -> str:
        return "rose" if b > a else "fell" if b < a else "stayed"

    findings_delta = last.findings - first.findings
    if findings_delta == 0:
        sentence = f"Open findings stayed at {last.findings} {span}"
    else:
        direction = moved(first.findings, last.findings)
        sentence = f"Open findings {direction} from {first.findings} to {last.findings} {span}"
    stale_delta = last.stale - first.stale
    admin_delta = last.admins - first.admins
    if findings_delta and stale_delta and abs(stale_delta) * 2 > abs(findings_delta) and (
        (stale_delta > 0) == (findings_delta > 0)
    ):
        sentence += f", mostly stale accounts ({first.stale} to {last.stale})"
    elif stale_delta:
        sentence += f"; stale accounts {moved(first.stale, last.stale)} from {first.stale} to {last.stale}"
    if admin_delta:
        sentence += f"; administrators {moved(first.admins, last.admins)} from {first.admins} to {last.admins}"
    else:
        sentence += f"; administrators stayed at {last.admins}"
    return sentence + "."


def activity_summary(rows: Sequence[ChangeRow]) -> str:
    """Sign-in activity in one line: how many sign-ins, by how many users."""
    if not rows:
        return ""
    firsts = sum(1 for row in rows if row.kind == CHANGE_KIND_LABELS[ChangeKind.FIRST_SIGN_IN])
    users = len({row.user_id for row in rows})
    text = f"{plural(len(rows), 'sign-in')} by {plural(users, 'user')}"
    if firsts:
        text += f" ({firsts:,} of them a first sign-in)"
    return text


#: One line each: what every digest in the provenance block is, and how to check it.
DIGEST_NOTES = (
    ("Raw data SHA-256", "SHA-256 over every request path and its response's SHA-256, one pair per "
     "line in the order fetched: recompute it from the page digests in provenance.json."),
    ("Response SHA-256", "SHA-256 of one response body exactly as received from the API, before "
     "any parsing (the evidence bundle keeps the bodies)."),
    ("Key fingerprint", "The first 16 hex digits of the SHA-256 of the API key: it tells keys "
     "apart without revealing the key."),
)


def change_group(change: Change) -> str:
    if change.became_admin:
        return "admin"
    if change.escalation:
        return "escalation"
    return {
        ChangeKind.ADDED: "joiner",
        ChangeKind.REMOVED: "leaver",
        ChangeKind.ROLE: "role",
        ChangeKind.STATUS: "status",
        ChangeKind.DIVISION: "division",
        ChangeKind.RESTRICTION: "division",
        ChangeKind.FIRST_SIGN_IN: "signin",
        ChangeKind.SIGNED_IN: "signin",
    }.get(change.kind, "other")


def change_rows(changes: Iterable[Change]) -> list[ChangeRow]:
    rows = [
        ChangeRow(
            group=change_group(change),
            group_label=_GROUP_LABEL[change_group(change)],
            kind=CHANGE_KIND_LABELS[change.kind],
            user=change.email or f"user {change.user_id}",
            user_id=change.user_id,
            before=change.before,
            after=change.after,
            attribution=change.attribution,
        )
        for change in changes
    ]
    # sorted() is stable: within a group the change set's own deterministic order is kept.
    return sorted(rows, key=lambda row: _GROUP_RANK[row.group])


def distinct(values: Iterable[str]) -> list[str]:
    return sorted({value for value in values if value}, key=str.casefold)


def role_options(users: Sequence[User]) -> list[str]:
    return distinct(role.name for user in users for role in user.roles)


def build_context(
    data: ReportData,
    *,
    mode: str,
    roster_limit: int | None,
    tuning: Tuning,
    findings_per_rule: int | None = PDF_FINDINGS_PER_RULE,
    table_limit: int | None = PDF_TABLE_LIMIT,
) -> dict[str, Any]:
    """All values the templates show, for ``mode`` "html" or "pdf".

    In the PDF, ``findings_per_rule`` caps the findings each rule's block lists and
    ``table_limit`` the access changes, privileged users and API keys (None: all); the HTML lists
    every row whatever they are.
    """
    print_limit = table_limit if mode == "pdf" else None
    snapshot = data.snapshot
    users = sorted(snapshot.users, key=lambda u: (u.email.casefold(), u.id))
    provenance = snapshot.provenance
    result = data.findings

    # In the rules engine's order (FindingsResult.findings), the one every export shows too.
    active = list(result.active)
    suppressed = list(result.suppressed)
    by_severity = Counter(f.severity for f in active)
    suppressed_by_severity = Counter(f.severity for f in suppressed)
    severity_counts = [
        {
            "severity": severity.value,
            "label": severity.value.capitalize(),
            "icon": SEVERITY_ICONS[severity],
            "count": by_severity.get(severity, 0),
            "suppressed": suppressed_by_severity.get(severity, 0),
        }
        for severity in Severity
    ]

    all_changes = change_rows(data.changes.changes)
    changes = [row for row in all_changes if row.group not in ACTIVITY_GROUPS]
    activity = [row for row in all_changes if row.group in ACTIVITY_GROUPS]
    group_counts = Counter(row.group for row in all_changes)
    change_counts: list[dict[str, Any]] = [
        {"label": label, "count": group_counts.get(key, 0), "activity": key in ACTIVITY_GROUPS,
         "counted": plural(group_counts.get(key, 0), *_GROUP_COUNTED[key])}
        for key, label in CHANGE_GROUPS
        if group_counts.get(key)
    ]
    access_counts = [row for row in change_counts if not row["activity"]]
    rows = finding_rows(active)
    actions, actions_left_out = action_items(rows)

    privileged = [user for user in users if user.is_admin or user.is_manager]
    privileged_rows = [roster_row(u, snapshot, _first_seen(data, u.id)) for u in capped(privileged, print_limit)]
    source = source_block(data)
    source["list_requests_total"] = len(source["list_requests"])
    source["list_requests"] = capped(source["list_requests"], print_limit)
    credentials = keys_block(snapshot)  # the "API keys and automation" section (issue 17)
    keys_total = len(credentials["rows"])
    credentials["rows"] = capped(credentials["rows"], print_limit)

    shown = users if roster_limit is None else users[:roster_limit]
    roster = [roster_row(u, snapshot, _first_seen(data, u.id)) for u in shown]

    # The sign-off is the review of this snapshot only; any other review is one line, without
    # its statement, so a later (or earlier) review never reads as signing this report.
    review = data.review_attestation
    signoff = None
    if review is not None:  # the pipeline passes only a review of this very snapshot
        signoff = {
            "by": review.by,
            "date": stamp(review.made_at),
            "statement": review.statement,
            "next_due": day(review.expires),
            "digest": review.raw_sha256,
            "digest_matches": review.raw_sha256 == data.raw_sha256,
            "privileged_roles": data.reviewer_privileged_roles,
        }
    last = data.last_review
    last_review = None
    if signoff is None and last is not None:
        of = f"of snapshot #{last.snapshot_id}" if last.snapshot_id is not None else "of no recorded snapshot"
        last_review = f"Last review: {day(last.made_at)}, {of}, by {last.by}"

    mfa = data.mfa_attestation
    mfa_view = None
    if mfa is not None:
        mfa_view = {
            "by": mfa.by,
            "date": stamp(mfa.made_at),
            "statement": mfa.statement,
            "expires": day(mfa.expires),
            "valid": mfa.valid_at(snapshot.taken_at),
        }

    # The partial view is what GET /user/me recorded of the key's user, not words in the pull notes.
    owner = provenance.key_owner
    restricted_notes = [f"{owner.label} is {owner.restriction}."] if owner and provenance.division_restricted else []
    scope = "Whole account" if not restricted_notes else "Partial: the API key is limited to some divisions"
    saml_only = [user_label(u) for u in users if u.is_saml_sso_only]

    trend = sorted(data.trend, key=lambda point: point.taken_at)
    overdue = overdue_items(
        active, mfa_valid=mfa.valid_at(snapshot.taken_at) if mfa else None, signed_off=review is not None
    )
    title = f"CertCentral access review: {data.account_name or 'account'}"
    # The template states 2FA and SAML SSO (with the attestation), the partial view, an incomplete
    # snapshot and each pull note from the provenance itself; from the rules it adds only what
    # they alone know.
    limitations = list(dict.fromkeys(result.rule_limitations))

    return {
        "mode": mode,
        "tuning": tuning,
        "title": title,
        "account_name": data.account_name,
        "account_id": data.account_id,
        "base_url": data.base_url,
        "instance": data.instance,
        "scope": scope,
        "divisions": distinct(u.division_name for u in users),
        "report_id": data.report_id,
        "generated_at": stamp(data.generated_at),
        "generated_iso": data.generated_at.isoformat(timespec="seconds"),
        "tool_version": data.tool_version,
        "frameworks": list(data.frameworks),
        "profiles": list(result.profiles),
        "snapshot_id": snapshot.id,
        "snapshot_at": stamp(snapshot.taken_at),
        "previous_id": data.previous.id if data.previous else None,
        "previous_at": stamp(data.previous.taken_at) if data.previous else "",
        "signoff": signoff,
        "last_review": last_review,
        "headline": headline(
            active, signed_off=signoff is not None, overdue=overdue, access_changes=len(changes),
            first_snapshot=data.previous is None,
        ),
        "high_risk": sum(1 for f in active if f.severity in HIGH_RISK),
        "overdue": overdue,
        "actions": actions,
        "actions_left_out": actions_left_out,
        "access_summary": ", ".join(row["counted"] for row in access_counts),
        "activity_summary": activity_summary(activity),
        "activity": activity,
        "trend_sentence": trend_sentence(trend),
        "digest_notes": [{"label": a, "text": b} for a, b in DIGEST_NOTES],
        "review_campaign": data.review_campaign,
        "counts": {
            "users": len(users),
            "active": sum(1 for u in users if u.is_active),
            "admins": sum(1 for u in users if u.is_admin),
            "managers": sum(1 for u in users if u.is_manager),
            "service": sum(1 for u in users if u.is_service_user),
            "restricted": sum(1 for u in users if u.restricted),
            "findings": len(active),
            "suppressed": len(suppressed),
            "changes": len(all_changes),
            "signins": len(activity),
            # Sign-ins are activity, not access: the headline counts only what changed access.
            "access_changes": len(changes),
        },
        "severity_counts": severity_counts,
        "change_counts": change_counts,
        "chart": trend_svg(trend),
        "trend": [
            {"date": day(p.taken_at), "users": p.users, "admins": p.admins, "stale": p.stale, "findings": p.findings}
            for p in trend
        ],
        "findings": rows,
        "finding_groups": (
            [printed_group(group) for group in finding_groups(rows, limit=findings_per_rule)]
            if mode == "pdf" else finding_groups(rows)
        ),
        "suppressed": [
            SuppressedRow(
                severity=f.severity.value,
                label=f.severity.value.capitalize(),
                icon=SEVERITY_ICONS[f.severity],
                rule=f.rule_id,
                user=f.email or ("Account" if f.user_id is None else f"user {f.user_id}"),
                title=f.title,
                reason=f.suppressed_by.reason if f.suppressed_by else "",
                owner=f.suppressed_by.owner if f.suppressed_by else "",
                expires=day(f.suppressed_by.expires) if f.suppressed_by else "",
                approved=_approved(f.suppressed_by),
            )
            for f in suppressed
        ],
        "stale_exceptions": [
            {
                "rule": e.rule,
                "user": e.user,
                "reason": e.reason,
                "owner": e.owner,
                "approved": _approved(e),
                "expires": day(e.expires),
            }
            for e in result.stale_exceptions
        ],
        "severity_options": [s.value for s in Severity if by_severity.get(s)],
        "rule_options": distinct(f.rule_id for f in active),
        "changes": capped(changes, print_limit),
        "changes_total": len(changes),
        "change_options": [row["label"] for row in access_counts],
        "privileged": privileged_rows,
        "privileged_total": len(privileged),
        "credentials": credentials,
        "keys_total": keys_total,
        "roster": roster,
        "roster_total": len(users),
        "roster_truncated": len(roster) < len(users),
        "role_options": role_options(users),
        "status_options": distinct(u.status or "(unknown)" for u in users),
        "limitations": limitations,
        "mfa_statement": TWO_FA_LIMITATION,
        "read_only_statement": READ_ONLY_STATEMENT,
        "mfa": mfa_view,
        "restricted_notes": restricted_notes,
        "notes": list(provenance.notes),
        "complete": snapshot.complete,
        "expected_total": provenance.expected_total,
        "received": provenance.received,
        "saml_only": saml_only,
        "details_fetched": provenance.details_fetched,
        "thresholds": [{"label": a, "value": b, "source": c} for a, b, c in result.thresholds],
        "source": source,
        # Issue 18: the HR / identity-provider roster the leaver rules used ({} without one).
        "identity_source": dict(result.identity_source),
        # Stated once each; the scope item also carries this snapshot's partial-view notes.
        "standing_limitations": [
            {"key": "completeness", "label": "Completeness.", "text": COMPLETENESS_STATEMENT},
            {"key": "last-login", "label": "Sign-in dates.", "text": LAST_LOGIN_STATEMENT},
            {"key": "never-signed-in", "label": "“Never signed in”.", "text": NEVER_SIGNED_IN_STATEMENT},
            {"key": "scope", "label": "Scope.", "text": SCOPE_STATEMENT},
        ],
        "provenance": {
            "connection": provenance.connection,
            "base_url": provenance.base_url,
            "key_fingerprint": provenance.key_fingerprint,
            "tool_version": provenance.tool_version,
            "started": stamp(provenance.started_at),
            "finished": stamp(provenance.finished_at),
            "requests": provenance.requests,
            "pages": provenance.pages,
            "retries": provenance.retries,
            "raw_sha256": data.raw_sha256,
            "page_count": len(provenance.page_digests),
            "pulled_by": pulled_by(provenance),
        },
    }


class EndpointRow(NamedTuple):
    """One line of the "Source and completeness" block's endpoint table."""

    request: str  #: ``GET /user``
    parameters: str  #: ``limit=500, offset=0 to 1500``
    announced: str  #: page.total, or "" where the endpoint has none
    received: str
    pages: str
    result: str  #: "complete", "incomplete: 298 of 300 received", or what the request was for


def pulled_by(provenance: PullProvenance) -> str:
    """``alice@build-01 with the key of Alice Admin <alice@example.com> (Administrator)``."""
    if provenance.recorded_by_earlier_version:
        return NOT_RECORDED_EARLIER
    operator = provenance.operator
    who = operator.label if operator is not None else "an unrecorded operator"
    owner = provenance.key_owner
    if owner is None:
        return f"{who} with a key whose user is unknown (GET /user/me was not answered)"
    return f"{who} with the key of {owner.label} ({owner.role or 'no role'})"


def _group_path(endpoint: str) -> str:
    path = urlsplit(endpoint).path
    return "/user/{id}" if re.fullmatch(r"/user/\d+", path) else path


def _parameters(requests: Iterable[str]) -> str:
    """The query parameters of a set of requests, compactly: ``limit=500, offset=0 to 1500``."""
    values: dict[str, list[str]] = {}
    for request in requests:
        for key, value in parse_qsl(urlsplit(request).query, keep_blank_values=True):
            values.setdefault(key, [])
            if value not in values[key]:
                values[key].append(value)
    parts: list[str] = []
    for key, seen in values.items():
        numbers = sorted(int(v) for v in seen if v.isdigit())
        if len(seen) > 2 and len(numbers) == len(seen):
            parts.append(f"{key}={numbers[0]} to {numbers[-1]}")
        else:
            parts.append(f"{key}={', '.join(seen)}")
    return ", ".join(parts) or "none"


def endpoint_rows(provenance: PullProvenance) -> list[EndpointRow]:
    """Every endpoint the pull asked, in the order first asked, with its reconciliation if recorded."""
    by_path: dict[str, list[str]] = {}
    for endpoint, _digest in provenance.page_digests:
        by_path.setdefault(_group_path(endpoint), []).append(endpoint)
    reconciled = {item.path: item for item in provenance.endpoints}
    rows: list[EndpointRow] = []
    for path, requests in by_path.items():
        item = reconciled.get(path)
        if item is not None:
            # The why is long; the block's Result line says it in full.
            result = "complete" if item.complete else f"incomplete: {item.received} of {item.announced} received"
            rows.append(
                EndpointRow(f"GET {path}", _parameters(requests), str(item.announced), str(item.received),
                            str(item.pages), result)
            )
            continue
        if path == "/user/me":
            purpose = "the key's own user (key owner)"
        elif path == "/user/{id}":
            purpose = f"user details (SAML SSO status), {len(requests)} requests"
        elif provenance.recorded_by_earlier_version:
            purpose = f"list; per-endpoint reconciliation {NOT_RECORDED_EARLIER}"
        else:
            purpose = "not available at this base URL (HTTP 404)"
        params = _parameters(requests) if path != "/user/{id}" else "none"
        rows.append(EndpointRow(f"GET {path}", params, "", "", "", purpose))
    return rows


def source_block(data: ReportData) -> dict[str, Any]:
    """The "Source and completeness" block: what an auditor would otherwise ask for as a screenshot."""
    snapshot = data.snapshot
    provenance = snapshot.provenance
    operator = provenance.operator
    owner = provenance.key_owner
    earlier = provenance.recorded_by_earlier_version
    reasons = [item.note for item in provenance.endpoints if not item.complete and item.note]
    if not snapshot.complete and not reasons:
        reasons = [
            "service users were not read (CertCentral answered that they are not available to this key)"
            if "service_users" in provenance.not_evaluable
            else f"{provenance.received} of {provenance.expected_total} announced users were received"
        ]
    if earlier:
        operator_text = key_owner_text = command = NOT_RECORDED_EARLIER
    else:
        operator_text = (
            f"{operator.label} (certcentral-auditor {operator.tool_version}, Python {operator.python_version})"
            if operator is not None
            else "not recorded"
        )
        command = operator.command if operator is not None else "not recorded"
        key_owner_text = (
            f"{owner.label}, {owner.role or 'no role'}, {owner.restriction}"
            if owner is not None
            else "unknown (GET /user/me was not answered)"
        )
    return {
        "system": SYSTEM,
        "instance": f"{data.instance} · {provenance.base_url}",
        "account_id": provenance.account_id,
        "endpoints": endpoint_rows(provenance),
        "pulled_by": pulled_by(provenance),
        "operator": operator_text,
        "command": command,
        "command_recorded": operator is not None and not earlier,
        "key_owner": key_owner_text,
        "started": stamp_seconds(provenance.started_at),
        "finished": stamp_seconds(provenance.finished_at),
        "reconciled": f"{provenance.received} of {provenance.expected_total} users announced by the API received",
        # Said when the per-endpoint record is missing: only the overall counts are known then.
        "per_endpoint_missing": (
            "" if provenance.endpoints else NOT_RECORDED_EARLIER if earlier else "not recorded"
        ),
        "complete": snapshot.complete,
        "result": "complete" if snapshot.complete else "incomplete: " + " ".join(reasons),
        "raw_sha256": data.raw_sha256,
        "page_count": len(provenance.page_digests),
        "list_requests": [
            {"path": item.path, "request": request, "sha256": digest}
            for item in provenance.endpoints
            for request, digest in item.requests
        ],
        "other_requests": len(provenance.page_digests) - sum(len(item.requests) for item in provenance.endpoints),
    }
def _approved(entry: ExceptionEntry | None) -> str:
    if entry is None or not entry.approved_by:
        return ""
    return f"{entry.approved_by} on {day(entry.approved_on)}" if entry.approved_on else entry.approved_by


def _first_seen(data: ReportData, user_id: int) -> datetime | None:
    seen = data.history.get(user_id)
    return seen.first_seen if seen else None


