"""End to end: `auditor connections --discover` lists the subaccounts a partner key can see (§11.6)."""

from __future__ import annotations

import dataclasses

import pytest
from support import AuditorHome, connect_to

from auditor.errors import ExitCode
from auditor.sandbox import Dataset, Faults, SandboxServer, default_dataset

SUBACCOUNTS = (
    {"id": 501, "name": "Acme Retail GmbH", "status": "active",
     "master_user": {"email": "it@acme-retail.example", "container_id": 9001}},
    {"id": 502, "name": "Beta Labs", "status": "inactive",
     "master_user": {"email": "admin@beta.example", "container_id": 9002}},
)


def partner() -> Dataset:
    return dataclasses.replace(default_dataset(), subaccounts=SUBACCOUNTS)


@pytest.mark.parametrize("shape", ["full", "summary"])
def test_discover_lists_each_subaccount_with_its_master_user_in_either_list_shape(
    home: AuditorHome, shape: str
) -> None:
    with SandboxServer(partner(), faults=Faults(subaccount_list_shape=shape)) as server:  # type: ignore[arg-type]
        connect_to(home, server.base_url)
        server.clear_requests()
        result = home.run("connections", "--discover")
        paths = [request.path for request in server.requests]
    assert result.returncode == ExitCode.OK, result.stderr
    lines = result.stdout.splitlines()
    assert any("501" in line and "Acme Retail GmbH" in line and "it@acme-retail.example" in line
               and "acme-retail-gmbh" in line for line in lines)
    assert any("502" in line and "inactive" in line and "admin@beta.example" in line for line in lines)
    assert "auditor connect --connection NAME" in result.stderr
    details = [p for p in paths if p.endswith(("/account/subaccount/501", "/account/subaccount/502"))]
    assert len(details) == (2 if shape == "summary" else 0), "the master user is read only when the list omits it"


def test_a_key_without_subaccounts_gets_a_clear_message(home: AuditorHome, sandbox: SandboxServer) -> None:
    connect_to(home, sandbox.base_url)
    result = home.run("connections", "--discover")
    assert result.returncode == ExitCode.KEY_NOT_PERMITTED
    assert "may not list subaccounts" in result.stderr and "404" in result.stderr
    assert "auditor connect --connection NAME" in result.stderr


def test_a_key_that_may_not_list_them_gets_403_explained(home: AuditorHome) -> None:
    with SandboxServer(partner()) as server:
        connect_to(home, server.base_url, key="sandbox-division-restricted-key")
        result = home.run("connections", "--discover")
    assert result.returncode == ExitCode.KEY_NOT_PERMITTED, result.stderr
    assert "answered 403" in result.stderr


def test_the_dataset_round_trips_its_subaccounts() -> None:
    dataset = partner()
    assert Dataset.from_json(dataset.to_json()).subaccounts == SUBACCOUNTS
    assert "subaccounts" not in default_dataset().to_json()


def test_more_subaccounts_than_one_page_are_all_listed(home: AuditorHome) -> None:
    many = tuple({"id": 10_000 + n, "name": f"Tenant {n}", "status": "active",
                  "master_user": {"email": f"admin{n}@tenant.example", "container_id": n}} for n in range(1205))
    with SandboxServer(dataclasses.replace(default_dataset(), subaccounts=many)) as server:
        connect_to(home, server.base_url)
        server.clear_requests()
        result = home.run("connections", "--discover")
        pages = [r.query for r in server.requests if r.path.endswith("/account/subaccount")]
    assert result.returncode == ExitCode.OK, result.stderr
    assert pages == ["limit=1000&offset=0", "limit=1000&offset=1000"]
    assert "admin1204@tenant.example" in result.stdout and "1205 subaccount(s)" in result.stderr
