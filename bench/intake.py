"""Email intake: messages per second from SMTP receipt to the reply, on SQLite and on PostgreSQL.

    python -m bench.intake --messages 200            # both databases, one after the other
    python -m bench.intake --backends sqlite         # one only; --postgres-url to use a running server

The real path, in the processes of a deployment: aiosmtplib clients (the district's relay, in this
process) → the intake's own process (its SMTP listener and door: relay or DKIM authentication,
registration, rates; the raw message stored; the hash signalled) → InboundIntakeWorkflow on a local
Temporal dev server (SQLite file) and two worker processes (`worker.py`, compose's replicas) → the reply in the outbox →
sent through aiosmtplib to an SMTP catcher (in this process). The messages are the shared samples'
shapes (shared/samples/emails: UTF-8 base64, TIS-620 8bit, Thai digits, two requests, a refused check
digit), each with its own IDs and Message-ID; every other one is DKIM-signed (the intake verifies it
against a local key table, as the tests' resolver answers), the others carry the trusted relay's
dmarc=pass. PostgreSQL is a private server at its default durability (bench/local_postgres.py) unless
--postgres-url names one.

Figures per database: all messages stored (SMTP 250) per second; from the first receipt until the last
reply is in the outbox, and until the last reply was caught (sent), messages per second against the goal
(≥ 50); each message's receipt-to-outbox latency (p50, p95, from the database's own timestamps); CPU
per message of each process (from /proc: the Temporal server, the workers, the intake, this process's
relay clients and catcher, PostgreSQL's), which the machine's other load inflates far less than the
rates; the load average before and after.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import logging
import os
import re
import sys
import tempfile
import time
from contextlib import AsyncExitStack, ExitStack
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from email import message_from_bytes
from pathlib import Path

import aiosmtplib
import dkim
from aiosmtpd.controller import Controller
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from sqlmodel import select
from temporalio.client import Client

from bench import harness
from bench.harness import cpu_s, self_cpu_s
from bench.local_temporal import dev_server, free_port
from bench.payload_keys import bench_converter
from bench.report import emit
from db.directory import create_round, upsert_school
from db.engine import make_engine, session_scope
from db.migrate import upgrade
from db.models import InboundMessage, OutboxMail, Student
from dmcflow import round_ops
from dmcflow.local_stack import port_open
from dmcflow.settings import Settings, get_settings
from dmcflow.temporal_client import connect
from domain.ids import national_id_check_digit
from domain.rounds import RoundSpec
from intake.pipeline import Intake
from intake.smtp_listener import start_listener

GOAL_PER_S = 50.0
RELAY = "relay.bench.example"  # the district's relay, trusted for its dmarc=pass (DMCFLOW_INTAKE_AUTHSERV_ID)
SELECTOR = "bench"
SCHOOL, SENDER, AREA = "1044449001", "dmc@tuayang.ac.th", "สพม.มหาสารคาม"  # the samples' school and sender
THAI_DIGITS = str.maketrans("0123456789", "๐๑๒๓๔๕๖๗๘๙")
NID = re.compile(r"[0-9๐-๙]{13}")
CODECS = {"tis-620": "cp874", "windows-874": "cp874"}


def find_samples() -> Path:
    for parent in Path(__file__).resolve().parents:
        candidate = parent / "shared" / "samples" / "emails"
        if (candidate / "expected.json").is_file():
            return candidate
    raise SystemExit("shared/samples/emails not found beside the work tree")


def nid(first12: str) -> str:
    return first12 + str(national_id_check_digit(first12))


@dataclass
class Shape:
    """One sample: its bytes, and where its text part's payload is (the rest is kept byte for byte)."""

    name: str
    raw: bytes
    start: int
    end: int
    charset: str
    base64: bool

    @classmethod
    def read(cls, path: Path) -> "Shape":
        raw = path.read_bytes()
        part = next(p for p in message_from_bytes(raw).walk() if p.get_content_type() == "text/plain")
        head = re.search(rb"(?im)^content-type:[ \t]*text/plain", raw).start()
        start = re.compile(rb"\r?\n\r?\n").search(raw, head).end()
        end = raw.index(b"\n--", start) + 1
        return cls(path.name, raw, start, end, part.get_content_charset(),
                   part["Content-Transfer-Encoding"].lower() == "base64")

    def text(self) -> str:
        body = self.raw[self.start:self.end]
        return (base64.b64decode(body) if self.base64 else body).decode(CODECS.get(self.charset, self.charset))

    def message(self, n: int, ids: list[str]) -> bytes:
        """This shape with the national IDs (old, new, old, new ...) and the Message-ID of message n."""
        found = iter(ids)
        text = NID.sub(lambda m: next(found).translate(THAI_DIGITS) if m.group()[0] in "๐๑๒๓๔๕๖๗๘๙"
                       else next(found), self.text())
        data = text.encode(CODECS.get(self.charset, self.charset))
        body = base64.encodebytes(data) if self.base64 else data
        raw = self.raw[:self.start] + body + self.raw[self.end:]
        return re.sub(rb"Message-ID: <[^>]+>", f"Message-ID: <bench-{n}@mail.example>".encode(), raw, count=1)

    def requests(self) -> list[tuple[str, str]]:
        found = [m.translate(str.maketrans("๐๑๒๓๔๕๖๗๘๙", "0123456789")) for m in NID.findall(self.text())]
        return list(zip(found[::2], found[1::2], strict=True))


