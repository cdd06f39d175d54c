"""Bytes to text as Thai mail sends them: wrong or missing charsets (TIS-620 labelled as Latin-1, UTF-8
labelled as TIS-620), RFC 2047 encoded words, raw 8-bit header bytes. Never raises on what a sender wrote."""

from __future__ import annotations

import codecs
import re
from email.header import decode_header

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


def unescape_8bit(value: str) -> str:
    """The stdlib parser keeps raw 8-bit header bytes (a UTF-8 or TIS-620 subject or filename sent
    without RFC 2047) as surrogate escapes; they would break any later encode, so decode them here."""
    if any("\udc80" <= ch <= "\udcff" for ch in value):
        return decode_text(value.encode("ascii", "surrogateescape"), None)[0]
    return value


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
