"""R3: a student counted twice, within OBEC (two schools) or against another affiliation's list.

A case has parties (schools). Each declares the student present (with evidence) or absent; an absent
declaration settles it; two present claims go to a district officer. Pure rules, used by the
DuplicateCaseWorkflow and the API alike.

A school must never be made late by someone else (issue 16): a school that has declared the student present
with evidence is no longer blocked by the case (the case stays open for the district), a claimant may do so
while its claim still waits for the holder's district, and a case still open at the first of the parties'
cutoffs goes to the district with whatever the schools declared: from then on the district may decide on
its own. The first cutoff, not the last, is dmcflow's choice: it is the first moment a party can no longer
act, and the letter leaves the case's end open.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from pydantic import BaseModel, Field

from domain.refusals import Refusal, invalid, refusal
from domain.school_round import Actor

AGENCIES = {
    "opec": ("สช.", "Office of the Private Education Commission"),
    "local": ("อปท.", "local government"),
    "bpp": ("ตชด.", "Border Patrol Police"),
    "bma": ("กทม.", "Bangkok Metropolitan Administration"),
}


class Declaration(BaseModel):
    school: str
    claim: Literal["present", "absent"]
    by: str
    at: datetime
    evidence: str | None = None  # sha256 of the stored evidence file
    note: str | None = None


class Decision(BaseModel):
    keep_school: str | None  # None: the student stays at no party school (affiliation: the other agency keeps)
    by: str
    at: datetime
    reason: str | None = None
    claim_dismissed: bool = False  # the holder's district dismissed the claim before opening a case


class DuplicateCaseInput(BaseModel):
    """No personal data: the student is in the database row of the case."""

    case_id: str
    round_id: str
    kind: Literal["obec", "affiliation"]
    parties: list[str]  # school codes; for "obec" [holder, claimant]
    areas: list[str]
    # the holder school's area: its district alone decides (finding 4 of issue 15); None in cases opened before
    holder_area: str | None = None


class DeclareIn(BaseModel):
    school: str
    claim: Literal["present", "absent"]
    actor: Actor
    evidence: str | None = None
    note: str | None = Field(None, max_length=1000)


class ClaimReviewIn(BaseModel):
    """The holder area's district opens a claim as a case, or dismisses it (with a reason)."""

    actor: Actor
    reason: str | None = Field(None, max_length=1000)


class DecideIn(BaseModel):
    keep_school: str
    actor: Actor
    reason: str = Field(min_length=1, max_length=1000)


class CaseState(BaseModel):
    inp: DuplicateCaseInput
    declarations: dict[str, Declaration] = Field(default_factory=dict)
    decision: Decision | None = None
    # a claim on a student held elsewhere waits for the holder area's district before it is a case: until
    # then the holder school is neither blocked nor told (issue 15, finding 3)
    awaiting_district: bool = False
    # the case was still open at the first party's cutoff and went to the district (issue 16)
    at_district_since: datetime | None = None

    @property
    def resolved(self) -> bool:
        return self.outcome() is not None

    def outcome(self) -> str | None:
        """The school that keeps the student, "none" when no party does, None while undecided."""
        if self.decision is not None:
            return self.decision.keep_school or "none"
        claims = {s: d.claim for s, d in self.declarations.items()}
        if self.inp.kind == "affiliation":
            school = self.inp.parties[0]
            return {"present": school, "absent": "none"}.get(claims.get(school, ""))
        holder, claimant = self.inp.parties
        if claims.get(holder) == "absent" and claims.get(claimant) == "absent":
            return "none"
        if claims.get(holder) == "absent":
            return claimant
        if claims.get(claimant) == "absent":
            return holder
        return None

    def needs_district(self) -> bool:
        """The district decides: both schools claim the student, or the case was open at the cutoff."""
        return self.both_claim() or (self.decision is None and self.at_district_since is not None)

    def both_claim(self) -> bool:
        return (self.inp.kind == "obec" and self.decision is None
                and all(self.declarations.get(s) and self.declarations[s].claim == "present" for s in self.inp.parties))

    def blocks(self, school: str) -> bool:
        """Whether the case still keeps this party from confirming: until it is resolved, or until the school has
        declared the student present with evidence (its part is done; the rest is the district's)."""
        if self.resolved:
            return False
        declared = self.declarations.get(school)
        return not (declared is not None and unblocks(declared))


def unblocks(d: Declaration | DeclareIn) -> bool:
    """A present declaration with its evidence: the declaring school's part of the case is done."""
    return d.claim == "present" and bool(d.evidence)


