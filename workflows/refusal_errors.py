"""A domain Refusal across the workflow boundary, both ways: the ApplicationError a workflow's validator or an
activity raises, and the Refusal an update's caller gets back from it (status and details kept)."""

from temporalio.exceptions import ApplicationError

from domain.refusals import Refusal, refusal


def as_application_error(refused: Refusal) -> ApplicationError:
    return ApplicationError(
        refused.message_en, {**refused.as_dict(), "status": refused.status}, type=refused.code, non_retryable=True,
    )


def refusal_from_failure(exc: BaseException) -> Refusal:
    """The Refusal inside a failed update (its cause chain holds the ApplicationError, also through an activity)."""
    cause: BaseException | None = exc
    while cause is not None and not isinstance(cause, ApplicationError):
        cause = getattr(cause, "cause", None) or cause.__cause__  # an update failure's `cause`, then the chain
    if isinstance(cause, ApplicationError) and cause.details and isinstance(cause.details[0], dict) \
            and "code" in cause.details[0]:
        return Refusal.from_dict(cause.details[0])
    return refusal("refused", "ระบบปฏิเสธคำขอนี้", f"Refused: {cause or exc}")
