"""The one ZIP layout the exporter writes, read without trusting ``zipfile`` (issue 22 §6, §10).

ZIP readers disagree: Python's ``zipfile`` follows the central directory, Java's
``ZipInputStream`` walks the local headers from the start of the file, and Python before 3.11.8
(CVE-2024-0450) inflates overlapping entries again and again. A bundle is therefore accepted only
in the exporter's own layout, checked here before a single byte is inflated:

- the file is local entries, then the central directory, then a 22-byte end record, nothing else
  (no prefix, gap, trailing bytes, archive comment, ZIP64, multi-disk or encryption);
- entry *n* of the central directory starts exactly where entry *n - 1* ended (so entries are
  contiguous, in order, and cannot overlap) and its local header repeats the central record's
  name, flags, method, time, CRC and sizes, with no extra fields and no data descriptor;
- names are unique, relative, without ``..`` or backslashes, and every entry is a regular file.

Inflating is then bounded by a caller-supplied size (the manifest's declared size): a member that
inflates to more is refused as soon as it passes that size.

``load_json`` parses JSON whose nesting depth was checked first, so a manifest nested 100,000 deep
is a reason, not a ``RecursionError``.
"""

from __future__ import annotations

import hashlib
import json
import re
import stat
import struct
import zlib
from dataclasses import dataclass
from typing import Any, BinaryIO

__all__ = ["MAX_JSON_DEPTH", "LayoutProblem", "ZipEntry", "inflate", "load_json", "read_layout"]

_EOCD = struct.Struct("<4sHHHHIIH")  # end of central directory, 22 bytes
_CDH = struct.Struct("<4sBBHHHHHIIIHHHHHII")  # central directory header, 46 bytes
_LFH = struct.Struct("<4sHHHHHIIIHH")  # local file header, 30 bytes
_EOCD_SIG, _CDH_SIG, _LFH_SIG = b"PK\x05\x06", b"PK\x01\x02", b"PK\x03\x04"
_STORED, _DEFLATED = 0, 8
_ZIP64_MARK = 0xFFFFFFFF
_CHUNK = 64 * 1024
#: Deeper JSON than this is refused before parsing; the manifest is 4 levels deep.
MAX_JSON_DEPTH = 32


@dataclass(frozen=True, slots=True)
class ZipEntry:
    """One member as the central directory and its local header (which agree) describe it."""

    name: str
    method: int
    crc: int
    compressed_size: int
    size: int
    header_offset: int
    data_offset: int


@dataclass(frozen=True, slots=True)
class LayoutProblem:
    """Why the archive is not in the exporter's layout; ``subject`` is a member or ``archive``."""

    subject: str
    detail: str


class NotAZipError(ValueError):
    """The file has no ZIP end record at all: it is not a ZIP archive (or is truncated)."""


