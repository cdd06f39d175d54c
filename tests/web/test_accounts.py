"""Accounts and login (issue 17): passwords, sessions, one-time password links, the users import and page.

The app runs in process (httpx's ASGI transport, whose `client=` is the connection's peer address); the
credentials' wall clock is injected (`create_app(auth_clock=...)`); mail goes to the tests' SMTP catcher. A
browser's request is what these tests send: form posts, the session cookie (not `Secure` here: the tests serve
plain http, as `dmcflow dev` does), and, for the cross-site cases, the `Sec-Fetch-Site` header a browser adds.
"""

from __future__ import annotations

import logging
import re
from datetime import datetime, timedelta, timezone

import httpx
import pytest
from sqlmodel import select

from api.app import create_app
from db import accounts
from db.directory import upsert_school
from db.engine import session_scope
from db.models import OutboxMail, PasswordLink, User, WebSession
from db.engine import make_engine
from db.migrate import upgrade
from dmcflow import cli, demo_data
from dmcflow.settings import get_settings
from domain.refusals import Refusal
from tests.db_backends import BOTH_BACKENDS

pytestmark = pytest.mark.parametrize("backend", BOTH_BACKENDS, indirect=True)

AREA, OTHER_AREA = "สพม.มหาสารคาม", "สพม.ขอนแก่น"
SCHOOL, SCHOOL_2, OTHER_SCHOOL = "1044449001", "1044449002", "1040409001"
COOKIE = "dmcflow_session"
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
LINK = re.compile(r"http://dmcflow\.test/password/set\?token=([\w-]+)")
CROSS_SITE = {"Sec-Fetch-Site": "cross-site"}
GOOD = "ข้าวเหนียวมะม่วง-2567"  # a password that passes the rules (Thai letters count like any other)


class Clock:
    def __init__(self) -> None:
        self.now = datetime.now(timezone.utc)

    def __call__(self) -> datetime:
        return self.now


class World:
    def __init__(self, engine, settings, smtp, clock: Clock) -> None:
        self.engine, self.settings, self.smtp, self.clock = engine, settings, smtp, clock
        with session_scope(engine) as s:
            upsert_school(s, SCHOOL, "โรงเรียนตัวอย่างวิทยา", AREA, [])
            upsert_school(s, SCHOOL_2, "โรงเรียนบ้านทดลองศึกษา", AREA, [])
            upsert_school(s, OTHER_SCHOOL, "โรงเรียนขอนแก่นวิทยา", OTHER_AREA, [])
        self.ids = {}
        for username, role, scope, password in [
                ("admin1", "admin", "", "admin-ผ่านระบบ-01"), ("district.mk", "district", AREA, "เขตมหาสารคาม-01"),
                ("district.kk", "district", OTHER_AREA, "เขตขอนแก่น-0001"), ("staff.tuayang", "staff", SCHOOL, GOOD),
                ("staff.kk", "staff", OTHER_SCHOOL, "ครูขอนแก่น-0001")]:
            self.ids[username] = self.account(username, role, scope, password)
        self.smtp.messages.clear()  # the welcome links of the accounts above
        self.app = create_app(settings, engine=engine, auth_clock=clock)

    def account(self, username: str, role: str, scope: str, password: str | None) -> str:
        with session_scope(self.engine) as s:
            user, _ = accounts.create_account(s, self.settings, accounts.AccountRow(
                username=username, role=role, scope=scope, name=f"คุณ {username}", email=f"{username}@example.org"),
                self.clock())
            if password:
                accounts.set_password(s, user, password, self.clock())
            return user.id

    def client(self, address: str = "198.51.100.10") -> httpx.AsyncClient:
        return httpx.AsyncClient(transport=httpx.ASGITransport(app=self.app, client=(address, 40000)),
                                 base_url="http://dmcflow.test")

    def queued_link(self, email: str) -> str:
        """The link in the latest mail queued for this address (accounts made here are not delivered)."""
        with session_scope(self.engine) as s:
            rows = [m for m in s.exec(select(OutboxMail).order_by(OutboxMail.created_at)) if m.recipients == [email]]
        return LINK.search(rows[-1].body_text)[0]

    def user(self, username: str) -> User:
        with session_scope(self.engine) as s:
            return s.exec(select(User).where(User.username == username)).one()


