"""The findings engine: one snapshot, its history and the configuration in, a ``FindingsResult`` out.

(Over 500 lines: the rule catalogue (ids, severities, texts) and the checks that raise them are
one contract, kept together so that a rule's id, its text and its check cannot drift apart.)

Each rule has a stable id (exception files reference it), a fixed severity, a plain-language
explanation with the numbers that triggered it, evidence pairs, the control references of the
active profile(s) and a remediation. ``RULES`` lists them for the CLI and the docs.

Thresholds are "longer than": a user is dormant when more than ``inactive_admin_days`` full days
have passed since the last sign-in (exactly 90 days is not yet dormant at 90). Time is injected
(``now``); nothing here reads the clock. The pipeline passes the snapshot's own time
(``snapshot.taken_at``), so a snapshot's findings are the same whenever they are computed: only
exceptions approved and attestations recorded by then count (a review of this very snapshot,
recorded after it, counts only for ``self-review``).

Who each rule looks at:

* ``admin-dormant`` / ``admin-never-signed-in``: active, non-service users holding any configured
  privileged role (Administrator and Manager by default: "by profile, Manager").
* ``stale-login`` / ``never-signed-in``: active, non-service users with no privileged role (a
  privileged user is reported once, by the stricter admin rule).
* ``terminated-still-active`` / ``not-in-identity-source`` (only with an identity source): active,
  non-service users, matched to the HR or identity-provider roster by email, alias or map file
  (``auditor.identity``); judged as of the snapshot. Service users are not judged by HR status
  (their keys' owners are what matters); break-glass accounts from ``[identity]`` are listed in the
  limitations with their reason instead of being judged. Without a source, one limitation says
  leavers cannot be detected.
* Service (API-only) users never sign in to the console, so sign-in rules skip them;
  ``privileged-service-user`` covers them instead, except the audit key's own user (an
  admin-level service user with a View Only key is the recommended set-up): it is named once in
  the limitations and flagged only if it signs in interactively.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Literal

from auditor.auditlog import AuditLog, escalations
from auditor.config import ACCOUNT_EXCEPTION_USERS, AuditConfig
from auditor.identity import IdentityIndex, IdentitySource, Match, match_counts, match_users
from auditor.labels import TWO_FA_LIMITATION as TWO_FA_LIMITATION  # re-exported for callers of rules
from auditor.labels import day, stamp
from auditor.models import (
    ApiKey,
    Attestation,
    AttestationKind,
    ExceptionEntry,
    Finding,
    FindingsResult,
    PrivilegedRoles,
    ReviewItem,
    Severity,
    Snapshot,
    User,
    UserHistory,
)
from auditor.profiles import RULE_IDS

NO_AUDIT_LOG_LIMITATION = (
    "No audit log was archived by this snapshot (no scheduled audit-log report was found), so privilege "
    "changes are not attributed, SSO and API activity is not counted, and privilege-change-unattributed was "
    "not checked."
)
NO_IDENTITY_LIMITATION = (
    "No identity source (HR or identity-provider export) was given, so leavers cannot be detected: "
    "terminated-still-active and not-in-identity-source were not checked (pass --identity FILE, or name "
    "the export in [identity] of auditor.toml)."
)
#: How many emails a limitation line lists before "and N more".
_LIST_LIMIT = 20


@dataclass(frozen=True, slots=True)
class Rule:
    """One rule as the README's rule table and the report list it: id, severity, what it checks."""

    id: str
    severity: Severity
    title: str
    explanation: str
    remediation: str
    #: "user" for per-user findings, "account" for account-level ones (``user_id`` None).
    scope: Literal["user", "account"] = "user"


