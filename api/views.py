"""Read models built from the projection: stages computed at read time with the domain's own rule."""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Session, func, select

from api.schemas import (
    BlockingCaseOut, ConfirmedOut, ExistenceCountsOut, Instant, Person, RoundOut, SchoolRoundOut, WarningOut,
)
from db.directory import round_spec
from db.models import DropoutRequest, DuplicateCase, Round, School, SchoolRound, Student, User
from db.projection_rows import decisions_of, gate_of, stage_of
from domain.refusals import refusal
from domain.dropouts import REASONS, STATUS_TH
from domain.existence import EXCEPTION_TH, ExceptionKind, ExistenceCounts
from domain.at_risk import blocking_warning
from domain.rounds import Schedule
from domain.messages import SchoolDecided
from domain.school_round import STAGE_TH, BlockingCase, Decision, SchoolRoundState, stage_at
from domain.thai_time import thai_datetime, to_bangkok
from workflows.ids import school_round_id


def instant(value: datetime) -> Instant:
    """Shown in Thai local time: ISO with +07:00 for machines, the government style for people."""
    return Instant(iso=to_bangkok(value), th=thai_datetime(value))


def round_view(session: Session, row: Round) -> RoundOut:
    spec = round_spec(row)
    started = session.exec(select(func.count()).select_from(SchoolRound).where(SchoolRound.round_id == row.id)).one()
    return RoundOut(
        id=row.id, academic_year=row.academic_year, opens_at=instant(row.opens_at),
        confirm_from=instant(row.confirm_from), cutoff_at=instant(row.cutoff_at), final_exam_on=spec.exam_date,
        policy=spec.policy,
        reminders=[instant(i) for i in spec.schedule.reminder_instants(spec.policy)],
        started_at=instant(row.started_at) if row.started_at else None,
        schools=session.exec(select(func.count()).select_from(School)).one(), schools_started=started)


def _person(session: Session, by: str | None, at: datetime | None) -> Person | None:
    if by is None or at is None:
        return None
    user = session.get(User, by)
    return Person(by=by, by_name=user.display_name if user else None, at=instant(at))


def school_round_view(session: Session, round_id: str, school: School, now: datetime) -> SchoolRoundOut:
    row = session.get(SchoolRound, (round_id, school.code))
    if row is None:
        raise refusal("round_not_started", f"ยังไม่ได้เริ่มรอบ {round_id} ของโรงเรียนนี้",
                      f"Round {round_id} has not been started for this school", 404)
    stage = stage_of(row, now)
    gate = gate_of(row)
    confirmed_out = _person(session, row.confirmed_by, row.confirmed_at)
    if confirmed_out is not None:
        counts = decisions_of(row)[0].counts
        confirmed_out = ConfirmedOut(**confirmed_out.model_dump(),
                                     existence=existence_counts_out(counts) if counts else None)
    excused = set(gate.excused_cases)
    return SchoolRoundOut(
        round_id=round_id, school_code=school.code, school_name=school.name, area=row.area, stage=stage.value,
        stage_th=STAGE_TH[stage], opens_at=instant(row.opens_at), confirm_from=instant(row.confirm_from),
        cutoff_at=instant(row.cutoff_at), seconds_to_cutoff=max(0, int((row.cutoff_at - now).total_seconds())),
        gate=gate.summary(), existence=existence_counts_out(gate.existence), confirmed=confirmed_out,
        certified=_person(session, row.certified_by, row.certified_at),
        blocking_cases=[_excused(blocking_case(session, c, school.code), excused) for c in row.blocking],
        warnings=_warnings(row.blocking, stage, row.cutoff_at, now, set(getattr(gate, "excused_cases", ()))),
        workflow_id=school_round_id(round_id, school.code))


def decided_view(before: SchoolRoundOut, decided: SchoolDecided | SchoolRoundState, user: User,
                 now: datetime) -> SchoolRoundOut:
    """The school after a decision, from its view just before and the workflow's answer (issue 18: no second read).
    Only the decisions and the cutoff move; the gate and the cases are as read before. A person other than
    `user` can only be one the view before already named."""
    if isinstance(decided, SchoolRoundState):  # a school started before issue 18 answers its whole state
        confirmed, certified, cutoff_at = decided.confirmed, decided.certified, decided.schedule.cutoff_at
    else:
        confirmed, certified, cutoff_at = decided.confirmed, decided.certified, decided.cutoff_at
    schedule = Schedule(opens_at=before.opens_at.iso, confirm_from=before.confirm_from.iso, cutoff_at=cutoff_at)
    stage = stage_at(now, schedule, confirmed, certified)

    def person(d: Decision | None, was: Person | None) -> Person | None:
        if d is None:
            return None
        if was is not None and was.by == d.by and was.at.iso == d.at:
            return was
        return Person(by=d.by, by_name=user.display_name if d.by == user.id else None, at=instant(d.at))

    confirmed_out = person(confirmed, before.confirmed)
    if confirmed_out is not None and not isinstance(confirmed_out, ConfirmedOut):
        confirmed_out = ConfirmedOut(**confirmed_out.model_dump(),
                                     existence=existence_counts_out(confirmed.counts) if confirmed.counts else None)
    blocking = [{"kind": c.kind, "ref": c.ref} for c in before.blocking_cases]
    excused = {c.ref for c in before.blocking_cases if not c.blocks_confirmation}
    return before.model_copy(update=dict(
        stage=stage.value, stage_th=STAGE_TH[stage], cutoff_at=instant(cutoff_at),
        seconds_to_cutoff=max(0, int((cutoff_at - now).total_seconds())), confirmed=confirmed_out,
        certified=person(certified, before.certified), warnings=_warnings(blocking, stage, cutoff_at, now, excused)))