@pytest.fixture
def world(engine, settings, smtp) -> World:
    settings.auth_failure_limit = 3
    return World(engine, settings, smtp, Clock())


async def logged_in(world: World, username: str, password: str, address: str = "198.51.100.10") -> httpx.AsyncClient:
    web = world.client(address)
    r = await web.post("/login", data={"username": username, "password": password})
    assert r.status_code == 303, r.text[:300]
    return web


async def csrf_of(web: httpx.AsyncClient, path: str = "/") -> str:
    return CSRF.search((await web.get(path)).text)[1]


def refused(r: httpx.Response, code: str) -> bool:
    return f'data-code="{code}"' in r.text


# --- login and logout ---------------------------------------------------------------------------------------

async def test_the_right_password_opens_a_server_side_session_and_the_users_home(world):
    async with world.client() as web:
        form = await web.get("/login")
        assert form.status_code == 200 and 'action="/login"' in form.text
        assert 'name="username"' in form.text and 'name="password"' in form.text
        r = await web.post("/login", data={"username": "Staff.Tuayang ", "password": GOOD})
        assert r.status_code == 303 and r.headers["location"] == "/"
        session_id = web.cookies[COOKIE]
        assert "httponly" in r.headers["set-cookie"].lower() and "samesite=lax" in r.headers["set-cookie"].lower()
        home = await web.get("/")
        assert home.status_code == 200 and "คุณ staff.tuayang" in home.text  # the staff's own home
    with session_scope(world.engine) as s:
        rows = list(s.exec(select(WebSession).where(WebSession.user_id == world.ids["staff.tuayang"])))
    assert len(rows) == 1 and session_id not in rows[0].id_hash  # only the id's hash is kept


async def test_a_wrong_password_is_refused_beside_the_field_in_thai_and_counted(world):
    async with world.client() as web:
        r = await web.post("/login", data={"username": "staff.tuayang", "password": "ผิด-ผิด-ผิด"})
        assert r.status_code == 401 and refused(r, "unauthenticated") and COOKIE not in web.cookies
        assert "ชื่อผู้ใช้หรือรหัสผ่านไม่ถูกต้อง" in r.text and 'aria-describedby="password-problem"' in r.text
        assert 'value="staff.tuayang"' in r.text  # the user name stays in its field
        nobody = await web.post("/login", data={"username": "nobody.here", "password": "ผิด-ผิด-ผิด"})
        assert nobody.status_code == 401 and refused(nobody, "unauthenticated")  # the same words: no account is named


async def test_too_many_wrong_passwords_stop_guesses_at_that_account_without_checking_them(world):
    async with world.client() as web:  # the limit is 3 (the world's settings)
        for _ in range(3):
            guess = await web.post("/login", data={"username": "staff.tuayang", "password": "guess-0000"})
            assert guess.status_code == 401
        locked = await web.post("/login", data={"username": "staff.tuayang", "password": GOOD})
        assert locked.status_code == 429 and refused(locked, "too_many_failed_logins") and "Retry-After" in locked.headers
        assert COOKIE not in web.cookies  # even the right password: the answer must not tell a guess apart
        other = await web.post("/login", data={"username": "district.mk", "password": "เขตมหาสารคาม-01"})
        assert other.status_code == 303  # another account behind the same address (a school's NAT) is not locked
        # and issue 15's count per address saw the failures: a wrong password of any account from here is now a 429
        wrong = await web.post("/login", data={"username": "district.kk", "password": "guess-0000"})
        assert wrong.status_code == 429 and refused(wrong, "too_many_failed_logins")
    async with world.client("203.0.113.77") as elsewhere:  # the owner, at another address, gets in
        assert (await elsewhere.post("/login", data={"username": "staff.tuayang", "password": GOOD})).status_code == 303


async def test_after_login_the_browser_goes_back_only_to_a_page_of_this_site(world):
    async with world.client() as web:
        for wanted, went in [("/users?q=tuayang", "/users?q=tuayang"), ("//evil.example/", "/"),
                             ("/\t/evil.example/", "/"), ("/\\evil.example", "/"), ("https://evil.example/", "/"),
                             ("/password/forgot", "/")]:
            r = await web.post("/login", data={"username": "district.mk", "password": "เขตมหาสารคาม-01", "next": wanted})
            assert r.status_code == 303 and r.headers["location"] == went, wanted


