"""How many examples the property tests try: a fifth in ``make test``, all with ``HYPOTHESIS_PROFILE=thorough``.

conftest loads the profile named by ``HYPOTHESIS_PROFILE`` (``fast`` unless set). A property test
states the count it is meant to run with as ``@settings(max_examples=examples(N))``: ``N`` in the
thorough profile (a scheduled or pre-release run, see README), ``N // 5`` but at least 10 otherwise.
Tests without their own count take the profile's (20 fast, 500 thorough).
"""

from __future__ import annotations

import os

from hypothesis import settings

PROFILE = os.environ.get("HYPOTHESIS_PROFILE", "fast")
settings.register_profile("fast", max_examples=20)
settings.register_profile("thorough", max_examples=500)


def examples(thorough: int) -> int:
    """``thorough`` examples in the thorough profile, a fifth of it (at least 10) otherwise."""
    return thorough if PROFILE == "thorough" else max(10, thorough // 5)
