"""Evidence files: what the bytes really are. A declared type or a file name proves nothing."""

from __future__ import annotations

EVIDENCE_TYPES = ((b"%PDF-", "application/pdf"), (b"\xff\xd8\xff", "image/jpeg"), (b"\x89PNG\r\n\x1a\n", "image/png"))


def sniff_evidence(content: bytes) -> str | None:
    """application/pdf, image/jpeg or image/png by the magic bytes, else None (not evidence)."""
    return next((kind for magic, kind in EVIDENCE_TYPES if content.startswith(magic)), None)
