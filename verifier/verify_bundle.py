#!/usr/bin/env python3
"""Standalone verifier for certcentral-auditor evidence bundles: one file, Python 3.11+ and `cryptography`.

An auditor who does not want to install certcentral-auditor copies this file and runs:

    pip install cryptography
    python3 verify_bundle.py BUNDLE.zip --public-key signer.pem [--previous EARLIER.zip ...]
    python3 verify_bundle.py BUNDLE.zip --manifest-sha256 HEX   # the hash the exporter sent you

It gives the same integrity verdict as `auditor verify` (the project's tests check this for an
intact bundle and every kind of tampering) and follows the algorithm in the README, section
"Verifying without the tool". It does not re-perform the findings (`auditor verify --reperform`
does). Exit codes: 0 intact and trusted, 1 not, 2 usage error, 6 not a readable bundle.

It deliberately imports nothing from certcentral-auditor: it is a second, independent reading of
the format, so a bug in the tool's own verifier does not hide in both.

(One file over 500 lines on purpose: an auditor copies it alone, with no package around it.)
"""

from __future__ import annotations

import argparse
import base64
import binascii
import hashlib
import itertools
import json
import re
import stat
import struct
import sys
import zlib
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any, BinaryIO

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

#: Manifest versions 1 and 2: the envelope signs manifest.json itself.
PAYLOAD_TYPE = "application/vnd.certcentral-auditor.manifest+json; version=1"
#: Since version 3: an in-toto Statement v1 whose subjects bind manifest.json and every file.
INTOTO_PAYLOAD_TYPE = "application/vnd.in-toto+json"
STATEMENT_TYPE = "https://in-toto.io/Statement/v1"
PREDICATE_TYPE = "urn:certcentral-auditor:predicate:evidence-manifest:v1"
FORMAT = "certcentral-auditor-evidence"
VERSIONS = (1, 2, 3)
CONTROL = ("manifest.json", "signature.json", "signer.pub.pem", "SHA256SUMS")
#: The RFC 3161 token over the signature (version 3, with a TSA); this script does not check it.
TIMESTAMP = "signature.tsr"
CONTROL_LIMIT = 16 * 1024 * 1024
MAX_DEPTH = 32
WARNINGS = {"signer-not-pinned", "signer-rotated", "timestamp-not-checked"}
HEX64 = re.compile(r"[0-9a-f]{64}")


class NotABundle(Exception):
    """The file cannot be read as a ZIP bundle at all (exit 6)."""


# --- the ZIP, read by its headers only ---------------------------------------------------------


