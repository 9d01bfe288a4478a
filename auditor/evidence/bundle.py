"""Building and writing signed, hash-chained evidence bundles.

A bundle is one ZIP an auditor can check offline (controls.md §3):

- ``evidence/raw/NNNN-<slug>.json``: the API response pages exactly as received (primary evidence);
- ``evidence/snapshot.json`` and ``views/*``: the parsed snapshot, findings, changes, exceptions,
  attestations as JSON and CSV, one XLSX workbook, and optionally the HTML and PDF reports, all
  views of the raw pages, hashed as delivered;
- ``manifest.json``: every file's path, size, media type, SHA-256 and role, the pull's context,
  the retention period, the chain link (chain id, sequence, genesis, previous manifest's SHA-256
  and signature), the signing key's fingerprint and key period, and what the bundle does not prove;
- ``evidence/rule-inputs.json``: the recorded inputs the rules used besides the raw pages
  (configuration, thresholds, first-seen history, attestations, exceptions, the previous
  snapshot), so ``auditor verify --reperform`` can re-derive every view;
- ``signature.json``: a DSSE envelope over an in-toto Statement (``auditor.evidence.intoto``) whose
  subjects are ``manifest.json`` and every listed file (before version 3: over the manifest bytes);
  ``signer.pub.pem``: the key;
- ``signature.tsr``: with ``--tsa-url``, an RFC 3161 token over the signature (``evidence.timestamp``);
- ``SHA256SUMS``: every other member's SHA-256 in ``sha256sum -c`` form (derived, so checked too).

Everything is a function of its inputs and the injected clock: the same contents, key, chain
position and ``now`` give the same ZIP, byte for byte.

(Over 500 lines: the manifest, the DSSE signature and the chain link are built in one place, so
what is signed is exactly what was checked.)
"""

from __future__ import annotations

import contextlib
import enum
import hashlib
import io
import json
import os
import re
import secrets
import uuid
import zipfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from auditor.atomic import write_bytes_atomic
from auditor.auditlog import AuditLogRun
from auditor.errors import EvidenceError
from auditor.evidence import intoto
from auditor.evidence.auditlog import audit_log_files
from auditor.evidence.dsse import Envelope
from auditor.evidence.keys import SigningKeys
from auditor.evidence.timestamp import NO_TSA_ENTRY, TIMESTAMP_PATH, TimestampAuthority
from auditor.labels import iso
from auditor.models import RawPage

__all__ = [
    "BUNDLE_FORMAT",
    "CHECKSUMS_PATH",
    "CONTROL_FILES",
    "DOES_NOT_PROVE",
    "ENVELOPE_PATH",
    "IDENTITY_SOURCE_DIR",
    "LEGACY_CONTROL_FILES",
    "MANIFEST_PATH",
    "MANIFEST_VERSION",
    "PUBLIC_KEY_PATH",
    "READABLE_VERSIONS",
    "REQUIRED_CONTEXT_KEYS",
    "RULE_INPUTS_PATH",
    "TIMESTAMPED_CONTROL_FILES",
    "Bundle",
    "BundleContents",
    "ChainHeadLike",
    "ChainPosition",
    "FileRole",
    "build_bundle",
    "canonical_json",
    "checksums_file",
    "manifest_sha256",
    "new_chain_id",
    "raw_page_path",
    "write_bundle",
]

BUNDLE_FORMAT = "certcentral-auditor-evidence"
#: Version 2 adds SHA256SUMS, the rule inputs and the rules version (issue 12 §1, §5); version 3
#: signs an in-toto Statement and states the time-stamping authority (issue 19).
MANIFEST_VERSION = 3
#: Manifest versions the verifier reads (version 1 bundles have no SHA256SUMS).
READABLE_VERSIONS = (1, 2, 3)
MANIFEST_PATH = "manifest.json"
ENVELOPE_PATH = "signature.json"
PUBLIC_KEY_PATH = "signer.pub.pem"
CHECKSUMS_PATH = "SHA256SUMS"
RULE_INPUTS_PATH = "evidence/rule-inputs.json"
#: Where ``--include-identity-source`` puts the identity files (role recorded-input).
IDENTITY_SOURCE_DIR = "evidence/identity-source/"
#: Members that are not listed in the manifest: the manifest itself and what vouches for it.
CONTROL_FILES = (MANIFEST_PATH, ENVELOPE_PATH, PUBLIC_KEY_PATH, CHECKSUMS_PATH)
LEGACY_CONTROL_FILES = CONTROL_FILES[:3]
#: Version 3 control files: the RFC 3161 token comes after the signature, so no manifest lists it.
TIMESTAMPED_CONTROL_FILES = (*CONTROL_FILES, TIMESTAMP_PATH)

