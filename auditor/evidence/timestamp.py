"""RFC 3161 time anchors: a TSA's token over a bundle's signature, obtained and checked (issue 19).

The exporter's clock is only the key holder's word; a token from an outside time-stamping
authority (https://www.rfc-editor.org/rfc/rfc3161) shows the signature existed by the TSA's time.
The token's message imprint is the SHA-256 of the raw Ed25519 signature in ``signature.json``
(base64-decoded), and the token travels as ``signature.tsr`` (the whole TimeStampResp, as
``openssl ts -reply`` writes it), outside the manifest, which it comes after.

The TSA is asked through its own small client here (stdlib ``urllib``, one POST of
``application/timestamp-query``): never through the CertCentral client, so it never sees the
API key or its headers, and the CertCentral transport's read-only guard (only GET leaves) stays
about CertCentral alone. Parsing and checking use ``rfc3161-client`` (trailofbits).
"""

from __future__ import annotations

import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID

from auditor.errors import ConfigurationError, EvidenceError

__all__ = [
    "NO_TSA_ENTRY",
    "TIMESTAMP_PATH",
    "TimestampAuthority",
    "TimestampAuthorityError",
    "TimestampCheck",
    "check_token",
    "load_tsa_certificates",
]

TIMESTAMP_PATH = "signature.tsr"
#: What a manifest says when no TSA was configured.
NO_TSA_ENTRY: dict[str, Any] = {
    "authority": None,
    "note": "No time-stamping authority was configured for this export: created_at is the exporter's clock only.",
}
_MEDIA_QUERY = "application/timestamp-query"
_MEDIA_REPLY = "application/timestamp-reply"
#: A TimeStampResp is a few kilobytes; anything much larger is not one.
_REPLY_LIMIT = 1024 * 1024

#: (url, request body, timeout) -> response body; injected in tests, urllib's POST otherwise.
Post = Callable[[str, bytes, float], bytes]


class TimestampAuthorityError(EvidenceError):
    """The TSA could not give a token, so the bundle was not written (exit 6)."""


@dataclass(frozen=True, slots=True)
class TimestampAuthority:
    """A TSA to ask for a token over each bundle's signature (``--tsa-url``, ``tsa_url`` in auditor.toml)."""

    url: str
    #: ``--tsa-optional``: a TSA that does not answer lets the export proceed without a token.
    optional: bool = False
    timeout: float = 15.0

    def __post_init__(self) -> None:
        parts = urllib.parse.urlsplit(self.url)
        if parts.scheme not in {"http", "https"} or not parts.hostname:
            raise ConfigurationError(
                f"--tsa-url {self.url!r} is not an http(s) URL.",
                hint="Pass --tsa-url https://tsa.example.com/ (the TSA's RFC 3161 endpoint).",
            )
        if parts.username or parts.password:
            raise ConfigurationError(
                "--tsa-url must not carry a user name or password: it is written into every manifest.",
                hint="Pass --tsa-url without credentials.",
            )

    def manifest_entry(self) -> dict[str, Any]:
        """The manifest's ``timestamp`` section: who was asked, and whether a token was required."""
        return {
            "authority": self.url,
            "required": not self.optional,
            "token_file": TIMESTAMP_PATH,
            "message_imprint": "SHA-256 of the Ed25519 signature in signature.json (base64-decoded)",
        }

    def stamp(self, signature: bytes, *, post: Post | None = None) -> bytes | None:
        """The TSA's TimeStampResp (DER) over ``signature``; None when the TSA fails and ``optional``.

        The token is checked for the imprint and a granted status here, so a misbehaving TSA is
        noticed at export, not by the auditor. Raises TimestampAuthorityError otherwise.
        """
        from rfc3161_client import HashAlgorithm, PKIStatus, TimestampRequestBuilder, decode_timestamp_response

        request = TimestampRequestBuilder().data(signature).hash_algorithm(HashAlgorithm.SHA256).build()
        try:
            body = (post or _post)(self.url, request.as_bytes(), self.timeout)
            response = decode_timestamp_response(body)
            if PKIStatus(response.status) not in {PKIStatus.GRANTED, PKIStatus.GRANTED_WITH_MODS}:
                raise ValueError(f"it refused the request (PKIStatus {response.status})")
            imprint = response.tst_info.message_imprint.message
            if imprint != request.message_imprint.message or response.tst_info.nonce != request.nonce:
                raise ValueError("its token is for other data")
        except (OSError, ValueError) as exc:
            if self.optional:
                return None
            raise TimestampAuthorityError(
                f"The time-stamping authority {self.url} gave no usable token: {_reason(exc)}. "
                "No bundle was written.",
                hint="Check --tsa-url, or pass --tsa-optional to export without a trusted timestamp when "
                "the TSA is down.",
            ) from exc
        return response.as_bytes()


