"""Offline verification of evidence bundles and of the chain they form (controls.md §3.9).

Needs only the ZIP files (and optionally pinned public keys): no data directory, no network.
Problems are reported by kind, each naming the member, key or sequence concerned; a file that
cannot be read as a bundle at all raises :class:`~auditor.errors.EvidenceError` (exit 6).
"""

from __future__ import annotations

import enum
import hashlib
import itertools
import json
import zipfile
import zlib
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from auditor.errors import EvidenceError
from auditor.evidence.bundle import (
    BUNDLE_FORMAT,
    CONTROL_FILES,
    ENVELOPE_PATH,
    MANIFEST_PATH,
    MANIFEST_VERSION,
    PUBLIC_KEY_PATH,
)
from auditor.evidence.dsse import MANIFEST_PAYLOAD_TYPE, Envelope, EnvelopeFormatError
from auditor.evidence.keys import SigningKeys
from auditor.models import parse_api_datetime

__all__ = [
    "ChainLink",
    "Problem",
    "ProblemKind",
    "VerificationReport",
    "format_report",
    "load_public_keys",
    "verify_bundle",
]

#: Control files (manifest, envelope, PEM) are small; anything bigger is not ours.
_CONTROL_LIMIT = 16 * 1024 * 1024
_CHUNK = 1024 * 1024


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

    @property
    def is_failure(self) -> bool:
        """False for warnings: the bundle is intact but the auditor should know."""
        return self not in _WARNINGS

    @property
    def meaning(self) -> str:
        """One sentence for the report: what this kind of problem means for the auditor."""
        return _MEANINGS[self]


_WARNINGS = frozenset({ProblemKind.SIGNER_NOT_PINNED, ProblemKind.SIGNER_CHANGED})

_MEANINGS: dict[ProblemKind, str] = {
    ProblemKind.MODIFIED_FILE: "the file's content differs from what was signed",
    ProblemKind.MISSING_FILE: "a file the bundle must hold is not in it",
    ProblemKind.UNEXPECTED_FILE: "the bundle holds a file the signed manifest does not list",
    ProblemKind.BAD_SIGNATURE: "the manifest's signature does not verify",
    ProblemKind.UNKNOWN_KEY: "the bundle was signed by a key that is not among the pinned public keys",
    ProblemKind.SIGNER_MISMATCH: "the key that signed is not the key the manifest names",
    ProblemKind.SIGNER_NOT_PINNED: (
        "checked against the key inside the bundle only; pass --public-key with the key you "
        "received out of band to know who signed"
    ),
    ProblemKind.SIGNER_CHANGED: (
        "the signing key differs from the previous bundle's: confirm the key rotation with the exporter"
    ),
    ProblemKind.BROKEN_CHAIN: "a manifest does not name its predecessor's SHA-256 and signature",
    ProblemKind.FORKED_CHAIN: "two different bundles claim the same place in the chain",
    ProblemKind.SEQUENCE_GAP: "a bundle between the given ones is missing",
    ProblemKind.DIFFERENT_CHAIN: "a given bundle belongs to another chain",
    ProblemKind.MANIFEST_UNPARSEABLE: "the manifest cannot be read, so its files cannot be checked",
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
    previous: Sequence[Path] = (),
) -> VerificationReport:
    """Check one bundle's files and signature, and its chain with the ``previous`` bundles.

    Raises EvidenceError when ``path`` or one of ``previous`` is not a readable bundle (not a ZIP,
    truncated, or holding neither a manifest nor a signature envelope).
    """
    pinned = {SigningKeys.fingerprint(key): key for key in trusted_keys}
    target = _inspect(Path(path), pinned)
    others = [_inspect(Path(item), pinned) for item in previous]
    problems = list(target.problems)
    for other in others:
        problems.extend(other.problems)
    links = [item.link for item in (target, *others) if item.link is not None]
    if target.link is not None:
        problems.extend(_chain_problems(target.link, links))
    starts = [link.pull_started_at for link in links if link.pull_started_at]
    ends = [link.pull_finished_at for link in links if link.pull_finished_at]
    link = target.link
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


# --- one bundle ------------------------------------------------------------------------------


@dataclass(slots=True)
class _Member:
    size: int = 0
    sha256: str = ""
    error: str = ""
    data: bytes | None = None  # control files only


@dataclass(slots=True)
class _Inspection:
    problems: list[Problem] = field(default_factory=list)
    link: ChainLink | None = None
    manifest_sha256: str | None = None
    signer: str | None = None
    pinned: bool = False
    key_valid_from: datetime | None = None
    files_checked: int = 0
    does_not_prove: tuple[str, ...] = ()


