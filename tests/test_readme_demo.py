"""The README's demo command, run exactly as written, produces the files the README names."""

from __future__ import annotations

import re
import shutil
import subprocess
import zipfile
from pathlib import Path

import pytest
from support import REPO

README = REPO / "README.md"


def setup_commands() -> list[str]:
    """The commands of the README's first code block (the two set-up commands)."""
    block = re.search(r"```sh\n(.*?)```", README.read_text(encoding="utf-8"), re.DOTALL)
    assert block, "README has no sh code block"
    return [line.split("#", 1)[0].strip() for line in block.group(1).splitlines() if line.strip()]


def test_readme_starts_with_exactly_two_setup_commands() -> None:
    assert setup_commands() == ["make demo", "make test"]


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
def test_demo_command_from_the_readme_writes_what_the_readme_promises() -> None:
    command = setup_commands()[0]
    output = REPO / "demo-output"
    result = subprocess.run(command.split(), cwd=REPO, capture_output=True, text=True, timeout=600, check=False)
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