RULES: tuple[Rule, ...] = (
    Rule(
        "admin-dormant",
        Severity.HIGH,
        "Privileged user has not signed in recently",
        "An active user with a privileged role (Administrator, and Manager by default) has not signed "
        "in for longer than the inactive-admin threshold. Dormant privileged accounts are a prime "
        "target: nobody notices when they are used.",
        "Deactivate the user or remove the privileged role in CertCentral (Account → Users). If the "
        "access is still needed, record an exception with a reason, an owner and an expiry.",
    ),
    Rule(
        "admin-never-signed-in",
        Severity.HIGH,
        "Privileged user has never signed in",
        "An active user with a privileged role has never been seen to sign in, and the tool has known "
        "the account for longer than the short grace period. CertCentral gives no creation date, so "
        "the period is counted from when the tool first saw the user.",
        "Confirm the person still needs the account; otherwise deactivate it or remove the privileged "
        "role. Unused privileged invitations should not stay open.",
    ),
    Rule(
        "admin-not-active",
        Severity.MEDIUM,
        "Inactive account still holds the Administrator role",
        "The account's status is not active, but it still holds the Administrator role; reactivating "
        "it would restore full administrative access at once.",
        "Remove the Administrator role from the account (or delete the account) in CertCentral.",
    ),
    Rule(
        "stale-login",
        Severity.MEDIUM,
        "User has not signed in recently",
        "An active user has not signed in for longer than the inactive-user threshold.",
        "Deactivate the user in CertCentral, or record an exception if the access is still justified.",
    ),
    Rule(
        "never-signed-in",
        Severity.MEDIUM,
        "User has never signed in",
        "An active user has never been seen to sign in, and the tool has known the account for longer "
        "than the inactive-user threshold (measured from first seen: CertCentral gives no creation date).",
        "Confirm the account is needed; otherwise deactivate it in CertCentral.",
    ),
    Rule(
        "new-admin",
        Severity.MEDIUM,
        "New Administrator since the previous snapshot",
        "A user became Administrator since the previous snapshot, either as a new account or by a role "
        "change. Every grant of full administrative access should be traceable to an approval.",
        "Confirm the grant was approved (ticket or change record); if not, remove the role and "
        "investigate who granted it.",
    ),
    Rule(
        "privileged-shared-mailbox",
        Severity.HIGH,
        "Privileged role held by a shared mailbox",
        "A privileged role is held by a generic mailbox (such as admin@ or certs@), so actions cannot be "
        "traced to one person. Shared accounts are allowed only by justified, approved exception.",
        "Give each administrator a personal account and remove the privileged role from the shared "
        "mailbox, or record an approved exception.",
    ),
    Rule(
        "external-domain",
        Severity.MEDIUM,
        "User outside the allowed email domains",
        "The user's email domain is not one of the configured allowed domains (or their subdomains): "
        "a third party or a personal address has access to the certificate account.",
        "Confirm the third party's access is covered by a contract and still needed; otherwise "
        "deactivate the user. Add the domain to allowed_domains if it belongs to the organisation.",
    ),
    Rule(
        "privileged-service-user",
        Severity.MEDIUM,
        "Service (API-only) user holds a privileged role",
        "An API-only user holds a privileged role: its API keys act with that role's full rights and "
        "are not protected by an interactive sign-in.",
        "Give the service user the least privileged role that its automation needs, restrict its API "
        "keys, and review it with the other system accounts.",
    ),
    Rule(
        "too-many-admins",
        Severity.MEDIUM,
        "More Administrators than the configured ceiling",
        "The account has more active Administrators than the configured maximum; every extra "
        "Administrator widens who can issue, revoke and reassign certificates.",
        "Reduce the Administrators to those who need full control; give others Manager or a narrower "
        "role. Raise max_admins in auditor.toml only if the larger number is approved.",
        scope="account",
    ),
    Rule(
        "mfa-attestation-missing",
        Severity.HIGH,
        "No valid two-factor authentication attestation",
        "The CertCentral API does not expose per-user 2FA status, and no valid attestation records that "
        "someone verified 2FA enforcement in the CertCentral console.",
        "Check the two-factor authentication settings in the CertCentral console, then record it: "
        'auditor attest mfa --by "NAME <EMAIL>" --statement "..."',
        scope="account",
    ),
    Rule(
        "review-overdue",
        Severity.MEDIUM,
        "Access review overdue",
        "No signed-off access review is recent enough for the profile's review interval (the "
        "privileged interval applies while privileged users exist).",
        "Review the users and roles (the findings report is the review package), then record the "
        'sign-off: auditor attest review --by "NAME <EMAIL>" --statement "..."',
        scope="account",
    ),
    Rule(
        "self-review",
        Severity.MEDIUM,
        "Access review signed off by a privileged user of the account",
        "The review of this snapshot was signed off by someone who holds a privileged role in it, so "
        "they reviewed their own access: segregation of duties asks for an independent reviewer.",
        "Have someone without a privileged role in CertCentral review the snapshot and record it: "
        'auditor attest review --snapshot ID --by "NAME <EMAIL>" --statement "..."',
    ),
    Rule(
        "self-approved-exception",
        Severity.MEDIUM,
        "Exception owned or approved by the user it covers",
        "An exception that suppresses a finding names, as its owner or approver, the very user it "
        "covers: the accepted risk was not accepted by someone independent.",
        "Have someone other than the covered user approve the exception (approved_by, approved_on) "
        "and own it, in the exceptions file.",
    ),
    Rule(
        "terminated-still-active",
        Severity.HIGH,
        "Person has left, but the CertCentral account is still active",
        "The identity source (HR or identity-provider export) shows the person terminated or disabled "
        "by the time of the snapshot, yet their CertCentral user is still active. Critical when the "
        "account holds a privileged role: a leaver could still issue or revoke certificates.",
        "Deactivate the user in CertCentral (Account → Users) now, revoke the API keys it owns, and check "
        "what it did since the termination date. Fix the leaver process that missed it.",
    ),
    Rule(
        "not-in-identity-source",
        Severity.MEDIUM,
        "Active user matches no person in the identity source",
        "An active CertCentral user matches nobody in the HR or identity-provider roster, by email, alias "
        "or map file: an orphaned account, or a contractor nobody owns. High when it holds a privileged role.",
        "Find the account's owner. If it belongs to a person, add the address as an alias or to the map "
        "file; if it is an emergency account, list it under break_glass in [identity]; otherwise "
        "deactivate it.",
    ),
    Rule(
        "revocation-overdue",
        Severity.HIGH,
        "Access review decided to revoke or change access, and the pulls do not show it done",
        "A closed access review campaign decided to revoke (or modify) this user's access, and no "
        "snapshot since shows it carried out: the user is still active with a privileged role (or "
        "not in the new role) after the remediation period (`[review] remediation_days`).",
        "Carry out the decision in CertCentral (Account → Users) and pull again; the next snapshot "
        "proves it. See `auditor review status` for the decision, its reviewer and ticket.",
    ),
    Rule(
        "access-regranted",
        Severity.HIGH,
        "Access revoked in a review was granted again",
        "A revocation decided in an access review was carried out (a later snapshot showed it), and "
        "the user holds a privileged role again: the reviewed decision was undone without a new review.",
        "Revoke the access again, or record why it was re-granted in the next access review campaign "
        "(`auditor review open`).",
    ),
    # --- credential inventory (issue 17); a finding's user is the key's owner -------------------
    Rule(
        "key-owner-inactive",
        Severity.HIGH,
        "Active API key or ACME URL whose owner is inactive or gone",
        "An active API key or ACME directory URL belongs to a user who is no longer active, or no "
        "longer a user of the account at all. The key keeps working without anyone signing in: the "
        "leaver's access was not removed.",
        "Revoke the key in CertCentral (Automation → API Keys, or ACME Directory URLs), or re-issue it "
        "to an active owner and revoke the old one.",
    ),
    Rule(
        "key-unrestricted",
        Severity.MEDIUM,
        "Active API key without a restriction",
        "An active API key has no restriction (restricted_to_role_id 0): it can do everything its "
        "owner can, through the API, without a sign-in. High when the owner is an Administrator.",
        "Edit the key in CertCentral (Automation → API Keys) and restrict it to what the integration "
        "needs (e.g. Orders, or View Only for reporting).",
    ),
    Rule(
        "key-unused",
        Severity.MEDIUM,
        "Active API key not used recently",
        "An active API key has not been used for longer than the inactive-user threshold: an unused "
        "credential that still works.",
        "Revoke the key if nothing uses it; otherwise record an exception with a reason, an owner and an expiry.",
    ),
    Rule(
        "key-never-used",
        Severity.LOW,
        "Active API key never used",
        "An active API key has never been used, and was created longer ago than the never-signed-in "
        "period: it was made and forgotten, or handed out and not needed.",
        "Revoke the key in CertCentral (Automation → API Keys) if nothing is going to use it.",
    ),
    Rule(
        "key-legacy",
        Severity.LOW,
        "Active legacy API key",
        "An active key is a legacy key (is_legacy): created under CertCentral's older key model, "
        "without the restrictions newer keys can carry.",
        "Create a new, restricted key for the integration and revoke the legacy one.",
    ),
    Rule(
        "key-no-ip-restriction",
        Severity.INFO,
        "API key not covered by any IP rule",
        "The account has IP restriction rules, but none covers this active key (no account-wide rule, "
        "none for its owner, none for the key itself).",
        "Add an IP rule for the key or its owner in CertCentral (Account → Settings → IP Restrictions), "
        "or record why it needs to be reachable from anywhere.",
    ),
    Rule(
        "guest-access-enabled",
        Severity.LOW,
        "Guest certificate requests are enabled",
        "Guest access lets people without a CertCentral account request certificates through a guest "
        "URL (requests still need approval): requesters are not reviewed users.",
        "Turn guest access off in CertCentral if nobody needs it, or restrict the guest URL with an IP rule.",
        scope="account",
    ),
    Rule(
        "privilege-change-unattributed",
        Severity.MEDIUM,
        "Privilege escalation the audit log does not explain",
        "A user gained a privileged role between two snapshots, and the CertCentral audit log archived for "
        "that whole period has no role change or user creation naming them: the change left no trace where "
        "it should have. Judged only where the archived log covers the period; elsewhere it is a stated "
        "limitation.",
        "Find out who granted the role and why (CertCentral: Account → Users, and the audit log); remove it "
        "if it was not approved, and check that the Report Library's audit-log report is still scheduled.",
    ),
)
RULES_BY_ID: dict[str, Rule] = {rule.id: rule for rule in RULES}
_RULE_ORDER = {rule_id: index for index, rule_id in enumerate(RULE_IDS)}


