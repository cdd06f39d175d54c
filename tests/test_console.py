"""The `dmcflow` console command and the local stack that `scripts/dev.sh` runs."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from api.app import create_app
from tests.conftest import free_port

ROOT = Path(__file__).resolve().parents[1]
DMCFLOW = [sys.executable, "-m", "dmcflow.cli"]


def run(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(DMCFLOW + args, cwd=ROOT, env={**os.environ, **env}, capture_output=True, text=True,
                          timeout=120)


def test_users_add_prints_a_working_token_last(tmp_path):
    # demo data goes only into dmcflow dev's own SQLite file (<var_dir>/dmcflow.sqlite)
    env = {"DMCFLOW_DATABASE_URL": f"sqlite:///{tmp_path / 'dmcflow.sqlite'}", "DMCFLOW_VAR_DIR": str(tmp_path)}
    assert run(["demo", "load"], env).returncode == 0
    done = run(["users", "add", "--role", "staff", "--school", "1044449001", "--name", "ครูใหม่"], env)
    assert done.returncode == 0, done.stderr
    token = done.stdout.strip().splitlines()[-1]
    assert len(token) >= 24 and " " not in token
    refused = run(["users", "add", "--role", "staff", "--school", "0000000000"], env)
    assert refused.returncode == 2 and "โรงเรียน" in refused.stderr and "school" in refused.stderr

    from db.directory import user_by_token
    from db.engine import make_engine, session_scope

    with session_scope(make_engine(env["DMCFLOW_DATABASE_URL"])) as s:
        user = user_by_token(s, token)
        assert user.role == "staff" and user.school_code == "1044449001" and user.display_name == "ครูใหม่"


def test_rounds_create_show_the_letters_dates(tmp_path):
    env = {"DMCFLOW_DATABASE_URL": f"sqlite:///{tmp_path / 'app.sqlite'}"}
    done = run(["rounds", "create", "2566-3"], env)
    assert done.returncode == 0, done.stderr
    assert "30 เม.ย. 2567 08.30 น." in done.stdout and "30 เม.ย. 2567 16.30 น." in done.stdout
    done = run(["rounds", "create", "2567-1", "--year", "2567", "--opens", "2567-05-16T00:00",
                "--confirm-from", "2567-06-10T08:30", "--cutoff", "2567-06-10T16:30"], env)
    assert done.returncode == 0 and "10 มิ.ย. 2567 16.30 น." in done.stdout, done.stderr
    assert "final_exam_on 16 พ.ค. 2567" in done.stdout  # not given: the opening day
    assert run(["rounds", "create", "2566-3"], env).returncode == 2  # exists: a refusal, not a traceback
    assert "final_exam_on 29 มี.ค. 2567" in run(["rounds", "show", "2566-3"], env).stdout  # R7's boundary
    window = ["--year", "2567", "--opens", "2567-05-16T00:00", "--confirm-from", "2567-06-10T08:30",
              "--cutoff", "2567-06-10T16:30"]
    done = run(["rounds", "create", "2567-2", *window, "--final-exam-on", "2567-06-01"], env)
    assert done.returncode == 0 and "final_exam_on 1 มิ.ย. 2567" in done.stdout, done.stderr
    done = run(["rounds", "create", "2567-3", *window, "--final-exam-on", "2567-06-11"], env)  # after the cutoff
    assert done.returncode == 1 and "final_exam_on" in done.stderr and "Traceback" not in done.stderr


def test_openapi_carries_the_operation_ids():
    spec = create_app().openapi()
    ids = {op["operationId"] for path in spec["paths"].values() for op in path.values()}
    assert {"health", "upsert_school", "create_round", "start_round", "import_students", "record_end_of_year",
            "get_school_round", "confirm_school_round", "withdraw_confirmation", "certify_school_round",
            "extend_deadline", "area_dashboard", "round_overview", "export_area_report", "school_evidence_pack",
            "school_timeline", "area_dashboard_events", "dashboard_page", "dashboard_login"} <= ids


@pytest.mark.slow
def test_dev_stack_boots_serves_the_demo_and_stops(tmp_path):
    """What `scripts/dev.sh` runs, on free ports in a temp dir: health, the demo school, Ctrl-C."""
    api, temporal, smtp, ui = free_port(), free_port(), free_port(), free_port()
    env = {**os.environ, "DMCFLOW_VAR_DIR": str(tmp_path / "var"),
           "DMCFLOW_DATABASE_URL": f"sqlite:///{tmp_path / 'var' / 'dmcflow.sqlite'}",
           "DMCFLOW_API_PORT": str(api), "DMCFLOW_TEMPORAL_ADDRESS": f"127.0.0.1:{temporal}",
           "DMCFLOW_SMTP_PORT": str(smtp), "DMCFLOW_TEMPORAL_UI_PORT": str(ui),
           "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
    proc = subprocess.Popen(DMCFLOW + ["dev"], cwd=tmp_path, env=env, stdout=(tmp_path / "dev.log").open("w"),
                            stderr=subprocess.STDOUT)
    open_streams = contextlib.ExitStack()
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                health = httpx.get(f"http://127.0.0.1:{api}/health", timeout=2)
                if health.status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert proc.poll() is None and time.monotonic() < deadline, (tmp_path / "dev.log").read_text()
            time.sleep(0.3)
        assert health.json() == {"status": "ok", "database": "ok", "temporal": "ok"}
        for _ in range(100):  # the demo round's fan-out starts the schools within moments
            school = httpx.get(f"http://127.0.0.1:{api}/rounds/demo/schools/1044449001",
                               headers={"Authorization": "Bearer demo-staff"}, timeout=5)
            if school.status_code == 200:
                break
            time.sleep(0.2)
        assert school.status_code == 200, school.text
        assert school.json()["stage"] == "open" and school.json()["gate"]["students"] == 7
        assert school.json()["cutoff_at"]["th"].endswith("16.30 น.")
        assert (tmp_path / "var" / "temporal.sqlite").exists()
        assert all((tmp_path / "var" / "mail" / sub).is_dir() for sub in ("cur", "new", "tmp"))  # takes mail
        # the district's dashboard, logged in with the demo token, and its live feed left open
        web = httpx.Client(base_url=f"http://127.0.0.1:{api}", timeout=10)
        login = web.post("/dashboard/login", data={"token": "demo-district"})
        assert login.status_code == 303, login.text
        page = web.get("/dashboard?round=demo")
        assert page.status_code == 200 and "สพม.มหาสารคาม" in page.text and 'id="initial-data"' in page.text
        feed = open_streams.enter_context(web.stream("GET", "/rounds/demo/areas/สพม.มหาสารคาม/events"))
        assert next(line for line in feed.iter_lines() if line.startswith("data: "))
    finally:
        proc.send_signal(signal.SIGINT)  # stops even with a dashboard's feed open
        code = proc.wait(timeout=60)
        open_streams.close()
    assert code == 0, (tmp_path / "dev.log").read_text()[-3000:]
