"""Access-review reports: one set of Jinja templates rendered to self-contained HTML and tagged PDF/A-3a.

The report is a view of a snapshot, its findings and its changes; it computes nothing new except
display values (days inactive, counts). Everything is taken from :class:`ReportData`, never from
the wall clock, so the same data always renders the same HTML bytes.

jinja2 and weasyprint are imported inside the functions that use them: the CLI imports this
package to build :class:`ReportData` and must start fast.
"""

from __future__ import annotations

import enum
import os
import re
import unicodedata
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from auditor.atomic import make_private_dirs, write_bytes_atomic
from auditor.errors import ReportError
from auditor.models import Attestation, ChangeSet, FindingsResult, Snapshot, UserHistory
from auditor.report._view import PDF_FINDINGS_PER_RULE, PDF_ROSTER_LIMIT, PDF_TABLE_LIMIT

__all__ = [
    "PDF_ROSTER_LIMIT",
    "ReportData",
    "ReportFormat",
    "TrendPoint",
    "basename_of",
    "default_templates_dir",
    "render_html",
    "render_pdf",
    "report_basename",
    "write_reports",
]

#: Called with a short human-readable step ("Laying out PDF pages", ...); the CLI shows it.
Progress = Callable[[str], None]


@dataclass(frozen=True)
class TrendPoint:
    """One earlier (or the current) snapshot's headline numbers, for the trend chart."""

    taken_at: datetime
    users: int
    admins: int
    stale: int
    findings: int


@dataclass(frozen=True)
class ReportData:
    """Everything a report shows; built by the pipeline, rendered here without further lookups."""

    account_name: str
    account_id: int | None
    base_url: str
    instance: str  #: "US", "Europe" or "custom"
    snapshot: Snapshot
    previous: Snapshot | None
    changes: ChangeSet
    findings: FindingsResult
    history: Mapping[int, UserHistory]
    trend: tuple[TrendPoint, ...]
    mfa_attestation: Attestation | None
    review_attestation: Attestation | None
    report_id: str
    generated_at: datetime
    tool_version: str
    frameworks: tuple[str, ...]
    raw_sha256: str  #: combined digest of the snapshot's raw pages
    #: With no review of this snapshot: the latest review on record at its time (of another one).
    last_review: Attestation | None = None
    #: The privileged roles the reviewer of this snapshot holds in it ('' when none: independent).
    reviewer_privileged_roles: str = ""
    #: The access review campaign this report shows (``CampaignStatus.to_json()``), or None.
    review_campaign: Mapping[str, Any] | None = None


class ReportFormat(enum.StrEnum):
    """The formats ``auditor report --format`` accepts; the value is the file extension."""

    HTML = "html"
    PDF = "pdf"


def default_templates_dir() -> Path:
    """The shipped ``report_templates/``, in an installed wheel or an editable checkout.

    The wheel carries it as ``auditor/report_templates`` (hatch ``force-include``); a checkout
    has it at the repository root, two levels above this package.
    """
    package_root = Path(__file__).resolve().parent.parent
    candidates = (package_root / "report_templates", package_root.parent / "report_templates")
    for candidate in candidates:
        if (candidate / "report.html.j2").is_file():
            return candidate
    raise ReportError(
        "The report templates were not found (looked in "
        + ", ".join(str(candidate) for candidate in candidates)
        + ").",
        hint="Reinstall certcentral-auditor, or pass --templates DIR pointing at a copy of report_templates/.",
    )


def render_html(data: ReportData, *, templates_dir: Path | None = None) -> str:
    """The self-contained interactive HTML report (inline CSS and JS, strict CSP)."""
    from auditor.report._render import render_document  # deferred: jinja2 loads only when rendering

    return render_document(data, templates_dir=templates_dir or default_templates_dir(), mode="html")