def read_layout(handle: BinaryIO, size: int) -> tuple[list[dict[str, Any]], list[tuple[str, str]]]:
    """Entries of an archive in the exporter's layout, or (subject, detail) problems."""
    if size < 22:
        raise NotABundle("too short for a ZIP archive")
    tail_size = min(size, 22 + 0xFFFF)
    handle.seek(size - tail_size)
    tail = handle.read(tail_size)
    where = tail.rfind(b"PK\x05\x06")
    if where < 0:
        raise NotABundle("no ZIP end-of-central-directory record")
    eocd_at = size - tail_size + where
    _s, disk, cd_disk, on_disk, total, cd_size, cd_offset, comment = struct.unpack(
        "<4sHHHHIIH", tail[where : where + 22].ljust(22, b"\0")
    )
    if eocd_at + 22 + comment != size or comment:
        return [], [("archive", "bytes or an archive comment follow the ZIP end record")]
    if disk or cd_disk or on_disk != total:
        return [], [("archive", "a multi-disk archive")]
    if 0xFFFFFFFF in (cd_size, cd_offset) or total == 0xFFFF:
        return [], [("archive", "a ZIP64 archive")]
    if cd_offset + cd_size != eocd_at:
        return [], [("archive", "the central directory does not end where the end record begins")]
    handle.seek(cd_offset)
    directory = handle.read(cd_size)
    problems: list[tuple[str, str]] = []
    records = []
    pos = 0
    for _ in range(total):
        if pos + 46 > len(directory) or directory[pos : pos + 4] != b"PK\x01\x02":
            return [], [("archive", "the central directory is damaged")]
        fields = struct.unpack_from("<4sBBHHHHHIIIHHHHHII", directory, pos)
        (_s, _v, system, _n, flags, method, mtime, mdate, crc, csize, usize, nlen, elen, clen,
         disk_start, _i, external, offset) = fields
        raw = directory[pos + 46 : pos + 46 + nlen]
        name = raw.decode("utf-8" if flags & 0x800 else "cp437", errors="replace")
        pos += 46 + nlen + elen + clen
        subject = name or "(unnamed entry)"
        if elen or clen:
            problems.append((subject, "the central record carries an extra field or comment"))
        if flags & 0x9:
            problems.append((subject, "the entry is encrypted or uses a data descriptor"))
        if method not in (0, 8):
            problems.append((subject, f"compression method {method}"))
        if disk_start or 0xFFFFFFFF in (csize, usize, offset):
            problems.append((subject, "a ZIP64 or multi-disk entry"))
        parts = name.split("/")
        if not name or name[0] == "/" or "\\" in name or "\0" in name or any(p in ("", ".", "..") for p in parts):
            problems.append((subject, "not a plain relative file name"))
        kind = stat.S_IFMT(external >> 16) if system == 3 else 0
        if kind not in (0, stat.S_IFREG) or external & 0x10:
            problems.append((subject, "not a regular file"))
        records.append((name, raw, (flags, method, mtime, mdate, crc, csize, usize), offset))
    if pos != len(directory):
        problems.append(("archive", "the central directory holds bytes beyond its entries"))
    seen: set[str] = set()
    for name, *_rest in records:
        if name in seen:
            problems.append((name, "the archive holds this name more than once"))
        seen.add(name)
    if problems:
        return [], problems
    entries = []
    expected = 0
    for name, raw, central, offset in records:
        if offset != expected:
            return [], [(name, "an entry does not start where the previous one ended (prefix, gap or overlap)")]
        handle.seek(offset)
        header = handle.read(30)
        if len(header) < 30:
            return [], [(name, "the local header is cut off")]
        sig, _n, *local, nlen, elen = struct.unpack("<4sHHHHHIIIHH", header)
        if sig != b"PK\x03\x04" or tuple(local) != central or handle.read(nlen) != raw or elen:
            return [], [(name, "the local header does not match the central directory")]
        data_at = offset + 30 + nlen
        expected = data_at + central[5]
        entries.append({"name": name, "method": central[1], "crc": central[4], "csize": central[5],
                        "size": central[6], "data_at": data_at})
    if expected != cd_offset:
        return [], [("archive", "bytes before the central directory hold no listed entry (a hidden local entry)")]
    return entries, []


def inflate(handle: BinaryIO, entry: dict[str, Any], limit: int, keep: bool) -> tuple[str, bytes | None, str]:
    """(sha256 hex, bytes if keep, error), never producing more than the declared size."""
    if entry["size"] > limit:
        return "", None, f"declares {entry['size']} bytes, more than the {limit} allowed"
    digest, crc, produced, kept = hashlib.sha256(), 0, 0, bytearray()
    handle.seek(entry["data_at"])
    remaining = entry["csize"]
    unpack = zlib.decompressobj(-15) if entry["method"] == 8 else None
    too_big = f"inflates to more than the {entry['size']} bytes declared"

    def take(chunk: bytes) -> bool:
        nonlocal crc, produced
        produced += len(chunk)
        if produced > entry["size"]:
            return False
        digest.update(chunk)
        crc = zlib.crc32(chunk, crc)
        if keep:
            kept.extend(chunk)
        return True

    try:
        while remaining:
            block = handle.read(min(65536, remaining))
            if not block:
                return "", None, "the compressed data is cut off"
            remaining -= len(block)
            if unpack is None:
                if not take(block):
                    return "", None, too_big
                continue
            while block:
                if not take(unpack.decompress(block, entry["size"] - produced + 1)):
                    return "", None, too_big
                block = unpack.unconsumed_tail
                if unpack.eof:
                    break
            if unpack.eof and (remaining or unpack.unused_data):
                return "", None, "bytes follow the end of the compressed data"
        if unpack is not None:
            if not unpack.eof:
                return "", None, "the compressed data does not end"
            if not take(unpack.flush()):
                return "", None, too_big
    except zlib.error as exc:
        return "", None, f"cannot be inflated ({exc})"
    if produced != entry["size"]:
        return "", None, f"inflates to {produced} bytes, not the {entry['size']} declared"
    if crc != entry["crc"]:
        return "", None, "its CRC does not match"
    return digest.hexdigest(), bytes(kept) if keep else None, ""


