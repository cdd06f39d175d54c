"""Reading an ID-correction email (R4, shared/docs/id-correction-email.md): pure parsing only.

`parse_message(raw)` turns the bytes of one received message into a `ParsedMessage`: who sent it
(the bare address; the display name proves nothing), its Message-ID, the request blocks found in the
body and the attachments, with the refusals that can be decided *without* a database:

- message level (`ParsedMessage.problem`): `too_large`, `unreadable`, `no_request_block`, `no_evidence`;
- request level (`CorrectionRequest.problem`): `missing_field`, the `domain.ids` codes for a malformed
  ID or school code (e.g. `national_id_check_digit`), `new_id_not_national_id`, `same_id`.

The checks that need the roster or the registry of addresses (sender registered for the school,
student on the roster, new ID already someone else's, cutoff, duplicate Message-ID) belong to the
caller; `CorrectionRequest.refused()` / `ParsedMessage.refused()` attach their refusal to the outcome.

No I/O, no network, no rendering: HTML is only walked as a tree for its text, attachments are only
hashed and sniffed. `parse_message` never raises, whatever the bytes.
"""

from __future__ import annotations

import codecs
import email
import hashlib
import re
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from email import errors as email_errors
from email import policy
from email.header import decode_header
from email.message import Message
from email.utils import parsedate_to_datetime
from enum import StrEnum
from typing import Any

from bs4 import BeautifulSoup, NavigableString, Tag

from domain.ids import masked, normalise_name, normalise_national_id, normalise_school_code, \
    normalise_student_id
from domain.evidence import sniff_evidence
from domain.refusals import Refusal, refusal
from domain.thai_time import arabic_digits
from intake.mime_limits import MimeLimits, over_limits

MAX_BYTES = 25 * 1024 * 1024
_MAX_MIME_DEPTH = 20  # real mail nests 3-4 levels; deeper is an attack or a loop, and is not read
# A request is typed by a person: a body part beyond these sizes (after inline data: images are dropped)
# is pasted data, and only its beginning is read. HTML is cut shorter: building its tree is the slow part.
_MAX_TEXT_CHARS = 1_000_000
_MAX_HTML_CHARS = 500_000


# --- fields and their labels --------------------------------------------------------------------

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

# How a field is named in a reply (Thai, English).
FIELD_NAMES: Mapping[Field, tuple[str, str]] = {
    Field.SCHOOL_CODE: ("รหัสโรงเรียน", "school code"),
    Field.STUDENT_NAME: ("ชื่อ-สกุล", "student name"),
    Field.GRADE: ("ชั้น", "class"),
    Field.OLD_ID: ("เลขประจำตัวประชาชนเดิม", "old ID"),
    Field.NEW_ID: ("เลขประจำตัวประชาชนใหม่", "new ID"),
    Field.REASON: ("เหตุผล", "reason"),
}

# School code is required only when the sender is registered for several schools: the caller knows.
REQUIRED: tuple[Field, ...] = (Field.STUDENT_NAME, Field.OLD_ID, Field.NEW_ID)
_IDENTIFYING = REQUIRED  # a block with none of these filled in is not a request (e.g. an empty template)

_DASHES = "".join(re.escape(ch) for ch in "-‐‑‒–—")  # escaped: a bare `-` inside [...] makes a range


def _label_pattern(label: str) -> str:
    """A label as typed by people: `ชื่อ-สกุล` also as `ชื่อ - สกุล` or `ชื่อสกุล`, `Old ID` as `old_id`."""
    parts = []
    for ch in label:
        if ch == "-":
            parts.append(rf"\s*[{_DASHES}]?\s*")
        elif ch == " ":
            parts.append(rf"[\s_{_DASHES}]*")
        else:
            parts.append(re.escape(ch))
    return "".join(parts)


# After the label: `:`, full-width `：`, or whitespace. Requiring one stops `ชั้น` from matching inside
# `ชั้นเรียน...` and `Class` inside `Classroom`. Labels are prefixes of one another (`เลขประจำตัวประชาชนเดิม`,
# `เลขเดิม`), so the alternation lists the longest first; if a label matches but no separator follows,
# the regex falls back to the shorter ones, exactly as trying them one by one would.
_LABEL_ORDER = sorted(((lbl, f) for f, lbls in LABELS.items() for lbl in lbls), key=lambda p: -len(p[0]))
_ALTERNATION = "|".join(f"(?P<l{i}>{_label_pattern(lbl)})" for i, (lbl, _) in enumerate(_LABEL_ORDER))
_LABEL_LINE = re.compile(rf"^(?:{_ALTERNATION})(?:\s*[:：]|(?=\s)|$)\s*(?P<value>.*)$", re.IGNORECASE)
_LABEL_CELL = re.compile(rf"^(?:{_ALTERNATION})\s*[:：]?$", re.IGNORECASE)