def _warnings(blocking: list[dict], stage, cutoff_at: datetime, now: datetime, excused: set[str]) -> list[WarningOut]:
    """Issue 16: open cases still blocking the school hours before its cutoff (domain.at_risk.BLOCKING_WARNING)."""
    w = blocking_warning([BlockingCase.model_validate(c) for c in blocking], stage, cutoff_at, now, excused)
    return [WarningOut(code=w.code, th=w.th, en=w.en)] if w else []


def existence_counts_out(c: ExistenceCounts) -> ExistenceCountsOut:
    """R11's counts as the director reads them before certifying (R12)."""
    kinds_th = ", ".join(f"{EXCEPTION_TH[ExceptionKind(k)]} {n}" for k, n in sorted(c.exception_kinds.items()) if n)
    kinds_en = ", ".join(f"{k} {n}" for k, n in sorted(c.exception_kinds.items()) if n)
    return ExistenceCountsOut(
        students=c.students, present=c.present, exceptions=c.exceptions, unmarked=c.unmarked,
        exception_kinds=c.exception_kinds, complete=c.complete,
        summary_th=(f"นักเรียน {c.students} คน มีตัวตนอยู่จริง {c.present} คน ข้อยกเว้น {c.exceptions} คน"
                    + (f" ({kinds_th})" if kinds_th else "") + f" ยังไม่ได้ยืนยัน {c.unmarked} คน"),
        summary_en=(f"{c.students} students: {c.present} present, {c.exceptions} exception(s)"
                    + (f" ({kinds_en})" if kinds_en else "") + f", {c.unmarked} not yet confirmed"))


def _excused(case: BlockingCaseOut, excused: set[str]) -> BlockingCaseOut:
    if case.kind == "dropout" and case.ref in excused:
        case.blocks_confirmation = False
        case.title_th += " — บันทึกเป็นข้อยกเว้นแล้ว (ข้อ 11) ไม่ขวางการยืนยัน รอเขตพื้นที่พิจารณา"
        case.title_en += " — recorded as an exception (R11): no longer holds the confirmation back"
    return case


def _student_name(session: Session, student_pk: int) -> str:
    s = session.get(Student, student_pk)
    return f"{s.prefix}{s.first_name} {s.last_name}".strip() if s else ""


def blocking_case(session: Session, case: dict, school_code: str) -> BlockingCaseOut:
    kind, ref = case["kind"], case["ref"]
    if kind == "dropout" and (row := session.get(DropoutRequest, ref)) is not None:
        name = _student_name(session, row.student_pk)
        return BlockingCaseOut(kind=kind, ref=ref, status=row.status,
                               title_th=f"คำขอออกกลางคัน {ref}: {name} ({REASONS[row.reason][0]}, {STATUS_TH[row.status]})",
                               title_en=f"Dropout request {ref}: {name} ({row.status})")
    if kind == "duplicate" and (dup := session.get(DuplicateCase, ref)) is not None:
        if dup.kind == "obec" and school_code == dup.claimant_school:  # its claim: nothing of the holder's record
            return BlockingCaseOut(kind=kind, ref=ref, status=dup.status,
                                   title_th=f"นักเรียนซ้ำซ้อน {ref}: คำขอเพิ่มนักเรียน {dup.student_id}",
                                   title_en=f"Duplicate student case {ref}: claim of {dup.student_id}")
        name = _student_name(session, dup.student_pk)
        return BlockingCaseOut(kind=kind, ref=ref, status=dup.status, title_th=f"นักเรียนซ้ำซ้อน {ref}: {name}",
                               title_en=f"Duplicate student case {ref}: {name}")
    return BlockingCaseOut(kind=kind, ref=ref, title_th=f"เรื่องค้าง {kind} {ref}", title_en=f"Open {kind} case {ref}")