# --- JSON, keys and the signature ----------------------------------------------------------------


def load_json(data: bytes) -> Any:
    text = data.decode("utf-8")
    depth = deepest = 0
    for char in re.sub(r"[^\[\]{}]+", "", re.sub(r'"(?:[^"\\]|\\.)*"', "", text, flags=re.DOTALL)):
        depth += 1 if char in "[{" else -1
        deepest = max(deepest, depth)
        if deepest > MAX_DEPTH:
            raise ValueError(f"nested more than {MAX_DEPTH} levels deep")
    return json.loads(text)


def pae(payload_type: str, payload: bytes) -> bytes:
    """DSSE v1 pre-authentication encoding: the exact bytes the Ed25519 signature covers."""
    kind = payload_type.encode()
    return b"DSSEv1 %d %b %d %b" % (len(kind), kind, len(payload), payload)


def fingerprint(key: Ed25519PublicKey) -> str:
    raw = key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return "sha256:" + hashlib.sha256(raw).hexdigest()


def canonical_pem(key: Ed25519PublicKey) -> bytes:
    return key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)


def load_pem(data: bytes) -> Ed25519PublicKey | None:
    try:
        key = serialization.load_pem_public_key(data)
    except (ValueError, TypeError):
        return None
    return key if isinstance(key, Ed25519PublicKey) else None


def parse_envelope(data: bytes) -> tuple[str, bytes, str, bytes] | str:
    try:
        document = load_json(data)
    except (ValueError, RecursionError) as exc:
        return f"not JSON ({exc})" if "nested" not in str(exc) else str(exc)
    if not isinstance(document, dict):
        return "not a JSON object"
    kind, payload, signatures = document.get("payloadType"), document.get("payload"), document.get("signatures")
    if not isinstance(kind, str) or not isinstance(payload, str):
        return "payloadType or payload missing"
    if not isinstance(signatures, list) or len(signatures) != 1 or not isinstance(signatures[0], dict):
        return "expected exactly one signature"
    keyid, sig = signatures[0].get("keyid"), signatures[0].get("sig")
    if not isinstance(keyid, str) or not isinstance(sig, str):
        return "signature without keyid or sig"
    try:
        body = base64.b64decode(payload.replace("-", "+").replace("_", "/"), validate=True)
        signature = base64.b64decode(sig.replace("-", "+").replace("_", "/"), validate=True)
    except (binascii.Error, ValueError):
        return "payload or sig is not base64"
    return kind, body, keyid, signature


