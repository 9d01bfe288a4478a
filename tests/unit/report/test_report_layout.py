"""The printed report as a reviewer and an archivist read it (issue 16).

Page one decides; access changes come before sign-in activity; every word of the demo PDF and of
a 10,000-user PDF lies inside the page margins, no two words cross and no e-mail address is
broken; the PDF is tagged PDF/A-3a with fonts, OutputIntent, XMP and associated files in place.
"""

from __future__ import annotations

import io
import re
import shutil
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from pdf_boxes import Word, outside_margins, overlapping, word_boxes
from report_fixtures import make_report_data
from support import AuditorHome, DemoRun, SharedArtefacts

from auditor.errors import ExitCode
from auditor.models import Change, ChangeKind
from auditor.report import ReportData, render_html, render_pdf
from auditor.sandbox import Dataset, SandboxServer

needs_poppler = pytest.mark.skipif(shutil.which("pdftotext") is None, reason="poppler's pdftotext is not installed")
EMAIL = re.compile(r"[^\s@<>(),;:\"']+@[^\s@<>(),;:\"']+\.[a-z]{2,}")


@pytest.fixture(scope="module")
def demo(demo_run: DemoRun) -> Path:
    """The demo's reports folder (the session's one demo run, through the real CLI)."""
    assert demo_run.result.returncode == ExitCode.OK, demo_run.result.stderr
    return demo_run.output / "reports"


@pytest.fixture(scope="module")
def review_pdf(shared: SharedArtefacts) -> Path:
    """The fixture report with a review, rendered to PDF and signed (PAdES, issue 19) once for the
    session (read-only): the PDF/A checks below hold for the signed report."""

    def signed() -> bytes:
        import hashlib

        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

        from auditor.report._sign import PdfSigner

        data = make_report_data(review=True)
        key = Ed25519PrivateKey.from_private_bytes(hashlib.sha256(b"report signing key").digest())
        signer = PdfSigner(key, "sha256:report-key", data.generated_at, data.generated_at)
        return render_pdf(data, sign=signer.sign)

    return shared.file("review-signed.pdf", signed)


def demo_pdf(demo: Path) -> Path:
    (pdf,) = demo.glob("*.pdf")
    return pdf


def describe(words: list[Word]) -> list[str]:
    return [f"page {w.page}: {w.text!r} at x {w.x0:.0f}-{w.x1:.0f}, y {w.y0:.0f}" for w in words[:10]]


def assert_fits(pdf: Path) -> str:
    """Every word inside the margins and crossing no other; returns the text for further checks."""
    pages = word_boxes(pdf)
    assert pages, "no pages read back"
    outside = outside_margins(pages)
    assert not outside, describe(outside)
    crossing = overlapping(pages)
    assert not crossing, [f"page {a.page}: {a.text!r} crosses {b.text!r}" for a, b in crossing[:10]]
    return " ".join(word.text for page in pages for word in page.words)


def assert_addresses_whole(words_text: str, addresses: set[str]) -> None:
    """Each address is one word of the PDF: a line break inside it would split it in two."""
    words = set(words_text.split())
    # An address may sit in angle brackets or before a comma; strip that punctuation only.
    cleaned = {word.strip("<>(),;:.") for word in words}
    broken = sorted(address for address in addresses if address not in cleaned)
    assert not broken, broken[:10]


# --- page one ----------------------------------------------------------------------------


def test_page_one_states_the_verdict_and_links_each_action_to_its_findings() -> None:
    html = render_html(make_report_data())
    cover = html[html.index('<header class="cover"'):html.index("</header>")]
    start = cover.index('class="headline"')
    headline = re.sub(r"<[^>]+>", "", cover[start:cover.index("</p>", start)])
    assert "2 high-risk findings need action (and 4 lower-risk)" in headline
    assert "review of this snapshot not signed off" in headline
    assert "overdue: 1 expired exception" in headline
    assert "6 access changes since the previous snapshot" in headline
    # The action list comes before the sign-off and before any fact about the account.
    assert cover.index("Action required") < cover.index('id="h-signoff"')
    assert "About this report" not in cover
    links = re.findall(r'<a href="#(rule-[a-z-]+)">', cover)
    assert links[:2] == ["rule-new-admin", "rule-admin-dormant"], "worst first"
    for anchor in links:
        assert f'id="{anchor}"' in html, f"{anchor} leads nowhere"
    assert "Open findings rose from 4 to 6 over 4 snapshots (2026-02-01 to 2026-11-01)" in cover


