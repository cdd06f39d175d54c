"""District monitoring: the funnel, the at-risk estimate with its one-line reasons, a school's timeline."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest

from domain.area_figures import area_figures
from domain.at_risk import assess, attention_horizon
from domain.funnel import Bucket, SchoolSnapshot
from domain.rounds import ROUND_2566_3, RoundPolicy
from domain.school_round import BlockingCase, GateProgress, Stage
from domain.school_timeline import AuditItem, HistoryItem, timeline
from domain.thai_time import bangkok

R = ROUND_2566_3
APRIL_10 = bangkok(2024, 4, 10, 10, 0)
APRIL_29 = bangkok(2024, 4, 29, 10, 0)
T_1000 = bangkok(2024, 4, 30, 10, 0)
T_1545 = bangkok(2024, 4, 30, 15, 45)
T_1630 = bangkok(2024, 4, 30, 16, 30)
COMPLETE = GateProgress(students=10, results=10, repeaters=2, repeat_reasons=2, graduates=3, destinations=3)


def school(code: str = "1044449001", gate: GateProgress = COMPLETE, **kw) -> SchoolSnapshot:
    times = {"opens_at": R.opens_at, "confirm_from": R.confirm_from, "cutoff_at": R.cutoff_at} | kw
    return SchoolSnapshot(school_code=code, school_name=f"โรงเรียน {code}", area="สพม.มหาสารคาม", gate=gate, **times)


def test_every_school_is_in_exactly_one_bucket():
    schools = [
        school("1", GateProgress()),  # open, empty roster
        school("2", GateProgress(students=10, results=4)),  # open
        school("3", GateProgress(students=10, results=10, repeaters=2)),  # 3.2.2 done, 3.2.2.1 missing
        school("4", GateProgress(students=10, results=10, repeaters=2, repeat_reasons=2, graduates=3)),  # 3.2.2.1
        school("5"),  # 3.2.2.2 done
        school("6", confirmed_by="u-1", confirmed_at=T_1000),
        school("7", confirmed_by="u-1", confirmed_at=T_1000, certified_by="u-2", certified_at=T_1000),
    ]
    fig = area_figures(schools, T_1000)
    assert fig.funnel == {Bucket.not_open: 0, Bucket.open: 2, Bucket.step_3_2_2: 1, Bucket.step_3_2_2_1: 1,
                          Bucket.step_3_2_2_2: 1, Bucket.confirmed: 1, Bucket.certified: 1, Bucket.late: 0}
    assert sum(fig.funnel.values()) == fig.total == 7
    after = area_figures(schools, T_1630)  # at 16.30 every uncertified school is late, confirmed or not
    assert after.funnel[Bucket.late] == 6 and after.funnel[Bucket.certified] == 1
    before = area_figures(schools, R.opens_at - timedelta(seconds=1))
    assert before.funnel[Bucket.not_open] == 6 and before.funnel[Bucket.certified] == 1
    assert [s.stage for s in fig.schools][:2] == [Stage.confirmation_window, Stage.confirmation_window]


def test_the_horizon_is_three_days_or_half_a_short_round():
    assert attention_horizon(R.schedule) == timedelta(days=3)
    short = school(opens_at=T_1000 - timedelta(hours=4), confirm_from=T_1000, cutoff_at=T_1000 + timedelta(hours=2))
    assert attention_horizon(short.schedule) == timedelta(hours=3)


def test_no_data_yet_is_at_risk_only_near_the_cutoff():
    idle = school(gate=GateProgress(students=120))
    assert assess(idle, APRIL_10) is None  # twenty days left: not yet worrying
    risk = assess(idle, APRIL_29)
    assert risk.code == "not_started"
    assert risk.th == "ยังไม่เริ่มบันทึกข้อมูลสิ้นปี (เมนู 3.2.2) 120 รายการ เหลือเวลา 1 วัน 6 ชั่วโมง 30 นาที"
    assert risk.en == "No end-of-year record yet (menu 3.2.2), 120 to do; 1 d 6 h 30 min left"
    empty = assess(school(gate=GateProgress()), APRIL_29)
    assert empty.code == "roster_empty" and "ยังไม่มีนักเรียนในทะเบียน" in empty.th


def test_behind_its_own_pace():
    # open 40 days 10 hours (970 h), 100 of 1,000 results: ~0.1 record an hour; 900 left need a year
    slow = school(gate=GateProgress(students=1000, results=100))
    risk = assess(slow, APRIL_10)
    assert risk.code == "behind_pace"
    assert risk.th == ("ตามอัตราที่ผ่านมา (ราว 0.1 รายการ/ชม.) อีก 900 รายการจะใช้เวลาราว 363 วัน 18 ชั่วโมง 30 นาที "
                       "แต่เหลือเวลา 20 วัน 6 ชั่วโมง 30 นาที")
    assert risk.en == ("At its pace so far (~0.1 records/h) the 900 records left need about 363 d 18 h 30 min, "
                       "but 20 d 6 h 30 min are left")
    # 95 % done after 40 days: the rest takes about two days, twenty are left
    assert assess(replace(slow, gate=GateProgress(students=1000, results=950)), APRIL_10) is None
    # near the end even a few records are too many at a slow pace (confirmation and certification still to come)
    nearly = school(gate=GateProgress(students=1000, results=990))
    assert assess(nearly, R.cutoff_at - timedelta(minutes=40)).code == "behind_pace"
    # repeaters' reasons (3.2.2.1) count as work left too
    assert assess(school(gate=GateProgress(students=100, results=100, repeaters=60)), T_1000).code == "behind_pace"


def test_blocked_by_open_cases_near_the_cutoff():
    blocked = school(blocking=(BlockingCase(kind="duplicate", ref="dup-1"), BlockingCase(kind="duplicate", ref="dup-2"),
                               BlockingCase(kind="dropout", ref="dro-1")))
    assert assess(blocked, APRIL_10) is None
    risk = assess(blocked, APRIL_29)
    assert risk.code == "blocked"
    assert risk.th == "มีเรื่องค้างที่ต้องปิดก่อนยืนยัน (ออกกลางคัน 1, นักเรียนซ้ำซ้อน 2) เหลือเวลา 1 วัน 6 ชั่วโมง 30 นาที"
    assert risk.en == "Open cases block confirmation (1 dropout, 2 duplicate); 1 d 6 h 30 min left"


def test_the_last_hour_without_confirmation_or_certification():
    ready = school()
    assert assess(ready, T_1000) is None  # 6.5 hours left on the day: on track
    risk = assess(ready, T_1545)
    assert (risk.code, risk.en) == ("not_confirmed", "All records done but staff have not confirmed; 45 min left")
    confirmed = school(confirmed_by="u-1", confirmed_at=T_1000)
    assert assess(confirmed, T_1000) is None
    risk = assess(confirmed, T_1545)
    assert risk.code == "not_certified" and risk.th == "ยืนยันแล้วแต่ผู้อำนวยการยังไม่รับรอง เหลือเวลา 45 นาที"


@pytest.mark.parametrize("when", [R.opens_at - timedelta(days=1), T_1630, T_1630 + timedelta(days=3)])
def test_not_open_late_and_certified_schools_are_never_at_risk(when):
    assert assess(school(gate=GateProgress(students=50)), when) is None
    certified = school(gate=GateProgress(), confirmed_by="u", confirmed_at=T_1000, certified_by="d", certified_at=T_1000)
    assert assess(certified, when) is None and assess(certified, T_1545) is None


def test_at_risk_list_soonest_cutoff_first():
    late_cutoff = R.cutoff_at + timedelta(days=1)
    schools = [school("3", GateProgress(students=5)), school("2", GateProgress(students=5), cutoff_at=late_cutoff),
               school("1", GateProgress(students=5)), school("4")]
    fig = area_figures(schools, APRIL_29)
    assert [s.snapshot.school_code for s in fig.at_risk] == ["1", "3", "2"]
    assert [s.seconds_left for s in fig.schools] == [109800, 196200, 109800, 109800]


def test_timeline_merges_audit_and_history_in_thai_without_personal_data():
    t0 = bangkok(2024, 3, 1, 0, 0, 5)
    batch_at = bangkok(2024, 4, 2, 9, 15)
    audit = [
        AuditItem(at=batch_at, actor="u-staff", action="end_of_year_3.2.2",
                  after={"student": f"14499000000{i:02d}", "result": "promoted"}) for i in range(3)
    ] + [
        AuditItem(at=bangkok(2024, 4, 30, 9, 0, 1), actor="u-staff", action="confirm", after={"stage": "confirmed"}),
        AuditItem(at=bangkok(2024, 4, 20, 9, 0), actor="u-district", action="extend_deadline",
                  before={"cutoff_at": R.cutoff_at.isoformat()},
                  after={"cutoff_at": bangkok(2024, 5, 2, 16, 30).isoformat(), "scope": "school"}, reason="น้ำท่วม"),
        AuditItem(at=bangkok(2024, 4, 3, 8, 0), actor="system", action="duplicate_removed",
                  before={"status": "studying"}, after={"status": "transferred_out", "case": "dup-abc"}),
    ]
    history = [
        HistoryItem(at=t0, kind="started"),
        HistoryItem(at=t0, kind="timer_started", fire_at=R.confirm_from + timedelta(milliseconds=40)),
        HistoryItem(at=batch_at - timedelta(seconds=1), kind="update", name="apply_roster_batch", actor="u-staff"),
        HistoryItem(at=bangkok(2024, 4, 2, 10, 0), kind="signal", name="case_opened", ref="dup-abc",
                    case_kind="duplicate"),
        HistoryItem(at=R.confirm_from, kind="timer_fired", fire_at=R.confirm_from),
        HistoryItem(at=bangkok(2024, 4, 30, 9, 0), kind="update", name="confirm", actor="u-staff"),
        HistoryItem(at=bangkok(2024, 4, 30, 9, 5), kind="update", name="certify", actor="u-director"),
        HistoryItem(at=R.cutoff_at, kind="timer_fired", fire_at=R.cutoff_at),
    ]
    lines = timeline(audit, history, R.schedule.with_cutoff(bangkok(2024, 5, 2, 16, 30)), RoundPolicy())
    assert [line.at for line in lines] == sorted(line.at for line in lines)
    texts = [line.th for line in lines]
    assert texts[0] == "เริ่มติดตามรอบของโรงเรียน"
    assert texts[1] == "ตั้งเวลา: เริ่มยืนยัน/รับรองข้อมูล 30 เม.ย. 2567 08.30 น."
    assert "บันทึกผลสิ้นปี เมนู 3.2.2 3 รายการ" in texts  # one line per batch, counted
    assert "ระบบรับชุดแก้ไขทะเบียน" not in texts  # the audit line says it, with who
    assert "เปิดเรื่องนักเรียนซ้ำซ้อน dup-abc (ต้องปิดก่อนยืนยัน)" in texts
    assert "จำหน่ายนักเรียนซ้ำซ้อนออกจากโรงเรียน (dup-abc)" in texts
    assert ("ขยายกำหนดส่ง จาก 30 เม.ย. 2567 16.30 น. เป็น 2 พ.ค. 2567 16.30 น. เหตุผล: น้ำท่วม") in texts
    assert "ถึงเวลา: ปิดระบบ (กำหนดส่ง)" in texts  # the old cutoff's timer is still named
    confirms = [line for line in lines if "ยืนยัน" in line.th and line.at.date() == T_1000.date() and line.at.hour == 9]
    assert [(c.source, c.code, c.actor) for c in confirms] == [("audit", "confirm", "u-staff")]
    certify = next(line for line in lines if line.code == "update_certify")  # not in the audit: the history says it
    assert certify.actor == "u-director" and certify.en == "Certification accepted by the workflow"
    assert not any("14499" in line.th or "14499" in line.en or "14499" in str(line.extra) for line in lines)


def test_an_open_case_still_blocking_is_warned_six_hours_before_the_cutoff_and_not_earlier():
    from domain.at_risk import BLOCKING_WARNING, blocking_warning

    assert BLOCKING_WARNING == timedelta(hours=6)
    cases = (BlockingCase(kind="dropout", ref="DO-1"),)
    blocked = school(blocking=cases)
    six_before = T_1630 - BLOCKING_WARNING
    assert area_figures([blocked], six_before - timedelta(minutes=1)).warned == []
    [warned] = area_figures([blocked], six_before).warned
    assert warned.warning.code == "blocking_near_cutoff"
    assert warned.warning.th.startswith("อีก 6 ชั่วโมง จะถึงกำหนดส่ง") and "ออกกลางคัน 1" in warned.warning.th
    assert "1 dropout" in warned.warning.en
    assert blocking_warning(cases, Stage.confirmation_window, T_1630, T_1630 - timedelta(minutes=5)) is not None
    # no warning without a blocking case, for a case that no longer blocks, once confirmed, or after the cutoff
    assert area_figures([school()], T_1545).warned == []
    assert blocking_warning(cases, Stage.confirmation_window, T_1630, T_1545, excused={"DO-1"}) is None
    assert blocking_warning(cases, Stage.confirmed, T_1630, T_1545) is None
    assert blocking_warning(cases, Stage.late, T_1630, T_1630) is None