# Bullets and numbering people put before a label: "- ", "• ", "1. ", "2) ".
_BULLET = re.compile(r"^(?:[-*•·▪►]|\(?[0-9๐-๙]{1,2}[.)])\s+")


def _matched_field(m: re.Match[str]) -> Field:
    return next(fld for i, (_, fld) in enumerate(_LABEL_ORDER) if m.group(f"l{i}") is not None)


def _label_line(line: str) -> tuple[Field, str] | None:
    m = _LABEL_LINE.match(_BULLET.sub("", line.strip()))
    return (_matched_field(m), m.group("value").strip()) if m else None


def _exact_label(cell: str) -> Field | None:
    """A table cell holding nothing but a label (a header cell, or the left cell of a label/value row)."""
    m = _LABEL_CELL.match(cell.strip())
    return _matched_field(m) if m else None


def _template(lang: int) -> str:
    lines = [f"{FIELD_NAMES[f][lang]}: ..." for f in Field]
    return "\n".join(lines)


TEMPLATE_TH = (
    "กรุณาพิมพ์คำขอในเนื้อความอีเมล นักเรียนหนึ่งคนต่อหนึ่งชุด ดังนี้\n" + _template(0)
    + "\n(ชั้น และเหตุผล ไม่บังคับ; เลขเดิมอาจเป็นรหัส G; ชื่อหัวข้อใช้ได้ทั้ง "
    + ", ".join(label for labels in LABELS.values() for label in labels)
    + ")\nและแนบหลักฐานอย่างน้อยหนึ่งไฟล์ (PDF, JPEG หรือ PNG)"
)
TEMPLATE_EN = (
    "Please type each request in the body of the email, one group of lines per student:\n"
    + "\n".join(f"{label}: ..." for labels in LABELS.values() for label in labels if label.isascii())
    + "\n(class and reason are optional; the old ID may be a G-code) and attach at least one PDF, JPEG or PNG"
)


# --- refusals decided here -----------------------------------------------------------------------

def _size_label(max_bytes: int) -> str:
    mb = max_bytes / (1024 * 1024)
    return f"{mb:.0f} MB" if mb == int(mb) else f"{mb:.1f} MB"


def too_large(max_bytes: int) -> Refusal:
    limit = _size_label(max_bytes)
    return refusal("too_large", f"อีเมลมีขนาดเกิน {limit} กรุณาส่งใหม่โดยลดขนาดไฟล์แนบ",
                   f"The email is larger than {limit}; please send it again with smaller attachments", 413)


def unreadable() -> Refusal:
    return refusal("unreadable", "ระบบอ่านอีเมลฉบับนี้ไม่ได้ (รูปแบบอีเมลเสียหาย) " + TEMPLATE_TH,
                   "This email could not be read (damaged format). " + TEMPLATE_EN, 422)


def no_request_block() -> Refusal:
    return refusal("no_request_block", "ไม่พบคำขอแก้ไขเลขประจำตัวประชาชนในอีเมล " + TEMPLATE_TH,
                   "No ID-correction request was found in the email. " + TEMPLATE_EN, 422)


def no_evidence(had_attachments: bool) -> Refusal:
    th, en = "ไม่พบไฟล์หลักฐาน", "No evidence attached"
    if had_attachments:
        th, en = "ไฟล์แนบไม่ใช่ PDF, JPEG หรือ PNG", "The attached files are not PDF, JPEG or PNG"
    return refusal("no_evidence",
                   f"{th} ต้องแนบหลักฐานอย่างน้อยหนึ่งไฟล์ (PDF, JPEG หรือ PNG) เช่น บัตรประชาชน ทะเบียนบ้าน",
                   f"{en}: attach at least one PDF, JPEG or PNG file (ID card, house registration)", 422)


def missing_field(missing: Iterable[Field]) -> Refusal:
    names = [FIELD_NAMES[f] for f in missing]
    return refusal("missing_field", "ไม่ได้ระบุ " + ", ".join(th for th, _ in names),
                   "Missing: " + ", ".join(en for _, en in names), 422)


