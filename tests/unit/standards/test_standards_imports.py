"""compliance-trestle and py-ocsf-models (and pydantic under them) load only when OSCAL or OCSF is written."""

from __future__ import annotations

import subprocess
import sys

HEAVY = ("trestle", "py_ocsf_models", "pydantic")


def test_the_cli_pipeline_and_evidence_modules_load_no_standards_library() -> None:
    # The modules every command imports, in a fresh interpreter: what loads at import time is the point.
    code = (
        "import sys, auditor.cli.commands, auditor.pipeline, auditor.evidence, auditor.standards; "
        f"print(','.join(m for m in {HEAVY!r} if m in sys.modules))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60)
    assert result.stdout.strip() == ""
