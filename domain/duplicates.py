"""R3: a student counted twice, within OBEC (two schools) or against another affiliation's list.

A case has parties (schools). Each declares the student present (with evidence) or absent; an absent
declaration settles it; two present claims go to a district officer. Pure rules, used by the
DuplicateCaseWorkflow and the API alike.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field

from domain.refusals import refusal
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


class DuplicateCaseInput(BaseModel):
    """No personal data: the student is in the database row of the case."""

    case_id: str
    round_id: str
    kind: Literal["obec", "affiliation"]
    parties: list[str]  # school codes; for "obec" [holder, claimant]
    areas: list[str]


class DeclareIn(BaseModel):
    school: str
    claim: Literal["present", "absent"]
    actor: Actor
    evidence: str | None = None
    note: str | None = Field(None, max_length=1000)


class DecideIn(BaseModel):
    keep_school: str
    actor: Actor
    reason: str = Field(min_length=1, max_length=1000)


class CaseState(BaseModel):
    inp: DuplicateCaseInput
    declarations: dict[str, Declaration] = Field(default_factory=dict)
    decision: Decision | None = None

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
        return (self.inp.kind == "obec" and self.decision is None
                and all(self.declarations.get(s) and self.declarations[s].claim == "present" for s in self.inp.parties))


def check_declare(state: CaseState, d: DeclareIn) -> None:
    if state.resolved:
        raise refusal("case_resolved", "เรื่องนี้ได้ข้อยุติแล้ว", "This case is already resolved")
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
        raise refusal("not_for_district", "เขตตัดสินได้เมื่อทั้งสองโรงเรียนยืนยันว่านักเรียนเรียนอยู่ที่ตน",
                      "The district decides only when both schools claim the student", 409)
    if d.keep_school not in state.inp.parties:
        raise refusal("not_a_party", "โรงเรียนที่เลือกไม่ใช่คู่กรณี", "The chosen school is not a party to the case", 422)
