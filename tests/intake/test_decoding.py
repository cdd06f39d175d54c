"""Thai mail's text as the intake decodes it (intake.email_parsing.decoding): charsets that lie or are missing,
RFC 2047 headers in TIS-620 / windows-874, raw 8-bit headers. Pure: no server, marked fast."""

from __future__ import annotations

import base64

import pytest

from intake.email_parsing.decoding import decode_text, decode_words, unescape_8bit

pytestmark = pytest.mark.fast

THAI = "คำขอแก้ไขเลขประจำตัวประชาชน ด.ญ.สมศรี"


@pytest.mark.parametrize("label", ["tis-620", "TIS620", "windows-874", "x-windows-874", "iso-8859-11", None,
                                   "iso-8859-1", "us-ascii", "unknown-8bit", "klingon"])
def test_tis620_bytes_read_as_thai_whatever_the_label(label):
    assert decode_text(THAI.encode("cp874"), label) == (THAI, False)


@pytest.mark.parametrize("label", ["tis-620", "windows-874", "iso-8859-1", None, "utf-8"])
def test_utf8_bytes_read_as_thai_even_when_labelled_tis620(label):
    assert decode_text(THAI.encode("utf-8"), label) == (THAI, False)


def test_windows_874_extras_beyond_tis620():
    text = "“ราคา” 100 € – ตัวอย่าง"  # curly quotes, euro and dash exist in windows-874 only
    assert decode_text(text.encode("cp874"), "tis-620") == (text, False)


def test_a_declared_charset_other_than_thai_is_honoured():
    assert decode_text("Café".encode("utf-16"), "utf-16") == ("Café", False)


def test_undecodable_bytes_are_marked_lossy():
    # 0xDB-0xDE and 0xFC-0xFF are unassigned in windows-874 and cannot start UTF-8 text here
    text, lossy = decode_text(b"\xfc\xfd\xfe\xff", "tis-620")
    assert lossy and "\ufffd" in text


def test_base64_encoded_word_in_tis620():
    encoded = "=?TIS-620?B?" + base64.b64encode(THAI.encode("cp874")).decode() + "?="
    assert decode_words(f"Re: {encoded}") == f"Re: {THAI}"


def test_quoted_printable_encoded_word_labelled_windows_874():
    encoded = "=?windows-874?Q?" + "".join(f"={b:02X}" for b in "เลขใหม่".encode("cp874")) + "?="
    assert decode_words(encoded) == "เลขใหม่"


def test_a_broken_encoded_word_is_shown_as_it_came():
    assert decode_words("=?utf-8?B?not base64!?=") == "=?utf-8?B?not base64!?="


def test_raw_8bit_header_bytes_become_thai_text():
    # how email.message_from_bytes hands over a TIS-620 subject sent without RFC 2047
    escaped = THAI.encode("cp874").decode("ascii", "surrogateescape")
    assert unescape_8bit(escaped) == THAI
    assert unescape_8bit("plain ascii") == "plain ascii"
