"""OSCAL and OCSF through the CLI (issue 19): findings, report, the bundle, and `verify --reperform`."""

from __future__ import annotations

import json
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from support import AuditorHome
from trestle.oscal.assessment_results import AssessmentResults

from auditor.errors import ExitCode
from auditor.samples import sample_account_dir, sample_states
from auditor.sandbox import SandboxServer, load_dataset

CONFIG = ("--config", str(sample_account_dir() / "auditor.toml"))


@pytest.fixture(scope="module")
def pulled(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AuditorHome]:
    """The sample account's latest state, pulled once for every test here (its sandbox stays up for `run`)."""
    root = tmp_path_factory.mktemp("standards")
    home = AuditorHome(data_dir=root / "data", key_file=root / "keys" / "master.key")
    with SandboxServer(load_dataset(sample_states()[-1])) as server:
        connected = home.run("connect", "--base-url", server.base_url, "--key-stdin", stdin="sandbox-view-only-key\n")
        assert connected.returncode == 0, connected.stderr
        assert home.run("pull").returncode == 0
        yield home


def test_findings_format_oscal_and_ocsf(pulled: AuditorHome) -> None:
    oscal = pulled.run(*CONFIG, "findings", "--format", "oscal")
    assert oscal.returncode == ExitCode.OK, oscal.stderr
    document = AssessmentResults.model_validate(json.loads(oscal.stdout)["assessment-results"])
    assert document.results[0].findings, "the sample account has open findings"

    ocsf = pulled.run(*CONFIG, "findings", "--format", "ocsf")
    assert ocsf.returncode == ExitCode.OK, ocsf.stderr
    classes = {json.loads(line)["class_uid"] for line in ocsf.stdout.splitlines()}
    assert classes == {2003, 5003}


def test_report_writes_the_standards_files_beside_and_refuses_to_overwrite(pulled: AuditorHome, tmp_path: Path) -> None:
    result = pulled.run(*CONFIG, "report", "--format", "oscal,ocsf", "--output", str(tmp_path))
    assert result.returncode == ExitCode.OK, result.stderr
    names = sorted(path.name.split(".", 1)[1] for path in tmp_path.iterdir())
    assert names == ["ocsf.jsonl", "oscal-assessment-plan.json", "oscal-assessment-results.json", "oscal-poam.json"]
    again = pulled.run(*CONFIG, "report", "--format", "oscal", "--output", str(tmp_path))
    assert again.returncode != ExitCode.OK and "--overwrite" in again.stderr


def test_every_bundle_carries_oscal_that_re_performs(pulled: AuditorHome, tmp_path: Path) -> None:
    bundle = tmp_path / "bundle.zip"
    assert pulled.run(*CONFIG, "export", "--output", str(bundle), "--no-reports").returncode == ExitCode.OK
    with zipfile.ZipFile(bundle) as archive:
        oscal = sorted(name for name in archive.namelist() if name.startswith("standards/oscal/"))
        manifest = json.loads(archive.read("manifest.json"))
    assert oscal == [f"standards/oscal/{n}" for n in ("assessment-plan.json", "assessment-results.json", "poam.json")]
    assert {f["path"] for f in manifest["files"]} >= set(oscal)

    verified = pulled.run("verify", str(bundle), "--allow-unpinned", "--reperform")
    assert verified.returncode == ExitCode.OK, verified.stdout + verified.stderr
    assert "Re-performance: PASSED" in verified.stdout
    assert "standards/oscal/assessment-results.json" in verified.stdout


def test_run_writes_the_standards_formats_it_is_asked_for(pulled: AuditorHome, tmp_path: Path) -> None:
    result = pulled.run(*CONFIG, "run", "--format", "ocsf", "--no-export", "--output", str(tmp_path))
    assert result.returncode == ExitCode.OK, result.stderr
    (written,) = tmp_path.iterdir()
    assert written.name.endswith(".ocsf.jsonl") and str(written) in result.stderr