def _inspect(path: Path, pinned: dict[str, Ed25519PublicKey]) -> _Inspection:
    name = path.name
    result = _Inspection()

    def report(kind: ProblemKind, subject: str, detail: str = "") -> None:
        result.problems.append(Problem(kind, name, subject, detail))

    members, duplicates = _read_members(path)
    for duplicate in duplicates:
        report(ProblemKind.UNEXPECTED_FILE, duplicate, "the archive holds this name more than once")

    envelope: Envelope | None = None
    envelope_member = members.get(ENVELOPE_PATH)
    if envelope_member is None:
        report(ProblemKind.MISSING_FILE, ENVELOPE_PATH, "the signature envelope is missing")
    elif envelope_member.data is None:
        report(ProblemKind.MODIFIED_FILE, ENVELOPE_PATH, envelope_member.error)
    else:
        try:
            envelope = Envelope.from_json(envelope_member.data)
        except EnvelopeFormatError as exc:
            report(ProblemKind.BAD_SIGNATURE, ENVELOPE_PATH, f"not a readable DSSE envelope: {exc}")
        else:
            if envelope.payload_type != MANIFEST_PAYLOAD_TYPE:
                report(
                    ProblemKind.BAD_SIGNATURE,
                    ENVELOPE_PATH,
                    f"payload type {envelope.payload_type!r} is not {MANIFEST_PAYLOAD_TYPE!r}",
                )

    manifest_member = members.get(MANIFEST_PATH)
    manifest_file = manifest_member.data if manifest_member is not None else None
    if manifest_member is None:
        report(ProblemKind.MISSING_FILE, MANIFEST_PATH)
    elif manifest_file is None:
        report(ProblemKind.MODIFIED_FILE, MANIFEST_PATH, manifest_member.error)
    elif envelope is not None and manifest_file != envelope.payload:
        report(ProblemKind.MODIFIED_FILE, MANIFEST_PATH, "differs from the signed copy in signature.json")

    manifest_bytes = envelope.payload if envelope is not None else manifest_file
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
    named_key = _key_fingerprint(manifest)

    # --- the signature ---
    embedded: Ed25519PublicKey | None = None
    pem_member = members.get(PUBLIC_KEY_PATH)
    if pem_member is None:
        report(ProblemKind.MISSING_FILE, PUBLIC_KEY_PATH)
    elif pem_member.data is None:
        report(ProblemKind.MODIFIED_FILE, PUBLIC_KEY_PATH, pem_member.error)
    else:
        try:
            embedded = SigningKeys.load_public_pem(pem_member.data, source=PUBLIC_KEY_PATH)
        except EvidenceError as exc:
            report(ProblemKind.MODIFIED_FILE, PUBLIC_KEY_PATH, exc.message)
        else:
            # The manifest binds the key by fingerprint; the file's exact bytes are bound by being
            # the one canonical PEM of that key, so no byte of the bundle goes unchecked.
            if pem_member.data != SigningKeys.public_pem(embedded).encode("ascii"):
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
        if pinned:
            if verified_by in pinned:
                result.pinned = True
            elif verified_by is not None:
                report(ProblemKind.UNKNOWN_KEY, verified_by, "signed with a key that is not pinned")
            else:
                report(ProblemKind.BAD_SIGNATURE, ENVELOPE_PATH, "no pinned or enclosed key verifies it")
                if envelope.keyid not in pinned:
                    report(ProblemKind.UNKNOWN_KEY, envelope.keyid, "the envelope names a key that is not pinned")
        elif verified_by is not None:
            report(ProblemKind.SIGNER_NOT_PINNED, verified_by)
        else:
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

    # --- the files ---
    listed: dict[str, dict[str, Any]] = {}
    for entry in manifest["files"]:
        listed[entry["path"]] = entry
    for member_path, entry in listed.items():
        member = members.get(member_path)
        result.files_checked += 1
        if member is None:
            report(ProblemKind.MISSING_FILE, member_path)
        elif member.error:
            report(ProblemKind.MODIFIED_FILE, member_path, member.error)
        elif member.sha256 != entry["sha256"] or member.size != entry["size"]:
            report(
                ProblemKind.MODIFIED_FILE,
                member_path,
                f"SHA-256 {member.sha256[:16]}…, {member.size} bytes; "
                f"the manifest says {str(entry['sha256'])[:16]}…, {entry['size']} bytes",
            )
    for member_path in members:
        if member_path not in listed and member_path not in CONTROL_FILES:
            report(ProblemKind.UNEXPECTED_FILE, member_path)

    chain = manifest["chain"]
    sequence = chain["sequence"]
    previous_sha = chain.get("previous_manifest_sha256")
    previous_sig = chain.get("previous_signature")
    genesis = chain.get("genesis") is True
    if genesis != (sequence == 0) or (sequence == 0) != (previous_sha is None):
        report(
            ProblemKind.BROKEN_CHAIN,
            f"sequence {sequence}",
            "the manifest's genesis flag, sequence and predecessor do not agree",
        )
    raw_context = manifest.get("context")
    context: dict[str, Any] = raw_context if isinstance(raw_context, dict) else {}
    result.key_valid_from = parse_api_datetime(manifest["signing_key"].get("valid_from"))
    result.does_not_prove = tuple(str(item) for item in manifest.get("does_not_prove", []))
    result.link = ChainLink(
        path=path,
        chain_id=chain["chain_id"],
        sequence=sequence,
        genesis=genesis,
        manifest_sha256=result.manifest_sha256,
        signature=envelope.signature_b64 if envelope is not None else "",
        previous_manifest_sha256=previous_sha if isinstance(previous_sha, str) else None,
        previous_signature=previous_sig if isinstance(previous_sig, str) else None,
        signer_fingerprint=result.signer,
        created_at=parse_api_datetime(manifest.get("created_at")),
        pull_started_at=parse_api_datetime(context.get("pull_started_at")),
        pull_finished_at=parse_api_datetime(context.get("pull_finished_at")),
        new_chain_reason=str(chain.get("new_chain_reason") or ""),
    )
    return result


