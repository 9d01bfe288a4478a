"""A fake RFC 3161 time-stamping authority on loopback: the demo's TSA, as the sandbox is its CertCentral.

:class:`SandboxTsa` makes a throwaway CA (EC P-256) and a TSA certificate it issued (RSA 2048,
id-kp-timeStamping, critical), and answers each ``application/timestamp-query`` POSTed to
http://127.0.0.1:PORT/ with a TimeStampResp signed by pyHanko's
``pyhanko.sign.timestamps.dummy_client.DummyTimeStamper``: no ``openssl`` binary is needed.
Its time is the injected clock's (the demo's stepped months), so the trusted time of the demo's
bundles matches its story: a real TSA's time is its own, which is the point of asking one; this
one's is simulated. Tokens verify with ``auditor verify --tsa-cert`` (rfc3161-client) and
``openssl ts -verify`` against :attr:`SandboxTsa.ca_pem`.

The keys live in memory only and are used through their objects: nothing is serialised (the
credentials wall, ARCHITECTURE.md). pyHanko is imported when the first reply is built.
"""

from __future__ import annotations

import http.server
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

__all__ = ["SandboxTsa"]

_MEDIA_QUERY = "application/timestamp-query"
_MEDIA_REPLY = "application/timestamp-reply"
#: A TimeStampReq is a few hundred bytes.
_QUERY_LIMIT = 64 * 1024
#: How long the throwaway certificates are valid after their start.
_VALIDITY = timedelta(days=3653)


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _certificates(
    name: str, valid_from: datetime
) -> tuple[x509.Certificate, x509.Certificate, rsa.RSAPrivateKey]:
    """The CA certificate, the TSA certificate it issued, and the TSA's key (pyHanko's dummy TSA signs RSA only)."""
    ca_key = ec.generate_private_key(ec.SECP256R1())
    not_after = valid_from + _VALIDITY
    ca = (
        x509.CertificateBuilder()
        .subject_name(_name(f"{name} Root CA"))
        .issuer_name(_name(f"{name} Root CA"))
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(valid_from)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False, content_commitment=False, key_encipherment=False,
                data_encipherment=False, key_agreement=False, key_cert_sign=True, crl_sign=True,
                encipher_only=False, decipher_only=False,
            ),
            critical=True,
        )
        .sign(ca_key, hashes.SHA256())
    )
    tsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    tsa = (
        x509.CertificateBuilder()
        .subject_name(_name(name))
        .issuer_name(ca.subject)
        .public_key(tsa_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(valid_from)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True, content_commitment=True, key_encipherment=False,
                data_encipherment=False, key_agreement=False, key_cert_sign=False, crl_sign=False,
                encipher_only=False, decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.TIME_STAMPING]), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    return ca, tsa, tsa_key


class SandboxTsa:
    """An RFC 3161 TSA on http://127.0.0.1:PORT/ in a background thread, its time taken from ``clock``.

    ``valid_from`` is when its certificates start (default: a day before ``clock()`` at creation).
    """

    def __init__(
        self,
        clock: Callable[[], datetime],
        *,
        name: str = "certcentral-auditor sandbox TSA",
        valid_from: datetime | None = None,
        host: str = "127.0.0.1",
    ) -> None:
        self._clock = clock
        start = (valid_from or clock() - timedelta(days=1)).astimezone(UTC).replace(microsecond=0)
        self.ca, self.certificate, self._key = _certificates(name, start)
        self._stamper: Any = None
        self._lock = threading.Lock()
        self._httpd = http.server.ThreadingHTTPServer((host, 0), _handler(self))
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host!s}:{port}/"

    @property
    def ca_pem(self) -> bytes:
        """The CA certificate (PEM): what ``auditor verify --tsa-cert`` and ``openssl ts -verify -CAfile`` take."""
        return self.ca.public_bytes(serialization.Encoding.PEM)

    @property
    def certificate_pem(self) -> bytes:
        """The TSA's own certificate (PEM), for ``openssl ts -verify -untrusted``."""
        return self.certificate.public_bytes(serialization.Encoding.PEM)

    def reply(self, query: bytes) -> bytes:
        """The TimeStampResp (DER) to ``query`` (a DER TimeStampReq), at ``clock()``; ValueError if unreadable."""
        from asn1crypto import tsp  # type: ignore[import-untyped]

        try:
            request = tsp.TimeStampReq.load(query)
            request.native  # noqa: B018 - asn1crypto parses lazily; this raises on malformed input now
        except Exception as exc:  # asn1crypto raises assorted errors on malformed DER
            raise ValueError(f"not a TimeStampReq: {exc}") from exc
        with self._lock:  # the stamper is built once, on the first request
            if self._stamper is None:
                self._stamper = _stamper(self._clock, self.ca, self.certificate, self._key)
            stamper = self._stamper
        data: bytes = stamper.request_tsa_response(request).dump()
        return data

    def start(self) -> SandboxTsa:
        if self._thread is None:
            self._thread = threading.Thread(  # a short poll, so stop() returns at once (as SandboxServer's)
                target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, name="sandbox-tsa", daemon=True
            )
            self._thread.start()
        return self

    def stop(self) -> None:
        if self._thread is not None:
            self._httpd.shutdown()
            self._thread.join()
            self._thread = None
        self._httpd.server_close()

    def __enter__(self) -> SandboxTsa:
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.stop()


