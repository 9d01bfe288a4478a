"""Who ran a pull, with whose key, and how its completeness was reconciled (issue 12 §3, §4).

Through the real CLI against the real sandbox: the operator and the key's owner appear in the
report, the bundle manifest and the provenance JSON; the "Source and completeness" block shows
each list endpoint reconciled to the sandbox's own counts; an incomplete pull says so and why; a
snapshot stored by an earlier version says "not recorded" instead of inventing an operator.
"""

from __future__ import annotations

import html as html_lib
import io
import json
import math
import re
import shutil
import socket
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

import pytest
from pypdf import PdfReader
from support import AS_OPERATOR, REPO, AuditorHome, DemoRun, connect_to

from auditor.cli import gather_operator, redacted_command
from auditor.sandbox import Dataset, Faults, SandboxServer

#: The OS account the pulls below run as: getpass reads LOGNAME first, so the test fixes it.
ACCOUNT = AS_OPERATOR["LOGNAME"]
#: The commit before operators were recorded: the "earlier version" that stored old snapshots.
EARLIER_VERSION = "a680ba1"
NOT_RECORDED = "not recorded (pulled by an earlier version)"


def text_of(markup: str) -> str:
    """The visible text of an HTML fragment, whitespace collapsed."""
    without_tags = re.sub(r"<[^>]+>", " ", markup)
    return re.sub(r"\s+", " ", html_lib.unescape(without_tags)).strip()


def section(page: str, section_id: str) -> str:
    start = page.index(f'<section id="{section_id}"')
    return page[start : page.index("</section>", start)]


def source_rows(page: str) -> dict[str, list[str]]:
    """The endpoint table of the Source and completeness block: request -> its other cells."""
    block = section(page, "source")
    rows: dict[str, list[str]] = {}
    for row in re.findall(r"<tr>(.*?)</tr>", block[block.index("<tbody>") :], flags=re.S):
        cells = [text_of(cell) for cell in re.findall(r"<td[^>]*>(.*?)</td>", row, flags=re.S)]
        rows[cells[0]] = cells[1:]
    return rows


def key_owner(dataset: Dataset, key: str) -> dict[str, Any]:
    user_id = next(item["user_id"] for item in dataset.keys if item["key"] == key)
    return next(user for user in dataset.users if user["id"] == user_id)


def report_html(home: AuditorHome, out: Path, *args: str, extra_env: dict[str, str] | None = None) -> str:
    result = home.run("report", "--format", "html", "--output", str(out), "--overwrite", *args, extra_env=extra_env)
    assert result.returncode == 0, result.stderr
    (page,) = out.glob("*.html")
    return page.read_text(encoding="utf-8")


def bundle_member(bundle: Path, name: str) -> bytes:
    with zipfile.ZipFile(bundle) as archive:
        return archive.read(name)


# --- §3 who ran it ------------------------------------------------------------------------


def test_operator_and_key_owner_appear_in_report_manifest_and_provenance(
    home: AuditorHome, sandbox: SandboxServer, tmp_path: Path
) -> None:
    connect_to(home, sandbox.base_url)
    pulled = home.run("pull", "--page-size", "5", extra_env=AS_OPERATOR)
    assert pulled.returncode == 0, pulled.stderr
    owner = key_owner(sandbox.dataset, "sandbox-admin-key")
    name = f"{owner['first_name']} {owner['last_name']}"
    host = socket.gethostname()
    pulled_by = f"Pulled by {ACCOUNT}@{host} with the key of {name} <{owner['email']}> (Administrator)"

    page = report_html(home, tmp_path / "reports")
    cover = text_of(page[page.index('<header class="cover"') : page.index("</header>")])
    assert pulled_by in cover
    appendix = text_of(section(page, "appendix"))
    assert pulled_by in appendix
    assert "auditor pull --page-size 5" in appendix, "the command line that made the snapshot"

    bundle = tmp_path / "bundle.zip"
    exported = home.run("export", "--output", str(bundle))
    assert exported.returncode == 0, exported.stderr
    context = json.loads(bundle_member(bundle, "manifest.json"))["context"]
    for provenance in (context, json.loads(bundle_member(bundle, "evidence/snapshot.json"))["provenance"]):
        assert provenance["operator"]["os_account"] == ACCOUNT
        assert provenance["operator"]["host"] == host
        assert provenance["operator"]["command_line"] == "auditor pull --page-size 5"
        assert provenance["operator"]["python_version"] == ".".join(map(str, sys.version_info[:3]))
        assert provenance["key_owner"]["email"] == owner["email"]
        assert provenance["key_owner"]["name"] == name
        assert provenance["key_owner"]["role"] == "Administrator"
        assert provenance["key_owner"]["division_restricted"] is False
        assert provenance["recorded_by_earlier_version"] is False

    # The PDF in the bundle carries provenance.json as an attachment: it must say the same.
    attached = PdfReader(io.BytesIO(bundle_member(bundle, "report/report.pdf"))).attachments
    provenance_json = json.loads(attached["provenance.json"][0])
    assert provenance_json["operator"]["os_account"] == ACCOUNT
    assert provenance_json["key_owner"]["email"] == owner["email"]


