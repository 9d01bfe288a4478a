"""Fail-closed verification and the one canonical ZIP layout (issue 22 §5, §6, §10), via the real CLI.

Each test is an attack from the issue's table: it passed `auditor verify` before and must fail now,
with exit 1 and a reason, never a traceback or exit 70.
"""

from __future__ import annotations

import json
import struct
import zipfile
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest
from support import AuditorHome
from test_evidence import KEY_A, KEY_B, build, genesis, next_position

from auditor.errors import ExitCode
from auditor.evidence import (
    MANIFEST_PAYLOAD_TYPE,
    Envelope,
    ProblemKind,
    SigningKeys,
    verify_bundle,
    write_bundle,
)
from auditor.evidence import layout as zip_layout
from auditor.evidence.bundle import checksums_file

FAILED = ExitCode.FINDINGS_OR_VERIFY_FAILED


@dataclass(frozen=True)
class Member:
    """One entry as a hand-made ZIP writer lays it out (compressed bytes given as they are)."""

    name: str
    compressed: bytes
    size: int
    crc: int
    method: int = 8

    @classmethod
    def of(cls, name: str, data: bytes) -> Member:
        packer = zlib.compressobj(9, zlib.DEFLATED, -15)
        return cls(name, packer.compress(data) + packer.flush(), len(data), zlib.crc32(data))


def local_header(member: Member) -> bytes:
    name = member.name.encode()
    return struct.pack(
        "<4sHHHHHIIIHH", b"PK\x03\x04", 20, 0, member.method, 0, 0x21, member.crc,
        len(member.compressed), member.size, len(name), 0,
    ) + name


def central_record(member: Member, offset: int) -> bytes:
    name = member.name.encode()
    return struct.pack(
        "<4sBBHHHHHIIIHHHHHII", b"PK\x01\x02", 20, 3, 20, 0, member.method, 0, 0x21, member.crc,
        len(member.compressed), member.size, len(name), 0, 0, 0, 0, 0o100644 << 16, offset,
    ) + name


def end_record(count: int, size: int, offset: int) -> bytes:
    return struct.pack("<4sHHHHIIH", b"PK\x05\x06", 0, 0, count, count, size, offset, 0)


def write_zip(
    path: Path, members: Sequence[Member], *, hidden: bytes = b"", offsets: Sequence[int] | None = None
) -> Path:
    """A ZIP of ``members``; ``hidden`` bytes go before the central directory, unlisted in it."""
    body = bytearray()
    actual: list[int] = []
    for member in members:
        actual.append(len(body))
        body += local_header(member) + member.compressed
    body += hidden
    directory = b"".join(
        central_record(member, offset) for member, offset in zip(members, offsets or actual, strict=True)
    )
    path.write_bytes(bytes(body) + directory + end_record(len(members), len(directory), len(body)))
    return path


def members_in_order(path: Path) -> list[tuple[str, bytes]]:
    with zipfile.ZipFile(path) as archive:
        return [(name, archive.read(name)) for name in archive.namelist()]


def local_header_walk(path: Path) -> list[str]:
    """What a streaming reader (Java's ZipInputStream, many unzip tools) sees: local headers in order."""
    data = path.read_bytes()
    names, position = [], 0
    while data[position : position + 4] == b"PK\x03\x04":
        csize, _usize, nlen, elen = struct.unpack_from("<IIHH", data, position + 18)
        names.append(data[position + 30 : position + 30 + nlen].decode())
        position += 30 + nlen + elen + csize
    return names


@pytest.fixture
def pem(tmp_path: Path) -> Path:
    path = tmp_path / "signer-a.pem"
    path.write_text(SigningKeys.public_pem(KEY_A))
    return path


def verify(home: AuditorHome, *args: str) -> tuple[int, str]:
    result = home.run("verify", *args)
    assert "Traceback" not in result.stderr, result.stderr
    assert result.returncode != 70, result.stderr  # never an internal error
    return result.returncode, result.stdout + result.stderr


# -- §5 fail closed -------------------------------------------------------------------------------


