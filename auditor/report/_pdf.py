"""The PDF writer: WeasyPrint renders the report template with print.css into tagged PDF/A-3a.

weasyprint is imported here only, when a PDF is asked for: importing it costs about a second
and the CLI must start fast. The machine-readable views from :mod:`auditor.exports` travel
inside the PDF as PDF/A-3 associated files, so the PDF alone is complete evidence.

WeasyPrint 70 API used: ``HTML(string=..., base_url=..., url_fetcher=...)``, ``.render(**options)``
(``pdf_variant``: "pdf/a-3a" turns on ``pdf_tags``, the structure tree; ``attachments``) and ``Document.write_pdf``;
``Attachment(string=bytes, name=..., description=..., created=..., modified=..., relationship=...)``.
"""

from __future__ import annotations

import warnings
import zlib
from pathlib import Path
from typing import TYPE_CHECKING, Any

from auditor import exports
from auditor.errors import ReportError

from ._render import render_document
from ._view import PDF_FINDINGS_PER_RULE, PDF_TABLE_LIMIT, Tuning

if TYPE_CHECKING:
    from auditor.report import Progress, ReportData

PDF_VARIANT = "pdf/a-3a"
#: zlib level for the attached files: zlib's default. pydyf compresses every stream at level 9,
#: which takes twice as long on the attached CSVs (2.2 s against 1.0 s for 26 MB at 100,000
#: users) for 3 % fewer bytes.
ATTACHMENT_ZLIB_LEVEL = 6


def attachments(data: ReportData) -> list[tuple[str, str, bytes]]:
    """(file name, description, bytes) of every file embedded in the PDF, from auditor.exports.

    Each table the PDF prints only in part has its whole in one of them: roster.csv (and its
    Administrators and Managers alone, privileged.csv), findings.csv, changes.csv, keys.csv.
    """
    roster = exports.roster_rows(data.snapshot, history=data.history)
    privileged = {user.id for user in data.snapshot.users if user.is_admin or user.is_manager}
    return [
        ("roster.csv", "Full user roster of the snapshot (CSV)", exports.rows_csv(exports.ROSTER_HEADER, roster)),
        (
            "privileged.csv",
            "Every Administrator and Manager of the snapshot, roster columns (CSV)",
            exports.rows_csv(exports.ROSTER_HEADER, [row for row in roster if row[0] in privileged]),
        ),
        ("findings.csv", "All findings, suppressed included (CSV)", exports.findings_csv(data.findings)),
        ("changes.csv", "Changes since the previous snapshot (CSV)", exports.changes_csv(data.changes)),
        ("keys.csv", "API keys and ACME URLs of the snapshot (CSV)", exports.keys_csv(data.snapshot)),
        ("provenance.json", "Provenance of the snapshot's pull (JSON)", exports.provenance_json(data.snapshot)),
    ]


def compress_attachments(_document: object, pdf: Any) -> None:
    """A WeasyPrint ``finisher``: deflate each embedded file at :data:`ATTACHMENT_ZLIB_LEVEL` now.

    The stream then carries its own ``/FlateDecode`` filter and is written as it is; every other
    stream keeps pydyf's compression. (pydyf 0.13: ``Stream.stream``, ``.extra``, ``.compress``.)
    """
    import pydyf  # type: ignore[import-untyped]  # weasyprint's PDF writer, installed with it

    for item in pdf.objects:
        if isinstance(item, pydyf.Stream) and item.compress and item.extra.get("Type") == "/EmbeddedFile":
            raw = b"\n".join(bytes(part) for part in item.stream)  # as pydyf joins them
            item.stream = [zlib.compress(raw, ATTACHMENT_ZLIB_LEVEL)]
            item.extra["Filter"] = "/FlateDecode"
            item.compress = False


def render_pdf_bytes(
    data: ReportData,
    *,
    templates_dir: Path,
    roster_limit: int | None,
    progress: Progress | None = None,
    tuning: Tuning | None = None,
    findings_per_rule: int | None = PDF_FINDINGS_PER_RULE,
    table_limit: int | None = PDF_TABLE_LIMIT,
) -> bytes:
    """Render the PDF. ``roster_limit=None`` lists the whole roster; ``findings_per_rule`` caps
    each rule's block of findings and ``table_limit`` the access changes, privileged users and API
    keys (None: all; every row is attached either way)."""
    if roster_limit is not None and roster_limit < 0:
        raise ReportError(f"The PDF roster limit must be 0 or more, not {roster_limit}.")

    def step(message: str) -> None:
        if progress is not None:
            progress(message)

    step("Preparing PDF report")
    html = render_document(
        data, templates_dir=templates_dir, mode="pdf", roster_limit=roster_limit, tuning=tuning,
        findings_per_rule=findings_per_rule, table_limit=table_limit,
    )
    try:
        import weasyprint  # deferred: ~1 s and pango/cairo, paid only when a PDF is made
    except ImportError as exc:  # pragma: no cover - a declared dependency
        raise ReportError(
            "PDF reports need WeasyPrint, which could not be imported.",
            hint="Reinstall certcentral-auditor, or use --format html.",
        ) from exc
    # The template names no external resource; refuse any anyway (offline, reproducible).
    fetcher = weasyprint.urls.URLFetcher(allowed_protocols={"data"})
    # A naive datetime is what WeasyPrint formats into the attachment dictionaries (as UTC).
    stamp = data.generated_at.replace(tzinfo=None)
    files = [
        weasyprint.Attachment(
            string=payload, name=name, description=description, created=stamp, modified=stamp,
            relationship="Data",
        )
        for name, description, payload in attachments(data)
    ]
    options: dict[str, Any] = {
        "pdf_variant": PDF_VARIANT,
        "attachments": files,
        "pdf_identifier": data.report_id.encode("utf-8"),
    }
    # WeasyPrint's own warnings (unsupported CSS, missing glyphs) go to its "weasyprint" logger,
    # which carries a NullHandler: silent unless the application configures logging.
    with warnings.catch_warnings():
        # WeasyPrint 70 opens its sRGB ICC profile for PDF/A without closing it
        # (weasyprint/pdf/__init__.py, output_intent == 'srgb'); the ResourceWarning is
        # WeasyPrint's, not the caller's, and would fail runs with warnings as errors.
        warnings.simplefilter("ignore", ResourceWarning)
        try:
            step("Laying out PDF pages")
            document = weasyprint.HTML(string=html, base_url=str(templates_dir), url_fetcher=fetcher).render(
                pdf_variant=PDF_VARIANT
            )
            step(f"Writing PDF ({len(document.pages)} pages)")
            pdf = document.write_pdf(finisher=compress_attachments, **options)
        except Exception as exc:  # WeasyPrint raises assorted errors from deep inside layout
            raise ReportError(
                f"The PDF report could not be rendered: {type(exc).__name__}: {exc}.",
                hint="Try --format html, or report the problem with the command you ran.",
            ) from exc
    if not isinstance(pdf, bytes):  # pragma: no cover - write_pdf() without target returns bytes
        raise ReportError("WeasyPrint returned no PDF data.")
    step("PDF report ready")
    return pdf
