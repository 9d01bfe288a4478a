"""OSCAL documents (issue 19): valid by trestle's models and validators, complete, and re-derivable."""

from __future__ import annotations

import argparse
import json
import uuid
from pathlib import Path

import pytest
from standards_data import Evaluated, evaluated_snapshot
from trestle.common import const
from trestle.core import validator_factory
from trestle.oscal.assessment_plan import AssessmentPlan
from trestle.oscal.assessment_results import AssessmentResults
from trestle.oscal.poam import PlanOfActionAndMilestones

from auditor.profiles import PROFILES
from auditor.rules import RULES
from auditor.standards import oscal

MODELS = {
    oscal.ASSESSMENT_RESULTS: AssessmentResults,
    oscal.ASSESSMENT_PLAN: AssessmentPlan,
    oscal.POAM: PlanOfActionAndMilestones,
}


def read_valid(name: str, data: bytes, tmp_path: Path) -> object:
    """The document read back by trestle (its strict pydantic model) and passed by every trestle validator."""
    path = tmp_path / name
    path.write_bytes(data)
    model = MODELS[name].oscal_read(path)
    assert model is not None
    validator = validator_factory.validator_factory.get(argparse.Namespace(mode=const.VAL_MODE_ALL))
    assert validator.model_is_valid(model, True, None), validator.error_msg()
    return model


def props(item: dict[str, object], name: str) -> list[dict[str, str]]:
    return [p for p in item.get("props", []) if p["name"] == name]  # type: ignore[attr-defined, index]


def test_every_document_is_valid_oscal(evaluated: Evaluated, tmp_path: Path) -> None:
    files = dict(oscal.documents(evaluated.snapshot, evaluated.findings, reviews=evaluated.reviews))
    assert set(files) == set(MODELS)
    for name, data in files.items():
        read_valid(name, data, tmp_path)


def test_results_observe_every_rule_user_finding_and_review_decision(evaluated: Evaluated) -> None:
    doc = json.loads(oscal.assessment_results(evaluated.snapshot, evaluated.findings, reviews=evaluated.reviews))
    (result,) = doc["assessment-results"]["results"]
    observations = result["observations"]
    rule_ids = [props(o, "rule-id")[0]["value"] for o in observations if o["title"].startswith("Rule ")]
    assert rule_ids == [rule.id for rule in RULES]
    users = [o for o in observations if o["title"].startswith("User ")]
    assert [props(o, "user-id")[0]["value"] for o in users] == ["1", "2", "3", "4"]
    evidence = [o for o in observations if o["title"].startswith("Evidence of ")]
    assert len(evidence) == len(evaluated.findings.findings)
    (review,) = [o for o in observations if o["title"].startswith("Access review decision")]
    assert props(review, "decision")[0]["value"] == "revoke" and props(review, "ticket")[0]["value"] == "SEC-1"
    # The snapshot is the assessed subject of every observation.
    (subject,) = result["local-definitions"]["components"]
    assert {s["subject-uuid"] for o in observations for s in o["subjects"]} == {subject["uuid"]}
    assert props(subject, "snapshot-id")[0]["value"] == "7"


def test_one_finding_per_open_finding_citing_every_framework(evaluated: Evaluated) -> None:
    doc = json.loads(oscal.assessment_results(evaluated.snapshot, evaluated.findings))
    (result,) = doc["assessment-results"]["results"]
    open_findings = evaluated.findings.active
    assert evaluated.findings.suppressed, "the fixture should hold a suppressed finding"
    assert [f["target"]["target-id"] for f in result["findings"]] == [f.rule_id for f in open_findings]
    observation_ids = {o["uuid"] for o in result["observations"]}
    for item, finding in zip(result["findings"], open_findings, strict=True):
        assert item["target"]["status"]["state"] == "not-satisfied"
        cited = {(p["class"], p["value"]) for p in props(item, "control-reference")}
        expected = {
            (name, c) for name in PROFILES if name != "strict" for c in PROFILES[name].controls_for(finding.rule_id)
        }
        assert cited == expected
        # PCI DSS, NIST 800-53, ISO 27001, CIS and SOC 2 each cited for a dormant administrator.
        if finding.rule_id == "admin-dormant":
            assert {"pci-dss-4", "nist-800-53-moderate", "iso27001-2022", "cis-v8", "soc2"} <= {c for c, _ in cited}
        assert {r["observation-uuid"] for r in item["related-observations"]} <= observation_ids


def test_poam_lists_the_open_findings_and_is_left_out_when_none_is_open(evaluated: Evaluated, tmp_path: Path) -> None:
    data = oscal.poam(evaluated.snapshot, evaluated.findings)
    assert data is not None
    items = json.loads(data)["plan-of-action-and-milestones"]["poam-items"]
    assert len(items) == len(evaluated.findings.active)
    empty = evaluated_snapshot()
    nothing_open = type(empty.findings)(
        snapshot_id=empty.findings.snapshot_id, evaluated_at=empty.findings.evaluated_at,
        profiles=empty.findings.profiles, findings=empty.findings.suppressed,
    )
    assert oscal.poam(empty.snapshot, nothing_open) is None
    names = [name for name, _ in oscal.documents(empty.snapshot, nothing_open)]
    assert names == [oscal.ASSESSMENT_PLAN, oscal.ASSESSMENT_RESULTS]


def test_results_import_the_minimal_plan_written_beside_them(evaluated: Evaluated) -> None:
    files = dict(oscal.documents(evaluated.snapshot, evaluated.findings, prefix="acme.oscal-"))
    results = json.loads(files["acme.oscal-assessment-results.json"])["assessment-results"]
    assert results["import-ap"]["href"] == "acme.oscal-assessment-plan.json"
    plan = json.loads(files["acme.oscal-assessment-plan.json"])["assessment-plan"]
    assert plan["import-ssp"]["href"].startswith("urn:certcentral-auditor:account:")


def test_documents_are_deterministic_uuid5_and_dated_by_the_evaluation(evaluated: Evaluated) -> None:
    first = oscal.documents(evaluated.snapshot, evaluated.findings, reviews=evaluated.reviews)
    again = evaluated_snapshot()
    assert oscal.documents(again.snapshot, again.findings, reviews=again.reviews) == first
    results = json.loads(dict(first)[oscal.ASSESSMENT_RESULTS])["assessment-results"]
    assert uuid.UUID(results["uuid"]).version == 5
    assert results["metadata"]["last-modified"] == evaluated.findings.evaluated_at.isoformat()
    other = evaluated_snapshot(snapshot_id=8)
    assert json.loads(oscal.assessment_results(other.snapshot, other.findings))["assessment-results"]["uuid"] != (
        results["uuid"]
    )


@pytest.mark.parametrize("name", sorted(MODELS))
def test_a_broken_document_fails_trestle(evaluated: Evaluated, tmp_path: Path, name: str) -> None:
    """The check above can fail: a document missing its uuid is refused by trestle's model."""
    data = dict(oscal.documents(evaluated.snapshot, evaluated.findings))[name]
    doc = json.loads(data)
    del doc[next(iter(doc))]["uuid"]
    with pytest.raises(Exception, match="uuid"):
        read_valid(name, json.dumps(doc).encode(), tmp_path)