def test_a_bundle_re_signed_with_another_key_fails_without_a_public_key(
    home: AuditorHome, tmp_path: Path, pem: Path
) -> None:
    genuine = write_bundle(build(genesis()), tmp_path / "genuine.zip")
    members = dict(members_in_order(genuine))
    members["signature.json"] = Envelope.sign(
        members["manifest.json"], payload_type=MANIFEST_PAYLOAD_TYPE, key=KEY_B, keyid=SigningKeys.fingerprint(KEY_B)
    ).to_json()
    members["signer.pub.pem"] = SigningKeys.public_pem(KEY_B).encode()
    forged = write_zip(tmp_path / "resigned.zip", [Member.of(name, data) for name, data in members.items()])

    code, text = verify(home, str(forged))
    assert code == FAILED, text
    assert "signer-not-trusted" in text or "signer-mismatch" in text
    # Even a self-consistent rebuild (manifest naming key B) is not trusted without a trust root.
    rebuilt = write_bundle(build(genesis(), key=KEY_B), tmp_path / "rebuilt.zip")
    code, text = verify(home, str(rebuilt))
    assert code == FAILED and "signature valid, signer not trusted" in text, text
    code, text = verify(home, str(rebuilt), "--public-key", str(pem))
    assert code == FAILED and "unknown-key" in text, text
    # What an auditor without the key can do: pin the manifest hash the exporter sent, or ask for
    # an integrity check only, which says so on its first line.
    sent = verify_bundle(genuine, allow_unpinned=True).manifest_sha256
    assert sent is not None
    assert verify(home, str(genuine), "--manifest-sha256", sent)[0] == ExitCode.OK
    code, text = verify(home, str(rebuilt), "--manifest-sha256", sent)
    assert code == FAILED and "manifest-hash-mismatch" in text, text
    code, text = verify(home, str(rebuilt), "--allow-unpinned")
    assert code == ExitCode.OK and text.startswith("INTEGRITY ONLY (--allow-unpinned)"), text
    bad = home.run("verify", str(genuine), "--manifest-sha256", "not-a-hash")
    assert bad.returncode == ExitCode.USAGE and "--manifest-sha256" in bad.stderr


def test_a_forged_next_link_chained_to_the_genuine_head_fails(home: AuditorHome, tmp_path: Path, pem: Path) -> None:
    first = build(genesis())
    head = build(next_position(first), tag="1")
    forged = build(next_position(head), key=KEY_B, tag="forged: 0 administrators")
    paths = [write_bundle(b, tmp_path / f"{i}.zip") for i, b in enumerate((first, head, forged))]
    chain = ("--previous", str(paths[0]), "--previous", str(paths[1]))

    for trust in ((), ("--public-key", str(pem)), ("--manifest-sha256", head.manifest_sha256), ("--allow-unpinned",)):
        code, text = verify(home, str(paths[2]), *chain, *trust)
        assert code == FAILED, (trust, text)
        assert "signer-changed" in text, text  # a signer change needs both keys pinned
    # The genuine chain itself verifies with the head's hash received out of band: the hash
    # vouches for the head, and the head's signed link vouches for its predecessor.
    code, text = verify(home, str(paths[1]), "--previous", str(paths[0]), "--manifest-sha256", head.manifest_sha256)
    assert code == ExitCode.OK, text
    # A real rotation: both keys pinned.
    pem_b = tmp_path / "signer-b.pem"
    pem_b.write_text(SigningKeys.public_pem(KEY_B))
    code, text = verify(home, str(paths[2]), *chain, "--public-key", str(pem), "--public-key", str(pem_b))
    assert code == ExitCode.OK and "signer-rotated" in text, text


# -- §6 one canonical ZIP ---------------------------------------------------------------------------


