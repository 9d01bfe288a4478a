"""What a bundle's manifest records of the rules' inputs: the rule settings and the identity source.

Export writes these into the manifest's context; ``verify --reperform`` computes them again from
the recorded rule inputs and compares, so both call the functions here.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from auditor.config import AuditConfig
    from auditor.identity import IdentitySource

__all__ = ["identity_evidence", "rule_settings"]


def identity_evidence(source: IdentitySource | None, *, included: bool) -> dict[str, Any] | None:
    """The manifest's record of the identity source: names, SHA-256, rows, export time, mapping."""
    if source is None:
        return None
    return {**source.evidence(), "files_in_bundle": included}


def rule_settings(config: AuditConfig) -> dict[str, Any]:
    """The configuration the rules ran with, as the manifest records it (issue 12 §1)."""
    return {
        "threshold_days": asdict(config.thresholds),
        "thresholds_set_by_policy": list(config.overridden),
        "privileged_roles": list(config.privileged_roles),
        "allowed_domains": list(config.allowed_domains),
        "shared_mailbox_patterns": list(config.shared_mailbox_patterns),
        "max_admins": config.max_admins,
        "exceptions": len(config.exceptions),
        "config_file": config.source.name if config.source is not None else None,
        "identity_break_glass": [{"user": e.user, "reason": e.reason} for e in config.identity.break_glass],
    }