def test_signed_off_snapshot_says_the_sign_off_does_not_close_findings() -> None:
    html = render_html(make_report_data(review=True))
    cover = html[html.index('<header class="cover"'):html.index("</header>")]
    state = cover[cover.index('class="signoff-state"'):]
    assert "for this snapshot only" in state
    assert "it does not close the 6 open findings of this snapshot" in state
    assert "review of this snapshot signed off" in cover


def test_signed_off_after_an_overdue_review_says_both() -> None:
    from auditor.models import Finding, Severity

    data = make_report_data(review=True)
    overdue = Finding("review-overdue", Severity.MEDIUM, "Access review overdue", "No review on record.",
                      "Review and record the sign-off.")
    data = replace(data, findings=replace(data.findings, findings=(*data.findings.findings, overdue)))
    cover = render_html(data).split("</header>")[0]
    assert "signed off (it was overdue when the snapshot was taken)" in cover
    assert "overdue: the access review" not in cover


def test_the_why_does_not_repeat_the_users_address() -> None:
    from auditor.models import Finding, Severity

    data = make_report_data()
    finding = Finding("stale-login", Severity.MEDIUM, "User has not signed in recently",
                      "dana.ops@example.com has not signed in for 200 days; the limit is 90 days.",
                      "Deactivate the user.", user_id=1005, email="dana.ops@example.com")
    data = replace(data, findings=replace(data.findings, findings=(finding,)))
    html = render_html(data)
    row = html[html.index('id="rule-stale-login"'):]
    row = row[:row.index("</tr>")]
    assert row.count("dana.ops@example.com") == 1
    assert "Has not signed in for 200 days" in row


# --- access before activity ----------------------------------------------------------------


def with_sign_ins(count: int) -> ReportData:
    data = make_report_data()
    sign_ins = tuple(
        Change(ChangeKind.SIGNED_IN, 5000 + index, f"user{index}@example.com", "2026-09-01", "2026-10-30")
        for index in range(count)
    )
    return replace(data, changes=replace(data.changes, changes=(*data.changes.changes, *sign_ins)))


def test_sign_in_activity_is_one_line_and_a_collapsed_table_in_html() -> None:
    html = render_html(with_sign_ins(40))
    changes = html[html.index('id="t-changes"'):]
    access = changes[:changes.index("</table>")]
    assert "g-signin" not in access
    assert access.count("<tr class=") == 6
    assert "Since snapshot #6: 41 sign-ins by 41 users. This is activity, not a change of access." in html
    details = html[html.index('<details class="activity">'):html.index("</details>")]
    assert details.count('<tr class="g-signin">') == 41


@needs_poppler
def test_sign_ins_are_left_to_the_attached_csv_in_the_pdf(tmp_path: Path) -> None:
    from pypdf import PdfReader

    pdf = render_pdf(with_sign_ins(40))
    path = tmp_path / "r.pdf"
    path.write_bytes(pdf)
    text = " ".join(w.text for page in word_boxes(path) for w in page.words)
    assert "41 sign-ins by 41 users" in text
    assert "listed in the attached changes.csv" in text
    assert "user17@example.com" not in text
    assert b"user17@example.com" in PdfReader(io.BytesIO(pdf)).attachments["changes.csv"][0]


# --- the PDF fits its page -------------------------------------------------------------------


@needs_poppler
def test_demo_pdf_every_word_inside_the_margins_and_no_address_broken(demo: Path) -> None:
    text = assert_fits(demo_pdf(demo))
    html = next(demo.glob("*.html")).read_text(encoding="utf-8")
    findings = html[html.index('id="t-findings"'):html.index("</table>", html.index('id="t-findings"'))]
    addresses = set(EMAIL.findall(findings))
    assert len(addresses) > 15
    assert_addresses_whole(text, addresses)


