"""A message's envelope from its raw headers (intake.email_parsing.headers): what a reply is threaded and
deduplicated by, however sloppily a mailer wrote it. Pure: no server, marked fast."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from intake.email_parsing.headers import envelope, headers_only

pytestmark = pytest.mark.fast


def test_bare_message_id_and_folded_references():
    found = envelope({"message-id": ["abc@mail.example trailing words"],
                      "references": ["<a@x> <b\r\n @y>", "<c@z>"], "in-reply-to": ["junk <c@z> <d@w>"]})
    assert found["message_id"] == "<abc@mail.example>"
    assert found["references"] == ("<a@x>", "<b@y>", "<c@z>")
    assert found["in_reply_to"] == "<c@z>"


def test_an_overlong_message_id_is_dropped_not_cut():
    assert envelope({"message-id": [f"<{'x' * 997}@y>"]})["message_id"] is None


def test_dates_keep_the_senders_zone_and_unknown_zone_is_utc():
    assert envelope({"date": ["Thu, 18 Apr 2024 16:05:00 +0700"]})["date"] == datetime(
        2024, 4, 18, 16, 5, tzinfo=timezone(timedelta(hours=7)))
    assert envelope({"date": ["Thu, 18 Apr 2024 09:05:00 -0000"]})["date"].tzinfo is timezone.utc
    assert envelope({"date": ["พฤหัสบดี 18 เม.ย. 2567"]})["date"] is None


def test_only_the_head_of_a_huge_message_is_read_for_its_envelope():
    raw = (b"From: School <DMC@Tuayang.ac.th>\r\nMessage-ID: <big@x>\r\n"
           b"Subject: =?utf-8?b?4LiC4Lit4LmB4LiB4LmJ4LmE4LiC?=\r\n\r\n" + b"A" * 10_000_000)
    found = headers_only(raw)
    assert (found["sender"], found["message_id"], found["subject"]) == ("dmc@tuayang.ac.th", "<big@x>", "ขอแก้ไข")
