"""The PDF report, read back with real PDF tools: pypdf and poppler's pdftotext."""

from __future__ import annotations

import io
import re
import shutil
import subprocess
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import pytest
from pypdf import PdfReader
from report_fixtures import MFA_LIMITATION, XSS_NAME, make_report_data

from auditor import exports
from auditor.errors import ReportError
from auditor.report import ReportData, ReportFormat, render_pdf, report_basename, write_reports

needs_poppler = pytest.mark.skipif(shutil.which("pdftotext") is None, reason="poppler's pdftotext is not installed")


@pytest.fixture(scope="module")
def data() -> ReportData:
    return make_report_data()


@pytest.fixture(scope="module")
def pdf(data: ReportData) -> bytes:
    return render_pdf(data)


@pytest.fixture(scope="module")
def reader(pdf: bytes) -> PdfReader:
    return PdfReader(io.BytesIO(pdf))


def pdftotext(pdf: bytes, tmp_path: Path, *options: str) -> str:
    path = tmp_path / "report.pdf"
    path.write_bytes(pdf)
    out = subprocess.run(["pdftotext", "-enc", "UTF-8", *options, str(path), "-"], capture_output=True, check=True)
    return out.stdout.decode("utf-8")


def flat(text: str) -> str:
    """Text with line breaks and hyphen-free wrapping undone, for phrase searches."""
    return re.sub(r"\s+", " ", text)


@needs_poppler
def test_findings_and_limitations_are_in_the_text(pdf: bytes, tmp_path: Path) -> None:
    text = pdftotext(pdf, tmp_path)
    flattened = flat(text)
    # Rule ids wrap at hyphens in their narrow column; -raw keeps the hyphen, so undo the wrap.
    unwrapped = re.sub(r"-\n", "-", pdftotext(pdf, tmp_path, "-raw"))
    for rule in ("new-admin", "admin-dormant", "privileged-shared-mailbox", "never-signed-in"):
        assert rule in unwrapped
    assert "Dormant administrator" in flattened
    # suppressed, with its reason (-raw reads a table cell by cell, not across the columns)
    assert "Seasonal contractor; access reviewed with HR" in flat(unwrapped)
    # The 2FA limitation is stated once, with the attestation on record (the rules' own wording of
    # it is folded into that paragraph rather than repeated).
    assert "does not expose whether each user has 2FA set up" in flattened
    assert flattened.count("does not expose") == 1
    assert flat(MFA_LIMITATION) not in flattened
    assert "Rita Reviewer" in flattened
    assert XSS_NAME in flattened  # a hostile name is plain text in the PDF too


@needs_poppler
def test_running_header_and_page_numbers(pdf: bytes, reader: PdfReader, tmp_path: Path) -> None:
    pages = pdftotext(pdf, tmp_path).split("\f")
    count = len(reader.pages)
    for number, page in enumerate(pages[:count], start=1):
        assert f"Page {number} of {count}" in page
        assert "Report R-2026-11-01-7f3a" in page
        assert "Exämple Corp <Prod>" in page


def test_attachments_equal_the_exports(reader: PdfReader, data: ReportData) -> None:
    attached = reader.attachments
    assert sorted(attached) == [
        "changes.csv", "findings.csv", "keys.csv", "privileged.csv", "provenance.json", "roster.csv",
    ]
    assert attached["roster.csv"] == [exports.roster_csv(data.snapshot, history=data.history)]
    assert attached["findings.csv"] == [exports.findings_csv(data.findings)]
    assert attached["changes.csv"] == [exports.changes_csv(data.changes)]
    assert attached["provenance.json"] == [exports.provenance_json(data.snapshot)]
    assert attached["keys.csv"] == [exports.keys_csv(data.snapshot)]
    # The privileged table's whole: the roster's rows of every Administrator and Manager, nobody else.
    privileged = {u.email for u in data.snapshot.users if u.is_admin or u.is_manager}
    rows = attached["privileged.csv"][0].decode("utf-8-sig").splitlines()
    assert rows[0] == ",".join(exports.ROSTER_HEADER)
    assert sorted(row.split(",")[1] for row in rows[1:]) == sorted(privileged) and privileged


