"""RFC 3161 time anchors (issue 19) against a real TSA on loopback: ``openssl ts -reply`` (tests/tsa.py)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from test_evidence import KEY_A, T0, contents, genesis, members_of, rewrite
from test_standalone_verifier import STANDALONE
from tsa import Authority, TsaServer, closed_port_url, make_authority, query_for, reply

from auditor.errors import ExitCode
from auditor.evidence import ProblemKind, build_bundle, format_report, verify_bundle, write_bundle
from auditor.evidence.bundle import checksums_file
from auditor.evidence.timestamp import TimestampAuthority, TimestampAuthorityError, load_tsa_certificates

CONTEXT = {
    "account_id": 1, "base_url": "https://www.digicert.com/services/v2/", "pull_started_at": T0,
    "pull_finished_at": T0, "tool_version": "test", "profiles": ["pci-dss-4"], "thresholds": {},
    "record_counts": {"users": 1}, "pull_complete": True, "retention": {"days": 365},
}


@pytest.fixture(scope="module")
def authorities(tmp_path_factory: pytest.TempPathFactory) -> tuple[Authority, Authority]:
    base = tmp_path_factory.mktemp("tsa")
    return make_authority(base / "ours"), make_authority(base / "other", name="Other TSA")


@pytest.fixture(scope="module")
def server(authorities: tuple[Authority, Authority]) -> Iterator[TsaServer]:
    with TsaServer(authorities[0]) as running:
        yield running


def stamped_bundle(directory: Path, timestamp: TimestampAuthority | None, name: str = "stamped.zip") -> Path:
    bundle = build_bundle(
        contents(), signer=KEY_A, chain=genesis(), context=CONTEXT, now=T0, key_valid_from=T0, timestamp=timestamp
    )
    return write_bundle(bundle, directory / name)


@pytest.fixture(scope="module")
def stamped(server: TsaServer, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return stamped_bundle(tmp_path_factory.mktemp("stamped"), TimestampAuthority(server.url))


def certs(authority: Authority) -> list:  # type: ignore[type-arg]
    return load_tsa_certificates(authority.ca_pem)


def test_a_valid_token_gives_the_trusted_time_next_to_the_exporters_clock(
    stamped: Path, authorities: tuple[Authority, Authority], server: TsaServer
) -> None:
    report = verify_bundle(stamped, trusted_keys=[KEY_A.public_key()], tsa_certificates=certs(authorities[0]))
    text = format_report(report)

    assert report.ok, text
    assert report.trusted_time is not None and report.created_at == T0
    assert f"Trusted time: {report.trusted_time.isoformat(timespec='seconds')} from {server.url} (CN=Test TSA)" in text
    assert "s after the exporter's clock" in text and "Created: 2026-11-01T12:00:00+00:00 (exporter's clock)" in text
    manifest = json.loads(members_of(stamped)["manifest.json"])
    assert manifest["timestamp"] == {
        "authority": server.url, "required": True, "token_file": "signature.tsr",
        "message_imprint": "SHA-256 of the Ed25519 signature in signature.json (base64-decoded)",
    }
    assert "signature.tsr" in members_of(stamped)["SHA256SUMS"].decode()


def test_the_tsa_gets_one_post_without_any_certcentral_header(server: TsaServer, tmp_path: Path) -> None:
    before = len(server.requests)
    stamped_bundle(tmp_path, TimestampAuthority(server.url))
    (method, headers), = server.requests[before:]
    assert method == "POST" and headers["Content-Type"] == "application/timestamp-query"
    assert not {name.casefold() for name in headers} & {"x-dc-devkey", "authorization", "cookie"}


def test_a_token_left_unchecked_is_a_warning_and_says_so(stamped: Path) -> None:
    report = verify_bundle(stamped, trusted_keys=[KEY_A.public_key()])

    assert report.ok and report.kinds() == {ProblemKind.TIMESTAMP_NOT_CHECKED}
    assert report.trusted_time is None
    assert "Trusted time: not checked: the bundle holds a token from" in format_report(report)
    standalone = STANDALONE.verify(stamped, keys=[KEY_A.public_key()])
    assert standalone["ok"] and {p[0] for p in standalone["problems"]} == {"timestamp-not-checked"}


def test_a_wrong_tsa_certificate_fails(stamped: Path, authorities: tuple[Authority, Authority]) -> None:
    report = verify_bundle(stamped, trusted_keys=[KEY_A.public_key()], tsa_certificates=certs(authorities[1]))

    assert not report.ok and report.kinds() == {ProblemKind.TIMESTAMP_INVALID}
    assert report.trusted_time is None
    assert "Trusted time: NOT TRUSTED: the token does not verify" in format_report(report)


def test_a_token_for_other_data_fails(stamped: Path, authorities: tuple[Authority, Authority], tmp_path: Path) -> None:
    # A genuine token of the right TSA, but over other bytes than this bundle's signature.
    members = members_of(stamped)
    members["signature.tsr"] = reply(authorities[0], query_for(b"another bundle's signature"))
    manifest = json.loads(members["manifest.json"])
    controls = [(n, members[n]) for n in ("manifest.json", "signature.json", "signer.pub.pem", "signature.tsr")]
    members["SHA256SUMS"] = checksums_file(controls, [(e["path"], e["sha256"]) for e in manifest["files"]])
    swapped = rewrite(stamped, tmp_path / "swapped.zip", members)

    report = verify_bundle(swapped, trusted_keys=[KEY_A.public_key()], tsa_certificates=certs(authorities[0]))

    assert report.kinds() == {ProblemKind.TIMESTAMP_INVALID}, format_report(report)
    assert [p.detail for p in report.problems] == ["Mismatch between messages"]


def test_a_required_token_that_was_removed_fails_in_both_verifiers(stamped: Path, tmp_path: Path) -> None:
    members = members_of(stamped)
    del members["signature.tsr"]
    manifest = json.loads(members["manifest.json"])
    controls = [(n, members[n]) for n in ("manifest.json", "signature.json", "signer.pub.pem")]
    members["SHA256SUMS"] = checksums_file(controls, [(e["path"], e["sha256"]) for e in manifest["files"]])
    stripped = rewrite(stamped, tmp_path / "stripped.zip", members)

    report = verify_bundle(stripped, trusted_keys=[KEY_A.public_key()])

    assert report.kinds() == {ProblemKind.TIMESTAMP_MISSING}, format_report(report)
    standalone = STANDALONE.verify(stripped, keys=[KEY_A.public_key()])
    assert [p[0] for p in standalone["problems"]] == ["timestamp-missing"]


def test_a_tsa_answering_for_other_data_stops_the_export(
    authorities: tuple[Authority, Authority], tmp_path: Path
) -> None:
    with TsaServer(authorities[0], mode="other-data") as wrong, pytest.raises(TimestampAuthorityError) as caught:
        stamped_bundle(tmp_path, TimestampAuthority(wrong.url))
    assert "its token is for other data" in caught.value.message
    assert not (tmp_path / "stamped.zip").exists()


def test_a_tsa_that_is_down_stops_the_export_unless_optional(
    tmp_path: Path, authorities: tuple[Authority, Authority]
) -> None:
    down = closed_port_url()
    with pytest.raises(TimestampAuthorityError) as caught:
        stamped_bundle(tmp_path, TimestampAuthority(down))
    assert caught.value.exit_code == ExitCode.LOCAL_DATA and "--tsa-optional" in caught.value.hint

    path = stamped_bundle(tmp_path, TimestampAuthority(down, optional=True), name="unstamped.zip")
    assert "signature.tsr" not in members_of(path)
    report = verify_bundle(path, trusted_keys=[KEY_A.public_key()])
    assert report.ok, format_report(report)
    assert f"Trusted time: none: {down} gave no token and the export had --tsa-optional" in format_report(report)
    asked = verify_bundle(path, trusted_keys=[KEY_A.public_key()], tsa_certificates=certs(authorities[0]))
    assert asked.kinds() == {ProblemKind.TIMESTAMP_MISSING}


def test_a_tsa_url_with_credentials_or_another_scheme_is_refused() -> None:
    with pytest.raises(Exception, match="user name or password"):
        TimestampAuthority("https://user:secret@tsa.example.com/")
    with pytest.raises(Exception, match="is not an http"):
        TimestampAuthority("ftp://tsa.example.com/")


def test_the_tsa_flag_replaces_the_configured_one_and_its_optional_setting() -> None:
    from dataclasses import replace

    from auditor.config import load_config
    from auditor.pipeline.export import timestamp_authority

    config = replace(
        load_config(None, search_dirs=[]), tsa_url="https://configured.example/", tsa_optional=True
    )
    assert timestamp_authority(config, tsa_url=None, tsa_optional=False) == TimestampAuthority(
        "https://configured.example/", optional=True
    )
    assert timestamp_authority(config, tsa_url="https://flag.example/", tsa_optional=False) == TimestampAuthority(
        "https://flag.example/"
    )
    assert timestamp_authority(replace(config, tsa_url=None), tsa_url=None, tsa_optional=True) is None
