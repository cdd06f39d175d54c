"""The payload codec on its own: round trip, tampering, unknown keys, rotation, plaintext, the key ring's checks."""

from __future__ import annotations

import base64

import pytest
from temporalio.api.common.v1 import Payload
from temporalio.exceptions import ApplicationError

from dmcflow.payload_codec import (
    ENCRYPTED, KEY_ID, REFUSED, AesGcmPayloadCodec, KeyRing, PayloadKeysError, data_converter_for, new_key,
)
from domain.school_round import Actor

KEY_A, KEY_B = new_key(), new_key()


def ring(active: str = "a", **keys: str) -> KeyRing:
    return KeyRing.parse(keys or {"a": KEY_A}, active)


def plain(text: str = '{"user_id":"u-1","role":"staff"}') -> Payload:
    return Payload(metadata={"encoding": b"json/plain"}, data=text.encode())


async def roundtrip(encoder: AesGcmPayloadCodec, decoder: AesGcmPayloadCodec, payload: Payload) -> Payload:
    [sealed] = await encoder.encode([payload])
    [opened] = await decoder.decode([sealed])
    return opened


def refused(payload: Payload) -> str | None:
    if payload.metadata.get("encoding") == REFUSED.encode():
        return payload.metadata["dmcflow-refused-reason"].decode()
    return None


async def test_round_trip_and_what_the_server_sees():
    codec = AesGcmPayloadCodec(ring())
    [sealed] = await codec.encode([plain()])
    assert sealed.metadata["encoding"] == ENCRYPTED and sealed.metadata[KEY_ID] == b"a"
    assert b"u-1" not in sealed.data and b"staff" not in sealed.data
    [again] = await codec.encode([plain()])
    assert again.data[:12] != sealed.data[:12]  # a fresh nonce each time
    assert await codec.decode([sealed]) == [plain()]


async def test_tampered_ciphertext_is_refused_not_raised():
    codec = AesGcmPayloadCodec(ring())
    [sealed] = await codec.encode([plain()])
    flipped = bytearray(sealed.data)
    flipped[-1] ^= 1
    for data in (bytes(flipped), sealed.data[:10], b""):
        [out] = await codec.decode([Payload(metadata=sealed.metadata, data=data)])
        assert refused(out) == "tampered"


async def test_a_key_id_relabelled_fails_authentication():
    both = KeyRing.parse({"a": KEY_A, "b": KEY_A}, "a")  # same key under two ids: the id is bound, not just a label
    codec = AesGcmPayloadCodec(both)
    [sealed] = await codec.encode([plain()])
    relabelled = Payload(metadata={"encoding": ENCRYPTED, KEY_ID: b"b"}, data=sealed.data)
    assert refused((await codec.decode([relabelled]))[0]) == "tampered"


async def test_unknown_key_id_and_foreign_key_are_refused():
    ours = AesGcmPayloadCodec(ring())
    theirs = AesGcmPayloadCodec(KeyRing.parse({"evil": KEY_B}, "evil"))
    same_id_other_key = AesGcmPayloadCodec(KeyRing.parse({"a": KEY_B}, "a"))
    assert refused(await roundtrip(theirs, ours, plain())) == "unknown_key"
    assert refused(await roundtrip(same_id_other_key, ours, plain())) == "tampered"


async def test_rotation_new_key_seals_old_keys_still_open():
    old = AesGcmPayloadCodec(ring())
    rotated = AesGcmPayloadCodec(KeyRing.parse({"a": KEY_A, "b": KEY_B}, "b"))
    [sealed_before] = await old.encode([plain()])
    [sealed_after] = await rotated.encode([plain()])
    assert sealed_after.metadata[KEY_ID] == b"b"
    assert await rotated.decode([sealed_before, sealed_after]) == [plain(), plain()]
    assert refused((await old.decode([sealed_after]))[0]) == "unknown_key"  # a process not yet given key b


async def test_plaintext_refused_unless_accepted():
    assert refused((await AesGcmPayloadCodec(ring()).decode([plain()]))[0]) == "plaintext"
    assert await AesGcmPayloadCodec(ring(), accept_plaintext=True).decode([plain()]) == [plain()]


async def test_a_refused_payload_converts_to_no_type_at_all():
    converter = data_converter_for(ring())
    [opened] = await converter.payload_codec.decode([plain()])
    for hint in (Actor, dict, str, None):
        with pytest.raises(ApplicationError) as caught:
            converter.payload_converter.from_payloads([opened], [hint] if hint else None)
        assert caught.value.type == "payload_unauthenticated" and caught.value.non_retryable
        assert caught.value.details[0]["message_th"] and caught.value.details[0]["message_en"]
    # and the real thing still converts
    [value] = await converter.decode(await converter.encode([Actor(user_id="u-1", role="staff")]), [Actor])
    assert value == Actor(user_id="u-1", role="staff")


@pytest.mark.parametrize("keys,active,why", [
    ({}, None, "no payload key"),
    ({"a": base64.b64encode(b"short").decode()}, None, "32 bytes"),
    ({"a": "not base64!"}, None, "not base64"),
    ({"a": KEY_A, "b": KEY_B}, None, "which one is active"),
    ({"a": KEY_A}, "b", "not among the keys"),
])
def test_a_bad_key_ring_is_refused_with_its_reason(keys, active, why):
    with pytest.raises(PayloadKeysError, match=why):
        KeyRing.parse(keys, active)


def test_the_ring_never_shows_its_keys():
    assert KEY_A not in repr(ring()) and "a" in repr(ring())
