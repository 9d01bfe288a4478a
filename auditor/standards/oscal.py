"""NIST OSCAL documents of an evaluated snapshot, built with compliance-trestle's models.

- **Assessment Results**: the snapshot (the CertCentral account as pulled) is the assessed
  subject; one observation per evaluated rule, per user and per finding's evidence, one per
  access-review decision when a campaign's decisions are in force; one finding per open finding,
  citing every built-in profile's control references for its rule (PCI DSS, NIST SP 800-53,
  ISO/IEC 27001, CIS, SOC 2, HIPAA, as ``auditor.profiles`` holds them).
- **Assessment Plan**: minimal. OSCAL requires Assessment Results to import one (``import-ap``)
  and a plan to import a System Security Plan; this tool has neither, so the plan names the
  rules' profiles and the account as its subject, and its ``import-ssp`` points at the account
  (a ``urn:``), not at an SSP document. A GRC tool that resolves imports finds no SSP.
- **POA&M**: one item per open finding; none is written when nothing is open (OSCAL requires at
  least one ``poam-item``).

Deterministic: every uuid is a uuid5 of the snapshot's connection, id and raw-data digest plus
the item's key, and every time is the evaluation's (the snapshot's own time), so
``verify --reperform`` re-derives the bundle's documents byte for byte. trestle (pydantic and
some thirty packages) is imported inside the functions, so commands that write no OSCAL never
load it.
"""

from __future__ import annotations

import enum
import json
from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from auditor import exports
from auditor.models import Finding, FindingsResult, ReviewItem, Snapshot, User
from auditor.profiles import PROFILES
from auditor.report.data import account_name
from auditor.rules import RULES
from auditor.standards import derived_uuid

if TYPE_CHECKING:
    from trestle.oscal import common

__all__ = [
    "ASSESSMENT_PLAN",
    "ASSESSMENT_RESULTS",
    "POAM",
    "assessment_plan",
    "assessment_results",
    "documents",
    "poam",
]

#: File names of the documents (in a bundle under ``standards/oscal/``; beside a report prefixed).
ASSESSMENT_RESULTS = "assessment-results.json"
ASSESSMENT_PLAN = "assessment-plan.json"
POAM = "poam.json"

#: The namespace of this tool's OSCAL properties (OSCAL asks for one on names it does not define).
PROP_NS = "urn:certcentral-auditor:oscal"
#: Built-in profiles whose control references a finding cites ("strict" is their union).
_CITED_PROFILES = tuple(name for name in PROFILES if name != "strict")
_METHOD = {"rule": "TEST", "user": "EXAMINE", "evidence": "TEST", "review": "INTERVIEW"}


def documents(
    snapshot: Snapshot,
    findings: FindingsResult,
    *,
    reviews: Sequence[ReviewItem] = (),
    prefix: str = "",
) -> tuple[tuple[str, bytes], ...]:
    """(file name, bytes) of the plan, the results and (with open findings) the POA&M.

    ``prefix`` goes before each file name (``<report base>.oscal-``); the results' ``import-ap``
    names the plan's file beside it.
    """
    plan_name, results_name, poam_name = (prefix + name for name in (ASSESSMENT_PLAN, ASSESSMENT_RESULTS, POAM))
    out = [
        (plan_name, assessment_plan(snapshot, findings)),
        (results_name, assessment_results(snapshot, findings, reviews=reviews, plan_href=plan_name)),
    ]
    plan_of_action = poam(snapshot, findings)
    if plan_of_action is not None:
        out.append((poam_name, plan_of_action))
    return tuple(out)