def test_the_access_log_never_shows_a_password_links_token(world):
    record = logging.LogRecord("uvicorn.access", logging.INFO, __file__, 1, '%s - "%s %s HTTP/%s" %d', (
        "198.51.100.10:40000", "GET", "/password/set?token=s3cr3t-Link_value&lang=en", "1.1", 200), None)
    assert logging.getLogger("uvicorn.access").filter(record)
    assert "s3cr3t" not in record.getMessage() and "/password/set?token=[hidden]&lang=en" in record.getMessage()


async def test_logout_revokes_the_session_on_the_server(world):
    web = await logged_in(world, "district.mk", "เขตมหาสารคาม-01")
    session_id = web.cookies[COOKIE]
    token = await csrf_of(web)
    r = await web.post("/logout", data={"csrf_token": token})
    assert r.status_code == 303 and r.headers["location"] == "/login"
    async with world.client() as replay:  # the old cookie, replayed by whoever copied it
        again = await replay.get("/", headers={"Cookie": f"{COOKIE}={session_id}"})
        assert again.status_code == 303 and again.headers["location"].startswith("/login")
    with session_scope(world.engine) as s:
        assert s.exec(select(WebSession).where(WebSession.user_id == world.ids["district.mk"])).one().revoked_at


async def test_every_post_form_is_refused_without_its_csrf_proof(world):
    web = await logged_in(world, "admin1", "admin-ผ่านระบบ-01")
    target = world.ids["staff.tuayang"]
    for path, data in [("/logout", {}), (f"/users/{target}/disable", {}), (f"/users/{target}/link", {}),
                       ("/users", {"username": "new.user", "role": "staff", "scope": SCHOOL, "name": "ใหม่",
                                   "email": "new@example.org"})]:
        for proof in ({}, {"csrf_token": "not-the-session-token"}):
            r = await web.post(path, data={**data, **proof})
            assert r.status_code == 403 and refused(r, "csrf_failed"), (path, proof, r.status_code)
    assert (await web.get("/users")).status_code == 200  # the session lived on: nothing was done
    assert world.user("staff.tuayang").active and not world.smtp.messages
    with session_scope(world.engine) as s:
        assert s.exec(select(User).where(User.username == "new.user")).first() is None
    # the forms without a session yet: another site's page cannot post them (login CSRF)
    async with world.client() as anon:
        for path, data in [("/login", {"username": "staff.tuayang", "password": GOOD}),
                           ("/password/forgot", {"identifier": "staff.tuayang"}),
                           ("/password/set", {"token": "x", "password": GOOD, "password_repeat": GOOD})]:
            r = await anon.post(path, data=data, headers=CROSS_SITE)
            assert r.status_code == 403 and refused(r, "csrf_failed"), path
        assert COOKIE not in anon.cookies and not world.smtp.messages


# --- provisioning: the import and the password links --------------------------------------------------------------

@pytest.fixture
def console(world, monkeypatch, capsys):
    """`dmcflow ...` against the world's database and mail catcher; answers the printed lines."""
    monkeypatch.setenv("DMCFLOW_DATABASE_URL", world.engine.url.render_as_string(hide_password=False))
    for key, value in {"SMTP_HOST": world.smtp.host, "SMTP_PORT": str(world.smtp.port), "SMTP_TLS": "off",
                       "PUBLIC_URL": "http://dmcflow.test"}.items():
        monkeypatch.setenv(f"DMCFLOW_{key}", value)
    get_settings.cache_clear()

    def run(*argv: str) -> list[str]:
        try:
            cli.main(list(argv))
        except SystemExit as exit_:
            assert exit_.code == 2
        return capsys.readouterr().out.splitlines()

    yield run
    get_settings.cache_clear()


def users_csv(tmp_path, rows: list[str]) -> str:
    path = tmp_path / "users.csv"
    path.write_bytes(("\ufeffusername,role,school_or_area,name,email\n" + "\n".join(rows) + "\n").encode())
    return str(path)


