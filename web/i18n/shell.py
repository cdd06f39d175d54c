"""The shell of every page (menu, roles, footer, the error page) and what a live page's screen reader
hears when a change made elsewhere arrives (web/live_pages.py)."""

PHRASES: dict[str, tuple[str, str]] = {
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
    # live pages (web/live_pages.py): what a screen reader hears when a change made elsewhere arrives
    "live_says": ("ข้อมูลในหน้านี้เปลี่ยนแล้ว เมื่อ {at}: {what}", "This page changed at {at}: {what}"),
    "live_stage": ("สถานะ {stage}", "stage {stage}"),
    "live_waiting": ("งานรอดำเนินการ {n} รายการ", "{n} items waiting"),
}
