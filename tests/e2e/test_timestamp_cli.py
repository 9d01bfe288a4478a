"""Issue 19 end to end: `run --tsa-url` against a real TSA on loopback, `verify --tsa-cert`, a TSA that is down."""

from __future__ import annotations

from pathlib import Path

from support import AuditorHome, connect_to
from tsa import TsaServer, closed_port_url, make_authority

from auditor.errors import ExitCode
from auditor.samples import latest_sample_state
from auditor.sandbox import SandboxServer, load_dataset

VIEW_ONLY = "sandbox-view-only-key"


def test_run_and_export_with_a_tsa_then_verify_the_trusted_time(home: AuditorHome, tmp_path: Path) -> None:
    authority = make_authority(tmp_path / "tsa")
    with SandboxServer(load_dataset(latest_sample_state())) as sandbox, TsaServer(authority) as tsa:
        connect_to(home, sandbox.base_url, key=VIEW_ONLY)
        out = tmp_path / "out"
        ran = home.run("run", "--format", "html", "--output", str(out), "--tsa-url", tsa.url)
        assert ran.returncode == ExitCode.OK, ran.stderr
        assert f"Trusted timestamp: RFC 3161 token from {tsa.url}" in ran.stderr
        # The read-only guard is about CertCentral: every request it saw was a GET; the one POST went to the TSA.
        assert sandbox.requests and {request.method for request in sandbox.requests} == {"GET"}
        assert [method for method, _headers in tsa.requests] == ["POST"]

        # A TSA that is down: the export fails and names --tsa-optional, or proceeds (stated) with it.
        down = closed_port_url()
        failed = home.run("export", "--no-reports", "--output", str(tmp_path / "x.zip"), "--tsa-url", down)
        assert failed.returncode == ExitCode.LOCAL_DATA, failed.stderr
        assert "--tsa-optional" in failed.stderr and not (tmp_path / "x.zip").exists()
        config = tmp_path / "auditor.toml"
        config.write_text(f'[evidence]\ntsa_url = "{down}"\ntsa_optional = true\n')
        optional = home.run("--config", str(config), "export", "--no-reports", "--output", str(tmp_path / "y.zip"))
        assert optional.returncode == ExitCode.OK, optional.stderr
        assert "Trusted timestamp: none" in optional.stderr

    pem = tmp_path / "signer.pem"
    pem.write_text(home.run("keys", "public").stdout)
    (bundle,) = out.glob("*.zip")
    checked = home.run("verify", str(bundle), "--public-key", str(pem), "--tsa-cert", str(authority.ca_pem))
    assert checked.returncode == ExitCode.OK, checked.stdout + checked.stderr
    assert "Trusted time: 20" in checked.stdout and "RFC 3161 token checked with --tsa-cert" in checked.stdout
    other = make_authority(tmp_path / "other", name="Other TSA")
    wrong = home.run("verify", str(bundle), "--public-key", str(pem), "--tsa-cert", str(other.ca_pem))
    assert wrong.returncode == ExitCode.FINDINGS_OR_VERIFY_FAILED and "timestamp-invalid" in wrong.stdout
    unstamped = home.run("verify", str(tmp_path / "y.zip"), "--public-key", str(pem))
    assert unstamped.returncode == ExitCode.OK and "gave no token and the export had --tsa-optional" in unstamped.stdout