# --- helpers -------------------------------------------------------------------------------------


def _when(value: datetime | None) -> str:
    return stamp(value) or "never"


def _days(days: int) -> str:
    return "1 day" if days == 1 else f"{days} days"


def _is_shared_mailbox(user: User, patterns: Sequence[str]) -> str | None:
    """The first pattern matching the user's email or username (case-insensitive), or None."""
    for address in dict.fromkeys(a.strip().casefold() for a in (user.email, user.username) if a.strip()):
        for pattern in patterns:
            if fnmatch.fnmatchcase(address, pattern.casefold()):
                return pattern
    return None


def _domain(email: str) -> str:
    return email.rpartition("@")[2].strip().casefold().rstrip(".")


def _domain_allowed(domain: str, allowed: Sequence[str]) -> bool:
    return any(domain == d or domain.endswith("." + d) for d in allowed)


@dataclass(frozen=True, slots=True)
class _Context:
    snapshot: Snapshot
    previous: Snapshot | None
    history: Mapping[int, UserHistory]
    config: AuditConfig
    attestations: tuple[Attestation, ...]
    now: datetime
    privileged: PrivilegedRoles
    #: The id of the user the pull's API key belongs to (from ``GET /user/me``), if known.
    key_user_id: int | None = None
    identity: IdentitySource | None = None
    #: User id -> its match in the identity source (empty without one).
    matches: Mapping[int, Match] = field(default_factory=dict)
    #: Revoke/modify decisions of access review campaigns closed by ``now``, with their state.
    reviews: tuple[ReviewItem, ...] = ()
    #: The archived audit log as of ``now`` (None: none archived, or not readable).
    audit_log: AuditLog | None = None

    def first_seen(self, user: User) -> datetime:
        """When the tool first saw the user; this snapshot's time when no history is stored."""
        record = self.history.get(user.id)
        return record.first_seen if record is not None else self.snapshot.taken_at

    def finding(
        self,
        rule_id: str,
        explanation: str,
        evidence: Sequence[tuple[str, str]],
        user: User | None = None,
        *,
        severity: Severity | None = None,
    ) -> Finding:
        rule = RULES_BY_ID[rule_id]
        return Finding(
            rule_id=rule.id,
            severity=severity or rule.severity,
            title=rule.title,
            explanation=explanation,
            remediation=rule.remediation,
            user_id=user.id if user is not None else None,
            email=user.email if user is not None else "",
            evidence=tuple(evidence),
            controls=self.config.controls_for(rule_id),
        )

    def user_evidence(self, user: User) -> list[tuple[str, str]]:
        return [
            ("role", user.role_names or "(none)"),
            ("status", user.status or "(unknown)"),
            ("last sign-in", _when(user.last_login)),
        ]

    def threshold(self, field_name: str) -> str:
        days = getattr(self.config.thresholds, field_name)
        if field_name in self.config.overridden:
            return f"{_days(days)} (set by policy)"
        return f"{_days(days)} ({self.config.profile.origin(field_name).source})"


def _human(user: User) -> bool:
    return user.is_active and not user.is_service_user


# --- the rules -----------------------------------------------------------------------------------


def _sign_in_rules(ctx: _Context) -> list[Finding]:
    t = ctx.config.thresholds
    found: list[Finding] = []
    for user in ctx.snapshot.users:
        if not _human(user):
            continue
        privileged = ctx.privileged.held(user)
        who = f"{user.email or f'User {user.id}'}"
        # SSO sign-ins and API actions in the audit log count as activity too (issue 17).
        activity = ctx.audit_log.activity(user.id) if ctx.audit_log is not None else None
        if activity is not None and (user.last_login is None or activity.at > user.last_login):
            last_active: datetime | None = activity.at
        else:
            last_active, activity = user.last_login, None
        if last_active is not None:
            elapsed = ctx.now - last_active
            limit = t.inactive_admin_days if privileged else t.inactive_user_days
            if elapsed <= timedelta(days=limit):
                continue
            rule_id, field_name = (
                ("admin-dormant", "inactive_admin_days") if privileged else ("stale-login", "inactive_user_days")
            )
            role_words = f" holds {', '.join(privileged)} but" if privileged else ""
            if activity is None:
                explanation = (
                    f"{who}{role_words} has not signed in for {_days(elapsed.days)} "
                    f"(last sign-in {day(last_active)}); the limit is {_days(limit)}."
                )
            else:
                explanation = (
                    f"{who}{role_words} has not been active for {_days(elapsed.days)} "
                    f"(last activity: {activity.describe()}); the limit is {_days(limit)}."
                )
            evidence = [
                *ctx.user_evidence(user),
                ("days inactive", str(elapsed.days)),
                ("first seen", _when(ctx.first_seen(user))),
                ("threshold", ctx.threshold(field_name)),
            ]
            if activity is not None:
                evidence.append(("last activity", activity.describe()))
            found.append(ctx.finding(rule_id, explanation, evidence, user))
            continue
        first_seen = ctx.first_seen(user)
        known = ctx.now - first_seen
        limit = t.never_signed_in_admin_grace_days if privileged else t.never_signed_in_user_days
        if known <= timedelta(days=limit):
            continue
        rule_id, field_name = (
            ("admin-never-signed-in", "never_signed_in_admin_grace_days")
            if privileged
            else ("never-signed-in", "never_signed_in_user_days")
        )
        role_words = f" holds {', '.join(privileged)} and" if privileged else ""
        explanation = (
            f"{who}{role_words} has never been seen to sign in, although the tool has known the "
            f"account for {_days(known.days)} (first seen {day(first_seen)}); the limit is {_days(limit)}."
        )
        evidence = [
            *ctx.user_evidence(user),
            ("days since first seen", str(known.days)),
            ("first seen", _when(first_seen)),
            ("threshold", ctx.threshold(field_name)),
        ]
        found.append(ctx.finding(rule_id, explanation, evidence, user))
    return found


