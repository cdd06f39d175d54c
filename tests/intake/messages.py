"""Test messages built with the stdlib `email` package, as real mail clients send them, and signed (DKIM)
as the school's mail server signs them: the intake trusts a From domain only when it is authenticated.

`sign` is the one way tests authenticate mail: with TEST_KEY, published (by `dkim_dns`, the intake's DNS in
tests) under the selector `test` of every domain. `build` signs with the From domain unless told otherwise.
"""

from __future__ import annotations

import base64
import quopri
import re
from collections.abc import Sequence
from email.header import Header
from email.message import Message
from email.parser import BytesHeaderParser
from email.policy import compat32
from email.mime.application import MIMEApplication
from email.mime.multipart import MIMEMultipart
from email.mime.nonmultipart import MIMENonMultipart
from email.utils import formataddr
from functools import cache
from pathlib import Path

import dkim
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from domain.ids import national_id_check_digit
from intake.email_parsing.headers import sender_address

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


# --- DKIM ----------------------------------------------------------------------------------------------

SELECTOR = "test"
SIGNED_HEADERS = [b"from", b"to", b"subject", b"date", b"message-id", b"mime-version", b"content-type"]


@cache
def rsa_key(name: str = "school") -> rsa.RSAPrivateKey:
    """A fresh RSA key per name and test run: "school" is TEST_KEY, others are an attacker's."""
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _pem(key: rsa.RSAPrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
                             serialization.NoEncryption())


def dkim_record(key: rsa.RSAPrivateKey) -> bytes:
    der = key.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return b"v=DKIM1; k=rsa; p=" + base64.b64encode(der)


def dkim_dns(name: bytes, timeout: float = 5) -> bytes | None:
    """The intake's DNS in tests (dkimpy's `dnsfunc`): every domain publishes TEST_KEY under `test`, and
    nothing else. Never the network."""
    return dkim_record(rsa_key()) if name.decode().startswith(f"{SELECTOR}._domainkey.") else None


def sign(raw: bytes, domain: str | None = None, *, key: rsa.RSAPrivateKey | None = None,
         selector: str = SELECTOR, include_headers: list[bytes] | None = None, length: bool = False) -> bytes:
    """`raw` with a DKIM-Signature of `domain` (by default the From domain) prepended."""
    if domain is None:
        head = BytesHeaderParser(policy=compat32).parsebytes(raw.split(b"\n\n", 1)[0].split(b"\r\n\r\n", 1)[0])
        sender = sender_address([re.sub(r"\r?\n[ \t]", " ", str(v)).strip() for v in head.get_all("From", [])])
        if sender is None:
            return raw
        domain = sender.rsplit("@", 1)[1]
    linesep = b"\r\n" if b"\r\n" in raw[:2000] else b"\n"
    signature = dkim.sign(raw, selector.encode(), domain.encode(), _pem(key or rsa_key()),
                          include_headers=include_headers or SIGNED_HEADERS, canonicalize=(b"relaxed", b"relaxed"),
                          linesep=linesep, length=length)
    return signature + raw


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
          body_part: Message | None = None, signed: bool = True) -> bytes:
    """A whole message as bytes, signed by its From domain unless `signed` is false. Text and HTML together
    make a multipart/alternative; attachments make a multipart/mixed around it."""
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
    return sign(msg.as_bytes()) if signed else msg.as_bytes()


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
