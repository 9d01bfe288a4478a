"""Exports re-use the reports already rendered (issue 15 §2), through the real CLI: `run` renders each
report once and signs those bytes; `export --reports DIR` takes what `auditor report` wrote, but only
for the same snapshot, data and rules, and refuses (naming the flag) anything else."""

from __future__ import annotations

import hashlib
import json
import zipfile
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from support import AuditorHome, connect_to

import auditor.report
from auditor.errors import ExitCode
from auditor.samples import latest_sample_state, sample_account_dir
from auditor.sandbox import SandboxServer, load_dataset

VIEW_ONLY = "sandbox-view-only-key"
CONFIG = ("--config", str(sample_account_dir() / "auditor.toml"))


@pytest.fixture
def sample_sandbox():
    with SandboxServer(load_dataset(latest_sample_state())) as server:
        yield server


@pytest.fixture
def renders(monkeypatch: pytest.MonkeyPatch) -> Counter[str]:
    """How often each report format is rendered in this process."""
    counts: Counter[str] = Counter()
    for name in ("render_html", "render_pdf"):
        original = getattr(auditor.report, name)

        def counted(*args: Any, _original: Any = original, _name: str = name, **kwargs: Any) -> Any:
            counts[_name] += 1
            return _original(*args, **kwargs)

        monkeypatch.setattr(auditor.report, name, counted)
    return counts


def _bundle_reports(bundle: Path) -> tuple[dict[str, bytes], dict[str, str]]:
    """The bundle's report members (by suffix) and the SHA-256 its manifest records for each."""
    with zipfile.ZipFile(bundle) as archive:
        manifest = json.loads(archive.read("manifest.json"))
        recorded = {entry["path"]: entry["sha256"] for entry in manifest["files"]}
        names = [name for name in archive.namelist() if name.startswith("report/")]
        members = {name.rsplit(".", 1)[1]: archive.read(name) for name in names}
        digests = {name.rsplit(".", 1)[1]: digest for name, digest in recorded.items() if name.startswith("report/")}
    return members, digests


def _verify(home: AuditorHome, bundle: Path, tmp_path: Path) -> None:
    pem = tmp_path / "signer.pem"
    pem.write_text(home.run("keys", "public").stdout)
    verified = home.run("verify", str(bundle), "--public-key", str(pem), "--reperform")
    assert verified.returncode == ExitCode.OK, verified.stdout + verified.stderr


def test_run_renders_each_report_once_and_signs_those_bytes(
    home: AuditorHome, sample_sandbox: SandboxServer, tmp_path: Path, renders: Counter[str]
) -> None:
    connect_to(home, sample_sandbox.base_url, key=VIEW_ONLY)
    out = tmp_path / "out"
    result = home.run(*CONFIG, "run", "--output", str(out))
    assert result.returncode == ExitCode.OK, result.stderr
    assert renders == Counter(render_html=1, render_pdf=1)
    members, digests = _bundle_reports(next(out.glob("*.zip")))
    for suffix in ("html", "pdf"):
        written = next(out.glob(f"*.{suffix}")).read_bytes()
        assert members[suffix] == written, f"the bundle's {suffix} is not the one `run` wrote"
        assert digests[suffix] == hashlib.sha256(written).hexdigest()


def test_export_reuses_the_reports_of_the_same_snapshot(
    home: AuditorHome, sample_sandbox: SandboxServer, tmp_path: Path, renders: Counter[str]
) -> None:
    connect_to(home, sample_sandbox.base_url, key=VIEW_ONLY)
    assert home.run("pull").returncode == ExitCode.OK
    reports = tmp_path / "reports"
    made = home.run(*CONFIG, "report", "--output", str(reports))
    assert made.returncode == ExitCode.OK, made.stderr
    renders.clear()
    bundle = tmp_path / "bundle.zip"
    exported = home.run(*CONFIG, "export", "--output", str(bundle), "--reports", str(reports))
    assert exported.returncode == ExitCode.OK, exported.stderr
    assert not renders, "the export rendered the reports again"
    members, digests = _bundle_reports(bundle)
    assert set(members) == {"html", "pdf"}
    for suffix, content in members.items():
        written = next(reports.glob(f"*.{suffix}")).read_bytes()
        assert content == written
        assert digests[suffix] == hashlib.sha256(written).hexdigest()
    _verify(home, bundle, tmp_path)