#: Context every manifest must bind (controls.md §3.5 and §3.11); ``retention`` moves to the top.
REQUIRED_CONTEXT_KEYS = (
    "account_id",
    "base_url",
    "pull_started_at",
    "pull_finished_at",
    "tool_version",
    "profiles",
    "thresholds",
    "record_counts",
    "pull_complete",
    "retention",
)

#: Stated in every manifest and by the verifier (controls.md §3.12).
DOES_NOT_PROVE = (
    "That CertCentral's API returned every user: the bundle shows what the API answered "
    "(see context.pull_complete and the raw pages), not that the answer was complete.",
    "Anything about multi-factor authentication of individual users: the API does not report it; "
    "MFA evidence is the attestations in this bundle, made by people.",
    "That the signing key was not misused: whoever holds it could rebuild a self-consistent chain. "
    "Compare this manifest's SHA-256 with the value the exporter sent you separately, and pin the "
    "public key you received out of band.",
    "When the bundle was made: created_at is the exporter's clock, not a trusted timestamp.",
    "That the access shown was appropriate: the bundle records what access existed; "
    "the review and its sign-off decide.",
)

#: With a TSA, the sentence on the exporter's clock says what the token adds.
_CLOCK_WITH_TSA = (
    "When the bundle was made, beyond the TSA's token: created_at is the exporter's clock; signature.tsr "
    "(when present) shows that the signature existed by the TSA's time, checked with `auditor verify --tsa-cert`."
)

_OUTSIDE_ANCHOR = (
    "Ask the exporter to send you the SHA-256 of manifest.json (and of the whole ZIP) when the bundle "
    "is made, through a different channel, and pass it to `auditor verify --manifest-sha256`, or "
    "compare it with `sha256sum manifest.json`."
)

_MEDIA_TYPES = {
    ".json": "application/json",
    ".csv": "text/csv; charset=utf-8; header=present",
    ".xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    ".html": "text/html; charset=utf-8",
    ".pdf": "application/pdf",
}

# ZIP stores local time with 2-second resolution from 1980 on; we store the UTC creation time.
_ZIP_EPOCH = datetime(1980, 1, 1, tzinfo=UTC)


class FileRole(enum.StrEnum):
    """Whether a file is what the API said, or a rendering of it (controls.md §3.10)."""

    PRIMARY_EVIDENCE = "primary-evidence"
    #: Inputs the rules used that are not in the raw pages (history, attestations, configuration).
    RECORDED_INPUT = "recorded-input"
    VIEW = "view"