def read_statement(payload: bytes) -> tuple[dict[str, str], dict[str, Any]] | str:
    """An in-toto Statement v1 of this tool: (subject name -> SHA-256, the manifest it carries), or why not."""
    try:
        doc = load_json(payload)
    except (ValueError, RecursionError, UnicodeDecodeError) as exc:
        return str(exc)
    if not isinstance(doc, dict) or doc.get("_type") != STATEMENT_TYPE or doc.get("predicateType") != PREDICATE_TYPE:
        return "the signed payload is not this tool's in-toto Statement v1"
    subjects: dict[str, str] = {}
    listed: list[Any] = doc["subject"] if isinstance(doc.get("subject"), list) else []
    for subject in listed:
        digest = subject.get("digest") if isinstance(subject, dict) else None
        if not isinstance(digest, dict) or not isinstance(subject.get("name"), str) \
                or not isinstance(digest.get("sha256"), str) or subject["name"] in subjects:
            return "a subject of the statement is malformed or named twice"
        subjects[subject["name"]] = digest["sha256"]
    predicate = doc.get("predicate")
    if not subjects or not isinstance(predicate, dict) or not isinstance(predicate.get("manifest"), dict):
        return "the statement has no subjects or carries no manifest"
    return subjects, predicate["manifest"]


def canonical(document: Any) -> bytes:
    """The exporter's one JSON serialisation (sorted keys, 2-space indent, ASCII, LF)."""
    return (json.dumps(document, sort_keys=True, indent=2, ensure_ascii=True) + "\n").encode("ascii")


def check_manifest(data: bytes) -> dict[str, Any] | str:
    """The manifest if every field verification reads has its type, else the reason."""
    try:
        doc = load_json(data)
    except (ValueError, RecursionError, UnicodeDecodeError) as exc:
        return str(exc)

    def is_int(value: Any) -> bool:
        return isinstance(value, int) and not isinstance(value, bool)

    def text_or_none(value: Any) -> bool:
        return value is None or isinstance(value, str)

    if not isinstance(doc, dict):
        return "not a JSON object"
    if doc.get("format") != FORMAT or not is_int(doc.get("version")) or doc["version"] not in VERSIONS:
        return "format or version is not understood"
    files = doc.get("files")
    if not isinstance(files, list) or not all(
        isinstance(e, dict) and isinstance(e.get("path"), str) and isinstance(e.get("sha256"), str)
        and HEX64.fullmatch(e["sha256"]) is not None and is_int(e.get("size")) and e["size"] >= 0
        and isinstance(e.get("role"), str)
        for e in files
    ):
        return "the file list is missing or malformed"
    paths = [e["path"] for e in files]
    if len(set(paths)) != len(paths) or set(paths) & set(CONTROL):
        return "the file list names a file twice, or names a control file"
    chain = doc.get("chain")
    if not (isinstance(chain, dict) and isinstance(chain.get("chain_id"), str) and is_int(chain.get("sequence"))
            and chain["sequence"] >= 0 and isinstance(chain.get("genesis"), bool)
            and all(text_or_none(chain.get(k)) for k in ("previous_manifest_sha256", "previous_signature",
                                                          "previous_key_fingerprint", "new_chain_reason"))):
        return "the chain section is missing or malformed"
    key = doc.get("signing_key")
    if not (isinstance(key, dict) and all(isinstance(key.get(k), str) for k in ("fingerprint", "valid_from"))):
        return "the signing key section is missing or malformed"
    context = doc.get("context")
    if not (isinstance(context, dict) and all(text_or_none(context.get(k)) for k in ("pull_started_at",
                                                                                      "pull_finished_at"))):
        return "the context section is missing or malformed"
    if not isinstance(doc.get("does_not_prove"), list) or not all(isinstance(x, str) for x in doc["does_not_prove"]):
        return "does_not_prove must be a list of sentences"
    if not isinstance(doc.get("created_at"), str):
        return "created_at is missing or not text"
    return doc


# --- one bundle ------------------------------------------------------------------------------------