@needs_poppler
def test_fixture_pdf_fits_including_hostile_and_non_latin_text(review_pdf: Path) -> None:
    text = assert_fits(review_pdf)
    assert_addresses_whole(text, {"bob.dormant@example.com", "security@example.com", "ciso@example.com",
                                  "chloe.manager@example.com", "gina.new@example.com"})


@needs_poppler
@pytest.mark.slow
def test_ten_thousand_user_pdf_fits_its_pages(tmp_path: Path, home: AuditorHome) -> None:
    # The real path: a 10,000-user sandbox account, pulled and reported through the CLI.
    with SandboxServer(Dataset.generate(10_000, seed=16)) as server:
        connected = home.run("connect", "--base-url", server.base_url, "--key-stdin", stdin="sandbox-admin-key\n")
        assert connected.returncode == 0, connected.stderr
        pulled = home.run("pull", timeout=300)
        assert pulled.returncode == ExitCode.OK, pulled.stderr
    out = tmp_path / "reports"
    result = home.run("report", "--format", "pdf", "--output", str(out), timeout=300)
    assert result.returncode in (ExitCode.OK, ExitCode.FINDINGS_OR_VERIFY_FAILED), result.stderr
    (pdf,) = out.glob("*.pdf")
    text = assert_fits(pdf)
    assert "Action required" in text
    addresses = set(EMAIL.findall(text))
    assert len(addresses) > 100  # the first findings of each rule, privileged users and roster rows
    # Bounded by design (issue 15): each long table prints its first rows and names the CSV
    # holding the rest; a list inside one finding's evidence is cut the same way.
    assert re.search(r"[\d,]+ more privileged users are listed in the attached privileged\.csv", text)
    assert re.search(r"[\d,]+ more stale-login findings are listed in the attached findings\.csv", text)
    assert "more (all in the attached findings.csv)" in text
    assert "The full roster is attached to this PDF as roster.csv" in text
    from pypdf import PdfReader

    assert len(PdfReader(pdf).pages) < 30
    # Every address the PDF shows is one word: none was split by a line break (which would leave
    # "name@gene" on one line and "rated.example" on the next). The operator is account@host.
    operator = text.split("Pulled by ", 1)[1].split()[0]
    for word in text.split():
        stripped = word.strip("<>(),;:.'\"")
        # Patterns such as 'admin@*' (shared-mailbox evidence) are not addresses.
        if re.search(r"@\w", stripped) and stripped != operator:
            domain = stripped.rpartition("@")[2]
            assert domain in ("generated.example", "example.com"), f"an address is broken: {word!r}"


# --- archival and accessible -------------------------------------------------------------------


@pytest.fixture(scope="module")
def archive(review_pdf: Path) -> Iterator[object]:
    pikepdf = pytest.importorskip("pikepdf")
    with pikepdf.open(review_pdf) as pdf:
        yield pdf


def structure_kinds(node: object) -> set[str]:
    """The /S of every structure element under ``node`` (iteratively: the tree is deep)."""
    import pikepdf

    kinds: set[str] = set()
    stack = [node]
    while stack:
        item = stack.pop()
        if isinstance(item, pikepdf.Array):
            stack.extend(item)
        elif isinstance(item, pikepdf.Dictionary):
            if "/S" in item:
                kinds.add(str(item.S))
            if "/K" in item:
                stack.append(item.K)
    return kinds


def test_pdf_is_tagged_with_a_structure_tree(archive: object) -> None:
    root = archive.Root  # type: ignore[attr-defined]
    assert bool(root.MarkInfo.Marked)
    assert str(root.Lang).startswith("en")
    tree = root.StructTreeRoot
    kinds = structure_kinds(tree.K)
    # Headings, paragraphs, lists, tables with header cells, links: what a screen reader needs.
    for kind in ("/H1", "/H2", "/H3", "/P", "/L", "/LI", "/Table", "/TR", "/TH", "/TD", "/Link"):
        assert kind in kinds, f"{kind} missing from the structure tree ({sorted(kinds)})"
    assert "/ParentTree" in tree