@dataclass(frozen=True, slots=True)
class BundleContents:
    """The bytes that go into a bundle; build them with ``auditor.evidence.contents_from``.

    Every view is passed as the exact bytes delivered, so the manifest hashes what the auditor
    opens. ``report_html`` / ``report_pdf`` are optional: a bundle without them is still complete.
    """

    raw_pages: tuple[RawPage, ...]
    snapshot_json: bytes
    findings_json: bytes
    findings_csv: bytes
    changes_json: bytes
    changes_csv: bytes
    exceptions_json: bytes
    exceptions_csv: bytes
    attestations_json: bytes
    attestations_csv: bytes
    workbook_xlsx: bytes
    users_csv: bytes | None = None
    report_html: bytes | None = None
    report_pdf: bytes | None = None
    #: ``evidence/rule-inputs.json`` (``auditor.evidence.rule_inputs_json``); None in bare test bundles.
    rule_inputs_json: bytes | None = None
    #: (file name, bytes) of the identity source, only with ``--include-identity-source``.
    identity_files: tuple[tuple[str, bytes], ...] = ()
    #: ``review/campaign-N/...``: an access review campaign's records, decisions and worksheets
    #: as imported (issue 14); not re-derivable from the raw pages, so ``--reperform`` skips them.
    review_files: tuple[tuple[str, bytes], ...] = ()
    #: ``views/keys.csv`` / ``views/keys.json``: the credential inventory (issue 17).
    keys_csv: bytes | None = None
    keys_json: bytes | None = None
    #: ``standards/oscal/...``: the OSCAL assessment plan, results and POA&M (issue 19), re-derived by ``--reperform``.
    standards_files: tuple[tuple[str, bytes], ...] = ()
    #: ``evidence/audit-log/...``: every audit-log run archived up to the snapshot (issue 17).
    audit_log_runs: tuple[AuditLogRun, ...] = ()

    def views(self) -> tuple[tuple[str, bytes], ...]:
        """(path, bytes) of every view, in the bundle's fixed order."""
        optional = (
            ("views/users.csv", self.users_csv),
            ("views/keys.json", self.keys_json),
            ("views/keys.csv", self.keys_csv),
            ("report/report.html", self.report_html),
            ("report/report.pdf", self.report_pdf),
        )
        return (
            ("evidence/snapshot.json", self.snapshot_json),
            ("views/findings.json", self.findings_json),
            ("views/findings.csv", self.findings_csv),
            ("views/changes.json", self.changes_json),
            ("views/changes.csv", self.changes_csv),
            ("views/exceptions.json", self.exceptions_json),
            ("views/exceptions.csv", self.exceptions_csv),
            ("views/attestations.json", self.attestations_json),
            ("views/attestations.csv", self.attestations_csv),
            ("views/access-review.xlsx", self.workbook_xlsx),
            *((path, data) for path, data in optional if data is not None),
            *self.review_files,
            *self.standards_files,
        )


class ChainHeadLike(Protocol):
    """The fields of ``auditor.store.ChainHead`` that the next link needs."""

    @property
    def chain_id(self) -> str: ...

    @property
    def sequence(self) -> int: ...

    @property
    def manifest_sha256(self) -> str: ...

    @property
    def signature(self) -> str: ...

    @property
    def key_fingerprint(self) -> str: ...


_CHAIN_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")
_SHA256_HEX = re.compile(r"[0-9a-f]{64}")


def new_chain_id() -> str:
    """A fresh random chain id for a connection's first export or an explicit restart."""
    return str(uuid.uuid4())


@dataclass(frozen=True, slots=True)
class ChainPosition:
    """Where the next manifest sits in its connection's chain (controls.md §3.2, §3.3).

    Sequence 0 is the genesis and has no predecessor; every later manifest names the previous
    manifest's SHA-256 (hex) and signature (base64, as in its envelope).
    """

    chain_id: str
    sequence: int
    previous_manifest_sha256: str | None = None
    previous_signature: str | None = None
    previous_key_fingerprint: str | None = None
    #: Why a new chain starts (first export, or an explicit restart); empty after the genesis.
    new_chain_reason: str = ""

    def __post_init__(self) -> None:
        if not _CHAIN_ID.fullmatch(self.chain_id):
            raise EvidenceError(f"Chain id {self.chain_id!r} is not valid (letters, digits, . _ : -).")
        if self.sequence < 0:
            raise EvidenceError(f"Chain sequence {self.sequence} is negative.")
        has_previous = self.previous_manifest_sha256 is not None or self.previous_signature is not None
        if self.sequence == 0 and has_previous:
            raise EvidenceError("A genesis manifest (sequence 0) cannot name a previous manifest.")
        if self.sequence > 0 and (self.previous_manifest_sha256 is None or not self.previous_signature):
            raise EvidenceError(
                f"Manifest {self.sequence} of chain {self.chain_id} must name the previous manifest's "
                "SHA-256 and signature."
            )
        if self.previous_manifest_sha256 is not None and not _SHA256_HEX.fullmatch(self.previous_manifest_sha256):
            raise EvidenceError("The previous manifest's SHA-256 must be 64 lowercase hex digits.")

    @property
    def genesis(self) -> bool:
        return self.sequence == 0

    @classmethod
    def start(cls, *, reason: str, chain_id: str | None = None) -> ChainPosition:
        """A new chain (genesis); ``reason`` is recorded in the manifest and should be reported."""
        return cls(chain_id=chain_id or new_chain_id(), sequence=0, new_chain_reason=reason)

    @classmethod
    def after(cls, head: ChainHeadLike) -> ChainPosition:
        """The link that follows the stored chain head."""
        return cls(
            chain_id=head.chain_id,
            sequence=head.sequence + 1,
            previous_manifest_sha256=head.manifest_sha256,
            previous_signature=head.signature,
            previous_key_fingerprint=head.key_fingerprint,
        )

    def to_manifest(self) -> dict[str, Any]:
        return {
            "chain_id": self.chain_id,
            "sequence": self.sequence,
            "genesis": self.genesis,
            "new_chain_reason": self.new_chain_reason or None,
            "previous_manifest_sha256": self.previous_manifest_sha256,
            "previous_signature": self.previous_signature,
            "previous_key_fingerprint": self.previous_key_fingerprint,
        }


