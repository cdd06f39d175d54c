"""Test messages built with the stdlib `email` package, as real mail clients send them."""

from __future__ import annotations

import base64
import quopri
from collections.abc import Sequence
from email.header import Header
from email.message import Message
from email.mime.application import MIMEApplication
from email.mime.multipart import MIMEMultipart
from email.mime.nonmultipart import MIMENonMultipart
from email.utils import formataddr
from pathlib import Path

from domain.ids import national_id_check_digit

# Python knows TIS-620 but not the name windows-874; both are read as cp874 by the intake.
_CODECS = {"tis-620": "cp874", "windows-874": "cp874"}

SCHOOL = "1044449001"
SENDER = "dmc@tuayang.ac.th"
SCHOOL_NAME = "โรงเรียนตัวอย่างวิทยา"

# Evidence as it starts on disk: the intake sniffs these bytes, not names or declared types.
PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"
JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00\xff\xd9"
PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00\x00"
EXE = b"MZ\x90\x00\x03\x00\x00\x00\x04\x00\x00\x00\xff\xff\x00\x00"

Attachment = tuple[str, str, bytes]  # filename, declared content type, bytes
EVIDENCE: tuple[Attachment, ...] = (("หลักฐาน.pdf", "application/pdf", PDF),)


def nid(first12: str) -> str:
    """A valid national ID from its first 12 digits."""
    return first12 + str(national_id_check_digit(first12))


OLD = nid("144990000001")
NEW = nid("144990900001")
OLD2, NEW2 = nid("144990000002"), nid("144990900002")
OLD3, NEW3 = nid("144990000003"), nid("144990900003")
GCODE = "G664400000008"

THAI_LABELS = {
    "school": "รหัสโรงเรียน", "name": "ชื่อ-สกุล", "grade": "ชั้น", "old": "เลขประจำตัวประชาชนเดิม",
    "new": "เลขประจำตัวประชาชนใหม่", "reason": "เหตุผล",
}
ENGLISH_LABELS = {
    "school": "School code", "name": "Student name", "grade": "Class", "old": "Old ID", "new": "New ID",
    "reason": "Reason",
}


def block(*, school: str | None = SCHOOL, name: str | None = "เด็กชายทดสอบ ใจดี", grade: str | None = "ป.6/1",
          old: str | None = OLD, new: str | None = NEW, reason: str | None = "เลขไม่ตรงกับทะเบียนบ้าน",
          labels: dict[str, str] = THAI_LABELS, sep: str = ": ") -> str:
    """One request block; a field given as None is left out."""
    values = {"school": school, "name": name, "grade": grade, "old": old, "new": new, "reason": reason}
    return "".join(f"{labels[k]}{sep}{v}\n" for k, v in values.items() if v is not None)


def letter(*blocks: str) -> str:
    """Blocks inside the usual greeting and closing."""
    return "เรียน เจ้าหน้าที่ DMC\n\n" + "\n".join(blocks) + "\nขอแสดงความนับถือ\n"


def text_part(body: str, *, subtype: str = "plain", charset: str | None = "utf-8", cte: str = "base64",
              encode_as: str | None = None) -> Message:
    """A text part. `encode_as` encodes with another charset than the one declared (a lying client);
    `charset=None` declares none."""
    data = body.encode(_CODECS.get(encode_as or charset or "utf-8", encode_as or charset or "utf-8"))
    part = MIMENonMultipart("text", subtype, **({"charset": charset} if charset else {}))
    if cte == "base64":
        payload = base64.encodebytes(data).decode("ascii")
    elif cte == "quoted-printable":
        payload = quopri.encodestring(data).decode("ascii")
    else:  # 8bit: raw bytes, carried through the generator as surrogate escapes
        payload = data.decode("ascii", "surrogateescape")
    part.set_payload(payload)
    part["Content-Transfer-Encoding"] = cte
    return part


def attachment_part(filename: str, content_type: str, content: bytes, *, inline: bool = False) -> Message:
    maintype, subtype = content_type.split("/", 1)
    part = MIMEApplication(content, subtype) if maintype == "application" else MIMENonMultipart(maintype, subtype)
    if maintype != "application":
        part.set_payload(base64.encodebytes(content).decode("ascii"))
        part["Content-Transfer-Encoding"] = "base64"
    # RFC 2231, as the samples have it: filename*=utf-8''...
    part.add_header("Content-Disposition", "inline" if inline else "attachment", filename=("utf-8", "", filename))
    return part


def build(body: str | None = None, *, html: str | None = None, charset: str | None = "utf-8",
          cte: str = "base64", encode_as: str | None = None,
          attachments: Sequence[Attachment] = EVIDENCE, sender: str | None = None,
          subject: str = "ขอแก้ไขเลขประจำตัวประชาชนนักเรียน", message_id: str | None = "<t-1@mail.example>",
          date: str | None = "Thu, 18 Apr 2024 09:05:00 +0700", headers: dict[str, str] | None = None,
          body_part: Message | None = None) -> bytes:
    """A whole message as bytes. Text and HTML together make a multipart/alternative; attachments make
    a multipart/mixed around it."""
    parts = []
    if body is not None:
        parts.append(text_part(body, charset=charset, cte=cte, encode_as=encode_as))
    if html is not None:
        parts.append(text_part(html, subtype="html", charset=charset, cte=cte, encode_as=encode_as))
    if body_part is not None:
        content = body_part
    elif len(parts) == 2:
        content = MIMEMultipart("alternative")
        for part in parts:
            content.attach(part)
    elif parts:
        content = parts[0]
    else:
        content = None
    if attachments:
        msg = MIMEMultipart("mixed")
        if content is not None:
            msg.attach(content)
        for filename, content_type, data in attachments:
            msg.attach(attachment_part(filename, content_type, data))
    else:
        msg = content if content is not None else text_part("")
    msg["From"] = sender if sender is not None else formataddr((SCHOOL_NAME, SENDER), charset="utf-8")
    msg["To"] = "idfix@district.example"
    msg["Subject"] = subject if subject.isascii() else Header(subject, "utf-8").encode()
    if date:
        msg["Date"] = date
    if message_id:
        msg["Message-ID"] = message_id
    for name, value in (headers or {}).items():
        msg[name] = value
    return msg.as_bytes()


def html_table(rows: Sequence[Sequence[str]], *, header: bool = False) -> str:
    def row(cells: Sequence[str], tag: str) -> str:
        return "<tr>" + "".join(f"<{tag} style='border:1px solid'>{c}</{tag}>" for c in cells) + "</tr>\n"

    head, rest = (rows[0], rows[1:]) if header else (None, rows)
    return ("<table border='1'>\n" + (row(head, "th") if head else "")
            + "".join(row(r, "td") for r in rest) + "</table>\n")


def find_samples(start: Path) -> Path | None:
    """shared/samples/emails, looked for upwards (CI lays shared/ beside the clone)."""
    for parent in start.resolve().parents:
        candidate = parent / "shared" / "samples" / "emails"
        if (candidate / "expected.json").is_file():
            return candidate
    return None