def assessment_results(
    snapshot: Snapshot,
    findings: FindingsResult,
    *,
    reviews: Sequence[ReviewItem] = (),
    plan_href: str = ASSESSMENT_PLAN,
) -> bytes:
    """The OSCAL Assessment Results document (JSON bytes) of one evaluated snapshot."""
    from trestle.oscal import assessment_results as ar

    doc = _Doc(snapshot, findings)
    observations: list[common.Observation] = []
    by_rule: dict[str, list[Finding]] = {}
    for finding in findings.findings:
        by_rule.setdefault(finding.rule_id, []).append(finding)
    for rule in RULES:
        flagged = by_rule.get(rule.id, [])
        open_count = sum(1 for f in flagged if not f.suppressed)
        observations.append(
            doc.observation(
                "rule",
                rule.id,
                title=f"Rule {rule.id}: {rule.title}",
                description=(
                    f"Evaluated over snapshot {snapshot.id}: {open_count} open and "
                    f"{len(flagged) - open_count} suppressed finding(s). {rule.explanation}"
                ),
                props=[doc.prop("rule-id", rule.id), doc.prop("severity", str(rule.severity))],
                finding=bool(open_count),
            )
        )
    for user in sorted(snapshot.users, key=lambda u: u.id):
        observations.append(doc.user_observation(user))
    keyed = doc.keyed(findings.findings)
    for key, finding in keyed:
        observations.append(
            doc.observation(
                "evidence",
                key,
                title=f"Evidence of {finding.rule_id}" + (f" for {finding.email}" if finding.email else ""),
                description=finding.explanation,
                props=[
                    doc.prop("rule-id", finding.rule_id),
                    *([doc.prop("user-id", str(finding.user_id))] if finding.user_id is not None else []),
                    *(doc.prop("evidence", f"{label}: {value}", cls="evidence") for label, value in finding.evidence),
                    *([doc.prop("suppressed-by", finding.suppressed_by.reason)] if finding.suppressed_by else []),
                ],
                finding=not finding.suppressed,
            )
        )
    for review in sorted(reviews, key=lambda r: (r.campaign_id, r.user_id)):
        observations.append(doc.review_observation(review))
    result_findings = [
        doc.finding(key, finding) for key, finding in keyed if not finding.suppressed
    ]
    result = ar.Result(
        uuid=doc.uuid("result"),
        title=f"Access review of {doc.account} at snapshot {snapshot.id}",
        description=(
            f"The rules of profile(s) {', '.join(findings.profiles)} evaluated over snapshot {snapshot.id} "
            f"of connection {snapshot.connection}, as of {exports.iso(findings.evaluated_at)}."
        ),
        start=snapshot.provenance.started_at,
        end=findings.evaluated_at,
        props=[doc.prop("snapshot-id", str(snapshot.id)), doc.prop("raw-data-sha256", doc.raw_sha256)],
        local_definitions=ar.LocalDefinitions1(
            components=[doc.subject_component()],
            assessment_assets=doc.assessment_assets(),
        ),
        reviewed_controls=doc.reviewed_controls(),
        observations=observations,
        findings=result_findings or None,
        remarks="\n".join(findings.limitations) or None,
    )
    results = ar.AssessmentResults(
        uuid=doc.uuid("assessment-results"),
        metadata=doc.metadata(f"Access review assessment results: {doc.account}, snapshot {snapshot.id}"),
        import_ap=ar.ImportAp(
            href=plan_href,
            remarks="A minimal assessment plan written alongside; see its remarks for what it does not hold.",
        ),
        results=[result],
    )
    return _to_bytes(results)


def assessment_plan(snapshot: Snapshot, findings: FindingsResult) -> bytes:
    """The minimal OSCAL Assessment Plan the results import (JSON bytes); see the module docstring."""
    from trestle.oscal import assessment_plan as ap
    from trestle.oscal import common

    doc = _Doc(snapshot, findings)
    plan = ap.AssessmentPlan(
        uuid=doc.uuid("assessment-plan"),
        metadata=doc.metadata(
            f"Access review assessment plan: {doc.account}, snapshot {snapshot.id}",
            remarks=(
                "Minimal plan: OSCAL assessment results must import one. No system security plan exists for "
                "this account; import-ssp names the account, not an SSP document."
            ),
        ),
        import_ssp=common.ImportSsp(
            href=doc.account_urn,
            remarks="No SSP: the CertCentral account this plan assesses, as a URN.",
        ),
        local_definitions=ap.LocalDefinitions(components=[doc.subject_component()]),
        reviewed_controls=doc.reviewed_controls(),
        assessment_subjects=[
            common.AssessmentSubjectAll(
                type="component",
                description="The CertCentral account's users, API keys, IP rules and guest access, as pulled.",
                include_all=common.IncludeAll(),
            )
        ],
        assessment_assets=doc.assessment_assets(),
    )
    return _to_bytes(plan)


