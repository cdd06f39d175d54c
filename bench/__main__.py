"""Every benchmark in one command, dmcflow side by side with bare Temporal in the same run.

    python -m bench                 # N = 2,000 schools, about 16 minutes on 2 cores
    python -m bench --national      # N = 30,000: the start path and the cutoff storm only (see `national`)
    python -m bench --quick         # N = 300, a smoke run of the harness (about 3 minutes)

One local Temporal dev server on its SQLite file, the dmcflow worker and API in their own processes,
the bare worker in its own (bench/harness.py). Prints a table of ratios and writes bench/results/all.json.

- start path: `start_round` for N schools, until every school is in the dashboard's projection and
  get_school_round answers, ÷ bare `start_workflow` of N trivial workflows (goal ≥ 5, issue 18);
- approval path: confirmations and certifications per second through the HTTP API (bearer auth, C
  concurrent clients) ÷ the same updates through bare Temporal's minimal HTTP route calling
  `execute_update` on workflows of the same shape (≥ 0.8), and the server's CPU per update (≤ 1.1×);
- the two storms of the last afternoon (issue 18: the round's time is its areas'): from the 15.30 reminder
  until every uncertified school's reminder is in the outbox, and from the 16.30 cutoff until every school
  is `late` in the dashboard's projection and every area's escalation is in the outbox, each ÷ N bare
  workflows with one timer and one activity each (the same bare storm for both; goal ≤ 0.25);
- memory: worker RSS per cached school workflow (N started as a first event starts them) against the bare
  worker's per cached school-shaped workflow; goal ≤ 80 KB;
- intake and import: their own benchmarks at a bounded size, figures in the same table.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

from temporalio.client import Client

from bench import harness
from bench.national import NATIONAL_LEAD_S_PER_SCHOOL, national
from bench.payload_keys import bench_converter
from bench.report import emit
from bench.round_steps import add_round
from bench.start_and_approval import approval_path, start_path
from bench.storms import cutoff_storm
from bench.table import table
from bench.worker_memory import memory_per_workflow
from db.engine import make_engine
from db.migrate import upgrade
from dmcflow.settings import Settings


# --- the other benchmarks, at a bounded size -----------------------------------------------------

def other_bench(module: str, *args: str) -> dict:
    out = Path(tempfile.mkdtemp(prefix="dmcflow-bench-")) / "figures.json"
    subprocess.run([sys.executable, "-m", module, *args, "--json", str(out)], check=True, cwd=harness.ROOT,
                   stdout=subprocess.DEVNULL)
    return json.loads(out.read_text())


async def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--schools", type=int, default=None, help="N for the start path and the cutoff storm "
                                                              "(default 2,000; 30,000 with --national)")
    ap.add_argument("--approvals", type=int, default=1000, help="schools confirmed and certified")
    ap.add_argument("--clients", type=int, default=32, help="concurrent API clients / bare client calls")
    ap.add_argument("--areas", type=int, default=None, help="default: as in the country, one per 122 schools")
    ap.add_argument("--national", action="store_true",
                    help="N = 30,000; the start path and the storm on the same workflows, nothing else")
    ap.add_argument("--lead-ms", type=float, default=NATIONAL_LEAD_S_PER_SCHOOL * 1000,
                    help="--national: ms per school between the bare starts and their cutoff")
    ap.add_argument("--quick", action="store_true", help="N = 300, 150 approvals, no intake/import")
    ap.add_argument("--skip-others", action="store_true", help="without the intake and import benchmarks")
    ap.add_argument("--only", default="start,approval,memory,storm,others",
                    help="a comma-separated subset (not with --national)")
    ap.add_argument("--json", default="bench/results/all.json")
    args = ap.parse_args()
    args.schools = args.schools or (30000 if args.national else 2000)
    if args.national:  # the approval path, intake and import do not depend on N: the default run has them
        args.approvals, args.skip_others = 0, True
    if args.quick:
        args.schools, args.approvals, args.skip_others = 300, 150, True
    args.approvals = min(args.approvals, args.schools)
    args.areas = args.areas or max(1, round(args.schools * 245 / 30000))
    only = set(args.only.split(","))  # the start path always runs: the others use its round

    began = time.perf_counter()
    tmp = Path(tempfile.mkdtemp(prefix="dmcflow-bench-"))
    url = f"sqlite:///{tmp / 'app.sqlite'}"
    upgrade(url)
    engine = make_engine(url)
    now = datetime.now(timezone.utc)
    add_round(engine, "bench", now, now, now + timedelta(days=2))
    codes = harness.seed(engine, schools=args.schools, areas=args.areas,
                         ready_round=None if args.national else "bench", approvers=args.approvals, now=now)
    figures: dict = {"schools": args.schools, "areas": args.areas,
                     "workflow_cache_size": Settings().workflow_cache_size}  # both workers: see bench/bare.py
    converter = bench_converter()  # before the processes start: they take the run's key from the environment
    async with harness.running(tmp, url) as stack:
        client = await Client.connect(stack.address, data_converter=converter)
        if args.national:
            print(f"national: start path and cutoff storm, {args.schools} schools …", flush=True)
            figures |= await national(client, stack, engine, args.schools, "bench-national", args.areas,
                                      args.lead_ms / 1000)
        else:
            print(f"start path, {args.schools} schools …", flush=True)
            figures |= await start_path(client, stack, engine, args.schools, "bench")
            print(json.dumps(figures), flush=True)  # each phase's figures as it ends
            if "approval" in only:
                print(f"approval path, {args.approvals} schools …", flush=True)
                figures |= await approval_path(client, stack, codes[:args.approvals], "bench", args.clients)
                print(json.dumps(figures), flush=True)
            if "memory" in only:
                print(f"worker memory, {args.schools} school workflows …", flush=True)
                figures |= await memory_per_workflow(client, stack, engine, args.schools, "bench-memory")
                print(json.dumps(figures), flush=True)
            if "storm" in only:
                print(f"reminder and cutoff storms, {args.schools} schools …", flush=True)
                figures |= await cutoff_storm(client, stack, engine, args.schools, "bench-storm",
                                              figures["start_round_settled_s"], figures["start_shaped_settled_s"],
                                              args.areas)
    if "others" in only and not args.skip_others:
        print("intake and import …", flush=True)
        intake = other_bench("bench.intake", "--messages", "200")  # SQLite, then PostgreSQL
        for database in intake["backends"]:  # from SMTP receipt until the last reply was sent
            figures[f"intake_per_s_{database}"] = intake[database]["receipt_to_sent_per_s"]
        imported = other_bench("bench.import_students", "--rows", "60000", "--schools", "70")  # SQLite, PostgreSQL
        for database in ("sqlite", "postgresql"):
            for label, key in (("first_csv", "import_first_s"), ("again_csv", "import_again_s")):
                if database in imported:
                    figures[f"{key}_{database}"] = imported[database][label]["seconds"]
        live = other_bench("bench.live_feed", "--ticks", "8")  # 1, 20 and 200 SSE watchers, one area then four
        figures |= {k: v for k, v in live.items() if k.startswith("live_")}
        dashboard = other_bench("bench.dashboard")  # 30,000 schools in 245 areas, 8 in flight; SQLite, PostgreSQL
        for database in dashboard["backends"]:
            for name in ("area_dashboard", "dashboard_page", "area_dashboard_first_look"):
                figures[f"{name}_p95_ms_{database}"] = dashboard[database][f"{name}_goal"]["p95_ms"]
    figures["bench_duration_s"] = round(time.perf_counter() - began)
    print(table(figures), flush=True)
    emit(figures, args.json)


if __name__ == "__main__":
    asyncio.run(main())
