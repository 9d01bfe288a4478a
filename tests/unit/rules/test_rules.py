"""The rules: both sides of every threshold, role/status combinations, exceptions, attestations."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta

import factories
import pytest

from auditor.config import AuditConfig, default_config
from auditor.models import (
    Attestation,
    AttestationKind,
    ExceptionEntry,
    Finding,
    FindingsResult,
    KeyOwner,
    Role,
    Severity,
    Snapshot,
    User,
    UserHistory,
)
from auditor.profiles import RULE_IDS, combine
from auditor.rules import (
    NO_AUDIT_LOG_LIMITATION,
    NO_IDENTITY_LIMITATION,
    RULES,
    RULES_BY_ID,
    TWO_FA_LIMITATION,
    evaluate,
    exception_matches,
)

NOW = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)
ADMIN = Role(1, "Administrator")
MANAGER = Role(4, "Manager")
STANDARD = Role(5, "Standard User")


def make_user(user_id: int = 1, **overrides: object) -> User:
    return factories.make_user(user_id, name="person", **{"last_login": NOW - timedelta(days=1), **overrides})  # type: ignore[arg-type]


def idle_admin(days: int) -> User:
    """An active Administrator whose last sign-in was ``days`` ago."""
    return make_user(roles=(ADMIN,), last_login=NOW - timedelta(days=days))


def make_snapshot(
    users: Sequence[User],
    *,
    snapshot_id: int = 2,
    taken_at: datetime = NOW,
    complete: bool = True,
    notes: tuple[str, ...] = (),
) -> Snapshot:
    return factories.make_snapshot(users, snapshot_id=snapshot_id, taken_at=taken_at, complete=complete, notes=notes)


def make_config(*profiles: str, **changes: object) -> AuditConfig:
    profile = combine(profiles or ("pci-dss-4",))
    config = AuditConfig(profile=profile, thresholds=profile.thresholds)
    return dataclasses.replace(config, **changes)  # type: ignore[arg-type]


def attestation(kind: AttestationKind, made_days_ago: float, valid_days: float = 90, **kw: object) -> Attestation:
    made = NOW - timedelta(days=made_days_ago)
    values: dict[str, object] = {
        "id": 1,
        "connection": "prod",
        "kind": kind,
        "by": "Rita Reviewer <rita@example.com>",
        "statement": "checked",
        "made_at": made,
        "expires": made + timedelta(days=valid_days),
    }
    values.update(kw)
    return Attestation(**values)  # type: ignore[arg-type]


def run(
    users: Sequence[User],
    *,
    config: AuditConfig | None = None,
    previous: Snapshot | None = None,
    history: Mapping[int, UserHistory] | None = None,
    attestations: Sequence[Attestation] = (),
    now: datetime = NOW,
    snapshot: Snapshot | None = None,
) -> FindingsResult:
    return evaluate(
        snapshot or make_snapshot(users),
        previous=previous,
        history=history or {},
        config=config or make_config(),
        attestations=attestations,
        now=now,
    )


def of(result: FindingsResult, rule_id: str) -> list[Finding]:
    return [f for f in result.findings if f.rule_id == rule_id]


def seen(days_ago: float, *user_ids: int) -> dict[int, UserHistory]:
    return {uid: UserHistory(uid, NOW - timedelta(days=days_ago), NOW) for uid in user_ids}


# --- registry -------------------------------------------------------------------------------------


def test_registry_lists_every_rule_id_once_in_order() -> None:
    assert tuple(rule.id for rule in RULES) == RULE_IDS
    assert set(RULES_BY_ID) == set(RULE_IDS)
    for rule in RULES:
        assert rule.title and rule.explanation and rule.remediation
        assert rule.scope in {"user", "account"}
    assert {r.id for r in RULES if r.scope == "account"} == {
        "too-many-admins",
        "mfa-attestation-missing",
        "review-overdue",
        "guest-access-enabled",
    }


# --- sign-in rules --------------------------------------------------------------------------------


@pytest.mark.parametrize("role", [ADMIN, MANAGER])
def test_admin_dormant_one_day_either_side(role: Role) -> None:
    under = run([make_user(roles=(role,), last_login=NOW - timedelta(days=89))])
    at = run([make_user(roles=(role,), last_login=NOW - timedelta(days=90))])
    over = run([make_user(roles=(role,), last_login=NOW - timedelta(days=91))])
    assert of(under, "admin-dormant") == [] and of(at, "admin-dormant") == []
    (finding,) = of(over, "admin-dormant")
    assert finding.severity is Severity.HIGH
    assert finding.user_id == 1 and finding.email == "person1@example.com"
    assert "91 days" in finding.explanation and "90 days" in finding.explanation
    evidence = dict(finding.evidence)
    assert evidence["days inactive"] == "91"
    assert evidence["role"] == role.name
    assert evidence["status"] == "active"
    assert evidence["threshold"] == "90 days (PCI DSS 8.2.6)"
    assert evidence["last sign-in"] == (NOW - timedelta(days=91)).strftime("%Y-%m-%d %H:%M UTC")
    assert finding.controls == ("PCI DSS 8.2.6", "PCI DSS 7.2.4")
    assert of(over, "stale-login") == []  # reported once, by the stricter rule


def test_admin_dormant_uses_the_profiles_admin_threshold() -> None:
    config = make_config("cis-v8")
    assert of(run([idle_admin(44)], config=config), "admin-dormant") == []
    (finding,) = of(run([idle_admin(46)], config=config), "admin-dormant")
    assert dict(finding.evidence)["threshold"] == "45 days (CIS 5.3)"
    assert finding.controls == ("CIS 5.3",)


def test_manager_is_privileged_only_when_configured() -> None:
    user = make_user(roles=(MANAGER,), last_login=NOW - timedelta(days=91))
    result = run([user], config=make_config(privileged_roles=("Administrator",)))
    assert of(result, "admin-dormant") == []
    assert len(of(result, "stale-login")) == 1


@pytest.mark.parametrize("status", ["inactive", "locked", ""])
def test_sign_in_rules_skip_users_that_are_not_active(status: str) -> None:
    users = [
        make_user(1, roles=(ADMIN,), status=status, last_login=NOW - timedelta(days=400)),
        make_user(2, status=status, last_login=NOW - timedelta(days=400)),
        make_user(3, roles=(ADMIN,), status=status, last_login=None),
        make_user(4, status=status, last_login=None),
    ]
    result = run(users, history=seen(400, 1, 2, 3, 4))
    for rule_id in ("admin-dormant", "stale-login", "admin-never-signed-in", "never-signed-in"):
        assert of(result, rule_id) == []


def test_sign_in_rules_skip_service_users() -> None:
    users = [
        make_user(1, roles=(ADMIN,), is_service_user=True, last_login=None),
        make_user(2, is_service_user=True, last_login=NOW - timedelta(days=400)),
    ]
    result = run(users, history=seen(400, 1, 2))
    assert [f.rule_id for f in result.findings if f.user_id is not None] == ["privileged-service-user"]


def test_admin_dormant_threshold_override_reads_set_by_policy() -> None:
    config = make_config(
        thresholds=dataclasses.replace(make_config().thresholds, inactive_admin_days=30),
        overridden=("inactive_admin_days",),
    )
    (finding,) = of(run([idle_admin(31)], config=config), "admin-dormant")
    assert dict(finding.evidence)["threshold"] == "30 days (set by policy)"


def test_admin_never_signed_in_after_grace_period() -> None:
    admin = make_user(roles=(ADMIN,), last_login=None)
    assert of(run([admin], history=seen(6)), "admin-never-signed-in") == []
    (finding,) = of(run([admin], history=seen(8, 1)), "admin-never-signed-in")
    assert finding.severity is Severity.HIGH
    evidence = dict(finding.evidence)
    assert evidence["last sign-in"] == "never"
    assert evidence["days since first seen"] == "8"
    assert evidence["first seen"] == (NOW - timedelta(days=8)).strftime("%Y-%m-%d %H:%M UTC")
    assert evidence["threshold"] == "7 days (set by policy)"
    assert "8 days" in finding.explanation
    assert of(run([admin], history=seen(6, 1)), "admin-never-signed-in") == []
    assert of(run([admin], history=seen(400, 1)), "never-signed-in") == []


def test_never_signed_in_without_history_counts_from_this_snapshot() -> None:
    admin = make_user(roles=(ADMIN,), last_login=None)
    assert of(run([admin], history={}), "admin-never-signed-in") == []
    later = run([admin], snapshot=make_snapshot([admin], taken_at=NOW - timedelta(days=8)))
    assert len(of(later, "admin-never-signed-in")) == 1


def test_admin_not_active() -> None:
    result = run(
        [
            make_user(1, roles=(ADMIN,), status="inactive"),
            make_user(2, roles=(ADMIN,), status="active"),
            make_user(3, roles=(MANAGER,), status="inactive"),
            make_user(4, roles=(STANDARD,), status="locked"),
        ]
    )
    (finding,) = of(result, "admin-not-active")
    assert finding.user_id == 1
    assert "'inactive'" in finding.explanation
    assert dict(finding.evidence)["status"] == "inactive"


def test_stale_login_one_day_either_side() -> None:
    assert of(run([make_user(last_login=NOW - timedelta(days=89))]), "stale-login") == []
    assert of(run([make_user(last_login=NOW - timedelta(days=90))]), "stale-login") == []
    (finding,) = of(run([make_user(last_login=NOW - timedelta(days=91))]), "stale-login")
    assert finding.severity is Severity.MEDIUM
    assert dict(finding.evidence)["days inactive"] == "91"
    assert finding.controls == ("PCI DSS 8.2.6",)


def test_stale_login_with_a_future_sign_in_is_not_stale() -> None:
    assert of(run([make_user(last_login=NOW + timedelta(days=3))]), "stale-login") == []


def test_never_signed_in_one_day_either_side() -> None:
    user = make_user(last_login=None)
    assert of(run([user], history=seen(89, 1)), "never-signed-in") == []
    (finding,) = of(run([user], history=seen(91, 1)), "never-signed-in")
    assert dict(finding.evidence)["days since first seen"] == "91"
    assert dict(finding.evidence)["threshold"] == "90 days (PCI DSS 8.2.6)"


# --- new-admin --------------------------------------------------------------------------------------


def test_new_admin_by_escalation_and_by_joining() -> None:
    previous = make_snapshot(
        [make_user(1), make_user(2, roles=(ADMIN,)), make_user(3, roles=(MANAGER,))],
        snapshot_id=1,
        taken_at=NOW - timedelta(days=7),
    )
    current = [
        make_user(1, roles=(ADMIN,)),  # escalation
        make_user(2, roles=(ADMIN,)),  # already admin
        make_user(3, roles=(MANAGER, STANDARD)),  # privileged but not Administrator
        make_user(4, roles=(ADMIN,)),  # joiner
        make_user(5),  # joiner, not admin
    ]
    findings = of(run(current, previous=previous), "new-admin")
    assert [f.user_id for f in findings] == [1, 4]
    escalated, joined = findings
    assert dict(escalated.evidence)["previous roles"] == "Standard User"
    assert "was given the Administrator role" in escalated.explanation
    assert dict(joined.evidence)["previous roles"] == "(not present)"
    assert "new account" in joined.explanation


def test_new_admin_needs_a_previous_snapshot() -> None:
    result = run([make_user(roles=(ADMIN,))], previous=None)
    assert of(result, "new-admin") == []
    assert any("new-admin" in line for line in result.limitations)


# --- account makeup ---------------------------------------------------------------------------------


def test_privileged_shared_mailbox() -> None:
    users = [
        make_user(1, email="IT@Example.com", roles=(MANAGER,)),
        make_user(2, email="admin@example.com", roles=(STANDARD,)),
        make_user(3, email="alice@example.com", roles=(ADMIN,)),
        make_user(4, email="alice.admin@example.com", username="certs@example.com", roles=(ADMIN,)),
    ]
    findings = of(run(users), "privileged-shared-mailbox")
    assert [f.user_id for f in findings] == [4, 1]
    assert dict(findings[1].evidence)["matched pattern"] == "it@*"
    assert findings[1].controls == ("PCI DSS 8.2.2",)
    custom = run(users, config=make_config(shared_mailbox_patterns=("alice@*",)))
    assert [f.user_id for f in of(custom, "privileged-shared-mailbox")] == [3]
    assert of(run(users, config=make_config(shared_mailbox_patterns=())), "privileged-shared-mailbox") == []


def test_external_domain_only_when_configured() -> None:
    users = [
        make_user(1, email="a@example.com"),
        make_user(2, email="b@EU.Example.com"),
        make_user(3, email="c@gmail.com"),
        make_user(4, email="d@example.com.evil.net"),
        make_user(5, email=""),
    ]
    assert of(run(users), "external-domain") == []
    findings = of(run(users, config=make_config(allowed_domains=("example.com",))), "external-domain")
    assert [f.user_id for f in findings] == [3, 4]
    assert dict(findings[0].evidence)["domain"] == "gmail.com"


def test_privileged_service_user() -> None:
    users = [
        make_user(1, roles=(ADMIN,), is_service_user=True),
        make_user(2, roles=(STANDARD,), is_service_user=True),
        make_user(3, roles=(MANAGER,), is_service_user=False),
    ]
    (finding,) = of(run(users), "privileged-service-user")
    assert finding.user_id == 1
    assert finding.controls == ("PCI DSS 7.2.5.1",)


def test_too_many_admins_one_either_side() -> None:
    config = make_config(max_admins=2, max_admins_configured=True)
    two = [make_user(1, roles=(ADMIN,)), make_user(2, roles=(ADMIN,)), make_user(3, roles=(ADMIN,), status="inactive")]
    assert of(run(two, config=config), "too-many-admins") == []
    three = [*two, make_user(4, roles=(ADMIN, STANDARD))]
    (finding,) = of(run(three, config=config), "too-many-admins")
    assert finding.user_id is None and finding.email == ""
    assert dict(finding.evidence)["administrators"] == "3"
    assert dict(finding.evidence)["threshold"] == "2 (max_admins)"
    assert "3 active Administrators" in finding.explanation


# --- attestations ---------------------------------------------------------------------------------


def test_mfa_attestation_missing_valid_expired() -> None:
    users = [make_user()]
    (missing,) = of(run(users), "mfa-attestation-missing")
    assert missing.severity is Severity.HIGH and missing.user_id is None
    assert dict(missing.evidence)["last attestation"] == "none"
    valid = attestation(AttestationKind.MFA, made_days_ago=89, valid_days=90)
    assert of(run(users, attestations=[valid]), "mfa-attestation-missing") == []
    expired = attestation(AttestationKind.MFA, made_days_ago=91, valid_days=90)
    (finding,) = of(run(users, attestations=[expired]), "mfa-attestation-missing")
    assert "expired on 2026-10-31" in finding.explanation
    assert "Rita Reviewer" in finding.explanation


def test_mfa_attestation_of_another_connection_or_kind_does_not_count() -> None:
    other = attestation(AttestationKind.MFA, made_days_ago=1, connection="staging")
    review = attestation(AttestationKind.REVIEW, made_days_ago=1)
    assert len(of(run([make_user()], attestations=[other, review]), "mfa-attestation-missing")) == 1


def test_mfa_attestation_from_the_future_does_not_count() -> None:
    future = attestation(AttestationKind.MFA, made_days_ago=-1)
    assert len(of(run([make_user()], attestations=[future]), "mfa-attestation-missing")) == 1


def test_review_overdue_uses_privileged_interval_while_privileged_users_exist() -> None:
    config = make_config("nist-800-53-moderate")  # full 365, privileged 90
    admins = [make_user(roles=(ADMIN,))]
    review = {d: attestation(AttestationKind.REVIEW, made_days_ago=d, valid_days=400) for d in (89, 91, 364, 366)}
    assert of(run(admins, config=config, attestations=[review[89]]), "review-overdue") == []
    (finding,) = of(run(admins, config=config, attestations=[review[91]]), "review-overdue")
    assert "privileged review interval is 90 days" in finding.explanation
    assert dict(finding.evidence)["threshold"] == "90 days (NIST AC-2(j))"
    plain = [make_user()]
    assert of(run(plain, config=config, attestations=[review[364]]), "review-overdue") == []
    (finding,) = of(run(plain, config=config, attestations=[review[366]]), "review-overdue")
    assert "full review interval is 365 days" in finding.explanation
    assert dict(finding.evidence)["days since review"] == "366"


def test_review_overdue_when_none_or_expired() -> None:
    (none,) = of(run([make_user()]), "review-overdue")
    assert "No signed-off access review" in none.explanation
    assert none.controls == ("PCI DSS 7.2.4",)
    expired = attestation(AttestationKind.REVIEW, made_days_ago=30, valid_days=20)
    (finding,) = of(run([make_user()], attestations=[expired]), "review-overdue")
    assert "expired on" in finding.explanation
    fresh = attestation(AttestationKind.REVIEW, made_days_ago=30, valid_days=90)
    assert of(run([make_user()], attestations=[fresh]), "review-overdue") == []


# --- exceptions -------------------------------------------------------------------------------------


def exception(rule: str, user: str, *, expires: datetime = NOW + timedelta(days=30)) -> ExceptionEntry:
    return ExceptionEntry(rule=rule, user=user, reason="accepted", owner="Sec", expires=expires, line=3)


def test_exception_by_email_is_case_insensitive_and_kept_as_suppressed() -> None:
    user = make_user(7, email="Dana.Ops@Example.com", last_login=NOW - timedelta(days=100))
    entry = exception("stale-login", "dana.ops@example.COM")
    result = run([user], config=make_config(exceptions=(entry,)))
    (finding,) = of(result, "stale-login")
    assert finding.suppressed and finding.suppressed_by == entry
    assert finding in result.suppressed and finding not in result.active
    assert result.stale_exceptions == ()


def test_exception_by_id() -> None:
    user = make_user(7, last_login=NOW - timedelta(days=100))
    result = run([user], config=make_config(exceptions=(exception("stale-login", "7"),)))
    assert of(result, "stale-login")[0].suppressed


def test_exception_for_another_rule_or_user_does_not_suppress() -> None:
    user = make_user(7, last_login=NOW - timedelta(days=100))
    entries = (exception("admin-dormant", "7"), exception("stale-login", "8"))
    result = run([user], config=make_config(exceptions=entries))
    assert not of(result, "stale-login")[0].suppressed
    assert result.stale_exceptions == entries


def test_expired_exception_stops_suppressing_and_says_so() -> None:
    user = make_user(7, last_login=NOW - timedelta(days=100))
    entry = exception("stale-login", "7", expires=NOW)
    result = run([user], config=make_config(exceptions=(entry,)))
    (finding,) = of(result, "stale-login")
    assert not finding.suppressed
    assert finding.expired_exception == entry
    assert result.stale_exceptions == ()
    one_second_earlier = run([user], config=make_config(exceptions=(entry,)), now=NOW - timedelta(seconds=1))
    assert of(one_second_earlier, "stale-login")[0].suppressed


def test_valid_exception_wins_over_an_expired_one() -> None:
    user = make_user(7, last_login=NOW - timedelta(days=100))
    old = exception("stale-login", "7", expires=NOW - timedelta(days=1))
    new = exception("stale-login", "person7@example.com")
    (finding,) = of(run([user], config=make_config(exceptions=(old, new))), "stale-login")
    assert finding.suppressed_by == new


def test_account_level_exception() -> None:
    entry = exception("mfa-attestation-missing", "account")
    result = run([make_user()], config=make_config(exceptions=(entry,)))
    assert of(result, "mfa-attestation-missing")[0].suppressed
    star = exception("review-overdue", "*")
    user_entry = exception("review-overdue", "person1@example.com")
    assert exception_matches(star, of(result, "review-overdue")[0])
    assert not exception_matches(user_entry, of(result, "review-overdue")[0])


# --- result shape ---------------------------------------------------------------------------------


def test_findings_sorted_worst_first_and_deterministic() -> None:
    users = [
        make_user(3, email="c@example.com", last_login=NOW - timedelta(days=100)),
        make_user(1, email="b@example.com", roles=(ADMIN,), last_login=NOW - timedelta(days=100)),
        make_user(2, email="a@example.com", last_login=NOW - timedelta(days=100)),
    ]
    result = run(users)
    ranks = [f.severity.rank for f in result.findings]
    assert ranks == sorted(ranks)
    assert [(f.rule_id, f.user_id) for f in result.findings] == [
        ("admin-dormant", 1),
        ("mfa-attestation-missing", None),
        ("stale-login", 2),
        ("stale-login", 3),
        ("review-overdue", None),
    ]
    assert run(list(reversed(users))) == result


def test_result_carries_profiles_thresholds_and_time() -> None:
    config = make_config("pci-dss-4", "cis-v8")
    result = run([make_user()], config=config)
    assert result.profiles == ("pci-dss-4", "cis-v8")
    assert result.thresholds == config.describe_thresholds()
    assert result.evaluated_at == NOW
    assert result.snapshot_id == 2


def test_controls_follow_every_active_profile() -> None:
    config = make_config("pci-dss-4", "cis-v8", "nist-800-53-moderate")
    (finding,) = of(run([idle_admin(46)], config=config), "admin-dormant")
    assert finding.controls == ("PCI DSS 8.2.6", "PCI DSS 7.2.4", "CIS 5.3", "NIST AC-2(3)", "NIST AC-6(7)")


def test_naive_now_is_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        run([make_user()], now=NOW.replace(tzinfo=None))


def test_default_config_evaluates() -> None:
    result = run([make_user(last_login=NOW - timedelta(days=91))], config=default_config())
    (finding,) = of(result, "stale-login")
    assert finding.controls == ("SOC 2 CC6.2",)
    assert dict(finding.evidence)["threshold"] == "90 days (set by policy)"


# --- limitations ----------------------------------------------------------------------------------


def test_two_factor_limitation_is_always_stated() -> None:
    # One sentence for the findings and the report (auditor.labels).
    assert TWO_FA_LIMITATION == (
        "CertCentral enforces two-factor authentication, but its API does not expose whether each user has "
        "2FA set up, so this tool cannot check it per user."
    )
    assert run([]).limitations[0] == TWO_FA_LIMITATION


def test_rule_limitations_are_the_ones_only_the_rules_know() -> None:
    # A report states the provenance itself and shows only these from the rules.
    first = run([], snapshot=make_snapshot([], complete=False, notes=("restricted to division Sales",)))
    # Without an identity source, leavers cannot be detected (issue 18); then new-admin; then no audit log (issue 17).
    assert len(first.rule_limitations) == 3 and "new-admin" in first.rule_limitations[1]
    assert first.rule_limitations[2] == NO_AUDIT_LOG_LIMITATION
    assert "leavers cannot be detected" in first.rule_limitations[0]
    assert set(first.rule_limitations) < set(first.limitations)
    assert TWO_FA_LIMITATION not in first.rule_limitations
    assert not any("incomplete" in line or "Pull note" in line for line in first.rule_limitations)
    later = run([], previous=make_snapshot([], snapshot_id=1, taken_at=NOW - timedelta(days=30)))
    assert later.rule_limitations == (NO_IDENTITY_LIMITATION, NO_AUDIT_LOG_LIMITATION)


def test_saml_sso_users_are_counted_when_details_exist() -> None:
    users = [
        make_user(1, email="b@example.com", is_saml_sso_only=True),
        make_user(2, email="a@example.com", is_saml_sso_only=True),
        make_user(3, is_saml_sso_only=False),
        make_user(4),
    ]
    lines = run(users).limitations
    (line,) = [line for line in lines if "SAML" in line]
    assert line.startswith("2 of 3 users whose details were fetched sign in only through SAML SSO")
    assert line.endswith(": a@example.com, b@example.com.")
    (no_details,) = [line for line in run([make_user()]).limitations if "SAML" in line]
    assert "not fetched" in no_details


def test_incomplete_snapshot_and_division_view_are_stated() -> None:
    snapshot = make_snapshot([make_user()], complete=False, notes=("API key restricted to divisions: EU",))
    owner = KeyOwner(user_id=9, name="", email="key@example.com", role="Manager", restricted=True, divisions=("EU",))
    snapshot = dataclasses.replace(snapshot, provenance=dataclasses.replace(snapshot.provenance, key_owner=owner))
    lines = run([], snapshot=snapshot).limitations
    assert any("Snapshot #2 is incomplete: 1 of 6 users were received" in line for line in lines)
    assert any("sees only some divisions" in line for line in lines)
    assert "Pull note: API key restricted to divisions: EU" in lines
    complete = run([make_user()]).limitations
    assert not any("incomplete" in line or "divisions" in line for line in complete)


def test_incomplete_previous_snapshot_is_stated() -> None:
    previous = make_snapshot([], snapshot_id=1, complete=False)
    lines = run([make_user()], previous=previous).limitations
    assert any("previous snapshot #1 is incomplete" in line for line in lines)


def test_too_many_admins_names_the_default_ceiling_when_none_was_configured() -> None:
    six = [make_user(i, roles=(ADMIN,)) for i in range(1, 7)]
    (finding,) = of(run(six), "too-many-admins")
    assert "the default ceiling of 5 (set by policy)" in finding.explanation
    assert "configured" not in finding.explanation
    (configured,) = of(run(six, config=make_config(max_admins=5, max_admins_configured=True)), "too-many-admins")
    assert "above the configured ceiling of 5" in configured.explanation


# --- as of the snapshot: attestations and approvals never reach back ----------------------------


def test_attestations_recorded_after_the_snapshot_time_do_not_count() -> None:
    later_mfa = attestation(AttestationKind.MFA, made_days_ago=-1)
    later_review = attestation(AttestationKind.REVIEW, made_days_ago=-1, id=2)
    result = run([make_user()], attestations=(later_mfa, later_review))
    assert of(result, "mfa-attestation-missing") and of(result, "review-overdue")
    assert "when this snapshot was taken" in of(result, "review-overdue")[0].explanation


def test_self_review_only_for_the_snapshot_the_review_names() -> None:
    admin = make_user(1, email="rita@example.com", roles=(ADMIN,))
    review = attestation(AttestationKind.REVIEW, made_days_ago=-1, snapshot_id=2)  # by Rita, of #2
    (finding,) = of(run([admin], attestations=(review,)), "self-review")
    assert finding.user_id == 1 and "holds Administrator" in finding.explanation
    of_other = dataclasses.replace(review, snapshot_id=1)
    assert of(run([admin], attestations=(of_other,)), "self-review") == []
    standard = make_user(1, email="rita@example.com")
    assert of(run([standard], attestations=(review,)), "self-review") == []


def test_exception_approved_after_the_snapshot_neither_suppresses_nor_is_stale() -> None:
    user = make_user(7, last_login=NOW - timedelta(days=100))
    entry = dataclasses.replace(exception("stale-login", "7"), approved_on=NOW + timedelta(hours=1))
    result = run([user], config=make_config(exceptions=(entry,)))
    (finding,) = of(result, "stale-login")
    assert not finding.suppressed and finding.expired_exception is None
    assert result.stale_exceptions == ()
    approved = dataclasses.replace(entry, approved_on=NOW)
    assert of(run([user], config=make_config(exceptions=(approved,))), "stale-login")[0].suppressed


@pytest.mark.parametrize(
    ("owner", "approved_by", "flagged"),
    [
        ("Person Seven <person7@example.com>", "CISO <ciso@example.com>", True),
        ("Sec", "PERSON7@example.com", True),
        ("Sec", "CISO <ciso@example.com>", False),
    ],
)
def test_exception_owned_or_approved_by_the_covered_user_is_flagged(
    owner: str, approved_by: str, flagged: bool
) -> None:
    user = make_user(7, last_login=NOW - timedelta(days=100))
    entry = dataclasses.replace(exception("stale-login", "7"), owner=owner, approved_by=approved_by, approved_on=NOW)
    found = of(run([user], config=make_config(exceptions=(entry,))), "self-approved-exception")
    assert bool(found) is flagged
    if flagged:
        assert found[0].user_id == 7 and "line 3" in found[0].explanation


def test_the_audit_keys_service_user_is_named_not_flagged_unless_it_signs_in() -> None:
    service = make_user(9, email="svc@example.com", roles=(ADMIN,), is_service_user=True, last_login=None)
    other = make_user(10, email="bot@example.com", roles=(ADMIN,), is_service_user=True, last_login=None)
    snapshot = make_snapshot([service, other])
    result = evaluate(
        snapshot, previous=None, history={}, config=make_config(), attestations=(), now=NOW, key_user_id=9
    )
    assert [f.user_id for f in of(result, "privileged-service-user")] == [10]
    assert sum("audit key's user: svc@example.com" in line for line in result.limitations) == 1
    signing_in = make_snapshot([dataclasses.replace(service, last_login=NOW - timedelta(days=2)), other])
    result = evaluate(
        signing_in, previous=None, history={}, config=make_config(), attestations=(), now=NOW, key_user_id=9
    )
    assert sorted(f.user_id or 0 for f in of(result, "privileged-service-user")) == [9, 10]
