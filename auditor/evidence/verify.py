"""Offline verification of evidence bundles and of the chain they form (controls.md §3.9).

Needs only the ZIP files (and optionally pinned public keys): no data directory, no network.
Problems are reported by kind, each naming the member, key or sequence concerned; a file that
cannot be read as a bundle at all raises :class:`~auditor.errors.EvidenceError` (exit 6).

(Over 500 lines: members, digests, signature, keys and chain are checked in one fail-closed order
that reads top to bottom.)
"""

from __future__ import annotations

import contextlib
import enum
import hashlib
import itertools
import re
from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, BinaryIO

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from auditor.errors import ConfigurationError, EvidenceError
from auditor.evidence import intoto
from auditor.evidence.bundle import (
    BUNDLE_FORMAT,
    CHECKSUMS_PATH,
    CONTROL_FILES,
    ENVELOPE_PATH,
    LEGACY_CONTROL_FILES,
    MANIFEST_PATH,
    PUBLIC_KEY_PATH,
    READABLE_VERSIONS,
    TIMESTAMPED_CONTROL_FILES,
    canonical_json,
    checksums_file,
)
from auditor.evidence.dsse import Envelope, EnvelopeFormatError
from auditor.evidence.keys import SigningKeys
from auditor.evidence.layout import LayoutProblem, NotAZipError, ZipEntry, inflate, load_json, read_layout
from auditor.evidence.timestamp import TIMESTAMP_PATH, check_token
from auditor.models import parse_api_datetime

__all__ = [
    "ChainLink",
    "Problem",
    "ProblemKind",
    "VerificationReport",
    "format_report",
    "load_public_keys",
    "read_verified_members",
    "verify_bundle",
]

#: Control files (manifest, envelope, PEM) are small; anything bigger is not ours.
_CONTROL_LIMIT = 16 * 1024 * 1024
_CHUNK = 1024 * 1024
_SHA256_HEX = re.compile(r"[0-9a-f]{64}")


class ProblemKind(enum.StrEnum):
    """Every way a bundle or chain can fail verification (or deserve a warning)."""

    MODIFIED_FILE = "modified-file"
    MISSING_FILE = "missing-file"
    UNEXPECTED_FILE = "unexpected-file"
    BAD_SIGNATURE = "bad-signature"
    UNKNOWN_KEY = "unknown-key"
    SIGNER_MISMATCH = "signer-mismatch"
    SIGNER_NOT_PINNED = "signer-not-pinned"
    SIGNER_CHANGED = "signer-changed"
    BROKEN_CHAIN = "broken-chain"
    FORKED_CHAIN = "forked-chain"
    SEQUENCE_GAP = "sequence-gap"
    DIFFERENT_CHAIN = "different-chain"
    MANIFEST_UNPARSEABLE = "manifest-unparseable"
    NONCANONICAL_ZIP = "noncanonical-zip"
    SIGNER_NOT_TRUSTED = "signer-not-trusted"
    MANIFEST_HASH_MISMATCH = "manifest-hash-mismatch"
    SIGNER_ROTATED = "signer-rotated"
    TIMESTAMP_INVALID = "timestamp-invalid"
    TIMESTAMP_MISSING = "timestamp-missing"
    TIMESTAMP_NOT_CHECKED = "timestamp-not-checked"

    @property
    def is_failure(self) -> bool:
        """False for warnings: the bundle is intact but the auditor should know."""
        return self not in _WARNINGS

    @property
    def meaning(self) -> str:
        """One sentence for the report: what this kind of problem means for the auditor."""
        return _MEANINGS[self]


_WARNINGS = frozenset({ProblemKind.SIGNER_NOT_PINNED, ProblemKind.SIGNER_ROTATED, ProblemKind.TIMESTAMP_NOT_CHECKED})

_MEANINGS: dict[ProblemKind, str] = {
    ProblemKind.MODIFIED_FILE: "the file's content differs from what was signed",
    ProblemKind.MISSING_FILE: "a file the bundle must hold is not in it",
    ProblemKind.UNEXPECTED_FILE: "the bundle holds a file the signed manifest does not list",
    ProblemKind.BAD_SIGNATURE: "the manifest's signature does not verify",
    ProblemKind.UNKNOWN_KEY: "the bundle was signed by a key that is not among the pinned public keys",
    ProblemKind.SIGNER_MISMATCH: "the key that signed is not the key the manifest names",
    ProblemKind.SIGNER_NOT_PINNED: (
        "--allow-unpinned: checked against the key inside the bundle only, so this shows the bundle is "
        "self-consistent, not who made it"
    ),
    ProblemKind.SIGNER_CHANGED: (
        "the signing key differs from the previous bundle's: pin both keys (--public-key twice) "
        "after confirming the key rotation with the exporter"
    ),
    ProblemKind.SIGNER_ROTATED: "the signing key changed between bundles; both keys are pinned",
    ProblemKind.SIGNER_NOT_TRUSTED: (
        "signature valid, signer not trusted: anyone can sign with a key of their own; pass --public-key "
        "with the key you received out of band, or --manifest-sha256 with the hash the exporter sent you"
    ),
    ProblemKind.MANIFEST_HASH_MISMATCH: (
        "no given bundle has the manifest SHA-256 passed with --manifest-sha256"
    ),
    ProblemKind.NONCANONICAL_ZIP: (
        "the archive is not in the exporter's one ZIP layout, so other ZIP tools may show other content; "
        "nothing in it was inflated"
    ),
    ProblemKind.BROKEN_CHAIN: "a manifest does not name its predecessor's SHA-256 and signature",
    ProblemKind.FORKED_CHAIN: "two different bundles claim the same place in the chain",
    ProblemKind.SEQUENCE_GAP: "a bundle between the given ones is missing",
    ProblemKind.DIFFERENT_CHAIN: "a given bundle belongs to another chain",
    ProblemKind.MANIFEST_UNPARSEABLE: "the manifest cannot be read, so its files cannot be checked",
    ProblemKind.TIMESTAMP_INVALID: (
        "the RFC 3161 token is not a token over this bundle's signature by the TSA given with --tsa-cert"
    ),
    ProblemKind.TIMESTAMP_MISSING: (
        "a trusted timestamp was required (by the manifest, or by --tsa-cert) but the bundle holds no token"
    ),
    ProblemKind.TIMESTAMP_NOT_CHECKED: (
        "the bundle holds an RFC 3161 token, but no --tsa-cert was given to check it: its time is not trusted"
    ),
}


