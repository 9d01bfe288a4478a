"""Built-in framework profiles: the thresholds each framework implies and the controls it cites.

(Over 500 lines: six built-in profiles, each a table of thresholds and control references: data.)

Every number and every control reference comes from ``../shared/controls.md`` (§1 controls, §2
profiles). Where a framework sets no number (SOC 2, ISO/IEC 27001, HIPAA), the profile still needs
one to evaluate anything; its source then reads "set by policy", never a control, so a report does
not claim the standard requires it.

``combine`` merges several profiles into the strictest one: smallest day counts, longest retention,
union of control references, remembering which profile(s) each threshold came from.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, fields, replace

from auditor.errors import ConfigurationError

#: The source text for a number a framework does not set.
SET_BY_POLICY = "set by policy"

#: Stable rule ids, in display order. ``auditor.rules.RULES`` implements exactly these; they live
#: here because profiles map them to controls and the exceptions file is validated against them.
RULE_IDS: tuple[str, ...] = (
    "admin-dormant",
    "admin-never-signed-in",
    "admin-not-active",
    "stale-login",
    "never-signed-in",
    "new-admin",
    "privileged-shared-mailbox",
    "external-domain",
    "privileged-service-user",
    "too-many-admins",
    "mfa-attestation-missing",
    "review-overdue",
    "self-review",
    "self-approved-exception",
    "terminated-still-active",
    "not-in-identity-source",
    "revocation-overdue",
    "access-regranted",
    *(
        # Credential inventory (issue 17): API keys and ACME URLs, IP rules, guest access.
        "key-owner-inactive",
        "key-unrestricted",
        "key-unused",
        "key-never-used",
        "key-legacy",
        "key-no-ip-restriction",
        "guest-access-enabled",
    ),
    # Audit log (issue 17): an escalation the archived Report Library runs do not explain.
    "privilege-change-unattributed",
)


@dataclass(frozen=True, slots=True)
class Thresholds:
    """Day counts the rules measure against; every field is a whole number of days."""

    #: ``stale-login``: an active, non-privileged user not signed in for longer than this.
    inactive_user_days: int
    #: ``admin-dormant``: an active privileged user not signed in for longer than this.
    inactive_admin_days: int
    #: ``admin-never-signed-in``: grace period from first seen for a privileged user.
    never_signed_in_admin_grace_days: int
    #: ``never-signed-in``: how long from first seen a user may go without signing in.
    never_signed_in_user_days: int
    #: ``review-overdue``: a signed-off access review must be at most this old.
    full_review_days: int
    #: ``review-overdue`` when privileged users exist: the review must be at most this old.
    privileged_review_days: int


#: Field name -> label used in reports ("inactive admin", "90 days", "PCI DSS 8.2.6").
THRESHOLD_LABELS: dict[str, str] = {
    "inactive_user_days": "inactive user",
    "inactive_admin_days": "inactive admin",
    "never_signed_in_admin_grace_days": "never signed in (admin grace)",
    "never_signed_in_user_days": "never signed in (user)",
    "full_review_days": "full access review",
    "privileged_review_days": "privileged access review",
}

THRESHOLD_FIELDS: tuple[str, ...] = tuple(f.name for f in fields(Thresholds))


@dataclass(frozen=True, slots=True)
class Retention:
    """How long evidence is to be kept: days where a framework states it, and the words for it."""

    days: int | None
    text: str  #: "12 months", "6 years", "audit period", "set by policy"
    source: str  #: the control, or "set by policy"
    profile: str = ""  #: the profile it comes from (the longest one, after ``combine``)


@dataclass(frozen=True, slots=True)
class Profile:
    """One built-in framework profile."""

    name: str
    title: str
    thresholds: Thresholds
    #: (threshold field, source) for every field of ``thresholds``.
    sources: tuple[tuple[str, str], ...]
    retention: Retention
    #: (rule id, control references) for every rule id.
    controls: tuple[tuple[str, tuple[str, ...]], ...]

    def source_of(self, field_name: str) -> str:
        """The control (or "set by policy") behind one threshold."""
        return dict(self.sources)[field_name]

    def controls_for(self, rule_id: str) -> tuple[str, ...]:
        return dict(self.controls).get(rule_id, ())


@dataclass(frozen=True, slots=True)
class ThresholdOrigin:
    """Where one effective threshold came from: the control behind it and the profile(s)."""

    field: str
    source: str
    profiles: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class EffectiveProfile:
    """The profile in force: one built-in profile, or the strictest combination of several."""

    names: tuple[str, ...]
    thresholds: Thresholds
    #: One origin per threshold field, in ``THRESHOLD_FIELDS`` order.
    origins: tuple[ThresholdOrigin, ...]
    retention: Retention
    #: (rule id, control references) for every rule id; references deduplicated, in profile order.
    controls: tuple[tuple[str, tuple[str, ...]], ...]

    def origin(self, field_name: str) -> ThresholdOrigin:
        for origin in self.origins:
            if origin.field == field_name:
                return origin
        raise KeyError(field_name)

    def controls_for(self, rule_id: str) -> tuple[str, ...]:
        return dict(self.controls).get(rule_id, ())

    def with_overrides(self, overrides: dict[str, int], *, source: str) -> EffectiveProfile:
        """A copy whose named thresholds are replaced (from ``auditor.toml``), origin ``source``."""
        unknown = set(overrides) - set(THRESHOLD_FIELDS)
        if unknown:
            raise KeyError(", ".join(sorted(unknown)))
        if not overrides:
            return self
        origins = tuple(
            ThresholdOrigin(o.field, SET_BY_POLICY, (source,)) if o.field in overrides else o for o in self.origins
        )
        return replace(self, thresholds=replace(self.thresholds, **overrides), origins=origins)


# --- control references per framework (controls.md §1) -------------------------------------------

_PCI = "PCI DSS"
_CIS = "CIS"
_NIST = "NIST"
_ISO = "ISO 27001"
_SOC2 = "SOC 2"
_HIPAA = "HIPAA"


#: Controls the credential rules give evidence for, per framework (controls.md §1): keys are
#: application/system credentials (PCI 7.2.5.1, SOC 2 CC6.3), inactive ones are to be disabled
#: (PCI 8.2.6, NIST AC-2(3), CIS 5.3), and privilege is least (AC-6, A.8.2).
_KEY_CONTROLS: dict[str, dict[str, tuple[str, ...]]] = {
    "PCI DSS": {
        "key-owner-inactive": ("8.2.6", "7.2.5.1"),
        "key-unrestricted": ("7.2.5.1",),
        "key-unused": ("8.2.6", "7.2.5.1"),
        "key-never-used": ("8.2.6", "7.2.5.1"),
        "key-legacy": ("7.2.5.1",),
        "key-no-ip-restriction": ("7.2.5.1",),
        "guest-access-enabled": ("7.2.4",),
    },
    "CIS": {
        "key-owner-inactive": ("5.3",),
        "key-unrestricted": ("5.1", "6.8"),
        "key-unused": ("5.3",),
        "key-never-used": ("5.3",),
        "key-legacy": ("5.1",),
        "key-no-ip-restriction": ("5.1",),
        "guest-access-enabled": ("5.1",),
    },
    "NIST": {
        "key-owner-inactive": ("AC-2(3)",),
        "key-unrestricted": ("AC-6(7)",),
        "key-unused": ("AC-2(3)",),
        "key-never-used": ("AC-2(3)",),
        "key-legacy": ("AC-2(j)",),
        "key-no-ip-restriction": ("AC-2(j)",),
        "guest-access-enabled": ("AC-2(j)",),
    },
    "ISO 27001": {
        "key-owner-inactive": ("A.5.18",),
        "key-unrestricted": ("A.8.2",),
        "key-unused": ("A.5.18",),
        "key-never-used": ("A.5.16", "A.5.18"),
        "key-legacy": ("A.5.18",),
        "key-no-ip-restriction": ("A.5.15",),
        "guest-access-enabled": ("A.5.15",),
    },
    "SOC 2": {
        "key-owner-inactive": ("CC6.2", "CC6.3"),
        "key-unrestricted": ("CC6.3",),
        "key-unused": ("CC6.2",),
        "key-never-used": ("CC6.2",),
        "key-legacy": ("CC6.3",),
        "key-no-ip-restriction": ("CC6.1",),
        "guest-access-enabled": ("CC6.1",),
    },
    "HIPAA": {rule: ("164.308(a)(4)",) for rule in RULE_IDS if rule.startswith(("key-", "guest-"))},
}


#: Controls an unexplained escalation is evidence against: account changes are to be logged and
#: reviewed (PCI 10.2.1.2 administrative actions, 10.2.1.5 credential changes; NIST AC-2(4), AU-6;
#: CIS 8.2 and 8.11; ISO A.8.15; SOC 2 CC6.2, CC7.2; HIPAA 164.312(b) audit controls).
_AUDIT_LOG_CONTROLS: dict[str, dict[str, tuple[str, ...]]] = {
    "PCI DSS": {"privilege-change-unattributed": ("10.2.1.2", "10.2.1.5")},
    "CIS": {"privilege-change-unattributed": ("8.2", "8.11")},
    "NIST": {"privilege-change-unattributed": ("AC-2(4)", "AU-6")},
    "ISO 27001": {"privilege-change-unattributed": ("A.8.15",)},
    "SOC 2": {"privilege-change-unattributed": ("CC6.2", "CC7.2")},
    "HIPAA": {"privilege-change-unattributed": ("164.312(b)",)},
}


def _refs(prefix: str, mapping: dict[str, tuple[str, ...]]) -> tuple[tuple[str, tuple[str, ...]], ...]:
    mapping = {**mapping, **_KEY_CONTROLS.get(prefix, {}), **_AUDIT_LOG_CONTROLS.get(prefix, {})}
    missing = set(RULE_IDS) - set(mapping)
    if missing:  # pragma: no cover - guarded by tests walking every profile and rule
        raise AssertionError(f"{prefix}: no controls for {sorted(missing)}")
    return tuple((rule, tuple(f"{prefix} {ref}" for ref in mapping[rule])) for rule in RULE_IDS)


_PCI_CONTROLS = _refs(
    _PCI,
    {
        "admin-dormant": ("8.2.6", "7.2.4"),
        "admin-never-signed-in": ("8.2.6", "7.2.4"),
        "admin-not-active": ("7.2.4",),
        "stale-login": ("8.2.6",),
        "never-signed-in": ("8.2.6",),
        "new-admin": ("7.2.4",),
        "privileged-shared-mailbox": ("8.2.2",),
        "external-domain": ("7.2.4",),
        "privileged-service-user": ("7.2.5.1",),
        "too-many-admins": ("7.2.4",),
        "mfa-attestation-missing": ("8.4.1",),
        "review-overdue": ("7.2.4",),
        "self-review": ("7.2.4",),
        "self-approved-exception": ("7.2.4",),
        "terminated-still-active": ("8.2.5",),
        "not-in-identity-source": ("8.2.1", "7.2.4"),
        "revocation-overdue": ("7.2.4", "7.2.5.1"),
        "access-regranted": ("7.2.4", "7.2.5.1"),
    },
)
_CIS_CONTROLS = _refs(
    _CIS,
    {
        "admin-dormant": ("5.3",),
        "admin-never-signed-in": ("5.3",),
        "admin-not-active": ("5.1", "6.8"),
        "stale-login": ("5.3",),
        "never-signed-in": ("5.3",),
        "new-admin": ("6.8",),
        "privileged-shared-mailbox": ("5.1",),
        "external-domain": ("5.1",),
        "privileged-service-user": ("5.1", "6.8"),
        "too-many-admins": ("6.8",),
        "mfa-attestation-missing": ("6.5",),
        "review-overdue": ("5.1", "6.8"),
        "self-review": ("5.1", "6.8"),
        "self-approved-exception": ("5.1", "6.8"),
        "terminated-still-active": ("6.2", "5.3"),
        "not-in-identity-source": ("5.1",),
        "revocation-overdue": ("6.2",),
        "access-regranted": ("6.2", "6.8"),
    },
)
_NIST_CONTROLS = _refs(
    _NIST,
    {
        "admin-dormant": ("AC-2(3)", "AC-6(7)"),
        "admin-never-signed-in": ("AC-2(3)",),
        "admin-not-active": ("AC-2(j)", "AC-6(7)"),
        "stale-login": ("AC-2(3)",),
        "never-signed-in": ("AC-2(3)",),
        "new-admin": ("AC-6(7)",),
        "privileged-shared-mailbox": ("AC-2",),
        "external-domain": ("AC-2(j)",),
        "privileged-service-user": ("AC-6(7)",),
        "too-many-admins": ("AC-6(7)",),
        "mfa-attestation-missing": ("IA-2(1)",),
        "review-overdue": ("AC-2(j)", "AC-6(7)"),
        "self-review": ("AC-2(j)", "AC-6(7)"),
        "self-approved-exception": ("AC-2(j)", "AC-6(7)"),
        "terminated-still-active": ("AC-2(h)", "PS-4"),
        "not-in-identity-source": ("AC-2",),
        "revocation-overdue": ("AC-2(j)", "AC-2(3)"),
        "access-regranted": ("AC-2(j)", "AC-6(7)"),
    },
)
_ISO_CONTROLS = _refs(
    _ISO,
    {
        "admin-dormant": ("A.8.2", "A.5.18"),
        "admin-never-signed-in": ("A.8.2", "A.5.18"),
        "admin-not-active": ("A.8.2", "A.5.18"),
        "stale-login": ("A.5.18",),
        "never-signed-in": ("A.5.16", "A.5.18"),
        "new-admin": ("A.8.2", "A.5.18"),
        "privileged-shared-mailbox": ("A.5.16", "A.8.2"),
        "external-domain": ("A.5.15", "A.5.18"),
        "privileged-service-user": ("A.8.2",),
        "too-many-admins": ("A.8.2",),
        "mfa-attestation-missing": ("A.8.5",),
        "review-overdue": ("A.5.18",),
        "self-review": ("A.5.18",),
        "self-approved-exception": ("A.5.18",),
        "terminated-still-active": ("A.5.18", "A.6.5"),
        "not-in-identity-source": ("A.5.16",),
        "revocation-overdue": ("A.5.18",),
        "access-regranted": ("A.5.18",),
    },
)
_SOC2_CONTROLS = _refs(
    _SOC2,
    {
        "admin-dormant": ("CC6.2",),
        "admin-never-signed-in": ("CC6.2",),
        "admin-not-active": ("CC6.2", "CC6.3"),
        "stale-login": ("CC6.2",),
        "never-signed-in": ("CC6.2",),
        "new-admin": ("CC6.2", "CC6.3"),
        "privileged-shared-mailbox": ("CC6.1",),
        "external-domain": ("CC6.2",),
        "privileged-service-user": ("CC6.3",),
        "too-many-admins": ("CC6.3",),
        "mfa-attestation-missing": ("CC6.1",),
        "review-overdue": ("CC6.2", "CC6.3"),
        "self-review": ("CC6.2", "CC6.3"),
        "self-approved-exception": ("CC6.2", "CC6.3"),
        "terminated-still-active": ("CC6.2",),
        "not-in-identity-source": ("CC6.2",),
        "revocation-overdue": ("CC6.2", "CC6.3"),
        "access-regranted": ("CC6.2", "CC6.3"),
    },
)
_HIPAA_CONTROLS = _refs(
    _HIPAA,
    {
        "admin-dormant": ("164.308(a)(4)",),
        "admin-never-signed-in": ("164.308(a)(4)",),
        "admin-not-active": ("164.308(a)(4)",),
        "stale-login": ("164.308(a)(4)",),
        "never-signed-in": ("164.308(a)(4)",),
        "new-admin": ("164.308(a)(4)",),
        "privileged-shared-mailbox": ("164.308(a)(4)",),
        "external-domain": ("164.308(a)(4)",),
        "privileged-service-user": ("164.308(a)(4)",),
        "too-many-admins": ("164.308(a)(4)",),
        "mfa-attestation-missing": ("164.312(d)",),
        "review-overdue": ("164.308(a)(4)",),
        "self-review": ("164.308(a)(4)",),
        "self-approved-exception": ("164.308(a)(4)",),
        "terminated-still-active": ("164.308(a)(3)(ii)(C)",),
        "not-in-identity-source": ("164.308(a)(4)",),
        "revocation-overdue": ("164.308(a)(3)(ii)(C)", "164.308(a)(4)"),
        "access-regranted": ("164.308(a)(3)(ii)(C)", "164.308(a)(4)"),
    },
)


def _union_controls(
    *tables: tuple[tuple[str, tuple[str, ...]], ...],
) -> tuple[tuple[str, tuple[str, ...]], ...]:
    merged: dict[str, list[str]] = {rule: [] for rule in RULE_IDS}
    for table in tables:
        for rule, refs in table:
            merged[rule].extend(ref for ref in refs if ref not in merged[rule])
    return tuple((rule, tuple(merged[rule])) for rule in RULE_IDS)


def _profile(
    name: str,
    title: str,
    days: tuple[int, int, int, int],
    sources: tuple[str, str, str, str],
    retention: Retention,
    controls: tuple[tuple[str, tuple[str, ...]], ...],
    *,
    admin_grace_source: str = SET_BY_POLICY,
) -> Profile:
    """Build a profile from controls.md §2's columns: inactive user, inactive admin, full, privileged.

    Never-signed-in users share the inactive-user number and source; the admin grace period is
    7 days, a policy choice (controls.md §2: "treat never-used admin accounts more strictly").
    """
    user, admin, full, privileged = days
    user_src, admin_src, full_src, privileged_src = sources
    thresholds = Thresholds(
        inactive_user_days=user,
        inactive_admin_days=admin,
        never_signed_in_admin_grace_days=7,
        never_signed_in_user_days=user,
        full_review_days=full,
        privileged_review_days=privileged,
    )
    source_map = {
        "inactive_user_days": user_src,
        "inactive_admin_days": admin_src,
        "never_signed_in_admin_grace_days": admin_grace_source,
        "never_signed_in_user_days": user_src,
        "full_review_days": full_src,
        "privileged_review_days": privileged_src,
    }
    return Profile(
        name=name,
        title=title,
        thresholds=thresholds,
        sources=tuple((f, source_map[f]) for f in THRESHOLD_FIELDS),
        retention=replace(retention, profile=name),
        controls=controls,
    )


_POLICY4 = (SET_BY_POLICY, SET_BY_POLICY, SET_BY_POLICY, SET_BY_POLICY)
_RETENTION_POLICY = Retention(days=None, text=SET_BY_POLICY, source=SET_BY_POLICY)

PROFILES: dict[str, Profile] = {
    profile.name: profile
    for profile in (
        _profile(
            "pci-dss-4",
            "PCI DSS v4.0.1",
            (90, 90, 180, 180),
            ("PCI DSS 8.2.6", "PCI DSS 8.2.6", "PCI DSS 7.2.4", "PCI DSS 7.2.4"),
            Retention(days=365, text="12 months", source="PCI DSS 10.5.1"),
            _PCI_CONTROLS,
        ),
        _profile(
            "cis-v8",
            "CIS Controls v8",
            (45, 45, 90, 365),
            ("CIS 5.3", "CIS 5.3", "CIS 5.1", "CIS 6.8"),
            _RETENTION_POLICY,
            _CIS_CONTROLS,
        ),
        _profile(
            "nist-800-53-moderate",
            "NIST SP 800-53 r5 (FedRAMP Moderate values)",
            (90, 90, 365, 90),
            ("NIST AC-2(3)", "NIST AC-2(3)", "NIST AC-2(j)", "NIST AC-2(j)"),
            _RETENTION_POLICY,
            _NIST_CONTROLS,
        ),
        _profile(
            "soc2",
            "SOC 2 (Trust Services Criteria)",
            (90, 90, 90, 90),
            _POLICY4,
            Retention(days=None, text="audit period", source=SET_BY_POLICY),
            _SOC2_CONTROLS,
        ),
        _profile(
            "iso27001-2022",
            "ISO/IEC 27001:2022",
            (90, 90, 180, 90),
            _POLICY4,
            _RETENTION_POLICY,
            _ISO_CONTROLS,
        ),
        _profile(
            "hipaa",
            "HIPAA Security Rule",
            (90, 90, 180, 90),
            _POLICY4,
            Retention(days=6 * 365, text="6 years", source="HIPAA 164.316(b)(2)(i)"),
            _HIPAA_CONTROLS,
        ),
        # "strict" is for accounts audited against several frameworks at once: the smallest number
        # any of them names (CIS for inactivity and the full review, NIST for privileged review),
        # citing every framework's controls. Its retention is "the longest selected": alone it has
        # none of its own, combined with others the longest of theirs wins.
        _profile(
            "strict",
            "Strict (strictest of all frameworks)",
            (45, 45, 90, 90),
            ("CIS 5.3", "CIS 5.3", "CIS 5.1", "NIST AC-2(j)"),
            _RETENTION_POLICY,
            _union_controls(
                _PCI_CONTROLS, _CIS_CONTROLS, _NIST_CONTROLS, _ISO_CONTROLS, _SOC2_CONTROLS, _HIPAA_CONTROLS
            ),
        ),
    )
}

PROFILE_NAMES: tuple[str, ...] = tuple(PROFILES)


def get_profile(name: str) -> Profile:
    """The built-in profile called ``name`` (case and surrounding spaces ignored)."""
    key = name.strip().casefold()
    try:
        return PROFILES[key]
    except KeyError:
        raise ConfigurationError(
            f"Unknown profile {name!r}.",
            hint=f"Valid profiles: {', '.join(PROFILE_NAMES)}.",
        ) from None


def combine(names: Iterable[str]) -> EffectiveProfile:
    """The strictest combination of the named profiles.

    Smallest day count per threshold (ties keep every tying profile and source), longest known
    retention (a profile without a number loses to one with a number), union of control references.
    """
    profiles: list[Profile] = []
    for name in names:
        profile = get_profile(name)
        if profile not in profiles:
            profiles.append(profile)
    if not profiles:
        raise ConfigurationError("No profile selected.", hint=f"Choose one or more of: {', '.join(PROFILE_NAMES)}.")
    values: dict[str, int] = {}
    origins: list[ThresholdOrigin] = []
    for field_name in THRESHOLD_FIELDS:
        best = min(getattr(p.thresholds, field_name) for p in profiles)
        winners = [p for p in profiles if getattr(p.thresholds, field_name) == best]
        values[field_name] = best
        origins.append(
            ThresholdOrigin(
                field=field_name,
                source=_merge_sources(p.source_of(field_name) for p in winners),
                profiles=tuple(p.name for p in winners),
            )
        )
    return EffectiveProfile(
        names=tuple(p.name for p in profiles),
        thresholds=Thresholds(**values),
        origins=tuple(origins),
        retention=_longest_retention([p.retention for p in profiles]),
        controls=_union_controls(*(p.controls for p in profiles)),
    )


def _merge_sources(sources: Iterable[str]) -> str:
    """Join the sources of tying profiles; "set by policy" only when no control names the number."""
    distinct = list(dict.fromkeys(sources))
    controls = [s for s in distinct if s != SET_BY_POLICY]
    return "; ".join(controls) if controls else SET_BY_POLICY


def _longest_retention(retentions: Sequence[Retention]) -> Retention:
    known = [r for r in retentions if r.days is not None]
    if known:
        return max(known, key=lambda r: r.days or 0)  # max keeps the first of equals
    return retentions[0]
