"""`dmcflow mail list` lists whatever the catcher's folder holds, and never crashes on it."""

from __future__ import annotations

import pytest

from dmcflow import cli
from dmcflow.settings import get_settings

# As they may sit in var/mail: written by an older dmcflow, or by anything that talked to the catcher.
STORED = {
    # the reply an older dmcflow wrote for a school whose subject held a broken encoded word
    "broken": b"Date: Tue, 30 Apr 2024 10:00:00 +0700\nTo: dmc@tuayang.ac.th\n"
              b"Subject: Re: =?unknown-8bit?q?=E0=B8?= =?utf-8?b?4LiC4Lit?= [receipt]\n"
              b"Content-Type: text/plain; charset=\"x-unknown\"\n\n\xe0\xb8\xa3\xe0\xb8\xb1\xe0\xb8\x9a\xe0\xb9\x81\xe0\xb8\xa5\xe0\xb9\x89\xe0\xb8\xa7\n",  # noqa: E501
    "bad_base64": b"Date: Tue, 30 Apr 2024 11:00:00 +0700\nTo: dmc@tuayang.ac.th\nSubject: =?utf-8?b?!!!?= =?x-bogus?q?abc?=\n\nx\n",  # noqa: E501
    "no_date": b"To: dmc@tuayang.ac.th\nSubject: \xe0\xb9\x81\xe0\xb8\x88\xe0\xb9\x89\xe0\xb8\x87\xe0\xb9\x80\xe0\xb8\x95\xe0\xb8\xb7\xe0\xb8\xad\xe0\xb8\x99\n\nx\n",  # noqa: E501
    "bad_date": b"Date: 30/04/2567\nTo: dmc@tuayang.ac.th\nSubject: =?utf-8?b?4LmB4LiI4LmJ4LiH4LmA4LiV4Li34Lit4LiZ?=\n\nx\n",
}


@pytest.fixture
def maildir(tmp_path, monkeypatch):
    monkeypatch.setenv("DMCFLOW_VAR_DIR", str(tmp_path))
    clear = getattr(get_settings, "cache_clear", lambda: None)  # settings may be read once per process
    clear()
    folder = tmp_path / "mail" / "new"
    folder.mkdir(parents=True)
    yield folder
    clear()


def test_mail_list_shows_a_reply_with_a_broken_encoded_word_instead_of_crashing(maildir, capsys):
    for name, data in STORED.items():
        (maildir / name).write_bytes(data)
    cli.main(["mail", "list", "--body"])
    out = capsys.readouterr().out
    assert out.rstrip().endswith(f"4 message(s) in {maildir.parent}")
    assert "ขอ [receipt]" in out  # the valid word of the broken subject is decoded, the rest shown as it can be
    assert "รับแล้ว" in out  # a body in an unknown charset is still read (UTF-8)
    assert out.count("แจ้งเตือน") == 2  # a raw 8-bit subject, and one whose Date is no date
    # mail without a usable Date is listed first, then by date
    assert out.index("แจ้งเตือน") < out.index("[receipt]") < out.index("abc")


def test_mail_list_with_an_empty_folder(maildir, capsys):
    cli.main(["mail", "list", "--last", "0"])
    assert capsys.readouterr().out.strip() == f"0 message(s) in {maildir.parent}"
