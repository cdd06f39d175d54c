"""The bench seals Temporal payloads as a deployment does: with the configured keys, or else with a key of
this run, put in the environment so that the worker, API and bare-worker processes it starts share it."""

from __future__ import annotations

import json
import os

from temporalio.converter import DataConverter

from dmcflow.payload_codec import new_key
from dmcflow.settings import Settings
from dmcflow.temporal_client import data_converter


def bench_converter() -> DataConverter:
    settings = Settings()
    if not settings.payload_keys and settings.payload_keys_file is None:
        os.environ["DMCFLOW_PAYLOAD_KEYS"] = json.dumps({"bench": new_key()})
        os.environ["DMCFLOW_PAYLOAD_KEY_ID"] = "bench"
        settings = Settings()
    return data_converter(settings)