def inspect(path: Path, pinned: dict[str, Ed25519PublicKey]) -> dict[str, Any]:
    """Everything about one bundle: problems, manifest hash, chain link, signer."""
    out: dict[str, Any] = {"path": path, "problems": [], "manifest_sha256": None, "link": None,
                           "verified_by": None, "pinned": False, "files_checked": 0}

    def report(kind: str, subject: str, detail: str = "") -> None:
        out["problems"].append((kind, path.name, subject, detail))

    if not path.is_file():
        raise NotABundle(f"{path} does not exist or is not a file")
    with path.open("rb") as handle:
        size = handle.seek(0, 2)
        entries, layout = read_layout(handle, size)
        if layout:
            for subject, detail in layout:
                report("noncanonical-zip", subject, detail)
            return out
        by_name = {e["name"]: e for e in entries}

        def control(name: str) -> tuple[bytes | None, str]:
            if name not in by_name:
                return None, "missing"
            _digest, data, error = inflate(handle, by_name[name], CONTROL_LIMIT, True)
            return (None, error) if error else (data, "")

        envelope = None
        env_data, env_error = control("signature.json")
        if env_error == "missing":
            report("missing-file", "signature.json")
        elif env_data is None:
            report("modified-file", "signature.json", env_error)
        else:
            parsed = parse_envelope(env_data)
            if isinstance(parsed, str):
                report("bad-signature", "signature.json", parsed)
            else:
                envelope = parsed
                if parsed[0] not in (PAYLOAD_TYPE, INTOTO_PAYLOAD_TYPE):
                    report("bad-signature", "signature.json", "wrong payload type")
        statement: tuple[dict[str, str], dict[str, Any]] | None = None
        if envelope is not None and envelope[0] == INTOTO_PAYLOAD_TYPE:
            read = read_statement(envelope[1])
            if isinstance(read, str):
                report("bad-signature", "signature.json", read)
            else:
                statement = read
        out["format"] = ("in-toto Statement v1" if envelope is not None and envelope[0] == INTOTO_PAYLOAD_TYPE
                         else "manifest signed directly (before version 3)")
        man_data, man_error = control("manifest.json")
        if man_error == "missing":
            report("missing-file", "manifest.json")
        elif man_data is None:
            report("modified-file", "manifest.json", man_error)
        elif envelope is not None and statement is None and man_data != envelope[1]:
            report("modified-file", "manifest.json", "differs from the signed copy")
        manifest_bytes: bytes | None
        if statement is not None:
            manifest_bytes = man_data if man_data is not None else canonical(statement[1])
        elif envelope is not None and envelope[0] != INTOTO_PAYLOAD_TYPE:
            manifest_bytes = envelope[1]
        else:
            manifest_bytes = man_data
        if manifest_bytes is None:
            raise NotABundle(f"{path} holds neither a readable manifest.json nor a signature envelope")
        out["manifest_sha256"] = hashlib.sha256(manifest_bytes).hexdigest()
        checked = check_manifest(manifest_bytes)
        manifest: dict[str, Any] | None = None
        if isinstance(checked, str):
            report("manifest-unparseable", "manifest.json", checked)
        else:
            manifest = checked
            if statement is not None and man_data is not None:
                subjects, carried = statement
                listed_digests = {e["path"]: e["sha256"] for e in manifest["files"]}
                if (subjects.pop("manifest.json", None) != hashlib.sha256(man_data).hexdigest()
                        or carried != manifest or subjects != listed_digests):
                    report("modified-file", "manifest.json", "differs from the signed statement")
        named = manifest["signing_key"]["fingerprint"] if manifest else None

        embedded = None
        pem_data, pem_error = control("signer.pub.pem")
        if pem_error == "missing":
            report("missing-file", "signer.pub.pem")
        elif pem_data is None:
            report("modified-file", "signer.pub.pem", pem_error)
        else:
            embedded = load_pem(pem_data)
            if embedded is None:
                report("modified-file", "signer.pub.pem", "not an Ed25519 public key in PEM")
            elif pem_data != canonical_pem(embedded):
                report("modified-file", "signer.pub.pem", "not the exact PEM the exporter writes")
        embedded_fp = fingerprint(embedded) if embedded is not None else None
        if embedded_fp and named and embedded_fp != named:
            report("signer-mismatch", "signer.pub.pem", "the enclosed key is not the one the manifest names")

        signer = None
        if envelope is not None:
            candidates = sorted(pinned.items(), key=lambda item: item[0] != envelope[2])
            if embedded is not None:
                candidates.append((embedded_fp, embedded))  # type: ignore[arg-type]
            for fp, key in candidates:
                try:
                    key.verify(envelope[3], pae(envelope[0], envelope[1]))
                except InvalidSignature:
                    continue
                signer = fp
                break
            out["verified_by"] = signer
            if pinned:
                if signer in pinned:
                    out["pinned"] = True
                elif signer is not None:
                    report("unknown-key", signer, "signed with a key that is not pinned")
                else:
                    report("bad-signature", "signature.json", "no pinned or enclosed key verifies it")
                    if envelope[2] not in pinned:
                        report("unknown-key", envelope[2], "the envelope names a key that is not pinned")
            elif signer is None:
                report("bad-signature", "signature.json", "the enclosed key does not verify it")
            if signer is not None:
                for claimed, where in ((named, "manifest.json"), (envelope[2], "signature.json")):
                    if claimed is not None and claimed != signer:
                        report("signer-mismatch", where, "names another key than the one that signed")
        out["signer"] = signer or named
        if manifest is None:
            return out

        listed = {e["path"]: e for e in manifest["files"]}
        for name, declared in listed.items():
            out["files_checked"] += 1
            entry = by_name.get(name)
            if entry is None:
                report("missing-file", name)
            elif entry["size"] != declared["size"]:
                report("modified-file", name, "the archive declares another size than the manifest")
            else:
                digest, _data, error = inflate(handle, entry, declared["size"], False)
                if error or digest != declared["sha256"]:
                    report("modified-file", name, error or "SHA-256 differs from the manifest")
        control_names = (*CONTROL, TIMESTAMP) if manifest["version"] >= 3 else \
            CONTROL if manifest["version"] >= 2 else CONTROL[:3]
        for entry in entries:
            if entry["name"] not in listed and entry["name"] not in control_names:
                report("unexpected-file", entry["name"])
        token, stamp_error = control(TIMESTAMP) if manifest["version"] >= 3 else (None, "missing")
        if manifest["version"] >= 2:
            sums, sums_error = control("SHA256SUMS")
            if sums_error == "missing":
                report("missing-file", "SHA256SUMS")
            elif sums is None:
                report("modified-file", "SHA256SUMS", sums_error)
            elif env_data is not None and man_data is not None and pem_data is not None:
                stamped = ((TIMESTAMP, token),) if token is not None else ()
                lines = [f"{hashlib.sha256(d).hexdigest()}  {n}\n" for n, d in
                         (("manifest.json", man_data), ("signature.json", env_data), ("signer.pub.pem", pem_data),
                          *stamped)]
                lines += [f"{e['sha256']}  {e['path']}\n" for e in manifest["files"]]
                if sums != "".join(lines).encode("ascii"):
                    report("modified-file", "SHA256SUMS", "not the checksums of this bundle's files")

        if manifest["version"] >= 3:
            section: dict[str, Any] = manifest["timestamp"] if isinstance(manifest.get("timestamp"), dict) else {}
            authority = section.get("authority")
            if token is None and stamp_error != "missing":
                report("modified-file", TIMESTAMP, stamp_error)
            elif token is None and isinstance(authority, str) and section.get("required") is True:
                report("timestamp-missing", TIMESTAMP, f"the manifest requires a token from {authority}")
            elif token is not None and not isinstance(authority, str):
                report("unexpected-file", TIMESTAMP, "a timestamp token, but the manifest names no TSA")
            elif token is not None:
                # Checking an RFC 3161 token needs more than `cryptography`: see check_timestamp_hint().
                report("timestamp-not-checked", TIMESTAMP, f"a token from {authority}")
                out["timestamp"] = authority

    chain = manifest["chain"]
    sequence, previous_sha = chain["sequence"], chain["previous_manifest_sha256"]
    if chain["genesis"] != (sequence == 0) or (sequence == 0) != (previous_sha is None):
        report("broken-chain", f"sequence {sequence}", "genesis flag, sequence and predecessor disagree")
    out["link"] = {
        "chain_id": chain["chain_id"], "sequence": sequence, "manifest_sha256": out["manifest_sha256"],
        "signature": base64.b64encode(envelope[3]).decode() if envelope is not None else "",
        "previous_manifest_sha256": previous_sha, "previous_signature": chain["previous_signature"],
        "signer": out["signer"], "name": path.name,
    }
    return out


