"""The README's demo command, run exactly as written, produces the files the README names."""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest
from support import REPO, DemoRun, readme_demo_command, readme_setup_commands

README = REPO / "README.md"


def test_readme_starts_with_exactly_two_setup_commands() -> None:
    assert readme_setup_commands() == ["make demo", "make test"]


def test_demo_command_from_the_readme_writes_what_the_readme_promises(demo_run: DemoRun) -> None:
    # The session's demo run is the README's command, run as written (tests/conftest.py: in a
    # directory linking the checkout's Makefile and .venv, so nothing is written into the checkout).
    if demo_run.command != readme_demo_command():
        pytest.skip(f"the demo ran as {demo_run.command!r}: make or an up-to-date .venv is missing")
    result, output = demo_run.result, demo_run.output
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    printed = [Path(line) for line in result.stdout.splitlines() if line.strip().startswith(str(output))]
    assert printed, result.stdout
    assert all(path.is_file() for path in printed), printed
    reports = sorted((output / "reports").iterdir())
    assert [p.suffix for p in reports] == [".html", ".pdf"]
    bundles = sorted((output / "evidence").glob("*.zip"))
    assert len(bundles) == 5, "one chained bundle per sample month"
    for bundle in bundles:
        with zipfile.ZipFile(bundle) as archive:
            assert {"manifest.json", "signature.json"} <= set(archive.namelist())
    assert (output / "keys" / "evidence-signing-key.pub.pem").read_text().startswith("-----BEGIN PUBLIC KEY-----")
    assert "verification passed" in result.stderr
    # The README says where things land; keep it honest.
    readme = README.read_text(encoding="utf-8")
    for promised in ("demo-output/reports/", "demo-output/evidence/", "demo-output/keys/"):
        assert promised in readme