@dataclass(frozen=True, slots=True)
class Problem:
    """One finding of the verifier: its kind, the bundle, and what it concerns."""

    kind: ProblemKind
    bundle: str  #: the bundle's file name
    subject: str  #: a member path, a key fingerprint or a chain sequence
    detail: str = ""

    @property
    def is_failure(self) -> bool:
        return self.kind.is_failure


@dataclass(frozen=True, slots=True)
class ChainLink:
    """What one examined bundle says about its place in the chain."""

    path: Path
    chain_id: str
    sequence: int
    genesis: bool
    manifest_sha256: str
    signature: str
    previous_manifest_sha256: str | None
    previous_signature: str | None
    signer_fingerprint: str | None
    created_at: datetime | None
    pull_started_at: datetime | None
    pull_finished_at: datetime | None
    new_chain_reason: str = ""


@dataclass(frozen=True, slots=True)
class VerificationReport:
    """The verdict on a bundle (and the chain formed with ``previous`` bundles)."""

    bundle: Path
    problems: tuple[Problem, ...]
    manifest_sha256: str | None
    chain_id: str | None
    sequence: int | None
    genesis: bool | None
    #: The key that verified the signature, or else the one the manifest names.
    signer_fingerprint: str | None
    signer_pinned: bool
    key_valid_from: datetime | None
    created_at: datetime | None
    #: Earliest pull start and latest pull end over every examined bundle.
    covered_from: datetime | None
    covered_until: datetime | None
    #: Every examined bundle with a readable manifest, ordered by chain id and sequence.
    chain: tuple[ChainLink, ...]
    files_checked: int
    does_not_prove: tuple[str, ...] = field(default=())
    #: What makes the signer trusted ('' when nothing does): pinned key, manifest SHA-256, ...
    trust_root: str = ""
    #: ``--allow-unpinned`` without a trust root: the verdict is about integrity only.
    integrity_only: bool = False
    #: SHA-256 of the whole ZIP file, as ``auditor export`` prints it.
    zip_sha256: str | None = None
    #: What the envelope signed: an in-toto Statement, or (older bundles) the manifest itself.
    signed_format: str = ""
    #: The TSA the manifest names (None: none configured); the token's time once it verified.
    timestamp_authority: str | None = None
    trusted_time: datetime | None = None
    #: One sentence on the timestamp for the report ('' for bundles before manifest version 3).
    timestamp_note: str = ""

    @property
    def failures(self) -> tuple[Problem, ...]:
        return tuple(problem for problem in self.problems if problem.is_failure)

    @property
    def warnings(self) -> tuple[Problem, ...]:
        return tuple(problem for problem in self.problems if not problem.is_failure)

    @property
    def ok(self) -> bool:
        return not self.failures

    @property
    def sequences(self) -> tuple[int, ...]:
        """Sequences of the examined bundles in this bundle's chain."""
        return tuple(sorted({link.sequence for link in self.chain if link.chain_id == self.chain_id}))

    def kinds(self) -> set[ProblemKind]:
        return {problem.kind for problem in self.problems}