def _handler(tsa: SandboxTsa) -> type[http.server.BaseHTTPRequestHandler]:
    class Handler(http.server.BaseHTTPRequestHandler):
        """POST a TimeStampReq, get a TimeStampResp; anything else is refused."""

        def do_POST(self) -> None:
            declared = self.headers.get("Content-Length") or "0"
            length = int(declared) if declared.isdigit() else 0
            if self.headers.get_content_type() != _MEDIA_QUERY or not 0 < length <= _QUERY_LIMIT:
                self._answer(415 if length else 400, b"send one application/timestamp-query\n", "text/plain")
                return
            try:
                answer = tsa.reply(self.rfile.read(length))
            except ValueError as exc:
                self._answer(400, f"{exc}\n".encode(), "text/plain")
                return
            self._answer(200, answer, _MEDIA_REPLY)

        def do_GET(self) -> None:
            self._answer(405, b"POST an application/timestamp-query\n", "text/plain")

        def _answer(self, status: int, body: bytes, media: str) -> None:
            self.send_response(status)
            self.send_header("Content-Type", media)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *_args: object) -> None:
            pass  # the demo prints its own steps

    return Handler


def _stamper(
    clock: Callable[[], datetime], ca: x509.Certificate, certificate: x509.Certificate, key: rsa.RSAPrivateKey
) -> Any:
    """pyHanko's DummyTimeStamper, with its time from ``clock`` and its signature from the key object.

    Upstream's ``_sign_tst_info`` loads the key from DER bytes; here the same signed attributes
    are signed by ``RSAPrivateKey.sign``, so the key is never serialised.
    """
    from asn1crypto import cms, core
    from asn1crypto import x509 as asn1_x509
    from pyhanko.sign import general
    from pyhanko.sign.timestamps.dummy_client import DummyTimeStamper
    from pyhanko_certvalidator.registry import SimpleCertificateStore
    from pyhanko_certvalidator.util import get_pyca_cryptography_hash

    attribute: Callable[[str, object], Any] = general.simple_cms_attribute  # untyped upstream

    def asn1(cert: x509.Certificate) -> Any:
        return asn1_x509.Certificate.load(cert.public_bytes(serialization.Encoding.DER))

    class ClockedStamper(DummyTimeStamper):
        @property
        def fixed_dt(self) -> datetime:
            return clock().astimezone(UTC).replace(microsecond=0)

        @fixed_dt.setter
        def fixed_dt(self, _value: object) -> None:
            pass  # the injected clock decides

        def _sign_tst_info(self, tst_info_data: bytes, md_algorithm: str, dt: datetime) -> tuple[bytes, Any]:
            digest = hashes.Hash(get_pyca_cryptography_hash(md_algorithm))
            digest.update(tst_info_data)
            signed_attrs = cms.CMSAttributes(
                [
                    attribute("content_type", "tst_info"),
                    attribute("signing_time", cms.Time({"utc_time": core.UTCTime(dt)})),
                    attribute("signing_certificate", general.as_signing_certificate(self.tsa_cert)),
                    attribute("message_digest", digest.finalize()),
                ]
            )
            signature = key.sign(
                signed_attrs.dump(), padding.PKCS1v15(), get_pyca_cryptography_hash(md_algorithm.upper())
            )
            return signature, signed_attrs

    return ClockedStamper(
        tsa_cert=asn1(certificate),
        tsa_key=None,  # unused: _sign_tst_info signs with the key object
        certs_to_embed=SimpleCertificateStore.from_certs([asn1(ca)]),  # type: ignore[no-untyped-call]
    )