def _admin_not_active(ctx: _Context) -> list[Finding]:
    found: list[Finding] = []
    for user in ctx.snapshot.users:
        if user.is_admin and not user.is_active:
            explanation = (
                f"{user.email or f'User {user.id}'} has status '{user.status or 'unknown'}' but still holds "
                "the Administrator role; reactivating it would restore full access."
            )
            found.append(ctx.finding("admin-not-active", explanation, ctx.user_evidence(user), user))
    return found


def _new_admin(ctx: _Context) -> list[Finding]:
    if ctx.previous is None:
        return []
    before = {user.id: user for user in ctx.previous.users}
    found: list[Finding] = []
    for user in ctx.snapshot.users:
        old = before.get(user.id)
        if not user.is_admin or (old is not None and old.is_admin):
            continue
        since = _when(ctx.previous.taken_at)
        if old is None:
            how = f"is a new account that arrived as Administrator since the snapshot of {since}"
            previous_roles = "(not present)"
        else:
            how = f"was given the Administrator role since the snapshot of {since}"
            previous_roles = old.role_names or "(none)"
        explanation = f"{user.email or f'User {user.id}'} {how}; confirm the grant was approved."
        evidence = [
            *ctx.user_evidence(user),
            ("previous roles", previous_roles),
            ("previous snapshot", f"#{ctx.previous.id} ({since})"),
            ("first seen", _when(ctx.first_seen(user))),
        ]
        found.append(ctx.finding("new-admin", explanation, evidence, user))
    return found


def _shared_mailbox(ctx: _Context) -> list[Finding]:
    found: list[Finding] = []
    for user in ctx.snapshot.users:
        privileged = ctx.privileged.held(user)
        pattern = _is_shared_mailbox(user, ctx.config.shared_mailbox_patterns) if privileged else None
        if pattern is None:
            continue
        explanation = (
            f"{user.email or user.username} looks like a shared mailbox (matches '{pattern}') and holds "
            f"{', '.join(privileged)}; its actions cannot be traced to one person."
        )
        evidence = [*ctx.user_evidence(user), ("matched pattern", pattern)]
        found.append(ctx.finding("privileged-shared-mailbox", explanation, evidence, user))
    return found


def _external_domain(ctx: _Context) -> list[Finding]:
    allowed = ctx.config.allowed_domains
    if not allowed:
        return []
    found: list[Finding] = []
    for user in ctx.snapshot.users:
        domain = _domain(user.email)
        if not user.email.strip() or _domain_allowed(domain, allowed):
            continue
        explanation = f"{user.email}'s domain '{domain}' is not among the allowed domains ({', '.join(allowed)})."
        evidence = [*ctx.user_evidence(user), ("domain", domain), ("allowed domains", ", ".join(allowed))]
        found.append(ctx.finding("external-domain", explanation, evidence, user))
    return found


def _privileged_service_user(ctx: _Context) -> list[Finding]:
    found: list[Finding] = []
    for user in ctx.snapshot.users:
        privileged = ctx.privileged.held(user)
        if not (user.is_service_user and privileged):
            continue
        who = user.email or user.username or user.id
        if user.id == ctx.key_user_id:
            if user.last_login is None:
                continue  # the audit key's user, as the README recommends: named in the limitations
            explanation = (
                f"Service user {who} owns the audit's API key and holds {', '.join(privileged)}, and it "
                f"signs in interactively (last sign-in {day(user.last_login)}): the audit identity is "
                "also used by a person."
            )
            evidence = [*ctx.user_evidence(user), ("audit key's user", "yes")]
            found.append(ctx.finding("privileged-service-user", explanation, evidence, user))
            continue
        explanation = f"Service user {who} is API-only and holds {', '.join(privileged)}."
        found.append(ctx.finding("privileged-service-user", explanation, ctx.user_evidence(user), user))
    return found


def _too_many_admins(ctx: _Context) -> list[Finding]:
    admins = sorted(
        (user for user in ctx.snapshot.users if user.is_admin and user.is_active),
        key=lambda u: (u.email.casefold(), u.id),
    )
    ceiling = ctx.config.max_admins
    if len(admins) <= ceiling:
        return []
    if ctx.config.max_admins_configured:
        ceiling_words, threshold = f"the configured ceiling of {ceiling}", f"{ceiling} (max_admins)"
    else:
        ceiling_words = f"the default ceiling of {ceiling} (set by policy)"
        threshold = f"{ceiling} (default, set by policy; max_admins in auditor.toml changes it)"
    explanation = f"The account has {len(admins)} active Administrators, above {ceiling_words}."
    evidence = [
        ("administrators", str(len(admins))),
        ("threshold", threshold),
        ("who", ", ".join(u.email or str(u.id) for u in admins)),
    ]
    return [ctx.finding("too-many-admins", explanation, evidence)]


def _latest(attestations: Sequence[Attestation]) -> Attestation | None:
    return max(attestations, key=lambda a: (a.made_at, a.id), default=None)


def _mfa_attestation(ctx: _Context) -> list[Finding]:
    mfa = [a for a in ctx.attestations if a.kind is AttestationKind.MFA and a.made_at <= ctx.now]
    if any(a.valid_at(ctx.now) for a in mfa):
        return []
    last = _latest(mfa)
    if last is None:
        explanation = (
            "No attestation records that two-factor authentication enforcement was verified in the "
            "CertCentral console, and the API cannot show per-user 2FA status."
        )
        evidence = [("last attestation", "none")]
    else:
        explanation = (
            f"The last 2FA attestation, by {last.by} on {day(last.made_at)}, expired on "
            f"{day(last.expires)}; the API cannot show per-user 2FA status, so it must be renewed."
        )
        evidence = [
            ("last attestation", f"{_when(last.made_at)} by {last.by}"),
            ("expired", _when(last.expires)),
        ]
    return [ctx.finding("mfa-attestation-missing", explanation, evidence)]


def review_interval(snapshot: Snapshot, config: AuditConfig) -> tuple[int, str]:
    """The access-review interval in force for ``snapshot``: (days, threshold field).

    ``privileged_review_days`` when the snapshot has privileged users and it is the shorter, else
    ``full_review_days`` (both from the profiles, strictest wins, or ``auditor.toml``). It is what
    ``review-overdue`` measures, and how long a closed campaign's sign-off stays valid.
    """
    t = config.thresholds
    privileged = PrivilegedRoles.of(config.privileged_roles)
    if t.privileged_review_days < t.full_review_days and any(privileged.held(u) for u in snapshot.users):
        return t.privileged_review_days, "privileged_review_days"
    return t.full_review_days, "full_review_days"


