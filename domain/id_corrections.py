"""R4: national-ID corrections requested by email and decided by the district, as pure rules."""

from __future__ import annotations

import hashlib
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field

from domain.refusals import refusal
from domain.school_round import Actor


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
    status: Literal["pending", "approved", "rejected", "expired", "failed"] = "pending"
    decided_by: str | None = None
    decided_at: datetime | None = None
    reason: str | None = None


def check_decision(inp: IdCorrectionInput, state: IdCorrectionState, d: DecideIdCorrection, now: datetime) -> None:
    if d.actor.role != "district" or d.area != inp.area:
        raise refusal("forbidden", "เฉพาะเจ้าหน้าที่เขตพื้นที่ของโรงเรียนนี้", "Only a district officer of the school's area "
                      "may decide", 403)
    if state.status != "pending":
        raise refusal("already_decided", f"คำขอ {inp.ref} ได้ข้อยุติแล้ว ({state.status})",
                      f"Request {inp.ref} is already settled ({state.status})")
    if now >= inp.cutoff_at:
        raise refusal("round_closed", "พ้นกำหนดแก้ไขเลขประจำตัวประชาชนแล้ว", "The deadline for ID corrections has passed")
    if not d.approve and not (d.reason or "").strip():
        raise refusal("reason_required", "การไม่อนุมัติต้องระบุเหตุผลให้โรงเรียนทราบ", "A rejection needs a reason for the "
                      "school", 422)
