"""Shared fixtures: a real sandbox on loopback, an isolated data directory, short lock waits, one demo run."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import settings
from hypothesis_profile import PROFILE
from support import (
    AS_OPERATOR,
    CHROMIUM,
    CHROMIUM_ARGS,
    DEMO_OUTPUT,
    REPO,
    AuditorHome,
    DemoRun,
    SharedArtefacts,
    readme_demo_command,
)

from auditor.sandbox import Faults, SandboxServer, default_dataset
from auditor.store import LockTimeouts

settings.load_profile(PROFILE)


@pytest.fixture
def home(tmp_path: Path) -> AuditorHome:
    return AuditorHome(data_dir=tmp_path / "home", key_file=tmp_path / "config" / "master.key")


@pytest.fixture
def sandbox() -> Iterator[SandboxServer]:
    with SandboxServer(default_dataset(), faults=Faults()) as server:
        yield server


#: How long a held lock is waited for in tests using :func:`lock_wait` (instead of 5 s / 120 s).
SHORT_LOCK_WAIT = 0.3


@pytest.fixture
def lock_wait(home: AuditorHome) -> LockTimeouts:
    """``home``'s in-process commands wait :data:`SHORT_LOCK_WAIT` for a held pull or export lock,
    not the production timeouts (the workspace's ``lock_timeouts``); returns the production ones,
    which the CLI's workspace otherwise has (so a test can still state the documented wait)."""
    home.lock_timeouts = LockTimeouts(pull=SHORT_LOCK_WAIT, export=SHORT_LOCK_WAIT)
    return LockTimeouts()


@pytest.fixture(scope="session")
def shared(tmp_path_factory: pytest.TempPathFactory) -> SharedArtefacts:
    """Read-only artefacts built once per session for all its xdist workers (:class:`SharedArtefacts`)."""
    root = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        root = root.parent  # the session's directory, shared by its workers (not by other sessions)
    return SharedArtefacts(root)


@pytest.fixture(scope="session")
def demo_run(shared: SharedArtefacts) -> DemoRun:
    """The README's demo command (``make demo``) run once per test session as :data:`AS_OPERATOR`,
    in a directory that links the checkout's Makefile, pyproject.toml and installed .venv (so it
    writes nothing into the checkout), shared by the xdist workers (:func:`shared`). Without
    make or an up-to-date .venv: ``auditor demo`` in-process (``DemoRun.command`` says which).

    Read-only: a test that changes the output works on a copy (:meth:`DemoRun.copy_to`)."""

    def build(directory: Path) -> None:
        command = readme_demo_command()
        venv_ready = shutil.which("make") is not None and subprocess.run(
            ["make", "-q", ".venv/.installed-stamp"], cwd=REPO, check=False
        ).returncode == 0
        if venv_ready:
            for name in ("Makefile", "pyproject.toml", ".venv"):
                (directory / name).symlink_to(REPO / name)
            env = {k: v for k, v in os.environ.items() if not k.startswith(("AUDITOR_", "DIGICERT_"))}
            result = subprocess.run(command.split(), cwd=directory, env={**env, **AS_OPERATOR},
                                    capture_output=True, text=True, timeout=600, check=False)
        else:
            command = "auditor demo (in-process)"
            home = AuditorHome(data_dir=directory / "home", key_file=directory / "config" / "master.key")
            result = home.run("demo", "--output", str(directory / DEMO_OUTPUT), extra_env=AS_OPERATOR)
        (directory / "result.json").write_text(json.dumps([command, result.returncode, result.stdout, result.stderr]))

    directory = shared.directory("demo", build)
    command, code, stdout, stderr = json.loads((directory / "result.json").read_text())
    result = subprocess.CompletedProcess(command.split(), code, stdout, stderr)
    return DemoRun(output=directory / DEMO_OUTPUT, result=result, command=command)


#: What :func:`stub_pdf` renders instead of a report: the header and trailer of a PDF file.
STUB_PDF = b"%PDF-1.7\n% a stand-in: this test is not about the PDF\n%%EOF\n"


@pytest.fixture
def stub_pdf(monkeypatch: pytest.MonkeyPatch) -> list[object]:
    """In-process commands write :data:`STUB_PDF` as the PDF report instead of rendering it: for
    tests about what surrounds the PDF (which files a re-run writes or removes), not the PDF,
    which costs seconds (WeasyPrint) and is covered where it is the subject. Returns the report
    data of each render asked for."""
    import auditor.report as report

    asked: list[object] = []

    def render(data: object, **_options: object) -> bytes:
        asked.append(data)
        return STUB_PDF

    monkeypatch.setattr(report, "render_pdf", render)
    return asked


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    """One headless Chromium per test session (per xdist worker); each test opens its own pages."""
    if not CHROMIUM.exists():
        pytest.skip("Debian's chromium is not at /usr/bin/chromium")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        instance = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield instance
        instance.close()


@pytest.fixture(scope="session")
def libreoffice_profile(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A LibreOffice user profile for this session (per xdist worker, so never two soffice at once
    on it), as the ``-env:UserInstallation`` URI: fresh (no macros, no user settings), and made
    once rather than by every conversion (soffice's first start on a new profile is its slowest)."""
    return (tmp_path_factory.mktemp("lo-profile")).as_uri()
