"""What crosses the intake's workflow boundaries: hashes and reference numbers, never the IDs."""

from __future__ import annotations

from pydantic import BaseModel, Field

from domain.id_corrections import IdCorrectionInput


class InboundOutcome(BaseModel):
    outcome: str  # accepted | partly_accepted | refused:<code> | duplicate
    requests: list[IdCorrectionInput] = Field(default_factory=list)  # the pending ones, to follow
    reply_key: str | None = None