def _post(url: str, body: bytes, timeout: float) -> bytes:
    request = urllib.request.Request(  # noqa: S310 - the scheme is checked in TimestampAuthority
        url, data=body, method="POST", headers={"Content-Type": _MEDIA_QUERY, "Accept": _MEDIA_REPLY}
    )
    with urllib.request.urlopen(request, timeout=timeout) as answer:  # noqa: S310
        data: bytes = answer.read(_REPLY_LIMIT + 1)
    if len(data) > _REPLY_LIMIT:
        raise ValueError("its answer is larger than a timestamp reply can be")
    return data


def _reason(exc: BaseException) -> str:
    if isinstance(exc, urllib.error.HTTPError):
        return f"HTTP {exc.code}"
    if isinstance(exc, urllib.error.URLError):
        return str(exc.reason)
    return str(exc) or type(exc).__name__


def load_tsa_certificates(path: Path) -> list[x509.Certificate]:
    """The ``--tsa-cert`` PEM file: the TSA's certificate and/or the CA that issued it."""
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise ConfigurationError(f"Cannot read --tsa-cert {path}: {exc.strerror or exc}.") from exc
    try:
        certificates = x509.load_pem_x509_certificates(data)
    except ValueError as exc:
        raise ConfigurationError(
            f"--tsa-cert {path} holds no PEM certificate.",
            hint="Pass --tsa-cert with the PEM certificate of the TSA (or of the CA that issued it).",
        ) from exc
    return certificates


@dataclass(frozen=True, slots=True)
class TimestampCheck:
    """What a token says, and whether it held against the pinned TSA certificates."""

    #: The TSA's time (genTime), from the token; None when the token cannot be read.
    time: datetime | None
    authority: str
    #: '' when the token verified; else why not.
    problem: str


def check_token(token: bytes, signature: bytes, certificates: Sequence[x509.Certificate]) -> TimestampCheck:
    """Check ``token`` (a TimeStampResp) against ``signature`` and the ``--tsa-cert`` certificates.

    Self-signed certificates are the roots; the one with the time-stamping key purpose is the
    TSA's own, which the token's signer must be; a file with no self-signed one is all roots.
    """
    from rfc3161_client import VerificationError, VerifierBuilder, decode_timestamp_response

    try:
        response = decode_timestamp_response(token)
        info = response.tst_info
        time = info.gen_time.replace(tzinfo=UTC) if info.gen_time.tzinfo is None else info.gen_time
        authority = _authority_name(response)
    except ValueError as exc:
        return TimestampCheck(None, "", f"not a readable timestamp reply ({exc})")
    roots = [cert for cert in certificates if cert.subject == cert.issuer] or list(certificates)
    builder = VerifierBuilder()
    for cert in roots:
        builder = builder.add_root_certificate(cert)
    for cert in certificates:
        if cert not in roots and not _is_tsa(cert):
            builder = builder.add_intermediate_certificate(cert)
    leaf = next((cert for cert in certificates if _is_tsa(cert)), None)
    if leaf is not None:
        builder = builder.tsa_certificate(leaf)
    try:
        builder.build().verify_message(response, signature)
    except (VerificationError, ValueError) as exc:
        return TimestampCheck(time, authority, str(exc) or type(exc).__name__)
    return TimestampCheck(time, authority, "")


def _is_tsa(cert: x509.Certificate) -> bool:
    try:
        usage = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    except x509.ExtensionNotFound:
        return False
    return ExtendedKeyUsageOID.TIME_STAMPING in usage


def _authority_name(response: Any) -> str:
    for der in response.signed_data.certificates:
        cert = x509.load_der_x509_certificate(der)
        if _is_tsa(cert):
            return cert.subject.rfc4514_string()
    return ""
