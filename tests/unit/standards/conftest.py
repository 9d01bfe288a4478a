"""The evaluated snapshot the OSCAL and OCSF tests share (``standards_data``), built once per module."""

from __future__ import annotations

import pytest
from standards_data import Evaluated, evaluated_snapshot


@pytest.fixture(scope="module")
def evaluated() -> Evaluated:
    return evaluated_snapshot()
