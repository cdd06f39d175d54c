"""The `dmcflow` console command."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import sys
from datetime import date

from db.directory import create_round, create_user, disable_user, list_users, rotate_token, round_spec
from db.engine import make_engine, session_scope
from db.migrate import upgrade
from db.models import Round
from dmcflow import demo_data, round_ops
from dmcflow.payload_codec import PayloadKeysError, new_key, new_key_id
from dmcflow.settings import get_settings
from dmcflow.temporal_client import connect
from domain.refusals import Refusal
from domain.rounds import SHIPPED_ROUNDS, RoundSpec
from domain.thai_time import BE_OFFSET, parse_local


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
                                  school_code=a.school, area=a.area,
                                  lifetime_days=a.days or get_settings().token_lifetime_days)
        print(f"user {user.id} ({user.role}) created; its bearer token, "
              f"valid until {user.token_expires_at:%Y-%m-%d %H:%M} UTC:")
    print(token)  # the last line, for scripts


def _exam_day(value: str) -> date:
    """A day as --opens takes it: ISO, in the Buddhist or the Christian era (2567-03-29 or 2024-03-29)."""
    try:
        day = date.fromisoformat(value.strip())
    except ValueError:
        raise argparse.ArgumentTypeError("a date YYYY-MM-DD, e.g. 2567-03-29") from None
    return day.replace(year=day.year - BE_OFFSET) if day.year > 2400 else day


def _days(value: str) -> int:
    if not value.isdigit() or int(value) < 1:
        raise argparse.ArgumentTypeError("a whole number of days, 1 or more")
    return int(value)


def cmd_users_list(_: argparse.Namespace) -> None:
    with session_scope(_engine()) as s:
        users = list_users(s)
    print(f"{'id':<14} {'role':<9} {'scope':<30} {'state':<9} {'token expires (UTC)':<17} name")
    for u in users:
        state = "active" if u.active else "disabled"
        print(f"{u.id:<14} {u.role:<9} {(u.school_code or u.area or '-'):<30} {state:<9} "
              f"{u.token_expires_at:%Y-%m-%d %H:%M} {u.display_name}")


def cmd_users_disable(a: argparse.Namespace) -> None:
    with session_scope(_engine()) as s:
        user = disable_user(s, a.id)
    print(f"user {user.id} ({user.role}) disabled: its token and web sessions no longer work")


def cmd_users_rotate_token(a: argparse.Namespace) -> None:
    with session_scope(_engine()) as s:
        user, token = rotate_token(s, a.id, lifetime_days=a.days or get_settings().token_lifetime_days)
        print(f"user {user.id} ({user.role}): the old token and its web sessions no longer work; the new token, "
              f"valid until {user.token_expires_at:%Y-%m-%d %H:%M} UTC:")
    print(token)  # the last line, for scripts


async def _deliver_all(keys: list[str], settings) -> int:
    """Sends the outbox mails, a few at a time; answers how many could not go now (they stay in the outbox)."""
    from mailer import outbox

    engine, gate, failed = make_engine(settings.database_url), asyncio.Semaphore(8), 0

    async def one(key: str) -> None:
        nonlocal failed
        async with gate:
            try:
                await outbox.deliver(engine, settings, key)
            except Exception:  # noqa: BLE001  reported below; the link can be sent again from /users
                failed += 1

    try:
        await asyncio.gather(*(one(k) for k in keys))
    finally:
        engine.dispose()
    return failed


def cmd_users_import(a: argparse.Namespace) -> None:
    from db import accounts
    from db.models import utcnow

    settings = get_settings()
    rows = accounts.read_import_file(a.file.read())
    with session_scope(_engine()) as s:
        report = accounts.import_accounts(s, settings, rows, utcnow())
    for name in report.created:
        print(f"created   {name}")
    for name, fields in report.updated:
        print(f"updated   {name}: {', '.join(fields)}")
    for line, name, why in report.refused:
        print(f"refused   line {line} {name}: {why.code}: {why.message_th} / {why.message_en}")
    failed = asyncio.run(_deliver_all(report.mails, settings)) if report.mails else 0
    print(f"{len(report.created)} created, {len(report.updated)} updated, {len(report.unchanged)} unchanged, "
          f"{len(report.refused)} refused; {len(report.mails) - failed} password links mailed"
          + (f", {failed} not sent now (the mail server did not take them: resend them from /users)" if failed else ""))
    if report.refused:
        raise SystemExit(2)


def cmd_demo_load(_: argparse.Namespace) -> None:
    settings = get_settings()
    demo_data.check_demo_database(settings.database_url, settings.var_dir)  # before migrating anything
    for line in demo_data.load(_engine(), var_dir=settings.var_dir):
        print(line)


def cmd_rounds_create(a: argparse.Namespace) -> None:
    if a.id in SHIPPED_ROUNDS and not a.cutoff:
        spec = SHIPPED_ROUNDS[a.id]
    else:
        if not (a.year and a.opens and a.confirm_from and a.cutoff):
            raise SystemExit("give --year --opens --confirm-from --cutoff (Thai local time), or a shipped round id: "
                             + ", ".join(SHIPPED_ROUNDS))
        try:
            spec = RoundSpec(id=a.id, academic_year=a.year, opens_at=parse_local(a.opens),
                             confirm_from=parse_local(a.confirm_from), cutoff_at=parse_local(a.cutoff),
                             final_exam_on=a.final_exam_on)
        except ValueError as exc:
            raise SystemExit(f"invalid round: {exc}") from None
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
    operation, schools = await round_ops.start_round(_engine(), client, settings, round_id)
    print(f"starting {schools} schools of round {round_id}: operation {operation}")
    if wait:
        print(await client.get_workflow_handle(operation).result())


def cmd_rounds_start(a: argparse.Namespace) -> None:
    asyncio.run(_start(a.id, a.wait))


def cmd_mail_list(a: argparse.Namespace) -> None:
    from mailer.caught import listing  # tolerant of whatever the folder holds (broken encoded words...)

    print(listing(get_settings().var_dir / "mail", last=a.last, body=a.body))


def cmd_dev(a: argparse.Namespace) -> None:
    from dmcflow import local_stack

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    for noisy in ("mail.log", "alembic.runtime.migration"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    try:  # dev loads the demo users (public tokens): only into its own SQLite file, refused before anything starts
        demo_data.check_demo_database(get_settings().database_url, get_settings().var_dir)
    except Refusal as r:
        raise SystemExit(f"{r.message_th}\n{r.message_en}") from None
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


def cmd_keys_new(a: argparse.Namespace) -> None:
    key_id = a.id or new_key_id()
    print(f"""# a new payload key; add it to every process's keys (worker, API, intake, codec server), then make it
