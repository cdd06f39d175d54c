"""R3 case outcomes: who keeps the student, for every combination of declarations and decisions."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from domain.duplicates import (
    CaseState, DecideIn, Decision, Declaration, DeclareIn, DuplicateCaseInput, check_decide, check_declare,
)
from domain.refusals import Refusal
from domain.school_round import Actor

AT = datetime(2024, 4, 30, 3, 0, tzinfo=timezone.utc)
HOLDER, CLAIMANT = "1044449002", "1044449001"


def obec(**claims: str) -> CaseState:
    state = CaseState(inp=DuplicateCaseInput(case_id="dup-1", round_id="r", kind="obec", parties=[HOLDER, CLAIMANT],
                                             areas=["a"]))
    for school, claim in claims.items():
        code = HOLDER if school == "holder" else CLAIMANT
        state.declarations[code] = Declaration(school=code, claim=claim, by="u", at=AT, evidence="e")
    return state


@pytest.mark.parametrize(("claims", "outcome"), [
    ({}, None),
    ({"holder": "present"}, None),
    ({"claimant": "present"}, None),
    ({"holder": "present", "claimant": "present"}, None),
    ({"holder": "absent"}, CLAIMANT),
    ({"claimant": "absent"}, HOLDER),
    ({"holder": "absent", "claimant": "present"}, CLAIMANT),
    ({"holder": "present", "claimant": "absent"}, HOLDER),
    ({"holder": "absent", "claimant": "absent"}, "none"),
])
def test_obec_outcomes(claims, outcome):
    state = obec(**claims)
    assert state.outcome() == outcome
    assert state.needs_district() == (claims == {"holder": "present", "claimant": "present"})


def test_the_district_decides_only_two_present_claims():
    staff, district = Actor(user_id="s", role="staff"), Actor(user_id="d", role="district")
    with pytest.raises(Refusal) as early:
        check_decide(obec(holder="present"), DecideIn(keep_school=HOLDER, actor=district, reason="x"))
    assert early.value.code == "not_for_district"
    both = obec(holder="present", claimant="present")
    with pytest.raises(Refusal) as who:
        check_decide(both, DecideIn(keep_school=HOLDER, actor=staff, reason="x"))
    assert who.value.code == "forbidden"
    with pytest.raises(Refusal) as outsider:
        check_decide(both, DecideIn(keep_school="1040000009", actor=district, reason="x"))
    assert outsider.value.code == "not_a_party"
    check_decide(both, DecideIn(keep_school=CLAIMANT, actor=district, reason="x"))
    both.decision = Decision(keep_school=CLAIMANT, by="d", at=AT)
    assert both.outcome() == CLAIMANT and not both.needs_district()


def test_declarations_need_a_party_evidence_and_are_made_once():
    staff = Actor(user_id="s", role="staff")
    state = obec()
    for declare, code in [(DeclareIn(school="1040000009", claim="absent", actor=staff), "not_a_party"),
                          (DeclareIn(school=HOLDER, claim="present", actor=staff), "evidence_required"),
                          (DeclareIn(school=HOLDER, claim="absent", actor=Actor(user_id="d", role="district")),
                           "forbidden")]:
        with pytest.raises(Refusal) as refused:
            check_declare(state, declare)
        assert refused.value.code == code
    with pytest.raises(Refusal) as twice:
        check_declare(obec(holder="present"), DeclareIn(school=HOLDER, claim="absent", actor=staff))
    assert twice.value.code == "already_declared"
    with pytest.raises(Refusal) as settled:
        check_declare(obec(holder="absent"), DeclareIn(school=CLAIMANT, claim="absent", actor=staff))
    assert settled.value.code == "case_resolved"


@pytest.mark.parametrize(("claim", "outcome"), [("present", HOLDER), ("absent", "none")])
def test_affiliation_outcomes(claim, outcome):
    state = CaseState(inp=DuplicateCaseInput(case_id="dup-2", round_id="r", kind="affiliation", parties=[HOLDER],
                                             areas=["a"]))
    assert state.outcome() is None
    state.declarations[HOLDER] = Declaration(school=HOLDER, claim=claim, by="u", at=AT, evidence="e")
    assert state.outcome() == outcome


# --- issue 16: a school is never made late by someone else ---------------------------------------------

def test_a_present_declaration_with_evidence_unblocks_the_declaring_school_only():
    state = obec(claimant="present")
    assert not state.blocks(CLAIMANT) and state.blocks(HOLDER) and not state.resolved
    absent_only = obec()
    absent_only.declarations[HOLDER] = Declaration(school=HOLDER, claim="present", by="u", at=AT, evidence=None)
    assert absent_only.blocks(HOLDER)  # without its evidence the declaration is not the school's part done
    settled = obec(holder="absent")
    assert not settled.blocks(HOLDER) and not settled.blocks(CLAIMANT)


def test_the_claimant_may_declare_present_while_its_claim_waits_for_the_district_and_nothing_else():
    staff = Actor(user_id="s", role="staff")
    state = obec()
    state.awaiting_district = True
    check_declare(state, DeclareIn(school=CLAIMANT, claim="present", actor=staff, evidence="e"))
    for declare in (DeclareIn(school=CLAIMANT, claim="absent", actor=staff),
                    DeclareIn(school=HOLDER, claim="present", actor=staff, evidence="e")):
        with pytest.raises(Refusal) as refused:
            check_declare(state, declare)
        assert refused.value.code == "case_awaiting_district"
    with pytest.raises(Refusal) as no_evidence:
        check_declare(state, DeclareIn(school=CLAIMANT, claim="present", actor=staff))
    assert no_evidence.value.code == "evidence_required"


def test_a_case_open_at_the_cutoff_is_the_districts_to_decide_on_what_was_declared():
    district = Actor(user_id="d", role="district")
    state = obec(claimant="present")
    assert not state.needs_district()
    state.at_district_since = AT
    assert state.needs_district() and not state.both_claim()
    check_decide(state, DecideIn(keep_school=HOLDER, actor=district, reason="ไม่มีหลักฐานจากโรงเรียนเดิม"))
    state.decision = Decision(keep_school=HOLDER, by="d", at=AT)
    assert state.outcome() == HOLDER and not state.needs_district()