def messages(count: int, key: rsa.RSAPrivateKey) -> tuple[list[bytes], list[str], list[str]]:
    """(the messages, every old ID to put on the roster, the shapes' names in order)."""
    shapes = [Shape.read(p) for p in sorted(find_samples().glob("*.eml"))]
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
                            serialization.NoEncryption())
    out, olds, names, serial = [], [], [], 0
    for n in range(count):
        shape = shapes[n % len(shapes)]
        ids = []
        for _, new in shape.requests():
            serial += 1
            old, fresh = nid(f"14499{serial:07d}"), nid(f"24499{serial:07d}")
            if new[12] != str(national_id_check_digit(new[:12])):  # the sample's refused check digit, kept wrong
                fresh = fresh[:12] + str((int(fresh[12]) + 1) % 10)
            ids += [old, fresh]
            olds.append(old)
        raw = shape.message(n, ids)
        if n % 2:
            raw = dkim.sign(raw, SELECTOR.encode(), SENDER.split("@")[1].encode(), pem, linesep=b"\n",
                            include_headers=[b"from", b"to", b"subject", b"date", b"message-id", b"mime-version",
                                             b"content-type"]) + raw
        else:
            raw = f"Authentication-Results: {RELAY}; dmarc=pass header.from=tuayang.ac.th\n".encode() + raw
        out.append(raw)
        names.append(shape.name)
    return out, olds, names


def dkim_record(key: rsa.RSAPrivateKey) -> bytes:
    der = key.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return b"v=DKIM1; k=rsa; p=" + base64.b64encode(der)


class Replies:
    """The SMTP server the replies go to: counts them, and notes when the last one came."""

    def __init__(self) -> None:
        self.count, self.last = 0, 0.0

    async def handle_DATA(self, server, session, envelope):  # noqa: N802  aiosmtpd's hook name
        if b"\nIn-Reply-To:" in envelope.content or envelope.content.startswith(b"In-Reply-To:"):
            self.count += 1
            self.last = time.perf_counter()
        return "250 OK"


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(p * len(ordered)))] if ordered else 0.0