def _review_overdue(ctx: _Context) -> list[Finding]:
    interval, field_name = review_interval(ctx.snapshot, ctx.config)
    which = "privileged" if field_name == "privileged_review_days" else "full"
    reviews = [a for a in ctx.attestations if a.kind is AttestationKind.REVIEW and a.made_at <= ctx.now]
    fresh = [a for a in reviews if a.valid_at(ctx.now) and ctx.now - a.made_at <= timedelta(days=interval)]
    if fresh:
        return []
    last = _latest(reviews)
    if last is None:
        explanation = (
            f"No signed-off access review was on record when this snapshot was taken ({_when(ctx.now)}); "
            f"the {which} review interval is {_days(interval)}."
        )
        evidence = [("last review", "none"), ("threshold", ctx.threshold(field_name))]
    else:
        age = (ctx.now - last.made_at).days
        expired = "" if last.valid_at(ctx.now) else f" and its attestation expired on {day(last.expires)}"
        explanation = (
            f"The last signed-off access review, by {last.by} on {day(last.made_at)}, was {_days(age)} "
            f"old when this snapshot was taken{expired}; the {which} review interval is {_days(interval)}."
        )
        evidence = [
            ("last review", f"{_when(last.made_at)} by {last.by}"),
            ("days since review", str(age)),
            ("threshold", ctx.threshold(field_name)),
        ]
    return [ctx.finding("review-overdue", explanation, evidence)]


_EMAIL_IN_ANGLES = re.compile(r"<\s*([^<>\s]+@[^<>\s]+)\s*>")


def person_email(text: str) -> str:
    """The email of a "NAME <EMAIL>" (or bare EMAIL) value, case-folded; '' when there is none."""
    match = _EMAIL_IN_ANGLES.search(text)
    if match:
        return match.group(1).casefold()
    bare = text.strip()
    return bare.casefold() if "@" in bare and " " not in bare else ""


def review_of(attestations: Sequence[Attestation], snapshot_id: int) -> Attestation | None:
    """The latest review attestation that signs off ``snapshot_id``, else None."""
    return _latest([a for a in attestations if a.kind is AttestationKind.REVIEW and a.snapshot_id == snapshot_id])


def reviewer_privileges(review: Attestation, snapshot: Snapshot, privileged_roles: Sequence[str]) -> tuple[User, str]:
    """(the reviewer's user, their privileged roles) in ``snapshot``, or raise LookupError."""
    email = person_email(review.by)
    wanted = PrivilegedRoles.of(privileged_roles)
    for user in snapshot.users:
        if email and user.email.casefold() == email:
            held = wanted.held(user)
            if held:
                return user, ", ".join(held)
    raise LookupError(email)


def _self_review(ctx: _Context) -> list[Finding]:
    review = review_of(ctx.attestations, ctx.snapshot.id)
    if review is None:
        return []
    try:
        user, roles = reviewer_privileges(review, ctx.snapshot, ctx.config.privileged_roles)
    except LookupError:
        return []
    explanation = (
        f"The review of snapshot #{ctx.snapshot.id} was signed off by {review.by} on {day(review.made_at)}, "
        f"who holds {roles} in that snapshot: they reviewed their own access."
    )
    evidence = [
        *ctx.user_evidence(user),
        ("review", f"{_when(review.made_at)} by {review.by}"),
        ("reviewed snapshot", f"#{ctx.snapshot.id}"),
    ]
    return [ctx.finding("self-review", explanation, evidence, user)]


def _self_approved_exception(ctx: _Context) -> list[Finding]:
    by_id = {str(user.id): user for user in ctx.snapshot.users}
    by_email = {user.email.casefold(): user for user in ctx.snapshot.users if user.email}
    found: list[Finding] = []
    for entry in ctx.config.exceptions:
        if not entry.approved_at(ctx.now) or entry.expired(ctx.now):
            continue
        wanted = entry.user.strip()
        user = by_id.get(wanted) or by_email.get(wanted.casefold())
        if user is None or not user.email:
            continue
        roles = [
            (label, value)
            for label, value in (("owner", entry.owner), ("approved by", entry.approved_by))
            if person_email(value) == user.email.casefold()
        ]
        if not roles:
            continue
        where = f" (line {entry.line})" if entry.line else ""
        explanation = (
            f"The {entry.rule} exception for {user.email}{where} names that same user as its "
            f"{' and '.join(label for label, _ in roles)}: the accepted risk was not approved independently."
        )
        evidence = [
            *ctx.user_evidence(user),
            ("exception", f"{entry.rule} for {entry.user}"),
            *roles,
            ("approved on", day(entry.approved_on) if entry.approved_on else "(not recorded)"),
        ]
        found.append(ctx.finding("self-approved-exception", explanation, evidence, user))
    return found


def _break_glass(ctx: _Context, user: User) -> bool:
    return any(entry.matches(user) for entry in ctx.config.identity.break_glass)


def _identity_rules(ctx: _Context) -> list[Finding]:
    source = ctx.identity
    if source is None:
        return []
    found: list[Finding] = []
    for user in ctx.snapshot.users:
        if not _human(user) or _break_glass(ctx, user):
            continue
        privileged = ctx.privileged.held(user)
        who = user.email or f"User {user.id}"
        match = ctx.matches.get(user.id)
        if match is None:
            explanation = (
                f"{who}{f' holds {chr(44).join(privileged)} and' if privileged else ''} is active in CertCentral "
                "but matches no person in the identity source (by email, alias or map file): an orphaned "
                "account, or a contractor nobody owns."
            )
            evidence = [*ctx.user_evidence(user), ("matched by", "nothing"), ("identity source", _files(source))]
            severity = Severity.HIGH if privileged else Severity.MEDIUM
            found.append(ctx.finding("not-in-identity-source", explanation, evidence, user, severity=severity))
            continue
        record = match.record
        if not record.gone_at(ctx.now, has_status=source.has_status):
            continue
        if record.termination_date is not None:
            days = (ctx.now - record.termination_date).days
            since = f"since {day(record.termination_date)}, {_days(days)} before this snapshot"
            days_text = str(days)
        else:
            since = "since a date the identity source does not state"
            days_text = "not stated"
        state = f"'{record.status}'" if record.status else "terminated"
        explanation = (
            f"{who}{f' holds {chr(44).join(privileged)} and' if privileged else ''} is still active in CertCentral, "
            f"but the identity source shows the person as {state} ({record.where}) {since}."
        )
        evidence = [
            *ctx.user_evidence(user),
            ("identity status", record.status or "(none)"),
            ("termination date", day(record.termination_date) if record.termination_date else "(not stated)"),
            ("days since termination", days_text),
            ("matched by", _matched_by(match)),
            ("identity record", record.where),
        ]
        if record.employee_id:
            evidence.append(("employee id", record.employee_id))
        if record.manager:
            evidence.append(("manager", record.manager))
        severity = Severity.CRITICAL if privileged else Severity.HIGH
        found.append(ctx.finding("terminated-still-active", explanation, evidence, user, severity=severity))
    return found


def _files(source: IdentitySource) -> str:
    return ", ".join(f.name for f in source.files)


