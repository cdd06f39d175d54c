"""Evidence files (PDF, JPEG, PNG), content-addressed in the database."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Container

from sqlmodel import Session

from db.models import EvidenceFile
from domain.evidence import sniff_evidence
from domain.refusals import invalid

MAX_EVIDENCE_BYTES = 25 * 1024 * 1024
def store_evidence(session: Session, data: bytes, filename: str = "") -> EvidenceFile:
    if len(data) > MAX_EVIDENCE_BYTES:
        raise invalid("evidence_too_large", "ไฟล์หลักฐานใหญ่เกิน 25 MB", "The evidence file is larger than 25 MB")
    ctype = sniff_evidence(data)
    if ctype is None:
        raise invalid("evidence_type", "หลักฐานต้องเป็นไฟล์ PDF, JPEG หรือ PNG", "Evidence must be a PDF, JPEG or PNG file")
    digest = hashlib.sha256(data).hexdigest()
    row = session.get(EvidenceFile, digest) or next(  # or added in this transaction, not flushed yet
        (o for o in session.new if isinstance(o, EvidenceFile) and o.sha256 == digest), None)
    if row is None:
        name = re.sub(r"[\x00-\x1f\x7f]", "", filename)[:255]  # a client's name for it: shown, never a path
        row = EvidenceFile(sha256=digest, content_type=ctype, size=len(data), filename=name, data=data)
        session.add(row)
    return row


def stored_evidence_sha(session: Session, data: bytes, filename: str, stored: Container[str]) -> str:
    """`store_evidence(...).sha256`, without reading the row (and its bytes) back when `stored` says it is there
    already: the intake reads which of a batch's files are stored in one query (evidence is never deleted)."""
    digest = hashlib.sha256(data).hexdigest()
    if digest in stored and len(data) <= MAX_EVIDENCE_BYTES and sniff_evidence(data) is not None:
        return digest
    return store_evidence(session, data, filename).sha256