def new_id_not_national_id() -> Refusal:
    return refusal("new_id_not_national_id", "เลขใหม่ต้องเป็นเลขประจำตัวประชาชน 13 หลัก ไม่ใช่รหัส G",
                   "The new ID must be a 13-digit national ID, not a G-code", 422)


def same_id() -> Refusal:
    return refusal("same_id", "เลขเดิมและเลขใหม่เป็นเลขเดียวกัน ไม่มีสิ่งที่ต้องแก้ไข",
                   "The old and new IDs are the same: nothing to correct", 422)


def _about(fld: Field, problem: Refusal) -> Refusal:
    """A domain refusal (same stable code) saying which field it is about: a request has two IDs."""
    th, en = FIELD_NAMES[fld]
    # en[0].upper(), not capitalize(): that would write "New id" for "new ID"
    return refusal(problem.code, f"{th}: {problem.message_th}", f"{en[:1].upper()}{en[1:]}: {problem.message_en}",
                   problem.status)


# --- the outcome -----------------------------------------------------------------------------------

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


# --- charsets ----------------------------------------------------------------------------------------

# TIS-620 is decoded with cp874 (windows-874), its superset; Python knows neither `windows-874` nor
# `x-windows-874` by those names.
_THAI_CHARSETS = {"tis-620", "tis620", "tis_620", "iso-8859-11", "iso8859-11", "windows-874", "x-windows-874",
                  "cp874", "ms874", "x-tis620"}
# Western defaults that Thai mail clients put on Thai text: not trusted.
_UNTRUSTED = {None, "", "us-ascii", "ascii", "iso-8859-1", "latin-1", "latin1", "windows-1252", "cp1252",
              "unknown-8bit", "x-unknown", "x-user-defined"}
_THAI_LETTER = re.compile("[\u0e01-\u0e5b]")


def _codec(charset: str | None) -> str | None:
    name = (charset or "").strip().strip('"').lower()
    if name in _THAI_CHARSETS:
        return "cp874"
    if name in _UNTRUSTED:
        return None
    try:
        return codecs.lookup(name).name
    except (LookupError, ValueError, TypeError):
        return None


def decode_text(data: bytes, charset: str | None) -> tuple[str, bool]:
    """Bytes to text, coping with wrong or missing charsets. Answers (text, lossy).

    Valid UTF-8 that yields Thai letters is UTF-8 whatever the label says: TIS-620 Thai is practically
    never valid UTF-8, while UTF-8 mislabelled as TIS-620 is common. Otherwise the declared charset,
    then UTF-8, then cp874; as a last resort a lossy decode.
    """
    if data.isascii():
        return data.decode("ascii"), False
    declared = _codec(charset)
    try:
        text = data.decode("utf-8-sig")
        if declared in (None, "utf-8") or _THAI_LETTER.search(text):
            return text, False
    except UnicodeDecodeError:
        pass
    for codec in dict.fromkeys(c for c in (declared, "utf-8", "cp874") if c):
        try:
            return data.decode(codec), False
        except (UnicodeError, LookupError, ValueError, TypeError):  # incl. exotic codecs (idna, base64...)
            continue
    return data.decode("utf-8" if declared == "utf-8" else "cp874", errors="replace"), True


# --- headers -------------------------------------------------------------------------------------------

def _unescape_8bit(value: str) -> str:
    """The stdlib parser keeps raw 8-bit header bytes (a UTF-8 or TIS-620 subject or filename sent
    without RFC 2047) as surrogate escapes; they would break any later encode, so decode them here."""
    if any("\udc80" <= ch <= "\udcff" for ch in value):
        return decode_text(value.encode("ascii", "surrogateescape"), None)[0]
    return value


def _raw_headers(msg: Message) -> dict[str, list[str]]:
    """Header values as received (unfolded), keyed by lowercased name."""
    found: dict[str, list[str]] = {}
    for name, value in msg.raw_items():
        value = _unescape_8bit(str(value))
        value = re.sub(r"\r?\n[ \t]", " ", value).strip()
        found.setdefault(str(name).lower(), []).append(value)
    return found


