"""How workflows call activities: by name, with explicit timeouts and retry policies.

Workflows import no activity code (the sandbox would pull in the database and SMTP clients); the
names below are the contract that `activities/` registers.
"""

from datetime import timedelta

from temporalio.common import RetryPolicy

LOAD_GATE = "load_gate"
RECORD_TRANSITION = "record_transition"
APPLY_ROSTER_BATCH = "apply_roster_batch"
SEND_SCHOOL_REMINDER = "send_school_reminder"
FANOUT_PAGE = "fanout_page"
RECORD_CHANGE = "record_school_change"
TELL_SCHOOL = "tell_school"
AREA_CUTOFF_STEP = "area_cutoff_step"
AREA_SCHEDULE = "area_schedule"
AREA_REMINDERS = "area_reminders"
AREA_LATE = "area_late"
AREA_DELIVER = "area_deliver"
NOTIFY_DUPLICATE = "notify_duplicate"
RESOLVE_DUPLICATE = "resolve_duplicate"
RECORD_DUPLICATE_DECLARATIONS = "record_duplicate_declarations"
OPEN_DUPLICATE_CASE = "open_duplicate_case"
DUPLICATE_CUTOFFS = "duplicate_cutoffs"
HAND_DUPLICATE_TO_DISTRICT = "hand_duplicate_to_district"
PROCESS_INBOUND = "process_inbound"
APPLY_ID_CORRECTION = "apply_id_correction"
SETTLE_ID_CORRECTION = "settle_id_correction"
NOTIFY_ID_CORRECTION = "notify_id_correction"
ID_CORRECTION_CUTOFF = "id_correction_cutoff"
DELIVER_MAIL = "deliver_mail"
PROCESS_INBOUND_BATCH = "process_inbound_batch"
DELIVER_MAILS = "deliver_mails"
EXPIRE_ID_CORRECTIONS = "expire_id_corrections"
OPEN_DROPOUT = "open_dropout"
DROPOUT_CALENDAR = "dropout_calendar"
POST_DROPOUT_MESSAGE = "post_dropout_message"
SETTLE_DROPOUT = "settle_dropout"
HOLD_DROPOUT_PAST_CUTOFF = "hold_dropout_past_cutoff"
NOTIFY_DROPOUT = "notify_dropout"

# Refusals are answers, not faults: retrying them changes nothing.
_NON_RETRYABLE = ["Refusal"]

DATABASE = {
    "start_to_close_timeout": timedelta(seconds=60),
    "retry_policy": RetryPolicy(
        initial_interval=timedelta(milliseconds=500), backoff_coefficient=2.0,
        maximum_interval=timedelta(seconds=30), non_retryable_error_types=_NON_RETRYABLE,
    ),
}

# Mail keeps trying while the SMTP server is down (for up to a day); the outbox makes retries safe.
MAIL = {
    "start_to_close_timeout": timedelta(seconds=60),
    "schedule_to_close_timeout": timedelta(days=1),
    "retry_policy": RetryPolicy(
        initial_interval=timedelta(seconds=2), backoff_coefficient=2.0,
        maximum_interval=timedelta(minutes=5), non_retryable_error_types=_NON_RETRYABLE,
    ),
}

# A page of a round-wide operation talks to Temporal for up to 500 schools.
FANOUT = {
    "start_to_close_timeout": timedelta(minutes=5),
    "heartbeat_timeout": timedelta(seconds=60),
    "retry_policy": RetryPolicy(initial_interval=timedelta(seconds=1), maximum_interval=timedelta(seconds=30)),
}
