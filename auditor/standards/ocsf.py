"""OCSF records of an evaluated snapshot, as JSON lines a SIEM ingests.

- One **Compliance Finding** (class 2003) per finding, open or suppressed (``status_id``
  Suppressed, with the exception's reason), built with py-ocsf-models' ``ComplianceFinding``.
- One **User Inventory Info** (class 5003, Discovery category) per user of the snapshot. py-ocsf-models
  has no class for it, so the record is built here to the OCSF 1.5.0 schema (the version
  py-ocsf-models targets, ``OCSF_VERSION``): the base event's required attributes plus ``user``.

Every record's ``time`` is the evaluation's (the snapshot's own time) and its ``metadata.uid`` a
uuid5 of the snapshot and the item, so two runs over one snapshot give the same lines.
py-ocsf-models (pydantic) is imported inside the function.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from auditor import __version__, exports
from auditor.models import Finding, FindingsResult, Severity, Snapshot, User
from auditor.report.data import account_name
from auditor.standards import derived_uuid

__all__ = ["OCSF_SCHEMA_VERSION", "USER_INVENTORY_CLASS_UID", "records", "to_jsonl"]

#: The OCSF schema version both record kinds follow (py-ocsf-models 0.10 targets it too).
OCSF_SCHEMA_VERSION = "1.5.0"
USER_INVENTORY_CLASS_UID = 5003
_DISCOVERY_CATEGORY_UID = 5
_COLLECT = 2  #: Discovery activity_id "Collect": the information was collected by a process (a pull).
#: OCSF severity_id: 1 Informational, 2 Low, 3 Medium, 4 High, 5 Critical.
_SEVERITY_ID = {Severity.INFO: 1, Severity.LOW: 2, Severity.MEDIUM: 3, Severity.HIGH: 4, Severity.CRITICAL: 5}
#: OCSF user type_id: 1 User, 2 Admin, 3 System.
_USER, _ADMIN, _SYSTEM = 1, 2, 3


def to_jsonl(snapshot: Snapshot, findings: FindingsResult) -> bytes:
    """The records as JSON lines (one compact, key-sorted object per line): findings, then users."""
    return b"".join(
        (json.dumps(record, sort_keys=True, ensure_ascii=False, separators=(",", ":")) + "\n").encode("utf-8")
        for record in records(snapshot, findings)
    )


def records(snapshot: Snapshot, findings: FindingsResult) -> list[dict[str, Any]]:
    """Every record as a JSON-ready dict: one Compliance Finding per finding, one User Inventory Info per user."""
    seed = f"{snapshot.connection}/{snapshot.id}/{exports.raw_data_digest(snapshot)}"
    product = {"name": "certcentral-auditor", "vendor_name": "certcentral-auditor", "version": __version__}
    time_ms = _millis(findings.evaluated_at)
    out: list[dict[str, Any]] = []
    seen: dict[str, int] = {}
    for finding in findings.findings:
        base = f"{finding.rule_id}/{finding.user_id if finding.user_id is not None else 'account'}"
        seen[base] = seen.get(base, 0) + 1
        out.append(_compliance_finding(finding, uid=derived_uuid(seed, "ocsf-finding", base, seen[base]),
                                       product=product, time_ms=time_ms, snapshot=snapshot))
    account = {"uid": str(snapshot.provenance.account_id or snapshot.connection), "name": account_name(snapshot),
               "type": "DigiCert CertCentral", "type_id": 99}
    for user in sorted(snapshot.users, key=lambda u: u.id):
        out.append(_user_inventory(user, uid=derived_uuid(seed, "ocsf-user", user.id), product=product,
                                   time_ms=time_ms, account=account, snapshot=snapshot))
    return out


def _compliance_finding(
    finding: Finding, *, uid: str, product: dict[str, str], time_ms: int, snapshot: Snapshot
) -> dict[str, Any]:
    from py_ocsf_models.events.base_event import SeverityID, StatusID
    from py_ocsf_models.events.findings.activity_id import ActivityID
    from py_ocsf_models.events.findings.compliance_finding import ComplianceFinding
    from py_ocsf_models.events.findings.compliance_finding_type_id import ComplianceFindingTypeID
    from py_ocsf_models.objects.compliance import Compliance
    from py_ocsf_models.objects.compliance_status import StatusID as ComplianceStatusID
    from py_ocsf_models.objects.finding_info import FindingInformation
    from py_ocsf_models.objects.metadata import Metadata
    from py_ocsf_models.objects.product import Product
    from py_ocsf_models.objects.remediation import Remediation
    from py_ocsf_models.objects.resource_details import ResourceDetails

    severity_id = SeverityID(_SEVERITY_ID[finding.severity])
    resource = (
        ResourceDetails(type="CertCentral user", uid=str(finding.user_id), name=finding.email or None)
        if finding.user_id is not None
        else ResourceDetails(type="CertCentral account", uid=str(snapshot.provenance.account_id or snapshot.connection),
                             name=account_name(snapshot))
    )
    suppressed = finding.suppressed_by
    event = ComplianceFinding(
        activity_id=ActivityID.Create,
        activity_name="Create",
        class_name="Compliance Finding",
        type_uid=ComplianceFindingTypeID.Create,
        type_name="Compliance Finding: Create",
        severity_id=severity_id,
        severity=severity_id.name,
        status_id=StatusID.Suppressed if suppressed else StatusID.New,
        status="Suppressed" if suppressed else "New",
        status_detail=f"Exception: {suppressed.reason}" if suppressed else None,
        message=finding.explanation,
        time=time_ms,
        metadata=Metadata(uid=uid, product=Product(**product), version=OCSF_SCHEMA_VERSION,
                          correlation_uid=f"snapshot-{snapshot.id}"),
        finding_info=FindingInformation(uid=uid, title=finding.title, desc=finding.explanation,
                                        types=[finding.rule_id], created_time=time_ms),
        compliance=Compliance(
            control=finding.rule_id,
            requirements=list(finding.controls) or None,
            standards=sorted({control.rsplit(" ", 1)[0] for control in finding.controls}) or None,
            status_id=ComplianceStatusID.Fail,
            desc=finding.title,
        ),
        remediation=Remediation(desc=finding.remediation),
        resources=[resource],
        unmapped={"evidence": dict(finding.evidence)} if finding.evidence else None,
    )
    dumped: dict[str, Any] = event.model_dump(mode="json", exclude_none=True)
    return dumped


def _user_inventory(
    user: User, *, uid: str, product: dict[str, str], time_ms: int, account: dict[str, Any], snapshot: Snapshot
) -> dict[str, Any]:
    """A User Inventory Info record (OCSF 1.5.0 ``user_inventory``) of one user."""
    roles = [role.name for role in user.roles]
    type_id = _SYSTEM if user.is_service_user else _ADMIN if user.is_admin else _USER
    name = " ".join(part for part in (user.first_name, user.last_name) if part) or user.username or user.email
    record_user: dict[str, Any] = {
        "uid": str(user.id),
        "name": name or str(user.id),
        "type_id": type_id,
        "type": {_USER: "User", _ADMIN: "Admin", _SYSTEM: "System"}[type_id],
        "account": account,
        "groups": [{"name": role, "type": "CertCentral role"} for role in roles],
    }
    if user.email:
        record_user["email_addr"] = user.email
    if user.division is not None:
        record_user["org"] = {"name": user.division.name, "uid": str(user.division.id)}
    unmapped: dict[str, Any] = {"status": user.status, "snapshot_id": snapshot.id}
    if user.last_login is not None:
        unmapped["last_login"] = exports.iso(user.last_login)
    return {
        "activity_id": _COLLECT,
        "activity_name": "Collect",
        "category_uid": _DISCOVERY_CATEGORY_UID,
        "category_name": "Discovery",
        "class_uid": USER_INVENTORY_CLASS_UID,
        "class_name": "User Inventory Info",
        "type_uid": USER_INVENTORY_CLASS_UID * 100 + _COLLECT,
        "type_name": "User Inventory Info: Collect",
        "severity_id": 1,
        "severity": "Informational",
        "time": time_ms,
        "metadata": {"uid": uid, "product": product, "version": OCSF_SCHEMA_VERSION,
                     "correlation_uid": f"snapshot-{snapshot.id}"},
        "user": record_user,
        "unmapped": unmapped,
    }


def _millis(moment: datetime) -> int:
    """OCSF ``timestamp_t``: milliseconds since the epoch."""
    return int(moment.timestamp() * 1000)
