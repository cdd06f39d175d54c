"""A message's lines to its requests: label lines grouped into blocks, one block a student, each block's
fields normalised and checked with what needs no database (missing fields, malformed IDs, same old and new)."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

from domain.correction_requests import REQUIRED, CorrectionRequest, Field
from domain.ids import normalise_name, normalise_national_id, normalise_school_code, normalise_student_id
from domain.refusals import Refusal
from domain.thai_time import arabic_digits
from intake.email_parsing.labels import label_line
from mailer.id_correction_refusals import about, missing_field, new_id_not_national_id, same_id

_IDENTIFYING = REQUIRED  # a block with none of these filled in is not a request (e.g. an empty template)


def split_blocks(lines: Iterable[str]) -> list[dict[Field, str]]:
    """Label lines grouped into blocks: a field already seen in the current block starts a new one.
    Blank lines may or may not separate blocks, so they are not relied upon."""
    blocks: list[dict[Field, str]] = []
    current: dict[Field, str] = {}
    for line in lines:
        hit = label_line(line)
        if hit is None:
            continue
        fld, value = hit
        if fld in current:
            blocks.append(current)
            current = {}
        current[fld] = value
    if current:
        blocks.append(current)
    return blocks


def _is_request(block: Mapping[Field, str]) -> bool:
    return any(block.get(f, "").strip() for f in _IDENTIFYING)


def has_request(lines: list[str]) -> bool:
    return any(_is_request(b) for b in split_blocks(lines))


def _school_key(raw: str) -> str:
    return re.sub(r"[^0-9]", "", arabic_digits(raw))


def requests_in(blocks: list[dict[Field, str]]) -> list[CorrectionRequest]:
    """Blocks that are requests, numbered from 1. A block without a school code takes the code of the
    nearest block above (a school code written once at the top applies to all); when no block above
    has one but the message names exactly one school (e.g. under the signature), that one."""
    codes = {_school_key(b[Field.SCHOOL_CODE]): b[Field.SCHOOL_CODE] for b in blocks
             if b.get(Field.SCHOOL_CODE, "").strip()}
    only_code = next(iter(codes.values())) if len(codes) == 1 else None
    above: str | None = None
    found = []
    for block in blocks:
        if block.get(Field.SCHOOL_CODE, "").strip():
            above = block[Field.SCHOOL_CODE]
        if _is_request(block):
            found.append(_request(len(found) + 1, block, above or only_code))
    return found


def _text(block: Mapping[Field, str], fld: Field) -> str | None:
    value = re.sub(r"\s+", " ", block.get(fld, "")).strip()
    return value or None


def _request(index: int, block: Mapping[Field, str], school_raw: str | None) -> CorrectionRequest:
    name = normalise_name(block.get(Field.STUDENT_NAME, "")) or None
    missing = tuple(f for f in REQUIRED if not _text(block, f))
    problems: list[Refusal] = [missing_field(missing)] if missing else []
    school = old = new = None
    if school_raw and school_raw.strip():
        try:
            school = normalise_school_code(school_raw)
        except Refusal as r:
            problems.append(about(Field.SCHOOL_CODE, r))
    if _text(block, Field.OLD_ID):
        try:
            old = normalise_student_id(block[Field.OLD_ID])
        except Refusal as r:
            problems.append(about(Field.OLD_ID, r))
    if _text(block, Field.NEW_ID):
        checked = _new_id(block[Field.NEW_ID])
        if isinstance(checked, Refusal):
            problems.append(checked)
        else:
            new = checked
    if old and new and old == new:
        problems.append(same_id())
    return CorrectionRequest(
        index=index, school_code=school, student_name=name, grade=_text(block, Field.GRADE),
        old_id=old, new_id=new, reason=_text(block, Field.REASON),
        raw=dict(block), missing=missing, problem=problems[0] if problems else None,
    )


def _new_id(raw: str) -> str | Refusal:
    """The new ID must be a national ID: a G-code is what gets replaced, never what replaces."""
    if raw.strip().upper().startswith("G"):
        return new_id_not_national_id()
    try:
        return normalise_national_id(raw)
    except Refusal as r:
        return about(Field.NEW_ID, r)
