"""One way to reach Temporal: one data converter everywhere (clients, workers, the Replayer), made of the
pydantic converter and the payload codec of the settings' key ring, over mTLS / an API key where configured."""

from __future__ import annotations

from temporalio.client import Client
from temporalio.converter import DataConverter
from temporalio.service import TLSConfig

from dmcflow.payload_codec import KeyRing, PayloadKeysError, data_converter_for, read_key_file
from dmcflow.settings import Settings

MISSING_KEYS = ("no payload key: Temporal payloads are encrypted. Create one with `dmcflow keys new` and set "
                "DMCFLOW_PAYLOAD_KEYS (and DMCFLOW_PAYLOAD_KEY_ID), or DMCFLOW_PAYLOAD_KEYS_FILE; every process "
                "that speaks to Temporal (worker, API, intake, console) needs the same keys")


def key_ring(settings: Settings) -> KeyRing:
    """The settings' keys (DMCFLOW_PAYLOAD_KEYS, or the key file); PayloadKeysError when there are none."""
    encoded = {k: v.get_secret_value() for k, v in settings.payload_keys.items()}
    active = settings.payload_key_id
    if settings.payload_keys_file is not None:
        from_file, file_active = read_key_file(settings.payload_keys_file)
        encoded = {**from_file, **encoded}
        active = active or file_active
    if not encoded:
        raise PayloadKeysError(MISSING_KEYS)
    return KeyRing.parse(encoded, active)


def data_converter(settings: Settings) -> DataConverter:
    return data_converter_for(key_ring(settings), accept_plaintext=settings.payload_accept_plaintext)


def tls_config(settings: Settings) -> TLSConfig | None:
    """mTLS when a certificate, CA or server name is configured; None leaves the SDK's default (TLS with an API
    key, none without)."""
    if settings.temporal_tls_cert is None and settings.temporal_tls_key is None and settings.temporal_tls_ca is None \
            and settings.temporal_tls_server_name is None:
        return None
    if (settings.temporal_tls_cert is None) != (settings.temporal_tls_key is None):
        raise ValueError("DMCFLOW_TEMPORAL_TLS_CERT and DMCFLOW_TEMPORAL_TLS_KEY go together")
    read = lambda p: p.read_bytes() if p is not None else None  # noqa: E731
    return TLSConfig(server_root_ca_cert=read(settings.temporal_tls_ca), domain=settings.temporal_tls_server_name,
                     client_cert=read(settings.temporal_tls_cert), client_private_key=read(settings.temporal_tls_key))


async def connect(settings: Settings) -> Client:
    converter = data_converter(settings)  # before connecting: no keys, no start
    api_key = settings.temporal_api_key.get_secret_value() if settings.temporal_api_key else None
    return await Client.connect(settings.temporal_address, namespace=settings.temporal_namespace,
                                data_converter=converter, tls=tls_config(settings), api_key=api_key)
