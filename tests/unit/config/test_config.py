"""auditor.toml and exceptions files: selection, overrides, defaults, and located errors."""

from __future__ import annotations

import textwrap
from datetime import UTC, datetime
from pathlib import Path

import pytest

from auditor.config import (
    DEFAULT_MAX_ADMINS,
    DEFAULT_PROFILES,
    DEFAULT_SHARED_MAILBOX_PATTERNS,
    find_key_line,
    load_config,
    load_exceptions,
)
from auditor.errors import ConfigurationError, ExitCode


def write(directory: Path, name: str, text: str) -> Path:
    path = directory / name
    path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
    return path


def config_error(path: Path, **kwargs: object) -> ConfigurationError:
    with pytest.raises(ConfigurationError) as excinfo:
        load_config(path, search_dirs=[], **kwargs)  # type: ignore[arg-type]
    assert excinfo.value.exit_code is ExitCode.USAGE
    return excinfo.value


# --- find_key_line --------------------------------------------------------------------------------

DOC = textwrap.dedent(
    """\
    # comment
    profiles = ["pci-dss-4"]
    description = \"\"\"
    max_admins = 1
    \"\"\"

    [thresholds]
    inactive_user_days = 90
    "inactive_admin_days" = 45

    [rules]
    max_admins = 5

    [[exception]]
    rule = "stale-login"

    [[exception]]
    rule = "new-admin"
    """
)


def test_find_key_line_top_level_and_tables() -> None:
    assert find_key_line(DOC, "profiles") == 2
    assert find_key_line(DOC, "inactive_user_days", table="thresholds") == 8
    assert find_key_line(DOC, "inactive_admin_days", table="thresholds") == 9  # quoted key
    assert find_key_line(DOC, "max_admins", table="rules") == 12  # not the one in the string
    assert find_key_line(DOC, "max_admins") is None  # only inside a multi-line string at top level


def test_find_key_line_array_of_tables_occurrence() -> None:
    assert find_key_line(DOC, "rule", table="exception", occurrence=0) == 15
    assert find_key_line(DOC, "rule", table="exception", occurrence=1) == 18
    assert find_key_line(DOC, "", table="exception", occurrence=1) == 17


def test_find_key_line_dotted_and_inline() -> None:
    text = "thresholds.inactive_user_days = 30\nrules = { max_admins = 2 }\n"
    assert find_key_line(text, "inactive_user_days", table="thresholds") == 1
    assert find_key_line(text, "max_admins", table="rules") == 2
    assert find_key_line(text, "missing", table="rules") is None


# --- finding the file -----------------------------------------------------------------------------


def test_defaults_without_any_file(tmp_path: Path) -> None:
    config = load_config(None, search_dirs=[tmp_path])
    assert config.source is None
    assert config.profile.names == DEFAULT_PROFILES == ("soc2",)
    assert config.thresholds.inactive_user_days == 90
    assert config.max_admins == DEFAULT_MAX_ADMINS
    assert config.allowed_domains == ()
    assert "admin@*" in config.shared_mailbox_patterns
    assert config.privileged_roles == ("Administrator", "Manager")
    assert config.exceptions == ()


def test_first_file_in_search_dirs_wins(tmp_path: Path) -> None:
    cwd, data = tmp_path / "cwd", tmp_path / "data"
    cwd.mkdir()
    data.mkdir()
    write(data, "auditor.toml", 'profiles = ["hipaa"]\n')
    assert load_config(None, search_dirs=[cwd, data]).profile.names == ("hipaa",)
    write(cwd, "auditor.toml", 'profiles = ["cis-v8"]\n')
    config = load_config(None, search_dirs=[cwd, data])
    assert config.profile.names == ("cis-v8",)
    assert config.source == cwd / "auditor.toml"


def test_explicit_path_beats_search_dirs(tmp_path: Path) -> None:
    write(tmp_path, "auditor.toml", 'profiles = ["cis-v8"]\n')
    other = write(tmp_path, "other.toml", 'profiles = ["pci-dss-4"]\n')
    assert load_config(other, search_dirs=[tmp_path]).profile.names == ("pci-dss-4",)


