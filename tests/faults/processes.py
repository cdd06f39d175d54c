"""The processes a fault scenario hits: the worker, a Temporal dev server on its SQLite file, PostgreSQL."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from temporalio.client import Client

from dmcflow.local_stack import SQLITE_PRAGMAS, port_open, temporal_binary
from dmcflow.settings import Settings
from workflows import search_attributes as sa

ROOT = Path(__file__).resolve().parents[2]


class WorkerProcess:
    """`python worker.py` of this work tree, as deployed: killed and started again by the scenario."""

    def __init__(self, settings: Settings, address: str, log: Path) -> None:
        self.log = log
        self.env = {**os.environ, "PYTHONPATH": str(ROOT), "DMCFLOW_DATABASE_URL": settings.database_url,
                    "DMCFLOW_TEMPORAL_ADDRESS": address, "DMCFLOW_TASK_QUEUE": settings.task_queue,
                    "DMCFLOW_SMTP_HOST": settings.smtp_host, "DMCFLOW_SMTP_PORT": str(settings.smtp_port),
                    "DMCFLOW_SMTP_TLS": settings.smtp_tls,
                    "DMCFLOW_PUBLIC_URL": settings.public_url or ""}
        self.proc: subprocess.Popen | None = None
        self.starts = 0

    def start(self) -> None:
        self.proc = subprocess.Popen([sys.executable, "worker.py"], cwd=ROOT, env=self.env,
                                     stdout=self.log.open("ab"), stderr=subprocess.STDOUT)
        self.starts += 1

    def kill(self) -> None:
        """SIGKILL: no graceful shutdown, activities and workflow tasks die mid-flight."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait()

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.kill()


class DevServer:
    """`temporal server start-dev` on a SQLite file (WAL, as `dmcflow dev` runs it), restartable on the
    same file and port."""

    def __init__(self, workdir: Path, port: int) -> None:
        self.workdir, self.port = workdir, port
        self.proc: subprocess.Popen | None = None

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    async def start(self) -> float:
        """Answers the seconds until the server served (its port opens before its frontend is healthy)."""
        began = time.monotonic()
        cmd = [temporal_binary(), "server", "start-dev", "--headless", "--db-filename",
               str(self.workdir / "temporal.sqlite"), "--ip", "127.0.0.1", "--port", str(self.port),
               "--log-level", "error", *sa.dev_server_args(), *SQLITE_PRAGMAS]
        self.proc = subprocess.Popen(cmd, stdout=(self.workdir / "temporal.log").open("ab"),
                                     stderr=subprocess.STDOUT, start_new_session=True)
        while time.monotonic() - began < 60 and self.proc.poll() is None:
            if port_open("127.0.0.1", self.port):
                try:
                    client = await Client.connect(self.address)
                    await client.service_client.check_health()
                    return time.monotonic() - began
                except RuntimeError:
                    pass  # "Frontend is not healthy yet"
            await asyncio.sleep(0.2)
        raise RuntimeError(f"the dev server did not serve on {self.address}; see {self.workdir / 'temporal.log'}")

    async def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        os.killpg(self.proc.pid, sig)
        await asyncio.to_thread(self.proc.wait, 30)


class Postgres:
    """The PostgreSQL server scripts/test.sh started (its data directory and options exported), stopped
    and started again by the scenario."""

    ENV = ("DMCFLOW_TEST_POSTGRES_DATA", "DMCFLOW_TEST_POSTGRES_BIN", "DMCFLOW_TEST_POSTGRES_OPTIONS")

    def __init__(self) -> None:
        self.data, self.bin, self.options = (os.environ[k] for k in self.ENV)

    @classmethod
    def available(cls) -> bool:
        return all(os.environ.get(k, "").strip() for k in cls.ENV)

    def _pg_ctl(self, *args: str) -> None:
        cmd = [f"{self.bin}/pg_ctl", "-D", self.data, *args]
        if os.geteuid() == 0:  # the cluster belongs to 'postgres', as scripts/test.sh made it
            cmd = ["runuser", "-u", "postgres", "--", *cmd]
        subprocess.run(cmd, check=True, cwd="/tmp", stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=60)

    def stop(self, mode: str = "fast") -> None:
        """fast: open connections are cut (a crash for the clients); immediate: no shutdown checkpoint."""
        self._pg_ctl("-m", mode, "-w", "-t", "30", "stop")

    def start(self) -> None:
        self._pg_ctl("-l", f"{Path(self.data).parent}/server.log", "-w", "-t", "30", "-o", self.options, "start")

    def ensure_running(self) -> None:
        """Whatever happened to the test, the other PostgreSQL tests need the server."""
        try:
            self._pg_ctl("status")
        except subprocess.CalledProcessError:
            self.start()
