"""No national ID, G-code or student name in workflow histories, IDs or search attributes."""

from __future__ import annotations

import json
import re

import pytest

from google.protobuf.json_format import ParseDict
from temporalio.api.common.v1 import Payload

from dmcflow.payload_codec import ENCRYPTED, REFUSED, AesGcmPayloadCodec
from domain.ids import is_national_id
from tests.payload_keys import TEST_RING
from tests.stack import HISTORIES

STUDENT_ID = re.compile(r"(?<![0-9])([0-8][0-9]{12})(?![0-9])|G[0-9]{12}")
TEST_CODEC = AesGcmPayloadCodec(TEST_RING, accept_plaintext=True)
NAMES = ("ปวีณา", "ศุภชัย", "ณัฐธิดา", "ทดสอบ", "พลอยงาม")  # students the recorded rounds imported
# free text the recorded dropout consultations wrote (details, a question, a decision's reason): database only
FREE_TEXT = ("ครอบครัวย้ายไปทำงาน", "ขอสำเนาบันทึกการเยี่ยมบ้าน", "แนบบันทึกการเยี่ยมบ้าน", "ตรวจสอบกับผู้ปกครอง")


def opened(node: dict) -> bytes:
    """A payload's data; an encrypted one (histories from v5 on) is opened with the tests' key first."""
    payload = ParseDict(node, Payload())
    if payload.metadata.get("encoding") == ENCRYPTED:
        payload = TEST_CODEC.open(payload)
        assert payload.metadata.get("encoding") != REFUSED.encode(), "a sealed payload the test key cannot open"
    return payload.data


def decoded_payload_texts(node) -> list[str]:
    """Every payload's data, base64-decoded, anywhere in a history's JSON."""
    found = []
    if isinstance(node, dict):
        if "data" in node and isinstance(node["data"], str) and "metadata" in node:
            found.append(opened(node).decode("utf-8", errors="replace"))
        for value in node.values():
            found += decoded_payload_texts(value)
    elif isinstance(node, list):
        for value in node:
            found += decoded_payload_texts(value)
    return found


@pytest.mark.parametrize("path", sorted(HISTORIES.glob("*.json")), ids=lambda p: p.stem)
def test_histories_hold_no_personal_data(path):
    history = json.loads(path.read_text(encoding="utf-8"))
    texts = decoded_payload_texts(history) + [path.read_text(encoding="utf-8")]
    assert len(texts) > 5, "the history's payloads were found and decoded"
    for text in texts:
        ids = [m.group(0) for m in STUDENT_ID.finditer(text)]
        assert not [i for i in ids if i.startswith("G") or is_national_id(i)], f"student identifier in {path.name}"
        assert not [n for n in NAMES if n in text], f"student name in {path.name}"
        assert not [t for t in FREE_TEXT if t in text], f"free text in {path.name}"
