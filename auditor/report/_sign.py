"""The PDF report's PAdES signature with the evidence signing key (issue 19), through pyHanko.

The signature is an invisible CAdES-detached signature field (PAdES baseline B-B) added as an
incremental update, so the PDF/A-3a bytes WeasyPrint wrote stay as they were, in front.
The evidence key is Ed25519 (RFC 8419 in CMS, ISO 32002 in PDF): pyHanko signs with it, and the
certificate PDF signatures need is a self-signed one made here from that very key, valid from the
key period's start. It names the key's fingerprint, so an auditor ties the PDF to the key they
pinned for the bundles; it is not issued by any CA, so PDF viewers show the signature as valid
but its signer as unknown, which is what it is.

The private key never leaves its object: pyHanko gets a :class:`pyhanko.sign.signers.Signer` whose
raw signing calls ``Ed25519PrivateKey.sign``, so no key material is serialised outside
``auditor.credentials``. pyHanko is imported here only, when a PDF is signed.
"""

from __future__ import annotations

import concurrent.futures
import hashlib
import io
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.x509.oid import NameOID

from auditor.errors import ReportError

__all__ = ["FIELD_NAME", "PdfSigner", "signer_certificate"]

#: The signature field's name in every signed report.
FIELD_NAME = "CertCentralAuditorEvidenceKey"
#: How long the self-signed certificate is valid after the key period starts (it only names the key).
_CERTIFICATE_YEARS = 30


def signer_certificate(key: Ed25519PrivateKey, *, fingerprint: str, valid_from: datetime) -> x509.Certificate:
    """A self-signed X.509 certificate of the evidence key: the same key, date and fingerprint give the same bytes."""
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.COMMON_NAME, "certcentral-auditor evidence signing key"),
            x509.NameAttribute(NameOID.SERIAL_NUMBER, fingerprint),
        ]
    )
    start = valid_from.astimezone(UTC).replace(microsecond=0)
    public = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(int.from_bytes(hashlib.sha256(public).digest()[:16], "big") >> 1)
        .not_valid_before(start)
        .not_valid_after(start + timedelta(days=365 * _CERTIFICATE_YEARS))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True, content_commitment=True, key_encipherment=False, data_encipherment=False,
                key_agreement=False, key_cert_sign=False, crl_sign=False, encipher_only=False, decipher_only=False,
            ),
            critical=True,
        )
        .sign(key, None)
    )


@dataclass(frozen=True, slots=True)
class PdfSigner:
    """Signs rendered PDF reports with the evidence key (``auditor report``, ``run``, ``export``)."""

    key: Ed25519PrivateKey
    fingerprint: str
    #: When the key period began: the certificate's start.
    valid_from: datetime
    #: The signing time written into the signature: the report's generated-at (the injected clock).
    signed_at: datetime

    def sign(self, pdf: bytes) -> bytes:
        """``pdf`` with an invisible PAdES signature appended; ReportError if pyHanko refuses it."""
        try:
            from pyhanko.pdf_utils import generic
            from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
            from pyhanko.sign import fields, signers
        except ImportError as exc:  # pragma: no cover - a declared dependency
            raise ReportError(
                "Signed PDF reports need pyHanko, which could not be imported.",
                hint="Reinstall certcentral-auditor, or pass --pdf-unsigned.",
            ) from exc
        certificate = signer_certificate(self.key, fingerprint=self.fingerprint, valid_from=self.valid_from)
        signer = _evidence_signer(signers.Signer, self.key, certificate)
        meta = signers.PdfSignatureMetadata(
            field_name=FIELD_NAME,
            md_algorithm="sha512",  # Ed25519 in CMS uses SHA-512 for the message digest (RFC 8419)
            subfilter=fields.SigSeedSubFilter.PADES,
            reason="certcentral-auditor access review report, signed with the evidence signing key",
            name=f"certcentral-auditor evidence signing key {self.fingerprint}",
        )
        output = io.BytesIO()
        signed_at = self.signed_at.astimezone(UTC)

        class AtTheReportsTime(signers.PdfSigner):
            """pyHanko takes the signing time from the system clock; the report's own time is used instead."""

            def init_signing_session(self, pdf_out: Any, existing_fields_only: bool = False) -> Any:
                session = super().init_signing_session(pdf_out, existing_fields_only)
                session.system_time = signed_at
                return session

        def sign_in_this_thread() -> None:
            writer = IncrementalPdfFileWriter(io.BytesIO(pdf))
            writer._meta = _metadata_at(signed_at)  # pyHanko 0.38 stamps the XMP and /Info with the system clock
            # ... and gives the update a random second /ID: derive it from the document and key instead.
            first_id = writer._document_id[0]
            revision = hashlib.sha256(pdf + self.fingerprint.encode("ascii")).digest()[:16]
            writer._document_id = generic.ArrayObject([first_id, generic.ByteStringObject(revision)])
            _same_producer(writer, generic)
            AtTheReportsTime(meta, signer=signer).sign_pdf(writer, output=output)

        try:
            # pyHanko's sign_pdf calls asyncio.run(), which refuses to run inside a running event loop
            # (an embedding application's, or Playwright's in the tests): a thread of its own has none.
            with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
                pool.submit(sign_in_this_thread).result()
        except Exception as exc:  # pyHanko raises assorted errors from its PDF reader and writer
            raise ReportError(
                f"The PDF report could not be signed: {type(exc).__name__}: {exc}.",
                hint="Pass --pdf-unsigned to write it unsigned, or report the problem with the command you ran.",
            ) from exc
        return output.getvalue()


def _same_producer(writer: Any, generic: Any) -> None:
    """PDF/A wants /Info and XMP to agree: pyHanko writes its name alone into XMP ``pdf:Producer`` but
    appends it to /Info /Producer, unless already there; so /Info says pyHanko's name alone, too."""
    from pyhanko.pdf_utils.metadata.model import VENDOR

    if writer._info is not None:
        info = writer._info.get_object()
        info["/Producer"] = generic.TextStringObject(VENDOR)
        writer.update_container(info)


def _metadata_at(moment: datetime) -> Any:
    """pyHanko's document metadata with the modification date fixed at ``moment``.

    Its writer sets ``last_modified = 'now'`` right before writing (``BasePdfFileWriter._update_meta``);
    this ignores that assignment, so the same report and key give the same signed bytes.
    """
    from pyhanko.pdf_utils.metadata.model import DocumentMetadata

    class AtMoment(DocumentMetadata):
        @property
        def last_modified(self) -> datetime:
            return moment

        @last_modified.setter
        def last_modified(self, _value: object) -> None:
            pass

    return AtMoment()


def _evidence_signer(base: type, key: Ed25519PrivateKey, certificate: x509.Certificate) -> Any:
    """A pyHanko ``Signer`` whose raw signature is ``key.sign``: the key object is used, never dumped."""
    from asn1crypto import x509 as asn1_x509  # type: ignore[import-untyped]
    from pyhanko_certvalidator.registry import SimpleCertificateStore

    cert = asn1_x509.Certificate.load(certificate.public_bytes(serialization.Encoding.DER))

    class EvidenceKeySigner(base):  # type: ignore[misc]
        async def async_sign_raw(self, data: bytes, digest_algorithm: str, dry_run: bool = False) -> bytes:
            return key.sign(data)

    return EvidenceKeySigner(signing_cert=cert, cert_registry=SimpleCertificateStore.from_certs([cert]))  # type: ignore[no-untyped-call]
