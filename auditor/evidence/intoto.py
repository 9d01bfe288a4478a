"""The in-toto Statement v1 that a bundle's DSSE envelope signs (issue 19).

Spec: https://github.com/in-toto/attestation/blob/main/spec/v1/statement.md. The subjects are
``manifest.json`` and every file the manifest lists, each with its SHA-256; the predicate
(:data:`PREDICATE_TYPE`) carries the manifest itself, so supply-chain tooling that reads only
the envelope sees what was exported. The statement binds ``manifest.json`` by digest, so the
verifier still checks the exact bytes written, never a re-serialised object.

Bundles before manifest version 3 signed ``manifest.json`` directly (payload type
:data:`LEGACY_PAYLOAD_TYPE`); :func:`read_statement` tells the verifier which one it holds.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from auditor.evidence.dsse import MANIFEST_PAYLOAD_TYPE
from auditor.evidence.layout import load_json

__all__ = [
    "LEGACY_PAYLOAD_TYPE",
    "MANIFEST_SUBJECT",
    "PAYLOAD_TYPE",
    "PREDICATE_TYPE",
    "STATEMENT_TYPE",
    "Statement",
    "format_name",
    "read_statement",
    "statement_bytes",
]

STATEMENT_TYPE = "https://in-toto.io/Statement/v1"
#: The DSSE payload type in-toto prescribes for a Statement.
PAYLOAD_TYPE = "application/vnd.in-toto+json"
#: This project's predicate: a certcentral-auditor evidence manifest, version 1 of its shape.
#: A URN, since the project owns no domain the type could resolve under.
PREDICATE_TYPE = "urn:certcentral-auditor:predicate:evidence-manifest:v1"
#: What manifest versions 1 and 2 signed: the manifest bytes themselves.
LEGACY_PAYLOAD_TYPE = MANIFEST_PAYLOAD_TYPE
#: The subject name of the manifest file itself.
MANIFEST_SUBJECT = "manifest.json"


def format_name(payload_type: str) -> str:
    """What the verifier says it read: the statement format of an envelope's payload type."""
    if payload_type == PAYLOAD_TYPE:
        return f"in-toto Statement v1, predicate {PREDICATE_TYPE}"
    if payload_type == LEGACY_PAYLOAD_TYPE:
        return "certcentral-auditor manifest signed directly (bundles before manifest version 3)"
    return f"unknown payload type {payload_type!r}"


def statement_bytes(manifest: Mapping[str, Any], manifest_bytes: bytes) -> bytes:
    """The Statement over ``manifest_bytes`` (the exact ``manifest.json``) and every file it lists.

    ``manifest`` is the document ``manifest_bytes`` serialises; it has passed ``canonical_json``,
    so it is plain JSON. Written in the manifest's serialisation: sorted keys, ASCII, LF.
    """
    subjects = [{"name": MANIFEST_SUBJECT, "digest": {"sha256": hashlib.sha256(manifest_bytes).hexdigest()}}]
    subjects.extend({"name": entry["path"], "digest": {"sha256": entry["sha256"]}} for entry in manifest["files"])
    document = {
        "_type": STATEMENT_TYPE,
        "subject": subjects,
        "predicateType": PREDICATE_TYPE,
        "predicate": {"manifest": manifest},
    }
    return (json.dumps(document, sort_keys=True, indent=2, ensure_ascii=True, allow_nan=False) + "\n").encode(
        "ascii"
    )


@dataclass(frozen=True, slots=True)
class Statement:
    """A Statement as read back: its subjects (name -> SHA-256) and the manifest it carries."""

    subjects: dict[str, str]
    manifest: dict[str, Any]

    def problems_with(self, manifest_bytes: bytes, manifest: Mapping[str, Any]) -> list[str]:
        """Where the statement disagrees with ``manifest.json`` (empty: it describes exactly that file)."""
        problems = []
        if self.subjects.get(MANIFEST_SUBJECT) != hashlib.sha256(manifest_bytes).hexdigest():
            problems.append("its manifest.json subject has another SHA-256")
        if self.manifest != manifest:
            problems.append("its predicate carries another manifest")
        files = manifest.get("files")
        listed = {entry["path"]: entry["sha256"] for entry in files} if isinstance(files, list) else {}
        if {name: digest for name, digest in self.subjects.items() if name != MANIFEST_SUBJECT} != listed:
            problems.append("its subjects are not the files the manifest lists")
        return problems


def read_statement(payload: bytes) -> Statement | str:
    """The Statement in a DSSE payload, or why it is not one this tool wrote."""
    try:
        document = load_json(payload)
    except ValueError as exc:
        return str(exc)
    if not isinstance(document, dict) or document.get("_type") != STATEMENT_TYPE:
        return f"not an in-toto Statement v1 (_type must be {STATEMENT_TYPE})"
    if document.get("predicateType") != PREDICATE_TYPE:
        return f"predicateType {document.get('predicateType')!r} is not {PREDICATE_TYPE}"
    subjects = document.get("subject")
    if not isinstance(subjects, list) or not subjects:
        return "the statement has no subjects"
    digests: dict[str, str] = {}
    for subject in subjects:
        if not isinstance(subject, dict) or not isinstance(subject.get("name"), str):
            return "a subject has no name"
        digest = subject.get("digest")
        if not isinstance(digest, dict) or not isinstance(digest.get("sha256"), str):
            return f"subject {subject['name']!r} has no SHA-256 digest"
        if subject["name"] in digests:
            return f"subject {subject['name']!r} is named twice"
        digests[subject["name"]] = digest["sha256"]
    predicate = document.get("predicate")
    if not isinstance(predicate, dict) or not isinstance(predicate.get("manifest"), dict):
        return "the predicate carries no manifest"
    return Statement(subjects=digests, manifest=predicate["manifest"])