def test_users_import_creates_accounts_once_and_mails_each_new_user_a_link(world, console, tmp_path):
    rows = [f"dmc.{SCHOOL},staff,{SCHOOL},นางสาวใจดี มีสุข,JaiDee@School.example",
            f"dir.{SCHOOL},director,{SCHOOL},นายผู้อำนวยการ ตัวอย่าง,dir@school.example",
            f"officer.mk,district,{AREA},เจ้าหน้าที่เขต,officer@area.example",
            "bad.school,staff,9999999999,ไม่มีโรงเรียน,bad@school.example"]
    out = console("users", "import", users_csv(tmp_path, rows))
    assert f"created   dmc.{SCHOOL}" in out and "created   officer.mk" in out
    assert any(line.startswith("refused   line 5 bad.school: user_school") for line in out)
    assert out[-1].startswith("3 created, 0 updated, 0 unchanged, 1 refused; 3 password links mailed")
    mails = {m["X-Envelope-To"]: m for m in world.smtp.messages}
    assert set(mails) == {"jaidee@school.example", "dir@school.example", "officer@area.example"}
    body = mails["jaidee@school.example"].get_body(("plain",)).get_content()
    assert f"dmc.{SCHOOL}" in body and LINK.search(body) and "72" in body
    with session_scope(world.engine) as s:  # the link's token is not stored, only its hash
        assert all(LINK.search(body)[1] not in link.token_hash for link in s.exec(select(PasswordLink)))

    again = console("users", "import", users_csv(tmp_path, rows[:3]))
    assert again[-1].startswith("0 created, 0 updated, 3 unchanged, 0 refused; 0 password links mailed")
    assert len(world.smtp.messages) == 3  # a re-run mails nobody

    rows[0] = f"dmc.{SCHOOL},staff,{SCHOOL_2},นางสาวใจดี มีสุขมาก,jaidee@school.example"
    rows[1] = f"dir.{SCHOOL},director,{SCHOOL},นายผู้อำนวยการ ตัวอย่าง,director.new@school.example"
    changed = console("users", "import", users_csv(tmp_path, rows[:3]))
    assert f"updated   dmc.{SCHOOL}: display_name, school_code" in changed and f"updated   dir.{SCHOOL}: email" in changed
    assert changed[-1].startswith("0 created, 2 updated, 1 unchanged")
    old_link = LINK.search(mails["dir@school.example"].get_body(("plain",)).get_content())[1]
    with session_scope(world.engine) as s, pytest.raises(Refusal) as dead:  # it went to the address no longer registered
        accounts.redeem_check(s, old_link, world.clock())
    assert dead.value.code == "password_link_invalid"
    moved = world.user(f"dmc.{SCHOOL}")
    assert (moved.school_code, moved.display_name, moved.password_hash) == (SCHOOL_2, "นางสาวใจดี มีสุขมาก", None)
    assert len(world.smtp.messages) == 3


async def test_a_password_link_sets_the_password_once_and_not_after_it_expires(world):
    world.account("new.clerk", "staff", SCHOOL, None)
    url = world.queued_link("new.clerk@example.org")
    async with world.client() as web:
        form = await web.get(url)
        assert form.status_code == 200 and 'value="new.clerk"' in form.text
        assert form.headers["referrer-policy"] == "no-referrer"  # the token never leaves in a Referer
        token = LINK.search(url)[1]
        for password, repeat, code, field in [("สั้น", "สั้น", "password_too_short", "password-problem"),
                                              ("my-new.clerk-pw", "my-new.clerk-pw", "password_like_username",
                                               "password-problem"),
                                              (GOOD, GOOD + "x", "password_mismatch", "repeat-problem")]:
            r = await web.post("/password/set", data={"token": token, "password": password, "password_repeat": repeat})
            assert r.status_code == 422 and refused(r, code) and f'aria-describedby="{field}"' in r.text, code
        done = await web.post("/password/set", data={"token": token, "password": GOOD, "password_repeat": GOOD})
        assert done.status_code == 303 and done.headers["location"] == "/login?notice=password_set"
        assert (await web.post("/login", data={"username": "new.clerk", "password": GOOD})).status_code == 303
        used = await web.post("/password/set", data={"token": token, "password": GOOD + "2", "password_repeat": GOOD + "2"})
        assert used.status_code == 410 and refused(used, "password_link_invalid")
        assert (await web.get(url)).status_code == 410

    world.account("late.clerk", "staff", SCHOOL, None)  # a link left until it has expired
    late = LINK.search(world.queued_link("late.clerk@example.org"))[1]
    world.clock.now += timedelta(hours=72, seconds=1)  # DMCFLOW_PASSWORD_LINK_HOURS' default
    async with world.client() as web:
        r = await web.post("/password/set", data={"token": late, "password": GOOD, "password_repeat": GOOD})
        assert r.status_code == 410 and refused(r, "password_link_expired") and "ลิงก์ตั้งรหัสผ่านนี้หมดอายุแล้ว" in r.text
    assert world.user("late.clerk").password_hash is None