def test_explicit_missing_path_is_an_error(tmp_path: Path) -> None:
    error = config_error(tmp_path / "nope.toml")
    assert "does not exist" in error.message
    assert "nope.toml" in error.message


def test_frameworks_override_the_files_profiles(tmp_path: Path) -> None:
    path = write(tmp_path, "auditor.toml", 'profiles = ["soc2"]\n')
    config = load_config(path, search_dirs=[], frameworks=["pci-dss-4,cis-v8"])
    assert config.profile.names == ("pci-dss-4", "cis-v8")
    assert config.thresholds.inactive_user_days == 45
    assert load_config(None, search_dirs=[tmp_path / "x"], frameworks=["hipaa"]).profile.names == ("hipaa",)


def test_unknown_framework_flag_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="Unknown profile 'pcidss'"):
        load_config(None, search_dirs=[tmp_path], frameworks=["pcidss"])


# --- values ---------------------------------------------------------------------------------------


def test_full_file_is_read(tmp_path: Path) -> None:
    write(
        tmp_path,
        "exceptions.toml",
        """
        [[exception]]
        rule = "stale-login"
        user = "dana.ops@example.com"
        reason = "Seasonal contractor"
        owner = "Security Team <security@example.com>"
        approved_by = "Grace Whitfield <grace@example.com>"
        approved_on = 2026-10-02
        expires = 2027-01-31
        """,
    )
    path = write(
        tmp_path,
        "auditor.toml",
        """
        profiles = ["pci-dss-4", "cis-v8"]
        exceptions_file = "exceptions.toml"

        [thresholds]
        inactive_user_days = 60
        never_signed_in_admin_grace_days = 0

        [rules]
        privileged_roles = ["Administrator"]
        allowed_domains = ["Example.COM", "@example.org"]
        shared_mailbox_patterns = ["ops-*@*"]
        max_admins = 3
        """,
    )
    config = load_config(path, search_dirs=[])
    assert config.thresholds.inactive_user_days == 60
    assert config.thresholds.inactive_admin_days == 45
    assert config.thresholds.never_signed_in_admin_grace_days == 0
    assert config.profile.thresholds.inactive_user_days == 45  # the profile itself is untouched
    assert config.overridden == ("inactive_user_days", "never_signed_in_admin_grace_days")
    assert config.privileged_roles == ("Administrator",)
    assert config.allowed_domains == ("example.com", "example.org")
    assert config.shared_mailbox_patterns == ("ops-*@*",)
    assert config.max_admins == 3
    assert [e.user for e in config.exceptions] == ["dana.ops@example.com"]
    rows = {label: (value, source) for label, value, source in config.describe_thresholds()}
    assert rows["inactive user"] == ("60 days", "set by policy (auditor.toml)")
    assert rows["inactive admin"] == ("45 days", "CIS 5.3")
    assert rows["evidence retention"] == ("12 months", "PCI DSS 10.5.1")
    assert config.retention_manifest() == {
        "profile": "pci-dss-4",
        "period": "12 months",
        "days": 365,
        "source": "PCI DSS 10.5.1",
    }


def test_empty_patterns_and_domains_are_allowed(tmp_path: Path) -> None:
    path = write(tmp_path, "auditor.toml", "[rules]\nshared_mailbox_patterns = []\nallowed_domains = []\n")
    config = load_config(path, search_dirs=[])
    assert config.shared_mailbox_patterns == ()
    assert config.allowed_domains == ()
    assert "it@*" in DEFAULT_SHARED_MAILBOX_PATTERNS


