"""The demo's fleet step: two sample accounts, each on its own sandbox instance, one fleet summary."""

from __future__ import annotations

import json

from support import DemoRun


def test_the_demo_writes_a_fleet_summary_of_two_sample_accounts(demo_run: DemoRun) -> None:
    assert demo_run.result.returncode == 0, demo_run.result.stderr[-3000:]
    fleet = demo_run.output / "fleet"
    document = json.loads((fleet / "fleet-summary.json").read_text(encoding="utf-8"))
    names = [(a["connection"], a["account_name"], a["status"]) for a in document["accounts"]]
    assert names == [("example-corp", "Example Corp", "ok"), ("example-subsidiary", "Example Subsidiary", "ok")]
    assert {"email": "tom.okafor@example.com", "accounts": ["example-corp", "example-subsidiary"]} in document[
        "shared_administrators"]
    html = (fleet / "fleet-summary.html").read_text(encoding="utf-8")
    assert "Example Subsidiary" in html and "tom.okafor@example.com" in html
    assert len(list((demo_run.output / "evidence").glob("*.zip"))) == 5, "the fleet step adds no bundle"
