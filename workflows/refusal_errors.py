"""A domain Refusal as the ApplicationError an update's caller receives."""

from temporalio.exceptions import ApplicationError

from domain.refusals import Refusal


def as_application_error(refusal: Refusal) -> ApplicationError:
    return ApplicationError(
        refusal.message_en, {**refusal.as_dict(), "status": refusal.status}, type=refusal.code, non_retryable=True,
    )