def test_the_operator_is_the_pulls_not_the_report_runs(
    home: AuditorHome, sandbox: SandboxServer, tmp_path: Path
) -> None:
    # Rendering the same snapshot later, as someone else, must not change who it says pulled it.
    connect_to(home, sandbox.base_url)
    assert home.run("pull", extra_env=AS_OPERATOR).returncode == 0
    first = report_html(home, tmp_path / "a", extra_env=AS_OPERATOR)
    later = report_html(home, tmp_path / "b", "--snapshot", "1", extra_env={"LOGNAME": "someone-else"})
    assert section(first, "source") == section(later, "source")
    assert "someone-else" not in later
    assert f"{ACCOUNT}@" in text_of(section(later, "source"))


def test_a_division_restricted_key_owner_is_named_with_its_divisions(
    home: AuditorHome, sandbox: SandboxServer, tmp_path: Path
) -> None:
    connect_to(home, sandbox.base_url, key="sandbox-division-restricted-key")
    assert home.run("pull", extra_env=AS_OPERATOR).returncode == 0
    owner = key_owner(sandbox.dataset, "sandbox-division-restricted-key")
    division = next(c for c in sandbox.dataset.containers if c["id"] in owner["container_assignment_ids"])
    source = text_of(section(report_html(home, tmp_path), "source"))
    assert f"{owner['email']}>, Manager, restricted to divisions: {division['name']}" in source


def test_secret_values_after_secret_flags_never_reach_the_command_line() -> None:
    # No flag takes a secret today (keys come from the environment or a prompt); if one ever
    # does, its value must not be recorded in provenance.
    argv = ["connect", "--api-key", "s3cr3t-value", "--token=tok-123", "--key-stdin", "--region", "us"]
    line = redacted_command(argv)
    assert "s3cr3t-value" not in line and "tok-123" not in line
    assert line == "auditor connect --api-key '<redacted>' '--token=<redacted>' --key-stdin --region us"


def test_an_account_without_a_login_name_is_recorded_as_unknown(monkeypatch: pytest.MonkeyPatch) -> None:
    import getpass

    def no_login_name() -> str:
        raise OSError("No username set in the environment")

    monkeypatch.setattr(getpass, "getuser", no_login_name)
    operator = gather_operator(["pull"])
    assert operator.account == "unknown"
    assert operator.command == "auditor pull"


# --- §4 the Source and completeness block --------------------------------------------------


def test_source_block_reconciles_each_endpoint_to_the_sandbox(
    home: AuditorHome, sandbox: SandboxServer, tmp_path: Path
) -> None:
    connect_to(home, sandbox.base_url)
    assert home.run("pull", "--page-size", "5", extra_env=AS_OPERATOR).returncode == 0
    users, service = len(sandbox.dataset.users), len(sandbox.dataset.service_users)
    served = [r for r in sandbox.requests if r.status == 200]
    user_pages = sum(1 for r in served if r.path.endswith("/user") and "limit=5&" in r.query)

    page = report_html(home, tmp_path)
    rows = source_rows(page)
    last_offset = (math.ceil(users / 5) - 1) * 5
    assert rows["GET /user"] == [
        f"limit=5, offset=0 to {last_offset}", str(users), str(users), str(user_pages), "complete"
    ]
    assert user_pages == math.ceil(users / 5)
    assert rows["GET /user/api-only"] == ["limit=5, offset=0", str(service), str(service), "1", "complete"]
    assert "GET /user/me" in rows
    block = text_of(section(page, "source"))
    assert f"Counts reconciled {users + service} of {users + service} users announced by the API received" in block
    assert "Result complete" in block
    assert re.search(r"Raw data SHA-256 [0-9a-f]{64} \(over \d+ raw pages\)", block)
    assert "DigiCert CertCentral Services API v2" in block and "Account id 1696530" in block
    assert f"Operator {ACCOUNT}@" in block and "Pull started 20" in block
    assert "sandbox-admin-key" not in page, "request URLs never carry the key"


@pytest.mark.skipif(shutil.which("pdftotext") is None, reason="poppler's pdftotext is not installed")
def test_source_block_is_on_the_first_two_pages_of_the_pdf(
    home: AuditorHome, sandbox: SandboxServer, tmp_path: Path
) -> None:
    connect_to(home, sandbox.base_url)
    assert home.run("pull", extra_env=AS_OPERATOR).returncode == 0
    result = home.run("report", "--format", "pdf", "--output", str(tmp_path))
    assert result.returncode == 0, result.stderr
    (pdf,) = tmp_path.glob("*.pdf")
    first_two = subprocess.run(
        ["pdftotext", "-enc", "UTF-8", "-layout", "-f", "1", "-l", "2", str(pdf), "-"], capture_output=True, check=True
    ).stdout.decode("utf-8")
    assert "Source and completeness" in first_two
    assert "Counts reconciled" in first_two and "Raw data SHA-256" in first_two
    assert f"Pulled by {ACCOUNT}@" in re.sub(r"\s+", " ", first_two)
    users = str(len(sandbox.dataset.users))
    assert re.search(rf"GET /user\s.*?{users}\s+{users}", first_two, flags=re.S)