def test_a_hidden_local_entry_before_the_central_directory_fails(
    home: AuditorHome, tmp_path: Path, pem: Path
) -> None:
    genuine = write_bundle(build(genesis()), tmp_path / "genuine.zip")
    members = [Member.of(name, data) for name, data in members_in_order(genuine)]
    hidden = Member.of("report/report.html", b"<h1>FORGED REPORT: 0 administrators</h1>")
    smuggled = write_zip(tmp_path / "smuggled.zip", members, hidden=local_header(hidden) + hidden.compressed)
    # Python's zipfile follows the central directory and sees the genuine members only ...
    assert [name for name, _ in members_in_order(smuggled)] == [m.name for m in members]
    # ... a local-header reader extracts the forged report too (after the genuine one, replacing it).
    walked = local_header_walk(smuggled)
    assert walked.count("report/report.html") == 2 and walked[-1] == "report/report.html"

    code, text = verify(home, str(smuggled), "--public-key", str(pem))

    assert code == FAILED and "noncanonical-zip" in text, text
    assert "hidden local entry" in text
    prefixed = tmp_path / "prefixed.zip"
    prefixed.write_bytes(local_header(hidden) + hidden.compressed + genuine.read_bytes())
    code, text = verify(home, str(prefixed), "--public-key", str(pem))
    assert code == FAILED and "noncanonical-zip" in text, text
    trailing = tmp_path / "trailing.zip"
    trailing.write_bytes(genuine.read_bytes() + b"extra")
    assert verify(home, str(trailing), "--public-key", str(pem))[0] == FAILED
    assert verify(home, str(write_zip(tmp_path / "same.zip", members)), "--public-key", str(pem))[0] == ExitCode.OK


def test_an_overlapping_entry_zip_bomb_fails_without_inflating(
    home: AuditorHome, tmp_path: Path, pem: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A small kernel that inflates to 64 MiB, quoted by 200 central records (12.5 GiB in all):
    # the overlap Python 3.11.7's zipfile does not refuse (CVE-2024-0450).
    kernel = Member.of("evidence/raw/0001-user.json", b"\0" * (64 * 1024 * 1024))
    names = [f"evidence/raw/{index:04d}-user.json" for index in range(1, 201)]
    bomb_members = [Member(name, kernel.compressed, kernel.size, kernel.crc) for name in names]
    bomb = write_zip(tmp_path / "bomb.zip", bomb_members[:1], offsets=[0])
    data = bytearray(bomb.read_bytes())
    body_end = len(local_header(kernel)) + len(kernel.compressed)
    directory = b"".join(central_record(member, 0) for member in bomb_members)
    data = data[:body_end] + directory + end_record(len(bomb_members), len(directory), body_end)
    bomb.write_bytes(bytes(data))
    assert bomb.stat().st_size < 200_000

    inflated: list[str] = []
    real_inflate = zip_layout.inflate
    monkeypatch.setattr(
        "auditor.evidence.verify.inflate",
        lambda handle, entry, **kw: inflated.append(entry.name) or real_inflate(handle, entry, **kw),
    )
    report = verify_bundle(bomb, trusted_keys=[KEY_A.public_key()])

    assert inflated == [] and report.files_checked == 0
    assert report.kinds() == {ProblemKind.NONCANONICAL_ZIP} and not report.ok
    assert any("overlaps" in problem.detail for problem in report.problems)
    code, text = verify(home, str(bomb), "--public-key", str(pem))  # the CLI too, within the default timeout
    assert code == FAILED and "nothing in it was inflated" in text, text


def test_a_member_that_inflates_past_its_declared_size_is_stopped_at_that_size(tmp_path: Path) -> None:
    genuine = write_bundle(build(genesis()), tmp_path / "genuine.zip")
    members = [Member.of(name, data) for name, data in members_in_order(genuine)]
    index = next(i for i, m in enumerate(members) if m.name == "views/findings.csv")
    declared = members[index]
    big = Member.of(declared.name, b"A" * (32 * 1024 * 1024))
    members[index] = Member(declared.name, big.compressed, declared.size, declared.crc)  # lies about its size
    lying = write_zip(tmp_path / "lying.zip", members)

    report = verify_bundle(lying, trusted_keys=[KEY_A.public_key()])

    [problem] = [p for p in report.problems if p.subject == "views/findings.csv"]
    assert problem.kind is ProblemKind.MODIFIED_FILE and "more than the" in problem.detail, problem
    assert not report.ok


# -- §6 malformed manifests ------------------------------------------------------------------------


def _signed_with(tmp_path: Path, name: str, manifest: bytes, *, envelope: bytes | None = None) -> Path:
    genuine = write_bundle(build(genesis()), tmp_path / f"genuine-{name}")
    members = dict(members_in_order(genuine))
    members["manifest.json"] = manifest
    members["signature.json"] = envelope or Envelope.sign(
        manifest, payload_type=MANIFEST_PAYLOAD_TYPE, key=KEY_A, keyid=SigningKeys.fingerprint(KEY_A)
    ).to_json()
    document = json.loads(members_in_order(genuine)[0][1])
    controls = [(n, members[n]) for n in ("manifest.json", "signature.json", "signer.pub.pem")]
    members["SHA256SUMS"] = checksums_file(controls, [(e["path"], e["sha256"]) for e in document["files"]])
    return write_zip(tmp_path / name, [Member.of(n, d) for n, d in members.items()])


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        pytest.param(lambda m: {**m, "does_not_prove": 5}, "does_not_prove", id="does-not-prove-a-number"),
        pytest.param(lambda m: {**m, "files": [{**m["files"][0], "size": "12"}]}, "file list", id="size-as-text"),
        pytest.param(lambda m: {**m, "chain": {**m["chain"], "genesis": "yes"}}, "chain", id="genesis-as-text"),
        pytest.param(lambda m: {**m, "context": []}, "context", id="context-a-list"),
        pytest.param(lambda m: {**m, "signing_key": {"fingerprint": 7}}, "signing key", id="fingerprint-a-number"),
    ],
)
def test_a_manifest_with_wrong_types_fails_with_a_reason(
    home: AuditorHome, tmp_path: Path, pem: Path, change: object, reason: str
) -> None:
    genuine = build(genesis())
    manifest = change(json.loads(genuine.manifest))  # type: ignore[operator]
    bundle = _signed_with(tmp_path, "typed.zip", json.dumps(manifest).encode())

    code, text = verify(home, str(bundle), "--public-key", str(pem))

    assert code == FAILED and "manifest-unparseable" in text and reason in text, text


