"""Issue 17: the report's "API keys and automation" section, through the real CLI."""

from __future__ import annotations

from pathlib import Path

from keys_support import ADMIN, api_key, every_kind, keyed_dataset
from support import AuditorHome, connect_to

from auditor.errors import ExitCode
from auditor.sandbox import Faults, SandboxServer


def _html(home: AuditorHome, tmp_path: Path) -> str:
    result = home.run("report", "--format", "html", "--output", str(tmp_path))
    assert result.returncode == ExitCode.OK, result.stderr
    (page,) = tmp_path.glob("*.html")
    return page.read_text("utf-8")


def test_the_report_lists_every_key_with_its_owner_and_guest_access(home: AuditorHome, tmp_path: Path) -> None:
    hostile = api_key(25, "<script>alert(1)</script>", ADMIN)
    with SandboxServer(keyed_dataset(keys=[*every_kind(), hostile])) as server:
        connect_to(home, server.base_url, key="sandbox-view-only-key")
        assert home.run("pull").returncode == ExitCode.OK
        html = _html(home, tmp_path)
    section = html[html.index('<section id="keys"') :]
    section = section[: section.index("</section>")]
    assert "API keys and automation" in section
    assert "13 keys listed, 12 active, 1 ACME URL(s)" in section
    assert "Guest certificate requests: on" in section and "IP restriction rules: 1" in section
    assert "orphan-key" in section and "not a user of the account" in section
    assert "(service user)" in section  # the service user's key, judged through its owner
    assert "<script>alert(1)</script>" not in section and "&lt;script&gt;" in section
    assert "Not evaluable" not in section


def test_the_report_says_not_evaluable_instead_of_no_keys(home: AuditorHome, tmp_path: Path) -> None:
    faults = Faults(route_faults=(("/key", "missing-permission"),))
    with SandboxServer(keyed_dataset(), faults=faults) as server:
        connect_to(home, server.base_url, key="sandbox-view-only-key")
        assert home.run("pull").returncode == ExitCode.OK
        html = _html(home, tmp_path)
    section = html[html.index('<section id="keys"') :]
    section = section[: section.index("</section>")]
    assert "Not evaluable:</strong> API keys and ACME URLs could not be read" in section
    assert "listed no API keys" not in section and "keys listed" not in section