def verify_bundle(
    path: Path,
    *,
    trusted_keys: Sequence[Ed25519PublicKey] = (),
    trusted_manifests: Sequence[str] = (),
    allow_unpinned: bool = False,
    previous: Sequence[Path] = (),
    tsa_certificates: Sequence[x509.Certificate] = (),
) -> VerificationReport:
    """Check one bundle's layout, files and signature, its chain with ``previous``, and its trust root.

    Fail closed (issue 22 §5): a bundle is trusted when a pinned key (``trusted_keys``) verifies
    its signature, or its manifest SHA-256 is one of ``trusted_manifests`` (received through
    another channel), or a trusted later bundle names it as its predecessor. An untrusted bundle
    with a valid signature is the failure "signature valid, signer not trusted", unless
    ``allow_unpinned`` asks for an integrity check only (then it is a warning).

    An RFC 3161 token is checked against ``tsa_certificates`` (``--tsa-cert``): one that does not
    verify fails; given certificates and no token fail too; a token left unchecked is a warning.

    Raises EvidenceError when ``path`` or one of ``previous`` is not a readable bundle (not a ZIP,
    truncated, or holding neither a manifest nor a signature envelope).
    """
    pinned = {SigningKeys.fingerprint(key): key for key in trusted_keys}
    anchors = [_normalise_hash(value) for value in trusted_manifests]
    target = _inspect(Path(path), pinned, tsa_certificates)
    others = [_inspect(Path(item), pinned, tsa_certificates) for item in previous]
    problems = list(target.problems)
    for other in others:
        problems.extend(other.problems)
    links = [item.link for item in (target, *others) if item.link is not None]
    if target.link is not None:
        problems.extend(_chain_problems(target.link, links, pinned))
    trusted = _trusted(target, others, pinned, anchors)
    for anchor in anchors:
        if not any(item.manifest_sha256 == anchor for item in (target, *others)):
            problems.append(
                Problem(
                    ProblemKind.MANIFEST_HASH_MISMATCH,
                    Path(path).name,
                    anchor,
                    f"the bundle's manifest SHA-256 is {target.manifest_sha256}",
                )
            )
    for item in (target, *others):
        if item.verified_by is None or item.manifest_sha256 in trusted:
            continue
        if pinned and item.verified_by not in pinned:
            continue  # already an unknown-key failure
        kind = ProblemKind.SIGNER_NOT_PINNED if allow_unpinned else ProblemKind.SIGNER_NOT_TRUSTED
        problems.append(Problem(kind, item.path.name, item.verified_by, "signature valid, signer not trusted"))
    starts = [link.pull_started_at for link in links if link.pull_started_at]
    ends = [link.pull_finished_at for link in links if link.pull_finished_at]
    link = target.link
    if target.manifest_sha256 in trusted:
        trust = "manifest SHA-256" if target.manifest_sha256 in anchors else "pinned key"
        if target.pinned and target.manifest_sha256 in anchors:
            trust = "pinned key and manifest SHA-256"
        elif not target.pinned and target.manifest_sha256 not in anchors:
            trust = "named by a trusted later bundle"
    else:
        trust = ""
    return VerificationReport(
        bundle=Path(path),
        problems=tuple(_dedupe(problems)),
        manifest_sha256=target.manifest_sha256,
        chain_id=link.chain_id if link else None,
        sequence=link.sequence if link else None,
        genesis=link.genesis if link else None,
        signer_fingerprint=target.signer,
        signer_pinned=target.pinned,
        key_valid_from=target.key_valid_from,
        created_at=link.created_at if link else None,
        covered_from=min(starts, default=None),
        covered_until=max(ends, default=None),
        chain=tuple(sorted(links, key=lambda item: (item.chain_id, item.sequence, str(item.path)))),
        files_checked=target.files_checked,
        does_not_prove=target.does_not_prove,
        trust_root=trust,
        integrity_only=allow_unpinned and not trust,
        zip_sha256=target.zip_sha256,
        signed_format=target.signed_format,
        timestamp_authority=target.timestamp_authority,
        trusted_time=target.trusted_time,
        timestamp_note=target.timestamp_note,
    )


def load_public_keys(paths: Sequence[Path]) -> list[Ed25519PublicKey]:
    """The ``--public-key`` files as keys; EvidenceError (exit 6) names a file that is not one."""
    keys = []
    for path in paths:
        try:
            data = Path(path).read_bytes()
        except OSError as exc:
            raise EvidenceError(f"Cannot read the public key {path}: {exc.strerror or exc}.") from exc
        keys.append(SigningKeys.load_public_pem(data, source=f"The public key file {path}"))
    return keys


def read_verified_members(path: Path, names: Iterable[str]) -> dict[str, bytes]:
    """The bytes of ``names`` from a bundle that verified, each bounded by its manifest size.

    For re-performance, after :func:`verify_bundle` passed: raises EvidenceError on any surprise.
    """
    wanted = set(names)
    with _opened(Path(path)) as (handle, size):
        entries, problems = _layout(Path(path), handle, size)
        if problems:
            raise EvidenceError(f"{path} is not in the exporter's ZIP layout: {problems[0].detail}.")
        manifest_entry = next((entry for entry in entries if entry.name == MANIFEST_PATH), None)
        if manifest_entry is None:
            raise EvidenceError(f"{path} holds no manifest.json.")
        _digest, _size, manifest, error = inflate(handle, manifest_entry, limit=_CONTROL_LIMIT, keep=True)
        parsed = _parse_manifest(manifest or b"")
        if error or isinstance(parsed, str):
            raise EvidenceError(f"{path}: manifest.json cannot be read ({error or parsed}).")
        declared = {entry["path"]: entry for entry in parsed["files"]}
        found: dict[str, bytes] = {MANIFEST_PATH: manifest} if MANIFEST_PATH in wanted and manifest else {}
        for entry in entries:
            if entry.name not in wanted or entry.name not in declared:
                continue
            digest, _size, data, error = inflate(handle, entry, limit=declared[entry.name]["size"], keep=True)
            if error or data is None or digest != declared[entry.name]["sha256"]:
                raise EvidenceError(f"{path}: {entry.name} does not match the manifest ({error or 'SHA-256'}).")
            found[entry.name] = data
    return found


# --- one bundle ------------------------------------------------------------------------------


@dataclass(slots=True)
class _Inspection:
    path: Path
    problems: list[Problem] = field(default_factory=list)
    link: ChainLink | None = None
    manifest_sha256: str | None = None
    signer: str | None = None
    #: The key (pinned or enclosed) whose signature verified, if any.
    verified_by: str | None = None
    pinned: bool = False
    key_valid_from: datetime | None = None
    files_checked: int = 0
    does_not_prove: tuple[str, ...] = ()
    zip_sha256: str | None = None
    signed_format: str = ""
    timestamp_authority: str | None = None
    trusted_time: datetime | None = None
    timestamp_note: str = ""


