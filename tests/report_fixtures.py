"""ReportData for report tests and the benchmark, built directly from the model dataclasses.

A small but realistic account (hostile and non-Latin names, several roles, findings of several
severities, a suppressed finding, an expired exception, changes with an escalation), and a
generator that pads it to any number of users for the benchmark. No rules or diff code is used:
those modules are written separately and the report must not depend on them.
"""

from __future__ import annotations

import hashlib
from dataclasses import replace
from datetime import UTC, datetime, timedelta

from auditor.models import (
    Attestation,
    AttestationKind,
    Change,
    ChangeKind,
    ChangeSet,
    Division,
    EndpointReconciliation,
    ExceptionEntry,
    Finding,
    FindingsResult,
    KeyOwner,
    Operator,
    PullProvenance,
    Role,
    Severity,
    Snapshot,
    User,
    UserHistory,
)
from auditor.report import ReportData, TrendPoint

NOW = datetime(2026, 11, 1, 9, 30, tzinfo=UTC)
PREVIOUS_AT = datetime(2026, 8, 1, 9, 0, tzinfo=UTC)
ADMIN = Role(1, "Administrator")
LIMITED = Role(2, "Limited User")
FINANCE = Role(3, "Finance Manager")
MANAGER = Role(4, "Manager")
STANDARD = Role(5, "Standard User")
ROOT = Division(634763, "Example Corp")
EMEA = Division(634764, "EMEA Zweigstelle", parent_id=634763)

XSS_NAME = "<img src=x onerror=alert(1)>"
MFA_LIMITATION = (
    "CertCentral enforces two-factor authentication but its API does not expose per-user 2FA "
    "status, so the tool cannot check it."
)


def days_ago(days: int) -> datetime:
    return NOW - timedelta(days=days)


def user(
    user_id: int,
    email: str,
    first: str,
    last: str,
    *roles: Role,
    status: str = "active",
    last_login: datetime | None = None,
    division: Division = ROOT,
    service: bool = False,
) -> User:
    return User(
        id=user_id,
        email=email,
        username=email,
        first_name=first,
        last_name=last,
        status=status,
        roles=tuple(sorted(roles)),
        division=division,
        last_login=last_login,
        account_id=1696530,
        user_type="api_only" if service else "standard",
        is_service_user=service,
    )


def base_users() -> list[User]:
    return [
        user(1001, "alice@example.com", "Alice", "Admin", ADMIN, last_login=days_ago(2)),
        user(1002, "bob.dormant@example.com", "Bob", "Dormant", ADMIN, last_login=days_ago(140)),
        user(1003, "admin@example.com", "Shared", "Mailbox", ADMIN, last_login=days_ago(10)),
        user(1004, "chloe.manager@example.com", "Chloé", "Lefèvre", MANAGER, last_login=days_ago(30),
             division=EMEA),
        user(1005, "dana.ops@example.com", "Dana", "Ops", STANDARD, last_login=days_ago(200)),
        user(1006, "evil@example.com", XSS_NAME, "</td></tr><script>alert(2)</script>", STANDARD,
             last_login=days_ago(5)),
        user(1007, "ivan@example.com", "Иван", "Петров", FINANCE, last_login=days_ago(12)),
        user(1008, "wei@example.com", "伟", "王", LIMITED, last_login=days_ago(1)),
        user(1009, "amira@example.com", "أميرة", "حداد", STANDARD, last_login=days_ago(40)),
        user(1010, "priya@example.com", "प्रिया", "शर्मा", MANAGER, STANDARD, last_login=None),
        user(1011, "frank.left@example.com", "Frank", "Former", ADMIN, status="inactive",
             last_login=days_ago(400)),
        user(1012, "svc-issuer@example.com", "Issuance", "Bot", MANAGER, service=True, last_login=days_ago(3)),
        user(1013, "gina.new@example.com", "Gina", "Newadmin", ADMIN, last_login=days_ago(1)),
        user(1014, "=cmd|' /C calc'!A0@example.com", "Formula", "Injection", STANDARD, last_login=days_ago(20)),
    ]


