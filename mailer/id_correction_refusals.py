"""What the ID-correction reply (templates/id_correction_reply.txt.j2) says when the email parser refuses a
message or one of its requests: Thai first, English beside, stable codes. The parser (intake.email_parsing)
decides *which* refusal; the wording lives here, beside the template that shows it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from domain.correction_requests import LABELS, Field
from domain.refusals import Refusal, refusal

# How a field is named in a reply (Thai, English).
FIELD_NAMES: Mapping[Field, tuple[str, str]] = {
    Field.SCHOOL_CODE: ("รหัสโรงเรียน", "school code"),
    Field.STUDENT_NAME: ("ชื่อ-สกุล", "student name"),
    Field.GRADE: ("ชั้น", "class"),
    Field.OLD_ID: ("เลขประจำตัวประชาชนเดิม", "old ID"),
    Field.NEW_ID: ("เลขประจำตัวประชาชนใหม่", "new ID"),
    Field.REASON: ("เหตุผล", "reason"),
}


def _template(lang: int) -> str:
    lines = [f"{FIELD_NAMES[f][lang]}: ..." for f in Field]
    return "\n".join(lines)


# How to write a request, told with every refusal of a message whose request could not be found.
TEMPLATE_TH = (
    "กรุณาพิมพ์คำขอในเนื้อความอีเมล นักเรียนหนึ่งคนต่อหนึ่งชุด ดังนี้\n" + _template(0)
    + "\n(ชั้น และเหตุผล ไม่บังคับ; เลขเดิมอาจเป็นรหัส G; ชื่อหัวข้อใช้ได้ทั้ง "
    + ", ".join(label for labels in LABELS.values() for label in labels)
    + ")\nและแนบหลักฐานอย่างน้อยหนึ่งไฟล์ (PDF, JPEG หรือ PNG)"
)
TEMPLATE_EN = (
    "Please type each request in the body of the email, one group of lines per student:\n"
    + "\n".join(f"{label}: ..." for labels in LABELS.values() for label in labels if label.isascii())
    + "\n(class and reason are optional; the old ID may be a G-code) and attach at least one PDF, JPEG or PNG"
)


# --- the whole message ------------------------------------------------------------------------------------

def _size_label(max_bytes: int) -> str:
    mb = max_bytes / (1024 * 1024)
    return f"{mb:.0f} MB" if mb == int(mb) else f"{mb:.1f} MB"


def too_large(max_bytes: int) -> Refusal:
    limit = _size_label(max_bytes)
    return refusal("too_large", f"อีเมลมีขนาดเกิน {limit} กรุณาส่งใหม่โดยลดขนาดไฟล์แนบ",
                   f"The email is larger than {limit}; please send it again with smaller attachments", 413)


def unreadable() -> Refusal:
    return refusal("unreadable", "ระบบอ่านอีเมลฉบับนี้ไม่ได้ (รูปแบบอีเมลเสียหาย) " + TEMPLATE_TH,
                   "This email could not be read (damaged format). " + TEMPLATE_EN, 422)


def no_request_block() -> Refusal:
    return refusal("no_request_block", "ไม่พบคำขอแก้ไขเลขประจำตัวประชาชนในอีเมล " + TEMPLATE_TH,
                   "No ID-correction request was found in the email. " + TEMPLATE_EN, 422)


def no_evidence(had_attachments: bool) -> Refusal:
    th, en = "ไม่พบไฟล์หลักฐาน", "No evidence attached"
    if had_attachments:
        th, en = "ไฟล์แนบไม่ใช่ PDF, JPEG หรือ PNG", "The attached files are not PDF, JPEG or PNG"
    return refusal("no_evidence",
                   f"{th} ต้องแนบหลักฐานอย่างน้อยหนึ่งไฟล์ (PDF, JPEG หรือ PNG) เช่น บัตรประชาชน ทะเบียนบ้าน",
                   f"{en}: attach at least one PDF, JPEG or PNG file (ID card, house registration)", 422)


# --- one request -------------------------------------------------------------------------------------------

def missing_field(missing: Iterable[Field]) -> Refusal:
    names = [FIELD_NAMES[f] for f in missing]
    return refusal("missing_field", "ไม่ได้ระบุ " + ", ".join(th for th, _ in names),
                   "Missing: " + ", ".join(en for _, en in names), 422)


def new_id_not_national_id() -> Refusal:
    return refusal("new_id_not_national_id", "เลขใหม่ต้องเป็นเลขประจำตัวประชาชน 13 หลัก ไม่ใช่รหัส G",
                   "The new ID must be a 13-digit national ID, not a G-code", 422)


def same_id() -> Refusal:
    return refusal("same_id", "เลขเดิมและเลขใหม่เป็นเลขเดียวกัน ไม่มีสิ่งที่ต้องแก้ไข",
                   "The old and new IDs are the same: nothing to correct", 422)


def about(fld: Field, problem: Refusal) -> Refusal:
    """A domain refusal (same stable code) saying which field it is about: a request has two IDs."""
    th, en = FIELD_NAMES[fld]
    # en[0].upper(), not capitalize(): that would write "New id" for "new ID"
    return refusal(problem.code, f"{th}: {problem.message_th}", f"{en[:1].upper()}{en[1:]}: {problem.message_en}",
                   problem.status)
