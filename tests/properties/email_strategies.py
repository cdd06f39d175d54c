"""Hypothesis strategies for received mail: well-formed, sloppy and broken, as the district's inbox gets it.

Messages are serialised by hand rather than with `email.generator`, so that they can be broken the ways
real mail is: wrong or missing charsets, bad transfer encodings, lost boundaries, raw 8-bit headers,
cut off in the middle.
"""

from __future__ import annotations

import base64
import quopri
from pathlib import Path

from hypothesis import strategies as st

from domain.correction_requests import LABELS
from tests.intake.messages import JPEG, PDF, PNG, SENDER, find_samples, nid

SAMPLES = find_samples(Path(__file__))
SAMPLE_BYTES = [p.read_bytes() for p in sorted(SAMPLES.glob("*.eml"))] if SAMPLES else []

ALL_LABELS = [label for labels in LABELS.values() for label in labels]
VALID_IDS = [nid("144990000001"), nid("144990900001"), nid("110370207181"), "G664400000008"]
CHARSETS = ["utf-8", "UTF-8", "tis-620", "windows-874", "x-windows-874", "iso-8859-11", "iso-8859-1", "us-ascii",
            "", "klingon", "utf-7", "base64", "idna", "utf-16", "\"utf-8\"", "cp1252"]
ENCODE_WITH = {"utf-8": "utf-8", "tis-620": "cp874", "windows-874": "cp874", "utf-16": "utf-16"}
CTES = ["7bit", "8bit", "base64", "quoted-printable", "binary", "x-uuencode", "bogus"]

id_values = st.one_of(
    st.sampled_from(VALID_IDS),
    st.builds(lambda s: nid(s), st.text(alphabet="0123456789", min_size=12, max_size=12)),
    st.text(alphabet="0123456789๐๑๒๓๔๕๖๗๘๙- G", max_size=17),
)
label_lines = st.builds(
    lambda label, sep, value: f"{label}{sep}{value}",
    st.sampled_from(ALL_LABELS), st.sampled_from([": ", "：", "  ", ":", " : ", "\t"]),
    st.one_of(id_values, st.text(max_size=40), st.just("1044449001"), st.just("ม.1")),
)
noise_lines = st.one_of(
    st.text(max_size=60),
    st.sampled_from(["", "> " + ALL_LABELS[0] + ": 1", "On Mon, 1 Apr 2024 someone wrote:", "เมื่อ ... เขียนว่า:",
                     "-----Original Message-----", "From: a@b.c", "Sent: today", "เรียน เจ้าหน้าที่",
                     "\t".join(ALL_LABELS[:4]), "1\t2\t3\t4", "\u200b\u00ad\ufeff", "ชื่อ-สกุล", "ขอแสดงความนับถือ"]),
)
body_text = st.lists(st.one_of(label_lines, noise_lines), max_size=25).map("\n".join)


