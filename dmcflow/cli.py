"""The `dmcflow` console command."""

from __future__ import annotations

import argparse
import asyncio
import logging
import mailbox
import os
import signal
import sys
from datetime import datetime
from email.header import decode_header, make_header
from email.utils import parsedate_to_datetime

from db.directory import create_round, create_user, round_spec
from db.engine import make_engine, session_scope
from db.migrate import upgrade
from db.models import Round
from dmcflow import demo_data, round_ops
from dmcflow.settings import get_settings
from dmcflow.temporal_client import connect
from domain.refusals import Refusal
from domain.rounds import SHIPPED_ROUNDS, RoundSpec
from domain.thai_time import parse_local


def _engine():
    settings = get_settings()
    upgrade(settings.database_url)
    return make_engine(settings.database_url)


def cmd_db_upgrade(_: argparse.Namespace) -> None:
    upgrade(get_settings().database_url)
    print("database at the latest migration")


def cmd_users_add(a: argparse.Namespace) -> None:
    with session_scope(_engine()) as s:
        user, token = create_user(s, role=a.role, display_name=a.name or a.role, email=a.email,
                                  school_code=a.school, area=a.area)
        print(f"user {user.id} ({user.role}) created; its bearer token:")
    print(token)  # the last line, for scripts


def cmd_demo_load(_: argparse.Namespace) -> None:
    for line in demo_data.load(_engine()):
        print(line)


def cmd_rounds_create(a: argparse.Namespace) -> None:
    if a.id in SHIPPED_ROUNDS and not a.cutoff:
        spec = SHIPPED_ROUNDS[a.id]
    else:
        if not (a.year and a.opens and a.confirm_from and a.cutoff):
            raise SystemExit("give --year --opens --confirm-from --cutoff (Thai local time), or a shipped round id: "
                             + ", ".join(SHIPPED_ROUNDS))
        spec = RoundSpec(id=a.id, academic_year=a.year, opens_at=parse_local(a.opens),
                         confirm_from=parse_local(a.confirm_from), cutoff_at=parse_local(a.cutoff))
    with session_scope(_engine()) as s:
        create_round(s, spec)
    print(f"round {spec.id}: " + ", ".join(f"{k} {v}" for k, v in spec.display().items()))


def cmd_rounds_show(a: argparse.Namespace) -> None:
    with session_scope(_engine()) as s:
        row = s.get(Round, a.id)
        if row is None:
            raise SystemExit(f"no round {a.id}")
        spec = round_spec(row)
    print(f"round {spec.id} (AY {spec.academic_year}): " + ", ".join(f"{k} {v}" for k, v in spec.display().items()))


async def _start(round_id: str, wait: bool) -> None:
    settings = get_settings()
    client = await connect(settings)
    operation, schools = await round_ops.start_round(_engine(), client, settings.ops_task_queue, round_id)
    print(f"starting {schools} schools of round {round_id}: operation {operation}")
    if wait:
        print(await client.get_workflow_handle(operation).result())


def cmd_rounds_start(a: argparse.Namespace) -> None:
    asyncio.run(_start(a.id, a.wait))


def cmd_mail_list(a: argparse.Namespace) -> None:
    path = get_settings().var_dir / "mail"
    for sub in ("cur", "new", "tmp"):
        (path / sub).mkdir(parents=True, exist_ok=True)
    box = mailbox.Maildir(str(path), create=False)
    messages = sorted(box, key=lambda m: parsedate_to_datetime(m["Date"]) if m["Date"] else datetime.min)
    for msg in messages[-a.last:]:
        subject = str(make_header(decode_header(msg.get("Subject", ""))))
        print(f"— {msg.get('Date')}  to {msg.get('To')}\n  {subject}")
        if a.body:
            part = next((p for p in msg.walk() if p.get_content_type() == "text/plain"), None)
            if part is not None:
                print("  " + part.get_payload(decode=True).decode(part.get_content_charset() or "utf-8")
                      .replace("\n", "\n  "))
    print(f"{len(messages)} message(s) in {get_settings().var_dir / 'mail'}")


