"""End to end: the one-shot `auditor run`, `findings`, `report`, `export`, `verify` and `keys` commands."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import pytest
from support import AuditorHome, connect_to

from auditor.errors import ExitCode
from auditor.samples import latest_sample_state, sample_account_dir
from auditor.sandbox import Faults, SandboxServer, load_dataset

VIEW_ONLY = "sandbox-view-only-key"
CONFIG = ("--config", str(sample_account_dir() / "auditor.toml"))


@pytest.fixture
def sample_sandbox():
    with SandboxServer(load_dataset(latest_sample_state())) as server:
        yield server


def test_run_pulls_reports_and_exports_a_verifiable_bundle(
    home: AuditorHome, sample_sandbox: SandboxServer, tmp_path: Path
) -> None:
    connect_to(home, sample_sandbox.base_url, key=VIEW_ONLY)
    out = tmp_path / "out"
    result = home.run(*CONFIG, "run", "--output", str(out))
    assert result.returncode == ExitCode.OK, result.stderr
    steps = [line.split()[0] for line in result.stderr.splitlines()]
    assert steps == ["Pulled", "Findings:", "Reports:", "Evidence:"], result.stderr
    html = sorted(out.glob("*.html"))
    pdf = sorted(out.glob("*.pdf"))
    bundles = sorted(out.glob("*.zip"))
    assert len(html) == len(pdf) == len(bundles) == 1
    with zipfile.ZipFile(bundles[0]) as archive:
        manifest = json.loads(archive.read("manifest.json"))
        delivered = {entry["path"]: entry for entry in manifest["files"]}
        html_member = next(path for path in delivered if path.endswith(".html"))
        assert archive.read(html_member) == html[0].read_bytes(), "the bundle must hold the report as delivered"
    key_pem = tmp_path / "signer.pem"
    keys = home.run("keys", "public")
    assert keys.returncode == 0 and "BEGIN PUBLIC KEY" in keys.stdout
    key_pem.write_text(keys.stdout)
    verified = home.run("verify", str(bundles[0]), "--public-key", str(key_pem))
    assert verified.returncode == ExitCode.OK, verified.stdout + verified.stderr
    assert "INTACT" in verified.stdout


def test_run_with_a_failing_pull_writes_nothing(
    home: AuditorHome, sample_sandbox: SandboxServer, tmp_path: Path
) -> None:
    connect_to(home, sample_sandbox.base_url, key=VIEW_ONLY)
    sample_sandbox.set_faults(Faults(error_rate=1.0, error_statuses=(503,), retry_after=0))
    out = tmp_path / "out"
    result = home.run("--retries", "2", *CONFIG, "run", "--output", str(out))
    assert result.returncode == ExitCode.CERTCENTRAL_UNAVAILABLE, result.stderr
    assert not out.exists() or not any(out.iterdir())
    assert "No snapshots yet" in home.run("snapshots").stderr


def test_run_fail_on_sets_exit_1_but_still_delivers(
    home: AuditorHome, sample_sandbox: SandboxServer, tmp_path: Path
) -> None:
    connect_to(home, sample_sandbox.base_url, key=VIEW_ONLY)
    out = tmp_path / "out"
    result = home.run(*CONFIG, "run", "--output", str(out), "--format", "html", "--fail-on", "high")
    assert result.returncode == ExitCode.FINDINGS_OR_VERIFY_FAILED, result.stderr
    assert "at or above 'high'" in result.stderr
    assert len(list(out.glob("*.html"))) == 1 and len(list(out.glob("*.zip"))) == 1


def test_findings_json_and_fail_on(home: AuditorHome, sample_sandbox: SandboxServer) -> None:
    connect_to(home, sample_sandbox.base_url, key=VIEW_ONLY)
    assert home.run("pull").returncode == 0
    result = home.run(*CONFIG, "findings", "--format", "json")
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    rules = {finding["rule"] for finding in document["findings"]}
    assert {"admin-dormant", "privileged-shared-mailbox", "external-domain"} <= rules
    assert any("2FA" in text or "two-factor" in text for text in document["limitations"])
    for finding in document["findings"]:
        assert finding["controls"], finding["rule"]
    text = home.run(*CONFIG, "findings", "--fail-on", "medium")
    assert text.returncode == ExitCode.FINDINGS_OR_VERIFY_FAILED
    assert "SUPPRESSED" in text.stdout and "Limitations:" in text.stdout
    # The sample's HR export shows an Administrator who left in June (issue 18): critical.
    critical = home.run(*CONFIG, "findings", "--fail-on", "critical")
    assert critical.returncode == ExitCode.FINDINGS_OR_VERIFY_FAILED
    assert "CRITICAL (1)" in critical.stdout
    assert "[terminated-still-active] dmitry.volkov@example.com" in critical.stdout


def test_bad_framework_and_bad_config_are_usage_errors(
    home: AuditorHome, sandbox: SandboxServer, tmp_path: Path
) -> None:
    connect_to(home, sandbox.base_url, key=VIEW_ONLY)
    assert home.run("pull").returncode == 0
    wrong = home.run("findings", "--framework", "pci-dss-3")
    assert wrong.returncode == ExitCode.USAGE and "pci-dss-4" in wrong.stderr
    config = tmp_path / "auditor.toml"
    config.write_text('profiles = ["soc2"]\n\n[rules]\nmax_admin = 3\n')
    bad = home.run("--config", str(config), "findings")
    assert bad.returncode == ExitCode.USAGE
    assert "max_admin" in bad.stderr and ":4" in bad.stderr


def test_report_refuses_to_overwrite_without_flag(
    home: AuditorHome, sample_sandbox: SandboxServer, tmp_path: Path
) -> None:
    connect_to(home, sample_sandbox.base_url, key=VIEW_ONLY)
    assert home.run("pull").returncode == 0
    first = home.run(*CONFIG, "report", "--format", "html", "--output", str(tmp_path))
    assert first.returncode == 0, first.stderr
    [path] = first.stdout.split()
    again = home.run(*CONFIG, "report", "--format", "html", "--output", str(tmp_path))
    assert again.returncode == ExitCode.LOCAL_DATA and "--overwrite" in again.stderr
    forced = home.run(*CONFIG, "report", "--format", "html", "--output", str(tmp_path), "--overwrite")
    assert forced.returncode == 0 and forced.stdout.split() == [path]


def test_export_chain_and_rotation_verify(home: AuditorHome, sandbox: SandboxServer, tmp_path: Path) -> None:
    connect_to(home, sandbox.base_url, key=VIEW_ONLY)
    bundles = []
    pems = []
    for index in range(3):
        assert home.run("pull").returncode == 0
        if index == 2:
            rotated = home.run("keys", "rotate")
            assert rotated.returncode == 0, rotated.stderr
        pem = tmp_path / f"key{index}.pem"
        pem.write_text(home.run("keys", "public").stdout)
        pems.append(pem)
        target = tmp_path / f"bundle{index}.zip"
        exported = home.run("export", "--output", str(target), "--no-reports")
        assert exported.returncode == 0, exported.stderr
        assert "Manifest SHA-256:" in exported.stderr and "auditor" in exported.stderr
        bundles.append(target)
    keys = [arg for pem in {pems[0], pems[2]} for arg in ("--public-key", str(pem))]
    ok = home.run("verify", str(bundles[2]), *keys, "--previous", str(bundles[0]), "--previous", str(bundles[1]))
    assert ok.returncode == ExitCode.OK, ok.stdout
    gap = home.run("verify", str(bundles[2]), *keys, "--previous", str(bundles[0]))
    assert gap.returncode == ExitCode.FINDINGS_OR_VERIFY_FAILED and "gap" in gap.stdout.lower()
    only_old_key = home.run("verify", str(bundles[2]), "--public-key", str(pems[0]))
    assert only_old_key.returncode == ExitCode.FINDINGS_OR_VERIFY_FAILED
    not_a_bundle = tmp_path / "junk.zip"
    not_a_bundle.write_bytes(b"not a zip")
    assert home.run("verify", str(not_a_bundle)).returncode == ExitCode.LOCAL_DATA


def test_attestations_change_the_findings(home: AuditorHome, sandbox: SandboxServer) -> None:
    connect_to(home, sandbox.base_url, key=VIEW_ONLY)
    assert home.run("pull").returncode == 0
    before = json.loads(home.run("findings", "--format", "json").stdout)
    assert "mfa-attestation-missing" in {f["rule"] for f in before["findings"]}
    attested = home.run(
        "attest",
        "mfa",
        "--by",
        "Ana Lima <ana@example.com>",
        "--statement",
        "2FA required for all users (Settings > Authentication Settings)",
    )
    assert attested.returncode == 0, attested.stderr
    # The attestation covers snapshots taken from now on, never the one already pulled.
    same = json.loads(home.run("findings", "--format", "json").stdout)
    assert same == before
    assert home.run("pull").returncode == 0
    after = json.loads(home.run("findings", "--format", "json").stdout)
    assert "mfa-attestation-missing" not in {f["rule"] for f in after["findings"]}
