"""The tests' fixed payload keys (never a production key), and data converters made from them.

tests/conftest.py puts them in the environment, so every `Settings()` of a test, and every worker process a
test starts, seals and opens Temporal payloads with the same ring.
"""

from __future__ import annotations

import base64
import json

from temporalio.converter import DataConverter

from dmcflow.payload_codec import KeyRing, data_converter_for

TEST_KEY_ID = "test-1"
TEST_KEYS = {TEST_KEY_ID: base64.b64encode(bytes(range(32))).decode("ascii")}
ENVIRONMENT = {"DMCFLOW_PAYLOAD_KEYS": json.dumps(TEST_KEYS), "DMCFLOW_PAYLOAD_KEY_ID": TEST_KEY_ID}
TEST_RING = KeyRing.parse(TEST_KEYS, TEST_KEY_ID)


def sealed_converter(*, accept_plaintext: bool = False) -> DataConverter:
    return data_converter_for(TEST_RING, accept_plaintext=accept_plaintext)


DATA_CONVERTER = sealed_converter()  # what the tests' clients and servers use: plaintext refused