def read_layout(handle: BinaryIO, size: int) -> tuple[list[ZipEntry], list[LayoutProblem]]:
    """The entries of an archive in the exporter's layout, or the problems that make it another.

    Raises NotAZipError when there is no end record in the last 64 KiB. Reads only headers.
    """
    if size < _EOCD.size:
        raise NotAZipError(f"{size} bytes is too short for a ZIP archive")
    tail_size = min(size, _EOCD.size + 0xFFFF)
    handle.seek(size - tail_size)
    tail = handle.read(tail_size)
    where = tail.rfind(_EOCD_SIG)
    if where < 0:
        raise NotAZipError("no ZIP end-of-central-directory record")
    eocd_offset = size - tail_size + where
    problems: list[LayoutProblem] = []
    (_sig, disk, cd_disk, disk_entries, entries_total, cd_size, cd_offset, comment_length) = _EOCD.unpack(
        tail[where : where + _EOCD.size].ljust(_EOCD.size, b"\0")
    )
    if eocd_offset + _EOCD.size + comment_length != size or comment_length:
        problems.append(LayoutProblem("archive", "bytes or an archive comment follow the ZIP end record"))
        return [], problems
    if disk or cd_disk or disk_entries != entries_total:
        problems.append(LayoutProblem("archive", "a multi-disk archive"))
        return [], problems
    if _ZIP64_MARK in (cd_size, cd_offset) or entries_total == 0xFFFF:
        problems.append(LayoutProblem("archive", "a ZIP64 archive, which the exporter never writes"))
        return [], problems
    if cd_offset + cd_size != eocd_offset:
        problems.append(
            LayoutProblem("archive", "the central directory does not end where the end record begins")
        )
        return [], problems

    handle.seek(cd_offset)
    directory = handle.read(cd_size)
    records: list[tuple[str, bytes, tuple[int, ...]]] = []
    position = 0
    for _index in range(entries_total):
        if position + _CDH.size > len(directory):
            problems.append(LayoutProblem("archive", "the central directory is shorter than its entry count"))
            return [], problems
        fields = _CDH.unpack_from(directory, position)
        if fields[0] != _CDH_SIG:
            problems.append(LayoutProblem("archive", "a central directory record has no valid signature"))
            return [], problems
        (_s, _made_by, create_system, _needed, flags, method, mtime, mdate, crc, csize, usize, nlen, elen, clen,
         disk_start, _internal, external, offset) = fields
        raw_name = directory[position + _CDH.size : position + _CDH.size + nlen]
        name = raw_name.decode("utf-8" if flags & 0x800 else "cp437", errors="replace")
        position += _CDH.size + nlen + elen + clen
        subject = name or "(unnamed entry)"
        if elen or clen:
            problems.append(LayoutProblem(subject, "the central record carries an extra field or comment"))
        if flags & 0x1:
            problems.append(LayoutProblem(subject, "the entry is encrypted"))
        if flags & 0x8:
            problems.append(LayoutProblem(subject, "the entry uses a data descriptor"))
        if method not in (_STORED, _DEFLATED):
            problems.append(LayoutProblem(subject, f"compression method {method} is neither stored nor deflate"))
        if disk_start or _ZIP64_MARK in (csize, usize, offset):
            problems.append(LayoutProblem(subject, "a ZIP64 or multi-disk entry"))
        if not _safe_name(name):
            problems.append(LayoutProblem(subject, "not a plain relative file name"))
        file_type = stat.S_IFMT(external >> 16) if create_system == 3 else 0
        if file_type not in (0, stat.S_IFREG) or external & 0x10:
            problems.append(LayoutProblem(subject, "not a regular file (a directory, link or device entry)"))
        records.append((name, raw_name, (flags, method, mtime, mdate, crc, csize, usize, offset)))
    if position != len(directory):
        problems.append(LayoutProblem("archive", "the central directory holds bytes beyond its entries"))
    seen: set[str] = set()
    for name, _raw, _fields in records:
        if name in seen:
            problems.append(LayoutProblem(name, "the archive holds this name more than once"))
        seen.add(name)
    if problems:
        return [], problems

    entries: list[ZipEntry] = []
    expected = 0
    for name, raw_name, (flags, method, mtime, mdate, crc, csize, usize, offset) in records:
        if offset != expected:
            if not entries and offset > 0:
                detail = f"{offset} bytes before the first entry (a prefix a local-header reader would see)"
            elif offset > expected:
                detail = f"{offset - expected} bytes between entries hold no listed entry (a hidden local entry)"
            else:
                detail = "the entry overlaps the previous one"
            problems.append(LayoutProblem(name, detail))
            return [], problems
        handle.seek(offset)
        header = handle.read(_LFH.size)
        if len(header) < _LFH.size:
            problems.append(LayoutProblem(name, "the local header is cut off"))
            return [], problems
        (sig, _needed, l_flags, l_method, l_time, l_date, l_crc, l_csize, l_usize, l_nlen, l_elen) = _LFH.unpack(header)
        local_name = handle.read(l_nlen)
        if (
            sig != _LFH_SIG
            or (l_flags, l_method, l_time, l_date, l_crc, l_csize, l_usize) != (flags, method, mtime, mdate, crc,
                                                                               csize, usize)
            or local_name != raw_name
            or l_elen
        ):
            problems.append(LayoutProblem(name, "the local header does not match the central directory"))
            return [], problems
        data_offset = offset + _LFH.size + l_nlen
        expected = data_offset + csize
        entries.append(ZipEntry(name, method, crc, csize, usize, offset, data_offset))
    if expected != cd_offset:
        if expected < cd_offset:
            detail = (
                f"{cd_offset - expected} bytes before the central directory hold no listed entry "
                "(a hidden local entry that other ZIP readers would extract)"
            )
        else:
            detail = "the last entry runs into the central directory"
        problems.append(LayoutProblem("archive", detail))
        return [], problems
    return entries, problems


