"""Render time of the workbench's roster pages for a school of 3,000 students (issue 17: target < 300 ms).

    python -m bench.web_pages                      # SQLite file in a temp dir
    python -m bench.web_pages --database-url postgresql://user:pw@host/db   # an empty PostgreSQL database

The school's students are written straight into the app database; the pages read only that table (never a
workflow), so no Temporal is needed. Each page is asked through the app in-process (httpx's ASGI transport:
routing, the session cookie, the query, Jinja and the response), one request at a time, and timed end to end.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import httpx
from sqlalchemy import insert

from api.viewer import COOKIE, CSRF_FIELD
from bench.dashboard import _NoTemporal, percentile
from bench.report import emit
from db.directory import create_round, create_user, upsert_school
from db.engine import make_engine, session_scope
from db.migrate import upgrade
from db.models import Student
from db.web_sessions import SessionPolicy, open_session
from domain.ids import national_id_check_digit
from domain.rounds import RoundSpec

SCHOOL, ROUND = "1099999001", "bench-web"
GRADES = ("ป.1", "ป.2", "ป.3", "ป.4", "ป.5", "ป.6", "ม.1", "ม.2", "ม.3", "ม.4", "ม.5", "ม.6")


def seed(engine, students: int, now: datetime) -> tuple[str, str]:
    """A school with `students` students, a round, and a staff member's web session (cookie, CSRF token)."""
    with session_scope(engine) as s:
        upsert_school(s, SCHOOL, "โรงเรียนวัดประสิทธิ์", "สพป.ทดสอบ เขต 1", [])
        create_round(s, RoundSpec(id=ROUND, academic_year=2566, opens_at=now - timedelta(days=30),
                                  confirm_from=now - timedelta(hours=3), cutoff_at=now + timedelta(hours=5)))
        s.flush()
        rows = []
        for i in range(students):
            first12 = f"1{10_000_000_000 + i:011d}"
            rows.append({"school_code": SCHOOL, "student_id": first12 + str(national_id_check_digit(first12)),
                         "student_no": str(i % 40 + 1), "prefix": "เด็กชาย" if i % 2 else "เด็กหญิง",
                         "first_name": f"นักเรียน{i}", "last_name": f"นามสกุล{i % 97}", "gender": "ช" if i % 2 else "ญ",
                         "grade": GRADES[i % len(GRADES)], "classroom": str(i % 8 + 1), "sat_final_exam": True,
                         "status": "studying" if i % 50 else "transferred_out", "updated_at": now})
        s.execute(insert(Student.__table__), rows)
        user, _ = create_user(s, role="staff", display_name="bench staff", school_code=SCHOOL)
        session_row, session_id = open_session(s, user, now, SessionPolicy(timedelta(hours=8), timedelta(hours=8)))
        return session_id, session_row.csrf_secret


async def timed(client: httpx.AsyncClient, runs: int, **request) -> dict:
    times = []
    for _ in range(runs + 2):
        t0 = time.perf_counter()
        r = await client.request(**request)
        times.append((time.perf_counter() - t0) * 1000)
        assert r.status_code == 200 and "นักเรียน" in r.text, (r.status_code, r.text[:300])
    times = times[2:]  # the first two warm the template cache and the connection pool
    return {"p50_ms": round(statistics.median(times), 1), "p95_ms": round(percentile(times, 95), 1),
            "max_ms": round(max(times), 1)}


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--students", type=int, default=3000)
    ap.add_argument("--runs", type=int, default=30)
    ap.add_argument("--database-url", help="default: a SQLite file in a temp dir; postgresql://... works too")
    ap.add_argument("--json", default="bench/results/web_pages.json")
    args = ap.parse_args()

    from api.app import create_app
    from dmcflow.settings import Settings

    url = args.database_url or f"sqlite:///{Path(tempfile.mkdtemp(prefix='dmcflow-web-')) / 'app.sqlite'}"
    upgrade(url)
    engine = make_engine(url)
    session_id, csrf = seed(engine, args.students, datetime.now(timezone.utc))
    app = create_app(Settings(database_url=url), engine=engine, temporal=_NoTemporal())
    base = f"/school/{SCHOOL}/rounds/{ROUND}/roster"
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://bench",
                                 cookies={COOKIE: session_id}) as client:
        figures = {"students": args.students, "runs": args.runs, "target_ms": 300,
                   "list_first_page": await timed(client, args.runs, method="GET", url=base),
                   "list_last_page": await timed(client, args.runs, method="GET", url=f"{base}?page=60"),
                   "list_grade_and_status": await timed(client, args.runs, method="GET",
                                                        url=f"{base}?grade=ม.1&status=studying"),
                   "search_name": await timed(client, args.runs, method="POST", url=f"{base}/search",
                                              data={CSRF_FIELD: csrf, "q": "นักเรียน15"}),
                   "search_id_last_digits": await timed(client, args.runs, method="POST", url=f"{base}/search",
                                                        data={CSRF_FIELD: csrf, "q": "0123"})}
    worst = max(v["p95_ms"] for v in figures.values() if isinstance(v, dict))
    figures["worst_p95_ms"] = worst
    figures["within_target"] = worst < 300
    emit(figures, args.json)


if __name__ == "__main__":
    asyncio.run(main())