async def test_forgot_password_mails_only_the_registered_email_and_says_the_same_for_anyone(world):
    world.clock.now += timedelta(minutes=3)  # past RESET_GAP since the accounts' welcome links
    async with world.client() as web:
        known = await web.post("/password/forgot", data={"identifier": "staff.tuayang"})
        unknown = await web.post("/password/forgot", data={"identifier": "attacker@evil.example"})
        assert known.status_code == unknown.status_code == 200 and known.text == unknown.text
        assert [m["X-Envelope-To"] for m in world.smtp.messages] == ["staff.tuayang@example.org"]
        url = LINK.search(world.smtp.bodies()[0])[0]
        by_email = await web.post("/password/forgot", data={"identifier": "District.MK@example.org"})
        assert by_email.text == known.text
        assert [m["X-Envelope-To"] for m in world.smtp.messages][-1] == "district.mk@example.org"
        again = await web.post("/password/forgot", data={"identifier": "staff.tuayang"})
        assert again.text == known.text and len(world.smtp.messages) == 2  # at most one link per RESET_GAP
        # the old password still works until the link is used; a newer link supersedes an older one
        assert (await web.post("/login", data={"username": "staff.tuayang", "password": GOOD})).status_code == 303
        world.clock.now += timedelta(minutes=3)
        await web.post("/password/forgot", data={"identifier": "staff.tuayang"})
        assert len(world.smtp.messages) == 3
        old = await web.get(url)
        assert old.status_code == 410 and refused(old, "password_link_invalid")
        newest = LINK.search(world.smtp.bodies()[-1])[0]
        world.clock.now += timedelta(hours=72)
        expired = await web.get(newest)
        assert expired.status_code == 410 and refused(expired, "password_link_expired")


# --- the users page: each manager's own scope --------------------------------------------------------------------

async def test_the_users_page_shows_and_acts_only_within_the_managers_scope(world):
    district = await logged_in(world, "district.mk", "เขตมหาสารคาม-01")
    listing = (await district.get("/users")).text
    assert 'data-username="staff.tuayang"' in listing and 'data-username="district.mk"' in listing
    assert 'data-username="staff.kk"' not in listing and 'data-username="district.kk"' not in listing
    assert 'data-username="admin1"' not in listing
    token = CSRF.search(listing)[1]
    for victim in ("staff.kk", "district.kk", "admin1"):  # another area's, or an administrator: not admitted to exist
        for action in ("disable", "link"):
            r = await district.post(f"/users/{world.ids[victim]}/{action}", data={"csrf_token": token})
            assert r.status_code == 404 and refused(r, "not_found"), (victim, action)
        assert world.user(victim).active
    assert not world.smtp.messages
    r = await district.post("/users", data={"csrf_token": token, "username": "kk.new", "role": "staff",
                                            "scope": OTHER_SCHOOL, "name": "ครูขอนแก่น", "email": "kk@example.org"})
    assert r.status_code == 403 and refused(r, "forbidden") and 'aria-describedby="scope-hint scope-problem"' in r.text
    r = await district.post("/users", data={"csrf_token": token, "username": "root2", "role": "admin", "scope": "",
                                            "name": "ผู้ดูแล", "email": "root2@example.org"})
    assert r.status_code == 403 and refused(r, "forbidden")

    r = await district.post("/users", data={"csrf_token": token, "username": "clerk.two", "role": "staff",
                                            "scope": SCHOOL_2, "name": "ครูบ้านทดลอง", "email": "clerk2@example.org"})
    assert r.status_code == 303 and world.user("clerk.two").school_code == SCHOOL_2
    assert [m["X-Envelope-To"] for m in world.smtp.messages] == ["clerk2@example.org"]
    staff_web = await logged_in(world, "staff.tuayang", GOOD)
    r = await district.post(f"/users/{world.ids['staff.tuayang']}/disable", data={"csrf_token": token})
    assert r.status_code == 303 and not world.user("staff.tuayang").active
    gone = await staff_web.get("/")  # the disabled user's open session ended with it
    assert gone.status_code == 303 and gone.headers["location"].startswith("/login")

    staff = await logged_in(world, "staff.kk", "ครูขอนแก่น-0001")
    assert (await staff.get("/users")).status_code == 403
    admin = await logged_in(world, "admin1", "admin-ผ่านระบบ-01")
    everyone = (await admin.get("/users")).text
    assert all(f'data-username="{u}"' in everyone for u in world.ids)


