"""The README's demo command, run exactly as written, produces the files the README names."""

from __future__ import annotations

import shlex
import zipfile
from pathlib import Path

import pytest
from support import REPO, AuditorHome, DemoRun, readme_demo_command, readme_setup_commands

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


def readme_demo_verify_command() -> list[str]:
    """The README's ``auditor verify demo-output/...`` example (issue 19: the demo's trusted time), as argv."""
    lines = README.read_text(encoding="utf-8").splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("auditor verify demo-output/"))
    command = lines[start]
    while command.endswith("\\"):
        start += 1
        command = command[:-1] + lines[start]
    return shlex.split(command)


def test_the_demo_bundles_carry_rfc3161_tokens_that_verify_as_the_readme_shows(
    demo_run: DemoRun, home: AuditorHome
) -> None:
    result, output = demo_run.result, demo_run.output
    assert result.returncode == 0, result.stderr[-3000:]
    for bundle in sorted((output / "evidence").glob("*.zip")):
        with zipfile.ZipFile(bundle) as archive:
            assert "signature.tsr" in archive.namelist(), bundle
    trusted = "Trusted time: 2026-11-01T08:00:00+00:00 from http://127.0.0.1:"
    assert trusted in result.stderr, "the demo's own verify step checks the token with its TSA's CA"
    assert (output / "tsa" / "ca.pem").read_text().startswith("-----BEGIN CERTIFICATE-----")

    argv = readme_demo_verify_command()
    assert argv[:2] == ["auditor", "verify"] and argv[-2:] == ["--tsa-cert", "demo-output/tsa/ca.pem"]
    verified = home.run(*argv[1:], cwd=output.parent)

    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert trusted in verified.stdout
    assert "(CN=certcentral-auditor sandbox TSA), RFC 3161 token checked with --tsa-cert" in verified.stdout