@contextlib.contextmanager
def _opened(path: Path) -> Iterator[tuple[BinaryIO, int]]:
    """The bundle file and its size; OSError becomes EvidenceError."""
    if not path.is_file():
        raise EvidenceError(f"Cannot read {path}: it does not exist or is not a file.")
    try:
        with path.open("rb") as handle:
            yield handle, handle.seek(0, 2)
    except OSError as exc:
        raise EvidenceError(f"Cannot read {path}: {exc.strerror or exc}.") from exc


def _layout(path: Path, handle: BinaryIO, size: int) -> tuple[list[ZipEntry], list[LayoutProblem]]:
    try:
        return read_layout(handle, size)
    except NotAZipError as exc:
        raise EvidenceError(
            f"{path} is not a readable ZIP archive ({exc}); it may be truncated or not an evidence bundle.",
            hint="Ask the exporter to send the bundle again and compare its manifest SHA-256.",
        ) from exc
    except OSError as exc:
        raise EvidenceError(f"Cannot read {path}: {exc.strerror or exc}.") from exc


def _inspect(path: Path, pinned: dict[str, Ed25519PublicKey], tsa: Sequence[x509.Certificate] = ()) -> _Inspection:
    with _opened(path) as (handle, size):
        return _inspect_open(path, handle, size, pinned, tsa)


