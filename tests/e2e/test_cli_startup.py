"""`auditor --help` stays fast: no heavy library is imported until a command needs it."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

HEAVY = ("httpx", "pandas", "weasyprint", "jinja2", "cryptography", "rich", "openpyxl", "pyrate_limiter")

PROBE = """
import io, json, sys
from contextlib import redirect_stdout
from auditor.cli import main
with redirect_stdout(io.StringIO()):
    code = main(sys.argv[1:], stderr=io.StringIO())
print(json.dumps({"code": code, "modules": sorted(sys.modules)}))
"""


@pytest.mark.parametrize("argv", [["--help"], ["pull", "--help"], ["report", "--help"], ["--version"]])
def test_help_imports_no_heavy_library(argv: list[str]) -> None:
    result = subprocess.run([sys.executable, "-c", PROBE, *argv], capture_output=True, text=True, check=True)
    outcome = json.loads(result.stdout.strip().splitlines()[-1])
    assert outcome["code"] == 0
    loaded = [name for name in HEAVY if name in outcome["modules"]]
    assert loaded == [], f"imported at start-up: {loaded}"


def test_help_lists_every_exit_code() -> None:
    result = subprocess.run([sys.executable, "-m", "auditor", "--help"], capture_output=True, text=True, check=True)
    for code in ("0 ", "1 ", "2 ", "3 ", "4 ", "5 ", "6 "):
        assert f"\n  {code}" in result.stdout