def cmd_dev(a: argparse.Namespace) -> None:
    from dmcflow import local_stack

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    for noisy in ("mail.log", "alembic.runtime.migration"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    try:
        asyncio.run(local_stack.run(get_settings(), start_demo_round=not a.no_demo_round))
    except KeyboardInterrupt:
        pass
    # Everything is stopped; the SDK's runtime threads would still retry against the stopped server
    # and hold the interpreter open (temporalio/sdk-python#300), so leave at once.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


async def _intake() -> None:
    from intake.service import run_intake

    settings = get_settings()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await run_intake(_engine(), await connect(settings), settings, stop)


def cmd_intake(_: argparse.Namespace) -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    logging.getLogger("aioimaplib").setLevel(logging.INFO)  # its DEBUG log holds message content
    asyncio.run(_intake())
    sys.stdout.flush()
    os._exit(0)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="dmcflow", description="DMC round 3 on Temporal")
    sub = p.add_subparsers(dest="command", required=True)

    sub.add_parser("dev", help="run everything locally (Temporal dev server, worker, API, mail catcher, demo data)") \
        .add_argument("--no-demo-round", action="store_true", help="load demo data but do not start round `demo`")
    sub.add_parser("db", help="database").add_subparsers(dest="sub", required=True) \
        .add_parser("upgrade", help="apply Alembic migrations").set_defaults(fn=cmd_db_upgrade)

    users = sub.add_parser("users", help="users and tokens").add_subparsers(dest="sub", required=True)
    add = users.add_parser("add", help="create a user; prints the bearer token as the last line")
    add.add_argument("--role", required=True, choices=["staff", "director", "district", "admin"])
    add.add_argument("--school", help="school code (staff, director)")
    add.add_argument("--area", help="area name (district)")
    add.add_argument("--name")
    add.add_argument("--email")
    add.set_defaults(fn=cmd_users_add)

    sub.add_parser("demo", help="demo data").add_subparsers(dest="sub", required=True) \
        .add_parser("load", help="load the demo area, users and rounds (idempotent)").set_defaults(fn=cmd_demo_load)

    rounds = sub.add_parser("rounds", help="rounds").add_subparsers(dest="sub", required=True)
    create = rounds.add_parser("create", help="create a round (times in Thai local time)")
    create.add_argument("id")
    create.add_argument("--year", type=int)
    create.add_argument("--opens")
    create.add_argument("--confirm-from")
    create.add_argument("--cutoff")
    create.set_defaults(fn=cmd_rounds_create)
    show = rounds.add_parser("show", help="show a round's instants")
    show.add_argument("id")
    show.set_defaults(fn=cmd_rounds_show)
    start = rounds.add_parser("start", help="start every school's workflow of a round (idempotent)")
    start.add_argument("id")
    start.add_argument("--wait", action="store_true")
    start.set_defaults(fn=cmd_rounds_start)

    sub.add_parser("intake", help="run the ID-correction email intake: SMTP listener, and IMAP when configured") \
        .set_defaults(fn=cmd_intake)

    mail = sub.add_parser("mail", help="mail caught by the local stack").add_subparsers(dest="sub", required=True)
    lst = mail.add_parser("list", help="list caught mail")
    lst.add_argument("--last", type=int, default=20)
    lst.add_argument("--body", action="store_true")
    lst.set_defaults(fn=cmd_mail_list)
    return p


def main(argv: list[str] | None = None) -> None:
    args = parser().parse_args(argv)
    if args.command == "dev":
        cmd_dev(args)
        return
    try:
        args.fn(args)
    except Refusal as r:
        print(f"{r.message_th}\n{r.message_en}", file=sys.stderr)
        raise SystemExit(2) from None


if __name__ == "__main__":
    main()