async def one_backend(backend: str, url: str, pg_pid: int | None, raws: list[bytes], olds: list[str],
                      record: Path, clients: int, worker_count: int) -> dict:
    upgrade(url)
    engine = make_engine(url)
    now = datetime.now(timezone.utc)
    with session_scope(engine) as s:
        upsert_school(s, SCHOOL, "โรงเรียนตัวอย่างวิทยา", AREA, [SENDER])
        s.flush()
        create_round(s, RoundSpec(id="bench", academic_year=2566, opens_at=now - timedelta(minutes=1),
                                  confirm_from=now + timedelta(days=1), cutoff_at=now + timedelta(days=1, hours=8)))
        for n, old in enumerate(olds):
            s.add(Student(school_code=SCHOOL, student_id=old, first_name=f"นักเรียน{n}", last_name="ทดสอบ", grade="ม.3"))
    catcher = Replies()
    catcher_ctl = Controller(catcher, hostname="127.0.0.1", port=free_port())
    catcher_ctl.start()
    tmp = Path(tempfile.mkdtemp(prefix="dmcflow-intake-"))
    try:
        async with AsyncExitStack() as stack:
            address, server_pid = await stack.enter_async_context(dev_server(tmp))
            settings = Settings(task_queue=f"bench-{backend}")
            port = free_port()
            env = {**os.environ, "PYTHONPATH": str(harness.ROOT), "DMCFLOW_DATABASE_URL": url,
                   "DMCFLOW_TEMPORAL_ADDRESS": address, "DMCFLOW_TASK_QUEUE": settings.task_queue,
                   "DMCFLOW_SMTP_HOST": "127.0.0.1", "DMCFLOW_SMTP_PORT": str(catcher_ctl.port),
                   "DMCFLOW_SMTP_TLS": "off", "DMCFLOW_INTAKE_SMTP_HOST": "127.0.0.1",
                   "DMCFLOW_INTAKE_SMTP_PORT": str(port), "DMCFLOW_INTAKE_AUTHSERV_ID": RELAY,
                   "DMCFLOW_INTAKE_RATE_PER_SENDER": "1000000", "DMCFLOW_INTAKE_RATE_PER_CLIENT": "1000000"}
            # as deployed: the workers and the intake each in their own process (compose's services)
            workers = [harness._spawn([sys.executable, "worker.py"], env, tmp / f"worker-{i}.log")
                       for i in range(worker_count)]
            for worker in workers:
                stack.callback(harness._stop, worker)
            intake = harness._spawn([sys.executable, "-m", "bench.intake", "--serve", str(record)], env,
                                    tmp / "intake.log")
            stack.callback(harness._stop, intake)
            client = await Client.connect(address, data_converter=bench_converter())
            operation, _ = await round_ops.start_round(engine, client, settings, "bench")
            await client.get_workflow_handle(operation).result()
            for _ in range(300):
                if port_open("127.0.0.1", port):
                    break
                await asyncio.sleep(0.1)
            gate = asyncio.Semaphore(clients)

            async def send(raw: bytes) -> None:
                async with gate:
                    await aiosmtplib.send(raw, sender=SENDER, recipients=["idfix@district.example"],
                                          hostname="127.0.0.1", port=port)

            def cpu() -> dict[str, float]:
                return {"temporal": cpu_s(server_pid), "workers": sum(cpu_s(w.pid) for w in workers),
                        "intake": cpu_s(intake.pid),
                        "relay_and_catcher": self_cpu_s(), "postgresql": pg_cpu(pg_pid)}

            cpu0 = cpu()
            began, t0 = datetime.now(timezone.utc), time.perf_counter()
            await asyncio.gather(*(send(m) for m in raws))
            stored = time.perf_counter() - t0
            while catcher.count < len(raws):
                await asyncio.sleep(0.02)
            sent = catcher.last - t0
            cpu1 = cpu()
    finally:
        catcher_ctl.stop()
    with session_scope(engine) as s:
        received = dict(s.exec(select(InboundMessage.sha256, InboundMessage.received_at)).all())
        replies = s.exec(select(OutboxMail.key, OutboxMail.created_at).where(
            OutboxMail.kind == "id_correction_reply")).all()
        not_processed = sum(1 for status in s.exec(select(InboundMessage.status)).all() if status != "processed")
    engine.dispose()
    assert len(replies) == len(raws), f"{len(replies)} replies in the outbox for {len(raws)} messages"
    latency = [(at - received[key.removeprefix("reply/")]).total_seconds() * 1000 for key, at in replies]
    in_outbox = (max(at for _, at in replies) - began).total_seconds()
    n = len(raws)
    return {
        "all_stored_s": round(stored, 2), "stored_per_s": round(n / stored, 1),
        "receipt_to_outbox_s": round(in_outbox, 2), "receipt_to_outbox_per_s": round(n / in_outbox, 1),
        "receipt_to_outbox_ratio": round(n / in_outbox / GOAL_PER_S, 2),
        "receipt_to_sent_s": round(sent, 2), "receipt_to_sent_per_s": round(n / sent, 1),
        "receipt_to_sent_ratio": round(n / sent / GOAL_PER_S, 2),
        "outbox_latency_ms_p50": round(percentile(latency, 0.5)), "outbox_latency_ms_p95": round(percentile(latency, 0.95)),
        "cpu_ms_per_message": {k: round((cpu1[k] - cpu0[k]) * 1000 / n, 1) for k in cpu0 if k != "postgresql" or pg_pid},
        "messages_not_processed": not_processed,
    }