def _matched_by(match: Match) -> str:
    if match.how == "map file" and match.map_entry is not None:
        return f"map file (row {match.map_entry.row}: {match.map_entry.person})"
    if match.how == "alias":
        return "alias"
    return "email"


def _review_decisions(ctx: _Context) -> list[Finding]:
    """``revocation-overdue`` and ``access-regranted`` from the campaigns' remediation states."""
    by_id = {user.id: user for user in ctx.snapshot.users}
    found: list[Finding] = []
    for item in ctx.reviews:
        user = by_id.get(item.user_id)
        if user is None:
            continue  # gone: remediated, and not regranted in this snapshot
        evidence = [
            *ctx.user_evidence(user),
            ("decision", item.decision + (f" to {item.new_role}" if item.new_role else "")),
            ("reviewer", item.reviewer),
            ("ticket", item.ticket or "(none)"),
            ("justification", item.justification or "(none)"),
            ("campaign", f"#{item.campaign_id} of snapshot {item.snapshot_id}, closed {day(item.closed_at)}"),
        ]
        if item.state == "overdue":
            due = item.closed_at + timedelta(days=ctx.config.remediation_days)
            found.append(
                ctx.finding(
                    "revocation-overdue",
                    f"Access review campaign #{item.campaign_id} decided to {item.decision} {user.email} "
                    f"(reviewer {item.reviewer}, ticket {item.ticket or 'none'}); it was due by {day(due)} "
                    f"({ctx.config.remediation_days} days after the close) and no snapshot since shows it done.",
                    [*evidence, ("due", day(due))],
                    user,
                )
            )
        elif item.state == "regranted" and ctx.privileged.held(user):
            found.append(
                ctx.finding(
                    "access-regranted",
                    f"The revocation of {user.email} decided in access review campaign #{item.campaign_id} "
                    f"(reviewer {item.reviewer}) was carried out by snapshot {item.remediated_snapshot_id}, "
                    f"and the user holds a privileged role again ({user.role_names}).",
                    [*evidence, ("remediated at snapshot", str(item.remediated_snapshot_id))],
                    user,
                )
            )
    return found


def _key_evidence(ctx: _Context, key: ApiKey, owner: User | None) -> list[tuple[str, str]]:
    who = (owner.email or f"user {owner.id}") if owner is not None else f"user {key.owner_id} (not in the snapshot)"
    evidence = [
        ("key", key.label),
        ("kind", key.kind),
        ("owner", f"{key.owner_name} <{who}>" if key.owner_name else who),
        ("owner role", owner.role_names or "(none)" if owner is not None else "(not a user)"),
        ("owner status", owner.status or "(unknown)" if owner is not None else "(not a user)"),
        ("owner type", "service (API-only) user" if owner is not None and owner.is_service_user else "user"),
        ("restriction", key.restriction),
        ("created", _when(key.created)),
        ("last used", _when(key.last_used)),
    ]
    if key.is_acme:
        evidence.append(("ACME directory URL", key.acme_directory_url))
    return evidence


def _key_finding(
    ctx: _Context, rule_id: str, key: ApiKey, owner: User | None, explanation: str, extra: Sequence[tuple[str, str]]
) -> Finding:
    finding = ctx.finding(rule_id, explanation, [*_key_evidence(ctx, key, owner), *extra], owner)
    if owner is None:
        # The owner is gone: the finding still names the key's user id, so exceptions and history find it.
        finding = replace(finding, user_id=key.owner_id)
    return finding


def _key_rules(ctx: _Context) -> list[Finding]:
    """The per-key rules, as of the snapshot; nothing when the key list was not read."""
    keys = ctx.snapshot.credentials.keys
    if keys is None:
        return []
    t = ctx.config.thresholds
    users = {user.id: user for user in ctx.snapshot.users}
    rules = ctx.snapshot.credentials.ip_rules
    found: list[Finding] = []
    for key in keys:
        if not key.is_active:
            continue
        owner = users.get(key.owner_id) if key.owner_id is not None else None
        name = f"{key.kind} {key.name or key.id}"
        # Absent from an incomplete snapshot is unknown, not gone: say nothing then.
        if (owner is None and ctx.snapshot.complete) or (owner is not None and not owner.is_active):
            state = (
                f"whose owner {owner.email or owner.id} is {owner.status or 'of unknown status'}"
                if owner is not None
                else f"whose owner (user {key.owner_id}) is no longer a user of the account"
            )
            found.append(
                _key_finding(ctx, "key-owner-inactive", key, owner, f"The active {name} belongs to a user {state}.", [])
            )
        if key.unrestricted:
            finding = _key_finding(
                ctx,
                "key-unrestricted",
                key,
                owner,
                f"The active {name} has no restriction: it can do everything its owner can"
                + (", and its owner is an Administrator." if owner is not None and owner.is_admin else "."),
                [],
            )
            if owner is not None and owner.is_admin:
                finding = replace(finding, severity=Severity.HIGH)
            found.append(finding)
        if key.last_used is not None:
            idle = ctx.now - key.last_used
            if idle > timedelta(days=t.inactive_user_days):
                found.append(
                    _key_finding(
                        ctx,
                        "key-unused",
                        key,
                        owner,
                        f"The active {name} was last used {_days(idle.days)} ago ({day(key.last_used)}); "
                        f"the limit is {_days(t.inactive_user_days)}.",
                        [("days unused", str(idle.days)), ("threshold", ctx.threshold("inactive_user_days"))],
                    )
                )
        elif key.created is not None:
            age = ctx.now - key.created
            if age > timedelta(days=t.never_signed_in_user_days):
                found.append(
                    _key_finding(
                        ctx,
                        "key-never-used",
                        key,
                        owner,
                        f"The active {name} was created {_days(age.days)} ago ({day(key.created)}) and has "
                        f"never been used; the limit is {_days(t.never_signed_in_user_days)}.",
                        [
                            ("days since created", str(age.days)),
                            ("threshold", ctx.threshold("never_signed_in_user_days")),
                        ],
                    )
                )
        if key.is_legacy:
            found.append(_key_finding(ctx, "key-legacy", key, owner, f"The active {name} is a legacy key.", []))
        if rules and not ctx.snapshot.credentials.covers(key):
            found.append(
                _key_finding(
                    ctx,
                    "key-no-ip-restriction",
                    key,
                    owner,
                    f"The account has {len(rules)} IP rule(s), but none covers the active {name}.",
                    [("IP rules in the account", str(len(rules)))],
                )
            )
    return found


def _guest_access(ctx: _Context) -> list[Finding]:
    inventory = ctx.snapshot.credentials
    if inventory.guest_access is not True:
        return []
    evidence = [("guest access", "enabled")]
    if inventory.guest_access_url:
        evidence.append(("guest URL", inventory.guest_access_url))
    return [ctx.finding("guest-access-enabled", "Guest certificate requests are enabled for the account.", evidence)]