def check_declare(state: CaseState, d: DeclareIn) -> None:
    if state.resolved:
        raise refusal("case_resolved", "เรื่องนี้ได้ข้อยุติแล้ว", "This case is already resolved")
    if state.awaiting_district and not (d.claim == "present" and d.school in state.inp.parties[1:]):
        # the claimant may say the student is present while the holder's district has not opened the claim yet,
        # so that a slow district does not keep it blocked; the holder knows nothing yet, and nothing settles
        raise awaiting_district()
    if d.school not in state.inp.parties:
        raise refusal("not_a_party", "โรงเรียนนี้ไม่ใช่คู่กรณีของเรื่องนี้", "This school is not a party to the case", 403)
    if d.actor.role not in ("staff", "director"):
        raise refusal("forbidden", "เฉพาะเจ้าหน้าที่หรือผู้อำนวยการโรงเรียนที่เป็นคู่กรณี", "Only the party school's staff or "
                      "director may declare", 403)
    if d.claim == "present" and not d.evidence:
        raise refusal("evidence_required", "การยืนยันว่านักเรียนยังเรียนอยู่ต้องแนบหลักฐาน (PDF, JPEG หรือ PNG)",
                      "Declaring the student present needs evidence (PDF, JPEG or PNG)", 422)
    if d.school in state.declarations:
        raise refusal("already_declared", "โรงเรียนนี้แจ้งไปแล้ว", "This school has already declared")


def check_decide(state: CaseState, d: DecideIn) -> None:
    if state.resolved:
        raise refusal("case_resolved", "เรื่องนี้ได้ข้อยุติแล้ว", "This case is already resolved")
    if d.actor.role != "district":
        raise refusal("forbidden", "เฉพาะเจ้าหน้าที่เขตพื้นที่", "Only a district officer may decide", 403)
    if not state.needs_district():
        raise refusal("not_for_district", "เขตตัดสินได้เมื่อทั้งสองโรงเรียนยืนยันว่านักเรียนเรียนอยู่ที่ตน "
                      "หรือเมื่อพ้นกำหนดส่งแล้วเรื่องยังไม่ได้ข้อยุติ",
                      "The district decides only when both schools claim the student, or once the case is still "
                      "open at the cutoff", 409)
    if d.keep_school not in state.inp.parties:
        raise refusal("not_a_party", "โรงเรียนที่เลือกไม่ใช่คู่กรณี", "The chosen school is not a party to the case", 422)


def awaiting_district() -> Refusal:
    return refusal("case_awaiting_district", "เขตพื้นที่ยังไม่ได้เปิดเรื่องนี้ จึงยังแจ้งไม่ได้",
                   "The district has not opened this case yet, so no declaration can be made", 409)


def holder_area(inp: DuplicateCaseInput) -> str | None:
    """The holder school's area (cases opened before the input named it: when both parties share one)."""
    return inp.holder_area or (inp.areas[0] if len(inp.areas) == 1 else None)


def check_review(state: CaseState, d: ClaimReviewIn, *, dismiss: bool) -> None:
    """Opening or dismissing a claim: the district of the holder school's area, while the claim waits."""
    if d.actor.role != "district":
        raise refusal("forbidden", "เฉพาะเจ้าหน้าที่เขตพื้นที่ของโรงเรียนที่มีชื่อนักเรียนอยู่",
                      "Only the district of the holder school's area may open or dismiss a claim", 403)
    if d.actor.area is None or d.actor.area != holder_area(state.inp):
        raise refusal("out_of_scope", "ผู้ใช้นี้ไม่มีสิทธิ์ทำรายการของโรงเรียนหรือเขตพื้นที่อื่น",
                      "This user may not act for another school or area", 403)
    if state.resolved or not state.awaiting_district:
        raise refusal("claim_not_waiting", "คำขอนี้ไม่ได้รอการพิจารณาของเขตแล้ว",
                      "This claim is no longer waiting for the district", 409)
    if dismiss and not (d.reason or "").strip():
        raise invalid("reason_required", "ต้องระบุเหตุผลที่ไม่เปิดเรื่อง", "Give the reason for dismissing the claim")


@dataclass(frozen=True)
class ClaimLimits:
    """How many claims on students held elsewhere a user and a school may make (settings
    `duplicate_claims_*`): each claim reveals that an ID is on some roster, so they are rationed."""

    per_user: int = 20
    per_school: int = 50
    window: timedelta = timedelta(days=1)
    per_file: int = 20


def too_many_claims(retry_after_s: int) -> Refusal:
    r = refusal("too_many_claims",
                "ขอเพิ่มนักเรียนที่มีชื่ออยู่ที่โรงเรียนอื่นเกินจำนวนที่กำหนดแล้ว จึงยังเพิ่มนักเรียนใหม่ไม่ได้ ลองใหม่ภายหลัง "
                "หรือติดต่อเขตพื้นที่",
                "Too many claims on students held by other schools: no new student can be added for now; try later "
                "or contact the district", 429)
    r.headers = {"Retry-After": str(max(1, retry_after_s))}
    return r


def too_many_claims_in_file(limit: int) -> Refusal:
    return refusal("too_many_claims_in_file",
                   f"ไฟล์นี้ขอเพิ่มนักเรียนที่มีชื่ออยู่ที่โรงเรียนอื่นครบ {limit} คนแล้ว แถวนักเรียนใหม่ที่เหลือจึงยังไม่เพิ่ม "
                   "นำเข้าอีกครั้งเมื่อเขตพิจารณาแล้ว",
                   f"This file has made its {limit} claims on students held by other schools: its remaining new "
                   "students were not added; import again once the district has reviewed them", 429)
