"""The PDF report's PAdES signature with the evidence key (issue 19): valid, still PDF/A, reproducible.

The demo's PDF (the session's one demo run, signed through `auditor run`) is checked with pyHanko's
validator and poppler's pdfsig when present; test_report_layout's PDF/A-3a checks run on a signed
PDF (its ``review_pdf`` fixture signs what it renders).
"""

from __future__ import annotations

import hashlib
import io
import shutil
import subprocess
import zipfile
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import TypeVar

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from support import DemoRun

from auditor.errors import ExitCode
from auditor.report._sign import FIELD_NAME, PdfSigner, signer_certificate

T = TypeVar("T")


def in_own_thread(call: Callable[[], T]) -> T:
    """``call()`` on a thread of its own: pyHanko's validator calls ``asyncio.run()``, which refuses
    to run on a thread whose loop is running (an xdist worker's Playwright session has one)."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(call).result()


KEY = Ed25519PrivateKey.from_private_bytes(hashlib.sha256(b"report signing key").digest())
T0 = datetime(2026, 11, 1, 9, 30, tzinfo=UTC)


@pytest.fixture(scope="module")
def demo_pdf(demo_run: DemoRun) -> bytes:
    assert demo_run.result.returncode == ExitCode.OK, demo_run.result.stderr
    (pdf,) = (demo_run.output / "reports").glob("*.pdf")
    return pdf.read_bytes()


@pytest.fixture(scope="module")
def demo_key_pem(demo_run: DemoRun) -> bytes:
    bundle = sorted((demo_run.output / "evidence").glob("*.zip"))[-1]
    with zipfile.ZipFile(bundle) as archive:
        return archive.read("signer.pub.pem")


def validate(pdf: bytes) -> object:
    from asn1crypto import x509 as asn1_x509
    from pyhanko.pdf_utils.reader import PdfFileReader
    from pyhanko.sign.validation import validate_pdf_signature
    from pyhanko_certvalidator import ValidationContext

    (signature,) = PdfFileReader(io.BytesIO(pdf)).embedded_signatures
    root = asn1_x509.Certificate.load(signature.signer_cert.dump())  # trusted as the pinned evidence key
    context = ValidationContext(trust_roots=[root])
    return in_own_thread(lambda: validate_pdf_signature(signature, context)), signature


def test_the_demo_pdf_is_signed_by_the_evidence_key_over_the_whole_file(demo_pdf: bytes, demo_key_pem: bytes) -> None:
    from pyhanko.sign.validation import SignatureCoverageLevel

    status, signature = validate(demo_pdf)  # type: ignore[misc]

    assert status.intact and status.valid and status.coverage is SignatureCoverageLevel.ENTIRE_FILE
    assert signature.field_name == FIELD_NAME
    assert signature.signer_cert.public_key.dump() == serialization.load_pem_public_key(demo_key_pem).public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    ), "the PDF is signed by the key that signs the bundles"
    assert signature.self_reported_timestamp.tzinfo is not None


def test_the_signed_pdf_keeps_info_and_xmp_equal_and_an_invisible_printable_field(demo_pdf: bytes) -> None:
    pikepdf = pytest.importorskip("pikepdf")
    with pikepdf.open(io.BytesIO(demo_pdf)) as pdf:
        meta = pdf.open_metadata(set_pikepdf_as_editor=False, update_docinfo=False)
        assert meta.get("pdfaid:part") == "3" and meta.get("pdfaid:conformance") == "A"
        info = pdf.trailer.Info
        assert str(info.Producer) == meta.get("pdf:Producer")  # PDF/A: /Info and XMP say the same
        assert meta.get("xmp:ModifyDate") is not None
        (field,) = pdf.Root.AcroForm.Fields
        assert str(field.FT) == "/Sig" and [float(v) for v in field.Rect] == [0, 0, 0, 0]  # invisible: no /AP
        assert int(field.F) & 4 and "/NeedAppearances" not in pdf.Root.AcroForm  # printable, as PDF/A asks


@pytest.mark.skipif(shutil.which("pdfsig") is None, reason="poppler's pdfsig is not installed")
def test_pdfsig_reads_the_signature_covering_the_whole_document(demo_pdf: bytes, tmp_path: Path) -> None:
    path = tmp_path / "signed.pdf"
    path.write_bytes(demo_pdf)
    text = subprocess.run(["pdfsig", str(path)], capture_output=True, text=True, check=False).stdout
    assert f"Signature Field Name: {FIELD_NAME}" in text
    assert "Signature Type: ETSI.CAdES.detached" in text and "Total document signed" in text
    # poppler 22.12 checks signatures with NSS, which has no Ed25519 in CMS: it cannot say "valid" (README).


def test_signing_is_reproducible_and_names_the_key(demo_pdf: bytes) -> None:
    # The demo PDF as WeasyPrint wrote it: its first revision, before the signature's incremental update.
    unsigned = demo_pdf[: demo_pdf.index(b"%%EOF") + len(b"%%EOF\n")]
    signer = PdfSigner(KEY, "sha256:report-key", T0, T0)

    once, twice = signer.sign(unsigned), signer.sign(unsigned)

    assert once == twice and once.startswith(unsigned), "an incremental update after the bytes WeasyPrint wrote"
    certificate = signer_certificate(KEY, fingerprint="sha256:report-key", valid_from=T0)
    assert certificate.public_key() == KEY.public_key()
    assert "sha256:report-key" in certificate.subject.rfc4514_string()


def test_signing_works_inside_a_running_event_loop(demo_pdf: bytes) -> None:
    # pyHanko calls asyncio.run(): an application (or Playwright in these tests) with a loop running
    # must still get a signed PDF, not "asyncio.run() cannot be called from a running event loop".
    import asyncio

    unsigned = demo_pdf[: demo_pdf.index(b"%%EOF") + len(b"%%EOF\n")]
    signer = PdfSigner(KEY, "sha256:report-key", T0, T0)

    async def inside_a_loop() -> bytes:
        return signer.sign(unsigned)

    # On a thread of its own, so that this test's loop is the one running (not a Playwright session's).
    assert in_own_thread(lambda: asyncio.run(inside_a_loop())) == signer.sign(unsigned)