def test_incomplete_pull_shows_incomplete_and_why(home: AuditorHome, tmp_path: Path) -> None:
    with SandboxServer(Dataset.generate(300, seed=7)) as server:
        connect_to(home, server.base_url)
        server.set_faults(Faults(churn_between_pages=4, seed=11))
        # Two pages: the second is the only one fetched after the first churn, so the outcome does not
        # depend on how concurrent page fetches interleave with the churn (it did with three pages).
        pulled = home.run("pull", "--page-size", "200", extra_env=AS_OPERATOR)
    assert pulled.returncode == 0 and "INCOMPLETE" in pulled.stderr, pulled.stderr
    page = report_html(home, tmp_path, "--snapshot", "1")
    announced, received, _pages, result = source_rows(page)["GET /user"][1:]
    assert announced != received
    assert result == f"incomplete: {received} of {announced} received"
    block = text_of(section(page, "source"))
    assert f"Result incomplete: GET /user is incomplete: expected {announced} users, received {received}" in block
    assert "users were probably added or removed while paging" in block.casefold()


# --- snapshots stored before this was recorded --------------------------------------------


def earlier_version(tmp_path: Path) -> Path:
    """The tool as it was before operators were recorded, unpacked from git."""
    if shutil.which("git") is None:
        pytest.skip("git is needed to unpack the earlier version")
    target = tmp_path / "earlier"
    target.mkdir()
    archive = subprocess.run(
        ["git", "-C", str(REPO), "archive", EARLIER_VERSION, "auditor"], capture_output=True, check=False
    )
    if archive.returncode != 0:
        pytest.skip(f"commit {EARLIER_VERSION} is not in this checkout")
    subprocess.run(["tar", "-x", "-C", str(target)], input=archive.stdout, check=True)
    return target


def test_a_snapshot_from_an_earlier_version_says_not_recorded(
    home: AuditorHome, sandbox: SandboxServer, tmp_path: Path
) -> None:
    old = earlier_version(tmp_path)
    as_old = {**AS_OPERATOR, "PYTHONPATH": str(old)}
    # The earlier version makes the store too (schema 1), so the new version migrates it on first open.
    # (A subprocess: the earlier version is another copy of the package, on its own PYTHONPATH.)
    connected = home.run(
        "connect", "--base-url", sandbox.base_url, "--key-stdin", stdin="sandbox-admin-key\n", extra_env=as_old,
        subprocess=True,
    )
    assert connected.returncode == 0, connected.stderr
    pulled = home.run("pull", extra_env=as_old, subprocess=True)
    assert pulled.returncode == 0, pulled.stderr

    page = report_html(home, tmp_path / "reports")
    cover = text_of(page[page.index('<header class="cover"') : page.index("</header>")])
    assert f"Pulled by {NOT_RECORDED}" in cover
    block = text_of(section(page, "source"))
    assert f"Operator {NOT_RECORDED}" in block and f"Key owner {NOT_RECORDED}" in block
    assert f"per-endpoint reconciliation {NOT_RECORDED}" in block
    assert ACCOUNT not in page, "an operator the old version never recorded must not be invented"
    # What the old version did record still shows: the endpoints asked and the overall counts.
    total = len(sandbox.dataset.users) + len(sandbox.dataset.service_users)
    assert f"Counts reconciled {total} of {total} users" in block and "Result complete" in block
    assert "GET /user" in source_rows(page)

    bundle = tmp_path / "bundle.zip"
    exported = home.run("export", "--output", str(bundle), "--no-reports")
    assert exported.returncode == 0, exported.stderr
    context = json.loads(bundle_member(bundle, "manifest.json"))["context"]
    assert context["recorded_by_earlier_version"] is True
    assert context["operator"] is None and context["key_owner"] is None and context["endpoints"] == []


def test_the_demo_report_names_who_ran_the_demo(demo_run: DemoRun) -> None:
    # The session's one demo run, run as AS_OPERATOR (tests/conftest.py).
    assert demo_run.result.returncode == 0, demo_run.result.stderr
    (page,) = (demo_run.output / "reports").glob("*.html")
    block = text_of(section(page.read_text(encoding="utf-8"), "source"))
    assert f"Operator {ACCOUNT}@{socket.gethostname()}" in block
    assert "Command auditor demo --output" in block
    assert "with the key of CertCentral Auditor <svc-auditor@example.com> (Administrator)" in text_of(
        page.read_text(encoding="utf-8")
    )
