"""One path for a refusal across the workflow boundary: what an activity or a validator raises is what the API's
caller gets back, code, both texts, status and details (a 422 from an activity was once answered as 409)."""

from __future__ import annotations

from temporalio.client import WorkflowUpdateFailedError
from temporalio.exceptions import ActivityError, RetryState

from domain.refusals import Refusal, refusal
from workflows.refusal_errors import as_application_error, refusal_from_failure


def _through_an_activity(r: Refusal) -> WorkflowUpdateFailedError:
    """As an update handler sees an activity's refusal: ActivityError caused by the ApplicationError."""
    activity_error = ActivityError("activity failed", scheduled_event_id=5, started_event_id=6, identity="w",
                                   activity_type="apply_roster_batch", activity_id="1",
                                   retry_state=RetryState.NON_RETRYABLE_FAILURE)
    activity_error.__cause__ = as_application_error(r)
    return WorkflowUpdateFailedError(activity_error)


def test_an_activitys_refusal_keeps_its_status_and_texts():
    sent = refusal("batch_mismatch", "ชุดข้อมูลไม่ใช่ของโรงเรียน/รอบนี้", "The batch belongs to another school", 422)
    got = refusal_from_failure(_through_an_activity(sent))
    assert (got.code, got.message_th, got.message_en, got.status) == (sent.code, sent.message_th, sent.message_en, 422)


def test_a_validators_refusal_keeps_its_details():
    sent = refusal("blocking_cases", "มีเรื่องค้าง", "Open cases", 409, details={"cases": [{"kind": "dropout", "ref": "D1"}]})
    got = refusal_from_failure(WorkflowUpdateFailedError(as_application_error(sent)))
    assert got.as_dict() == sent.as_dict() and got.status == 409


def test_a_failure_that_is_not_a_refusal_is_still_answered_in_thai():
    got = refusal_from_failure(WorkflowUpdateFailedError(RuntimeError("boom")))
    assert got.code == "refused" and got.message_th


def test_a_report_issue_becomes_the_same_refusal():
    issue = {"code": "too_many_claims", "message_th": "ขอเกินจำนวน", "message_en": "Too many claims", "status": 429,
             "retry_after": "60"}
    got = Refusal.from_dict(issue)
    assert (got.code, got.status, got.details) == ("too_many_claims", 429, {"retry_after": "60"})
