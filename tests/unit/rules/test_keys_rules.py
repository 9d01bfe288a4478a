"""Issue 17, credential inventory: the key rules through the real CLI against the real sandbox."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from keys_support import ADMIN, FORMER, GONE, SERVICE, api_key, keyed_dataset
from support import AuditorHome, connect_to

from auditor.errors import ExitCode
from auditor.sandbox import Faults, SandboxServer

KEY_RULES = (
    "key-owner-inactive",
    "key-unrestricted",
    "key-unused",
    "key-never-used",
    "key-legacy",
    "key-no-ip-restriction",
    "guest-access-enabled",
)


@pytest.fixture
def keyed() -> Iterator[SandboxServer]:
    with SandboxServer(keyed_dataset()) as server:
        yield server


def pull_and_findings(home: AuditorHome, server: SandboxServer, *extra: str) -> dict[str, Any]:
    connect_to(home, server.base_url, key="sandbox-view-only-key")
    pulled = home.run("pull")
    assert pulled.returncode == ExitCode.OK, pulled.stderr
    found = home.run("findings", "--format", "json", *extra)
    assert found.returncode == ExitCode.OK, found.stderr
    return json.loads(found.stdout)


def by_key(findings: dict[str, Any]) -> dict[str, set[tuple[str, str]]]:
    """key name -> {(rule, severity)} of the key findings."""
    out: dict[str, set[tuple[str, str]]] = {}
    for finding in findings["findings"]:
        if finding["rule"].startswith("key-"):
            name = finding["evidence"]["key"].split(" (", 1)[0]
            out.setdefault(name, set()).add((finding["rule"], finding["severity"]))
    return out


def test_every_key_rule_fires_on_its_side_of_the_threshold_only(home: AuditorHome, keyed: SandboxServer) -> None:
    findings = pull_and_findings(home, keyed)
    keys = by_key(findings)
    no_ip = ("key-no-ip-restriction", "info")
    assert keys["admin-unrestricted"] == {("key-unrestricted", "high"), no_ip}
    assert keys["reporting-view-only"] == {no_ip}
    assert keys["old-integration"] == {("key-legacy", "low"), no_ip}
    assert keys["acme-web"] == {("key-unrestricted", "medium"), no_ip}  # owner is no Administrator
    assert "retired" not in keys  # revoked keys raise nothing
    assert keys["made-and-forgotten"] == {("key-never-used", "low"), no_ip}  # 100 days > 90
    assert keys["fresh-unused"] == {no_ip}  # 80 days < 90
    assert keys["quarterly-job"] == {("key-unused", "medium"), no_ip}  # 95 days > 90
    assert keys["monthly-job"] == {no_ip}  # 85 days < 90
    assert keys["leaver-key"] == {("key-owner-inactive", "high"), no_ip}
    assert keys["orphan-key"] == {("key-owner-inactive", "high"), no_ip}
    # The service user's key is covered by its IP rule, so it raises nothing: but it is judged.
    assert "ci-deploy" not in keys
    guest = [f for f in findings["findings"] if f["rule"] == "guest-access-enabled"]
    assert len(guest) == 1 and guest[0]["user_id"] is None and guest[0]["severity"] == "low"
    orphan = next(f for f in findings["findings"] if f["evidence"].get("key", "").startswith("orphan-key"))
    assert orphan["user_id"] == GONE and "no longer a user" in orphan["explanation"]
    leaver = next(f for f in findings["findings"] if f["evidence"].get("key", "").startswith("leaver-key"))
    assert leaver["user_id"] == FORMER
    unused = next(f for f in findings["findings"] if f["rule"] == "key-unused")
    assert unused["evidence"]["threshold"].startswith("90 days") and unused["controls"]


def test_a_service_users_active_key_is_judged_through_its_owner(home: AuditorHome) -> None:
    keys = [api_key(31, "svc-unrestricted", SERVICE, restriction=0, used_days=200)]
    with SandboxServer(keyed_dataset(keys=keys, ip_rules=[], guest=False)) as server:
        findings = pull_and_findings(home, server)
    mine = [f for f in findings["findings"] if f["rule"].startswith("key-")]
    assert {f["rule"] for f in mine} == {"key-unrestricted", "key-unused"}
    assert all(f["user_id"] == SERVICE and f["evidence"]["owner type"] == "service (API-only) user" for f in mine)


def test_without_ip_rules_or_guest_access_those_rules_stay_quiet(home: AuditorHome) -> None:
    keys = [api_key(41, "plain", ADMIN)]
    with SandboxServer(keyed_dataset(keys=keys, ip_rules=[], guest=False)) as server:
        findings = pull_and_findings(home, server)
    assert not [f for f in findings["findings"] if f["rule"] in KEY_RULES]


def test_a_key_owner_missing_from_an_incomplete_snapshot_is_not_called_gone(home: AuditorHome) -> None:
    keys = [api_key(51, "orphan?", GONE)]
    faults = Faults(route_faults=(("/user/api-only", "missing-permission"), ("/service-user", "missing-permission")))
    with SandboxServer(keyed_dataset(keys=keys, ip_rules=[], guest=False), faults=faults) as server:
        findings = pull_and_findings(home, server, "--snapshot", "1")
    assert not [f for f in findings["findings"] if f["rule"] == "key-owner-inactive"]
    assert {f["rule"] for f in findings["findings"] if f["evidence"].get("key", "").startswith("orphan?")} == set()


@pytest.mark.parametrize(
    ("route", "part", "rules"),
    [
        ("/key", "API keys", {"key-unrestricted", "key-legacy", "key-unused"}),
        ("/container/{id}/ip/rules", "IP restriction rules", {"key-no-ip-restriction"}),
        ("/account/guest-access", "Guest access", {"guest-access-enabled"}),
    ],
)
def test_a_documented_403_makes_that_part_not_evaluable_never_none(
    home: AuditorHome, route: str, part: str, rules: set[str]
) -> None:
    faults = Faults(route_faults=((route, "missing-permission"),))
    with SandboxServer(keyed_dataset(), faults=faults) as server:
        findings = pull_and_findings(home, server)
        snapshots = home.run("snapshots")
    fired = {f["rule"] for f in findings["findings"]}
    assert not fired & rules, "an unread part must raise none of its rules"
    assert any(line.startswith("Not evaluable: " + part) for line in findings["limitations"]), findings["limitations"]
    # The users were read in full: the snapshot stays complete (only the credential part is unknown).
    assert "incomplete" not in snapshots.stdout.lower(), snapshots.stdout


def test_an_undocumented_refusal_of_a_credential_endpoint_fails_the_pull(home: AuditorHome) -> None:
    with SandboxServer(keyed_dataset(), faults=Faults(route_faults=(("/key", "html-403"),))) as server:
        connect_to(home, server.base_url, key="sandbox-view-only-key")
        pulled = home.run("pull")
        listed = home.run("snapshots")
    assert pulled.returncode != ExitCode.OK
    assert "/key" in pulled.stderr
    assert "#1" not in listed.stdout and " 1 " not in listed.stdout


def test_a_paged_key_list_is_read_in_full(home: AuditorHome) -> None:
    with SandboxServer(keyed_dataset(), faults=Faults(key_page_size=5)) as server:
        findings = pull_and_findings(home, server)
        key_requests = [r for r in server.requests if r.path.endswith("/key")]
    assert len(key_requests) == 4  # the connection test's GET /key, then 12 keys, 5 a page
    assert "orphan-key" in by_key(findings)  # the last page's key was read