# --- the users-CSV upload page: the console's import, within the manager's scope --------------------------------

def users_file(rows: list[str]) -> dict:
    body = ("\ufeffusername,role,school_or_area,name,email\n" + "\n".join(rows) + "\n").encode()
    return {"file": ("users.csv", body, "text/csv")}


def report_rows(html: str) -> dict[int, tuple[str, str, str]]:
    """The report's table: line -> (username, outcome, the reason cell's text)."""
    found = re.findall(r'<tr data-line="(\d+)" data-username="([^"]*)" data-outcome="(\w+)"[^>]*>(.*?)</tr>', html, re.S)
    return {int(line): (name, outcome, cells) for line, name, outcome, cells in found}


async def test_a_district_officer_uploads_users_of_its_own_area_only_and_sees_each_row_with_its_reason(world):
    district = await logged_in(world, "district.mk", "เขตมหาสารคาม-01")
    listing = await district.get("/users")
    assert 'href="/users/import"' in listing.text  # linked from the users page
    form = await district.get("/users/import")
    assert form.status_code == 200 and 'enctype="multipart/form-data"' in form.text
    token = CSRF.search(form.text)[1]
    rows = [f"clerk.tuayang,staff,{SCHOOL},นางใจดี มีสุข,clerk@tuayang.example",  # line 2: its area's school
            f"dir.tuayang,director,{SCHOOL_2},นายผู้อำนวยการ บ้านทดลอง,dir@banthodlong.example",
            f"kk.clerk,staff,{OTHER_SCHOOL},ครูขอนแก่น,kk.clerk@example.org",  # another area's school
            "root2,admin,,ผู้ดูแลอีกคน,root2@example.org",  # an administrator
            f"district.kk2,district,{OTHER_AREA},เขตขอนแก่น,kk2@example.org",  # another area's officer
            f"staff.kk,staff,{SCHOOL},ย้ายมาเขตนี้,staff.kk@example.org",  # another area's account, pulled in
            f"admin1,district,{AREA},ผู้ดูแลระบบ,admin1@example.org",  # an administrator's account, demoted
            "nobody.school,staff,9999999999,ไม่มีโรงเรียน,nobody@example.org"]
    r = await district.post("/users/import", data={"csrf_token": token}, files=users_file(rows))
    assert r.status_code == 200, r.text[:500]
    report = report_rows(r.text)
    assert {line: outcome for line, (_, outcome, _) in report.items()} == {
        2: "created", 3: "created", 4: "refused", 5: "refused", 6: "refused", 7: "refused", 8: "refused",
        9: "refused"}
    outside = '<span lang="th">ไม่มีสิทธิ์สร้างผู้ใช้นอกเขตพื้นที่ของตน</span><br><small lang="en">' \
              'Not allowed to create a user outside your own area</small>'
    for line in (4, 5, 6):  # the refusal in Thai, the English beside it, in the row it is about
        assert outside in report[line][2], report[line]
    for line in (7, 8):
        assert "เป็นบัญชีนอกขอบเขตของท่าน" in report[line][2] and "outside your scope" in report[line][2]
    assert "ผู้ใช้ระดับโรงเรียนต้องระบุรหัสโรงเรียนที่มีอยู่" in report[9][2]
    assert re.search(r'data-count="created">2<', r.text) and re.search(r'data-count="refused">6<', r.text)
    # each new user, and only they, got a one-time link at the registered address
    assert sorted(m["X-Envelope-To"] for m in world.smtp.messages) == ["clerk@tuayang.example",
                                                                     "dir@banthodlong.example"]
    assert all(LINK.search(b) for b in world.smtp.bodies())
    assert world.user("clerk.tuayang").school_code == SCHOOL and world.user("dir.tuayang").role == "director"
    assert (world.user("staff.kk").school_code, world.user("admin1").role) == (OTHER_SCHOOL, "admin")
    with session_scope(world.engine) as s:
        assert not s.exec(select(User).where(User.username.in_(["kk.clerk", "root2", "district.kk2"]))).all()

    # the same file again: nobody twice, nobody mailed again, the same refusals
    again = await district.post("/users/import", data={"csrf_token": token}, files=users_file(rows))
    assert again.status_code == 200
    report = report_rows(again.text)
    assert (report[2][1], report[3][1]) == ("unchanged", "unchanged") and report[4][1] == "refused"
    assert "มีอยู่แล้ว" in again.text and len(world.smtp.messages) == 2
    with session_scope(world.engine) as s:
        assert len(s.exec(select(User).where(User.username == "clerk.tuayang")).all()) == 1