def decode_words(value: str) -> str:
    """RFC 2047 encoded-words decoded, with our charset handling (TIS-620, windows-874)."""
    try:
        chunks = decode_header(value)
    except Exception:  # a broken encoded-word: show it as it came rather than lose the header
        return value
    out = []
    for chunk, charset in chunks:
        if isinstance(chunk, str):
            out.append(chunk)
        elif charset is None:
            out.append(chunk.decode("raw-unicode-escape"))  # decode_header's own encoding of plain parts
        else:
            out.append(decode_text(chunk, charset)[0])
    return "".join(out)


# No control characters (NUL cannot even be stored by PostgreSQL); at most 254 characters (RFC 5321).
_ATOM = r"[^\s@<>()\[\]\\,;:\"\x00-\x1f\x7f]+"
_ADDRESS = re.compile(rf"^{_ATOM}@{_ATOM}\.{_ATOM}$")


def _strip_quoted_and_comments(value: str) -> str:
    """Drop "quoted strings" and (comments): display-name material, never the address."""
    out, depth, quoted, escaped = [], 0, False, False
    for ch in value:
        if escaped:
            escaped = False
        elif ch == "\\" and (quoted or depth):
            escaped = True
        elif quoted:
            quoted = ch != '"'
        elif ch == '"' and not depth:
            quoted = True
        elif ch == "(":
            depth += 1
        elif ch == ")" and depth:
            depth -= 1
        elif not depth:
            out.append(ch)
    return "".join(out)


def sender_address(from_values: list[str]) -> str | None:
    """The one bare address of From, lowercased; None if absent, several, or not an address.

    Read from the raw header: a display name (even encoded, even holding `<dmc@school>`) proves nothing
    and must never be mistaken for the address.
    """
    if len(from_values) != 1:
        return None
    rest = _strip_quoted_and_comments(from_values[0])
    if "," in rest or ";" in rest:  # several mailboxes or a group: ambiguous, trust none
        return None
    angle = re.fullmatch(r"[^<>]*<([^<>]*)>\s*", rest)
    if angle:
        address = angle.group(1).strip()
    elif "<" in rest or ">" in rest:
        return None
    else:
        address = rest.strip()
    return address.lower() if len(address) <= 254 and _ADDRESS.match(address) else None


def _msg_ids(value: str | None) -> list[str]:
    if not value:
        return []
    ids = [re.sub(r"[\s\x00-\x1f\x7f]+", "", m) for m in re.findall(r"<([^<>]*)>", value)]
    if not ids and value.split():
        ids = [value.split()[0]]  # a bare id without brackets, as some mailers send it
    return [f"<{i}>" for i in ids if i and len(i) <= 996]


