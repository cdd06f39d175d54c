"""R4: national-ID corrections requested by email and decided by the district, as pure rules."""

from __future__ import annotations

import hashlib
import re
import unicodedata
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field

from domain.ids import normalise_name
from domain.refusals import refusal
from domain.school_round import Actor
from domain.thai_time import arabic_digits


def reference(message_sha: str, block: int) -> str:
    """The reference number told to the school: stable, so a message processed twice gets the same ones."""
    return "IDC-" + hashlib.sha256(f"{message_sha}/{block}".encode()).hexdigest()[:8].upper()


class IdCorrectionInput(BaseModel):
    ref: str
    round_id: str
    school_code: str
    area: str
    cutoff_at: datetime  # undecided at this instant, the request expires


class DecideIdCorrection(BaseModel):
    approve: bool
    reason: str | None = Field(None, max_length=1000)
    actor: Actor
    area: str = Field(description="the officer's area, checked against the request's")


class IdCorrectionState(BaseModel):
    # deferred: approved after the school certified its roster; the next round's start applies it
    status: Literal["pending", "approved", "deferred", "rejected", "expired", "failed"] = "pending"
    decided_by: str | None = None
    decided_at: datetime | None = None
    reason: str | None = None


def check_decision(inp: IdCorrectionInput, state: IdCorrectionState, d: DecideIdCorrection, now: datetime,
                   cutoff_at: datetime | None = None) -> None:
    """`cutoff_at`: the school's cutoff as the request last learned it (an extension moves it later)."""
    if d.actor.role != "district" or d.area != inp.area:
        raise refusal("forbidden", "เฉพาะเจ้าหน้าที่เขตพื้นที่ของโรงเรียนนี้", "Only a district officer of the school's area "
                      "may decide", 403)
    if state.status != "pending":
        raise refusal("already_decided", f"คำขอ {inp.ref} ได้ข้อยุติแล้ว ({state.status})",
                      f"Request {inp.ref} is already settled ({state.status})")
    if now >= (cutoff_at or inp.cutoff_at):
        raise refusal("round_closed", "พ้นกำหนดแก้ไขเลขประจำตัวประชาชนแล้ว", "The deadline for ID corrections has passed")
    if not d.approve and not (d.reason or "").strip():
        raise refusal("reason_required", "การไม่อนุมัติต้องระบุเหตุผลให้โรงเรียนทราบ", "A rejection needs a reason for the "
                      "school", 422)


SENT_DIGITS_MAX = 20  # an ID has 13; more than this is not a number worth showing back


def digits_sent(raw: str | None) -> str | None:
    """The number a school typed, shown back when it was refused: digits only (Thai digits as Arabic), so that a
    reply echoes nothing else the sender chose (issue 15). Too long a run is cut and marked."""
    digits = re.sub(r"[^0-9]", "", arabic_digits(unicodedata.normalize("NFKC", raw or "")))
    return (digits[:SENT_DIGITS_MAX] + "…" if len(digits) > SENT_DIGITS_MAX else digits) or None


# --- flags for the deciding officer: accepted requests that deserve a second look ----------------------

# Titles a clerk may type before the name, besides the roster's own prefix.
TITLES = ("เด็กชาย", "เด็กหญิง", "ด.ช.", "ด.ญ.", "ดช.", "ดญ.", "นาย", "นางสาว", "น.ส.", "นส.", "นาง",
          "mr.", "mr", "miss", "mrs.", "mrs", "ms.", "ms", "master")


class Flag(BaseModel):
    code: str
    message_th: str
    message_en: str


def _compact_name(text: str) -> str:
    return re.sub(r"[\s.]", "", normalise_name(text)).casefold()


def name_matches(typed: str | None, prefix: str, first: str, last: str) -> bool:
    """The name typed in the email is the roster's, spacing, dots and case aside, with or without a title."""
    if not typed:
        return False
    wanted = _compact_name(typed)
    name = _compact_name(f"{first}{last}")
    return wanted in {name, *(_compact_name(title) + name for title in (prefix, *TITLES) if title)}


def name_mismatch() -> Flag:
    return Flag(code="name_mismatch",
                message_th="ชื่อ-สกุลในอีเมลไม่ตรงกับชื่อในทะเบียนนักเรียนของเลขเดิมนี้ ตรวจหลักฐานก่อนพิจารณา",
                message_en="The student name in the email does not match the roster's name for the old ID; "
                           "check the evidence before deciding")


def new_id_pending_elsewhere(refs: list[str]) -> Flag:
    listed = ", ".join(sorted(refs))
    return Flag(code="new_id_pending_elsewhere",
                message_th=f"เลขประจำตัวประชาชนใหม่นี้อยู่ในคำขออื่นที่รอพิจารณาด้วย ({listed})",
                message_en=f"The new ID is also requested in another pending request ({listed})")


def flags_for(typed_name: str | None, roster_name: tuple[str, str, str] | None, other_pending: list[str]) -> list[Flag]:
    """What the deciding officer must see beside a request (it may still be approved): a name that is not the
    roster's, and a new ID that another open request (another student, or a resent copy) asks for too."""
    found = []
    if roster_name is not None and not name_matches(typed_name, *roster_name):
        found.append(name_mismatch())
    if other_pending:
        found.append(new_id_pending_elsewhere(other_pending))
    return found