# --- the chain and the trust root --------------------------------------------------------------------


Problem = tuple[str, str, str, str]  # kind, bundle, subject, detail


def chain_problems(target: dict[str, Any], links: list[dict[str, Any]], pinned: dict[str, Any]) -> list[Problem]:
    problems: list[Problem] = []
    same: dict[str, dict[str, Any]] = {}
    for link in links:
        if link["chain_id"] != target["chain_id"]:
            problems.append(("different-chain", link["name"], link["chain_id"], ""))
        else:
            same.setdefault(link["manifest_sha256"], link)
    by_sequence: dict[int, list[dict[str, Any]]] = defaultdict(list)
    by_predecessor: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for link in same.values():
        by_sequence[link["sequence"]].append(link)
        if link["previous_manifest_sha256"]:
            by_predecessor[link["previous_manifest_sha256"]].append(link)
    forks = set()
    for sequence, group in sorted(by_sequence.items()):
        if len(group) > 1:
            forks.add(frozenset(link["manifest_sha256"] for link in group))
            problems.append(("forked-chain", ", ".join(sorted(x["name"] for x in group)), f"sequence {sequence}", ""))
    for predecessor, group in sorted(by_predecessor.items()):
        if len(group) > 1 and frozenset(link["manifest_sha256"] for link in group) not in forks:
            problems.append(("forked-chain", ", ".join(sorted(x["name"] for x in group)), predecessor[:16], ""))
    sequences = sorted(by_sequence)
    for lower, upper in itertools.pairwise(sequences):
        if upper - lower > 1:
            problems.append(("sequence-gap", "", f"sequence {lower + 1}", ""))
            continue
        for later in by_sequence[upper]:
            for earlier in by_sequence[lower]:
                if (later["previous_manifest_sha256"] != earlier["manifest_sha256"]
                        or later["previous_signature"] != earlier["signature"]):
                    problems.append(("broken-chain", later["name"], f"sequence {upper}", ""))
                elif later["signer"] != earlier["signer"]:
                    both = later["signer"] in pinned and earlier["signer"] in pinned
                    problems.append(("signer-rotated" if both else "signer-changed", later["name"],
                                     str(later["signer"]), ""))
    return problems


