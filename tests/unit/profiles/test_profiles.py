"""Built-in profiles: controls.md §2's numbers, their sources, control references, combination."""

from __future__ import annotations

import dataclasses

import pytest

from auditor.errors import ConfigurationError
from auditor.profiles import (
    PROFILE_NAMES,
    SET_BY_POLICY,
    THRESHOLD_FIELDS,
    THRESHOLD_LABELS,
    combine,
    get_profile,
)

# controls.md §2: inactive user, inactive admin, full review, privileged review.
EXPECTED_DAYS = {
    "pci-dss-4": (90, 90, 180, 180),
    "cis-v8": (45, 45, 90, 365),
    "nist-800-53-moderate": (90, 90, 365, 90),
    "soc2": (90, 90, 90, 90),
    "iso27001-2022": (90, 90, 180, 90),
    "hipaa": (90, 90, 180, 90),
    "strict": (45, 45, 90, 90),
}
#: The rule ids, written out: they are a contract (exceptions and configs name them; README: "ids
#: are stable"), so every profile must cite controls for exactly these, whatever the code derives.
STABLE_RULE_IDS = (
    "admin-dormant", "admin-never-signed-in", "admin-not-active", "stale-login", "never-signed-in",
    "new-admin", "privileged-shared-mailbox", "external-domain", "privileged-service-user",
    "too-many-admins", "mfa-attestation-missing", "review-overdue", "self-review",
    "self-approved-exception", "terminated-still-active", "not-in-identity-source", "revocation-overdue",
    "access-regranted", "key-owner-inactive", "key-unrestricted", "key-unused", "key-never-used",
    "key-legacy", "key-no-ip-restriction", "guest-access-enabled", "privilege-change-unattributed",
)
PREFIXES = {
    "pci-dss-4": "PCI DSS ",
    "cis-v8": "CIS ",
    "nist-800-53-moderate": "NIST ",
    "soc2": "SOC 2 ",
    "iso27001-2022": "ISO 27001 ",
    "hipaa": "HIPAA ",
}


def test_profile_names_are_the_seven_documented() -> None:
    assert set(PROFILE_NAMES) == set(EXPECTED_DAYS)


@pytest.mark.parametrize("name", sorted(EXPECTED_DAYS))
def test_thresholds_match_controls_md(name: str) -> None:
    t = get_profile(name).thresholds
    assert (t.inactive_user_days, t.inactive_admin_days, t.full_review_days, t.privileged_review_days) == (
        EXPECTED_DAYS[name]
    )
    assert t.never_signed_in_admin_grace_days == 7
    assert t.never_signed_in_user_days == t.inactive_user_days


@pytest.mark.parametrize("name", ["soc2", "iso27001-2022", "hipaa"])
def test_frameworks_without_numbers_say_set_by_policy(name: str) -> None:
    profile = get_profile(name)
    assert all(profile.source_of(f) == SET_BY_POLICY for f in THRESHOLD_FIELDS)


def test_numbered_frameworks_cite_the_control_behind_each_number() -> None:
    pci = get_profile("pci-dss-4")
    assert pci.source_of("inactive_user_days") == "PCI DSS 8.2.6"
    assert pci.source_of("full_review_days") == "PCI DSS 7.2.4"
    assert get_profile("cis-v8").source_of("inactive_admin_days") == "CIS 5.3"
    assert get_profile("nist-800-53-moderate").source_of("inactive_admin_days") == "NIST AC-2(3)"


def test_retention_is_known_where_the_framework_states_it() -> None:
    pci = get_profile("pci-dss-4").retention
    assert (pci.days, pci.text, pci.source) == (365, "12 months", "PCI DSS 10.5.1")
    hipaa = get_profile("hipaa").retention
    assert (hipaa.days, hipaa.text) == (6 * 365, "6 years")
    assert get_profile("cis-v8").retention.days is None
    assert get_profile("cis-v8").retention.text == SET_BY_POLICY


@pytest.mark.parametrize("name", PROFILE_NAMES)
def test_every_profile_cites_controls_for_every_rule(name: str) -> None:
    # Against the written-out ids, not RULE_IDS: the profiles' tables are built from RULE_IDS, so
    # comparing the two could not fail.
    profile = get_profile(name)
    assert [rule for rule, _ in profile.controls] == list(STABLE_RULE_IDS)
    for rule_id in STABLE_RULE_IDS:
        refs = profile.controls_for(rule_id)
        assert refs, f"{name} has no controls for {rule_id}"
        assert len(refs) == len(set(refs))
        if name in PREFIXES:
            assert all(ref.startswith(PREFIXES[name]) for ref in refs)