@st.composite
def html_bodies(draw) -> str:
    cells = draw(st.lists(st.one_of(label_lines, st.sampled_from(ALL_LABELS), id_values, st.text(max_size=15)),
                          max_size=12))
    width = draw(st.integers(1, 4))
    rows = ["<tr>" + "".join(f"<td>{c}</td>" for c in cells[i:i + width]) + "</tr>" for i in range(0, len(cells), width)]
    pieces = draw(st.lists(st.sampled_from([
        "<p>", "</p>", "<br>", "<div>", "</div>", "<blockquote>", "</blockquote>", "<script>alert(1)</script>",
        "<div class='gmail_quote'>", "<pre>", "</pre>", "<table>", "</table>", "<tr>", "<td>", "<!-- c -->",
        "<img src='data:image/png;base64," + "A" * 300 + "'>", "&nbsp;", "&#xe01;", "<![CDATA[x]]>", "<",
    ]), max_size=10))
    text = draw(body_text)
    return "".join(pieces[: len(pieces) // 2]) + f"<table>{''.join(rows)}</table>" + text.replace("\n", "<br>") \
        + "".join(pieces[len(pieces) // 2:])


def _encode(data: bytes, cte: str) -> bytes:
    if cte == "base64":
        return base64.encodebytes(data)
    if cte == "quoted-printable":
        return quopri.encodestring(data)
    return data


@st.composite
def text_parts(draw) -> bytes:
    html = draw(st.booleans())
    text = draw(html_bodies()) if html else draw(body_text)
    charset = draw(st.sampled_from(CHARSETS))
    codec = draw(st.sampled_from(["utf-8", "cp874", "utf-16", "latin-1"]))
    data = text.encode(ENCODE_WITH.get(charset.strip('"').lower(), codec), errors="replace")
    cte = draw(st.sampled_from(CTES))
    if draw(st.booleans()):
        data = _encode(data, cte)
    head = f"Content-Type: text/{'html' if html else 'plain'}" + (f"; charset={charset}" if charset else "")
    head += f"\r\nContent-Transfer-Encoding: {cte}"
    if draw(st.integers(0, 9)) == 0:
        head += "\r\nContent-Disposition: attachment; filename=body.txt"
    return head.encode() + b"\r\n\r\n" + data


filenames = st.one_of(
    st.text(max_size=30), st.sampled_from(["หลักฐาน.pdf", "../../etc/passwd", "..\\..\\boot.ini", "a/b/c.png",
                                           "=?utf-8?B?4Lir4Lil4Lix4LiB4LiQ4Liy4LiZLnBkZg==?=", "x\x00y.jpg", ""]))


@st.composite
def attachment_parts(draw) -> bytes:
    magic = draw(st.sampled_from([PDF, JPEG, PNG, b"MZ\x90\x00", b"<html><script>", b""]))
    content = magic + draw(st.binary(max_size=200))
    ctype = draw(st.sampled_from(["application/pdf", "image/jpeg", "image/png", "application/octet-stream",
                                  "text/html", "message/rfc822", "application/x-msdownload", "image", "/"]))
    name = draw(filenames).replace("\r", "").replace("\n", "")
    style = draw(st.sampled_from(["rfc2231", "quoted", "raw8bit", "name_only", "none"]))
    if style == "rfc2231":
        from urllib.parse import quote

        disposition = f"attachment; filename*=utf-8''{quote(name.encode('utf-8', 'surrogatepass'))}"
    elif style == "quoted":
        disposition = f'attachment; filename="{name}"'
    elif style == "raw8bit":
        disposition = 'attachment; filename="' + name + '"'
    else:
        disposition = "inline" if style == "none" else "attachment"
    cte = draw(st.sampled_from(["base64", "base64", "quoted-printable", "8bit", "bogus"]))
    head = f"Content-Type: {ctype}" + (f'; name="{name}"' if style == "name_only" else "") + \
        f"\r\nContent-Disposition: {disposition}\r\nContent-Transfer-Encoding: {cte}"
    body = _encode(content, cte) if draw(st.integers(0, 4)) else base64.encodebytes(content)[:-7] + b"!!*"
    return head.encode("utf-8", "surrogateescape") + b"\r\n\r\n" + body


def _multipart(draw, children: list[bytes]) -> bytes:
    subtype = draw(st.sampled_from(["mixed", "alternative", "related", "signed", "report", "digest"]))
    boundary = draw(st.sampled_from(["b1", "==_boundary_==", "x" * 70, "", "weird \"quoted\" ; boundary"]))
    declared = boundary if draw(st.integers(0, 5)) else "another"
    head = f'Content-Type: multipart/{subtype}; boundary="{declared}"'.encode()
    parts = b"".join(b"--" + boundary.encode() + b"\r\n" + c + b"\r\n" for c in children)
    close = b"--" + boundary.encode() + b"--\r\n" if draw(st.integers(0, 4)) else b""
    return head + b"\r\n\r\npreamble\r\n" + parts + close + b"epilogue"


@st.composite
def mime_trees(draw, depth: int = 0) -> bytes:
    kind = draw(st.sampled_from(["text", "attachment", "multipart"] if depth < 3 else ["text", "attachment"]))
    if kind == "text":
        return draw(text_parts())
    if kind == "attachment":
        return draw(attachment_parts())
    children = draw(st.lists(mime_trees(depth=depth + 1), max_size=4))
    return _multipart(draw, children)


senders = st.one_of(
    st.just(f"โรงเรียน <{SENDER}>"), st.just(SENDER.upper()), st.just(f'"{SENDER}" <evil@attacker.example>'),
    st.just(f"a@b.c, {SENDER}"), st.just("=?utf-8?B?4LmC4Lij4LiH4LmA4Lij4Li14Lii4LiZ?= <dmc@tuayang.ac.th>"),
    st.text(max_size=40),
)


@st.composite
def messages(draw) -> bytes:
    headers = []
    if draw(st.integers(0, 9)):
        headers.append(("From", draw(senders)))
    if draw(st.integers(0, 9)):
        headers.append(("Subject", draw(st.one_of(st.text(max_size=60), st.just(
            "=?utf-8?B?4LiC4Lit4LmB4LiB4LmJ4LmE4LiC?=  =?tis-620?Q?=A1=A2?= =?broken?=")))))
    if draw(st.integers(0, 4)):
        headers.append(("Message-ID", draw(st.one_of(st.just("<t-1@mail.example>"), st.text(max_size=40)))))
    if draw(st.booleans()):
        headers.append(("Date", draw(st.one_of(st.just("Thu, 18 Apr 2024 09:05:00 +0700"), st.text(max_size=30)))))
    if draw(st.booleans()):
        headers.append(("In-Reply-To", draw(st.text(max_size=30))))
    headers.append(("MIME-Version", "1.0"))
    head = b"".join(f"{k}: {v}".encode("utf-8", "surrogateescape").replace(b"\n", b"\n ") + b"\r\n"
                    for k, v in headers)
    raw = head + draw(mime_trees())
    return draw(mutated(raw))


@st.composite
def mutated(draw, raw: bytes) -> bytes:
    """Mostly as built; sometimes cut short, spliced or with bytes changed, as a broken relay leaves it."""
    how = draw(st.sampled_from(["keep", "keep", "keep", "truncate", "flip", "splice", "lf_only"]))
    if how == "truncate" and raw:
        return raw[:draw(st.integers(0, len(raw)))]
    if how == "flip" and raw:
        data = bytearray(raw)
        for _ in range(draw(st.integers(1, 8))):
            data[draw(st.integers(0, len(data) - 1))] = draw(st.integers(0, 255))
        return bytes(data)
    if how == "splice" and raw:
        at = draw(st.integers(0, len(raw)))
        return raw[:at] + draw(st.binary(max_size=50)) + raw[at:]
    if how == "lf_only":
        return raw.replace(b"\r\n", b"\n")
    return raw


def mutated_samples() -> st.SearchStrategy[bytes]:
    """The shared sample messages (real clients' output), changed as above."""
    if not SAMPLE_BYTES:
        return st.nothing()
    return st.sampled_from(SAMPLE_BYTES).flatmap(mutated)


any_mail = st.one_of(messages(), mutated_samples(), st.binary(max_size=3000))
