"""A real RFC 3161 time-stamping authority on loopback for tests: ``openssl ts -reply`` behind http.server.

:func:`make_authority` writes a throwaway CA and a TSA certificate (EC P-256, critical
id-kp-timeStamping) with ``cryptography``, and the OpenSSL ``[tsa]`` configuration; :class:`TsaServer`
answers each POSTed query with OpenSSL's reply. ``mode="other-data"`` answers every query with a
token over other data (a TSA that is wrong, or an attacker in between).
"""

from __future__ import annotations

import http.server
import subprocess
import tempfile
import threading
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID


@dataclass(frozen=True)
class Authority:
    directory: Path
    ca_pem: Path
    tsa_pem: Path
    key_pem: Path
    config: Path


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def make_authority(directory: Path, *, name: str = "Test TSA") -> Authority:
    """A CA, a TSA certificate it issued, their keys and an OpenSSL TSA configuration in ``directory``."""
    directory.mkdir(parents=True, exist_ok=True)
    now = datetime.now(UTC) - timedelta(days=1)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = (
        x509.CertificateBuilder()
        .subject_name(_name(f"{name} Root CA"))
        .issuer_name(_name(f"{name} Root CA"))
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
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
    tsa_key = ec.generate_private_key(ec.SECP256R1())
    tsa = (
        x509.CertificateBuilder()
        .subject_name(_name(name))
        .issuer_name(ca.subject)
        .public_key(tsa_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.TIME_STAMPING]), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    ca_pem, tsa_pem, key_pem = directory / "ca.pem", directory / "tsa.pem", directory / "tsa.key"
    ca_pem.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    tsa_pem.write_bytes(tsa.public_bytes(serialization.Encoding.PEM))
    key_pem.write_bytes(
        tsa_key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    (directory / "serial").write_text("01\n")
    config = directory / "tsa.cnf"
    config.write_text(
        f"""[ tsa ]
default_tsa = tsa_config
[ tsa_config ]
dir = {directory}
serial = $dir/serial
crypto_device = builtin
signer_cert = {tsa_pem}
certs = {ca_pem}
signer_key = {key_pem}
signer_digest = sha256
default_policy = 1.3.6.1.4.1.99999.1
digests = sha256, sha384, sha512
accuracy = secs:1
ordering = yes
tsa_name = yes
ess_cert_id_chain = no
ess_cert_id_alg = sha256
"""
    )
    return Authority(directory, ca_pem, tsa_pem, key_pem, config)


def reply(authority: Authority, query: bytes) -> bytes:
    """OpenSSL's TimeStampResp to ``query`` (a DER TimeStampReq)."""
    with tempfile.TemporaryDirectory() as scratch:
        query_path, reply_path = Path(scratch) / "q.tsq", Path(scratch) / "r.tsr"
        query_path.write_bytes(query)
        subprocess.run(
            ["openssl", "ts", "-reply", "-config", str(authority.config), "-queryfile", str(query_path),
             "-out", str(reply_path)],
            check=True, capture_output=True, timeout=30,
        )
        return reply_path.read_bytes()


def query_for(data: bytes) -> bytes:
    """A TimeStampReq (SHA-256, certificate requested) over ``data``, as rfc3161-client builds it."""
    from rfc3161_client import HashAlgorithm, TimestampRequestBuilder

    return TimestampRequestBuilder().data(data).hash_algorithm(HashAlgorithm.SHA256).build().as_bytes()


class TsaServer:
    """``openssl ts -reply`` on http://127.0.0.1:PORT/ in a thread; records each request's method and headers."""

    def __init__(self, authority: Authority, *, mode: str = "ok") -> None:
        self.authority = authority
        self.mode = mode
        self.requests: list[tuple[str, dict[str, str]]] = []
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                server.requests.append(("POST", dict(self.headers.items())))
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                if server.mode == "other-data":
                    body = query_for(b"some other signature")
                answer = reply(server.authority, body)
                self.send_response(200)
                self.send_header("Content-Type", "application/timestamp-reply")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, *_args: object) -> None:
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/tsa"

    def __enter__(self) -> TsaServer:
        self.thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def closed_port_url() -> str:
    """A loopback URL nothing listens on: a TSA that is down."""
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}/tsa"