@dataclass(frozen=True, slots=True)
class Bundle:
    """A built bundle: the ZIP bytes plus what the CLI and the store need to record it."""

    data: bytes
    manifest: bytes
    envelope: bytes
    chain: ChainPosition
    key_fingerprint: str
    created_at: datetime
    #: The Ed25519 signature over the manifest (base64), as in the envelope and the next link.
    signature: str
    #: ``signature.tsr``: the TSA's token over the signature (None without a TSA, or one that was down).
    timestamp_token: bytes | None = None

    @property
    def manifest_sha256(self) -> str:
        return hashlib.sha256(self.manifest).hexdigest()

    @property
    def zip_sha256(self) -> str:
        """SHA-256 of the whole ZIP file, printed beside the manifest's (issue 22 §6)."""
        return hashlib.sha256(self.data).hexdigest()

    def chain_head_fields(self) -> dict[str, Any]:
        """Keyword arguments for ``auditor.store.ChainHead`` after this export."""
        return {
            "chain_id": self.chain.chain_id,
            "sequence": self.chain.sequence,
            "manifest_sha256": self.manifest_sha256,
            "signature": self.signature,
            "key_fingerprint": self.key_fingerprint,
            "exported_at": self.created_at,
        }


def manifest_sha256(bundle: Bundle) -> str:
    """Hex SHA-256 of the bundle's manifest: the value to send the auditor (controls.md §3.8)."""
    return bundle.manifest_sha256


def identity_source_path(index: int, name: str) -> str:
    """``evidence/identity-source/1-hr-export.csv``: a safe member name; .json stays JSON, all else is CSV."""
    stem, _, suffix = name.rpartition(".")
    suffix = "json" if suffix.casefold() == "json" else "csv"
    safe = re.sub(r"[^A-Za-z0-9._-]+", "-", stem or name).strip("-.") or "identity"
    return f"{IDENTITY_SOURCE_DIR}{index}-{safe[:80]}.{suffix}"


def raw_page_path(index: int, endpoint: str) -> str:
    """``evidence/raw/NNNN-<slug>.json``; the slug keeps only a-z, 0-9 and single dashes.

    The endpoint itself (which the API and its callers control) is never used as a path; it is
    recorded verbatim in the manifest entry instead.
    """
    slug = re.sub(r"[^a-z0-9]+", "-", endpoint.lower()).strip("-")[:60].strip("-") or "page"
    return f"evidence/raw/{index:04d}-{slug}.json"


def checksums_file(controls: Sequence[tuple[str, bytes]], listed: Sequence[tuple[str, str]]) -> bytes:
    """``SHA256SUMS``: ``<hex>  <path>`` per line (``sha256sum -c`` text mode), controls first.

    It is derived from the manifest and the control files, so the verifier rebuilds it and
    compares bytes; it adds nothing to trust, only a way to check with ``sha256sum`` alone.
    """
    lines = [f"{hashlib.sha256(data).hexdigest()}  {path}\n" for path, data in controls]
    lines.extend(f"{digest}  {path}\n" for path, digest in listed)
    return "".join(lines).encode("ascii")