def _inspect_open(
    path: Path, handle: BinaryIO, size: int, pinned: dict[str, Ed25519PublicKey], tsa: Sequence[x509.Certificate]
) -> _Inspection:
    name = path.name
    result = _Inspection(path=path)

    def report(kind: ProblemKind, subject: str, detail: str = "") -> None:
        result.problems.append(Problem(kind, name, subject, detail))

    whole = hashlib.sha256()
    handle.seek(0)
    while chunk := handle.read(_CHUNK):
        whole.update(chunk)
    result.zip_sha256 = whole.hexdigest()

    entries, layout_problems = _layout(path, handle, size)
    if layout_problems:
        # Fail fast: an archive other readers see differently is not inflated at all.
        for problem in layout_problems:
            report(ProblemKind.NONCANONICAL_ZIP, problem.subject, problem.detail)
        return result
    by_name = {entry.name: entry for entry in entries}

    def control(member_path: str) -> tuple[bytes | None, str]:
        entry = by_name.get(member_path)
        if entry is None:
            return None, "missing"
        _digest, _size, data, error = inflate(handle, entry, limit=_CONTROL_LIMIT, keep=True)
        return (None, error) if error else (data, "")

    envelope: Envelope | None = None
    envelope_data, envelope_error = control(ENVELOPE_PATH)
    if envelope_error == "missing":
        report(ProblemKind.MISSING_FILE, ENVELOPE_PATH, "the signature envelope is missing")
    elif envelope_data is None:
        report(ProblemKind.MODIFIED_FILE, ENVELOPE_PATH, envelope_error)
    else:
        try:
            envelope = Envelope.from_json(envelope_data)
        except EnvelopeFormatError as exc:
            report(ProblemKind.BAD_SIGNATURE, ENVELOPE_PATH, f"not a readable DSSE envelope: {exc}")
        else:
            result.signed_format = intoto.format_name(envelope.payload_type)
            if envelope.payload_type not in {intoto.PAYLOAD_TYPE, intoto.LEGACY_PAYLOAD_TYPE}:
                report(
                    ProblemKind.BAD_SIGNATURE,
                    ENVELOPE_PATH,
                    f"payload type {envelope.payload_type!r} is neither {intoto.PAYLOAD_TYPE!r} "
                    f"nor {intoto.LEGACY_PAYLOAD_TYPE!r}",
                )
    # Since manifest version 3 the envelope signs an in-toto Statement that binds manifest.json by
    # its SHA-256; before, it signed the manifest bytes themselves.
    statement: intoto.Statement | None = None
    if envelope is not None and envelope.payload_type == intoto.PAYLOAD_TYPE:
        read = intoto.read_statement(envelope.payload)
        if isinstance(read, str):
            report(ProblemKind.BAD_SIGNATURE, ENVELOPE_PATH, f"the signed payload is not readable: {read}")
        else:
            statement = read

    manifest_file, manifest_error = control(MANIFEST_PATH)
    if manifest_error == "missing":
        report(ProblemKind.MISSING_FILE, MANIFEST_PATH)
    elif manifest_file is None:
        report(ProblemKind.MODIFIED_FILE, MANIFEST_PATH, manifest_error)
    elif envelope is not None and statement is None and manifest_file != envelope.payload:
        report(ProblemKind.MODIFIED_FILE, MANIFEST_PATH, "differs from the signed copy in signature.json")

    manifest_bytes: bytes | None
    if statement is not None:
        # Without the file, the signed statement's copy stands in so the members can still be checked.
        manifest_bytes = manifest_file if manifest_file is not None else canonical_json(statement.manifest)
    elif envelope is not None and envelope.payload_type != intoto.PAYLOAD_TYPE:
        manifest_bytes = envelope.payload
    else:
        manifest_bytes = manifest_file
    if manifest_bytes is None:
        raise EvidenceError(
            f"{path} holds neither a readable manifest.json nor a signature envelope; "
            "it is not a certcentral-auditor evidence bundle.",
        )
    result.manifest_sha256 = hashlib.sha256(manifest_bytes).hexdigest()
    parsed = _parse_manifest(manifest_bytes)
    manifest: dict[str, Any] | None = None
    if isinstance(parsed, str):
        report(ProblemKind.MANIFEST_UNPARSEABLE, MANIFEST_PATH, parsed)
    else:
        manifest = parsed
        if statement is not None and manifest_file is not None:
            for disagreement in statement.problems_with(manifest_bytes, manifest):
                report(ProblemKind.MODIFIED_FILE, MANIFEST_PATH, f"differs from the signed statement: {disagreement}")
    named_key = _key_fingerprint(manifest)

    # --- the signature ---
    embedded: Ed25519PublicKey | None = None
    pem_data, pem_error = control(PUBLIC_KEY_PATH)
    if pem_error == "missing":
        report(ProblemKind.MISSING_FILE, PUBLIC_KEY_PATH)
    elif pem_data is None:
        report(ProblemKind.MODIFIED_FILE, PUBLIC_KEY_PATH, pem_error)
    else:
        try:
            embedded = SigningKeys.load_public_pem(pem_data, source=PUBLIC_KEY_PATH)
        except EvidenceError as exc:
            report(ProblemKind.MODIFIED_FILE, PUBLIC_KEY_PATH, exc.message)
        else:
            # The manifest binds the key by fingerprint; the file's exact bytes are bound by being
            # the one canonical PEM of that key, so no byte of the bundle goes unchecked.
            if pem_data != SigningKeys.public_pem(embedded).encode("ascii"):
                report(ProblemKind.MODIFIED_FILE, PUBLIC_KEY_PATH, "not the exact PEM the exporter writes")
    embedded_fp = SigningKeys.fingerprint(embedded) if embedded is not None else None
    if embedded_fp is not None and named_key is not None and embedded_fp != named_key:
        report(
            ProblemKind.SIGNER_MISMATCH,
            PUBLIC_KEY_PATH,
            f"holds key {embedded_fp}, but the manifest names {named_key}",
        )

    if envelope is not None:
        verified_by = _verifying_key(envelope, pinned, embedded)
        result.verified_by = verified_by
        if pinned:
            if verified_by in pinned:
                result.pinned = True
            elif verified_by is not None:
                report(ProblemKind.UNKNOWN_KEY, verified_by, "signed with a key that is not pinned")
            else:
                report(ProblemKind.BAD_SIGNATURE, ENVELOPE_PATH, "no pinned or enclosed key verifies it")
                if envelope.keyid not in pinned:
                    report(ProblemKind.UNKNOWN_KEY, envelope.keyid, "the envelope names a key that is not pinned")
        elif verified_by is None:
            report(ProblemKind.BAD_SIGNATURE, ENVELOPE_PATH, f"{PUBLIC_KEY_PATH} does not verify it")
        if verified_by is not None:
            result.signer = verified_by
            for claimed, where in ((named_key, MANIFEST_PATH), (envelope.keyid, ENVELOPE_PATH)):
                if claimed is not None and claimed != verified_by:
                    report(
                        ProblemKind.SIGNER_MISMATCH,
                        where,
                        f"names key {claimed}, but the signature was made with {verified_by}",
                    )
    if result.signer is None:
        result.signer = named_key

    if manifest is None:
        return result

    # --- the files: each inflated at most to the size the signed manifest declares ---
    listed: dict[str, dict[str, Any]] = {entry["path"]: entry for entry in manifest["files"]}
    for member_path, declared in listed.items():
        result.files_checked += 1
        entry = by_name.get(member_path)
        if entry is None:
            report(ProblemKind.MISSING_FILE, member_path)
            continue
        if entry.size != declared["size"]:
            report(
                ProblemKind.MODIFIED_FILE,
                member_path,
                f"the archive declares {entry.size} bytes; the manifest says {declared['size']} (not inflated)",
            )
            continue
        digest, _size, _data, error = inflate(handle, entry, limit=declared["size"], keep=False)
        if error:
            report(ProblemKind.MODIFIED_FILE, member_path, error)
        elif digest != declared["sha256"]:
            report(
                ProblemKind.MODIFIED_FILE,
                member_path,
                f"SHA-256 {digest[:16]}…; the manifest says {declared['sha256'][:16]}…",
            )
    control_files = (
        TIMESTAMPED_CONTROL_FILES if manifest["version"] >= 3
        else CONTROL_FILES if manifest["version"] >= 2 else LEGACY_CONTROL_FILES
    )
    token, stamp_error = control(TIMESTAMP_PATH) if manifest["version"] >= 3 else (None, "missing")
    for entry in entries:
        if entry.name not in listed and entry.name not in control_files:
            report(ProblemKind.UNEXPECTED_FILE, entry.name, "not listed in the signed manifest (not inflated)")
    if manifest["version"] >= 2:
        sums_data, sums_error = control(CHECKSUMS_PATH)
        if sums_error == "missing":
            report(ProblemKind.MISSING_FILE, CHECKSUMS_PATH)
        elif sums_data is None:
            report(ProblemKind.MODIFIED_FILE, CHECKSUMS_PATH, sums_error)
        elif envelope_data is not None and manifest_file is not None and pem_data is not None:
            stamped = [(TIMESTAMP_PATH, token)] if token is not None else []
            expected = checksums_file(
                [(MANIFEST_PATH, manifest_file), (ENVELOPE_PATH, envelope_data), (PUBLIC_KEY_PATH, pem_data), *stamped],
                [(entry["path"], entry["sha256"]) for entry in manifest["files"]],
            )
            if sums_data != expected:
                report(ProblemKind.MODIFIED_FILE, CHECKSUMS_PATH, "not the checksums of this bundle's files")

    if manifest["version"] >= 3:
        _check_timestamp(result, manifest.get("timestamp"), token, stamp_error, envelope, tsa, report)
    elif tsa:
        report(ProblemKind.TIMESTAMP_MISSING, TIMESTAMP_PATH, "bundles before manifest version 3 carry no token")

    chain = manifest["chain"]
    sequence = chain["sequence"]
    previous_sha = chain["previous_manifest_sha256"]
    previous_sig = chain["previous_signature"]
    genesis = chain["genesis"]
    if genesis != (sequence == 0) or (sequence == 0) != (previous_sha is None):
        report(
            ProblemKind.BROKEN_CHAIN,
            f"sequence {sequence}",
            "the manifest's genesis flag, sequence and predecessor do not agree",
        )
    context: dict[str, Any] = manifest["context"]
    result.key_valid_from = parse_api_datetime(manifest["signing_key"]["valid_from"])
    result.does_not_prove = tuple(manifest["does_not_prove"])
    result.link = ChainLink(
        path=path,
        chain_id=chain["chain_id"],
        sequence=sequence,
        genesis=genesis,
        manifest_sha256=result.manifest_sha256,
        signature=envelope.signature_b64 if envelope is not None else "",
        previous_manifest_sha256=previous_sha,
        previous_signature=previous_sig,
        signer_fingerprint=result.signer,
        created_at=parse_api_datetime(manifest["created_at"]),
        pull_started_at=parse_api_datetime(context.get("pull_started_at")),
        pull_finished_at=parse_api_datetime(context.get("pull_finished_at")),
        new_chain_reason=chain["new_chain_reason"] or "",
    )
    return result