def test_metadata(reader: PdfReader) -> None:
    meta = reader.metadata
    assert meta is not None
    assert meta.title == "CertCentral access review: Exämple Corp <Prod>"
    assert meta.author == "certcentral-auditor"
    assert meta.subject is not None and "snapshot 7" in meta.subject
    assert "PCI DSS v4.0.1" in str(meta.get("/Keywords"))


def test_pdfa_3a_identification(reader: PdfReader) -> None:
    root = reader.trailer["/Root"]
    xmp = root["/Metadata"].get_object().get_data().decode("utf-8")
    assert re.search(r'pdfaid:part="3"', xmp)
    assert re.search(r'pdfaid:conformance="A"', xmp)  # "a": tagged, the accessible level
    assert "/OutputIntents" in root
    assert "/AF" in root  # attachments are PDF/A-3 associated files


def test_bookmarks_per_section(reader: PdfReader) -> None:
    def titles(outline: list[object]) -> list[str]:
        found: list[str] = []
        for item in outline:
            if isinstance(item, list):
                found.extend(titles(item))
            else:
                found.append(str(item.title))  # type: ignore[attr-defined]
        return found

    names = titles(reader.outline)
    for section in ("Action required", "What changed in access", "Sign-off", "About this report",
                    "Source and completeness", "Summary at a glance", "Findings", "Suppressed findings (accepted risk)",
                    "Changes since the previous snapshot", "Access changes", "Sign-in activity", "Privileged access",
                    "Limitations", "Appendix", "User roster", "Methodology", "Provenance"):
        assert section in names, section


def test_page_count_is_sane(reader: PdfReader) -> None:
    assert 5 <= len(reader.pages) <= 15


@needs_poppler
def test_roster_over_the_limit_shows_a_banner(data: ReportData, pdf: bytes, tmp_path: Path) -> None:
    full = flat(pdftotext(pdf, tmp_path))
    assert "Roster shortened" not in full
    assert "ivan@example.com" in full  # only in the roster (a Finance Manager is not privileged)
    short = render_pdf(data, roster_limit=5)
    text = flat(pdftotext(short, tmp_path))
    assert "Roster shortened" in text
    assert "first 5 of 14 users" in text
    assert "roster.csv" in text
    assert "ivan@example.com" not in text
    # the attachment still carries every user
    attached = PdfReader(io.BytesIO(short)).attachments["roster.csv"][0]
    assert b"ivan@example.com" in attached


def test_negative_roster_limit_is_refused(data: ReportData) -> None:
    with pytest.raises(ReportError, match="roster limit"):
        render_pdf(data, roster_limit=-1)


def test_write_reports_writes_both_formats_with_progress(tmp_path: Path, data: ReportData) -> None:
    steps: list[str] = []
    paths = write_reports(
        data, formats=[ReportFormat.HTML, ReportFormat.PDF], output_dir=tmp_path, progress=steps.append
    )
    base = report_basename(data)
    assert [p.name for p in paths] == [f"{base}.html", f"{base}.pdf"]
    assert paths[1].read_bytes().startswith(b"%PDF-1.7")
    assert any("PDF" in step for step in steps)
    with pytest.raises(ReportError, match=re.escape(f"{base}.pdf")):
        write_reports(data, formats=[ReportFormat.PDF], output_dir=tmp_path)


def test_same_data_and_clock_give_the_same_pdf_bytes(data: ReportData, pdf: bytes) -> None:
    # An evidence bundle hashes the PDF as delivered; re-rendering must not drift.
    assert render_pdf(data) == pdf
    later = render_pdf(replace(data, generated_at=data.generated_at + timedelta(days=1)))
    assert later != pdf, "the generation time must show in the document"


@needs_poppler
def test_pulled_by_and_source_block_on_page_two(pdf: bytes, tmp_path: Path) -> None:
    # Page one is the verdict (headline, actions, access changes, sign-off); what the report is of
    # and where the data came from follow on page two.
    pages = pdftotext(pdf, tmp_path, "-layout").split("\f")
    second = flat(pages[1])
    assert "Pulled by auditjob@build-01 with the key of Alice Admin <alice@example.com> (Administrator)" in second
    assert "Source and completeness" in second
    assert "Operator auditjob@build-01 (certcentral-auditor 0.1.0, Python 3.12.4)" in second
    assert "Command auditor pull --connection prod" in second
    assert re.search(r"GET /user limit=500, offset=0 14 14 1 complete", second)
    assert "Result complete" in second
