"""R4's pure rules for the reply and the deciding officer (issue 16): the refused number shown back as digits
only, the flags beside a request, and the decision following the school's current cutoff."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from domain.id_corrections import (
    DecideIdCorrection, IdCorrectionInput, IdCorrectionState, check_decision, digits_sent, flags_for, name_matches,
)
from domain.refusals import Refusal
from domain.school_round import Actor
from intake.email_parsing.message import parse_message
from tests.intake.messages import block, build, letter


def test_a_refused_new_id_is_shown_back_as_the_digits_the_school_typed_and_nothing_else():
    assert digits_sent("๑-4499-0900 001-2") == "1449909000012"  # Thai digits as Arabic, separators dropped
    assert digits_sent("1449909000012 <script>ตัวอย่าง</script>") == "1449909000012"
    assert digits_sent("G664400000008") == "664400000008"
    assert digits_sent("ไม่ทราบ") is None and digits_sent(None) is None
    assert digits_sent("1" * 40) == "1" * 20 + "…"  # a run of digits that is no ID is cut


@pytest.mark.parametrize("typed", ["สมชาย ใจดี", "ด.ช. สมชาย ใจดี", "เด็กชายสมชาย  ใจดี", "ด.ช.สมชาย ใจดี"])
def test_the_roster_name_with_or_without_a_title_is_no_flag(typed):
    assert name_matches(typed, "เด็กชาย", "สมชาย", "ใจดี")
    assert flags_for(typed, ("เด็กชาย", "สมชาย", "ใจดี"), []) == []


def test_another_name_or_a_new_id_asked_for_elsewhere_is_flagged_thai_first():
    assert not name_matches("สมหญิง ใจดี", "เด็กหญิง", "สมชาย", "ใจดี")
    assert not name_matches("นายสมชาย ใจดีมาก", "", "สมชาย", "ใจดี")
    flags = flags_for("สมหญิง ใจดี", ("", "สมชาย", "ใจดี"), ["IDC-B", "IDC-A"])
    assert [f.code for f in flags] == ["name_mismatch", "new_id_pending_elsewhere"]
    assert "ไม่ตรง" in flags[0].message_th and "roster" in flags[0].message_en
    assert "IDC-A, IDC-B" in flags[1].message_th and "new ID" in flags[1].message_en


def test_an_officer_may_decide_until_the_schools_current_cutoff_not_the_one_the_request_came_with():
    cutoff = datetime(2024, 4, 30, 9, 30, tzinfo=timezone.utc)
    inp = IdCorrectionInput(ref="IDC-1", round_id="r", school_code="1044449001", area="a", cutoff_at=cutoff)
    d = DecideIdCorrection(approve=True, actor=Actor(user_id="d1", role="district", area="a"), area="a")
    after = cutoff + timedelta(minutes=1)
    with pytest.raises(Refusal) as refused:
        check_decision(inp, IdCorrectionState(), d, after)
    assert refused.value.code == "round_closed"
    check_decision(inp, IdCorrectionState(), d, after, cutoff + timedelta(days=1))  # extended: still open


def test_a_refusal_about_a_field_names_the_field_with_id_in_capitals():
    parsed = parse_message(build(letter(block(old="1449900000018", new="1449909000012"))), max_bytes=10**7)
    [request] = parsed.requests
    assert request.problem.code == "national_id_check_digit"
    assert request.problem.message_en.startswith("New ID:") and request.problem.message_th.startswith("เลขประจำตัวประชาชนใหม่")