def _check_timestamp(
    result: _Inspection,
    entry: object,
    token: bytes | None,
    stamp_error: str,
    envelope: Envelope | None,
    tsa: Sequence[x509.Certificate],
    report: Any,
) -> None:
    """The RFC 3161 token against the manifest's ``timestamp`` section and ``--tsa-cert`` (fail closed)."""
    section = entry if isinstance(entry, dict) else {}
    authority = section.get("authority")
    result.timestamp_authority = authority if isinstance(authority, str) else None
    required = section.get("required") is True
    if token is None and stamp_error != "missing":
        report(ProblemKind.MODIFIED_FILE, TIMESTAMP_PATH, stamp_error)
        return
    if token is None:
        if result.timestamp_authority is None:
            result.timestamp_note = "none: no time-stamping authority was configured at export"
        elif required:
            result.timestamp_note = f"none, although the export required a token from {authority}"
            report(ProblemKind.TIMESTAMP_MISSING, TIMESTAMP_PATH, f"the manifest requires a token from {authority}")
            return
        else:
            result.timestamp_note = f"none: {authority} gave no token and the export had --tsa-optional"
        if tsa:
            report(ProblemKind.TIMESTAMP_MISSING, TIMESTAMP_PATH, "--tsa-cert was given, but the bundle holds no token")
        return
    if result.timestamp_authority is None:
        report(ProblemKind.UNEXPECTED_FILE, TIMESTAMP_PATH, "a timestamp token, but the manifest names no TSA")
        return
    if envelope is None:
        return  # the envelope's problem is reported already; there is no signature to check the token over
    if not tsa:
        result.timestamp_note = f"not checked: the bundle holds a token from {authority}; pass --tsa-cert PEM"
        report(ProblemKind.TIMESTAMP_NOT_CHECKED, TIMESTAMP_PATH, f"a token from {authority}")
        return
    checked = check_token(token, envelope.signature, tsa)
    if checked.problem:
        result.timestamp_note = f"NOT TRUSTED: the token does not verify ({checked.problem})"
        report(ProblemKind.TIMESTAMP_INVALID, TIMESTAMP_PATH, checked.problem)
        return
    result.trusted_time = checked.time
    signer = f" ({checked.authority})" if checked.authority else ""
    result.timestamp_note = f"from {authority}{signer}, RFC 3161 token checked with --tsa-cert"


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _optional_str(value: object) -> bool:
    return value is None or isinstance(value, str)


_CHAIN_TEXT_KEYS = ("previous_manifest_sha256", "previous_signature", "previous_key_fingerprint", "new_chain_reason")


