"""Evidence bundles: what an auditor's `verify` sees when a bundle is intact, altered or out of chain."""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import io
import json
import re
import stat
import tempfile
import warnings
import zipfile
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis_profile import examples

from auditor.credentials import MasterKey
from auditor.errors import EvidenceError, ExitCode
from auditor.evidence import (
    DOES_NOT_PROVE,
    MANIFEST_PAYLOAD_TYPE,
    PRIVATE_KEY_CONTEXT,
    REQUIRED_CONTEXT_KEYS,
    ActiveKey,
    Bundle,
    BundleContents,
    ChainPosition,
    Envelope,
    Problem,
    ProblemKind,
    SigningKeys,
    VerificationReport,
    active_signing_key,
    build_bundle,
    bundle_context,
    contents_from,
    format_report,
    load_public_keys,
    manifest_sha256,
    pae,
    rotate_signing_key,
    verify_bundle,
    write_bundle,
)
from auditor.models import (
    Attestation,
    AttestationKind,
    Change,
    ChangeKind,
    ChangeSet,
    ExceptionEntry,
    Finding,
    FindingsResult,
    PullProvenance,
    RawPage,
    Role,
    Severity,
    Snapshot,
    User,
)

KEY_A = Ed25519PrivateKey.from_private_bytes(hashlib.sha256(b"evidence key A").digest())
KEY_B = Ed25519PrivateKey.from_private_bytes(hashlib.sha256(b"evidence key B").digest())
T0 = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)
CONTROL = ("manifest.json", "signature.json", "signer.pub.pem", "SHA256SUMS")


def page(endpoint: str, body: bytes, *, at: datetime = T0) -> RawPage:
    return RawPage(endpoint, 200, body, hashlib.sha256(body).hexdigest(), at)


def contents(tag: str = "", *, reports: bool = True) -> BundleContents:
    return BundleContents(
        raw_pages=(
            page("/user?limit=500&offset=0", b'{"users":[{"id":1,"email":"a@example.com"}]' + tag.encode() + b"}"),
            page("/user/api-only?limit=500&offset=0", b'{"users":[]}'),
        ),
        snapshot_json=b'{"format":"certcentral-auditor-snapshot/1"}\n',
        findings_json=b'{"findings":[]}\n',
        findings_csv=b"\xef\xbb\xbfrule,severity\r\n",
        changes_json=b'{"changes":[]}\n',
        changes_csv=b"\xef\xbb\xbfkind,user_id\r\n",
        exceptions_json=b'{"exceptions":[]}\n',
        exceptions_csv=b"\xef\xbb\xbfrule,user\r\n",
        attestations_json=b'{"attestations":[]}\n',
        attestations_csv=b"\xef\xbb\xbfid,kind\r\n",
        workbook_xlsx=b"PK\x03\x04 not really a workbook",
        users_csv=b"\xef\xbb\xbfuser_id,email\r\n1,a@example.com\r\n",
        report_html=b"<!doctype html><title>Access review</title>" if reports else None,
        report_pdf=b"%PDF-1.7\n%%EOF\n" if reports else None,
    )


def context(started: datetime = T0, **overrides: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "account_id": 1696530,
        "base_url": "https://www.digicert.com/services/v2",
        "pull_started_at": started,
        "pull_finished_at": started + timedelta(minutes=2),
        "tool_version": "0.1.0",
        "profiles": ["pci-dss-4"],
        "thresholds": [{"threshold": "inactive user", "value": "90 days", "source": "PCI DSS 8.2.6"}],
        "record_counts": {"users": 1, "raw_pages": 2},
        "pull_complete": True,
        "retention": {"profile": "pci-dss-4", "period": "12 months"},
    }
    base.update(overrides)
    return base


def build(
    chain: ChainPosition,
    *,
    key: Ed25519PrivateKey = KEY_A,
    tag: str = "",
    now: datetime = T0,
    valid_from: datetime = T0,
    reports: bool = True,
) -> Bundle:
    return build_bundle(
        contents(tag, reports=reports),
        signer=key,
        chain=chain,
        context=context(now),
        now=now + timedelta(minutes=5),
        key_valid_from=valid_from,
    )


def genesis(chain_id: str = "chain-1") -> ChainPosition:
    return ChainPosition.start(reason="first export for this connection", chain_id=chain_id)


def next_position(bundle: Bundle) -> ChainPosition:
    return ChainPosition(
        chain_id=bundle.chain.chain_id,
        sequence=bundle.chain.sequence + 1,
        previous_manifest_sha256=bundle.manifest_sha256,
        previous_signature=bundle.signature,
        previous_key_fingerprint=bundle.key_fingerprint,
    )


def chain_of(count: int, directory: Path, *, keys: Callable[[int], Ed25519PrivateKey] = lambda _: KEY_A) -> list[Path]:
    paths: list[Path] = []
    position = genesis()
    for index in range(count):
        moment = T0 + timedelta(days=index)
        bundle = build(position, key=keys(index), tag=str(index), now=moment, valid_from=T0)
        paths.append(write_bundle(bundle, directory / f"bundle-{index}.zip"))
        position = next_position(bundle)
    return paths


def members_of(path: Path) -> dict[str, bytes]:
    with zipfile.ZipFile(path) as archive:
        return {name: archive.read(name) for name in archive.namelist()}


