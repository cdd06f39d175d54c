"""Demo data for one area (สพม.มหาสารคาม): schools, students, users with well-known tokens and passwords, rounds.

Loading is idempotent: run it as often as you like. The tokens below are for a local demo only.
"""

from __future__ import annotations

import json
import random
from datetime import datetime, timedelta, timezone
from pathlib import Path

from sqlalchemy.engine import Engine, make_url
from sqlmodel import select

from db.accounts import HASHER
from db.directory import create_round, create_user, hash_token, upsert_school
from db.engine import session_scope
from db.models import Round, Student, User
from db.roster_changes import STUDENT_FIELDS
from domain.ids import national_id_check_digit
from domain.refusals import refusal
from domain.roster_file import parse_roster
from domain.rounds import ROUND_2566_3, RoundSpec
from domain.thai_time import BANGKOK

HERE = Path(__file__).parent / "demo"
AREA = "สพม.มหาสารคาม"
EXTRA_SCHOOLS = [
    ("1044449003", "โรงเรียนนาดูนประชาสรรพ์"), ("1044449004", "โรงเรียนกันทรวิชัย"),
    ("1044449005", "โรงเรียนโกสุมวิทยาสรรค์"), ("1044449006", "โรงเรียนบรบือวิทยาคาร"),
    ("1044449007", "โรงเรียนวาปีปทุม"), ("1044449008", "โรงเรียนพยัคฆภูมิวิทยาคาร"),
]
FIRST = ["สมชาย", "สมหญิง", "ปิยะ", "อรทัย", "ธนพล", "กมลชนก", "วรวุฒิ", "ศิริพร", "ณัฐวุฒิ", "พิมพ์ลดา"]
LAST = ["ใจดี", "ศรีสุข", "บุญมา", "ทองคำ", "แก้วมณี", "พลอยงาม", "คำมูล", "ภูมิสะอาด"]
GRADES = ["ม.1", "ม.2", "ม.3", "ม.4", "ม.5", "ม.6"]

DEMO_USERS = [  # (token, role, name, school, area, email)
    ("demo-admin", "admin", "ผู้ดูแลระบบ (demo)", None, None, None),
    ("demo-staff", "staff", "เจ้าหน้าที่ DMC โรงเรียนตัวอย่างวิทยา", "1044449001", None, "dmc@tuayang.ac.th"),
    ("demo-director", "director", "ผู้อำนวยการโรงเรียนตัวอย่างวิทยา", "1044449001", None, None),
    ("demo-staff-2", "staff", "เจ้าหน้าที่ DMC โรงเรียนบ้านทดลองศึกษา", "1044449002", None, None),
    ("demo-director-2", "director", "ผู้อำนวยการโรงเรียนบ้านทดลองศึกษา", "1044449002", None, None),
    ("demo-district", "district", "เจ้าหน้าที่ สพม.มหาสารคาม", None, AREA, "dmc-office@sesao26.example"),
]


def synthetic_id(school_index: int, n: int) -> str:
    first12 = f"14499{school_index:02d}{n:05d}"
    return first12 + str(national_id_check_digit(first12))


def demo_round(now: datetime) -> RoundSpec:
    """A live round for trying things now: confirmation opens in two minutes, cutoff at the next 16.30 น."""
    local = now.astimezone(BANGKOK)
    cutoff = local.replace(hour=16, minute=30, second=0, microsecond=0)
    if cutoff - local < timedelta(minutes=20):
        cutoff += timedelta(days=1)
    confirm_from = (local + timedelta(minutes=2)).replace(second=0, microsecond=0)
    return RoundSpec(id="demo", academic_year=ROUND_2566_3.academic_year, opens_at=local - timedelta(minutes=1),
                     confirm_from=confirm_from, cutoff_at=cutoff)


def check_demo_database(url, var_dir: Path) -> None:
    """The demo users' tokens are public (demo-admin above all), so demo data goes only into the local SQLite
    file of `dmcflow dev` (`<var_dir>/dmcflow.sqlite`), never into whatever database `.env` happens to name."""
    local = (Path(var_dir) / "dmcflow.sqlite").resolve()
    parsed = make_url(str(url))
    if parsed.get_backend_name() == "sqlite" and parsed.database and parsed.database != ":memory:" \
            and Path(parsed.database).resolve() == local:
        return
    where = f"SQLite {parsed.database}" if parsed.get_backend_name() == "sqlite" else parsed.get_backend_name()
    raise refusal(
        "demo_database_refused",
        f"ไม่ลงข้อมูลตัวอย่างในฐานข้อมูลนี้ ({where}): ผู้ใช้ตัวอย่าง เช่น demo-admin มีโทเค็นที่ทุกคนรู้ "
        f"จึงลงได้เฉพาะไฟล์ SQLite ของ dmcflow dev ({local})",
        f"Demo data is not loaded into this database ({where}): its users, demo-admin among them, have public "
        f"tokens, so it goes only into the local SQLite file of `dmcflow dev` ({local})", 409)


def load(engine: Engine, *, var_dir: Path, now: datetime | None = None) -> list[str]:
    """Answers what it did, one line each. Refuses (`demo_database_refused`) any database but the local
    SQLite file of `dmcflow dev` under `var_dir`."""
    check_demo_database(engine.url, var_dir)
    done: list[str] = []
    now = now or datetime.now(timezone.utc)
    schools = json.loads((HERE / "schools.json").read_text(encoding="utf-8"))
    roster = parse_roster((HERE / "roster-phase3-2566.csv").read_bytes())
    rng = random.Random(2566)
    with session_scope(engine) as s:
        for sc in schools:
            upsert_school(s, sc["code"], sc["name"], sc["area"], [sc["email"]])
        for code, name in EXTRA_SCHOOLS:
            upsert_school(s, code, name, AREA, [f"dmc{code[-3:]}@school.example"])
        s.flush()
        done.append(f"{len(schools) + len(EXTRA_SCHOOLS)} schools in {AREA}")
        if s.exec(select(Student).limit(1)).first() is None:
            for row in roster.rows:
                s.add(Student(school_code=row.school_code, student_id=row.student_id,
                              **{f: getattr(row, f) for f in STUDENT_FIELDS}))
            for i, (code, _) in enumerate(EXTRA_SCHOOLS, start=10):
                for n in range(1, 41):
                    s.add(Student(school_code=code, student_id=synthetic_id(i, n), student_no=str(n),
                                  first_name=rng.choice(FIRST), last_name=rng.choice(LAST),
                                  grade=rng.choice(GRADES), classroom=str(rng.randint(1, 4))))
            done.append(f"{len(roster.rows) + 40 * len(EXTRA_SCHOOLS)} students")
        for token, role, name, school, area, email in DEMO_USERS:
            user = s.exec(select(User).where(User.token_hash == hash_token(token))).first()
            if user is None:
                user, _ = create_user(s, role=role, display_name=name, school_code=school, area=area, email=email,
                                      token=token)
            if user.username is None:  # the login page's demo account: user name = token = password (local only)
                user.username, user.password_hash = token, HASHER.hash(token)
                s.add(user)
        done.append("users (user name = password = token): "
                    + ", ".join(f"{role} → {token}" for token, role, *_ in DEMO_USERS))
        for spec in (ROUND_2566_3, demo_round(now)):
            if s.get(Round, spec.id) is None:
                create_round(s, spec)
                done.append(f"round {spec.id}: " + ", ".join(f"{k} {v}" for k, v in spec.display().items()))
    return done