def _parse_manifest(data: bytes) -> dict[str, Any] | str:
    """The manifest as a dict whose every field verification reads has the right type, or why not.

    Wrong types and deep nesting are reasons, never exceptions (issue 22 §6).
    """
    try:
        document = load_json(data)
    except ValueError as exc:
        return str(exc)
    if not isinstance(document, dict):
        return "not a JSON object"
    version = document.get("version")
    if document.get("format") != BUNDLE_FORMAT or not _is_int(version) or version not in READABLE_VERSIONS:
        return f"format {document.get('format')!r} version {version!r} is not understood"
    files = document.get("files")
    if not isinstance(files, list) or not all(
        isinstance(entry, dict)
        and isinstance(entry.get("path"), str)
        and isinstance(entry.get("sha256"), str)
        and _SHA256_HEX.fullmatch(entry["sha256"]) is not None
        and _is_int(entry.get("size"))
        and entry["size"] >= 0
        and isinstance(entry.get("role"), str)
        for entry in files
    ):
        return "the file list is missing or malformed (each entry needs path, sha256, size and role)"
    paths = [entry["path"] for entry in files]
    if len(set(paths)) != len(paths) or set(paths) & set(CONTROL_FILES):
        return "the file list names a file twice, or names a control file"
    chain = document.get("chain")
    if (
        not isinstance(chain, dict)
        or not isinstance(chain.get("chain_id"), str)
        or not _is_int(chain.get("sequence"))
        or chain["sequence"] < 0
        or not isinstance(chain.get("genesis"), bool)
        or not all(
            _optional_str(chain.get(key))
            for key in _CHAIN_TEXT_KEYS
        )
    ):
        return "the chain section is missing or malformed"
    signing_key = document.get("signing_key")
    if not isinstance(signing_key, dict) or not all(
        isinstance(signing_key.get(key), str) for key in ("fingerprint", "valid_from")
    ):
        return "the signing key section is missing or malformed"
    context = document.get("context")
    if not isinstance(context, dict) or not all(
        _optional_str(context.get(key)) for key in ("pull_started_at", "pull_finished_at")
    ):
        return "the context section is missing or malformed"
    does_not_prove = document.get("does_not_prove")
    if not isinstance(does_not_prove, list) or not all(isinstance(item, str) for item in does_not_prove):
        return "does_not_prove must be a list of sentences"
    if not isinstance(document.get("created_at"), str):
        return "created_at is missing or not text"
    return document


def _key_fingerprint(manifest: dict[str, Any] | None) -> str | None:
    if manifest is None:
        return None
    value = manifest["signing_key"]["fingerprint"]
    return value if isinstance(value, str) else None


def _verifying_key(
    envelope: Envelope, pinned: dict[str, Ed25519PublicKey], embedded: Ed25519PublicKey | None
) -> str | None:
    """The fingerprint of the first key (pinned first, then the enclosed one) that verifies."""
    candidates: list[tuple[str, Ed25519PublicKey]] = sorted(pinned.items(), key=lambda item: item[0] != envelope.keyid)
    if embedded is not None:
        candidates.append((SigningKeys.fingerprint(embedded), embedded))
    for fingerprint, key in candidates:
        if envelope.verifies_with(key):
            return fingerprint
    return None


def _normalise_hash(value: str) -> str:
    text = value.strip().lower().removeprefix("sha256:")
    if not _SHA256_HEX.fullmatch(text):
        raise ConfigurationError(
            f"--manifest-sha256 {value!r} is not a SHA-256 (64 hex digits).",
            hint="Pass the value `auditor export` printed as \"Manifest SHA-256\".",
        )
    return text


def _trusted(
    target: _Inspection, others: Sequence[_Inspection], pinned: dict[str, Ed25519PublicKey], anchors: Sequence[str]
) -> set[str]:
    """Manifest SHA-256s of the examined bundles that are trusted (pinned, anchored, or named by one)."""
    items = [item for item in (target, *others) if item.manifest_sha256 is not None]
    trusted = {
        str(item.manifest_sha256)
        for item in items
        if item.verified_by is not None and (item.verified_by in pinned or item.manifest_sha256 in anchors)
    }
    changed = True
    while changed:
        changed = False
        for later in items:
            if later.manifest_sha256 not in trusted or later.link is None:
                continue
            for earlier in items:
                if (
                    earlier.link is not None
                    and earlier.verified_by is not None
                    and earlier.manifest_sha256 not in trusted
                    and later.link.previous_manifest_sha256 == earlier.manifest_sha256
                    and later.link.previous_signature == earlier.link.signature
                ):
                    trusted.add(str(earlier.manifest_sha256))
                    changed = True
    return trusted


# --- the chain -------------------------------------------------------------------------------


def _chain_problems(
    target: ChainLink, links: Sequence[ChainLink], pinned: dict[str, Ed25519PublicKey]
) -> list[Problem]:
    problems: list[Problem] = []
    same: dict[str, ChainLink] = {}
    for link in links:
        if link.chain_id != target.chain_id:
            problems.append(
                Problem(
                    ProblemKind.DIFFERENT_CHAIN,
                    link.path.name,
                    link.chain_id,
                    f"belongs to chain {link.chain_id}, not {target.chain_id}",
                )
            )
        else:
            same.setdefault(link.manifest_sha256, link)  # the same bundle given twice counts once
    by_sequence: dict[int, list[ChainLink]] = defaultdict(list)
    by_predecessor: dict[str, list[ChainLink]] = defaultdict(list)
    for link in same.values():
        by_sequence[link.sequence].append(link)
        if link.previous_manifest_sha256:
            by_predecessor[link.previous_manifest_sha256].append(link)
    forks: set[frozenset[str]] = set()
    for sequence, group in sorted(by_sequence.items()):
        if len(group) > 1:
            forks.add(frozenset(link.manifest_sha256 for link in group))
            problems.append(
                Problem(
                    ProblemKind.FORKED_CHAIN,
                    _names(group),
                    f"sequence {sequence}",
                    f"{len(group)} different manifests claim sequence {sequence}",
                )
            )
    for predecessor, group in sorted(by_predecessor.items()):
        if len(group) > 1 and frozenset(link.manifest_sha256 for link in group) not in forks:
            problems.append(
                Problem(
                    ProblemKind.FORKED_CHAIN,
                    _names(group),
                    f"predecessor {predecessor[:16]}…",
                    f"{len(group)} different manifests follow the same predecessor",
                )
            )
    sequences = sorted(by_sequence)
    for lower, upper in itertools.pairwise(sequences):
        if upper - lower > 1:
            missing = f"{lower + 1}" if upper - lower == 2 else f"{lower + 1}–{upper - 1}"
            problems.append(
                Problem(
                    ProblemKind.SEQUENCE_GAP,
                    _names(by_sequence[upper]),
                    f"sequence {missing}",
                    f"no bundle given between sequence {lower} and {upper}",
                )
            )
            continue
        for later in by_sequence[upper]:
            for earlier in by_sequence[lower]:
                if (
                    later.previous_manifest_sha256 != earlier.manifest_sha256
                    or later.previous_signature != earlier.signature
                ):
                    problems.append(
                        Problem(
                            ProblemKind.BROKEN_CHAIN,
                            later.path.name,
                            f"sequence {upper}",
                            f"does not name {earlier.path.name} (sequence {lower}) as its predecessor",
                        )
                    )
                elif later.signer_fingerprint != earlier.signer_fingerprint:
                    # A rotation is accepted only when both keys were pinned (issue 22 §5).
                    both_pinned = later.signer_fingerprint in pinned and earlier.signer_fingerprint in pinned
                    problems.append(
                        Problem(
                            ProblemKind.SIGNER_ROTATED if both_pinned else ProblemKind.SIGNER_CHANGED,
                            later.path.name,
                            str(later.signer_fingerprint),
                            f"sequence {lower} was signed by {earlier.signer_fingerprint}",
                        )
                    )
    return problems


