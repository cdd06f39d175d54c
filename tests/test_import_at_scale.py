"""A 60,000-row area export (generated XLSX) through import_students: applied once, then unchanged."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest

from bench.roster_export import rows, school_codes, to_xlsx
from db.directory import upsert_school
from db.engine import session_scope
from tests.stack import AREA, add_round, running_stack, unique_round

pytestmark = pytest.mark.slow
ROWS, SCHOOLS = 60_000, 70


async def test_sixty_thousand_rows_import_in_seconds_and_reimport_changes_nothing(time_env, engine, settings):
    xlsx = to_xlsx(rows(ROWS, SCHOOLS))
    async with running_stack(time_env, engine, settings) as stack:
        with session_scope(engine) as s:
            for code in school_codes(SCHOOLS):
                upsert_school(s, code, f"โรงเรียน {code[-3:]}", AREA, [])
        now = await stack.now()
        rid = unique_round()
        add_round(engine, rid, now - timedelta(minutes=1), now + timedelta(days=1), now + timedelta(days=1, hours=8))
        await stack.start_round(rid)
        timings = []
        for expect_applied in (ROWS, 0):
            t0 = time.perf_counter()
            r = await stack.http.post(f"/rounds/{rid}/students/import", headers=stack.auth("admin"), timeout=600,
                                      files={"file": ("area.xlsx", xlsx, "application/octet-stream")})
            timings.append(time.perf_counter() - t0)
            assert r.status_code == 200, r.text[:500]
            report = r.json()
            assert (report["total_rows"], report["applied"], report["refused"]) == (ROWS, expect_applied, 0)
            assert report["unchanged"] == ROWS - expect_applied
        print(f"60,000-row XLSX: first import {timings[0]:.1f} s ({ROWS / timings[0]:.0f} rows/s), "
              f"re-import {timings[1]:.1f} s ({ROWS / timings[1]:.0f} rows/s)")
        assert timings[0] < 300, "seconds, not minutes (generous bound: CI machines are noisy)"
        r = await stack.http.get(f"/rounds/{rid}/schools/{school_codes(SCHOOLS)[0]}", headers=stack.auth("admin"))
        assert r.json()["gate"]["students"] == ROWS // SCHOOLS + (1 if ROWS % SCHOOLS else 0)
