"""Issue 19: `auditor report` signs the PDF with the evidence key by default; `--pdf-unsigned` does not."""

from __future__ import annotations

import io
from pathlib import Path

import pikepdf
from support import AuditorHome, connect_to

from auditor.errors import ExitCode
from auditor.samples import latest_sample_state
from auditor.sandbox import SandboxServer, load_dataset


def test_report_pdf_unsigned_leaves_the_signature_out(home: AuditorHome, tmp_path: Path) -> None:
    with SandboxServer(load_dataset(latest_sample_state())) as sandbox:
        connect_to(home, sandbox.base_url, key="sandbox-view-only-key")
        assert home.run("pull").returncode == ExitCode.OK
    out = tmp_path / "reports"
    result = home.run("report", "--format", "pdf", "--pdf-unsigned", "--pdf-roster-limit", "0", "--output", str(out))
    assert result.returncode == ExitCode.OK, result.stderr
    (pdf,) = out.glob("*.pdf")
    with pikepdf.open(io.BytesIO(pdf.read_bytes())) as document:
        assert "/AcroForm" not in document.Root, "no signature field without a signature"
    assert pdf.read_bytes().count(b"%%EOF") == 1, "a single revision: WeasyPrint's own"