def _names(links: Iterable[ChainLink]) -> str:
    return ", ".join(sorted(link.path.name for link in links))


def _dedupe(problems: Iterable[Problem]) -> list[Problem]:
    seen: set[Problem] = set()
    unique: list[Problem] = []
    for problem in problems:
        if problem not in seen:
            seen.add(problem)
            unique.append(problem)
    return unique


# --- text ------------------------------------------------------------------------------------


def format_report(report: VerificationReport) -> str:
    """The verdict as plain text for a person (the CLI prints it)."""
    counts = f"{len(report.failures)} failure(s), {len(report.warnings)} warning(s)"
    lines = []
    if report.integrity_only:
        lines.append(
            "INTEGRITY ONLY (--allow-unpinned): the signer was not checked against a key or manifest hash "
            "you received separately, so this does not show who made the bundle."
        )
    if report.ok:
        verdict = "INTACT"
    elif {problem.kind for problem in report.failures} == {ProblemKind.SIGNER_NOT_TRUSTED}:
        verdict = "NOT TRUSTED (signature valid, signer not trusted)"
    else:
        verdict = "NOT INTACT"
    lines += [f"Evidence bundle: {report.bundle}", f"Result: {verdict} ({counts})"]
    if report.manifest_sha256:
        lines.append(f"Manifest SHA-256: {report.manifest_sha256}  (compare with the value the exporter sent you)")
    if report.zip_sha256:
        lines.append(f"Bundle SHA-256: {report.zip_sha256}  (of the whole ZIP file)")
    if report.chain_id is not None:
        genesis = ", genesis (first of its chain)" if report.genesis else ""
        lines.append(f"Chain: {report.chain_id}, sequence {report.sequence}{genesis}")
    if report.signer_fingerprint:
        pinned = "pinned" if report.signer_pinned else "NOT pinned"
        since = f", key period from {_text(report.key_valid_from)}" if report.key_valid_from else ""
        lines.append(f"Signer: {report.signer_fingerprint} ({pinned}{since})")
    lines.append(f"Trusted through: {report.trust_root or 'nothing (no --public-key or --manifest-sha256 matched)'}")
    if report.created_at:
        lines.append(f"Created: {_text(report.created_at)} (exporter's clock)")
    if report.trusted_time is not None:
        lag = ""
        if report.created_at is not None:
            lag = f"; {(report.trusted_time - report.created_at).total_seconds():+.0f} s after the exporter's clock"
        lines.append(f"Trusted time: {_text(report.trusted_time)} {report.timestamp_note}{lag}")
    elif report.timestamp_note:
        lines.append(f"Trusted time: {report.timestamp_note}")
    if report.signed_format:
        lines.append(f"Signed statement: {report.signed_format}")
    if report.covered_from or report.covered_until:
        lines.append(f"Pulls covered: {_text(report.covered_from)} to {_text(report.covered_until)}")
    lines.append(f"Files checked: {report.files_checked}")
    if len(report.chain) > 1:
        lines.append("Chain examined:")
        for link in report.chain:
            tag = " (genesis)" if link.genesis else ""
            lines.append(f"  {link.chain_id} #{link.sequence}{tag}: {link.path.name} {link.manifest_sha256[:16]}…")
        if report.sequences and report.sequences[0] != 0:
            lines.append(f"  Bundles before sequence {report.sequences[0]} were not given, so they were not checked.")
    elif report.sequence:
        lines.append("Previous bundles were not given: the chain link to them was not checked (--previous).")
    if report.problems:
        lines.append("Problems:")
        for problem in report.problems:
            level = "FAIL" if problem.is_failure else "WARN"
            detail = f": {problem.detail}" if problem.detail else ""
            lines.append(f"  {level} {problem.kind.value} [{problem.bundle}] {problem.subject}{detail}")
            lines.append(f"       ({problem.kind.meaning})")
    if report.does_not_prove:
        lines.append("What this bundle does not prove:")
        lines.extend(f"  - {item}" for item in report.does_not_prove)
    return "\n".join(lines) + "\n"


def _text(moment: datetime | None) -> str:
    return moment.isoformat(timespec="seconds") if moment else "unknown"
