"""Fixtures for the pure domain tests: no database, no Temporal, no network."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

# The project ships the sample export as demo data (dmcflow/demo/), identical to shared/samples/.
DEMO = Path(__file__).resolve().parents[2] / "dmcflow" / "demo"


def _find_sample(name: str) -> Path:
    return DEMO / name


@pytest.fixture(scope="session")
def sample_roster_bytes() -> bytes:
    return _find_sample("roster-phase3-2566.csv").read_bytes()


# Offsets west of UTC in seconds (time.timezone), to prove the switch really happened.
_PROCESS_ZONES = {"UTC": 0, "America/New_York": 5 * 3600}


@pytest.fixture(params=sorted(_PROCESS_ZONES))
def process_tz(request):
    """Run the test with the process's local timezone set to UTC, then to America/New_York.

    The server's own timezone must never matter (domain.md, "Dates and language").
    """
    saved = os.environ.get("TZ")
    os.environ["TZ"] = request.param
    time.tzset()
    try:
        # Without this the test could pass vacuously on a machine lacking tzdata.
        assert time.timezone == _PROCESS_ZONES[request.param], f"TZ={request.param} did not take effect"
        yield request.param
    finally:
        if saved is None:
            os.environ.pop("TZ", None)
        else:
            os.environ["TZ"] = saved
        time.tzset()