OPERATOR = Operator(
    account="auditjob", host="build-01", command="auditor pull --connection prod", tool_version="0.1.0",
    python_version="3.12.4",
)
KEY_OWNER = KeyOwner(user_id=2700762, name="Alice Admin", email="alice@example.com", role="Administrator")


def provenance(
    count: int,
    *,
    complete: bool = True,
    notes: tuple[str, ...] = (),
    earlier_version: bool = False,
    restricted: bool = False,
) -> PullProvenance:
    """The pull record; ``earlier_version`` is one stored before operator and reconciliation were."""
    pages = max(1, (count + 499) // 500)
    digests = tuple(
        (f"/user?limit=500&offset={index * 500}", hashlib.sha256(f"page-{index}".encode()).hexdigest())
        for index in range(pages)
    )
    received = count if complete else count - 3
    endpoint = EndpointReconciliation(
        path="/user", announced=count, received=received, pages=pages, complete=complete, requests=digests,
        note="" if complete else f"GET /user is incomplete: expected {count} users, received {received}.",
    )
    recorded = PullProvenance(
        connection="prod",
        base_url="https://www.digicert.com/services/v2",
        account_id=1696530,
        key_fingerprint="SHA256:3f9a1c0be2d4",
        tool_version="0.1.0",
        started_at=NOW - timedelta(seconds=42),
        finished_at=NOW - timedelta(seconds=5),
        requests=pages + 2,
        pages=pages,
        retries=1,
        expected_total=count,
        received=received,
        complete=complete,
        notes=notes,
        page_digests=digests,
        operator=OPERATOR,
        key_owner=replace(KEY_OWNER, restricted=True, divisions=("EMEA Zweigstelle",)) if restricted else KEY_OWNER,
        endpoints=(endpoint,),
    )
    if earlier_version:
        return replace(recorded, operator=None, key_owner=None, endpoints=(), format_version=1)
    return recorded


def finding(rule: str, severity: Severity, target: User | None, title: str, why: str, fix: str,
            evidence: tuple[tuple[str, str], ...], controls: tuple[str, ...], **extra: object) -> Finding:
    return Finding(
        rule_id=rule,
        severity=severity,
        title=title,
        explanation=why,
        remediation=fix,
        user_id=None if target is None else target.id,
        email="" if target is None else target.email,
        evidence=evidence,
        controls=controls,
        **extra,  # type: ignore[arg-type]
    )


def base_findings(users: dict[int, User]) -> list[Finding]:
    exception = ExceptionEntry(
        rule="stale-login",
        user="dana.ops@example.com",
        reason="Seasonal contractor; access reviewed with HR",
        owner="Security Team <security@example.com>",
        expires=datetime(2027, 1, 31, tzinfo=UTC),
    )
    expired = ExceptionEntry(
        rule="admin-dormant",
        user="bob.dormant@example.com",
        reason="On sabbatical",
        owner="CISO <ciso@example.com>",
        expires=datetime(2026, 10, 1, tzinfo=UTC),
    )
    return [
        finding("admin-dormant", Severity.HIGH, users[1002], "Dormant administrator",
                "Administrator not signed in for 140 days (threshold 90).",
                "Remove the Administrator role or deactivate the account.",
                (("role", "Administrator"), ("status", "active"), ("last sign-in", "2026-06-14"),
                 ("days inactive", "140")), ("PCI DSS 8.2.6", "NIST AC-2(3)"), expired_exception=expired),
        finding("new-admin", Severity.CRITICAL, users[1013], "New administrator",
                "Became Administrator since the previous snapshot.",
                "Confirm the grant was approved; otherwise remove the role.",
                (("role", "Administrator"), ("first seen", "2026-10-30")), ("PCI DSS 7.2.4", "CIS 5.1")),
        finding("privileged-shared-mailbox", Severity.MEDIUM, users[1003], "Privileged shared mailbox",
                "A generic mailbox holds the Administrator role.",
                "Give the role to a named person; keep the mailbox unprivileged.",
                (("role", "Administrator"), ("pattern", "admin@*")), ("PCI DSS 8.2.2",)),
        finding("stale-login", Severity.LOW, users[1005], "Stale account",
                "Not signed in for 200 days (threshold 90).", "Deactivate the account.",
                (("last sign-in", "2026-04-15"), ("days inactive", "200")), ("PCI DSS 8.2.6",),
                suppressed_by=exception),
        finding("stale-login", Severity.LOW, users[1006], "Stale account <b>bold?</b>",
                "Evidence with markup: <script>alert(3)</script>", "Deactivate the account.",
                (("last sign-in", "2026-10-27"),), ("PCI DSS 8.2.6",)),
        finding("never-signed-in", Severity.MEDIUM, users[1010], "Never signed in",
                "Known for 120 days without a sign-in (threshold 90).", "Confirm the user still needs access.",
                (("first seen", "2026-07-04"),), ("CIS 5.3",)),
        finding("mfa-attestation-missing", Severity.INFO, None, "2FA not attested",
                "Per-user 2FA cannot be read from the API and no valid attestation covers it.",
                "Check 2FA enforcement in the console and run auditor attest mfa.",
                (("attestation", "none"),), ("PCI DSS 8.4.2", "CIS 6.5")),
    ]


def base_changes() -> tuple[Change, ...]:
    return (
        Change(ChangeKind.ADDED, 1008, "wei@example.com", "", "Limited User"),
        Change(ChangeKind.REMOVED, 1099, "henry.gone@example.com", "Standard User", ""),
        Change(ChangeKind.ROLE, 1013, "gina.new@example.com", "Standard User", "Administrator",
               escalation=True, became_admin=True),
        Change(ChangeKind.ROLE, 1004, "chloe.manager@example.com", "Standard User", "Manager", escalation=True),
        Change(ChangeKind.STATUS, 1011, "frank.left@example.com", "active", "inactive"),
        Change(ChangeKind.SIGNED_IN, 1001, "alice@example.com", "2026-07-30", "2026-10-30"),
        Change(ChangeKind.NAME, 1006, "evil@example.com", "Eve", XSS_NAME),
    )


def padding_user(index: int) -> User:
    """A deterministic filler user for large accounts: mostly active standard users."""
    user_id = 200000 + index
    roles = (STANDARD,)
    if index % 250 == 0:
        roles = (MANAGER,)
    elif index % 97 == 0:
        roles = (LIMITED,)
    # Most users signed in within the last two months; one in ten is spread over eight months.
    inactive_days = (index * 37) % 240 if index % 10 == 0 else (index * 7) % 60
    return user(
        user_id,
        f"user{index:05d}@example.com",
        f"First{index}",
        f"Lästname{index}",
        *roles,
        status="active" if index % 29 else "inactive",
        last_login=None if index % 53 == 0 else days_ago(inactive_days),
        division=EMEA if index % 3 == 0 else ROOT,
    )


def make_report_data(
    *,
    extra_users: int = 0,
    complete: bool = True,
    mfa: bool = True,
    review: bool = False,
    restricted: bool = False,
    earlier_version: bool = False,
) -> ReportData:
    """The small account, padded with ``extra_users`` users (each stale one also gets a finding)."""
    users = base_users() + [padding_user(index) for index in range(1, extra_users + 1)]
    by_id = {u.id: u for u in users}
    findings = base_findings(by_id)
    changes = list(base_changes())
    for index in range(1, extra_users + 1):
        padded = by_id[200000 + index]
        days = (NOW - padded.last_login).days if padded.last_login else 0
        if padded.is_active and padded.last_login is not None and days > 90:
            findings.append(
                finding("stale-login", Severity.LOW, padded, "Stale account",
                        f"Not signed in for {days} days (threshold 90).", "Deactivate the account.",
                        (("last sign-in", padded.last_login.date().isoformat()), ("days inactive", str(days))),
                        ("PCI DSS 8.2.6", "NIST AC-2(3)"))
            )
        if index % 40 == 0:
            changes.append(Change(ChangeKind.ADDED, padded.id, padded.email, "", padded.role_names))
        elif index % 41 == 0:
            changes.append(Change(ChangeKind.STATUS, padded.id, padded.email, "active", padded.status))
    notes = ("API key restricted to division EMEA Zweigstelle (role limit 103)",) if restricted else ()
    snapshot = Snapshot(
        id=7,
        connection="prod",
        taken_at=NOW,
        users=tuple(users),
        provenance=provenance(
            len(users), complete=complete, notes=notes, earlier_version=earlier_version, restricted=restricted
        ),
    )
    previous = replace(snapshot, id=6, taken_at=PREVIOUS_AT, users=tuple(u for u in users if u.id != 1008))
    result = FindingsResult(
        snapshot_id=7,
        evaluated_at=NOW,
        profiles=("pci-dss-4",),
        findings=tuple(sorted(findings, key=lambda f: (f.severity.rank, f.rule_id, f.email))),
        stale_exceptions=(
            ExceptionEntry("stale-login", "nobody@example.com", "Left in 2025", "IT <it@example.com>",
                           datetime(2027, 3, 1, tzinfo=UTC)),
        ),
        thresholds=(
            ("inactive user", "90 days", "PCI DSS 8.2.6"),
            ("inactive admin", "90 days", "PCI DSS 8.2.6"),
            ("full review", "180 days", "PCI DSS 7.2.4"),
        ),
        limitations=(MFA_LIMITATION, "Service users are listed but their API keys are not inspected."),
        rule_limitations=("Service users are listed but their API keys are not inspected.",),
    )
    history = {
        u.id: UserHistory(user_id=u.id, first_seen=PREVIOUS_AT - timedelta(days=u.id % 300), last_seen=NOW)
        for u in users
    }
    history[1013] = UserHistory(user_id=1013, first_seen=days_ago(2), last_seen=NOW)
    trend = (
        TrendPoint(datetime(2026, 2, 1, tzinfo=UTC), len(users) - 9, 3, 2, 4),
        TrendPoint(datetime(2026, 5, 1, tzinfo=UTC), len(users) - 4, 4, 3, 5),
        TrendPoint(PREVIOUS_AT, len(users) - 1, 4, 2, 4),
        TrendPoint(NOW, len(users), sum(1 for u in users if u.is_admin), 3, len(result.active)),
    )
    return ReportData(
        account_name="Exämple Corp <Prod>",
        account_id=1696530,
        base_url="https://www.digicert.com/services/v2",
        instance="US",
        snapshot=snapshot,
        previous=previous,
        changes=ChangeSet(from_snapshot=6, to_snapshot=7, changes=tuple(changes)),
        findings=result,
        history=history,
        trend=trend,
        mfa_attestation=(
            Attestation(1, "prod", AttestationKind.MFA, "Rita Reviewer <rita@example.com>",
                        "2FA enforcement verified in Settings > Authentication.", days_ago(20),
                        days_ago(20) + timedelta(days=90))
            if mfa else None
        ),
        review_attestation=(
            Attestation(2, "prod", AttestationKind.REVIEW, "Sam Signer <sam@example.com>",
                        "Access reviewed; removals requested in ticket SEC-42.", days_ago(1),
                        days_ago(1) + timedelta(days=180))
            if review else None
        ),
        report_id="R-2026-11-01-7f3a",
        generated_at=NOW,
        tool_version="0.1.0",
        frameworks=("PCI DSS v4.0.1",),
        raw_sha256=hashlib.sha256(b"raw pages").hexdigest(),
    )