def test_admin_dormant_controls_per_framework() -> None:
    combined = combine(["pci-dss-4", "cis-v8", "nist-800-53-moderate", "iso27001-2022", "soc2"])
    refs = combined.controls_for("admin-dormant")
    for expected in ("PCI DSS 8.2.6", "PCI DSS 7.2.4", "CIS 5.3", "NIST AC-2(3)", "ISO 27001 A.8.2", "SOC 2 CC6.2"):
        assert expected in refs
    assert "HIPAA 164.308(a)(4)" not in refs


def test_every_threshold_has_a_label() -> None:
    assert set(THRESHOLD_LABELS) == set(THRESHOLD_FIELDS)


def test_unknown_profile_lists_the_valid_names() -> None:
    with pytest.raises(ConfigurationError) as excinfo:
        get_profile("pci")
    assert "'pci'" in excinfo.value.message
    assert all(name in excinfo.value.hint for name in PROFILE_NAMES)


def test_get_profile_ignores_case_and_spaces() -> None:
    assert get_profile(" PCI-DSS-4 ").name == "pci-dss-4"


def test_profiles_are_frozen() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        get_profile("soc2").thresholds.inactive_user_days = 1  # type: ignore[misc]


def test_combine_takes_the_smallest_days_and_remembers_where_from() -> None:
    effective = combine(["pci-dss-4", "cis-v8"])
    assert effective.names == ("pci-dss-4", "cis-v8")
    assert effective.thresholds.inactive_admin_days == 45
    assert effective.origin("inactive_admin_days").profiles == ("cis-v8",)
    assert effective.origin("inactive_admin_days").source == "CIS 5.3"
    # full review: cis 90 < pci 180; privileged review: pci 180 < cis 365
    assert effective.thresholds.full_review_days == 90
    assert effective.thresholds.privileged_review_days == 180
    assert effective.origin("privileged_review_days").profiles == ("pci-dss-4",)


def test_combine_ties_keep_every_control_and_prefer_a_control_to_policy() -> None:
    effective = combine(["soc2", "pci-dss-4", "nist-800-53-moderate"])
    origin = effective.origin("inactive_user_days")
    assert effective.thresholds.inactive_user_days == 90
    assert origin.profiles == ("soc2", "pci-dss-4", "nist-800-53-moderate")
    assert origin.source == "PCI DSS 8.2.6; NIST AC-2(3)"
    assert combine(["soc2", "hipaa"]).origin("inactive_user_days").source == SET_BY_POLICY


def test_combine_keeps_the_longest_known_retention() -> None:
    assert combine(["pci-dss-4", "hipaa"]).retention.text == "6 years"
    assert combine(["pci-dss-4", "hipaa"]).retention.profile == "hipaa"
    assert combine(["cis-v8", "pci-dss-4"]).retention.days == 365
    assert combine(["strict", "pci-dss-4"]).retention.text == "12 months"


def test_combine_unions_controls_without_duplicates() -> None:
    effective = combine(["pci-dss-4", "cis-v8", "pci-dss-4"])
    assert effective.names == ("pci-dss-4", "cis-v8")
    assert effective.controls_for("stale-login") == ("PCI DSS 8.2.6", "CIS 5.3")


def test_strict_is_never_looser_than_any_framework() -> None:
    strict = get_profile("strict").thresholds
    for name in PROFILE_NAMES:
        other = get_profile(name).thresholds
        for field_name in THRESHOLD_FIELDS:
            assert getattr(strict, field_name) <= getattr(other, field_name), (name, field_name)


def test_combine_nothing_is_an_error() -> None:
    with pytest.raises(ConfigurationError, match="No profile"):
        combine([])


def test_overrides_replace_value_and_source() -> None:
    effective = combine(["pci-dss-4"]).with_overrides({"inactive_user_days": 60}, source="auditor.toml")
    assert effective.thresholds.inactive_user_days == 60
    assert effective.origin("inactive_user_days").source == SET_BY_POLICY
    assert effective.origin("inactive_user_days").profiles == ("auditor.toml",)
    assert effective.origin("inactive_admin_days").source == "PCI DSS 8.2.6"
