"""Import at scale: a whole area's DMC export through `import_students`, rows per second.

    python -m bench.import_students --rows 60000 --schools 70

Runs the real path: the API (in process), a worker, a local Temporal dev server (SQLite file), the
app database on SQLite (or DMCFLOW_BENCH_DATABASE_URL). Prints the first import, a re-import of the
same file (which must change nothing), and the same export as XLSX.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import httpx
from temporalio.client import Client

from api.app import create_app
from bench.local_temporal import dev_server
from bench.report import emit
from bench.roster_export import rows, school_codes, to_csv, to_xlsx
from db.directory import create_round, create_user, upsert_school
from db.engine import make_engine, session_scope
from db.migrate import upgrade
from dmcflow import round_ops
from dmcflow.settings import Settings
from bench.payload_keys import bench_converter
from domain.rounds import RoundSpec
from worker import build_worker


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=60000)
    ap.add_argument("--schools", type=int, default=70)
    ap.add_argument("--json", default="bench/results/import_students.json")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="dmcflow-import-"))
    url = os.environ.get("DMCFLOW_BENCH_DATABASE_URL") or f"sqlite:///{tmp / 'app.sqlite'}"
    upgrade(url)
    engine = make_engine(url)
    now = datetime.now(timezone.utc)
    with session_scope(engine) as s:
        for code in school_codes(args.schools):
            upsert_school(s, code, f"โรงเรียน {code[-3:]}", "สพม.มหาสารคาม", [])
        s.flush()
        _, token = create_user(s, role="admin", display_name="bench")
        create_round(s, RoundSpec(id="bench", academic_year=2566, opens_at=now - timedelta(minutes=1),
                                  confirm_from=now + timedelta(days=1), cutoff_at=now + timedelta(days=1, hours=8)))
    table = rows(args.rows, args.schools)
    csv_bytes, xlsx_bytes = to_csv(table), to_xlsx(table)
    figures: dict = {"rows": args.rows, "schools": args.schools, "database": url.split(":")[0],
                     "csv_mb": round(len(csv_bytes) / 2**20, 1), "xlsx_mb": round(len(xlsx_bytes) / 2**20, 1)}
    async with dev_server(tmp) as (address, _):
        client = await Client.connect(address, data_converter=bench_converter())
        settings = Settings(database_url=url, temporal_address=address, task_queue="bench")
        async with build_worker(client, settings, engine=engine):
            operation, _ = await round_ops.start_round(engine, client, settings, "bench")
            await client.get_workflow_handle(operation).result()
            app = create_app(settings, engine=engine, temporal=client)
            async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://api",
                                         timeout=600) as http:
                for label, name, data in [("first_csv", "area.csv", csv_bytes), ("again_csv", "area.csv", csv_bytes),
                                          ("again_xlsx", "area.xlsx", xlsx_bytes)]:
                    t0 = time.perf_counter()
                    r = await http.post("/rounds/bench/students/import", headers={"Authorization": f"Bearer {token}"},
                                        files={"file": (name, data, "application/octet-stream")})
                    seconds = time.perf_counter() - t0
                    report = r.json()
                    figures[label] = {"seconds": round(seconds, 2), "rows_per_s": round(args.rows / seconds),
                                      "applied": report["applied"], "unchanged": report["unchanged"],
                                      "refused": report["refused"]}
    emit(figures, args.json)


if __name__ == "__main__":
    asyncio.run(main())