def _date(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        when = parsedate_to_datetime(value)
    except Exception:
        return None
    # `-0000` (time in UTC, sender's zone unknown) comes back naive.
    return when.replace(tzinfo=timezone.utc) if when.tzinfo is None else when


# --- body: quoting -----------------------------------------------------------------------------------

_QUOTE_START = re.compile(
    r"(?:wrote|เขียนว่า)\s*[:：]\s*$"  # Gmail, Apple Mail, Thunderbird: "On ... wrote:" / "เมื่อ ... เขียนว่า:"
    r"|^-{2,}\s*(?:original message|ข้อความต้นฉบับ|forwarded message|ข้อความที่ส่งต่อ)\s*-{2,}\s*$",
    re.IGNORECASE,
)
# Outlook quotes under a header block: "From: ..." then "Sent: ..." (Thai Outlook: "จาก:", "ส่ง:").
_OUTLOOK_FROM = re.compile(r"^(?:from|จาก)\s*[:：]", re.IGNORECASE)
_OUTLOOK_SENT = re.compile(r"^(?:sent|ส่ง|date|วันที่)\s*[:：]", re.IGNORECASE)


def _is_quote_start(lines: list[str], i: int) -> bool:
    line = lines[i]
    if _label_line(line):
        return False
    if _QUOTE_START.search(line):
        return True
    return bool(_OUTLOOK_FROM.match(line)) and any(_OUTLOOK_SENT.match(n) for n in lines[i + 1:i + 4])


def drop_quoted(lines: list[str]) -> tuple[list[str], bool]:
    """Lines written in this message only: `>` lines skipped, everything below a quote header cut.
    Answers (lines, whether a quote header was met)."""
    kept = []
    for i, line in enumerate(lines):
        if line.lstrip().startswith(">"):
            continue
        if _is_quote_start(lines, i):
            return kept, True
        kept.append(line)
    return kept, False


# --- body: HTML ------------------------------------------------------------------------------------

_SKIP_TAGS = {"script", "style", "head", "title", "template", "noscript", "object", "embed", "iframe", "svg",
              "math", "blockquote"}
_QUOTE_CLASSES = {"gmail_quote", "gmail_quote_container", "yahoo_quoted", "moz-forward-container"}
_BLOCK_TAGS = {"p", "div", "li", "tr", "h1", "h2", "h3", "h4", "h5", "h6", "ul", "ol", "pre", "section",
               "article", "header", "footer", "dl", "dt", "dd", "hr", "center", "address", "form", "fieldset"}
_QUOTE_MARK = "-----Original Message-----"

_Cell = list[str]  # a table cell's text, as lines


def _cell_label(cell: _Cell) -> Field | None:
    return _exact_label(cell[0]) if len(cell) == 1 else None


def _table_lines(rows: list[list[_Cell]]) -> list[str]:
    """A table as label lines. Two shapes are common:
    - a header row of labels, then one row per request: each data row becomes one block;
    - rows of `label | value` (or `no. | label | value`, or pairs side by side): `label: value` lines.
    Other cells keep their text, so a label typed inside a cell (`ชั้น: ม.1`) still counts."""
    rows = [r for r in rows if any(r)]
    if rows and _is_header_row(rows[0]):
        header = [_cell_label(c) for c in rows[0]]
        lines: list[str] = []
        for row in rows[1:]:  # a header row alone is the empty template: nothing
            # Every column is written, even empty: the repeated labels are what separate the blocks.
            lines += [f"{LABELS[f][0]}: {' '.join(c)}" for f, c in zip(header, row, strict=False) if f]
        return lines
    return [line for row in rows for line in _row_lines(row)]


def _is_header_row(row: list[_Cell]) -> bool:
    """Mostly labels (a `ลำดับ` column may sit among them); `label | value | label | value` is not."""
    labels = sum(1 for c in row if _cell_label(c))
    return labels >= 2 and 2 * labels > sum(1 for c in row if c)


def _row_lines(row: list[_Cell]) -> list[str]:
    """Each label cell takes the cells after it, up to the next label cell, as its value."""
    lines: list[str] = []
    label: Field | None = None
    values: list[str] = []
    for cell in row:
        found = _cell_label(cell)
        if found:
            if label:
                lines.append(f"{LABELS[label][0]}: {' '.join(values)}")
            label, values = found, []
        elif label:
            values += cell
        else:
            lines += cell  # text before any label (a row number, a remark)
    if label:
        lines.append(f"{LABELS[label][0]}: {' '.join(values)}")
    return lines


def _is_quote_element(tag: Tag) -> bool:
    classes = tag.get("class") or []
    return bool(_QUOTE_CLASSES.intersection(classes if isinstance(classes, list) else [classes]))


class _HtmlText:
    """One pass over the tree, without recursion (mail HTML can nest thousands deep): text where the
    layout puts it, line breaks where blocks and <br> break lines, tables turned into label lines.

    Written text goes to the innermost open cell, or to the body; a table's rows are collected while
    it is open and written, as lines, where the table stood."""

    def __init__(self) -> None:
        self.buffers: list[list[str]] = [[]]
        self.tables: list[list[list[_Cell]]] = []
        self.pre = 0

    def write(self, text: str) -> None:
        self.buffers[-1].append(text)

    def text(self, root: Tag) -> str:
        stack: list[tuple[object, bool]] = [(root, False)]
        while stack:
            node, leaving = stack.pop()
            if leaving and isinstance(node, Tag):
                self.leave(node)
            elif isinstance(node, Tag):
                if node.name in _SKIP_TAGS or _is_quote_element(node):
                    continue  # quoted replies (<blockquote>, Gmail's gmail_quote), scripts, styles
                if node.get("id") == "divRplyFwdMsg":  # Outlook: the quoted message follows this header
                    self.write(f"\n{_QUOTE_MARK}\n")
                    continue
                self.enter(node)
                stack.append((node, True))
                stack.extend((child, False) for child in reversed(node.contents))
            elif type(node) is NavigableString:  # not a Comment, Doctype, CData...
                # HTML whitespace is not layout: collapse it, except inside <pre>.
                self.write(str(node) if self.pre else re.sub(r"\s+", " ", str(node)))
        return "".join(self.buffers[0])

    def enter(self, tag: Tag) -> None:
        if tag.name == "br":
            self.write("\n")
        elif tag.name == "table":
            self.tables.append([])
        elif tag.name == "tr" and self.tables:
            self.tables[-1].append([])
        elif tag.name in ("td", "th"):
            self.buffers.append([])
        if tag.name == "pre":
            self.pre += 1
        if tag.name in _BLOCK_TAGS:
            self.write("\n")

    def leave(self, tag: Tag) -> None:
        if tag.name in ("td", "th"):
            cell = [ln.strip() for ln in "".join(self.buffers.pop()).split("\n") if ln.strip()]
            if not self.tables:  # a cell outside any table: keep its text
                self.write("\n" + "\n".join(cell) + "\n")
                return
            if not self.tables[-1]:
                self.tables[-1].append([])
            self.tables[-1][-1].append(cell)
        elif tag.name == "table" and self.tables:
            self.write("\n" + "\n".join(_table_lines(self.tables.pop())) + "\n")
        if tag.name == "pre":
            self.pre -= 1
        if tag.name in _BLOCK_TAGS:
            self.write("\n")


def tab_tables(lines: list[str]) -> list[str]:
    """Rows pasted from a spreadsheet into a plain-text mail: a tab-separated header row of labels, then
    one tab-separated row per request, read like the HTML header-row table."""
    out: list[str] = []
    i = 0
    while i < len(lines):
        header = [[c.strip()] if c.strip() else [] for c in lines[i].split("\t")]
        if "\t" in lines[i] and _is_header_row(header):
            rows = [header]
            while i + 1 < len(lines) and "\t" in lines[i + 1]:
                i += 1
                rows.append([[c.strip()] if c.strip() else [] for c in lines[i].split("\t")])
            out += _table_lines(rows)
        else:
            out.append(lines[i])
        i += 1
    return out


def html_lines(markup: str) -> list[str]:
    """The text of an HTML body as lines, tables turned into label lines, quoted parts left out.
    The markup is only walked as a tree: nothing is fetched, run or rendered."""
    soup = BeautifulSoup(markup, "html.parser")
    return [ln.strip() for ln in _HtmlText().text(soup).split("\n")]


# --- body: MIME structure ---------------------------------------------------------------------------

@dataclass
class _Body:
    lines: list[str] = field(default_factory=list)
    lossy: bool = False  # some text could only be decoded with replacement characters
    quoted: bool = False  # a quote header was met: what follows in the message is quoted too


def _is_body_text(part: Message) -> bool:
    disposition = (part.get_content_disposition() or "").lower()
    return part.get_content_type() in ("text/plain", "text/html") and disposition != "attachment" \
        and not part.get_filename()


def _text_of(part: Message) -> _Body:
    payload = part.get_payload(decode=True)
    data = payload if isinstance(payload, bytes) else b""
    text, lossy = decode_text(data, part.get_content_charset())
    if part.get_content_type() == "text/html":
        # Inline images as data: URIs can be megabytes of base64 inside an attribute: never text.
        text = re.sub(r"data:[^\"'\s>]{256,}", "data:", text)
        lines = html_lines(_clean_text(text[:_MAX_HTML_CHARS]))
    else:
        lines = _clean_text(text[:_MAX_TEXT_CHARS]).split("\n")
    kept, quoted = drop_quoted(lines)
    if part.get_content_type() == "text/plain":
        kept = tab_tables(kept)
    return _Body(kept, lossy, quoted)


def _clean_text(text: str) -> str:
    """NFC, one line-break style, no zero-width characters (Thai text uses them as word breaks), and
    NIKHAHIT + SARA AA folded into SARA AM, so labels match however they were typed."""
    text = unicodedata.normalize("NFC", text).replace("\u0e4d\u0e32", "\u0e33")
    text = re.sub("[\x00\u200b\u200c\u200d\u2060\ufeff\u00ad]", "", text)  # NUL too: never text
    return text.replace("\r\n", "\n").replace("\r", "\n").replace("\u00a0", " ")


def _alternative(children: list[Message], depth: int) -> _Body:
    """One message in several forms: read ONE of them. text/plain first; the HTML only when the text
    form yields no request (e.g. a "view this in HTML" stub)."""
    def plain_first(part: Message) -> int:
        return 0 if part.get_content_type() == "text/plain" else 1

    bodies = [_body(c, depth + 1) for c in sorted(children, key=plain_first)]
    for body in bodies:
        if _has_request(body.lines):
            return body
    return bodies[0] if bodies else _Body()


def _body(part: Message, depth: int = 0) -> _Body:
    if depth > _MAX_MIME_DEPTH:
        return _Body()
    if part.get_content_maintype() == "multipart" and part.is_multipart():
        children = [c for c in part.get_payload() if isinstance(c, Message)]
        if part.get_content_subtype() == "alternative":
            return _alternative(children, depth)
        whole = _Body()
        for child in children:
            if whole.quoted:
                break
            found = _body(child, depth + 1)
            whole = _Body(whole.lines + found.lines, whole.lossy or found.lossy, found.quoted)
        return whole
    if _is_body_text(part):
        return _text_of(part)
    return _Body()


def _attachment_filename(part: Message) -> str | None:
    value = part.get_param("filename", header="content-disposition") or part.get_param("name")
    if value is None:
        return None
    if isinstance(value, tuple):  # RFC 2231 (continuations already joined): (charset, language, text)
        charset, _, text = value
        name = decode_text(bytes(text, "raw-unicode-escape"), charset)[0]
    else:
        # RFC 2047 in a filename is against the rules, and what most mailers send.
        name = decode_words(_unescape_8bit(email.utils.unquote(str(value))))
    name = re.sub(r"[\x00-\x1f\x7f]", "", name).replace("\\", "/").rsplit("/", 1)[-1].strip()
    return unicodedata.normalize("NFC", name) or None


def _attachments(part: Message, depth: int = 0) -> list[Attachment]:
    """Every leaf that is not body text: attachments, and inline images (a photo of the ID card pasted
    into the mail is evidence too). A forwarded message (message/rfc822) is kept whole, never read."""
    if depth > _MAX_MIME_DEPTH:
        return []
    if part.get_content_maintype() == "multipart":
        if not part.is_multipart():  # its boundary is missing: broken structure (a defect), not a file
            return []
        return [a for c in part.get_payload() if isinstance(c, Message) for a in _attachments(c, depth + 1)]
    if _is_body_text(part):
        return []
    if part.get_content_maintype() == "message" and part.is_multipart():
        try:
            content = b"".join(p.as_bytes(policy=policy.compat32) for p in part.get_payload())
        except Exception:
            content = b""
    else:
        payload = part.get_payload(decode=True)
        content = payload if isinstance(payload, bytes) else b""
    return [Attachment(
        filename=_attachment_filename(part),
        content_type=part.get_content_type(),
        content=content,
        sha256=hashlib.sha256(content).hexdigest(),
        evidence_type=sniff_evidence(content),
    )]


# --- request blocks ------------------------------------------------------------------------------------

def split_blocks(lines: Iterable[str]) -> list[dict[Field, str]]:
    """Label lines grouped into blocks: a field already seen in the current block starts a new one.
    Blank lines may or may not separate blocks, so they are not relied upon."""
    blocks: list[dict[Field, str]] = []
    current: dict[Field, str] = {}
    for line in lines:
        hit = _label_line(line)
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


def _has_request(lines: list[str]) -> bool:
    return any(_is_request(b) for b in split_blocks(lines))


def _school_key(raw: str) -> str:
    return re.sub(r"[^0-9]", "", arabic_digits(raw))


def _requests(blocks: list[dict[Field, str]]) -> list[CorrectionRequest]:
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
            problems.append(_about(Field.SCHOOL_CODE, r))
    if _text(block, Field.OLD_ID):
        try:
            old = normalise_student_id(block[Field.OLD_ID])
        except Refusal as r:
            problems.append(_about(Field.OLD_ID, r))
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
        return _about(Field.NEW_ID, r)


# --- the whole message ---------------------------------------------------------------------------------

# Defects that mean the MIME structure itself is broken (not just a sloppy header).
_STRUCTURAL = (
    email_errors.NoBoundaryInMultipartDefect, email_errors.StartBoundaryNotFoundDefect,
    email_errors.CloseBoundaryNotFoundDefect, email_errors.MultipartInvariantViolationDefect,
    email_errors.MissingHeaderBodySeparatorDefect, email_errors.InvalidBase64PaddingDefect,
    email_errors.InvalidBase64CharactersDefect, email_errors.InvalidBase64LengthDefect,
)
_MAIL_HEADERS = ("from", "date", "message-id", "subject", "mime-version", "content-type", "to", "received")


def _defects(msg: Message, depth: int = 0) -> list[email_errors.MessageDefect]:
    found = list(getattr(msg, "defects", []))
    if depth < _MAX_MIME_DEPTH and msg.is_multipart():
        for child in msg.get_payload():
            if isinstance(child, Message):
                found += _defects(child, depth + 1)
    return found


def _envelope(headers: Mapping[str, list[str]]) -> dict[str, Any]:
    """The ParsedMessage fields read from the headers."""
    def first(name: str) -> str | None:
        values = headers.get(name)
        return values[0] if values else None

    message_ids = _msg_ids(first("message-id"))
    reply_to = _msg_ids(first("in-reply-to"))
    return dict(
        message_id=message_ids[0] if message_ids else None,
        sender=sender_address(headers.get("from", [])),
        subject=decode_words(first("subject") or "").strip(),
        date=_date(first("date")),
        in_reply_to=reply_to[0] if reply_to else None,
        references=tuple(_msg_ids(" ".join(headers.get("references", [])))),
    )


def _headers_only(raw: bytes) -> dict[str, Any]:
    """The envelope of a message too large to read: enough to answer it and to recognise it again."""
    head = raw[:256 * 1024].split(b"\r\n\r\n", 1)[0].split(b"\n\n", 1)[0]
    msg = email.message_from_bytes(head + b"\n\n", policy=policy.compat32)
    return _envelope(_raw_headers(msg))


def parse_message(raw: bytes, *, max_bytes: int = MAX_BYTES, limits: MimeLimits = MimeLimits()) -> ParsedMessage:
    """Read one received message. Never raises: whatever the bytes, an outcome comes back. A message over
    the size or the MIME caps is read no further than its headers."""
    size = 0
    try:
        raw = raw.encode("utf-8", "surrogateescape") if isinstance(raw, str) else bytes(raw or b"")
        size = len(raw)
        if size > max_bytes:
            return ParsedMessage(**_headers_only(raw), problem=too_large(max_bytes), size=size)
        if (capped := over_limits(raw, limits)) is not None:
            return ParsedMessage(**_headers_only(raw), problem=capped, size=size)
        return _parse(raw)
    except Exception:  # a message we cannot read gets a reply, not a crash (RecursionError included)
        problem = too_large(max_bytes) if size > max_bytes else unreadable()
        return ParsedMessage(message_id=None, sender=None, subject="", date=None, problem=problem, size=size)


def _parse(raw: bytes) -> ParsedMessage:
    msg = email.message_from_bytes(raw, policy=policy.compat32)
    headers = _raw_headers(msg)
    envelope = _envelope(headers)
    body = _body(msg)
    requests = tuple(_requests(split_blocks(body.lines)))
    attachments = tuple(_attachments(msg))
    defects = _defects(msg)
    broken = any(isinstance(d, _STRUCTURAL) for d in defects) or body.lossy \
        or not any(h in headers for h in _MAIL_HEADERS)
    problem: Refusal | None = None
    if not requests:
        problem = unreadable() if broken else no_request_block()
    elif not any(a.is_evidence for a in attachments):
        problem = no_evidence(bool(attachments))
    return ParsedMessage(**envelope, requests=requests, attachments=attachments, problem=problem,
                         defects=tuple(dict.fromkeys(type(d).__name__ for d in defects)), size=len(raw))


def message_text(raw: bytes, *, limits: MimeLimits = MimeLimits()) -> tuple[str, str]:
    """(subject, body) of a stored message as the intake read it, for the officer's page: plain text, the
    HTML form walked as a tree (never rendered), quoted history left out. Never raises."""
    try:
        if over_limits(raw, limits) is not None:
            return "", ""
        msg = email.message_from_bytes(raw, policy=policy.compat32)
        subject = decode_words(str(msg.get("Subject", "")))
        return subject, "\n".join(_body(msg).lines).strip()
    except Exception:  # an unreadable message was refused by the intake; the page still opens
        return "", ""


__all__ = [
    "LABELS", "MAX_BYTES", "TEMPLATE_EN", "TEMPLATE_TH", "Attachment", "CorrectionRequest", "Field",
    "ParsedMessage", "decode_text", "drop_quoted", "html_lines", "message_text", "parse_message", "sender_address",
    "sniff_evidence", "split_blocks",
]