async def test_the_users_upload_takes_a_managers_bounded_csv_with_the_forms_token(world, monkeypatch):
    from web import users as users_page

    admin = await logged_in(world, "admin1", "admin-ผ่านระบบ-01")
    token = await csrf_of(admin, "/users/import")
    ok = users_file(["root2,admin,,ผู้ดูแลอีกคน,root2@example.org"])
    for proof in ({}, {"csrf_token": "not-the-session-token"}):
        r = await admin.post("/users/import", data=proof, files=ok)
        assert r.status_code == 403 and refused(r, "csrf_failed")
    staff = await logged_in(world, "staff.tuayang", GOOD)
    assert refused(await staff.get("/users/import"), "forbidden")
    r = await staff.post("/users/import", data={"csrf_token": await csrf_of(staff)}, files=ok)
    assert r.status_code == 403 and refused(r, "forbidden")
    assert not world.smtp.messages

    monkeypatch.setattr(users_page, "IMPORT_MAX_BYTES", 1024)
    for files, status, code in [
            ({"file": ("big.csv", b"username,role\n" + b"x" * 2000, "text/csv")}, 413, "request_too_large"),
            ({"file": ("latin.csv", "username;rôle".encode("latin-1"), "text/csv")}, 422, "file_encoding"),
            ({"file": ("cols.csv", b"username,role\nx,staff\n", "text/csv")}, 422, "file_columns"),
            ({"file": ("nul.csv", b"username,role,school_or_area,name,email\nx\x00,staff,,a,b@c.d\n", "text/csv")},
             422, "file_format")]:
        r = await admin.post("/users/import", data={"csrf_token": token}, files=files)
        assert r.status_code == status and refused(r, code), (code, r.text[:300])
        assert 'aria-describedby="users-file-hint users-file-problem" aria-invalid="true"' in r.text  # beside the file
    monkeypatch.setattr(users_page, "IMPORT_MAX_ROWS", 1)
    two = users_file(["a.one,admin,,หนึ่ง,a1@example.org", "a.two,admin,,สอง,a2@example.org"])
    r = await admin.post("/users/import", data={"csrf_token": token}, files=two)
    assert r.status_code == 413 and refused(r, "file_too_many_rows")

    r = await admin.post("/users/import", data={"csrf_token": token}, files=ok)  # an administrator: any scope
    assert r.status_code == 200 and report_rows(r.text)[2][1] == "created"
    assert world.user("root2").role == "admin"
    assert [m["X-Envelope-To"] for m in world.smtp.messages] == ["root2@example.org"]


# --- the demo's contract (./scripts/dev.sh) -----------------------------------------------------------------------

async def test_the_demo_users_log_in_with_their_user_name_as_password(backend, tmp_path, settings):
    if backend != "sqlite":
        pytest.skip("the demo loads only into the local SQLite file of `dmcflow dev`")
    url = f"sqlite:///{tmp_path / 'dmcflow.sqlite'}"
    upgrade(url)
    engine = make_engine(url)
    try:
        demo_data.load(engine, var_dir=tmp_path)
        demo_data.load(engine, var_dir=tmp_path)  # idempotent: dev loads it at every start
        app = create_app(settings.model_copy(update={"database_url": url}), engine=engine)
        for username, home in [("demo-staff", "โรงเรียนตัวอย่างวิทยา"), ("demo-director", "โรงเรียนตัวอย่างวิทยา"),
                               ("demo-district", AREA), ("demo-admin", "ผู้ดูแลระบบ")]:
            async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://dmcflow.test") as web:
                r = await web.post("/login", data={"username": username, "password": username})
                assert r.status_code == 303 and r.headers["location"] == "/", username
                page = await web.get("/")
                assert page.status_code == 200 and home in page.text, username
    finally:
        engine.dispose()
