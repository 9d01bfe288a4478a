"""OCSF JSON lines (issue 19): Compliance Findings by py-ocsf-models, User Inventory Info to the 1.5.0 schema."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from py_ocsf_models.events.findings.compliance_finding import ComplianceFinding
from standards_data import NOW, Evaluated, evaluated_snapshot

from auditor.standards import ocsf

#: The required attributes of class user_inventory in OCSF 1.5.0, vendored (its "source" names the commit).
SCHEMA = json.loads((Path(__file__).parent / "ocsf-1.5.0-user-inventory-required.json").read_text())


def lines(evaluated: Evaluated) -> list[dict[str, Any]]:
    data = ocsf.to_jsonl(evaluated.snapshot, evaluated.findings)
    assert data.endswith(b"\n")
    return [json.loads(line) for line in data.decode("utf-8").splitlines()]


def missing_required(record: dict[str, Any]) -> list[str]:
    """Where a User Inventory Info record lacks what the vendored schema requires ([] when none)."""
    missing = [name for name in SCHEMA["required"] if name not in record]
    for name, rules in SCHEMA["objects"].items():
        value = {"metadata": record.get("metadata"), "user": record.get("user"),
                 "product": (record.get("metadata") or {}).get("product"),
                 "account": (record.get("user") or {}).get("account")}[name]
        if value is None:
            continue
        missing += [f"{name}.{attr}" for attr in rules["required"] if attr not in value]
        if rules.get("at_least_one") and not any(attr in value for attr in rules["at_least_one"]):
            missing.append(f"{name}: one of {rules['at_least_one']}")
    return missing


def test_one_compliance_finding_per_finding_valid_by_py_ocsf_models(evaluated: Evaluated) -> None:
    findings = [r for r in lines(evaluated) if r["class_uid"] == 2003]
    assert [r["compliance"]["control"] for r in findings] == [f.rule_id for f in evaluated.findings.findings]
    for record, finding in zip(findings, evaluated.findings.findings, strict=True):
        ComplianceFinding.model_validate(record)  # raises on a missing or mistyped attribute
        assert record["type_uid"] == 200301 and record["time"] == int(NOW.timestamp() * 1000)
        assert record["compliance"]["requirements"] == list(finding.controls)
        assert record["status"] == ("Suppressed" if finding.suppressed else "New")
    (suppressed,) = [r for r in findings if r["status"] == "Suppressed"]
    assert suppressed["status_detail"] == "Exception: Seasonal contractor"


def test_one_user_inventory_record_per_user_with_the_required_attributes(evaluated: Evaluated) -> None:
    users = [r for r in lines(evaluated) if r["class_uid"] == SCHEMA["class"]["class_uid"]]
    assert [r["user"]["uid"] for r in users] == ["1", "2", "3", "4"]
    for record in users:
        assert missing_required(record) == []
        assert record["category_uid"] == SCHEMA["class"]["category_uid"]
        assert str(record["activity_id"]) in SCHEMA["activity_id"]
        assert record["type_uid"] == record["class_uid"] * 100 + record["activity_id"]
        assert record["metadata"]["version"] == ocsf.OCSF_SCHEMA_VERSION == "1.5.0"
    assert [r["user"]["type"] for r in users] == ["Admin", "User", "User", "System"]
    assert users[0]["user"]["email_addr"] == "ada@example.com"


def test_the_required_check_catches_a_record_without_user_or_product(evaluated: Evaluated) -> None:
    record = next(r for r in lines(evaluated) if r["class_uid"] == 5003)
    del record["user"]
    record["metadata"] = {"version": "1.5.0", "product": {}}
    assert missing_required(record) == ["user", "product: one of ['name', 'uid']"]


def test_lines_are_deterministic(evaluated: Evaluated) -> None:
    again = evaluated_snapshot()
    assert ocsf.to_jsonl(again.snapshot, again.findings) == ocsf.to_jsonl(evaluated.snapshot, evaluated.findings)
