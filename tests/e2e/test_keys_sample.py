"""Issue 17: the bundled sample account shows every credential rule and key change (the demo's data)."""

from __future__ import annotations

import json

from support import AuditorHome, connect_to

from auditor.errors import ExitCode
from auditor.samples import sample_states
from auditor.sandbox import SandboxServer, load_dataset

KEY_RULES = {
    "key-owner-inactive",
    "key-unrestricted",
    "key-unused",
    "key-never-used",
    "key-legacy",
    "key-no-ip-restriction",
    "guest-access-enabled",
}


def test_the_sample_account_fires_every_key_rule_and_every_key_change(home: AuditorHome) -> None:
    october, november = (load_dataset(path) for path in sample_states()[-2:])
    with SandboxServer(october) as server:
        connect_to(home, server.base_url, key="sandbox-view-only-key")
        assert home.run("pull").returncode == ExitCode.OK
        server.set_dataset(november)
        assert home.run("pull").returncode == ExitCode.OK
    found = home.run("findings", "--format", "json")
    assert found.returncode == ExitCode.OK, found.stderr
    fired = {f["rule"] for f in json.loads(found.stdout)["findings"]}
    assert fired >= KEY_RULES, KEY_RULES - fired
    diff = json.loads(home.run("diff", "--format", "json").stdout)["changes"]
    kinds = {c["kind"] for c in diff if c["kind"].startswith("key-")}
    assert kinds == {"key-owner", "key-restriction", "key-revoked"}
    owner_change = next(c for c in diff if c["kind"] == "key-owner")
    assert owner_change["key_id"] == 3100006  # kevin-ci, re-owned after Kevin left
