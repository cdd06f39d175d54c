"""Temporal payloads encrypted and authenticated (AES-256-GCM), so that reaching the Temporal frontend is not
enough to act on a workflow: a payload that was not sealed with one of our keys cannot even be decoded.

An encoded payload is the original `Payload` protobuf, serialized and sealed with AES-GCM under the active key
of a key ring, a random 96-bit nonce in front; its metadata says `encoding: binary/encrypted` and which key
(`encryption-key-id`), and the key id is bound as associated data, so relabelling a payload with another key
id fails authentication. Rotation: add a key and make it active; the older keys still decode.

A payload that fails authentication (tampered, sealed with a key not in the ring, or plaintext while plaintext
is not accepted) is not an exception of the codec. An exception there fails the whole workflow task, for good,
on every retry and every replay: one forged signal would wedge a school's workflow (a codec that raised a
non-retryable error would even fail the workflow). It decodes instead to a *refused* payload, whose encoding
only `RefusedPayloadConverter` knows, and that converter answers every conversion with a non-retryable
`payload_unauthenticated` error. So, in the SDK (temporalio 1.35, worker/_workflow_instance.py):

- an update's arguments fail to convert before its validator: the update is rejected (never in history);
- a signal's arguments fail to convert: the SDK logs it and drops the signal;
- a workflow start's arguments fail to convert with a failure error: the workflow fails at once (it does not
  sit there, its ID taken, retrying a task that cannot succeed);
- and all of it is deterministic, so a replay takes the same path.
"""

from __future__ import annotations

import base64
import json
import os
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from temporalio.api.common.v1 import Payload
from temporalio.contrib.pydantic import PydanticJSONPlainPayloadConverter, PydanticPayloadConverter
from temporalio.converter import DataConverter, EncodingPayloadConverter, PayloadCodec

from domain.refusals import Refusal, refusal
from workflows.refusal_errors import as_application_error

ENCRYPTED = b"binary/encrypted"
KEY_ID = "encryption-key-id"
REFUSED = "binary/dmcflow-refused"  # what an unauthenticated payload decodes to: no handler's type accepts it
REFUSED_REASON = "dmcflow-refused-reason"
NONCE_BYTES = 12
KEY_BYTES = 32


class PayloadKeysError(RuntimeError):
    """The key ring is missing or malformed: the processes that speak to Temporal refuse to start."""


def payload_refusal() -> Refusal:
    # 503: for an API user this is the system's fault (a process without the key), not a rule of the round
    return refusal("payload_unauthenticated", "ข้อมูลที่ส่งถึงระบบจัดการขั้นตอนงานไม่ผ่านการยืนยันตัวตน จึงถูกปฏิเสธ",
                   "A payload sent to the workflow service failed authentication and was refused", 503)


@dataclass(frozen=True)
class KeyRing:
    """Keys by id; `active` seals new payloads, every key opens old ones."""

    keys: Mapping[str, bytes]
    active: str

    def __post_init__(self) -> None:
        if not self.keys:
            raise PayloadKeysError("no payload key")
        for key_id, key in self.keys.items():
            if not key_id or len(key_id) > 64 or not key_id.isascii():
                raise PayloadKeysError(f"payload key id {key_id!r} must be 1-64 ASCII characters")
            if len(key) != KEY_BYTES:
                raise PayloadKeysError(f"payload key {key_id!r} must be {KEY_BYTES} bytes (AES-256), not {len(key)}")
        if self.active not in self.keys:
            raise PayloadKeysError(f"the active payload key {self.active!r} is not among the keys "
                                   f"({', '.join(sorted(self.keys))})")

    @classmethod
    def parse(cls, encoded: Mapping[str, str], active: str | None) -> "KeyRing":
        """Keys as base64 text (what the settings hold); the active one may be left out when there is one key."""
        keys = {}
        for key_id, text in encoded.items():
            try:
                keys[key_id] = base64.b64decode(text, validate=True)
            except ValueError:
                raise PayloadKeysError(f"payload key {key_id!r} is not base64") from None
        if not keys:
            raise PayloadKeysError("no payload key")
        if active is None:
            if len(keys) != 1:
                raise PayloadKeysError("several payload keys: say which one is active (DMCFLOW_PAYLOAD_KEY_ID)")
            active = next(iter(keys))
        return cls(keys, active)

    def __repr__(self) -> str:  # never the keys themselves
        return f"KeyRing(ids={sorted(self.keys)}, active={self.active!r})"


