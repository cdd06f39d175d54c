"""The processes a benchmark runs against, as in a deployment: a Temporal dev server on its SQLite file,
the dmcflow worker and API each in their own process, the bare worker in its own, and an SMTP sink.

Separate processes make the RSS figures each process's own, and give dmcflow and bare Temporal the same
footing: one worker process each, the same worker options.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from aiosmtpd.controller import Controller
from sqlalchemy import insert

from bench.local_temporal import dev_server, free_port
from db.directory import create_user
from db.engine import session_scope
from db.models import Area, EndOfYearRecord, School, Student
from dmcflow.local_stack import port_open

ROOT = Path(__file__).resolve().parent.parent


def rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as f:
        return int(f.read().split("VmRSS:")[1].split()[0]) / 1024


def cpu_s(pid: int) -> float:
    """User + system CPU seconds a process has used: a cost that the machine's other load does not inflate."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def self_cpu_s() -> float:
    t = os.times()
    return t.user + t.system


class _Sink:
    async def handle_DATA(self, server, session, envelope):  # noqa: N802  aiosmtpd's hook name
        return "250 OK"


@dataclass
class Stack:
    address: str
    api: str
    server_pid: int
    worker_pid: int
    bare_pid: int
    api_pid: int
    env: dict
    bare_api: str = ""  # the bare side's HTTP front (bench/bare.py `bare_api`)
    bare_api_pid: int = 0
    task_queue: str = "dmcflow"
    bare_queue: str = "bench-bare"

    def cpu(self) -> dict[str, float]:
        return {"server": cpu_s(self.server_pid), "worker": cpu_s(self.worker_pid), "bare": cpu_s(self.bare_pid),
                "api": cpu_s(self.api_pid), "bare_api": cpu_s(self.bare_api_pid) if self.bare_api_pid else 0.0,
                "client": self_cpu_s()}

    async def settle(self, idle_cores: float = 0.1, timeout: float = 3600) -> float:
        """Wait until the server and both workers are idle (each under `idle_cores` for two seconds running):
        a phase's backlog (first workflow tasks still queued after the starts returned) must neither run
        into the next phase's figures nor escape its own. Answers the seconds waited. The timeout only
        catches a stack that never rests: 30,000 school workflows took more than 15 minutes to settle."""
        began = last = asyncio.get_running_loop().time()
        before, quiet = self.cpu(), 0
        while quiet < 2:
            await asyncio.sleep(1)
            now, after = asyncio.get_running_loop().time(), self.cpu()
            busy = max((after[p] - before[p]) / (now - last) for p in ("server", "worker", "bare"))
            quiet = quiet + 1 if busy < idle_cores else 0
            before, last = after, now
            if now - began > timeout:
                raise TimeoutError(f"the stack stayed busy for {timeout:.0f} s")
        return round(last - began - 2, 1)


def cpu_ms_per(before: dict[str, float], after: dict[str, float], n: int, *parts: str) -> float:
    return round(sum(after[p] - before[p] for p in parts) / n * 1000, 2)


def die_with_parent() -> None:
    """In the child: SIGKILL when the benchmark dies, however it dies (a timeout's SIGTERM skips cleanup)."""
    import ctypes

    ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


def _spawn(args: list[str], env: dict, log: Path) -> subprocess.Popen:
    return subprocess.Popen(args, cwd=ROOT, env=env, stdout=open(log, "ab"), stderr=subprocess.STDOUT,
                            start_new_session=True, preexec_fn=die_with_parent)


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)


@asynccontextmanager
async def running(workdir: Path, database_url: str):
    async with AsyncExitStack() as stack:
        sink = Controller(_Sink(), hostname="127.0.0.1", port=free_port())
        sink.start()
        stack.callback(sink.stop)
        address, server_pid = await stack.enter_async_context(dev_server(workdir))
        api_port = free_port()
        env = {**os.environ, "DMCFLOW_DATABASE_URL": database_url, "DMCFLOW_TEMPORAL_ADDRESS": address,
               "DMCFLOW_SMTP_HOST": "127.0.0.1", "DMCFLOW_SMTP_PORT": str(sink.port), "DMCFLOW_SMTP_TLS": "off",
               "DMCFLOW_API_PORT": str(api_port), "PYTHONPATH": str(ROOT)}
        worker = _spawn([sys.executable, "worker.py"], env, workdir / "worker.log")
        stack.callback(_stop, worker)
        bare = _spawn([sys.executable, "-m", "bench.bare", "--address", address], env, workdir / "bare.log")
        stack.callback(_stop, bare)
        api = _spawn([sys.executable, "-m", "uvicorn", "api.app:app_from_env", "--factory", "--host", "127.0.0.1",
                      "--port", str(api_port), "--log-level", "warning", "--no-access-log"], env, workdir / "api.log")
        stack.callback(_stop, api)
        bare_api_port = free_port()  # the bare side's HTTP front: the same uvicorn, a route calling execute_update
        bare_api = _spawn([sys.executable, "-m", "uvicorn", "bench.bare:bare_api", "--factory", "--host", "127.0.0.1",
                           "--port", str(bare_api_port), "--log-level", "warning", "--no-access-log"], env,
                          workdir / "bare_api.log")
        stack.callback(_stop, bare_api)
        for port in (api_port, bare_api_port):
            for _ in range(300):
                if port_open("127.0.0.1", port):
                    break
                await asyncio.sleep(0.1)
        await asyncio.sleep(2)  # the workers' pollers
        yield Stack(address=address, api=f"http://127.0.0.1:{api_port}", server_pid=server_pid, worker_pid=worker.pid,
                    bare_pid=bare.pid, api_pid=api.pid, env=env, bare_api=f"http://127.0.0.1:{bare_api_port}",
                    bare_api_pid=bare_api.pid)


def seed(engine, *, schools: int, areas: int, ready_round: str | None, approvers: int, now: datetime) -> list[str]:
    """Schools in areas, one promoted student each with menu 3.2.2 done for `ready_round` (every gate
    complete); a staff and a director user with the tokens s-{code} and d-{code} for the first `approvers`."""
    codes = [f"{1000000000 + i}" for i in range(schools)]
    with session_scope(engine) as s:
        s.execute(insert(Area), [{"name": f"area-{a:03d}"} for a in range(areas)])
        s.execute(insert(School), [{"code": c, "name": f"school {c}", "area": f"area-{i % areas:03d}", "updated_at": now}
                                   for i, c in enumerate(codes)])
        s.execute(insert(Student), [{"school_code": c, "student_id": f"9{c}00", "first_name": "x", "last_name": "y",
                                     "grade": "ม.1", "sat_final_exam": True, "status": "studying", "updated_at": now,
                                     "student_no": "", "prefix": "", "gender": "", "classroom": ""} for c in codes])
    if ready_round:
        with session_scope(engine) as s:
            pks = [pk for (pk,) in s.execute(Student.__table__.select().with_only_columns(Student.id))]
            s.execute(insert(EndOfYearRecord), [{"round_id": ready_round, "student_pk": pk, "result": "promoted",
                                                 "years_studied": 1, "updated_by": "bench", "updated_at": now}
                                                for pk in pks])
    with session_scope(engine) as s:
        for c in codes[:approvers]:
            create_user(s, role="staff", display_name=f"staff {c}", school_code=c, token=f"s-{c}")
            create_user(s, role="director", display_name=f"director {c}", school_code=c, token=f"d-{c}")
        create_user(s, role="admin", display_name="bench admin", token="bench-admin")
    return codes
