"""The workbench's words in Thai and English, side by side, and how times read in each language.

A dict, not Babel/gettext: two languages and a few dozen phrases, where gettext would add a compile step
(.po to .mo) or binary files in the repository and an extraction tool, for no gain. Keeping each Thai phrase
beside its English one lets a reviewer read both at once, and a test checks that no key lacks either.
Dates and times always read in Bangkok time (domain/thai_time.py), whatever the browser's or server's zone.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

from domain.thai_time import english_datetime, thai_datetime, thai_duration, to_bangkok

LANGS = ("th", "en")

MESSAGES: dict[str, tuple[str, str]] = {
    # the shell
    "app_name": ("ระบบรับรองข้อมูล DMC ระยะที่ 3", "DMC round 3"),
    "skip": ("ข้ามไปยังเนื้อหาหลัก", "Skip to main content"),
    "nav_label": ("เมนูหลัก", "Main menu"),
    "nav_home": ("หน้าหลัก", "Home"),
    "nav_dashboard": ("ภาพรวมการติดตาม", "Monitoring dashboard"),
    "nav_users": ("ผู้ใช้งาน", "Users"),
    "logout": ("ออกจากระบบ", "Log out"),
    "switch_to": ("English", "ภาษาไทย"),
    "switch_label": ("Switch to English", "เปลี่ยนเป็นภาษาไทย"),
    "signed_in_as": ("ผู้ใช้", "Signed in as"),
    "role_staff": ("เจ้าหน้าที่ DMC โรงเรียน", "School DMC staff"),
    "role_director": ("ผู้อำนวยการโรงเรียน", "School director"),
    "role_district": ("เจ้าหน้าที่เขตพื้นที่", "District officer"),
    "role_admin": ("ผู้ดูแลระบบ", "Administrator"),
    "footer": ("เวลาทั้งหมดเป็นเวลาประเทศไทย (กรุงเทพฯ)", "All times are Bangkok time"),
    "error_title": ("ทำรายการไม่ได้", "This could not be done"),
    "back_home": ("กลับหน้าหลัก", "Back to the home page"),
    "coming": ("หน้าเว็บกำลังจัดทำ ใช้ผ่าน API ได้ก่อน", "page coming; available through the API"),
    # the round
    "round": ("รอบ", "Round"),
    "no_round": ("ยังไม่มีรอบที่เริ่มสำหรับโรงเรียนนี้", "No round has been started for this school yet"),
    "no_round_area": ("ยังไม่มีรอบให้ติดตาม", "There is no round to follow yet"),
    "stage": ("สถานะ", "Stage"),
    "stage_not_open": ("ยังไม่เปิดระบบ", "Not open yet"),
    "stage_open": ("เปิดปรับปรุงข้อมูล", "Open for updates"),
    "stage_confirmation_window": ("ช่วงยืนยันข้อมูล", "Confirmation window"),
    "stage_confirmed": ("ยืนยันข้อมูลแล้ว", "Confirmed by staff"),
    "stage_certified": ("ผู้อำนวยการรับรองแล้ว", "Certified by the director"),
    "stage_late": ("ไม่ทันกำหนด", "Late"),
    "cutoff": ("ปิดระบบ", "Closes"),
    "confirm_from": ("ยืนยัน/รับรองได้ตั้งแต่", "Confirmation opens"),
    "left": ("เหลือ {words} ก่อนปิดระบบ {time}", "{words} left before the system closes at {time}"),
    "left_none": ("ปิดระบบแล้ว", "The system has closed"),
    # the staff's list
    "todo_h": ("สิ่งที่ต้องทำตามลำดับ", "What is left to do, in order"),
    "done": ("เสร็จแล้ว", "done"),
    "not_done": ("ยังไม่เสร็จ", "to do"),
    "waiting": ("ทำได้เมื่อเมนู 3.2.2 ครบ", "after menu 3.2.2 is complete"),
    "task_profile": ("ข้อมูลพื้นฐานของโรงเรียน (ข้อ 1)", "The school's basic data (rule 1)"),
    "task_profile_missing": ("ยังขาด: {fields}", "Missing: {fields}"),
    "field_phone": ("โทรศัพท์", "phone"),
    "field_address": ("ที่อยู่", "address"),
    "field_director_name": ("ชื่อผู้อำนวยการ", "director's name"),
    "task_roster": ("ทะเบียนนักเรียน (นำเข้าไฟล์ DMC)", "The student roster (import the DMC file)"),
    "students_n": ("นักเรียน {n} คน", "{n} students"),
    "task_322": ("เมนู 3.2.2 ผลการเรียนสิ้นปี", "Menu 3.2.2: end-of-year results"),
    "task_3221": ("เมนู 3.2.2.1 สาเหตุการซ้ำชั้น", "Menu 3.2.2.1: reasons for repeating"),
    "task_3222": ("เมนู 3.2.2.2 การศึกษาต่อของผู้จบ", "Menu 3.2.2.2: graduates' further study"),
    "of_n": ("บันทึกแล้ว {done} จาก {n} คน", "{done} of {n} recorded"),
    "task_existence": ("ยืนยันการมีตัวตนของนักเรียนทุกคน (ข้อ 11)", "Confirm every student's existence (rule 11)"),
    "existence_n": ("มีตัวตนจริง {present} คน ข้อยกเว้น {exceptions} คน ยังไม่ได้ตรวจ {unmarked} คน",
                    "{present} present, {exceptions} exceptions, {unmarked} not checked yet"),
    "task_cases": ("เรื่องค้างที่ต้องปิดก่อนยืนยัน", "Open cases to close before confirming"),
    "no_cases": ("ไม่มีเรื่องค้าง", "No open cases"),
    "cases_n": ("ค้าง {n} เรื่อง", "{n} open"),
    # confirming (R11) and certifying (R12)
    "confirm_h": ("ยืนยันข้อมูลของโรงเรียน", "Confirm the school's data"),
    "confirm_lead": ("เมื่อกดยืนยัน ท่านรับรองว่าข้อมูลต่อไปนี้ถูกต้องและนักเรียนมีตัวตนจริงทุกคน "
                     "ข้อมูลจะแก้ไขไม่ได้จนกว่าจะยกเลิกการยืนยัน",
                     "By confirming you state that the data below is correct and every student really exists; "
                     "the roster is frozen until the confirmation is withdrawn"),
    "sum_school": ("โรงเรียน", "School"),
    "sum_students": ("นักเรียนทั้งหมด", "Students"),
    "sum_results": ("บันทึกผลสิ้นปี (3.2.2)", "End-of-year results (3.2.2)"),
    "sum_repeaters": ("ซ้ำชั้น / บันทึกสาเหตุแล้ว (3.2.2.1)", "Repeaters / reasons recorded (3.2.2.1)"),
    "sum_graduates": ("จบการศึกษา / บันทึกการศึกษาต่อแล้ว (3.2.2.2)", "Graduates / destinations recorded (3.2.2.2)"),
    "sum_present": ("มีตัวตนจริง (ข้อ 11)", "Present (rule 11)"),
    "sum_exceptions": ("ข้อยกเว้น", "Exceptions"),
    "sum_cases": ("เรื่องค้าง", "Open cases"),
    "sum_confirmed": ("ยืนยันโดย", "Confirmed by"),
    "by_at": ("{who} เมื่อ {at}", "{who} on {at}"),
    "confirm_button": ("ยืนยันข้อมูล", "Confirm"),
    "confirmed_note": ("ยืนยันข้อมูลแล้ว รอผู้อำนวยการรับรอง", "Confirmed; waiting for the director to certify"),
    "withdraw_h": ("ยกเลิกการยืนยัน", "Withdraw the confirmation"),
    "withdraw_lead": ("หากต้องแก้ไขข้อมูล ให้ยกเลิกการยืนยันก่อน ผู้อำนวยการจะรับรองไม่ได้จนกว่าจะยืนยันใหม่",
                      "To change the data, withdraw the confirmation first; the director cannot certify until "
                      "you confirm again"),
    "withdraw_button": ("ยกเลิกการยืนยัน", "Withdraw the confirmation"),
    "certified_note": ("ผู้อำนวยการรับรองข้อมูลแล้ว รอบนี้เสร็จสมบูรณ์", "The director has certified; this round is done"),
    "late_note": ("ปิดระบบแล้วโดยยังไม่ได้รับรอง ติดต่อเขตพื้นที่เพื่อขอขยายเวลา",
                  "The system closed before certification; ask the district office for an extension"),
    "certify_h": ("รับรองข้อมูลของโรงเรียน (ข้อ 12)", "Certify the school's data (rule 12)"),
    "certify_lead": ("ข้อมูลที่เจ้าหน้าที่ยืนยันแล้ว ตรวจสอบแล้วกดรับรอง", "What the staff confirmed; check it, then certify"),
    "certify_button": ("รับรองข้อมูล", "Certify"),
    "certify_waiting": ("รอเจ้าหน้าที่ยืนยันข้อมูลก่อน จึงรับรองได้", "Waiting for the staff to confirm before you can certify"),
    "certified_by": ("รับรองโดย", "Certified by"),
    # district and admin
    "queue_h": ("งานที่รอดำเนินการ", "Work waiting"),
    "queue_scope_area": ("เขตพื้นที่ {area}", "Area {area}"),
    "queue_scope_all": ("ทุกเขตพื้นที่", "Every area"),
    "queue_idc": ("คำขอแก้ไขเลขประจำตัวประชาชนรอพิจารณา", "ID corrections to decide"),
    "queue_dropouts": ("คำขอออกกลางคันรอพิจารณา", "Dropout requests waiting"),
    "queue_duplicates": ("นักเรียนซ้ำซ้อนที่ยังไม่ยุติ", "Duplicate student cases open"),
    "queue_late": ("โรงเรียนที่ไม่ทันกำหนด", "Late schools"),
    "queue_note": ("หน้าจัดการแต่ละงานกำลังจัดทำ ระหว่างนี้ดูรายละเอียดได้ที่ภาพรวมการติดตาม",
                   "Pages for each queue are coming; meanwhile the monitoring dashboard has the details"),
    "open_dashboard": ("เปิดภาพรวมการติดตาม", "Open the monitoring dashboard"),
    # accounts: login, passwords, the users page (web/auth.py, web/users.py)
    "login_h": ("เข้าสู่ระบบ", "Log in"),
    "username": ("ชื่อผู้ใช้", "User name"),
    "password": ("รหัสผ่าน", "Password"),
    "login_button": ("เข้าสู่ระบบ", "Log in"),
    "forgot_link": ("ลืมรหัสผ่าน", "Forgot your password?"),
    "password_set_done": ("ตั้งรหัสผ่านแล้ว เข้าสู่ระบบด้วยรหัสผ่านใหม่ได้เลย", "Your password is set; log in with it"),
    "password_set_h": ("ตั้งรหัสผ่าน", "Set your password"),
    "password_set_lead": ("รหัสผ่านต้องยาวอย่างน้อย {n} ตัวอักษร และต้องไม่มีชื่อผู้ใช้อยู่ในนั้น",
                          "At least {n} characters, and not containing your user name"),
    "new_password": ("รหัสผ่านใหม่", "New password"),
    "new_password_repeat": ("พิมพ์รหัสผ่านใหม่อีกครั้ง", "The new password again"),
    "password_set_button": ("ตั้งรหัสผ่าน", "Set the password"),
    "ask_new_link": ("ขอลิงก์ใหม่", "Ask for a new link"),
    "back_to_login": ("กลับไปหน้าเข้าสู่ระบบ", "Back to the login page"),
    "forgot_h": ("ลืมรหัสผ่าน", "Forgot your password"),
    "forgot_lead": ("กรอกชื่อผู้ใช้หรืออีเมล ระบบจะส่งลิงก์ตั้งรหัสผ่านใหม่ไปยังอีเมลที่ลงทะเบียนไว้ของบัญชี",
                    "Enter your user name or email: a link to set a new password goes to the account's registered email"),
    "username_or_email": ("ชื่อผู้ใช้หรืออีเมล", "User name or email"),
    "forgot_button": ("ส่งลิงก์", "Send the link"),
    "forgot_sent": ("หากมีบัญชีตรงกับที่กรอก ระบบได้ส่งลิงก์ตั้งรหัสผ่านไปยังอีเมลที่ลงทะเบียนไว้แล้ว "
                    "ลิงก์ใช้ได้ครั้งเดียวและมีอายุจำกัด",
                    "If an account matches, a link to set its password has been sent to its registered email; "
                    "it works once and expires"),
    "users_h": ("ผู้ใช้งาน", "Users"),
    "users_create_h": ("เพิ่มผู้ใช้", "Add a user"),
    "users_create_lead": ("ผู้ใช้ใหม่จะได้รับลิงก์ตั้งรหัสผ่านทางอีเมลที่ลงทะเบียน",
                          "The new user gets a link to set a password at the registered email"),
    "users_field_username": ("ชื่อผู้ใช้", "User name"),
    "users_field_name": ("ชื่อ-นามสกุล", "Name"),
    "users_field_email": ("อีเมลที่ลงทะเบียน", "Registered email"),
    "users_field_role": ("บทบาท", "Role"),
    "users_field_scope": ("รหัสโรงเรียนหรือเขตพื้นที่", "School code or area"),
    "users_scope_hint": ("เจ้าหน้าที่โรงเรียนและผู้อำนวยการ: รหัสโรงเรียน 10 หลัก; เจ้าหน้าที่เขต: ชื่อเขตพื้นที่; "
                         "ผู้ดูแลระบบ: เว้นว่าง",
                         "Staff and directors: the 10-digit school code; district officers: the area's name; "
                         "administrators: empty"),
    "users_create_button": ("เพิ่มผู้ใช้และส่งลิงก์", "Add the user and send the link"),
    "users_list_h": ("รายชื่อผู้ใช้", "The users"),
    "users_search": ("ค้นหา (ชื่อผู้ใช้ ชื่อ อีเมล หรือรหัสโรงเรียน)", "Search (user name, name, email or school code)"),
    "users_search_button": ("ค้นหา", "Search"),
    "users_none": ("ไม่พบผู้ใช้", "No users found"),
    "users_state": ("สถานะ", "State"),
    "users_state_active": ("ใช้งานได้", "active"),
    "users_state_waiting": ("รอตั้งรหัสผ่าน", "waiting for a password"),
    "users_state_disabled": ("ปิดใช้งาน", "disabled"),
    "users_actions": ("การดำเนินการ", "Actions"),
    "users_resend": ("ส่งลิงก์ตั้งรหัสผ่าน", "Send a password link"),
    "users_disable": ("ปิดใช้งาน", "Disable"),
    "users_prev": ("หน้าก่อน", "Previous page"),
    "users_next": ("หน้าถัดไป", "Next page"),
    "users_notice_created": ("เพิ่มผู้ใช้แล้ว และส่งลิงก์ตั้งรหัสผ่านไปยังอีเมลที่ลงทะเบียน",
                             "The user is added and a password link was sent to the registered email"),
    "users_notice_disabled": ("ปิดใช้งานผู้ใช้แล้ว ออกจากระบบทุกที่ทันที", "The user is disabled and logged out everywhere"),
    "users_notice_link_sent": ("ส่งลิงก์ตั้งรหัสผ่านไปยังอีเมลที่ลงทะเบียนแล้ว ลิงก์เดิมใช้ไม่ได้อีก",
                               "A password link was sent to the registered email; older links no longer work"),
    "users_notice_no_email": ("ผู้ใช้นี้ไม่มีอีเมลที่ลงทะเบียน จึงส่งลิงก์ไม่ได้",
                              "This user has no registered email, so no link was sent"),
}

ROLE_KEYS = {"staff": "role_staff", "director": "role_director", "district": "role_district", "admin": "role_admin"}


def language(chosen: str | None) -> str:
    return "en" if chosen == "en" else "th"


Translator = Callable[..., str]


def translator(lang: str) -> Translator:
    index = LANGS.index(language(lang))

    def t(key: str, **values) -> str:
        text = MESSAGES[key][index]
        return text.format(**values) if values else text

    return t


def english_duration(delta: timedelta) -> str:
    minutes = max(0, int(delta.total_seconds() // 60))
    days, rest = divmod(minutes, 24 * 60)
    hours, mins = divmod(rest, 60)
    parts = [f"{n} {unit}{'' if n == 1 else 's'}" for n, unit in ((days, "day"), (hours, "hour")) if n]
    if mins or not parts:
        parts.append(f"{mins} minute{'' if mins == 1 else 's'}")
    return " ".join(parts)


def clock_time(instant: datetime, lang: str) -> str:
    """`16.30 น.` / `16:30`, in Bangkok time."""
    local = to_bangkok(instant)
    return f"{local.hour:02d}.{local.minute:02d} น." if language(lang) == "th" else f"{local.hour:02d}:{local.minute:02d}"


def when(instant: datetime, lang: str) -> str:
    return thai_datetime(instant) if language(lang) == "th" else english_datetime(instant)


def time_left(now: datetime, cutoff: datetime, lang: str) -> str:
    """`เหลือ 3 ชั่วโมง 20 นาที ก่อนปิดระบบ 16.30 น.`: what a clerk reads at the top of the home page."""
    t = translator(lang)
    if now >= cutoff:
        return t("left_none")
    delta = cutoff - now
    words = thai_duration(delta) if language(lang) == "th" else english_duration(delta)
    return t("left", words=words, time=clock_time(cutoff, lang))
