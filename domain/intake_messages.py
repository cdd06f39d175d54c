"""What crosses the intake's workflow boundaries: hashes and reference numbers, never the IDs."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field

from domain.id_corrections import IdCorrectionInput


class InboundOutcome(BaseModel):
    outcome: str  # accepted | partly_accepted | refused:<code> | duplicate
    requests: list[IdCorrectionInput] = Field(default_factory=list)  # the pending ones, to follow
    reply_key: str | None = None


class InboundBatch(BaseModel):
    """What a batch of stored messages came to, for InboundIntakeWorkflow: the replies to send (by message), the
    messages whose processing failed (each is tried again on its own, so that one cannot hold up the rest), and
    the earliest cutoff among the requests it opened (when they expire, undecided)."""

    replies: dict[str, str] = Field(default_factory=dict)  # message hash -> outbox key of its reply
    failed: list[str] = Field(default_factory=list)
    next_cutoff: datetime | None = None


class IntakeRun(BaseModel):
    """InboundIntakeWorkflow's input: empty when the intake starts it, its state when it continues as new."""

    waiting: list[str] = Field(default_factory=list)  # hashes of stored messages, in the order received
    unsent: dict[str, str] = Field(default_factory=dict)  # replies decided but not sent yet (SMTP down), by message
    next_cutoff: datetime | None = None
    carried: bool = False  # False: a fresh start, which looks the next cutoff up in the database
    history_limit: int = 10_000  # events before it continues as new (a message adds one, a batch about ten)
