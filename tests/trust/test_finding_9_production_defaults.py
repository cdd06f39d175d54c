"""Finding 9 (issue 15), the defaults: SMTP went out in clear unless someone turned TLS on; docker-compose.yml
had default database passwords and published Temporal's frontend, the Temporal UI (write actions on) and
Mailpit's UI; `dmcflow demo load` / `dmcflow dev` put the public `demo-admin` token into whatever database
`.env` named. Now TLS is on unless turned off for a loopback catcher, compose publishes only the API and the
intake and has no secret defaults, and demo data goes only into the local SQLite file of `dmcflow dev`.
"""

from __future__ import annotations

import asyncio
import datetime
import ipaddress
import os
import re
import ssl
import subprocess
import sys
from pathlib import Path

import aiosmtplib
import pytest
from aiosmtpd.controller import Controller
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from pydantic import ValidationError

from dmcflow.settings import Settings
from mailer.smtp_sender import build_message, send
from tests.conftest import Catcher, free_port
from tests.test_compose import CI_ENV, COMPOSE_FILE, DOCKER_COMPOSE, compose, published_ports, resolved_config, \
    service_blocks

ROOT = Path(__file__).resolve().parents[2]
DMCFLOW = [sys.executable, "-m", "dmcflow.cli"]
needs_compose = pytest.mark.skipif(DOCKER_COMPOSE is None, reason="the docker-compose binary is not installed")


# --- SMTP -------------------------------------------------------------------------------------------------

def test_smtp_tls_is_on_by_default():
    assert Settings().smtp_tls == "starttls"


@pytest.mark.parametrize("host", ["relay.district.example", "10.0.0.25", "0.0.0.0"])
def test_plain_smtp_to_anything_but_loopback_is_refused_at_startup(host, monkeypatch):
    with pytest.raises(ValidationError, match="DMCFLOW_SMTP_TLS=off"):
        Settings(smtp_host=host, smtp_tls="off")
    monkeypatch.setenv("DMCFLOW_SMTP_HOST", host)
    monkeypatch.setenv("DMCFLOW_SMTP_TLS", "off")
    with pytest.raises(ValidationError, match="loopback"):
        Settings()  # what every process (API, worker, intake) builds at start-up


@pytest.mark.parametrize("host", ["127.0.0.1", "127.0.0.53", "::1", "localhost"])
def test_plain_smtp_is_allowed_for_a_loopback_catcher(host):
    assert Settings(smtp_host=host, smtp_tls="off").smtp_tls == "off"


def test_a_process_refuses_to_start_with_plain_smtp_to_a_relay(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(ROOT), "DMCFLOW_SMTP_HOST": "relay.district.example", "DMCFLOW_SMTP_TLS": "off",
           "DMCFLOW_DATABASE_URL": f"sqlite:///{tmp_path / 'app.sqlite'}"}
    out = subprocess.run(DMCFLOW + ["db", "upgrade"], cwd=tmp_path, env=env, capture_output=True, text=True,
                         timeout=60)
    assert out.returncode != 0 and "DMCFLOW_SMTP_TLS=off" in out.stderr, out.stderr
    assert not (tmp_path / "app.sqlite").exists()