def _read_members(path: Path) -> tuple[dict[str, _Member], list[str]]:
    """Hash every member (streaming), keep control files' bytes; CRC/zlib errors are per member."""
    if not path.is_file():
        raise EvidenceError(f"Cannot read {path}: it does not exist or is not a file.")
    try:
        archive = zipfile.ZipFile(path)  # read member by member: bundles can be large
    except OSError as exc:
        raise EvidenceError(f"Cannot read {path}: {exc.strerror or exc}.") from exc
    except (zipfile.BadZipFile, zipfile.LargeZipFile, ValueError, EOFError) as exc:
        raise EvidenceError(
            f"{path} is not a readable ZIP archive ({exc}); it may be truncated or not an evidence bundle.",
            hint="Ask the exporter to send the bundle again and compare its manifest SHA-256.",
        ) from exc
    members: dict[str, _Member] = {}
    counts = Counter(info.filename for info in archive.infolist())
    with archive:
        for info in archive.infolist():
            if info.filename in members:
                continue
            members[info.filename] = _read_member(archive, info)
    return members, sorted(name for name, count in counts.items() if count > 1)


def _read_member(archive: zipfile.ZipFile, info: zipfile.ZipInfo) -> _Member:
    keep = info.filename in CONTROL_FILES
    if keep and info.file_size > _CONTROL_LIMIT:
        return _Member(error=f"{info.file_size} bytes, too large for a {info.filename}")
    digest = hashlib.sha256()
    size = 0
    kept = bytearray()
    try:
        with archive.open(info) as stream:
            while chunk := stream.read(_CHUNK):
                digest.update(chunk)
                size += len(chunk)
                if keep:
                    kept.extend(chunk)
    except (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError, RuntimeError, ValueError) as exc:
        return _Member(error=f"cannot be read from the archive ({exc}): it was altered or damaged")
    return _Member(size=size, sha256=digest.hexdigest(), data=bytes(kept) if keep else None)


def _parse_manifest(data: bytes) -> dict[str, Any] | str:
    """The manifest as a dict with the fields verification relies on, or why it is unusable."""
    try:
        document = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        return f"not JSON: {exc}"
    if not isinstance(document, dict):
        return "not a JSON object"
    if document.get("format") != BUNDLE_FORMAT or document.get("version") != MANIFEST_VERSION:
        return f"format {document.get('format')!r} version {document.get('version')!r} is not understood"
    files = document.get("files")
    if not isinstance(files, list) or not all(
        isinstance(entry, dict)
        and isinstance(entry.get("path"), str)
        and isinstance(entry.get("sha256"), str)
        and isinstance(entry.get("size"), int)
        for entry in files
    ):
        return "the file list is missing or malformed"
    chain = document.get("chain")
    if (
        not isinstance(chain, dict)
        or not isinstance(chain.get("chain_id"), str)
        or not isinstance(chain.get("sequence"), int)
        or isinstance(chain.get("sequence"), bool)
    ):
        return "the chain section is missing or malformed"
    if not isinstance(document.get("signing_key"), dict):
        return "the signing key section is missing"
    return document


def _key_fingerprint(manifest: dict[str, Any] | None) -> str | None:
    if manifest is None:
        return None
    value = manifest["signing_key"].get("fingerprint")
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


# --- the chain -------------------------------------------------------------------------------


def _chain_problems(target: ChainLink, links: Sequence[ChainLink]) -> list[Problem]:
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
                    problems.append(
                        Problem(
                            ProblemKind.SIGNER_CHANGED,
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
    verdict = "INTACT" if report.ok else "NOT INTACT"
    counts = f"{len(report.failures)} failure(s), {len(report.warnings)} warning(s)"
    lines = [f"Evidence bundle: {report.bundle}", f"Result: {verdict} ({counts})"]
    if report.manifest_sha256:
        lines.append(f"Manifest SHA-256: {report.manifest_sha256}  (compare with the value the exporter sent you)")
    if report.chain_id is not None:
        genesis = ", genesis (first of its chain)" if report.genesis else ""
        lines.append(f"Chain: {report.chain_id}, sequence {report.sequence}{genesis}")
    if report.signer_fingerprint:
        pinned = "pinned" if report.signer_pinned else "NOT pinned"
        since = f", key period from {_text(report.key_valid_from)}" if report.key_valid_from else ""
        lines.append(f"Signer: {report.signer_fingerprint} ({pinned}{since})")
    if report.created_at:
        lines.append(f"Created: {_text(report.created_at)} (exporter's clock)")
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
