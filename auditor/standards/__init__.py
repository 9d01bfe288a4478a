"""Standards-native views of an evaluated snapshot (issue 19): NIST OSCAL and OCSF.

``oscal`` writes an Assessment Results document (with the minimal Assessment Plan it imports)
and a POA&M with compliance-trestle's models; ``ocsf`` writes JSON lines (Compliance Finding
with py-ocsf-models, User Inventory Info to the OCSF 1.5.0 schema). Both take the snapshot and
its ``FindingsResult`` and return bytes: no store, no client, no clock (time is the evaluation's).
Their libraries (pydantic and, for trestle, some thirty packages) load only when a command
writes one of these formats, so this package imports neither at module level.
"""

from __future__ import annotations

import enum
import uuid

__all__ = ["NAMESPACE", "StandardsFormat", "derived_uuid"]

#: The namespace every uuid of these documents is derived in (uuid5), so a re-run gives the same ids.
NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "urn:certcentral-auditor:standards")


class StandardsFormat(enum.StrEnum):
    """The standards formats ``findings``, ``report`` and ``run`` accept in ``--format``."""

    OSCAL = "oscal"
    OCSF = "ocsf"


def derived_uuid(*parts: object) -> str:
    """A stable uuid5 for ``parts`` (e.g. the document seed, "finding", its position)."""
    return str(uuid.uuid5(NAMESPACE, "/".join(str(part) for part in parts)))