@pytest.mark.parametrize(
    ("text", "fragment", "line"),
    [
        ('profiles = ["soc2"]\nprofile = "x"\n', "unknown key 'profile'", 2),
        ("[thresholds]\ninactive_user_days = 90\ninactive_days = 30\n", "unknown key 'thresholds.inactive_days'", 3),
        ("[rules]\n\nmax_admin = 3\n", "unknown key 'rules.max_admin'", 3),
        ("[thresholds]\ninactive_user_days = 0\n", "'thresholds.inactive_user_days' must be a whole number", 2),
        ('[thresholds]\ninactive_admin_days = "90"\n', "not '90'", 2),
        ("[thresholds]\nfull_review_days = 99999\n", "from 1 to 3650", 2),
        ("[thresholds]\nfull_review_days = true\n", "'thresholds.full_review_days'", 2),
        ("[thresholds]\nnever_signed_in_admin_grace_days = -1\n", "from 0 to 3650", 2),
        ('# x\nprofiles = ["pci-dss-4", "sox"]\n', "unknown profile 'sox'", 2),
        ('profiles = "pci-dss-4"\n', "'profiles' must be a list", 1),
        ("profiles = []\n", "'profiles' must not be empty", 1),
        ("[rules]\nmax_admins = 0\n", "'rules.max_admins' must be a whole number from 1", 2),
        ("[rules]\nprivileged_roles = [1]\n", "'rules.privileged_roles' must be a list of non-empty strings", 2),
        ('[rules]\nallowed_domains = ["not a domain"]\n', "not a domain name", 2),
        ('# x\nexceptions_file = "missing.toml"\n', "missing.toml, which does not exist", 2),
        ("thresholds = 3\n", "'thresholds' must be a table", 1),
    ],
)
def test_bad_keys_and_values_name_the_key_and_line(tmp_path: Path, text: str, fragment: str, line: int) -> None:
    path = write(tmp_path, "auditor.toml", text)
    error = config_error(path)
    assert fragment in error.message
    assert error.message.startswith(f"{path}:{line}: ")


def test_unknown_key_hint_lists_valid_keys(tmp_path: Path) -> None:
    error = config_error(write(tmp_path, "auditor.toml", "[rules]\nmax_admin = 3\n"))
    assert "max_admins" in error.hint


def test_toml_syntax_error_keeps_tomllibs_line(tmp_path: Path) -> None:
    error = config_error(write(tmp_path, "auditor.toml", 'profiles = ["soc2"]\n[rules\n'))
    assert "not valid TOML" in error.message
    assert "line 2" in error.message


# --- exceptions -----------------------------------------------------------------------------------

GOOD_EXCEPTION = """
[[exception]]
rule = "stale-login"
user = "Dana.Ops@example.com"
reason = "Seasonal contractor"
owner = "Security Team <security@example.com>"
approved_by = "Grace Whitfield <grace@example.com>"
approved_on = 2026-10-02
expires = 2027-01-31

[[exception]]
rule = "admin-dormant"
user = 2700762
reason = "Break-glass account"
owner = "CISO"
approved_by = "Audit Committee"
approved_on = 2026-10-02T09:30:00
expires = 2027-01-31T12:00:00+02:00
"""


def test_exceptions_are_parsed(tmp_path: Path) -> None:
    first, second = load_exceptions(write(tmp_path, "e.toml", GOOD_EXCEPTION))
    assert first.rule == "stale-login"
    assert first.user == "Dana.Ops@example.com"
    assert first.line == 1
    # A date means through the end of that day, UTC.
    assert first.expires == datetime(2027, 1, 31, 23, 59, 59, 999999, tzinfo=UTC)
    assert not first.expired(datetime(2027, 1, 31, 23, 0, tzinfo=UTC))
    assert first.expired(datetime(2027, 2, 1, tzinfo=UTC))
    assert second.user == "2700762"
    assert second.expires == datetime(2027, 1, 31, 10, 0, tzinfo=UTC)
    assert second.line == 10
    # Approval: a date means from the start of that day, UTC; a naive datetime is UTC.
    assert first.approved_by == "Grace Whitfield <grace@example.com>"
    assert first.approved_on == datetime(2026, 10, 2, tzinfo=UTC)
    assert not first.approved_at(datetime(2026, 10, 1, 23, 59, tzinfo=UTC))
    assert second.approved_on == datetime(2026, 10, 2, 9, 30, tzinfo=UTC)