def canonical_json(data: Any) -> bytes:
    """The manifest's one serialisation: sorted keys, 2-space indent, ASCII only, LF, no NaN.

    Written once and signed as bytes; verification never re-serialises it.
    """
    try:
        text = json.dumps(data, sort_keys=True, indent=2, ensure_ascii=True, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise EvidenceError(f"The manifest cannot be written as JSON: {exc}.") from exc
    return (text + "\n").encode("ascii")


def build_bundle(
    contents: BundleContents,
    *,
    signer: Ed25519PrivateKey,
    chain: ChainPosition,
    context: Mapping[str, Any],
    now: datetime,
    key_valid_from: datetime,
    timestamp: TimestampAuthority | None = None,
) -> Bundle:
    """Assemble the manifest, sign it (DSSE over an in-toto Statement, Ed25519) and pack the deterministic ZIP.

    ``context`` must hold every key in :data:`REQUIRED_CONTEXT_KEYS` (``contents_from``'s sibling
    ``bundle_context`` builds it); ``key_valid_from`` is when the signer's key period began.
    ``timestamp``: the TSA to ask for a token over the signature (its TimestampAuthorityError
    passes through; ``timestamp.optional`` turns a failure into a bundle without a token).
    """
    _require_aware(now, "now")
    _require_aware(key_valid_from, "key_valid_from")
    if key_valid_from > now:
        raise EvidenceError(
            "The signing key's period starts after the export time; the clock or the key store is wrong."
        )
    missing = [key for key in REQUIRED_CONTEXT_KEYS if key not in context]
    if missing:
        raise EvidenceError(f"The evidence context lacks {', '.join(missing)}.")
    fingerprint = SigningKeys.fingerprint(signer)
    created_at = now.astimezone(UTC)

    files: list[tuple[str, bytes, dict[str, Any]]] = []
    for index, page in enumerate(contents.raw_pages, start=1):
        digest = hashlib.sha256(page.body).hexdigest()
        if page.sha256 and page.sha256.removeprefix("sha256:") != digest:
            raise EvidenceError(
                f"Raw page {index} ({page.endpoint!r}) no longer matches the SHA-256 recorded when it "
                "was received; the stored evidence was altered.",
                hint="Do not export this snapshot; pull again and investigate the data directory.",
            )
        meta = {
            "role": FileRole.PRIMARY_EVIDENCE.value,
            "endpoint": page.endpoint,
            "http_status": page.status,
            "received_at": _iso(page.received_at),
        }
        files.append((raw_page_path(index, page.endpoint), page.body, meta))
    files.extend(audit_log_files(contents.audit_log_runs))
    if contents.rule_inputs_json is not None:
        files.append((RULE_INPUTS_PATH, contents.rule_inputs_json, {"role": FileRole.RECORDED_INPUT.value}))
    for index, (name, data) in enumerate(contents.identity_files, start=1):
        files.append((identity_source_path(index, name), data, {"role": FileRole.RECORDED_INPUT.value}))
    for path, data in contents.views():
        files.append((path, data, {"role": FileRole.VIEW.value}))

    context_doc = {key: _jsonable(value, key) for key, value in context.items() if key != "retention"}
    manifest_doc = {
        "format": BUNDLE_FORMAT,
        "version": MANIFEST_VERSION,
        "created_at": _iso(created_at),
        "chain": chain.to_manifest(),
        "signing_key": {
            "algorithm": "ed25519",
            "fingerprint": fingerprint,
            "valid_from": _iso(key_valid_from),
            "public_key_file": PUBLIC_KEY_PATH,
        },
        "context": context_doc,
        "retention": _jsonable(context["retention"], "retention"),
        "files": [
            {
                "path": path,
                "size": len(data),
                "media_type": _MEDIA_TYPES[Path(path).suffix],
                "sha256": hashlib.sha256(data).hexdigest(),
                **meta,
            }
            for path, data, meta in files
        ],
        "does_not_prove": _does_not_prove(timestamp),
        "outside_anchor": _OUTSIDE_ANCHOR,
        "timestamp": timestamp.manifest_entry() if timestamp is not None else NO_TSA_ENTRY,
    }
    manifest = canonical_json(manifest_doc)
    statement = intoto.statement_bytes(manifest_doc, manifest)
    envelope = Envelope.sign(statement, payload_type=intoto.PAYLOAD_TYPE, key=signer, keyid=fingerprint)
    envelope_bytes = envelope.to_json()
    token = timestamp.stamp(envelope.signature) if timestamp is not None else None
    pem = SigningKeys.public_pem(signer).encode("ascii")
    controls = [(MANIFEST_PATH, manifest), (ENVELOPE_PATH, envelope_bytes), (PUBLIC_KEY_PATH, pem)]
    if token is not None:
        controls.append((TIMESTAMP_PATH, token))
    sums = checksums_file(controls, [(entry["path"], entry["sha256"]) for entry in manifest_doc["files"]])
    members = [*controls, (CHECKSUMS_PATH, sums), *((path, data) for path, data, _ in files)]
    return Bundle(
        data=_zip(members, when=created_at),
        manifest=manifest,
        envelope=envelope_bytes,
        chain=chain,
        key_fingerprint=fingerprint,
        created_at=created_at,
        signature=envelope.signature_b64,
        timestamp_token=token,
    )


def write_bundle(bundle: Bundle, output: Path, *, overwrite: bool = False) -> Path:
    """Write the ZIP atomically (mode 0600: it holds names and emails); refuse to replace a file.

    Without ``overwrite`` the final step is a hard link, which fails if the name exists, so two
    exports racing for one name cannot silently replace each other.
    """
    output = Path(output)
    if not output.parent.is_dir():
        raise EvidenceError(
            f"Cannot write {output}: the directory {output.parent} does not exist.",
            hint="Create it first or choose another --output.",
        )
    if output.exists() and not overwrite:
        raise EvidenceError(
            f"{output} already exists; evidence bundles are never replaced silently.",
            hint="Choose another --output, or pass --overwrite if replacing it is intended.",
        )
    try:
        if overwrite:
            write_bytes_atomic(output, bundle.data, mode=0o600)
            return output
        temp = output.with_name(f".{output.name}.{secrets.token_hex(8)}.partial")
        try:
            write_bytes_atomic(temp, bundle.data, mode=0o600)
            try:
                os.link(temp, output)
            except FileExistsError as exc:
                raise EvidenceError(
                    f"{output} appeared while the bundle was written; it was left untouched.",
                    hint="Choose another --output.",
                ) from exc
            except OSError:
                # A filesystem without hard links: fall back to check-then-rename.
                if output.exists():
                    raise EvidenceError(f"{output} already exists; it was left untouched.") from None
                temp.replace(output)
        finally:
            with contextlib.suppress(FileNotFoundError):
                temp.unlink()
    except OSError as exc:
        raise EvidenceError(f"Cannot write the evidence bundle {output}: {exc.strerror or exc}.") from exc
    return output


# --- helpers ---------------------------------------------------------------------------------


def _does_not_prove(timestamp: TimestampAuthority | None) -> list[str]:
    if timestamp is None:
        return list(DOES_NOT_PROVE)
    return [_CLOCK_WITH_TSA if item == DOES_NOT_PROVE[3] else item for item in DOES_NOT_PROVE]


def _zip(members: Sequence[tuple[str, bytes]], *, when: datetime) -> bytes:
    """A ZIP with members in the given order, one fixed timestamp and fixed attributes."""
    moment = max(when, _ZIP_EPOCH)
    stamp = (moment.year, moment.month, moment.day, moment.hour, moment.minute, moment.second)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in members:
            info = zipfile.ZipInfo(name, date_time=stamp)
            info.create_system = 3  # Unix, whatever platform wrote it
            info.external_attr = 0o100644 << 16
            archive.writestr(info, data, compress_type=zipfile.ZIP_DEFLATED, compresslevel=9)
    return buffer.getvalue()


def _iso(moment: datetime) -> str:
    return iso(moment.astimezone(UTC))


def _require_aware(moment: datetime, name: str) -> None:
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise EvidenceError(f"{name} must be a timezone-aware datetime.")


def _jsonable(value: Any, where: str) -> Any:
    """Context values as JSON: datetimes to UTC ISO text, tuples to lists; anything else refused."""
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        if value != value or value in (float("inf"), float("-inf")):
            raise EvidenceError(f"Context value {where} is not a finite number.")
        return value
    if isinstance(value, datetime):
        _require_aware(value, where)
        return _iso(value)
    if isinstance(value, Mapping):
        return {str(key): _jsonable(item, f"{where}.{key}") for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(item, f"{where}[{index}]") for index, item in enumerate(value)]
    raise EvidenceError(f"Context value {where} ({type(value).__name__}) cannot be written to a manifest.")
