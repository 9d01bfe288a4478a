"""Reports rendered earlier (``auditor report``), taken into a bundle only when provably of its snapshot.

A report names what it says in its report id, ``CCA-<snapshot>-<digest>`` (``auditor.report.data.report_id``:
a hash of the snapshot's raw-data digest, its findings and its sign-off), and the tool that
rendered it; the rule catalogue ships with the tool, so the tool version stands for the rules'.
The HTML carries both in its ``<meta>`` tags, the PDF in its trailer ``/ID`` and its document
information (``/Creator``). A report is re-used only when both equal what the export derives
from the snapshot it signs; its bytes then go into the bundle unchanged, hashed as delivered.
"""

from __future__ import annotations

import hashlib
import re
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from auditor.errors import ConfigurationError

__all__ = ["ReusedReport", "read_stamp", "reuse_reports"]

_HTML_ID = re.compile(rb'<meta name="keywords" content="[^"]*report (CCA-\d+-[0-9A-F]+)">')
_HTML_TOOL = re.compile(rb'<meta name="generator" content="certcentral-auditor ([^"<>\s]+)">')
_PDF_ID = re.compile(rb"/ID\s*\[\s*\((CCA-\d+-[0-9A-F]+)\)")
#: A signed PDF's last revision is pyHanko's, which writes the /ID as hex strings (issue 19).
_PDF_HEX_ID = re.compile(rb"/ID\s*\[\s*<((?:[0-9A-Fa-f]{2}){1,128})>")
_REPORT_ID = re.compile(rb"CCA-\d+-[0-9A-F]+")
_STARTXREF = re.compile(rb"startxref\s+(\d+)")
_PDF_TOOL = re.compile(rb"/Creator\s*\(certcentral-auditor ([^()\s]+)\)")
_OBJECT_STREAM = re.compile(rb"/Type\s*/ObjStm\b[^>]*>>\s*stream\r?\n")
#: How much of one object stream is inflated while looking for the document information.
_OBJECT_STREAM_LIMIT = 4 * 1024 * 1024


@dataclass(frozen=True)
class ReusedReport:
    """One report file as it goes into the bundle: its bytes, their SHA-256 and what it names."""

    path: Path
    content: bytes
    sha256: str
    report_id: str
    tool_version: str


def read_stamp(path: Path, content: bytes) -> tuple[str | None, str | None]:
    """(report id, tool version) a report carries, None for what it does not carry."""
    if path.suffix == ".html":
        head = content[:16384]  # the <meta> tags come first
        found_id, found_tool = _HTML_ID.search(head), _HTML_TOOL.search(head)
        return (
            found_id.group(1).decode("ascii") if found_id else None,
            found_tool.group(1).decode("ascii", "replace") if found_tool else None,
        )
    # The trailer (or cross-reference stream) of the last revision, where ``startxref`` points.
    start = _STARTXREF.findall(content[-1024:])
    offset = int(start[-1]) if start and int(start[-1]) < len(content) else max(0, len(content) - 4096)
    found = _PDF_ID.search(content, offset, offset + 4096)
    report_id = found.group(1).decode("ascii") if found else None
    hex_id = _PDF_HEX_ID.search(content, offset, offset + 4096) if found is None else None
    if hex_id is not None and _REPORT_ID.fullmatch(decoded := bytes.fromhex(hex_id.group(1).decode("ascii"))):
        report_id = decoded.decode("ascii")
    tool = _PDF_TOOL.search(content)
    if tool is None:  # WeasyPrint keeps the document information in a compressed object stream
        for match in _OBJECT_STREAM.finditer(content):
            try:
                inflated = zlib.decompressobj().decompress(content[match.end():], _OBJECT_STREAM_LIMIT)
            except zlib.error:
                continue
            tool = _PDF_TOOL.search(inflated)
            if tool is not None:
                break
    return report_id, tool.group(1).decode("ascii", "replace") if tool is not None else None


def reuse_reports(
    paths: Sequence[Path], *, expected_id: str, tool_version: str, flag: str, snapshot_id: int
) -> tuple[ReusedReport, ...]:
    """Read and check reports for re-use; refuses (naming ``flag``) any not of this snapshot and tool."""
    hint = (
        f"Render them again with `auditor report --snapshot {snapshot_id} --output DIR --overwrite` and pass "
        f"that DIR to {flag}, or leave out {flag} (the export then renders the reports itself)."
    )
    reused: list[ReusedReport] = []
    for path in paths:
        try:
            content = path.read_bytes()
        except OSError as exc:
            raise ConfigurationError(
                f"The report {path} given with {flag} could not be read: {exc.strerror or exc}.", hint=hint
            ) from exc
        report_id, tool = read_stamp(path, content)
        if report_id is None or tool is None:
            raise ConfigurationError(
                f"{path} (given with {flag}) is not a report written by `auditor report`: "
                "it carries no report id or tool version.",
                hint=hint,
            )
        if report_id != expected_id:
            raise ConfigurationError(
                f"{path} (given with {flag}) is report {report_id}, but snapshot {snapshot_id} as exported now is "
                f"report {expected_id}: it shows another snapshot, other data, findings or sign-off.",
                hint=hint,
            )
        if tool != tool_version:
            raise ConfigurationError(
                f"{path} (given with {flag}) was rendered by certcentral-auditor {tool}, not by this "
                f"version {tool_version} (whose rules the bundle records).",
                hint=hint,
            )
        reused.append(ReusedReport(path, content, hashlib.sha256(content).hexdigest(), report_id, tool))
    return tuple(reused)