def rewrite(source: Path, target: Path, members: Mapping[str, bytes]) -> Path:
    """A new ZIP with exactly ``members`` (as an attacker with a ZIP tool would make it)."""
    with zipfile.ZipFile(target, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return target


def flip(data: bytes, position: int) -> bytes:
    index = position % len(data)
    return data[:index] + bytes([data[index] ^ 0xFF]) + data[index + 1 :]


def subjects(report: VerificationReport, kind: ProblemKind) -> set[str]:
    return {problem.subject for problem in report.problems if problem.kind is kind}


REFERENCE = build(genesis())
REFERENCE_MEMBERS = tuple(zipfile.ZipFile(io.BytesIO(REFERENCE.data)).namelist())
LISTED = tuple(name for name in REFERENCE_MEMBERS if name not in CONTROL)


@pytest.fixture
def intact(tmp_path: Path) -> Path:
    return write_bundle(REFERENCE, tmp_path / "evidence.zip")


# -- an intact bundle -----------------------------------------------------------------------


def test_an_intact_bundle_without_a_trust_root_is_not_trusted(intact: Path) -> None:
    report = verify_bundle(intact)

    assert not report.ok and report.kinds() == {ProblemKind.SIGNER_NOT_TRUSTED}
    assert "signature valid, signer not trusted" in format_report(report)


def test_an_intact_bundle_verifies_unpinned_only_as_integrity_and_says_so_first(intact: Path) -> None:
    report = verify_bundle(intact, allow_unpinned=True)

    assert report.ok, format_report(report)
    assert report.kinds() == {ProblemKind.SIGNER_NOT_PINNED}
    assert format_report(report).startswith("INTEGRITY ONLY (--allow-unpinned)")
    assert not report.signer_pinned
    assert report.signer_fingerprint == SigningKeys.fingerprint(KEY_A)
    assert report.genesis is True and report.sequence == 0 and report.chain_id == "chain-1"
    assert report.manifest_sha256 == hashlib.sha256(members_of(intact)["manifest.json"]).hexdigest()
    assert report.covered_from == T0 and report.covered_until == T0 + timedelta(minutes=2)
    assert report.files_checked == len(LISTED)
    text = format_report(report)
    assert "INTACT" in text and "NOT pinned" in text and report.manifest_sha256 in text


def test_a_pinned_signer_verifies_without_warnings(intact: Path) -> None:
    report = verify_bundle(intact, trusted_keys=[KEY_B.public_key(), KEY_A.public_key()])

    assert report.ok and report.problems == ()
    assert report.signer_pinned and report.trust_root == "pinned key"


def test_the_manifest_lists_every_member_with_hash_size_type_and_role(intact: Path) -> None:
    members = members_of(intact)
    manifest = json.loads(members["manifest.json"])

    assert list(members)[:4] == list(CONTROL)
    assert [entry["path"] for entry in manifest["files"]] == list(members)[4:]
    for entry in manifest["files"]:
        data = members[entry["path"]]
        assert entry["sha256"] == hashlib.sha256(data).hexdigest()
        assert entry["size"] == len(data)
        assert entry["media_type"]
        expected_role = "primary-evidence" if entry["path"].startswith("evidence/raw/") else "view"
        assert entry["role"] == expected_role
    raw = [entry for entry in manifest["files"] if entry["role"] == "primary-evidence"]
    assert [entry["path"] for entry in raw] == [
        "evidence/raw/0001-user-limit-500-offset-0.json",
        "evidence/raw/0002-user-api-only-limit-500-offset-0.json",
    ]
    assert raw[0]["endpoint"] == "/user?limit=500&offset=0"
    assert {"report/report.html", "report/report.pdf", "views/access-review.xlsx"} <= set(members)


def test_the_manifest_binds_context_retention_chain_key_period_and_its_limits(intact: Path) -> None:
    manifest = json.loads(members_of(intact)["manifest.json"])

    assert manifest["format"] == "certcentral-auditor-evidence" and manifest["version"] == 3
    assert set(REQUIRED_CONTEXT_KEYS) - {"retention"} <= set(manifest["context"])
    assert manifest["context"]["pull_started_at"] == "2026-11-01T12:00:00+00:00"
    assert manifest["context"]["pull_complete"] is True
    assert manifest["retention"] == {"profile": "pci-dss-4", "period": "12 months"}
    assert manifest["chain"] == {
        "chain_id": "chain-1",
        "sequence": 0,
        "genesis": True,
        "new_chain_reason": "first export for this connection",
        "previous_manifest_sha256": None,
        "previous_signature": None,
        "previous_key_fingerprint": None,
    }
    assert manifest["signing_key"]["fingerprint"] == SigningKeys.fingerprint(KEY_A)
    assert manifest["signing_key"]["valid_from"] == "2026-11-01T12:00:00+00:00"
    assert manifest["created_at"] == "2026-11-01T12:05:00+00:00"
    assert manifest["does_not_prove"] == list(DOES_NOT_PROVE)
    joined = " ".join(DOES_NOT_PROVE)
    assert "every user" in joined and "multi-factor" in joined and "misused" in joined


def test_the_signature_is_dsse_over_an_in_toto_statement_that_binds_the_manifest(intact: Path) -> None:
    from google.protobuf import json_format
    from in_toto_attestation.v1 import statement, statement_pb2

    members = members_of(intact)
    envelope = json.loads(members["signature.json"])
    public = serialization.load_pem_public_key(members["signer.pub.pem"])
    payload = base64.b64decode(envelope["payload"])
    document = json.loads(payload)

    assert envelope["payloadType"] == "application/vnd.in-toto+json"
    assert document["_type"] == "https://in-toto.io/Statement/v1"
    assert document["predicateType"] == "urn:certcentral-auditor:predicate:evidence-manifest:v1"
    manifest = json.loads(members["manifest.json"])
    assert document["predicate"] == {"manifest": manifest}
    subjects = {subject["name"]: subject["digest"]["sha256"] for subject in document["subject"]}
    assert subjects.pop("manifest.json") == hashlib.sha256(members["manifest.json"]).hexdigest()
    assert subjects == {name: hashlib.sha256(data).hexdigest() for name, data in members.items() if name not in CONTROL}
    # The in-toto project's own model of a v1 Statement accepts it.
    statement.Statement.copy_from_pb(json_format.Parse(payload, statement_pb2.Statement())).validate()
    assert envelope["signatures"][0]["keyid"] == SigningKeys.fingerprint(KEY_A)
    kind = envelope["payloadType"].encode()
    signed = b"DSSEv1 %d %s %d %s" % (len(kind), kind, len(payload), payload)
    assert isinstance(public, type(KEY_A.public_key()))
    public.verify(base64.b64decode(envelope["signatures"][0]["sig"]), signed)  # raises if not


def test_pae_matches_the_dsse_specification_example() -> None:
    # https://github.com/secure-systems-lab/dsse/blob/master/protocol.md (test vector)
    assert pae("http://example.com/HelloWorld", b"hello world") == (
        b"DSSEv1 29 http://example.com/HelloWorld 11 hello world"
    )


def test_the_same_inputs_give_the_same_zip_with_fixed_timestamps() -> None:
    again = build(genesis())

    assert again.data == REFERENCE.data
    infos = zipfile.ZipFile(io.BytesIO(again.data)).infolist()
    assert {info.date_time for info in infos} == {(2026, 11, 1, 12, 5, 0)}
    assert {(info.create_system, info.external_attr >> 16) for info in infos} == {(3, 0o100644)}
    assert manifest_sha256(again) == hashlib.sha256(again.manifest).hexdigest()


def test_reports_are_optional() -> None:
    bundle = build(genesis(), reports=False)
    names = zipfile.ZipFile(io.BytesIO(bundle.data)).namelist()
    assert not any(name.startswith("report/") for name in names)
    with tempfile.TemporaryDirectory() as directory:
        assert verify_bundle(write_bundle(bundle, Path(directory) / "b.zip"), trusted_keys=[KEY_A.public_key()]).ok


# -- tampering --------------------------------------------------------------------------------


@pytest.mark.parametrize("position", [0, 97, -1])
@pytest.mark.parametrize("member", REFERENCE_MEMBERS)
def test_flipping_one_byte_of_any_member_names_that_member(
    intact: Path, tmp_path: Path, member: str, position: int
) -> None:
    members = members_of(intact)
    members[member] = flip(members[member], position)

    report = verify_bundle(rewrite(intact, tmp_path / "tampered.zip", members))

    assert not report.ok
    named = {problem.subject for problem in report.failures}
    assert member in named, format_report(report)
    if member in LISTED:
        assert subjects(report, ProblemKind.MODIFIED_FILE) == {member}


@pytest.mark.parametrize("member", ["evidence/raw/0001-user-limit-500-offset-0.json", "views/findings.csv"])
def test_a_byte_flipped_inside_the_zip_itself_is_named(intact: Path, tmp_path: Path, member: str) -> None:
    data = bytearray(intact.read_bytes())
    info = zipfile.ZipFile(intact).getinfo(member)
    name_length = int.from_bytes(data[info.header_offset + 26 : info.header_offset + 28], "little")
    extra_length = int.from_bytes(data[info.header_offset + 28 : info.header_offset + 30], "little")
    start = info.header_offset + 30 + name_length + extra_length
    data[start + info.compress_size // 2] ^= 0xFF
    tampered = tmp_path / "tampered.zip"
    tampered.write_bytes(bytes(data))

    report = verify_bundle(tampered)

    assert subjects(report, ProblemKind.MODIFIED_FILE) == {member}
    assert not report.ok


@pytest.mark.parametrize("member", REFERENCE_MEMBERS)
def test_a_removed_member_is_reported_missing(intact: Path, tmp_path: Path, member: str) -> None:
    members = members_of(intact)
    del members[member]

    report = verify_bundle(rewrite(intact, tmp_path / "short.zip", members))

    assert subjects(report, ProblemKind.MISSING_FILE) == {member}
    assert not report.ok


def test_an_added_member_is_reported_unexpected(intact: Path, tmp_path: Path) -> None:
    members = members_of(intact)
    members["views/extra-findings.csv"] = b"=cmd()"

    report = verify_bundle(rewrite(intact, tmp_path / "extra.zip", members), trusted_keys=[KEY_A.public_key()])

    assert report.kinds() == {ProblemKind.UNEXPECTED_FILE}
    assert subjects(report, ProblemKind.UNEXPECTED_FILE) == {"views/extra-findings.csv"}
    assert not report.ok


def test_a_second_member_with_a_listed_name_is_reported(intact: Path, tmp_path: Path) -> None:
    shadowed = tmp_path / "shadowed.zip"
    shadowed.write_bytes(intact.read_bytes())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # zipfile warns about the duplicate name
        with zipfile.ZipFile(shadowed, "a") as archive:
            archive.writestr("views/findings.csv", b"other content")

    report = verify_bundle(shadowed)

    # A duplicate name is a layout problem: nothing is inflated (other readers pick other copies).
    assert "views/findings.csv" in subjects(report, ProblemKind.NONCANONICAL_ZIP)
    assert report.files_checked == 0 and not report.ok


def test_re_signing_with_another_key_is_an_unknown_key_when_pinned(intact: Path, tmp_path: Path) -> None:
    members = members_of(intact)
    resigned = Envelope.sign(
        members["manifest.json"],
        payload_type=MANIFEST_PAYLOAD_TYPE,
        key=KEY_B,
        keyid=SigningKeys.fingerprint(KEY_B),
    )
    members["signature.json"] = resigned.to_json()
    members["signer.pub.pem"] = SigningKeys.public_pem(KEY_B).encode()
    forged = rewrite(intact, tmp_path / "forged.zip", members)

    pinned = verify_bundle(forged, trusted_keys=[KEY_A.public_key()])
    unpinned = verify_bundle(forged)

    assert subjects(pinned, ProblemKind.UNKNOWN_KEY) == {SigningKeys.fingerprint(KEY_B)}
    assert not pinned.ok
    # Without a pinned key the signature verifies, but not with the key the manifest names.
    assert ProblemKind.SIGNER_MISMATCH in unpinned.kinds()
    assert ProblemKind.BAD_SIGNATURE not in unpinned.kinds()
    assert not unpinned.ok


def test_a_signature_by_another_key_over_the_enclosed_key_is_a_bad_signature(intact: Path, tmp_path: Path) -> None:
    members = members_of(intact)
    members["signature.json"] = Envelope.sign(
        members["manifest.json"],
        payload_type=MANIFEST_PAYLOAD_TYPE,
        key=KEY_B,
        keyid=SigningKeys.fingerprint(KEY_A),
    ).to_json()
    forged = rewrite(intact, tmp_path / "forged.zip", members)

    assert subjects(verify_bundle(forged), ProblemKind.BAD_SIGNATURE) == {"signature.json"}
    assert ProblemKind.BAD_SIGNATURE in verify_bundle(forged, trusted_keys=[KEY_A.public_key()]).kinds()


def test_a_payload_type_swap_breaks_the_signature(intact: Path, tmp_path: Path) -> None:
    members = members_of(intact)
    envelope = json.loads(members["signature.json"])
    envelope["payloadType"] = "application/json"
    members["signature.json"] = json.dumps(envelope).encode()

    report = verify_bundle(rewrite(intact, tmp_path / "retyped.zip", members))

    assert subjects(report, ProblemKind.BAD_SIGNATURE) == {"signature.json"}


def test_a_wholly_rebuilt_bundle_is_caught_only_by_pinning_or_the_chain(tmp_path: Path) -> None:
    # The key holder limit (controls.md §3.8): a rebuild with another key is self-consistent.
    first = build(genesis())
    original = build(next_position(first), tag="1")
    rebuilt = build(next_position(first), key=KEY_B, tag="1")
    previous = write_bundle(first, tmp_path / "0.zip")
    path = write_bundle(rebuilt, tmp_path / "1.zip")

    alone = verify_bundle(path, allow_unpinned=True)
    assert alone.ok and alone.kinds() == {ProblemKind.SIGNER_NOT_PINNED}
    assert not verify_bundle(path).ok  # fail closed: a valid signature by an unknown signer
    assert alone.manifest_sha256 != original.manifest_sha256  # what the sent hash exposes
    assert ProblemKind.SIGNER_CHANGED in verify_bundle(path, previous=[previous]).kinds()
    assert not verify_bundle(path, trusted_keys=[KEY_A.public_key()], previous=[previous]).ok


def test_a_manifest_that_is_not_a_manifest_is_reported_unparseable(intact: Path, tmp_path: Path) -> None:
    members = members_of(intact)
    members["manifest.json"] = b'{"format": "something else"}'
    members["signature.json"] = Envelope.sign(
        members["manifest.json"],
        payload_type=MANIFEST_PAYLOAD_TYPE,
        key=KEY_A,
        keyid=SigningKeys.fingerprint(KEY_A),
    ).to_json()

    report = verify_bundle(rewrite(intact, tmp_path / "odd.zip", members))

    assert ProblemKind.MANIFEST_UNPARSEABLE in report.kinds()
    assert not report.ok


@pytest.mark.parametrize(
    "make",
    [
        pytest.param(lambda data: data[: len(data) // 2], id="truncated"),
        pytest.param(lambda data: data[:-30], id="end-record-cut"),
        pytest.param(lambda data: b"%PDF-1.7 not a zip", id="not-a-zip"),
        pytest.param(lambda data: b"", id="empty"),
    ],
)
def test_a_file_that_is_not_a_readable_bundle_is_an_evidence_error(
    intact: Path, tmp_path: Path, make: Callable[[bytes], bytes]
) -> None:
    broken = tmp_path / "broken.zip"
    broken.write_bytes(make(intact.read_bytes()))

    with pytest.raises(EvidenceError) as caught:
        verify_bundle(broken)
    assert caught.value.exit_code == ExitCode.LOCAL_DATA == 6


def test_a_zip_without_manifest_or_envelope_is_an_evidence_error(intact: Path, tmp_path: Path) -> None:
    members = {name: data for name, data in members_of(intact).items() if name not in CONTROL[:2]}
    with pytest.raises(EvidenceError, match="not a certcentral-auditor evidence bundle"):
        verify_bundle(rewrite(intact, tmp_path / "bare.zip", members))
    with pytest.raises(EvidenceError, match="Cannot read"):
        verify_bundle(tmp_path / "absent.zip")


# -- the chain --------------------------------------------------------------------------------


def test_a_chain_of_four_verifies_and_reports_the_range_covered(tmp_path: Path) -> None:
    paths = chain_of(4, tmp_path)

    report = verify_bundle(paths[3], trusted_keys=[KEY_A.public_key()], previous=paths[:3])

    assert report.ok and report.problems == (), format_report(report)
    assert report.sequences == (0, 1, 2, 3) and report.sequence == 3 and report.genesis is False
    assert report.covered_from == T0
    assert report.covered_until == T0 + timedelta(days=3, minutes=2)
    manifest = json.loads(members_of(paths[3])["manifest.json"])
    assert manifest["chain"]["previous_manifest_sha256"] == verify_bundle(paths[2]).manifest_sha256


def test_dropping_a_bundle_from_the_middle_is_a_sequence_gap(tmp_path: Path) -> None:
    paths = chain_of(4, tmp_path)

    report = verify_bundle(paths[3], previous=[paths[0], paths[2]])
    wider = verify_bundle(paths[3], previous=[paths[0]])

    assert subjects(report, ProblemKind.SEQUENCE_GAP) == {"sequence 1"}
    assert subjects(wider, ProblemKind.SEQUENCE_GAP) == {"sequence 1–2"}
    assert not report.ok and not wider.ok


def test_two_bundles_after_the_same_predecessor_are_a_fork(tmp_path: Path) -> None:
    first = build(genesis())
    one = build(next_position(first), tag="one")
    other = build(next_position(first), tag="other")
    paths = [
        write_bundle(bundle, tmp_path / f"{name}.zip") for name, bundle in (("0", first), ("1a", one), ("1b", other))
    ]

    report = verify_bundle(paths[1], previous=[paths[0], paths[2]])

    assert ProblemKind.FORKED_CHAIN in report.kinds()
    assert any("1a.zip" in p.bundle and "1b.zip" in p.bundle for p in report.failures)
    assert not report.ok


def test_a_skip_that_reuses_a_predecessor_is_a_fork_and_a_gap(tmp_path: Path) -> None:
    first = build(genesis())
    one = build(next_position(first), tag="one")
    skipped = build(
        ChainPosition("chain-1", 2, first.manifest_sha256, first.signature, first.key_fingerprint), tag="two"
    )
    paths = [write_bundle(b, tmp_path / f"{i}.zip") for i, b in enumerate((first, one, skipped))]

    report = verify_bundle(paths[2], previous=paths[:2])

    assert ProblemKind.FORKED_CHAIN in report.kinds()
    assert ProblemKind.BROKEN_CHAIN in report.kinds()


def test_the_same_bundle_given_twice_is_not_a_fork(tmp_path: Path) -> None:
    paths = chain_of(2, tmp_path)
    copy = tmp_path / "copy-of-0.zip"
    copy.write_bytes(paths[0].read_bytes())

    assert verify_bundle(paths[1], trusted_keys=[KEY_A.public_key()], previous=[paths[0], copy]).ok


@pytest.mark.parametrize("field", ["previous_manifest_sha256", "previous_signature"])
def test_a_wrong_predecessor_is_a_broken_chain(tmp_path: Path, field: str) -> None:
    first = build(genesis())
    position = next_position(first)
    values = {
        "previous_manifest_sha256": hashlib.sha256(b"another manifest").hexdigest(),
        "previous_signature": base64.b64encode(b"\x00" * 64).decode(),
    }
    wrong = dataclasses.replace(position, **{field: values[field]})
    paths = [write_bundle(b, tmp_path / f"{i}.zip") for i, b in enumerate((first, build(wrong, tag="1")))]

    report = verify_bundle(paths[1], previous=[paths[0]])

    assert subjects(report, ProblemKind.BROKEN_CHAIN) == {"sequence 1"}
    assert not report.ok


def test_a_bundle_from_another_chain_is_reported(tmp_path: Path) -> None:
    mine = write_bundle(build(genesis("chain-1")), tmp_path / "mine.zip")
    theirs = write_bundle(build(genesis("chain-2"), tag="x"), tmp_path / "theirs.zip")

    report = verify_bundle(mine, previous=[theirs])

    assert subjects(report, ProblemKind.DIFFERENT_CHAIN) == {"chain-2"}
    assert not report.ok


def test_a_tampered_previous_bundle_fails_the_verification(tmp_path: Path) -> None:
    paths = chain_of(2, tmp_path)
    members = members_of(paths[0])
    members["views/findings.json"] = b'{"findings":[]} '
    rewrite(paths[0], paths[0], members)

    report = verify_bundle(paths[1], trusted_keys=[KEY_A.public_key()], previous=[paths[0]])

    assert {(p.kind, p.bundle) for p in report.failures} == {(ProblemKind.MODIFIED_FILE, "bundle-0.zip")}


def test_a_rotated_key_starts_a_new_period_and_old_bundles_still_verify(tmp_path: Path) -> None:
    rotated_at = T0 + timedelta(days=2)
    first = build(genesis())
    second = build(next_position(first), tag="1", now=T0 + timedelta(days=1))
    third = build(next_position(second), key=KEY_B, tag="2", now=T0 + timedelta(days=3), valid_from=rotated_at)
    paths = [write_bundle(b, tmp_path / f"{i}.zip") for i, b in enumerate((first, second, third))]
    both = [KEY_A.public_key(), KEY_B.public_key()]

    report = verify_bundle(paths[2], trusted_keys=both, previous=paths[:2])

    assert report.ok, format_report(report)
    assert subjects(report, ProblemKind.SIGNER_ROTATED) == {SigningKeys.fingerprint(KEY_B)}
    assert report.key_valid_from == rotated_at
    # A signer change fails unless both keys are pinned (issue 22 §5).
    only_new = verify_bundle(paths[2], trusted_keys=[KEY_B.public_key()], previous=paths[:2])
    assert subjects(only_new, ProblemKind.SIGNER_CHANGED) == {SigningKeys.fingerprint(KEY_B)} and not only_new.ok
    assert not verify_bundle(paths[2], allow_unpinned=True, previous=paths[:2]).ok
    assert verify_bundle(paths[1], trusted_keys=both).ok
    assert verify_bundle(paths[0], trusted_keys=[KEY_A.public_key()]).ok
    assert ProblemKind.UNKNOWN_KEY in verify_bundle(paths[2], trusted_keys=[KEY_A.public_key()]).kinds()
    manifest = json.loads(third.manifest)
    assert manifest["chain"]["previous_key_fingerprint"] == SigningKeys.fingerprint(KEY_A)
    assert manifest["signing_key"]["valid_from"] == rotated_at.isoformat()


def test_an_unreadable_previous_bundle_is_an_evidence_error(intact: Path, tmp_path: Path) -> None:
    junk = tmp_path / "junk.zip"
    junk.write_bytes(b"junk")
    with pytest.raises(EvidenceError, match=r"junk\.zip"):
        verify_bundle(intact, previous=[junk])


# -- building and writing ---------------------------------------------------------------------


def test_write_refuses_to_replace_a_bundle_unless_asked(tmp_path: Path) -> None:
    target = tmp_path / "evidence.zip"
    target.write_bytes(b"the earlier bundle")

    with pytest.raises(EvidenceError, match="already exists"):
        write_bundle(REFERENCE, target)
    assert target.read_bytes() == b"the earlier bundle"
    assert write_bundle(REFERENCE, target, overwrite=True) == target
    assert target.read_bytes() == REFERENCE.data
    assert sorted(p.name for p in tmp_path.iterdir()) == ["evidence.zip"]


def test_written_bundles_are_private_and_leave_no_temporary_files(tmp_path: Path) -> None:
    path = write_bundle(REFERENCE, tmp_path / "evidence.zip")

    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert [p.name for p in tmp_path.iterdir()] == ["evidence.zip"]
    with pytest.raises(EvidenceError, match="does not exist"):
        write_bundle(REFERENCE, tmp_path / "missing" / "evidence.zip")


def test_a_raw_page_altered_in_storage_is_refused() -> None:
    tampered = RawPage("/user", 200, b'{"users":[]}', hashlib.sha256(b"original").hexdigest(), T0)
    altered = BundleContents(**{**_fields(contents()), "raw_pages": (tampered,)})

    with pytest.raises(EvidenceError, match="no longer matches"):
        build_bundle(altered, signer=KEY_A, chain=genesis(), context=context(), now=T0, key_valid_from=T0)


@pytest.mark.parametrize("missing", REQUIRED_CONTEXT_KEYS)
def test_every_required_context_key_is_enforced(missing: str) -> None:
    partial = {key: value for key, value in context().items() if key != missing}
    with pytest.raises(EvidenceError, match=missing):
        build_bundle(contents(), signer=KEY_A, chain=genesis(), context=partial, now=T0, key_valid_from=T0)


def test_a_key_period_that_starts_after_the_export_is_refused() -> None:
    with pytest.raises(EvidenceError, match="period starts after"):
        build_bundle(
            contents(), signer=KEY_A, chain=genesis(), context=context(), now=T0, key_valid_from=T0 + timedelta(1)
        )


def test_chain_positions_are_consistent() -> None:
    digest = hashlib.sha256(b"m").hexdigest()
    with pytest.raises(EvidenceError, match="genesis"):
        ChainPosition("c", 0, digest, "c2ln")
    with pytest.raises(EvidenceError, match="must name the previous"):
        ChainPosition("c", 3)
    with pytest.raises(EvidenceError, match="not valid"):
        ChainPosition("../etc", 0)

    class Head:
        chain_id = "c"
        sequence = 4
        manifest_sha256 = digest
        signature = "c2ln"
        key_fingerprint = "sha256:ab"

    after = ChainPosition.after(Head())
    assert (after.sequence, after.previous_manifest_sha256, after.previous_signature) == (5, digest, "c2ln")
    assert not after.genesis and ChainPosition.start(reason="restart").genesis
    assert ChainPosition.start(reason="x").chain_id != ChainPosition.start(reason="x").chain_id


def test_bundle_gives_the_store_its_next_chain_head() -> None:
    fields = REFERENCE.chain_head_fields()
    assert fields == {
        "chain_id": "chain-1",
        "sequence": 0,
        "manifest_sha256": hashlib.sha256(REFERENCE.manifest).hexdigest(),
        "signature": json.loads(REFERENCE.envelope)["signatures"][0]["sig"],
        "key_fingerprint": SigningKeys.fingerprint(KEY_A),
        "exported_at": T0 + timedelta(minutes=5),
    }


def _fields(value: BundleContents) -> dict[str, Any]:
    return {name: getattr(value, name) for name in BundleContents.__dataclass_fields__}


# -- keys -------------------------------------------------------------------------------------


def test_the_fingerprint_is_sha256_of_the_raw_public_key() -> None:
    raw = KEY_A.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    assert SigningKeys.fingerprint(KEY_A) == "sha256:" + hashlib.sha256(raw).hexdigest()
    assert SigningKeys.fingerprint(KEY_A.public_key()) == SigningKeys.fingerprint(KEY_A)
    assert SigningKeys.fingerprint(KEY_A) != SigningKeys.fingerprint(KEY_B)


def test_private_keys_round_trip_raw_and_pkcs8() -> None:
    raw = SigningKeys.private_bytes(KEY_A)
    pkcs8 = KEY_A.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    for data in (raw, pkcs8):
        assert SigningKeys.fingerprint(SigningKeys.load_private(data)) == SigningKeys.fingerprint(KEY_A)
    with pytest.raises(EvidenceError):
        SigningKeys.load_private(b"not a key at all")


def test_public_pem_round_trips_and_other_keys_are_refused() -> None:
    pem = SigningKeys.public_pem(KEY_A)
    assert pem.startswith("-----BEGIN PUBLIC KEY-----")
    assert SigningKeys.fingerprint(SigningKeys.load_public_pem(pem)) == SigningKeys.fingerprint(KEY_A)
    ec_pem = (
        ec.generate_private_key(ec.SECP256R1())
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    with pytest.raises(EvidenceError, match="not an Ed25519"):
        SigningKeys.load_public_pem(ec_pem)
    with pytest.raises(EvidenceError, match="not a PEM"):
        SigningKeys.load_public_pem(b"hello")


def test_a_generated_key_is_sealed_under_the_master_key_and_unsealed_again() -> None:
    master = MasterKey.generate()
    saved: dict[str, Any] = {}

    active = ActiveKey.create(master, now=T0, save=lambda **row: saved.update(row))

    assert saved["fingerprint"] == active.fingerprint and saved["created_at"] == T0
    assert saved["public_pem"] == active.public_pem
    assert SigningKeys.private_bytes(active.private_key) not in saved["encrypted_private_key"]
    assert master.decrypt(saved["encrypted_private_key"], context=PRIVATE_KEY_CONTEXT) == SigningKeys.private_bytes(
        active.private_key
    )

    class Row:
        fingerprint = saved["fingerprint"]
        encrypted_private_key = saved["encrypted_private_key"]
        created_at = T0

    again = ActiveKey.unseal(Row(), master)
    assert again.fingerprint == active.fingerprint and again.valid_from == T0
    assert "private" not in repr(again).lower() and active.fingerprint in repr(again)

    Row.fingerprint = SigningKeys.fingerprint(KEY_B)
    with pytest.raises(EvidenceError, match="different key"):
        ActiveKey.unseal(Row(), master)


# -- the report -------------------------------------------------------------------------------


def test_every_problem_kind_is_explained_and_classified() -> None:
    problems = tuple(Problem(kind, "b.zip", f"subject-{kind.value}") for kind in ProblemKind)
    report = VerificationReport(
        bundle=Path("b.zip"),
        problems=problems,
        manifest_sha256=None,
        chain_id=None,
        sequence=None,
        genesis=None,
        signer_fingerprint=None,
        signer_pinned=False,
        key_valid_from=None,
        created_at=None,
        covered_from=None,
        covered_until=None,
        chain=(),
        files_checked=0,
    )
    text = format_report(report)

    warnings_only = {ProblemKind.SIGNER_NOT_PINNED, ProblemKind.SIGNER_ROTATED, ProblemKind.TIMESTAMP_NOT_CHECKED}
    for kind in ProblemKind:
        level = "WARN" if kind in warnings_only else "FAIL"
        assert f"{level} {kind.value} [b.zip] subject-{kind.value}" in text
        assert kind.meaning in text
        assert kind.is_failure is (kind not in warnings_only)
    assert not report.ok and "NOT INTACT" in text


# -- from models, through exports ---------------------------------------------------------------


def test_contents_from_a_snapshot_neutralise_spreadsheet_cells_and_verify(tmp_path: Path) -> None:
    hostile = User(
        id=7,
        email="mallory@example.com",
        first_name='=HYPERLINK("http://evil.example","click")',
        last_name="Ångström",
        status="active",
        roles=(Role(1, "Administrator"),),
    )
    body = b'{"users":[{"id":7}]}'
    provenance = PullProvenance(
        connection="prod",
        base_url="https://www.digicert.com/services/v2",
        account_id=1696530,
        key_fingerprint="sha256:0123456789abcdef",
        tool_version="0.1.0",
        started_at=T0,
        finished_at=T0 + timedelta(minutes=1),
        requests=1,
        pages=1,
        retries=0,
        expected_total=1,
        received=1,
        complete=True,
        page_digests=(("/user", hashlib.sha256(body).hexdigest()),),
    )
    snapshot = Snapshot(id=3, connection="prod", taken_at=T0, users=(hostile,), provenance=provenance)
    findings = FindingsResult(
        snapshot_id=3,
        evaluated_at=T0,
        profiles=("pci-dss-4",),
        findings=(Finding("admin-count", Severity.LOW, "+title", "-explained", "@fix", user_id=7),),
        thresholds=(("inactive user", "90 days", "PCI DSS 8.2.6"),),
        limitations=("MFA not assessable",),
    )
    changes = ChangeSet(2, 3, (Change(ChangeKind.ADDED, 7, "mallory@example.com", after="Administrator"),))
    exceptions = (ExceptionEntry("stale-login", "7", "=reason", "owner", T0 + timedelta(days=30)),)
    attestations = (
        Attestation(1, "prod", AttestationKind.MFA, "=CISO", "MFA enforced by SSO", T0, T0 + timedelta(90)),
    )
    raw = (page("/user", body),)

    built = contents_from(
        snapshot,
        raw_pages=raw,
        findings=findings,
        changes=changes,
        exceptions=exceptions,
        attestations=attestations,
        now=T0,
    )
    ctx = bundle_context(
        snapshot,
        findings=findings,
        changes=changes,
        exceptions=exceptions,
        attestations=attestations,
        retention={"profile": "pci-dss-4", "period": "12 months"},
        raw_pages=len(raw),
    )
    bundle = build_bundle(built, signer=KEY_A, chain=genesis(), context=ctx, now=T0, key_valid_from=T0)
    path = write_bundle(bundle, tmp_path / "prod.zip")

    assert verify_bundle(path, trusted_keys=[KEY_A.public_key()]).ok
    members = members_of(path)
    users_csv = members["views/users.csv"].decode("utf-8")
    assert users_csv.startswith("\ufeff") and "'=HYPERLINK" in users_csv and "Ångström" in users_csv
    assert "'=CISO" in members["views/attestations.csv"].decode("utf-8")
    assert "'=reason" in members["views/exceptions.csv"].decode("utf-8")
    assert "'+title" in members["views/findings.csv"].decode("utf-8")
    manifest = json.loads(members["manifest.json"])
    assert manifest["context"]["record_counts"]["administrators"] == 1
    assert manifest["context"]["account_id"] == 1696530
    assert manifest["context"]["pull_finished_at"] == "2026-11-01T12:01:00+00:00"
    from openpyxl import load_workbook

    workbook = load_workbook(io.BytesIO(members["views/access-review.xlsx"]))
    assert workbook.sheetnames == [
        "users", "findings", "changes", "exceptions", "attestations", "api keys", "provenance"
    ]
    cells = [cell for row in workbook["users"].iter_rows() for cell in row]
    assert any(cell.value == hostile.first_name and cell.data_type == "s" for cell in cells)


# -- property ---------------------------------------------------------------------------------

_endpoints = st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=80) | st.sampled_from(
    ["../../etc/passwd", "/user?limit=500&offset=0", "C:\\x\\..\\y", "\x00", "manifest.json", ""]
)


@settings(max_examples=examples(40), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    pages=st.lists(st.tuples(_endpoints, st.binary(max_size=200)), max_size=6),
    views=st.lists(st.binary(max_size=64), min_size=11, max_size=11),
    reports=st.booleans(),
    sequence=st.integers(min_value=0, max_value=10**6),
)
def test_any_bundle_the_tool_writes_verifies(
    pages: list[tuple[str, bytes]], views: list[bytes], reports: bool, sequence: int
) -> None:
    built = BundleContents(
        tuple(page(endpoint, body) for endpoint, body in pages),
        *views[:10],
        users_csv=views[10],
        report_html=views[0] if reports else None,
        report_pdf=views[1] if reports else None,
    )
    chain = (
        genesis() if sequence == 0 else ChainPosition("chain-1", sequence, hashlib.sha256(b"prev").hexdigest(), "c2ln")
    )
    bundle = build_bundle(built, signer=KEY_A, chain=chain, context=context(), now=T0, key_valid_from=T0)
    with tempfile.TemporaryDirectory() as directory:
        report = verify_bundle(write_bundle(bundle, Path(directory) / "b.zip"), trusted_keys=[KEY_A.public_key()])

    assert report.ok and report.problems == (), format_report(report)
    assert report.files_checked == len(pages) + 10 + (1 if views[10] is not None else 0) + (2 if reports else 0)
    names = zipfile.ZipFile(io.BytesIO(bundle.data)).namelist()
    raw_names = [name for name in names if name.startswith("evidence/raw/")]
    assert all(re.fullmatch(r"evidence/raw/\d{4,}-[a-z0-9-]+\.json", name) for name in raw_names)
    assert len(set(names)) == len(names)


# -- with the real store and master key ---------------------------------------------------------


def test_the_store_keeps_the_key_across_exports_and_rotation_keeps_old_bundles_verifiable(tmp_path: Path) -> None:
    from auditor.store import ChainHead, Store

    master = MasterKey.generate()
    with Store.open(tmp_path / "data", clock=lambda: T0) as store:
        first, created = active_signing_key(store, master, now=T0)
        again, created_again = active_signing_key(store, master, now=T0 + timedelta(days=1))
        assert created and not created_again and again.fingerprint == first.fingerprint
        assert again.valid_from == T0

        head = store.chain_head("prod")
        position = ChainPosition.after(head) if head else ChainPosition.start(reason="first export")
        old = build_bundle(
            contents(),
            signer=first.private_key,
            chain=position,
            context=context(),
            now=T0,
            key_valid_from=first.valid_from,
        )
        store.advance_chain("prod", ChainHead(**old.chain_head_fields()))

        rotated_at = T0 + timedelta(days=2)
        new = rotate_signing_key(store, master, now=rotated_at)
        assert new.fingerprint != first.fingerprint and new.valid_from == rotated_at
        current, _ = active_signing_key(store, master, now=rotated_at)
        assert current.fingerprint == new.fingerprint
        keys = {row.fingerprint: row for row in store.signing_keys()}
        assert keys[first.fingerprint].retired_at == rotated_at and keys[new.fingerprint].retired_at is None

        stored_head = store.chain_head("prod")
        assert stored_head is not None
        following = build_bundle(
            contents("2"),
            signer=new.private_key,
            chain=ChainPosition.after(stored_head),
            context=context(),
            now=rotated_at,
            key_valid_from=new.valid_from,
        )
        store.advance_chain("prod", ChainHead(**following.chain_head_fields()))
        pems = [row.public_pem for row in keys.values()]

    paths = [write_bundle(b, tmp_path / f"{i}.zip") for i, b in enumerate((old, following))]
    pinned = load_public_keys([_write(tmp_path / f"key{i}.pem", pem) for i, pem in enumerate(pems)])
    report = verify_bundle(paths[1], trusted_keys=pinned, previous=[paths[0]])
    assert report.ok, format_report(report)
    assert report.sequences == (0, 1)
    assert verify_bundle(paths[0], trusted_keys=pinned).ok


def test_public_key_files_that_are_not_keys_are_evidence_errors(tmp_path: Path) -> None:
    with pytest.raises(EvidenceError, match="not a PEM"):
        load_public_keys([_write(tmp_path / "k.pem", "nonsense")])
    with pytest.raises(EvidenceError, match="Cannot read"):
        load_public_keys([tmp_path / "absent.pem"])


def _write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path