def render_pdf(
    data: ReportData,
    *,
    templates_dir: Path | None = None,
    roster_limit: int = PDF_ROSTER_LIMIT,
    findings_per_rule: int | None = PDF_FINDINGS_PER_RULE,
    table_limit: int | None = PDF_TABLE_LIMIT,
    progress: Progress | None = None,
    sign: Callable[[bytes], bytes] | None = None,
) -> bytes:
    """The archival, tagged PDF/A-3a report, with the roster, findings, changes, keys and provenance attached.

    ``sign`` (``auditor.report._sign.PdfSigner.sign``) adds the PAdES signature of the evidence key.

    The PDF lists at most ``roster_limit`` users, ``findings_per_rule`` findings of each rule and
    ``table_limit`` access changes, privileged users and API keys (None: all); the attached CSVs
    always hold every one, and each shortened table says how many more its CSV has.
    """
    from auditor.report._pdf import render_pdf_bytes  # deferred: weasyprint loads only for a PDF

    pdf = render_pdf_bytes(
        data,
        templates_dir=templates_dir or default_templates_dir(),
        roster_limit=roster_limit,
        progress=progress,
        findings_per_rule=findings_per_rule,
        table_limit=table_limit,
    )
    if sign is None:
        return pdf
    if progress is not None:
        progress("Signing PDF report")
    return sign(pdf)


def account_slug(name: str, account_id: int | None = None) -> str:
    """A file-name-safe, ASCII form of the account name ("Ünïcode Corp" -> "unicode-corp")."""
    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode("ascii")
    slug = re.sub(r"[^a-z0-9]+", "-", ascii_name.casefold()).strip("-")[:60].strip("-")
    if slug:
        return slug
    return f"account-{account_id}" if account_id is not None else "account"


def report_basename(data: ReportData) -> str:
    """``certcentral-access-review-<account slug>-<YYYY-MM-DD of the snapshot>``, without extension."""
    return basename_of(data.account_name, data.account_id, data.snapshot.taken_at)


def basename_of(account_name: str, account_id: int | None, taken_at: datetime) -> str:
    """The report file name for an account's snapshot taken at ``taken_at`` (also where export looks)."""
    return f"certcentral-access-review-{account_slug(account_name, account_id)}-{taken_at.date().isoformat()}"


def write_reports(
    data: ReportData,
    *,
    formats: Sequence[ReportFormat],
    output_dir: Path,
    overwrite: bool = False,
    templates_dir: Path | None = None,
    roster_limit: int = PDF_ROSTER_LIMIT,
    progress: Progress | None = None,
    sign_pdf: Callable[[bytes], bytes] | None = None,
) -> list[Path]:
    """Render each format and write it atomically into ``output_dir``; returns the paths written.

    Every target is checked before anything is rendered, so a refusal to overwrite costs nothing
    and leaves no partial set of files behind.
    """
    if not formats:
        raise ReportError("No report format was requested.", hint="Pass --format html, pdf or html,pdf.")
    output_dir = Path(output_dir)
    try:
        make_private_dirs(output_dir)  # reports hold names and emails: 0700 when the tool creates it
    except OSError as exc:
        raise ReportError(
            f"The output directory {output_dir} could not be created: {exc.strerror or exc}.",
            hint="Choose another directory with --output.",
        ) from exc
    if not output_dir.is_dir() or not os.access(output_dir, os.W_OK | os.X_OK):
        raise ReportError(
            f"The output directory {output_dir} is not a writable directory.",
            hint="Choose another directory with --output, or fix its permissions.",
        )
    unique = list(dict.fromkeys(ReportFormat(fmt) for fmt in formats))
    base = report_basename(data)
    targets = [(fmt, output_dir / f"{base}.{fmt.value}") for fmt in unique]
    if not overwrite:
        for _fmt, target in targets:
            if target.exists():
                raise ReportError(
                    f"{target} already exists; it was not overwritten.",
                    hint="Pass --overwrite to replace it, or choose another directory with --output.",
                )
    written: list[Path] = []
    for fmt, target in targets:
        if fmt is ReportFormat.HTML:
            if progress:
                progress("Rendering HTML report")
            payload = render_html(data, templates_dir=templates_dir).encode("utf-8")
        else:
            payload = render_pdf(
                data, templates_dir=templates_dir, roster_limit=roster_limit, progress=progress, sign=sign_pdf
            )
        try:
            write_bytes_atomic(target, payload)
        except OSError as exc:
            raise ReportError(
                f"{target} could not be written: {exc.strerror or exc}.",
                hint="Check free space and permissions, or choose another directory with --output.",
            ) from exc
        written.append(target)
    return written
