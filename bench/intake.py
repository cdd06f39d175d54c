"""Email intake: messages per second from SMTP receipt to acknowledgement sent.

    python -m bench.intake --messages 200

The real path on one machine: aiosmtplib clients → the intake's SMTP listener (store raw first) →
InboundMessageWorkflow on a local Temporal dev server (SQLite file) → the reply through aiosmtplib to an
SMTP catcher. The clock stops when the last reply has been caught.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from datetime import datetime, timedelta, timezone
from email import message_from_bytes
from pathlib import Path

import aiosmtplib
from aiosmtpd.controller import Controller
from temporalio.client import Client

from bench.local_temporal import dev_server, free_port
from bench.report import emit
from bench.roster_export import rows, school_codes, to_csv
from db.directory import create_round, upsert_school
from db.engine import make_engine, session_scope
from db.migrate import upgrade
from db.models import Student
from dmcflow import round_ops
from dmcflow.settings import Settings
from bench.payload_keys import bench_converter
from domain.ids import national_id_check_digit
from domain.roster_file import parse_roster
from domain.rounds import RoundSpec
from intake.pipeline import Intake
from intake.smtp_listener import start_listener
from worker import build_worker

PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"
RELAY = "relay.bench.example"  # the mail comes vouched for by a trusted relay (dmarc=pass), as in production


class Replies:
    def __init__(self) -> None:
        self.count = 0

    async def handle_DATA(self, server, session, envelope):
        if message_from_bytes(envelope.content)["In-Reply-To"]:
            self.count += 1
        return "250 OK"


def message(n: int, old: str, sender: str) -> bytes:
    first12 = f"2{n:011d}"
    new = first12 + str(national_id_check_digit(first12))
    body = f"รหัสโรงเรียน: {school_codes(1)[0]}\nชื่อ-สกุล: นักเรียน {n}\nเลขเดิม: {old}\nเลขใหม่: {new}\nเหตุผล: ทดสอบ\n"
    from email.message import EmailMessage

    msg = EmailMessage()
    msg["Authentication-Results"] = f"{RELAY}; dmarc=pass header.from={sender.rsplit('@', 1)[1]}"
    msg["From"], msg["To"], msg["Subject"] = sender, "idfix@district.example", f"ขอแก้ไขเลข {n}"
    msg["Message-ID"] = f"<bench-{n}@mail.example>"
    msg.set_content(body)
    msg.add_attachment(PDF, maintype="application", subtype="pdf", filename="หลักฐาน.pdf")
    return msg.as_bytes()


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--messages", type=int, default=200)
    ap.add_argument("--clients", type=int, default=8)
    ap.add_argument("--json", default="bench/results/intake.json")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="dmcflow-intake-"))
    url = f"sqlite:///{tmp / 'app.sqlite'}"
    upgrade(url)
    engine = make_engine(url)
    sender = "dmc@bench.example"
    now = datetime.now(timezone.utc)
    with session_scope(engine) as s:
        upsert_school(s, school_codes(1)[0], "โรงเรียนทดสอบ", "สพม.มหาสารคาม", [sender])
        s.flush()
        create_round(s, RoundSpec(id="bench", academic_year=2566, opens_at=now - timedelta(minutes=1),
                                  confirm_from=now + timedelta(days=1), cutoff_at=now + timedelta(days=1, hours=8)))
        roster = parse_roster(to_csv(rows(args.messages, 1)))
        for r in roster.rows:
            s.add(Student(school_code=r.school_code, student_id=r.student_id, first_name=r.first_name,
                          last_name=r.last_name, grade=r.grade))
    olds = [r.student_id for r in roster.rows]
    catcher = Replies()
    catcher_port = free_port()
    catcher_ctl = Controller(catcher, hostname="127.0.0.1", port=catcher_port)
    catcher_ctl.start()
    async with dev_server(tmp) as (address, _):
        client = await Client.connect(address, data_converter=bench_converter())
        settings = Settings(database_url=url, temporal_address=address, task_queue="bench", smtp_port=catcher_port,
                            smtp_tls="off", intake_authserv_id=RELAY, intake_rate_per_sender=10**6,
                            intake_rate_per_client=10**6)
        async with build_worker(client, settings, engine=engine):
            operation, _ = await round_ops.start_round(engine, client, settings, "bench")
            await client.get_workflow_handle(operation).result()
            intake_port = free_port()
            listener = start_listener(Intake(engine, client, settings), "127.0.0.1", intake_port,
                                      settings.intake_max_bytes)
            messages = [message(n, old, sender) for n, old in enumerate(olds)]
            gate = asyncio.Semaphore(args.clients)

            async def send(raw: bytes) -> None:
                async with gate:
                    await aiosmtplib.send(raw, sender=sender, recipients=["idfix@district.example"],
                                          hostname="127.0.0.1", port=intake_port)

            t0 = time.perf_counter()
            await asyncio.gather(*(send(m) for m in messages))
            accepted = time.perf_counter() - t0
            while catcher.count < len(messages):
                await asyncio.sleep(0.05)
            replied = time.perf_counter() - t0
            listener.stop()
    catcher_ctl.stop()
    figures = {"messages": len(messages), "smtp_clients": args.clients,
               "all_stored_s": round(accepted, 2), "stored_per_s": round(len(messages) / accepted, 1),
               "all_replied_s": round(replied, 2), "receipt_to_reply_per_s": round(len(messages) / replied, 1)}
    emit(figures, args.json)


if __name__ == "__main__":
    asyncio.run(main())