# the active one. Keep the older keys while histories sealed with them may still be replayed.
DMCFLOW_PAYLOAD_KEYS='{{"{key_id}": "{new_key()}"}}'
DMCFLOW_PAYLOAD_KEY_ID={key_id}""")


def cmd_codec_server(_: argparse.Namespace) -> None:
    from dmcflow import codec_server

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    codec_server.run(get_settings())


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
    add.add_argument("--days", type=_days, help="the token's lifetime (default DMCFLOW_TOKEN_LIFETIME_DAYS)")
    add.set_defaults(fn=cmd_users_add)
    users.add_parser("list", help="every user: role, scope, active or disabled, token expiry").set_defaults(
        fn=cmd_users_list)
    disable = users.add_parser("disable", help="disable a user: its token and web sessions stop working at once")
    disable.add_argument("id")
    disable.set_defaults(fn=cmd_users_disable)
    rotate = users.add_parser("rotate-token", help="issue a new token (the old one and its sessions stop working); "
                                                   "prints it as the last line")
    rotate.add_argument("id")
    rotate.add_argument("--days", type=_days, help="the token's lifetime (default DMCFLOW_TOKEN_LIFETIME_DAYS)")
    rotate.set_defaults(fn=cmd_users_rotate_token)
    imp = users.add_parser("import", help="create or update accounts from a CSV (username, role, school_or_area, "
                                          "name, email); each new account is mailed a link to set its password")
    imp.add_argument("file", type=argparse.FileType("rb"), help="UTF-8 CSV with a header row")
    imp.set_defaults(fn=cmd_users_import)

    sub.add_parser("demo", help="demo data").add_subparsers(dest="sub", required=True) \
        .add_parser("load", help="load the demo area, users and rounds (idempotent)").set_defaults(fn=cmd_demo_load)

    rounds = sub.add_parser("rounds", help="rounds").add_subparsers(dest="sub", required=True)
    create = rounds.add_parser("create", help="create a round (times in Thai local time)")
    create.add_argument("id")
    create.add_argument("--year", type=int)
    create.add_argument("--opens")
    create.add_argument("--confirm-from")
    create.add_argument("--cutoff")
    create.add_argument("--final-exam-on", type=_exam_day, metavar="YYYY-MM-DD",
                        help="R7: the final exam's date (e.g. 2567-03-29); a student who left on or before it may be "
                             "transferred out (default: the round's opening day)")
    create.set_defaults(fn=cmd_rounds_create)
    show = rounds.add_parser("show", help="show a round's instants")
    show.add_argument("id")
    show.set_defaults(fn=cmd_rounds_show)
    start = rounds.add_parser("start", help="start every school's workflow of a round (idempotent)")
    start.add_argument("id")
    start.add_argument("--wait", action="store_true")
    start.set_defaults(fn=cmd_rounds_start)

    keys = sub.add_parser("keys", help="Temporal payload keys").add_subparsers(dest="sub", required=True)
    new = keys.add_parser("new", help="print a new AES-256 payload key and the settings that use it")
    new.add_argument("--id", help="the key's id (default: k<date>-<random>)")
    new.set_defaults(fn=cmd_keys_new)
    sub.add_parser("codec-server", help="the Temporal UI's / CLI's remote codec (admin tokens only)") \
        .set_defaults(fn=cmd_codec_server)

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
    except PayloadKeysError as exc:
        raise SystemExit(f"dmcflow: {exc}") from None


if __name__ == "__main__":
    main()
