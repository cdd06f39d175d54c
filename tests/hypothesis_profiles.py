"""Hypothesis profiles: a short form for CI, a long form for a developer's machine.

    HYPOTHESIS_PROFILE=long python -m pytest tests/properties tests/test_api_fuzz.py   # the long form

`ci` (the default) is derandomised: CI runs the same examples every time, so a red build is never a
coin toss and reproduces locally with the same command. `long` draws fresh random examples (and keeps
failing ones in .hypothesis/ to try first next time), 20 times as many: that is where new bugs are found.
Tests size their runs with `examples(n)`: n in CI, 20 n in the long form.
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

PROFILE = os.environ.get("HYPOTHESIS_PROFILE", "ci")
LONG_FACTOR = 20

settings.register_profile("ci", derandomize=True, deadline=None, database=None, print_blob=True,
                          suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("long", deadline=None, print_blob=True, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile(PROFILE)


def examples(n: int) -> int:
    """How many examples a property runs: `n` in the CI form, LONG_FACTOR times that in the long form."""
    return n * LONG_FACTOR if PROFILE == "long" else n
