"""Shared fixtures: a real sandbox on loopback and an isolated data directory."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from support import AuditorHome

from auditor.sandbox import Faults, SandboxServer, default_dataset


@pytest.fixture
def home(tmp_path: Path) -> AuditorHome:
    return AuditorHome(data_dir=tmp_path / "home", key_file=tmp_path / "config" / "master.key")


@pytest.fixture
def sandbox() -> Iterator[SandboxServer]:
    with SandboxServer(default_dataset(), faults=Faults()) as server:
        yield server
