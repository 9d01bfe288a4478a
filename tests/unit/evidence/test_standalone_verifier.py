"""The standalone `verifier/verify_bundle.py` agrees with `auditor verify` (issue 12 §5).

Every kind of tampering from tests/unit/evidence/test_evidence.py and
tests/unit/evidence/test_verify_trust.py is given to both;
they must reach the same verdict with the same kinds of problem. The script needs only Python and
`cryptography`: it imports nothing from the tool, and runs from a copy outside the repository.
"""

from __future__ import annotations

import ast
import importlib.util
import json
import shutil
import subprocess
import sys
import warnings
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from support import REPO
from test_evidence import (
    KEY_A,
    KEY_B,
    REFERENCE,
    REFERENCE_MEMBERS,
    ChainPosition,
    build,
    chain_of,
    flip,
    genesis,
    members_of,
    next_position,
    rewrite,
)
from test_verify_trust import Member, central_record, end_record, local_header, members_in_order, write_zip

from auditor.errors import EvidenceError
from auditor.evidence import MANIFEST_PAYLOAD_TYPE, Envelope, SigningKeys, verify_bundle, write_bundle
from auditor.evidence.bundle import checksums_file

SCRIPT = REPO / "verifier" / "verify_bundle.py"


def load_standalone() -> ModuleType:
    spec = importlib.util.spec_from_file_location("standalone_verify_bundle", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


STANDALONE = load_standalone()


@dataclass
class Case:
    path: Path
    keys: list[Ed25519PublicKey] = field(default_factory=lambda: [KEY_A.public_key()])
    previous: list[Path] = field(default_factory=list)
    hashes: list[str] = field(default_factory=list)
    allow_unpinned: bool = False


def intact(tmp: Path) -> Path:
    path = tmp / "evidence.zip"
    return path if path.exists() else write_bundle(REFERENCE, path)


def resign(members: dict[str, bytes], manifest: bytes, key: Any = KEY_A) -> dict[str, bytes]:
    members = dict(members)
    members["manifest.json"] = manifest
    members["signature.json"] = Envelope.sign(
        manifest, payload_type=MANIFEST_PAYLOAD_TYPE, key=key, keyid=SigningKeys.fingerprint(key)
    ).to_json()
    return members


def with_sums(members: dict[str, bytes], manifest: dict[str, Any]) -> dict[str, bytes]:
    controls = [(n, members[n]) for n in ("manifest.json", "signature.json", "signer.pub.pem")]
    members["SHA256SUMS"] = checksums_file(controls, [(e["path"], e["sha256"]) for e in manifest["files"]])
    return members


def flipped(member: str, position: int) -> Callable[[Path], Case]:
    def make(tmp: Path) -> Case:
        members = members_of(intact(tmp))
        members[member] = flip(members[member], position)
        return Case(rewrite(intact(tmp), tmp / "t.zip", members))

    return make


def removed(member: str) -> Callable[[Path], Case]:
    def make(tmp: Path) -> Case:
        members = members_of(intact(tmp))
        del members[member]
        return Case(rewrite(intact(tmp), tmp / "t.zip", members))

    return make


def added(tmp: Path) -> Case:
    members = members_of(intact(tmp))
    members["views/extra.csv"] = b"=cmd()"
    return Case(rewrite(intact(tmp), tmp / "t.zip", members))


def duplicated(tmp: Path) -> Case:
    path = tmp / "t.zip"
    path.write_bytes(intact(tmp).read_bytes())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        with zipfile.ZipFile(path, "a") as archive:
            archive.writestr("views/findings.csv", b"other")
    return Case(path)


def compressed_byte(tmp: Path) -> Case:
    source = intact(tmp)
    data = bytearray(source.read_bytes())
    info = zipfile.ZipFile(source).getinfo("views/findings.json")
    start = info.header_offset + 30 + len(info.filename)
    data[start + info.compress_size // 2] ^= 0xFF
    (tmp / "t.zip").write_bytes(bytes(data))
    return Case(tmp / "t.zip")


def resigned_by_b(pinned: bool) -> Callable[[Path], Case]:
    def make(tmp: Path) -> Case:
        members = resign(members_of(intact(tmp)), members_of(intact(tmp))["manifest.json"], KEY_B)
        members["signer.pub.pem"] = SigningKeys.public_pem(KEY_B).encode()
        return Case(rewrite(intact(tmp), tmp / "t.zip", members), keys=[KEY_A.public_key()] if pinned else [])

    return make


def signed_by_b_naming_a(tmp: Path) -> Case:
    members = members_of(intact(tmp))
    members["signature.json"] = Envelope.sign(
        members["manifest.json"], payload_type=MANIFEST_PAYLOAD_TYPE, key=KEY_B, keyid=SigningKeys.fingerprint(KEY_A)
    ).to_json()
    return Case(rewrite(intact(tmp), tmp / "t.zip", members))


def payload_type_swap(tmp: Path) -> Case:
    members = members_of(intact(tmp))
    envelope = json.loads(members["signature.json"])
    envelope["payloadType"] = "application/json"
    members["signature.json"] = json.dumps(envelope).encode()
    return Case(rewrite(intact(tmp), tmp / "t.zip", members))


def manifest_changed(change: Callable[[dict[str, Any]], Any], *, raw: bytes | None = None) -> Callable[[Path], Case]:
    def make(tmp: Path) -> Case:
        original = json.loads(REFERENCE.manifest)
        data = raw if raw is not None else json.dumps(change(original)).encode()
        members = with_sums(resign(members_of(intact(tmp)), data), original)
        return Case(rewrite(intact(tmp), tmp / "t.zip", members))

    return make


def rebuilt_by_b(trust: str) -> Callable[[Path], Case]:
    def make(tmp: Path) -> Case:
        first = build(genesis())
        previous = write_bundle(first, tmp / "0.zip")
        path = write_bundle(build(next_position(first), key=KEY_B, tag="1"), tmp / "1.zip")
        if trust == "none":
            return Case(path, keys=[], previous=[previous])
        if trust == "unpinned":
            return Case(path, keys=[], previous=[previous], allow_unpinned=True)
        if trust == "both":
            return Case(path, keys=[KEY_A.public_key(), KEY_B.public_key()], previous=[previous])
        return Case(path, keys=[], hashes=[first.manifest_sha256], previous=[previous])

    return make


def chain_case(kind: str) -> Callable[[Path], Case]:
    def make(tmp: Path) -> Case:
        paths = chain_of(4, tmp)
        if kind == "whole":
            return Case(paths[3], previous=paths[:3])
        if kind == "gap":
            return Case(paths[3], previous=[paths[0], paths[2]])
        if kind == "hash-anchored":
            head = verify_bundle(paths[3], allow_unpinned=True).manifest_sha256
            return Case(paths[3], keys=[], hashes=[str(head)], previous=paths[:3])
        if kind == "tampered-previous":
            members = members_of(paths[0])
            members["views/findings.json"] = b"{} "
            rewrite(paths[0], paths[0], members)
            return Case(paths[1], previous=[paths[0]])
        first = build(genesis())
        one = build(next_position(first), tag="one")
        other = build(next_position(first), tag="other")
        if kind == "fork":
            made = [write_bundle(b, tmp / f"f{i}.zip") for i, b in enumerate((first, one, other))]
            return Case(made[1], previous=[made[0], made[2]])
        if kind == "skip":
            skip = build(ChainPosition("chain-1", 2, first.manifest_sha256, first.signature, first.key_fingerprint))
            made = [write_bundle(b, tmp / f"s{i}.zip") for i, b in enumerate((first, one, skip))]
            return Case(made[2], previous=made[:2])
        mine = write_bundle(build(genesis("chain-1")), tmp / "mine.zip")
        theirs = write_bundle(build(genesis("chain-2"), tag="x"), tmp / "theirs.zip")
        return Case(mine, previous=[theirs])

    return make


def layout_case(kind: str) -> Callable[[Path], Case]:
    def make(tmp: Path) -> Case:
        members = [Member.of(name, data) for name, data in members_in_order(intact(tmp))]
        hidden = Member.of("report/report.html", b"FORGED")
        path = tmp / "t.zip"
        if kind == "hidden":
            write_zip(path, members, hidden=local_header(hidden) + hidden.compressed)
        elif kind == "prefix":
            path.write_bytes(local_header(hidden) + hidden.compressed + intact(tmp).read_bytes())
        elif kind == "trailing":
            path.write_bytes(intact(tmp).read_bytes() + b"\0")
        elif kind == "lying-size":
            index = next(i for i, m in enumerate(members) if m.name == "views/findings.csv")
            big = Member.of(members[index].name, b"A" * 1_000_000)
            members[index] = Member(big.name, big.compressed, members[index].size, members[index].crc)
            write_zip(path, members)
        elif kind == "overlap":
            kernel = Member.of("evidence/raw/0001-x.json", b"\0" * 1_000_000)
            clones = [Member(f"evidence/raw/{i:04d}-x.json", kernel.compressed, kernel.size, kernel.crc)
                      for i in range(1, 50)]
            body = local_header(kernel) + kernel.compressed
            directory = b"".join(central_record(clone, 0) for clone in clones)
            path.write_bytes(body + directory + end_record(len(clones), len(directory), len(body)))
        else:
            write_zip(path, members)  # the same members, laid out canonically by another writer
        return Case(path)

    return make


def trust_case(kind: str) -> Callable[[Path], Case]:
    def make(tmp: Path) -> Case:
        path = intact(tmp)
        if kind == "no-root":
            return Case(path, keys=[])
        if kind == "allow-unpinned":
            return Case(path, keys=[], allow_unpinned=True)
        if kind == "manifest-hash":
            return Case(path, keys=[], hashes=[REFERENCE.manifest_sha256])
        if kind == "wrong-hash":
            return Case(path, keys=[], hashes=["0" * 64])
        return Case(path)

    return make


CASES: dict[str, Callable[[Path], Case]] = {
    **{f"trust-{kind}": trust_case(kind) for kind in ("pinned", "no-root", "allow-unpinned", "manifest-hash",
                                                       "wrong-hash")},
    **{f"flip-{member}-{pos}": flipped(member, pos) for member in REFERENCE_MEMBERS for pos in (0, 97, -1)},
    **{f"remove-{member}": removed(member) for member in REFERENCE_MEMBERS},
    "added-member": added,
    "duplicate-member": duplicated,
    "byte-in-compressed-data": compressed_byte,
    "resigned-by-other-key-pinned": resigned_by_b(True),
    "resigned-by-other-key-unpinned": resigned_by_b(False),
    "signature-by-other-key-naming-the-enclosed": signed_by_b_naming_a,
    "payload-type-swap": payload_type_swap,
    "manifest-other-format": manifest_changed(lambda m: {"format": "something else"}),
    "manifest-does-not-prove-a-number": manifest_changed(lambda m: {**m, "does_not_prove": 5}),
    "manifest-size-as-text": manifest_changed(lambda m: {**m, "files": [{**m["files"][0], "size": "1"}]}),
    "manifest-nested-100000-deep": manifest_changed(lambda m: m, raw=b"[" * 100_000 + b"]" * 100_000),
    "manifest-canonical-but-listing-less": manifest_changed(lambda m: {**m, "files": m["files"][1:]}),
    **{f"rebuilt-by-other-key-{trust}": rebuilt_by_b(trust) for trust in ("none", "unpinned", "both", "hash")},
    **{f"chain-{kind}": chain_case(kind) for kind in ("whole", "gap", "hash-anchored", "tampered-previous",
                                                       "fork", "skip", "different")},
    **{f"layout-{kind}": layout_case(kind) for kind in ("same", "hidden", "prefix", "trailing", "lying-size",
                                                         "overlap")},
}


def kinds_of_standalone(case: Case) -> tuple[bool, set[str]]:
    result = STANDALONE.verify(
        case.path, keys=case.keys, manifest_hashes=case.hashes, allow_unpinned=case.allow_unpinned,
        previous=case.previous,
    )
    return result["ok"], {problem[0] for problem in result["problems"]}


@pytest.mark.parametrize("name", sorted(CASES))
def test_the_standalone_verifier_reaches_the_same_verdict(name: str, tmp_path: Path) -> None:
    case = CASES[name](tmp_path)

    report = verify_bundle(
        case.path, trusted_keys=case.keys, trusted_manifests=case.hashes, allow_unpinned=case.allow_unpinned,
        previous=case.previous,
    )
    ok, kinds = kinds_of_standalone(case)

    assert (ok, kinds) == (report.ok, {problem.kind.value for problem in report.problems})


@pytest.mark.parametrize(
    "make", [lambda d: d[: len(d) // 2], lambda d: d[:-30], lambda d: b"not a zip", lambda d: b""],
    ids=["truncated", "end-record-cut", "not-a-zip", "empty"],
)
def test_both_refuse_a_file_that_is_not_a_bundle(tmp_path: Path, make: Callable[[bytes], bytes]) -> None:
    broken = tmp_path / "broken.zip"
    broken.write_bytes(make(REFERENCE.data))
    with pytest.raises(EvidenceError):
        verify_bundle(broken)
    with pytest.raises(STANDALONE.NotABundle):
        STANDALONE.verify(broken)


def test_the_script_imports_only_the_standard_library_and_cryptography() -> None:
    tree = ast.parse(SCRIPT.read_text())
    roots = {
        (node.module if isinstance(node, ast.ImportFrom) else alias.name).split(".")[0]
        for node in ast.walk(tree)
        if isinstance(node, ast.Import | ast.ImportFrom)
        for alias in node.names
        if not (isinstance(node, ast.ImportFrom) and node.module is None)
    }
    assert roots - set(sys.stdlib_module_names) == {"cryptography"}


def test_a_copy_of_the_script_verifies_a_real_bundle_from_the_command_line(tmp_path: Path) -> None:
    copy = tmp_path / "elsewhere" / "verify_bundle.py"
    copy.parent.mkdir()
    shutil.copy(SCRIPT, copy)
    bundle = intact(tmp_path)
    pem = tmp_path / "signer.pem"
    pem.write_text(SigningKeys.public_pem(KEY_A))

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        # -I: no PYTHONPATH, no current directory on sys.path: only the interpreter's own packages.
        return subprocess.run([sys.executable, "-I", str(copy), *args], capture_output=True, text=True,
                              check=False, cwd=tmp_path)

    assert run(str(bundle), "--public-key", str(pem)).returncode == 0
    unpinned = run(str(bundle))
    assert unpinned.returncode == 1 and "signer-not-trusted" in unpinned.stdout
    assert run(str(bundle), "--manifest-sha256", REFERENCE.manifest_sha256).returncode == 0
    allowed = run(str(bundle), "--allow-unpinned")
    assert allowed.returncode == 0 and allowed.stdout.startswith("INTEGRITY ONLY")
    members = members_of(bundle)
    members["views/findings.csv"] = b"tampered"
    tampered = rewrite(bundle, tmp_path / "tampered.zip", members)
    result = run(str(tampered), "--public-key", str(pem), "--json")
    assert result.returncode == 1
    problems = [problem[:3] for problem in json.loads(result.stdout)["problems"]]
    assert ["modified-file", "tampered.zip", "views/findings.csv"] in problems
    (tmp_path / "junk.zip").write_bytes(b"junk")
    assert run(str(tmp_path / "junk.zip")).returncode == 6
