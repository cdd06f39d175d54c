"""An ID-correction email as the intake read it (R4, shared/docs/id-correction-email.md): its fields and labels,
its requests and attachments. Built by `intake.email_parsing`, decided by `db.id_corrections`: plain frozen
dataclasses, no parsing and no database here.

The parser refuses what it can decide alone; the caller adds the checks that need the roster or the registry
of addresses with `CorrectionRequest.refused()` / `ParsedMessage.refused()` (the first refusal stands).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from enum import StrEnum

from domain.ids import masked
from domain.refusals import Refusal


class Field(StrEnum):
    SCHOOL_CODE = "school_code"
    STUDENT_NAME = "student_name"
    GRADE = "grade"
    OLD_ID = "old_id"
    NEW_ID = "new_id"
    REASON = "reason"


# The labels seen in the wild (spec table). Thai has no case; English is matched case-insensitively.
LABELS: Mapping[Field, tuple[str, ...]] = {
    Field.SCHOOL_CODE: ("รหัสโรงเรียน", "School code"),
    Field.STUDENT_NAME: ("ชื่อ-สกุล", "ชื่อ-นามสกุล", "ชื่อนักเรียน", "Student name"),
    Field.GRADE: ("ชั้น", "Class"),
    Field.OLD_ID: ("เลขประจำตัวประชาชนเดิม", "เลขเดิม", "Old ID"),
    Field.NEW_ID: ("เลขประจำตัวประชาชนใหม่", "เลขใหม่", "เลขที่ถูกต้อง", "New ID"),
    Field.REASON: ("เหตุผล", "สาเหตุ", "Reason"),
}

# School code is required only when the sender is registered for several schools: the caller knows.
REQUIRED: tuple[Field, ...] = (Field.STUDENT_NAME, Field.OLD_ID, Field.NEW_ID)


@dataclass(frozen=True, slots=True)
class Attachment:
    filename: str | None  # decoded (RFC 2231 / RFC 2047), path parts removed; for display only
    content_type: str  # as declared by the sender
    content: bytes = field(repr=False)
    sha256: str
    evidence_type: str | None  # sniffed from the bytes: application/pdf, image/jpeg, image/png, or None

    @property
    def is_evidence(self) -> bool:
        return self.evidence_type is not None


@dataclass(frozen=True, slots=True)
class CorrectionRequest:
    index: int  # 1-based block number in the message
    school_code: str | None  # normalised; inherited from an earlier block when the block has none
    student_name: str | None  # normalised
    grade: str | None
    old_id: str | None  # normalised national ID or G-code
    new_id: str | None  # normalised 13-digit national ID
    reason: str | None
    raw: Mapping[Field, str] = field(repr=False)  # each field as written in this block
    missing: tuple[Field, ...] = ()
    problem: Refusal | None = None

    @property
    def accepted(self) -> bool:
        return self.problem is None

    def refused(self, problem: Refusal) -> CorrectionRequest:
        """For the caller's roster checks: the first refusal stands, later ones do not overwrite it."""
        return self if self.problem is not None else replace(self, problem=problem)

    def __repr__(self) -> str:  # logs are read by others: no names, no whole IDs
        old = masked(self.old_id) if self.old_id else None
        new = masked(self.new_id) if self.new_id else None
        code = self.problem.code if self.problem else None
        return f"CorrectionRequest(#{self.index}, school={self.school_code}, old={old}, new={new}, problem={code})"


@dataclass(frozen=True, slots=True)
class ParsedMessage:
    message_id: str | None  # `<left@right>`, whitespace removed
    sender: str | None  # bare lowercased address of From; None when absent or ambiguous
    subject: str = field(repr=False)  # may name a student: kept out of logs
    date: datetime | None  # the sender's Date header (aware): never use it for the cutoff
    in_reply_to: str | None = None
    references: tuple[str, ...] = ()
    requests: tuple[CorrectionRequest, ...] = ()
    attachments: tuple[Attachment, ...] = ()
    problem: Refusal | None = None
    defects: tuple[str, ...] = ()  # MIME defects the parser met (names only), for the officer and the log
    size: int = 0

    @property
    def evidence(self) -> tuple[Attachment, ...]:
        return tuple(a for a in self.attachments if a.is_evidence)

    @property
    def accepted(self) -> bool:
        return self.problem is None

    def refused(self, problem: Refusal) -> ParsedMessage:
        return self if self.problem is not None else replace(self, problem=problem)