def poam(snapshot: Snapshot, findings: FindingsResult) -> bytes | None:
    """The OSCAL POA&M of the open findings (JSON bytes); None when none is open."""
    from trestle.oscal import common
    from trestle.oscal import poam as pm

    doc = _Doc(snapshot, findings)
    keyed = [(key, finding) for key, finding in doc.keyed(findings.findings) if not finding.suppressed]
    if not keyed:
        return None
    items = [
        pm.PoamItem(
            uuid=doc.uuid("poam-item", key),
            title=finding.title + (f": {finding.email}" if finding.email else ""),
            description=f"{finding.explanation} Remediation: {finding.remediation}",
            props=[doc.prop("rule-id", finding.rule_id), doc.prop("severity", str(finding.severity)),
                   *doc.control_props(finding.rule_id)],
            related_findings=[pm.RelatedFinding(finding_uuid=doc.uuid("finding", key))],
        )
        for key, finding in keyed
    ]
    plan = pm.PlanOfActionAndMilestones(
        uuid=doc.uuid("poam"),
        metadata=doc.metadata(f"Plan of action and milestones: {doc.account}, snapshot {snapshot.id}"),
        system_id=common.SystemId(id=doc.account_urn),
        findings=[doc.finding(key, finding) for key, finding in keyed],
        poam_items=items,
    )
    return _to_bytes(plan)