def self_signed(tmp_path: Path) -> tuple[ssl.SSLContext, Path]:
    """A server context for 127.0.0.1 and the certificate's path (its own CA)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                           critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    crt, pem = tmp_path / "relay.crt", tmp_path / "relay.key"
    crt.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    pem.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                      serialization.NoEncryption()))
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(crt, pem)
    return context, crt


def relay(tmp_path: Path, mode: str) -> tuple[Catcher, Path]:
    """An SMTP server on loopback: plain (no STARTTLS offered), STARTTLS required, or implicit TLS."""
    catcher = Catcher("127.0.0.1", free_port())
    context, crt = self_signed(tmp_path)
    kwargs = {"plain": {}, "starttls": {"tls_context": context, "require_starttls": True},
              "implicit": {"ssl_context": context}}[mode]
    catcher.controller = Controller(catcher, hostname=catcher.host, port=catcher.port, **kwargs)
    catcher.controller.start()
    return catcher, crt


async def deliver(settings: Settings) -> None:
    msg = build_message(settings, to=["officer@district.example"], subject="ทดสอบ", body="เลขประจำตัว 1449900000018",
                        message_id="<tls-test@dmcflow>")
    await asyncio.wait_for(send(settings, msg), 20)


async def test_default_settings_never_fall_back_to_plain_text(tmp_path):
    catcher, _ = relay(tmp_path, "plain")
    try:
        with pytest.raises(aiosmtplib.SMTPException):
            await deliver(Settings(smtp_host=catcher.host, smtp_port=catcher.port))
        assert catcher.messages == []  # nothing went out in clear
    finally:
        catcher.controller.stop()


@pytest.mark.parametrize("mode", ["starttls", "implicit"])
async def test_tls_delivers_to_a_verified_relay_and_refuses_an_unverified_one(tmp_path, mode):
    catcher, crt = relay(tmp_path, mode)
    try:
        with pytest.raises((aiosmtplib.SMTPException, ssl.SSLError)):  # self-signed, not trusted: refused
            await deliver(Settings(smtp_host=catcher.host, smtp_port=catcher.port, smtp_tls=mode))
        assert catcher.messages == []
        await deliver(Settings(smtp_host=catcher.host, smtp_port=catcher.port, smtp_tls=mode, smtp_tls_ca_file=crt))
        assert [m["Message-ID"] for m in catcher.messages] == ["<tls-test@dmcflow>"]
    finally:
        catcher.controller.stop()


# --- docker-compose.yml -------------------------------------------------------------------------------------

@needs_compose
def test_compose_publishes_only_the_api_and_the_intake():
    blocks = service_blocks(resolved_config())
    open_to_all = {(name, port) for name, block in blocks.items() for host, port in published_ports(block)
                   if host != "127.0.0.1"}
    assert open_to_all == {("api", "8000"), ("intake", "2526")}
    for internal in ("temporal", "postgresql", "app-db", "mail"):
        assert published_ports(blocks[internal]) == [], blocks[internal]
    # the opt-in UI profile: loopback only, for an SSH tunnel
    assert published_ports(blocks["temporal-ui"]) == [("127.0.0.1", "8080")]
    assert published_ports(blocks["codec-server"]) == [("127.0.0.1", "8081")]
    for name in ("temporal-ui", "codec-server"):
        assert re.search(r"^    profiles:\n    - ui$", blocks[name], re.M), blocks[name]


@needs_compose
def test_compose_temporal_ui_is_read_only_and_decodes_through_the_codec_server():
    ui = service_blocks(resolved_config())["temporal-ui"]
    assert re.search(r"TEMPORAL_DISABLE_WRITE_ACTIONS: ['\"]?true", ui), ui
    assert re.search(r"TEMPORAL_CODEC_ENDPOINT: http://127.0.0.1:8081$", ui, re.M), ui


@needs_compose
@pytest.mark.parametrize("variable", ["APP_DB_PASSWORD", "TEMPORAL_DB_PASSWORD", "DMCFLOW_PAYLOAD_KEYS",
                                      "DMCFLOW_PAYLOAD_KEY_ID", "DMCFLOW_SMTP_HOST"])
def test_compose_has_no_default_for_secrets_and_the_relay(tmp_path, variable):
    lines = [line for line in CI_ENV.read_text(encoding="utf-8").splitlines() if not line.startswith(variable + "=")]
    partial = tmp_path / "partial.env"
    partial.write_text("\n".join(lines) + "\n", encoding="utf-8")
    out = compose("config", "-q", env_file=partial)
    assert out.returncode != 0 and f"set {variable}" in out.stderr, out.stderr


@needs_compose
def test_compose_file_holds_no_password():
    text = COMPOSE_FILE.read_text(encoding="utf-8")
    assert not re.search(r"PASSWORD:-[^}]", text), "a password with a default"
    config = resolved_config()
    app_dsn = re.findall(r"DMCFLOW_DATABASE_URL: (\S+)", config)
    assert app_dsn and all("ci-app-db-password" in dsn for dsn in app_dsn)  # from the environment, nowhere else


# --- demo data ----------------------------------------------------------------------------------------------

def run_cli(tmp_path: Path, *args: str, database_url: str, timeout: float = 120) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT),  # this tree's code, whichever tree the editable install names
           "DMCFLOW_VAR_DIR": str(tmp_path / "var"), "DMCFLOW_DATABASE_URL": database_url,
           "DMCFLOW_TEMPORAL_ADDRESS": f"127.0.0.1:{free_port()}", "DMCFLOW_API_PORT": str(free_port()),
           "DMCFLOW_SMTP_PORT": str(free_port()), "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
    return subprocess.run(DMCFLOW + list(args), cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=timeout)


@pytest.mark.parametrize("command", [["demo", "load"], ["dev"]])
def test_demo_data_is_refused_for_a_postgresql_database(tmp_path, command):
    out = run_cli(tmp_path, *command, database_url="postgresql://dmcflow:s3cret-pw@127.0.0.1:1/production")
    assert out.returncode != 0
    assert "demo-admin" in out.stderr and "dmcflow dev" in out.stderr, out.stderr  # the reason, in Thai and English
    assert "s3cret-pw" not in out.stdout + out.stderr
    assert "Connection refused" not in out.stderr  # refused before it tried the server
    assert not (tmp_path / "var" / "temporal.sqlite").exists()  # `dev` started nothing


def test_demo_data_is_refused_for_another_sqlite_file(tmp_path):
    other = tmp_path / "district.sqlite"
    out = run_cli(tmp_path, "demo", "load", database_url=f"sqlite:///{other}")
    assert out.returncode == 2 and "demo-admin" in out.stderr, out.stderr
    assert not other.exists()  # not even migrated


def test_demo_data_loads_into_the_dev_sqlite_file(tmp_path):
    (tmp_path / "var").mkdir()
    out = run_cli(tmp_path, "demo", "load", database_url=f"sqlite:///{tmp_path / 'var' / 'dmcflow.sqlite'}")
    assert out.returncode == 0 and "admin → demo-admin" in out.stdout, out.stderr