def _unattributed_escalations(ctx: _Context) -> list[Finding]:
    """``privilege-change-unattributed``: only where the archived audit log covers the whole period."""
    previous, log = ctx.previous, ctx.audit_log
    if previous is None or log is None or not log.covers(previous.taken_at, ctx.snapshot.taken_at):
        return []
    found: list[Finding] = []
    before = {user.id for user in previous.users}
    for user, gained in escalations(previous, ctx.snapshot, ctx.privileged):
        if not previous.complete and user.id not in before:
            continue  # missing from an incomplete snapshot is not a joiner (as for new-admin)
        if log.attribution(user, after=previous.taken_at, until=ctx.now) is not None:
            continue
        explanation = (
            f"{user.email or f'User {user.id}'} gained {', '.join(gained)} between snapshot #{previous.id} "
            f"({day(previous.taken_at)}) and #{ctx.snapshot.id} ({day(ctx.snapshot.taken_at)}), but the audit log "
            "archived for that period records no role change or user creation naming them."
        )
        evidence = [
            *ctx.user_evidence(user),
            ("gained", ", ".join(gained)),
            ("period", f"{stamp(previous.taken_at)} - {stamp(ctx.snapshot.taken_at)}"),
            ("audit-log runs", str(len(log.runs))),
        ]
        found.append(ctx.finding("privilege-change-unattributed", explanation, evidence, user))
    return found


_CHECKS: tuple[Callable[[_Context], list[Finding]], ...] = (
    _sign_in_rules,
    _admin_not_active,
    _new_admin,
    _shared_mailbox,
    _external_domain,
    _privileged_service_user,
    _too_many_admins,
    _mfa_attestation,
    _review_overdue,
    _self_review,
    _self_approved_exception,
    _identity_rules,
    _review_decisions,
    _key_rules,
    _guest_access,
    _unattributed_escalations,
)


def _audit_log_limitations(ctx: _Context) -> list[str]:
    """What the audit log could and could not show for this snapshot (never a failure)."""
    log, previous = ctx.audit_log, ctx.previous
    lines: list[str] = []
    if "audit_log" in ctx.snapshot.provenance.not_evaluable:
        if log is None or not log.runs:
            return [
                "Not evaluable: the audit log (Report Library) was not read at this pull (see the pull notes), so "
                "privilege changes are not attributed, SSO and API activity is not counted, and "
                "privilege-change-unattributed was not checked."
            ]
        lines.append(
            "Not evaluable: the audit log (Report Library) was not read at this pull (see the pull notes); only "
            "the runs archived by earlier pulls are used."
        )
    elif log is None or not log.runs:
        return [NO_AUDIT_LOG_LIMITATION]
    lines += [
        f"Audit log: {len(log.runs)} archived run(s) up to {stamp(ctx.snapshot.taken_at)}; SSO sign-ins and API "
        "actions in it count as activity for admin-dormant and stale-login."
    ]
    if previous is not None and not log.covers(previous.taken_at, ctx.snapshot.taken_at):
        reach = f" (it reaches {stamp(log.coverage[-1][1])})" if log.coverage else ""
        lines.append(
            f"The archived audit log does not cover the whole period since snapshot #{previous.id}{reach}, so "
            "privilege-change-unattributed was not checked for it."
        )
    return lines


# --- exceptions, limitations, entry point --------------------------------------------------------


def exception_matches(entry: ExceptionEntry, finding: Finding) -> bool:
    """Whether an exception covers a finding: by id or email (case-insensitive); ``account`` or ``*``
    for account-level findings."""
    if finding.user_id is None:
        return entry.rule == finding.rule_id and entry.user.strip().casefold() in ACCOUNT_EXCEPTION_USERS
    return entry.matches(finding.rule_id, finding.user_id, finding.email)


def _apply_exceptions(
    findings: Sequence[Finding], exceptions: Sequence[ExceptionEntry], now: datetime
) -> tuple[list[Finding], tuple[ExceptionEntry, ...]]:
    used: set[int] = set()
    result: list[Finding] = []
    # An exception approved after ``now`` did not exist yet: it neither suppresses nor is stale.
    in_force = [(i, e) for i, e in enumerate(exceptions) if e.approved_at(now)]
    used.update(i for i, e in enumerate(exceptions) if not e.approved_at(now))
    for finding in findings:
        matching = [(i, e) for i, e in in_force if exception_matches(e, finding)]
        used.update(i for i, _ in matching)
        valid = [e for _, e in matching if not e.expired(now)]
        expired = [e for _, e in matching if e.expired(now)]
        if valid:
            finding = replace(finding, suppressed_by=max(valid, key=lambda e: e.expires))
        elif expired:
            finding = replace(finding, expired_exception=max(expired, key=lambda e: e.expires))
        result.append(finding)
    stale = tuple(e for i, e in enumerate(exceptions) if i not in used)
    return result, stale