class _Doc:
    """What every document of one evaluated snapshot shares: its uuid seed, times, account, subject."""

    def __init__(self, snapshot: Snapshot, findings: FindingsResult) -> None:
        self.snapshot = snapshot
        self.findings = findings
        self.raw_sha256 = exports.raw_data_digest(snapshot)
        self.seed = f"{snapshot.connection}/{snapshot.id}/{self.raw_sha256}"
        self.account = account_name(snapshot)
        account_id = snapshot.provenance.account_id
        self.account_urn = f"urn:certcentral-auditor:account:{account_id if account_id is not None else 'unknown'}"
        self.now: datetime = findings.evaluated_at
        self.user_ids = frozenset(user.id for user in snapshot.users)
        self.subject_uuid = self.uuid("subject")
        self.platform_uuid = self.uuid("platform")
        self._props: dict[tuple[str, str, str | None], common.Property] = {}
        self._shared: dict[str, Any] = {}

    def uuid(self, *parts: object) -> str:
        return derived_uuid(self.seed, *parts)

    def prop(self, name: str, value: str, *, cls: str | None = None) -> common.Property:
        """A property in this tool's namespace; one validated instance per (name, value, class)."""
        from trestle.oscal import common

        key = (name, value, cls)
        found = self._props.get(key)
        if found is None:
            found = self._props[key] = common.Property(name=name, value=_one_line(value), ns=PROP_NS, class_=cls)
        return found

    def control_props(self, rule_id: str) -> list[common.Property]:
        """One ``control-reference`` per built-in profile's reference for the rule, classed by profile."""
        return [
            self.prop("control-reference", control, cls=name)
            for name in _CITED_PROFILES
            for control in PROFILES[name].controls_for(rule_id)
        ]

    def metadata(self, title: str, *, remarks: str | None = None) -> common.Metadata:
        from trestle.oscal import OSCAL_VERSION, common

        return common.Metadata(
            title=title,
            last_modified=self.now,
            version=f"snapshot-{self.snapshot.id}",
            oscal_version=common.OscalVersion(OSCAL_VERSION),
            props=[self.prop("profiles", ", ".join(self.findings.profiles))],
            remarks=remarks,
        )

    def subject_component(self) -> common.SystemComponent:
        from trestle.oscal import common

        p = self.snapshot.provenance
        return common.SystemComponent(
            uuid=self.subject_uuid,
            type="service",
            title=f"DigiCert CertCentral account {self.account}",
            description=(
                f"Snapshot {self.snapshot.id} of connection {self.snapshot.connection}: "
                f"{len(self.snapshot.users)} user(s) pulled from {p.base_url} between "
                f"{exports.iso(p.started_at)} and {exports.iso(p.finished_at)}."
            ),
            props=[
                self.prop("snapshot-id", str(self.snapshot.id)),
                self.prop("raw-data-sha256", self.raw_sha256),
                self.prop("taken-at", exports.iso(self.snapshot.taken_at)),
                *([self.prop("account-id", str(p.account_id))] if p.account_id is not None else []),
            ],
            status=common.Status(state=common.SystemComponentOperationalStateValidValues.operational),
        )

    def assessment_assets(self) -> common.AssessmentAssets:
        from trestle.oscal import common

        return common.AssessmentAssets(
            assessment_platforms=[
                common.AssessmentPlatform(uuid=self.platform_uuid, title="certcentral-auditor")
            ]
        )

    def reviewed_controls(self) -> common.ReviewedControls:
        from trestle.oscal import common

        return common.ReviewedControls(
            description=f"The controls the rules of profile(s) {', '.join(self.findings.profiles)} give evidence for.",
            control_selections=[common.ControlSelectionsAll(include_all=common.IncludeAll())],
        )

    def observation(
        self,
        kind: str,
        key: str,
        *,
        title: str,
        description: str,
        props: list[common.Property],
        finding: bool = False,
        collected: datetime | None = None,
        evidence: str = "evidence/snapshot.json",
        evidence_description: str = "",
    ) -> common.Observation:
        from trestle.oscal import common

        if not self._shared:  # built once per document: every observation has the same origin and subject
            self._shared["origins"] = [
                common.Origin(
                    actors=[
                        common.OriginActor(
                            type=common.OriginActorValidValues.assessment_platform, actor_uuid=self.platform_uuid
                        )
                    ]
                )
            ]
            self._shared["subjects"] = [
                common.SubjectReference(
                    subject_uuid=self.subject_uuid,
                    type=common.SubjectReferenceValidValues.component,
                    title=_one_line(f"CertCentral account {self.account}, snapshot {self.snapshot.id}"),
                )
            ]
        return common.Observation(
            uuid=self.uuid("observation", kind, key),
            title=_one_line(title),
            description=description or title,
            props=props or None,
            methods=[_METHOD[kind]],
            types=[
                common.ObservationTypeValidValues.finding if finding
                else common.ObservationTypeValidValues.discovery
            ],
            origins=self._shared["origins"],
            subjects=self._shared["subjects"],
            relevant_evidence=[
                common.RelevantEvidence(
                    href=evidence,
                    description=evidence_description
                    or f"Snapshot {self.snapshot.id}, raw data SHA-256 {self.raw_sha256}.",
                )
            ],
            collected=collected or self.snapshot.taken_at,
        )

    def user_observation(self, user: User) -> common.Observation:
        roles = ", ".join(role.name for role in user.roles) or "none"
        last_login = exports.iso(user.last_login) if user.last_login is not None else "never"
        props = [
            self.prop("user-id", str(user.id)),
            self.prop("status", user.status or "unknown"),
            self.prop("roles", roles),
            self.prop("last-login", last_login),
        ]
        if user.email:
            props.insert(1, self.prop("email", user.email))
        if user.is_service_user:
            props.append(self.prop("service-user", "true"))
        return self.observation(
            "user",
            str(user.id),
            title=f"User {user.email or user.username or user.id}",
            description=(
                f"Account user {user.id}: status {user.status or 'unknown'}, roles {roles}, last sign-in {last_login}."
            ),
            props=props,
        )

    def review_observation(self, review: ReviewItem) -> common.Observation:
        props = [
            self.prop("campaign-id", str(review.campaign_id)),
            self.prop("user-id", str(review.user_id)),
            self.prop("decision", review.decision),
            self.prop("reviewer", review.reviewer or "unknown"),
            self.prop("remediation-state", review.state),
        ]
        if review.ticket.strip():
            props.append(self.prop("ticket", review.ticket))
        return self.observation(
            "review",
            f"{review.campaign_id}/{review.user_id}",
            title=f"Access review decision: {review.decision} {review.email}",
            description=(
                f"Campaign {review.campaign_id} (snapshot {review.snapshot_id}) decided {review.decision}"
                + (f" to {review.new_role}" if review.new_role else "")
                + f" for {review.email}; {review.justification.strip().rstrip('.') or 'no justification given'}."
            ),
            props=props,
            collected=review.closed_at,
            evidence=f"review/campaign-{review.campaign_id}/",
            evidence_description=f"The records of review campaign {review.campaign_id}, as the bundle carries them.",
        )

    def keyed(self, items: Sequence[Finding]) -> list[tuple[str, Finding]]:
        """Each finding with a stable key: rule, user and an ordinal among identical ones."""
        seen: dict[str, int] = {}
        out = []
        for finding in items:
            base = f"{finding.rule_id}/{finding.user_id if finding.user_id is not None else 'account'}"
            seen[base] = seen.get(base, 0) + 1
            out.append((f"{base}/{seen[base]}", finding))
        return out

    def finding(self, key: str, finding: Finding) -> common.Finding:
        from trestle.oscal import common

        related = [self.uuid("observation", "evidence", key), self.uuid("observation", "rule", finding.rule_id)]
        if finding.user_id is not None and finding.user_id in self.user_ids:
            related.append(self.uuid("observation", "user", str(finding.user_id)))
        return common.Finding(
            uuid=self.uuid("finding", key),
            title=_one_line(finding.title),
            description=f"{finding.explanation} Remediation: {finding.remediation}",
            props=[
                self.prop("rule-id", finding.rule_id),
                self.prop("severity", str(finding.severity)),
                *(self.prop("control", control, cls="selected-profiles") for control in finding.controls),
                *self.control_props(finding.rule_id),
            ],
            target=common.FindingTarget(
                type=common.FindingTargetTypeValidValues.objective_id,
                target_id=finding.rule_id,
                status=common.ObjectiveStatus(state=common.ObjectiveStatusStateValidValues.not_satisfied),
            ),
            related_observations=[common.RelatedObservation(observation_uuid=uuid) for uuid in related],
        )


