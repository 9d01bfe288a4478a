"""The in-toto Statement a bundle signs (issue 19), and the bundles made before it.

``data/main-v2-{0,1}.zip`` were written by main at 9e1b2f2 (manifest version 2, the envelope
signing manifest.json itself) with test_evidence's ``build`` and key A; both verifiers must keep
reading them and say which format they read.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path

from test_evidence import KEY_A, REFERENCE, members_of, rewrite
from test_standalone_verifier import STANDALONE

from auditor.evidence import Envelope, ProblemKind, SigningKeys, format_report, verify_bundle, write_bundle
from auditor.evidence.bundle import checksums_file

DATA = Path(__file__).parent / "data"
OLD = [DATA / "main-v2-0.zip", DATA / "main-v2-1.zip"]


def test_a_bundle_made_by_the_previous_version_still_verifies_and_says_its_format() -> None:
    report = verify_bundle(OLD[1], trusted_keys=[KEY_A.public_key()], previous=[OLD[0]])

    assert report.ok, format_report(report)
    assert report.sequences == (0, 1)
    assert report.signed_format.startswith("certcentral-auditor manifest signed directly")
    assert "Signed statement: certcentral-auditor manifest signed directly" in format_report(report)
    assert report.timestamp_note == ""  # version 2 manifests say nothing about a TSA
    standalone = STANDALONE.verify(OLD[1], keys=[KEY_A.public_key()], previous=[OLD[0]])
    assert standalone["ok"] and standalone["problems"] == []
    assert standalone["format"].startswith("manifest signed directly")


def test_a_new_bundle_says_it_signs_an_in_toto_statement_and_that_no_tsa_was_configured(tmp_path: Path) -> None:
    path = write_bundle(REFERENCE, tmp_path / "new.zip")
    report = verify_bundle(path, trusted_keys=[KEY_A.public_key()])
    text = format_report(report)

    assert report.ok, text
    assert "Signed statement: in-toto Statement v1, predicate urn:certcentral-auditor:" in text
    assert "Trusted time: none: no time-stamping authority was configured at export" in text
    manifest = json.loads(members_of(path)["manifest.json"])
    assert manifest["timestamp"]["authority"] is None
    assert STANDALONE.verify(path, keys=[KEY_A.public_key()])["format"] == "in-toto Statement v1"


def test_a_statement_that_names_another_manifest_digest_fails_in_both_verifiers(tmp_path: Path) -> None:
    # The key holder signs a statement whose subjects describe other contents than manifest.json:
    # a consumer reading only the envelope would be misled, so the verifiers refuse the pair.
    intact = write_bundle(REFERENCE, tmp_path / "intact.zip")
    members = members_of(intact)
    envelope = json.loads(members["signature.json"])
    statement = json.loads(base64.b64decode(envelope["payload"]))
    statement["subject"][1]["digest"]["sha256"] = "0" * 64
    payload = json.dumps(statement).encode()
    members["signature.json"] = Envelope.sign(
        payload, payload_type=envelope["payloadType"], key=KEY_A, keyid=SigningKeys.fingerprint(KEY_A)
    ).to_json()
    manifest = json.loads(members["manifest.json"])
    controls = [(name, members[name]) for name in ("manifest.json", "signature.json", "signer.pub.pem")]
    members["SHA256SUMS"] = checksums_file(controls, [(e["path"], e["sha256"]) for e in manifest["files"]])
    forged = rewrite(intact, tmp_path / "forged.zip", members)

    report = verify_bundle(forged, trusted_keys=[KEY_A.public_key()])

    assert not report.ok
    assert [p.detail for p in report.failures if p.kind is ProblemKind.MODIFIED_FILE] == [
        "differs from the signed statement: its subjects are not the files the manifest lists"
    ]
    standalone = STANDALONE.verify(forged, keys=[KEY_A.public_key()])
    assert not standalone["ok"]
    assert ("modified-file", "forged.zip", "manifest.json", "differs from the signed statement") in standalone[
        "problems"
    ]
