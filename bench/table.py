"""The table `python -m bench` prints: each figure, dmcflow beside bare Temporal, the ratio and its goal."""

from __future__ import annotations


def table(f: dict) -> str:
    rows = [
        # issue 18: to every school in the dashboard and get_school_round answering, vs N bare trivial starts
        ("start path (schools/s)", f.get("start_round_per_s"), f.get("start_bare_per_s"), f.get("start_ratio"), "≥ 5",
         lambda r: r >= 5),
        ("start path vs school-shaped", f.get("start_round_per_s"), f.get("start_shaped_per_s"),
         f.get("start_ratio_vs_shaped"), "(info)", lambda r: True),
        ("approval path (updates/s)", f.get("approval_api_updates_per_s"), f.get("approval_bare_updates_per_s"),
         f.get("approval_ratio"), "≥ 0.8", lambda r: r >= 0.8),
        ("approval server CPU ms/update", f.get("approval_cpu_ms_server_dmcflow"), f.get("approval_cpu_ms_server_bare"),
         f.get("approval_server_cpu_ratio"), "≤ 1.1", lambda r: r <= 1.1),
        # issue 18: bare = one timer and one activity per school (the same bare storm for both)
        ("reminder storm (s to outbox)", f.get("reminder_storm_dmcflow_s"), f.get("storm_bare_s"),
         f.get("reminder_storm_ratio"), "≤ 0.25", lambda r: r <= 0.25),
        ("cutoff storm (s, late+escal.)", f.get("storm_dmcflow_s"), f.get("storm_bare_s"), f.get("storm_ratio"),
         "≤ 0.25", lambda r: r <= 0.25),
        ("memory (KB/cached workflow)", f.get("memory_kb_per_workflow_dmcflow"), f.get("memory_kb_per_workflow_bare"),
         f.get("memory_ratio"), "≤ 80 KB",
         lambda r: f.get("memory_kb_per_workflow_dmcflow", 1e9) <= 80),
        # bench/live_feed.py: SQL statements per area per tick with 200 watchers (left) and 1 (right): 1 and equal
        ("live q/area/tick (200w vs 1w)", f.get("live_queries_per_area_tick_most"),
         f.get("live_queries_per_area_tick_fewest"), f.get("live_ratio_most_to_fewest"), "= 1",
         lambda r: r == 1 and f.get("live_queries_per_area_tick_most") == 1),
    ]
    lines = [f"{'figure':<30} {'dmcflow':>10} {'bare':>10} {'ratio':>7}  goal    met", "-" * 72]
    if f.get("national_bare_start_workflow"):
        lines.append(f"(national: the bare start path started {f['national_bare_start_workflow']} workflows, "
                     "whose storm it then measured)")
    for name, ours, theirs, ratio, goal, ok in rows:
        if ratio is None:
            continue
        lines.append(f"{name:<30} {ours:>10} {theirs:>10} {ratio:>7}  {goal:<7} {'yes' if ok(ratio) else 'NO'}")
    lines.append("-" * 72)
    lines.append("CPU per operation, ms (from /proc; the machine's other load does not inflate it)")
    for name, key in (("start: server", "start_cpu_ms_server"), ("start: all processes", "start_cpu_ms_total"),
                      ("approval: server", "approval_cpu_ms_server"), ("approval: all", "approval_cpu_ms_total"),
                      ("reminder storm: server", "reminder_storm_cpu_ms_server"),
                      ("reminder storm: all", "reminder_storm_cpu_ms_total"),
                      ("cutoff storm: server", "storm_cpu_ms_server"), ("cutoff storm: all", "storm_cpu_ms_total")):
        ours, theirs = f.get(f"{key}_dmcflow"), f.get(f"{key}_bare")
        if ours is not None and theirs:
            lines.append(f"  {name:<28} {ours:>10} {theirs:>10} {round(ours / theirs, 2):>7}  (dmcflow ÷ bare)")
    if f.get("approval_cpu_ms_api_dmcflow") is not None:
        lines.append(f"  approval, dmcflow's share: API {f['approval_cpu_ms_api_dmcflow']}, worker "
                     f"{f['approval_cpu_ms_worker_dmcflow']}, HTTP clients {f['approval_cpu_ms_client_dmcflow']} "
                     f"(bare: API {f.get('approval_cpu_ms_api_bare')}, worker {f['approval_cpu_ms_worker_bare']}, "
                     f"client {f['approval_cpu_ms_client_bare']})")
    lines.append("-" * 72)
    for key in ("approval_first_events_per_s", "worker_rss_mb_per_1000", "server_rss_mb_per_1000",
                "intake_acknowledged_per_s", "import_rows_per_s", "import_reimport_rows_per_s"):
        if f.get(key) is not None:
            lines.append(f"{key:<30} {f[key]:>10}")
    for database in ("sqlite", "postgresql"):  # a 60,000-row area export (bench/import_students.py)
        for key, goal in (("import_first_s", 10), ("import_again_s", 5)):
            if (seconds := f.get(f"{key}_{database}")) is not None:
                lines.append(f"{f'{key} ({database})':<30} {seconds:>10} {'':>10} {seconds / goal:>7.2f}  "
                             f"{f'< {goal} s':<7} {'yes' if seconds < goal else 'NO'}")
    for database in ("sqlite", "postgresql"):  # 200 messages of the samples' shapes (bench/intake.py)
        if (rate := f.get(f"intake_per_s_{database}")) is not None:
            lines.append(f"{f'intake msg/s ({database})':<30} {rate:>10} {'':>10} {rate / 50:>7.2f}  "
                         f"{'≥ 50':<7} {'yes' if rate >= 50 else 'NO'}")
    for database in ("sqlite", "postgresql"):  # 30,000 schools, 8 requests in flight (bench/dashboard.py)
        for name, label in (("area_dashboard", "area p95 ms"), ("dashboard_page", "page p95 ms"),
                            ("area_dashboard_first_look", "1st look p95")):
            if (p95 := f.get(f"{name}_p95_ms_{database}")) is not None:
                lines.append(f"{f'{label} ({database})':<30} {p95:>10} {'':>10} {p95 / 150:>7.2f}  "
                             f"{'< 150':<7} {'yes' if p95 < 150 else 'NO'}")
    return "\n".join(lines)
