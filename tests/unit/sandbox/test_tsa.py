"""The sandbox TSA (auditor/sandbox/tsa.py): the demo's RFC 3161 tokens, checked by the tool and by OpenSSL."""

from __future__ import annotations

import subprocess
import urllib.error
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID

from auditor.evidence.timestamp import TimestampAuthority, check_token, load_tsa_certificates
from auditor.sandbox.tsa import SandboxTsa

JULY = datetime(2026, 7, 1, 6, 0, tzinfo=UTC)
SIGNATURE = b"the Ed25519 signature of a bundle"


class Clock:
    def __init__(self) -> None:
        self.now = JULY

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture(scope="module")
def clock() -> Clock:
    return Clock()


@pytest.fixture(scope="module")
def tsa(clock: Clock) -> Iterator[SandboxTsa]:
    with SandboxTsa(clock) as running:
        yield running


@pytest.fixture(scope="module")
def token(tsa: SandboxTsa) -> bytes:
    stamped = TimestampAuthority(tsa.url).stamp(SIGNATURE)
    assert stamped is not None
    return stamped


@pytest.fixture(scope="module")
def ca_file(tsa: SandboxTsa, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("tsa") / "ca.pem"
    path.write_bytes(tsa.ca_pem)
    return path


def test_its_token_verifies_against_its_ca_certificate_at_the_injected_clocks_time(
    token: bytes, ca_file: Path
) -> None:
    check = check_token(token, SIGNATURE, load_tsa_certificates(ca_file))

    assert check.problem == ""
    assert check.time == JULY
    assert check.authority == "CN=certcentral-auditor sandbox TSA"


def test_its_time_follows_the_clock_as_the_demo_steps_it(tsa: SandboxTsa, clock: Clock) -> None:
    clock.now = JULY + timedelta(days=31)
    try:
        stamped = TimestampAuthority(tsa.url).stamp(SIGNATURE)
    finally:
        clock.now = JULY
    assert stamped is not None
    assert check_token(stamped, SIGNATURE, [tsa.ca]).time == JULY + timedelta(days=31)


def test_its_token_for_other_data_fails(token: bytes, tsa: SandboxTsa) -> None:
    check = check_token(token, b"another signature", [tsa.ca])

    assert check.problem != ""


def test_another_tsas_ca_certificate_does_not_verify_its_token(token: bytes, clock: Clock) -> None:
    other = SandboxTsa(clock, name="Other TSA")
    other.stop()  # never started: only its certificate is wanted

    assert check_token(token, SIGNATURE, [other.ca]).problem != ""


def test_openssl_verifies_its_token_and_refuses_it_for_other_data(
    token: bytes, ca_file: Path, tmp_path: Path
) -> None:
    (tmp_path / "signature.tsr").write_bytes(token)
    (tmp_path / "sig.bin").write_bytes(SIGNATURE)
    (tmp_path / "other.bin").write_bytes(b"another signature")

    def openssl_verify(data: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["openssl", "ts", "-verify", "-in", str(tmp_path / "signature.tsr"), "-data", str(tmp_path / data),
             "-CAfile", str(ca_file)],
            capture_output=True, text=True, timeout=30, check=False,
        )

    ok = openssl_verify("sig.bin")
    assert ok.returncode == 0 and "Verification: OK" in ok.stdout, ok.stdout + ok.stderr
    assert openssl_verify("other.bin").returncode != 0


def test_its_certificate_is_for_time_stamping_only_and_issued_by_its_ca(tsa: SandboxTsa) -> None:
    usage = tsa.certificate.extensions.get_extension_for_class(x509.ExtendedKeyUsage)

    assert usage.critical and list(usage.value) == [ExtendedKeyUsageOID.TIME_STAMPING]
    assert tsa.certificate.issuer == tsa.ca.subject
    tsa.certificate.verify_directly_issued_by(tsa.ca)


def test_it_refuses_what_is_not_a_timestamp_query(tsa: SandboxTsa) -> None:
    request = urllib.request.Request(
        tsa.url, data=b"not DER", method="POST", headers={"Content-Type": "application/timestamp-query"}
    )
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request, timeout=10)
    refused.value.close()
    assert refused.value.code == 400