async def serve(record: Path) -> None:
    """The intake's process (`dmcflow intake` without IMAP), its DKIM keys from a local table as in the tests."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    settings = get_settings()
    key = record.read_bytes()
    intake = Intake(make_engine(settings.database_url), await connect(settings), settings,
                    dnsfunc=lambda name, timeout=5: key if name.startswith(f"{SELECTOR}._domainkey.".encode()) else None)
    start_listener(intake, settings.intake_smtp_host, settings.intake_smtp_port, settings.intake_max_bytes)
    await asyncio.Event().wait()


def pg_cpu(pid: int | None) -> float:
    if pid is None:
        return 0.0
    from bench.local_postgres import server_cpu_s

    return server_cpu_s(pid)


def table(figures: dict) -> str:
    lines = [f"email intake: {figures['messages']} messages of the samples' shapes, {figures['smtp_clients']} SMTP "
             f"clients, {figures['workers']} workers; goal ≥ {GOAL_PER_S:g} messages/s from SMTP receipt to the reply",
             f"{'database':<11} {'stored/s':>8} {'→outbox/s':>9} {'ratio':>6} {'→sent/s':>8} {'ratio':>6} "
             f"{'p50 ms':>7} {'p95 ms':>7}  met   CPU ms/message"]
    for backend in figures["backends"]:
        f = figures[backend]
        met = "yes" if f["receipt_to_outbox_ratio"] >= 1 and f["receipt_to_sent_ratio"] >= 1 else "NO"
        cpu = ", ".join(f"{k} {v}" for k, v in f["cpu_ms_per_message"].items())
        lines.append(f"{backend:<11} {f['stored_per_s']:>8} {f['receipt_to_outbox_per_s']:>9} "
                     f"{f['receipt_to_outbox_ratio']:>6} {f['receipt_to_sent_per_s']:>8} {f['receipt_to_sent_ratio']:>6} "
                     f"{f['outbox_latency_ms_p50']:>7} {f['outbox_latency_ms_p95']:>7}  {met:<5} {cpu}")
    lines.append(f"load average (1 min) before and after: {figures['load_average']}")
    return "\n".join(lines)


async def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--messages", type=int, default=200)
    ap.add_argument("--clients", type=int, default=8, help="SMTP connections at once (the relay's)")
    ap.add_argument("--workers", type=int, default=2, help="worker processes (docker-compose.yml: replicas 2)")
    ap.add_argument("--backends", default="sqlite,postgresql")
    ap.add_argument("--postgres-url", default=os.environ.get("DMCFLOW_BENCH_POSTGRES_URL"),
                    help="an empty PostgreSQL database to use instead of a private server")
    ap.add_argument("--json", default="bench/results/intake.json")
    ap.add_argument("--serve", type=Path, help=argparse.SUPPRESS)  # the intake's own process (a DKIM record file)
    args = ap.parse_args()
    if args.serve:
        return await serve(args.serve)
    load_before = round(os.getloadavg()[0], 1)
    bench_converter()  # the run's payload key, in the environment of the processes it starts
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    raws, olds, names = messages(args.messages, key)
    record = Path(tempfile.mkdtemp(prefix="dmcflow-intake-")) / "dkim.txt"
    record.write_bytes(dkim_record(key))
    figures: dict = {"messages": len(raws), "smtp_clients": args.clients, "workers": args.workers,
                     "goal_per_s": GOAL_PER_S,
                     "shapes": {name: names.count(name) for name in sorted(set(names))},
                     "backends": args.backends.split(",")}
    for backend in figures["backends"]:
        with ExitStack() as stack:
            if backend == "sqlite":
                url, pid = f"sqlite:///{Path(tempfile.mkdtemp(prefix='dmcflow-intake-')) / 'app.sqlite'}", None
            elif args.postgres_url:
                url, pid = args.postgres_url, None
            else:
                from bench.local_postgres import private_server

                url, pid = stack.enter_context(private_server())
            print(f"{backend}: {len(raws)} messages …", flush=True)
            figures[backend] = await one_backend(backend, url, pid, raws, olds, record, args.clients, args.workers)
            print(json.dumps(figures[backend]), flush=True)
    figures["load_average"] = [load_before, round(os.getloadavg()[0], 1)]
    print(table(figures), flush=True)
    emit(figures, args.json)


if __name__ == "__main__":
    asyncio.run(main())