def test_a_manifest_or_envelope_nested_100000_deep_fails_with_a_reason(
    home: AuditorHome, tmp_path: Path, pem: Path
) -> None:
    deep = b"[" * 100_000 + b"]" * 100_000
    in_manifest = _signed_with(tmp_path, "deep-manifest.zip", b'{"files": ' + deep + b"}")
    in_envelope = _signed_with(tmp_path, "deep-envelope.zip", build(genesis()).manifest, envelope=deep)

    code, text = verify(home, str(in_manifest), "--public-key", str(pem))
    assert code == FAILED and "nested more than 32 levels deep" in text, text
    code, text = verify(home, str(in_envelope), "--public-key", str(pem))
    assert code == FAILED and "bad-signature" in text and "nested more than" in text, text


def test_a_version_1_bundle_without_sha256sums_still_verifies(home: AuditorHome, tmp_path: Path, pem: Path) -> None:
    genuine = write_bundle(build(genesis()), tmp_path / "genuine.zip")
    members = dict(members_in_order(genuine))
    manifest = json.loads(members["manifest.json"])
    manifest["version"] = 1
    members["manifest.json"] = json.dumps(manifest).encode()
    members["signature.json"] = Envelope.sign(
        members["manifest.json"], payload_type=MANIFEST_PAYLOAD_TYPE, key=KEY_A, keyid=SigningKeys.fingerprint(KEY_A)
    ).to_json()
    del members["SHA256SUMS"]
    old = write_zip(tmp_path / "v1.zip", [Member.of(name, data) for name, data in members.items()])

    assert verify(home, str(old), "--public-key", str(pem))[0] == ExitCode.OK
    members["SHA256SUMS"] = b"not listed in a version 1 bundle\n"
    extra = write_zip(tmp_path / "v1-extra.zip", [Member.of(name, data) for name, data in members.items()])
    code, text = verify(home, str(extra), "--public-key", str(pem))
    assert code == FAILED and "unexpected-file" in text and "SHA256SUMS" in text, text