def _limitations(ctx: _Context) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(every limitation, the ones only the rules know); the others restate the provenance."""
    lines = [TWO_FA_LIMITATION]
    snapshot = ctx.snapshot
    detailed = [u for u in snapshot.users if u.is_saml_sso_only is not None]
    if detailed:
        saml = sorted((u.email or str(u.id) for u in detailed if u.is_saml_sso_only), key=str.casefold)
        listed = ", ".join(saml[:_LIST_LIMIT])
        more = f" and {len(saml) - _LIST_LIMIT} more" if len(saml) > _LIST_LIMIT else ""
        lines.append(
            f"{len(saml)} of {len(detailed)} users whose details were fetched sign in only through SAML "
            f"SSO, so their identity provider's MFA applies" + (f": {listed}{more}." if saml else ".")
        )
    else:
        lines.append(
            "Whether users sign in only through SAML SSO was not fetched for this snapshot "
            "(pull with --details to see it)."
        )
    provenance = snapshot.provenance
    if not snapshot.complete:
        lines.append(
            f"Snapshot #{snapshot.id} is incomplete: {provenance.received} of {provenance.expected_total} "
            "users were received, so users missing from it were not evaluated."
        )
    notes = provenance.notes
    if provenance.division_restricted:
        lines.append(
            "The API key sees only some divisions: users outside them are not in this snapshot, so the "
            "findings cover only the divisions it can see."
        )
    lines.extend(f"Pull note: {note}" for note in notes)
    rule_lines: list[str] = []
    for part, words in (
        ("api_keys", "API keys and ACME URLs were not readable with this key"),
        ("ip_rules", "IP restriction rules were not readable with this key"),
        ("guest_access", "Guest access settings were not readable with this key"),
    ):
        if part in provenance.not_evaluable:
            rule_lines.append(f"Not evaluable: {words}, so their rules were not checked (unknown, not none).")
    key_user = next((u for u in snapshot.users if u.id == ctx.key_user_id), None)
    if key_user is not None:
        roles = key_user.role_names or "no role"
        kind = "service (API-only) user" if key_user.is_service_user else "user"
        if key_user.is_service_user and key_user.last_login is None:
            rule_lines.append(
                f"The audit key's user: {key_user.email or key_user.username or key_user.id} ({kind}, {roles}) owns "
                "the API key this snapshot was pulled with. It is not reported as privileged-service-user (an "
                "admin-level service user with a View Only key is the recommended set-up); it would be if it "
                "signed in interactively."
            )
        else:
            rule_lines.append(
                f"The audit key's user: {key_user.email or key_user.username or key_user.id} ({kind}, {roles}) owns "
                "the API key this snapshot was pulled with."
            )
    rule_lines.extend(_identity_limitations(ctx))
    if ctx.previous is None:
        rule_lines.append("No earlier snapshot to compare with, so new Administrators (new-admin) were not checked.")
    elif not ctx.previous.complete:
        rule_lines.append(
            f"The previous snapshot #{ctx.previous.id} is incomplete, so some accounts reported by "
            "new-admin may have existed before."
        )
    rule_lines.extend(_audit_log_limitations(ctx))
    return (*lines, *rule_lines), tuple(rule_lines)


def _listed(emails: Sequence[str]) -> str:
    ordered = sorted(emails, key=str.casefold)
    more = f" and {len(ordered) - _LIST_LIMIT} more" if len(ordered) > _LIST_LIMIT else ""
    return ", ".join(ordered[:_LIST_LIMIT]) + more


def _identity_limitations(ctx: _Context) -> list[str]:
    """The leaver rules' limitations: no source at all, or who was not judged and why."""
    if ctx.identity is None:
        return [NO_IDENTITY_LIMITATION]
    lines: list[str] = []
    service = [u.email or u.username or str(u.id) for u in ctx.snapshot.users if u.is_service_user and u.is_active]
    if service:
        lines.append(
            f"{len(service)} service (API-only) user{'s are' if len(service) != 1 else ' is'} not judged by HR "
            f"status (a service user is nobody's employment; its API keys' owners are what matter): {_listed(service)}."
        )
    for entry in ctx.config.identity.break_glass:
        users = [u for u in ctx.snapshot.users if entry.matches(u)]
        if not users:
            lines.append(f"Break-glass account {entry.user} (reason: {entry.reason}) is not in this snapshot.")
            continue
        for user in users:
            match = ctx.matches.get(user.id)
            seen = f"matched {match.record.where} by {_matched_by(match)}" if match else "matches no person"
            lines.append(
                f"Break-glass account {user.email or user.id} ({user.role_names or 'no role'}, status "
                f"{user.status or 'unknown'}, last sign-in {_when(user.last_login)}) is reported apart and not "
                f"judged against the identity source ({seen}); reason: {entry.reason}."
            )
    return lines


def _identity_facts(ctx: _Context) -> tuple[tuple[str, str], ...]:
    source = ctx.identity
    if source is None:
        return ()
    judged = [u for u in ctx.snapshot.users if _human(u) and not _break_glass(ctx, u)]
    counts = match_counts({u.id: ctx.matches[u.id] for u in judged if u.id in ctx.matches})
    unmatched = sum(1 for u in judged if u.id not in ctx.matches)
    mapping = source.mapping
    columns = ", ".join(
        f"{key}={value}"
        for key, value in (
            ("email", mapping.email),
            ("status", mapping.status),
            ("termination_date", mapping.termination_date),
            ("employee_id", mapping.employee_id),
            ("manager", mapping.manager),
            ("aliases", "+".join(mapping.aliases)),
        )
        if value and (key == "email" or any(c in source.columns_used for c in value.split("+")))
    )
    gone = ", ".join(mapping.terminated_values) or "(no status column)"
    return (
        ("source", source.describe()),
        ("mapping", f"{columns}; gone when status is {gone}"),
        (
            "matched",
            f"{len(judged)} active users judged: {counts['email']} matched by email, {counts['alias']} by alias, "
            f"{counts['map file']} by map file, {unmatched} unmatched; "
            f"{len(ctx.config.identity.break_glass)} break-glass account(s) reported apart",
        ),
    )


def finding_sort_key(finding: Finding) -> tuple[int, int, str, int, str]:
    """The one order of findings (``FindingsResult.findings``; the report and exports keep it).

    Worst first, then the rule catalogue's order (related rules stay together), then email and
    user id; the explanation makes it total, so two runs over the same snapshot list the same.
    """
    return (
        finding.severity.rank,
        _RULE_ORDER[finding.rule_id],
        finding.email.casefold(),
        finding.user_id if finding.user_id is not None else -1,
        finding.explanation,
    )


def evaluate(
    snapshot: Snapshot,
    *,
    previous: Snapshot | None,
    history: Mapping[int, UserHistory],
    config: AuditConfig,
    attestations: Sequence[Attestation],
    now: datetime,
    key_user_id: int | None = None,
    identity: IdentitySource | None = None,
    reviews: Sequence[ReviewItem] = (),
    identity_index: IdentityIndex | None = None,
    audit_log: AuditLog | None = None,
) -> FindingsResult:
    """Run every rule over ``snapshot`` at ``now`` and apply the configured exceptions.

    ``now`` should be the snapshot's own time (``snapshot.taken_at``): what a re-run a year
    later must reproduce. ``key_user_id`` is the user the pull's API key belongs to.
    ``identity_index`` is ``IdentityIndex(identity.records)``, passed by a caller that evaluates
    several snapshots against one source (built here when not given).

    ``attestations`` should be those of the snapshot's connection; others are ignored. Suppressed
    findings are kept (``suppressed_by`` set); exceptions that matched nothing are ``stale_exceptions``.
    Findings are sorted worst first: severity, rule order, email, user id.
    """
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware (UTC)")
    ctx = _Context(
        snapshot=snapshot,
        previous=previous,
        history=history,
        config=config,
        attestations=tuple(a for a in attestations if a.connection == snapshot.connection),
        now=now,
        privileged=PrivilegedRoles.of(config.privileged_roles),
        key_user_id=key_user_id,
        identity=identity,
        matches=match_users(snapshot.users, identity, now=now, index=identity_index) if identity else {},
        reviews=tuple(reviews),
        audit_log=audit_log,
    )
    findings = [finding for check in _CHECKS for finding in check(ctx)]
    findings, stale = _apply_exceptions(findings, config.exceptions, now)
    findings.sort(key=finding_sort_key)
    limitations, rule_limitations = _limitations(ctx)
    return FindingsResult(
        snapshot_id=snapshot.id,
        evaluated_at=now,
        profiles=config.profile.names,
        findings=tuple(findings),
        stale_exceptions=stale,
        thresholds=config.describe_thresholds(),
        limitations=limitations,
        rule_limitations=rule_limitations,
        identity_source=_identity_facts(ctx),
    )