def inflate(handle: BinaryIO, entry: ZipEntry, *, limit: int, keep: bool) -> tuple[str, int, bytes | None, str]:
    """(sha256 hex, size, bytes if ``keep``, error) of one member, never inflating past ``limit``.

    ``error`` is empty when the member inflated to exactly its declared size with a matching CRC.
    """
    if entry.size > limit:
        return "", 0, None, f"declares {entry.size} bytes, more than the {limit} allowed"
    digest = hashlib.sha256()
    kept = bytearray()
    crc = 0
    produced = 0
    handle.seek(entry.data_offset)
    remaining = entry.compressed_size
    decompressor = zlib.decompressobj(-15) if entry.method == _DEFLATED else None

    def take(chunk: bytes) -> bool:
        nonlocal crc, produced
        produced += len(chunk)
        if produced > entry.size:
            return False
        digest.update(chunk)
        crc = zlib.crc32(chunk, crc)
        if keep:
            kept.extend(chunk)
        return True

    too_big = f"inflates to more than the {entry.size} bytes declared; it was not inflated further"
    try:
        while remaining:
            block = handle.read(min(_CHUNK, remaining))
            if not block:
                return "", produced, None, "the compressed data is cut off"
            remaining -= len(block)
            if decompressor is None:
                if not take(block):
                    return "", produced, None, too_big
                continue
            data = block
            while data:
                out = decompressor.decompress(data, entry.size - produced + 1)
                if not take(out):
                    return "", produced, None, too_big
                data = decompressor.unconsumed_tail
                if decompressor.eof:
                    break
            if decompressor.eof and (remaining or decompressor.unused_data):
                return "", produced, None, "bytes follow the end of the compressed data"
        if decompressor is not None:
            if not decompressor.eof:
                return "", produced, None, "the compressed data does not end"
            if not take(decompressor.flush()):
                return "", produced, None, too_big
    except zlib.error as exc:
        return "", produced, None, f"cannot be inflated ({exc}): it was altered or damaged"
    if produced != entry.size:
        return "", produced, None, f"inflates to {produced} bytes, not the {entry.size} declared"
    if crc != entry.crc:
        return "", produced, None, "its CRC does not match: it was altered or damaged"
    return digest.hexdigest(), produced, bytes(kept) if keep else None, ""


def _safe_name(name: str) -> bool:
    if not name or name.startswith("/") or name.endswith("/") or "\\" in name or "\0" in name:
        return False
    return all(part not in ("", ".", "..") for part in name.split("/"))


_STRING = re.compile(r'"(?:[^"\\]|\\.)*"', re.DOTALL)
_NOT_BRACKET = re.compile(r"[^\[\]{}]+")


def load_json(data: bytes, *, max_depth: int = MAX_JSON_DEPTH) -> Any:
    """Parse UTF-8 JSON after checking its nesting depth; ValueError says what is wrong."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ValueError(f"not UTF-8 ({exc})") from exc
    depth = deepest = 0
    for char in _NOT_BRACKET.sub("", _STRING.sub("", text)):
        depth += 1 if char in "[{" else -1
        deepest = max(deepest, depth)
        if deepest > max_depth:
            raise ValueError(f"nested more than {max_depth} levels deep")
    try:
        return json.loads(text)
    except (json.JSONDecodeError, RecursionError) as exc:
        raise ValueError(f"not JSON ({exc})") from exc
