"""The roster operations of the letter's rules table (R1, R2, R5–R9), one school at a time, and the district's
removal of a record.

Students are named in request bodies, never in paths, so national IDs stay out of access logs.
"""

from __future__ import annotations

import asyncio

from fastapi import APIRouter
from pydantic import BaseModel, Field

from api.deps import EngineDep, TemporalDep, UserDep, require_role, school_in_scope
from api.errors import ERROR_RESPONSES
from api.roster_batches import apply_one
from db.engine import session_scope
from domain.roster_rules import RemovalIn, SchoolProfileIn, StatusIn, StudentIn, StudentUpdateIn, TransferOutIn

router = APIRouter(prefix="/rounds/{round_id}/schools/{school_code}", tags=["roster"], responses=ERROR_RESPONSES)


class OpResult(BaseModel):
    applied: int
    gate: dict
    cases: list[str] = Field(default_factory=list)


class StudentRef(BaseModel):
    student: str = Field(description="national ID or G-code")


class UpdateStudentIn(StudentRef):
    changes: StudentUpdateIn
    reason: str | None = Field(None, max_length=500,
                               description="why: required to move a student up a class (a correction, R9); audited")


class TransferOutBody(StudentRef, TransferOutIn):
    pass


class StatusBody(StudentRef, StatusIn):
    pass


class RemovalBody(StudentRef, RemovalIn):
    pass


async def _op(engine, client, user, round_id: str, school_code: str, op: str, data: dict) -> OpResult:
    require_role(user, "staff", what_th="แก้ไขทะเบียนนักเรียน (เฉพาะเจ้าหน้าที่โรงเรียน)",
                 what_en="change the roster (school staff only)")

    def scope() -> None:
        with session_scope(engine) as session:
            school_in_scope(session, user, school_code)

    await asyncio.to_thread(scope)
    outcome = await apply_one(engine, client, user, round_id, school_code, op, data)
    return OpResult(applied=outcome.applied, gate=outcome.gate.summary(), cases=[c.case_id for c in outcome.cases])


@router.put("/profile", operation_id="update_school_profile", response_model=OpResult,
            summary="R1: update the school's basic data")
async def update_school_profile(round_id: str, school_code: str, body: SchoolProfileIn, user: UserDep,
                                engine: EngineDep, client: TemporalDep) -> OpResult:
    return await _op(engine, client, user, round_id, school_code, "update_school_profile", body.model_dump(mode="json"))


@router.post("/students", operation_id="add_student", response_model=OpResult,
             summary="R2, R5, R6: add a student who sat the AY 2566 final exam here (never next year's applicant; "
                     "years are BE)")
async def add_student(round_id: str, school_code: str, body: StudentIn, user: UserDep, engine: EngineDep,
                      client: TemporalDep) -> OpResult:
    return await _op(engine, client, user, round_id, school_code, "add_student", body.model_dump(mode="json"))


@router.post("/students/transfer-in", operation_id="transfer_in_student", response_model=OpResult,
             summary="R6: transfer a student in (only one who sat the final exam here)")
async def transfer_in_student(round_id: str, school_code: str, body: StudentIn, user: UserDep, engine: EngineDep,
                              client: TemporalDep) -> OpResult:
    return await _op(engine, client, user, round_id, school_code, "transfer_in_student", body.model_dump(mode="json"))


@router.post("/students/by-gcode", operation_id="add_student_by_gcode", response_model=OpResult,
             summary="R6: add a student without a national ID, by G-code")
async def add_student_by_gcode(round_id: str, school_code: str, body: StudentIn, user: UserDep, engine: EngineDep,
                               client: TemporalDep) -> OpResult:
    return await _op(engine, client, user, round_id, school_code, "add_student_by_gcode", body.model_dump(mode="json"))


@router.post("/students/update", operation_id="update_student", response_model=OpResult,
             summary="R9: classroom, grade (moving up is a correction with its reason; promotion comes from 3.2.2), "
                     "name and general edits")
async def update_student(round_id: str, school_code: str, body: UpdateStudentIn, user: UserDep, engine: EngineDep,
                         client: TemporalDep) -> OpResult:
    data = {"student": body.student, "changes": body.changes.model_dump(mode="json", exclude_unset=True),
            "reason": body.reason}
    return await _op(engine, client, user, round_id, school_code, "update_student", data)


@router.post("/students/transfer-out", operation_id="transfer_out_student", response_model=OpResult,
             summary="R7: transfer out a student who left before the final exam (the day they left, on or before "
                     "the round's final-exam date)")
async def transfer_out_student(round_id: str, school_code: str, body: TransferOutBody, user: UserDep,
                               engine: EngineDep, client: TemporalDep) -> OpResult:
    details = body.model_dump(mode="json", exclude={"student"})
    return await _op(engine, client, user, round_id, school_code, "transfer_out_student",
                     {"student": body.student, "details": details})


@router.post("/students/status", operation_id="set_student_status", response_model=OpResult,
             summary="Record a student's death (with its evidence); a transfer out is R7's operation, a dropout needs "
                     "the district consultation (R8), removal is the district's, a return is an admission")
async def set_student_status(round_id: str, school_code: str, body: StatusBody, user: UserDep, engine: EngineDep,
                             client: TemporalDep) -> OpResult:
    status = body.model_dump(mode="json", exclude={"student"})
    return await _op(engine, client, user, round_id, school_code, "set_student_status",
                     {"student": body.student, "status": status})


@router.post("/students/remove", operation_id="remove_student", response_model=OpResult,
             summary="Remove a record from a school's roster, with the reason (the district of the school's area, or "
                     "admin; audited)")
async def remove_student(round_id: str, school_code: str, body: RemovalBody, user: UserDep, engine: EngineDep,
                         client: TemporalDep) -> OpResult:
    require_role(user, "district", "admin", what_th="ลบนักเรียนออกจากทะเบียน (เฉพาะเขตพื้นที่)",
                 what_en="remove a student from the roster (district only)")

    def scope() -> None:
        with session_scope(engine) as session:
            school_in_scope(session, user, school_code)  # a district officer: its own area's schools only

    await asyncio.to_thread(scope)
    outcome = await apply_one(engine, client, user, round_id, school_code, "remove_student",
                              {"student": body.student, "reason": body.reason}, kind="removal")
    return OpResult(applied=outcome.applied, gate=outcome.gate.summary())