def test_export_refuses_a_stale_or_foreign_report(
    home: AuditorHome, sample_sandbox: SandboxServer, tmp_path: Path
) -> None:
    connect_to(home, sample_sandbox.base_url, key=VIEW_ONLY)
    assert home.run("pull").returncode == ExitCode.OK
    reports = tmp_path / "reports"
    assert home.run(*CONFIG, "report", "--format", "html", "--output", str(reports)).returncode == ExitCode.OK
    (html,) = reports.glob("*.html")
    bundle = tmp_path / "bundle.zip"

    # Other rules (another framework): other findings, so another report id.
    other_rules = home.run(*CONFIG, "export", "--framework", "strict", "--output", str(bundle),
                           "--reports", str(reports))
    assert other_rules.returncode == ExitCode.USAGE, other_rules.stderr
    assert "--reports" in other_rules.stderr and "is report CCA-1-" in other_rules.stderr

    # A newer snapshot of the same day: the report of the first one is stale.
    assert home.run("pull").returncode == ExitCode.OK
    stale = home.run(*CONFIG, "export", "--output", str(bundle), "--reports", str(reports))
    assert stale.returncode == ExitCode.USAGE, stale.stderr
    assert "--reports" in stale.stderr and "snapshot 2 as exported now is report CCA-2-" in stale.stderr
    assert "auditor report --snapshot 2" in stale.stderr

    # Rendered for this snapshot, then its id edited, or by another tool version: refused.
    assert home.run(*CONFIG, "report", "--format", "html", "--output", str(reports), "--overwrite").returncode == 0
    good = html.read_bytes()
    text = good.decode("utf-8")
    report_id = text.split('report <span class="report-id">')[1].split("<")[0]
    html.write_bytes(text.replace(report_id, report_id[:-1] + ("0" if report_id[-1] != "0" else "1")).encode())
    forged = home.run(*CONFIG, "export", "--output", str(bundle), "--reports", str(reports))
    assert forged.returncode == ExitCode.USAGE and "--reports" in forged.stderr, forged.stderr
    html.write_bytes(good.replace(b'content="certcentral-auditor ', b'content="certcentral-auditor 0.0.9'))
    other_tool = home.run(*CONFIG, "export", "--output", str(bundle), "--reports", str(reports))
    assert other_tool.returncode == ExitCode.USAGE, other_tool.stderr
    assert "rendered by certcentral-auditor 0.0.9" in other_tool.stderr
    html.write_bytes(b"<!DOCTYPE html><html><head><title>not ours</title></head></html>")
    foreign = home.run(*CONFIG, "export", "--output", str(bundle), "--reports", str(reports))
    assert foreign.returncode == ExitCode.USAGE and "no report id" in foreign.stderr, foreign.stderr
    html.unlink()
    missing = home.run(*CONFIG, "export", "--output", str(bundle), "--reports", str(reports))
    assert missing.returncode == ExitCode.USAGE and "no report of snapshot 2" in missing.stderr
    both = home.run(*CONFIG, "export", "--output", str(bundle), "--reports", str(reports), "--no-reports")
    assert both.returncode == ExitCode.USAGE and "--no-reports" in both.stderr
    assert not bundle.exists()

    # The good report of snapshot 2, as rendered: taken, and nothing but it (no PDF was written).
    html.write_bytes(good)
    exported = home.run(*CONFIG, "export", "--output", str(bundle), "--reports", str(reports))
    assert exported.returncode == ExitCode.OK, exported.stderr
    members, _digests = _bundle_reports(bundle)
    assert members == {"html": good}

    # A sign-off recorded since: the report no longer says what the bundle's snapshot says.
    signed = home.run(*CONFIG, "attest", "review", "--snapshot", "2", "--by", "Rita Reviewer <rita@audit.example>",
                      "--statement", "Reviewed")
    assert signed.returncode == ExitCode.OK, signed.stderr
    unsigned = home.run(*CONFIG, "export", "--output", str(bundle), "--overwrite", "--reports", str(reports))
    assert unsigned.returncode == ExitCode.USAGE and "sign-off" in unsigned.stderr, unsigned.stderr