def _one_line(text: str) -> str:
    """OSCAL titles and property values are single-line and not blank."""
    flat = " ".join(str(text).split())
    return flat or "-"


def _to_bytes(model: Any) -> bytes:
    """The document wrapped in its root key (``{"assessment-results": ...}``), as deterministic JSON.

    Dumped in Python mode (trestle's per-field JSON serializer runs in Python for each of some
    100,000 objects at 5,000 users) and written compact by the json module's C encoder, keys in the
    models' field order (fixed by the pinned trestle): ten times faster than an indented dump.
    Times are written as trestle does (ISO 8601 with ``+00:00``).
    """
    data = {_ROOT_KEYS[type(model).__name__]: model.model_dump(by_alias=True, exclude_none=True)}
    return (json.dumps(data, ensure_ascii=False, separators=(",", ":"), default=_json_value) + "\n").encode("utf-8")


def _json_value(value: object) -> object:
    """What a Python-mode dump leaves for JSON: datetimes, enums and URLs."""
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, enum.Enum):
        return value.value
    return str(value)  # pydantic's AnyUrl (the ``ns`` of a property)


#: Each document's root key, as OSCAL names it.
_ROOT_KEYS = {
    "AssessmentResults": "assessment-results",
    "AssessmentPlan": "assessment-plan",
    "PlanOfActionAndMilestones": "plan-of-action-and-milestones",
}
