"""docker-compose.yml: docker-compose 1.29 accepts it, and it wires dmcflow to Temporal, its database and mail.

Needs only the docker-compose binary (no engine). PyYAML is not a dependency of dmcflow, so the resolved
file printed by `docker-compose config` is read with a small indentation-based splitter, per service. The file
has no defaults for secrets: `.ci/compose.env` gives dummies (what the trust tests of finding 9 check is there).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
COMPOSE_FILE = ROOT / "docker-compose.yml"
CI_ENV = ROOT / ".ci" / "compose.env"  # dummy passwords, keys and relay: the file has no defaults for them
DOCKER_COMPOSE = shutil.which("docker-compose")

pytestmark = pytest.mark.skipif(DOCKER_COMPOSE is None,
                                reason="the docker-compose binary is not installed (scripts/test.sh installs it)")

SERVICES = {"postgresql", "temporal", "temporal-setup", "temporal-ui", "codec-server", "app-db", "mail-tls", "mail",
            "migrate", "api", "intake", "worker"}
APP_SERVICES = ["api", "worker", "intake", "migrate", "codec-server"]
SEARCH_ATTRIBUTES = ("DmcRound", "DmcArea", "DmcStage")


def compose(*args: str, file: Path = COMPOSE_FILE, env_file: Path | None = CI_ENV) -> subprocess.CompletedProcess:
    """`docker-compose`, with only the variables of `env_file` (none of this shell's DMCFLOW_*, APP_*, ...)."""
    env = {k: os.environ[k] for k in ("PATH", "HOME", "LANG") if k in os.environ}
    files = ["--env-file", str(env_file)] if env_file else []
    return subprocess.run([DOCKER_COMPOSE, *files, "-f", str(file), *args], cwd=file.parent, env=env,
                          capture_output=True, text=True, timeout=60)


def resolved_config(env_file: Path = CI_ENV) -> str:
    out = compose("config", env_file=env_file)
    assert out.returncode == 0, out.stderr
    return out.stdout


@pytest.fixture(scope="module")
def resolved() -> str:
    return resolved_config()


@pytest.fixture(scope="module")
def blocks(resolved) -> dict[str, str]:
    return service_blocks(resolved)


def published_ports(block: str) -> list[tuple[str, str]]:
    """(host address, host port) of every published port of a resolved service; 0.0.0.0 when not bound."""
    section = re.search(r"^    ports:\n((?:    [- ].*\n?)+)", block + "\n", re.M)
    if section is None:
        return []
    found = []
    for entry in re.split(r"^    - ", section.group(1), flags=re.M)[1:]:
        short = re.match(r"['\"]?(?:([\d.]+):)?(\d+):\d+", entry)
        if short:
            found.append((short.group(1) or "0.0.0.0", short.group(2)))
        else:
            ip = re.search(r"host_ip: ['\"]?([\d.]+)", entry)
            found.append((ip.group(1) if ip else "0.0.0.0", re.search(r"published: ['\"]?(\d+)", entry).group(1)))
    return found


def service_blocks(resolved: str) -> dict[str, str]:
    """The resolved file's `services:` section, one text block per service."""
    blocks: dict[str, list[str]] = {}
    current, in_services = None, False
    for line in resolved.splitlines():
        if line and not line.startswith(" "):  # a top-level key
            in_services, current = line.rstrip() == "services:", None
            continue
        if not in_services:
            continue
        match = re.match(r"^  ([A-Za-z0-9._-]+):\s*$", line)
        if match:
            current = match.group(1)
            blocks[current] = []
        elif current is not None:
            blocks[current].append(line)
    return {name: "\n".join(lines) for name, lines in blocks.items()}


def has(block: str, key: str, value: str) -> bool:
    """`key: value` somewhere in the block, the value plain or quoted."""
    return re.search(rf"^\s+-?\s*{re.escape(key)}: ['\"]?{re.escape(value)}['\"]?\s*$", block, re.M) is not None


def unfolded(block: str) -> str:
    """A block with YAML's double-quoted line folding undone (long strings such as a shell script)."""
    text = re.sub(r"\\\n\s*", "", block)  # escaped line break: the lines join directly
    return re.sub(r"\n\s*", " ", text.replace("\\ ", " "))


def test_config_is_valid_without_warnings():
    out = compose("config", "-q")
    assert out.returncode == 0, out.stderr
    assert "WARNING" not in out.stderr, out.stderr  # e.g. an unset ${VARIABLE} without a default


def test_defines_the_services():
    out = compose("config", "--services")
    assert out.returncode == 0, out.stderr
    assert SERVICES <= set(out.stdout.split()), out.stdout


def test_no_compose_v2_only_keys():
    text = COMPOSE_FILE.read_text(encoding="utf-8")
    assert not re.search(r"^(name|include):", text, re.M), "docker-compose 1.29 rejects top-level name:/include:"


@pytest.mark.parametrize("service", APP_SERVICES)
def test_app_services_point_at_temporal_the_relay_and_app_db(blocks, service):
    block = blocks[service]
    assert has(block, "DMCFLOW_TEMPORAL_ADDRESS", "temporal:7233"), block
    assert has(block, "DMCFLOW_SMTP_HOST", "smtp-relay.ci.example"), block  # from the environment
    assert has(block, "DMCFLOW_SMTP_PORT", "587") and has(block, "DMCFLOW_SMTP_TLS", "starttls"), block
    assert has(block, "DMCFLOW_PAYLOAD_KEY_ID", "ci-key") and "DMCFLOW_PAYLOAD_KEYS:" in block, block
    assert re.search(r"^\s+DMCFLOW_DATABASE_URL: ['\"]?postgresql://[^@\s]+@app-db:5432/\S+", block, re.M), block
    assert has(block, "context", str(ROOT)), block  # built from this repository's Dockerfile
    assert (ROOT / "Dockerfile").is_file()


def test_api_and_worker_commands_and_start_order(blocks):
    api, worker = blocks["api"], blocks["worker"]
    assert "api.app:app_from_env" in api and "--factory" in api and "0.0.0.0" in api
    assert re.search(r"^\s+- python\n\s+- worker.py$", worker, re.M), worker
    assert re.search(r"replicas: 2$", worker, re.M), worker
    assert has(worker, "DMCFLOW_WORKFLOW_CACHE_SIZE", "7500"), worker  # docs/performance.md's sizing
    for block in (api, worker, blocks["intake"]):
        for dependency in ("migrate", "temporal-setup"):
            assert re.search(rf"^      {dependency}:\n\s+condition: service_completed_successfully$", block, re.M), block
    assert re.search(r"^\s+- dmcflow\n\s+- db\n\s+- upgrade$", blocks["migrate"], re.M), blocks["migrate"]


def test_temporal_on_postgresql_with_dmcflow_search_attributes(blocks):
    temporal = blocks["temporal"]
    assert "temporalio/auto-setup" in temporal
    assert has(temporal, "DB", "postgres12") and has(temporal, "POSTGRES_SEEDS", "postgresql")
    assert has(temporal, "NUM_HISTORY_SHARDS", "128"), temporal  # fixed at creation: docs/performance.md
    assert re.search(r"^      postgresql:\n\s+condition: service_healthy$", temporal, re.M), temporal
    assert "healthcheck:" in blocks["postgresql"] and "postgres:15" in blocks["postgresql"]
    setup = unfolded(blocks["temporal-setup"])
    assert "temporalio/admin-tools" in setup and "search-attribute create" in setup
    assert "--type Keyword" in setup
    for name in SEARCH_ATTRIBUTES:
        assert name in setup
    assert "temporalio/ui" in blocks["temporal-ui"] and has(blocks["temporal-ui"], "TEMPORAL_ADDRESS", "temporal:7233")


def test_codec_server_and_intake_commands(blocks):
    codec = blocks["codec-server"]
    assert re.search(r"^\s+- dmcflow\n\s+- codec-server$", codec, re.M), codec
    assert has(codec, "DMCFLOW_CODEC_SERVER_HOST", "0.0.0.0") and has(codec, "DMCFLOW_CODEC_SERVER_PORT", "8081")
    assert has(codec, "DMCFLOW_TEMPORAL_UI_ORIGIN", "http://127.0.0.1:8080"), codec
    intake = blocks["intake"]
    assert re.search(r"^\s+- dmcflow\n\s+- intake$", intake, re.M), intake
    assert has(intake, "DMCFLOW_INTAKE_SMTP_PORT", "2526") and has(intake, "DMCFLOW_INTAKE_RELAY_ADDRESSES", "192.0.2.25")


def test_mail_catcher_and_app_database(blocks):
    mail = blocks["mail"]
    assert "axllent/mailpit" in mail and "1025" in mail and re.search(r"^\s+- demo$", mail, re.M), mail
    assert has(mail, "MP_SMTP_REQUIRE_STARTTLS", "true") and has(mail, "MP_SMTP_TLS_CERT", "/run/mail-tls/mail.crt")
    assert "mail.crt" in blocks["mail-tls"] and "DNSName" in blocks["mail-tls"]
    assert "postgres:15" in blocks["app-db"] and "healthcheck:" in blocks["app-db"]


def test_an_invalid_file_is_rejected(tmp_path):
    broken = tmp_path / "docker-compose.yml"
    broken.write_text("services:\n  a:\n    imagee: postgres:15\n", encoding="utf-8")
    out = compose("config", "-q", file=broken, env_file=None)
    assert out.returncode != 0 and "imagee" in out.stderr, out.stderr