def new_key() -> str:
    """A fresh AES-256 key as base64, for DMCFLOW_PAYLOAD_KEYS."""
    return base64.b64encode(secrets.token_bytes(KEY_BYTES)).decode("ascii")


def new_key_id() -> str:
    return f"k{datetime.now(timezone.utc):%Y%m%d}-{secrets.token_hex(3)}"


def write_key_file(path: Path, key_id: str | None = None) -> None:
    """A key file ({"active": id, "keys": {id: base64}}) readable by its owner only."""
    key_id = key_id or new_key_id()
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        json.dump({"active": key_id, "keys": {key_id: new_key()}}, f, indent=1)


def read_key_file(path: Path) -> tuple[dict[str, str], str | None]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        keys, active = data["keys"], data.get("active")
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise PayloadKeysError(f"cannot read the payload key file {path}: {type(exc).__name__}") from None
    if not isinstance(keys, dict):
        raise PayloadKeysError(f"the payload key file {path} has no \"keys\" object")
    return keys, active


def _refused(reason: str) -> Payload:
    return Payload(metadata={"encoding": REFUSED.encode(), REFUSED_REASON: reason.encode()})


class AesGcmPayloadCodec(PayloadCodec):
    def __init__(self, ring: KeyRing, *, accept_plaintext: bool = False) -> None:
        self.ring = ring
        self.accept_plaintext = accept_plaintext
        self._ciphers = {key_id: AESGCM(key) for key_id, key in ring.keys.items()}

    async def encode(self, payloads: Sequence[Payload]) -> list[Payload]:
        return [self.seal(p) for p in payloads]

    async def decode(self, payloads: Sequence[Payload]) -> list[Payload]:
        return [self.open(p) for p in payloads]

    def seal(self, payload: Payload) -> Payload:
        key_id = self.ring.active
        nonce = secrets.token_bytes(NONCE_BYTES)
        sealed = self._ciphers[key_id].encrypt(nonce, payload.SerializeToString(), key_id.encode())
        return Payload(metadata={"encoding": ENCRYPTED, KEY_ID: key_id.encode()}, data=nonce + sealed)

    def open(self, payload: Payload) -> Payload:
        """The original payload, or a refused one: never an exception (see the module's docstring)."""
        if payload.metadata.get("encoding") != ENCRYPTED:
            if payload.metadata.get("encoding") == REFUSED.encode():
                return payload
            return Payload(metadata=payload.metadata, data=payload.data) if self.accept_plaintext \
                else _refused("plaintext")
        key_id = payload.metadata.get(KEY_ID, b"").decode("ascii", errors="replace")
        cipher = self._ciphers.get(key_id)
        if cipher is None:
            return _refused("unknown_key")
        data = payload.data
        if len(data) < NONCE_BYTES + 16:
            return _refused("tampered")
        try:
            plain = cipher.decrypt(data[:NONCE_BYTES], data[NONCE_BYTES:], key_id.encode())
            return Payload.FromString(plain)
        except (InvalidTag, ValueError):  # ValueError covers protobuf's DecodeError
            return _refused("tampered")


class RefusedPayloadConverter(EncodingPayloadConverter):
    """Turns a refused payload into a non-retryable `payload_unauthenticated` error, whatever type is asked."""

    @property
    def encoding(self) -> str:
        return REFUSED

    def to_payload(self, value: Any) -> Payload | None:
        return None  # never chosen for encoding

    def from_payload(self, payload: Payload, type_hint: type | None = None) -> Any:
        raise as_application_error(payload_refusal())


# One JSON converter, and so one cache of pydantic TypeAdapters, per process: the SDK builds a payload converter
# for every workflow instance, and each built its own adapters for the same few types (memory and CPU per
# cached workflow). It holds no state but that cache (thread-safe).
_SHARED_JSON = PydanticJSONPlainPayloadConverter()


class DmcflowPayloadConverter(PydanticPayloadConverter):
    """The pydantic converter that also knows refused payloads (nullary: the SDK rebuilds it per context)."""

    def __init__(self) -> None:
        super().__init__(max_cached_type_adapters=0)  # its own JSON converter is replaced by the shared one
        self._set_converters(*(_SHARED_JSON if isinstance(c, PydanticJSONPlainPayloadConverter) else c
                               for c in self.converters.values()), RefusedPayloadConverter())


def data_converter_for(ring: KeyRing, *, accept_plaintext: bool = False) -> DataConverter:
    return DataConverter(payload_converter_class=DmcflowPayloadConverter,
                         payload_codec=AesGcmPayloadCodec(ring, accept_plaintext=accept_plaintext))