def test_pdfa_3a_metadata_output_intent_and_fonts(archive: object) -> None:
    root = archive.Root  # type: ignore[attr-defined]
    with archive.open_metadata() as meta:  # type: ignore[attr-defined]
        assert meta.get("pdfaid:part") == "3"
        assert meta.get("pdfaid:conformance") == "A"
        assert meta.get("dc:title") == "CertCentral access review: Exämple Corp <Prod>"
    [intent] = list(root.OutputIntents)
    assert str(intent.S) == "/GTS_PDFA1"
    profile = intent.DestOutputProfile
    assert int(profile.N) == 3 and len(profile.read_bytes()) > 1000  # an embedded RGB ICC profile
    fonts = 0
    for page in archive.pages:  # type: ignore[attr-defined]
        for font in page.Resources.get("/Font", {}).values():
            fonts += 1
            descendant = font.DescendantFonts[0] if "/DescendantFonts" in font else font
            descriptor = descendant.FontDescriptor
            assert any(key in descriptor for key in ("/FontFile", "/FontFile2", "/FontFile3")), (
                f"font {font.get('/BaseFont')} is not embedded"
            )
    assert fonts > 0


def test_attachments_are_associated_files_with_a_relationship(archive: object) -> None:
    root = archive.Root  # type: ignore[attr-defined]
    associated = {str(spec.F): spec for spec in root.AF}
    assert sorted(associated) == [
        "changes.csv", "findings.csv", "keys.csv", "privileged.csv", "provenance.json", "roster.csv",
    ]
    for name, spec in associated.items():
        assert str(spec.AFRelationship) == "/Data", name
        stream = spec.EF.F
        expected = "/application/json" if name.endswith(".json") else "/text/csv"
        assert str(stream.Subtype) == expected, name  # PDF/A-3 asks for the MIME type
        assert "/ModDate" in stream.Params, name
        assert str(spec.UF) == name, name
    names = archive.attachments  # type: ignore[attr-defined]
    assert sorted(names) == sorted(associated)


@needs_poppler
def test_a_rule_with_many_findings_lists_the_first_and_points_to_the_attachment(tmp_path: Path) -> None:
    from pypdf import PdfReader

    data = make_report_data(extra_users=600)
    # One block: the stale-login findings that share title, remediation and controls.
    stale = [f for f in data.findings.active if f.rule_id == "stale-login" and f.title == "Stale account"]
    assert len(stale) > 30
    pdf = render_pdf(data, roster_limit=0, findings_per_rule=10)  # no roster rows: addresses only in findings
    path = tmp_path / "r.pdf"
    path.write_bytes(pdf)
    text = assert_fits(path)
    assert f"stale-login · {len(stale)} findings, the first 10 listed" in text
    assert f"{len(stale) - 10} more stale-login findings are listed in the attached findings.csv" in text
    section = text[text.index("open findings, worst first"):text.index("Suppressed findings (accepted risk)")]
    listed = [f.email for f in stale if f.email in section.split()]
    assert listed == sorted(f.email for f in stale)[:10], "exactly the first ten are printed"
    attached = PdfReader(io.BytesIO(pdf)).attachments["findings.csv"][0].decode("utf-8")
    assert all(f.email in attached for f in stale), "the attachment keeps every finding"


def test_the_action_list_keeps_a_sentence_whole_past_an_abbreviation() -> None:
    """"(e.g. Orders, ...)" used to cut the key-unrestricted action to "... needs (e.g."."""
    from auditor.report._view import first_sentence

    text = "Restrict it to what the integration needs (e.g. Orders, or View Only). Then pull again."
    assert first_sentence(text) == "Restrict it to what the integration needs (e.g. Orders, or View Only)."
    assert first_sentence("Deactivate the user. Then check what it did.") == "Deactivate the user."