def test_naive_datetime_expiry_is_utc(tmp_path: Path) -> None:
    text = GOOD_EXCEPTION.replace("2027-01-31T12:00:00+02:00", "2027-01-31T12:00:00")
    assert load_exceptions(write(tmp_path, "e.toml", text))[1].expires == datetime(2027, 1, 31, 12, tzinfo=UTC)


def test_empty_exceptions_file(tmp_path: Path) -> None:
    assert load_exceptions(write(tmp_path, "e.toml", "# nothing yet\n")) == ()


@pytest.mark.parametrize(
    ("old", "new", "fragment", "line"),
    [
        ('rule = "admin-dormant"', 'rule = "admin-dormnt"', "unknown rule 'admin-dormnt' in exception #2", 11),
        ('owner = "CISO"\n', "", "exception #2 is missing 'owner'", 10),
        ('reason = "Seasonal contractor"\n', "", "exception #1 is missing 'reason'", 1),
        ("expires = 2027-01-31\n", 'expires = "soon"\n', "'expires' of exception #1 must be a date", 8),
        ("expires = 2027-01-31\n", "expires = 12:00:00\n", "must be a date", 8),
        ('owner = "CISO"', 'owner = ""', "'owner' of exception #2 must be non-empty", 14),
        ("user = 2700762", "user = true", "'user' of exception #2 must be an email or a numeric", 12),
        ('owner = "CISO"', 'owner = "CISO"\nticket = "X-1"', "unknown key 'exception.ticket'", 15),
        ('approved_by = "Audit Committee"\n', "", "exception #2 is missing 'approved_by'", 10),
        ("approved_on = 2026-10-02\n", "", "exception #1 is missing 'approved_on'", 1),
        ('approved_by = "Audit Committee"', 'approved_by = " "', "'approved_by' of exception #2 must be non-empty", 15),
        ("approved_on = 2026-10-02\n", 'approved_on = "soon"\n', "'approved_on' of exception #1 must be a date", 7),
        ("approved_on = 2026-10-02\n", "approved_on = 2027-02-01\n", "approved on 2027-02-01, after it expires", 7),
    ],
)
def test_exception_errors_name_field_and_line(tmp_path: Path, old: str, new: str, fragment: str, line: int) -> None:
    text = GOOD_EXCEPTION.lstrip("\n")
    assert old in text
    path = write(tmp_path, "e.toml", text.replace(old, new, 1))
    with pytest.raises(ConfigurationError) as excinfo:
        load_exceptions(path)
    assert fragment in excinfo.value.message
    assert excinfo.value.message.startswith(f"{path}:{line}: ")


def test_unknown_rule_hint_lists_rule_ids(tmp_path: Path) -> None:
    path = write(tmp_path, "e.toml", GOOD_EXCEPTION.replace('"stale-login"', '"stale"'))
    with pytest.raises(ConfigurationError) as excinfo:
        load_exceptions(path)
    assert "stale-login" in excinfo.value.hint
    assert "review-overdue" in excinfo.value.hint


def test_exceptions_file_top_level_key_is_an_error(tmp_path: Path) -> None:
    path = write(tmp_path, "e.toml", "exceptions = []\n")
    with pytest.raises(ConfigurationError, match=r":1: unknown key 'exceptions'"):
        load_exceptions(path)


def test_exceptions_file_relative_to_config(tmp_path: Path) -> None:
    sub = tmp_path / "policy"
    sub.mkdir()
    write(sub, "accepted.toml", GOOD_EXCEPTION)
    path = write(sub, "auditor.toml", 'exceptions_file = "accepted.toml"\n')
    config = load_config(None, search_dirs=[tmp_path, sub])
    assert len(config.exceptions) == 2
    assert config.source == path


def test_bad_exceptions_file_via_config_is_reported(tmp_path: Path) -> None:
    write(tmp_path, "e.toml", GOOD_EXCEPTION.replace("2027-01-31\n", '"x"\n'))
    path = write(tmp_path, "auditor.toml", 'exceptions_file = "e.toml"\n')
    error = config_error(path)
    assert "e.toml:8:" in error.message
