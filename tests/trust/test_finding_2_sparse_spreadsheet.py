"""Issue 15, finding 2: a 1.5 KB XLSX with cells only at A1 and XFD1048576 made the roster reader allocate a
dense 512 GiB grid, and the API process aborted. Reachable by any staff token (`import_students`) and by
district officers (`import_affiliation_list`).

Now every uploaded spreadsheet is streamed within caps (domain/spreadsheet_stream.py): such files are a 413
with a code naming the limit, and the same server goes on to import a good file. The API runs here as a real
uvicorn process under a memory limit, so that on the old code the failure is a dead process (the test fails
on a dropped connection), never a machine out of memory.
"""

from __future__ import annotations

import asyncio
import os
import resource
import subprocess
import sys
from contextlib import asynccontextmanager
from datetime import datetime, timedelta, timezone
from pathlib import Path

import httpx
from sqlmodel import select

from db.engine import session_scope
from db.models import Student
from tests.conftest import free_port
from tests.handmade_xlsx import shared_strings_bomb, sparse_far_cell, table_workbook
from tests.stack import HEADER, SCHOOL, add_round, serving, unique_round

ROOT = Path(__file__).resolve().parents[2]
API_MEMORY = 2 * 1024**3  # address space of the API process: ample for it, nothing like 512 GiB
STUDENT = "1449900000042"
GOOD_TABLE = [HEADER.strip().split(","),
              [SCHOOL, "โรงเรียนตัวอย่างวิทยา", STUDENT, "ม.4", "1", "4", "ญ", "นางสาว", "กิตติพัฒน์",
               "บุญประเสริฐ", "05/05/2552", "ใช่"]]
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def _limit_memory() -> None:  # runs in the child between fork and exec
    resource.setrlimit(resource.RLIMIT_AS, (API_MEMORY, API_MEMORY))


@asynccontextmanager
async def api_process(settings, temporal_address: str, log: Path):
    """`uvicorn api.app:app_from_env --factory`, as deployed, on the test's database and Temporal."""
    port = free_port()
    env = {**os.environ, "PYTHONPATH": str(ROOT), "DMCFLOW_DATABASE_URL": settings.database_url,
           "DMCFLOW_TEMPORAL_ADDRESS": temporal_address, "DMCFLOW_TASK_QUEUE": settings.task_queue,
           "DMCFLOW_SMTP_HOST": settings.smtp_host, "DMCFLOW_SMTP_PORT": str(settings.smtp_port),
           "DMCFLOW_PUBLIC_URL": settings.public_url or ""}
    for name in ("smtp_tls", "session_cookie_secure"):
        if hasattr(settings, name):
            env[f"DMCFLOW_{name.upper()}"] = str(getattr(settings, name))
    proc = subprocess.Popen([sys.executable, "-m", "uvicorn", "api.app:app_from_env", "--factory", "--host",
                             "127.0.0.1", "--port", str(port), "--log-level", "warning"],
                            cwd=ROOT, env=env, stdout=log.open("ab"), stderr=subprocess.STDOUT,
                            preexec_fn=_limit_memory)
    base = f"http://127.0.0.1:{port}"
    try:
        async with httpx.AsyncClient(base_url=base, timeout=60) as http:
            for _ in range(300):
                assert proc.poll() is None, log.read_text()
                try:
                    if (await http.get("/health")).status_code < 500:
                        break
                except httpx.TransportError:
                    pass
                await asyncio.sleep(0.1)
            yield proc, http
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()


def assert_refused(r: httpx.Response, status: int, code: str, *words: str) -> None:
    assert r.status_code == status, r.text
    body = r.json()
    assert body["code"] == code, body
    assert body["message_th"] and body["message_en"] and body["message_th"] != body["message_en"]
    for word in words:  # the limit is named
        assert word in body["message_en"], body


async def test_hostile_workbooks_are_refused_and_the_same_server_imports_a_good_file(
        dev_env, engine, settings, tmp_path):
    async with serving(dev_env.client, engine, settings) as stack:  # the worker, and the seeded users
        now = datetime.now(timezone.utc)
        rid = unique_round()
        add_round(engine, rid, now - timedelta(minutes=1), now + timedelta(hours=2), now + timedelta(hours=8))
        await stack.start_round(rid)
        address = dev_env.client.service_client.config.target_host
        async with api_process(settings, address, tmp_path / "api.log") as (proc, http):
            uploads = ((f"/rounds/{rid}/students/import", "staff"), (f"/rounds/{rid}/affiliation-lists", "district"))
            hostile = [("sparse.xlsx", sparse_far_cell(), 413, "file_too_many_columns", ("64 columns", "XFD1048576")),
                       ("bomb.xlsx", shared_strings_bomb(), 413, "file_compression_ratio", ("200 times",))]
            assert len(hostile[0][1]) < 2048  # the finding's file: under 2 KB on the wire
            for name, data, status, code, words in hostile:
                for url, who in uploads:
                    r = await http.post(url, headers=stack.auth(who), data={"agency": "opec"},
                                        files={"file": (name, data, XLSX)})
                    assert_refused(r, status, code, *words)
            assert proc.poll() is None

            # the same process, a good workbook: one that declares the largest <dimension> a sheet can have,
            # which is read as the two rows it holds
            good = table_workbook(GOOD_TABLE, dimension="A1:XFD1048576")
            r = await http.post(f"/rounds/{rid}/students/import", headers=stack.auth("staff"),
                                files={"file": ("roster.xlsx", good, XLSX)})
            assert r.status_code == 200, r.text
            assert (r.json()["total_rows"], r.json()["applied"], r.json()["issues"]) == (1, 1, [])
            with session_scope(engine) as s:
                [student] = s.exec(select(Student).where(Student.student_id == STUDENT)).all()
                assert (student.school_code, student.grade) == (SCHOOL, "ม.4")
            listed = f"เลขประจำตัวประชาชน,ชื่อ\n{STUDENT},กิตติพัฒน์\n".encode()
            r = await http.post(f"/rounds/{rid}/affiliation-lists", headers=stack.auth("district"),
                                data={"agency": "opec"}, files={"file": ("list.csv", listed, "text/csv")})
            assert r.status_code == 200, r.text
            assert (r.json()["rows"], r.json()["matches"]) == (1, 1)
            assert proc.poll() is None