def verify(
    path: Path,
    *,
    keys: Sequence[Ed25519PublicKey] = (),
    manifest_hashes: Sequence[str] = (),
    allow_unpinned: bool = False,
    previous: Sequence[Path] = (),
) -> dict[str, Any]:
    """The verdict: ``ok``, ``problems`` (kind, bundle, subject, detail), the hashes and the trust root."""
    pinned = {fingerprint(key): key for key in keys}
    anchors = [value.strip().lower().removeprefix("sha256:") for value in manifest_hashes]
    items = [inspect(Path(path), pinned), *(inspect(Path(p), pinned) for p in previous)]
    target = items[0]
    problems = [problem for item in items for problem in item["problems"]]
    links = [item["link"] for item in items if item["link"] is not None]
    if target["link"] is not None:
        problems += chain_problems(target["link"], links, pinned)
    trusted = {item["manifest_sha256"] for item in items if item["verified_by"] is not None
               and (item["verified_by"] in pinned or item["manifest_sha256"] in anchors)}
    grew = True
    while grew:
        grew = False
        for later in items:
            if later["manifest_sha256"] not in trusted or later["link"] is None:
                continue
            for earlier in items:
                if (earlier["link"] is not None and earlier["verified_by"] is not None
                        and earlier["manifest_sha256"] not in trusted
                        and later["link"]["previous_manifest_sha256"] == earlier["manifest_sha256"]
                        and later["link"]["previous_signature"] == earlier["link"]["signature"]):
                    trusted.add(earlier["manifest_sha256"])
                    grew = True
    for anchor in anchors:
        if not any(item["manifest_sha256"] == anchor for item in items):
            problems.append(("manifest-hash-mismatch", Path(path).name, anchor, ""))
    for item in items:
        if item["verified_by"] is None or item["manifest_sha256"] in trusted:
            continue
        if pinned and item["verified_by"] not in pinned:
            continue
        kind = "signer-not-pinned" if allow_unpinned else "signer-not-trusted"
        problems.append((kind, item["path"].name, item["verified_by"], "signature valid, signer not trusted"))
    unique = list(dict.fromkeys(problems))
    return {
        "ok": not any(problem[0] not in WARNINGS for problem in unique),
        "problems": unique,
        "manifest_sha256": target["manifest_sha256"],
        "trusted": target["manifest_sha256"] in trusted,
        "integrity_only": allow_unpinned and target["manifest_sha256"] not in trusted,
        "files_checked": target["files_checked"],
        "format": target.get("format", ""),
        "timestamp": target.get("timestamp"),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("bundle", type=Path)
    parser.add_argument("--public-key", type=Path, action="append", default=[], metavar="PEM")
    parser.add_argument("--manifest-sha256", action="append", default=[], metavar="HEX")
    parser.add_argument("--allow-unpinned", action="store_true", help="check integrity only")
    parser.add_argument("--previous", type=Path, action="append", default=[], metavar="ZIP")
    parser.add_argument("--json", action="store_true", help="print the verdict as JSON")
    args = parser.parse_args(argv)
    keys = []
    for pem in args.public_key:
        try:
            key = load_pem(pem.read_bytes())
        except OSError as exc:
            parser.error(f"cannot read {pem}: {exc}")
        if key is None:
            parser.error(f"{pem} is not an Ed25519 public key in PEM")
        keys.append(key)
    for value in args.manifest_sha256:
        if not HEX64.fullmatch(value.strip().lower().removeprefix("sha256:")):
            parser.error(f"--manifest-sha256 {value!r} is not 64 hex digits")
    try:
        result = verify(args.bundle, keys=keys, manifest_hashes=args.manifest_sha256,
                        allow_unpinned=args.allow_unpinned, previous=args.previous)
    except (NotABundle, OSError) as exc:
        print(f"{args.bundle}: not a readable evidence bundle ({exc})", file=sys.stderr)
        return 6
    if args.json:
        print(json.dumps({**result, "problems": [list(p) for p in result["problems"]]}, indent=2))
    else:
        if result["integrity_only"]:
            print("INTEGRITY ONLY (--allow-unpinned): the signer was not checked against a trust root.")
        print(f"Result: {'INTACT' if result['ok'] else 'NOT INTACT'}")
        print(f"Manifest SHA-256: {result['manifest_sha256']}")
        if result["format"]:
            print(f"Signed statement: {result['format']}")
        if result["timestamp"]:
            print(f"Trusted time: not checked by this script; the bundle holds an RFC 3161 token from "
                  f"{result['timestamp']}. Check it with `auditor verify --tsa-cert PEM`, or with OpenSSL: "
                  "decode signatures[0].sig of signature.json from base64 into sig.bin, then "
                  "`openssl ts -verify -in signature.tsr -data sig.bin -CAfile TSA-CA.pem`.")
        for kind, bundle, subject, detail in result["problems"]:
            level = "WARN" if kind in WARNINGS else "FAIL"
            print(f"  {level} {kind} [{bundle}] {subject}{': ' + detail if detail else ''}")
    return 0 if result["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
