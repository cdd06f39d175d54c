"""Configuration from the environment (prefix DMCFLOW_) or a .env file, with embedded local defaults."""

from __future__ import annotations

import ipaddress
import json
from datetime import date, timedelta
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Literal
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

VAR_DIR = Path("var")


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="DMCFLOW_", env_file=".env", extra="ignore")

    database_url: str = Field(f"sqlite:///{VAR_DIR / 'dmcflow.sqlite'}",
                              description="SQLite by default; postgresql://user:pw@host/db for production")
    temporal_address: str = "127.0.0.1:7233"
    temporal_namespace: str = "default"
    task_queue: str = "dmcflow"
    # school workflows a worker keeps in memory (about 140 KB each); a workflow outside it is replayed from its
    # history before its next task, so a worker should hold all of its schools when the cutoff fires (README)
    workflow_cache_size: int = Field(5000, ge=0)
    # Temporal payloads are sealed with AES-256-GCM (dmcflow/payload_codec.py): key id -> base64 of 32 bytes, as a
    # JSON object, or a file {"active": id, "keys": {...}}; the worker, the API and the intake refuse to start
    # without. Rotation: add a key and make it active; keep the old ones while histories sealed with them live.
    payload_keys: dict[str, SecretStr] = Field(default_factory=dict)
    payload_key_id: str | None = None  # the active key; may be left out when there is one
    payload_keys_file: Path | None = None
    # plaintext payloads are refused; true only to run histories recorded before encryption was turned on
    payload_accept_plaintext: bool = False
    # transport to the Temporal frontend: mTLS (client certificate and key, the server's CA) and/or an API key
    temporal_tls_cert: Path | None = None
    temporal_tls_key: Path | None = None
    temporal_tls_ca: Path | None = None
    temporal_tls_server_name: str | None = None
    temporal_api_key: SecretStr | None = None
    # `dmcflow codec-server`: the Temporal UI's remote codec (admin tokens only), CORS for the UI's origin only
    codec_server_host: str = "127.0.0.1"
    codec_server_port: int = 8081
    temporal_ui_origin: str | None = None

    @property
    def ops_task_queue(self) -> str:
        """Round-wide operations (start, extend, the areas' cutoffs) have their own queue, so a round of
        30,000 schools starting never queues the starter behind the schools' own first tasks."""
        return f"{self.task_queue}-ops"

    smtp_host: str = "127.0.0.1"
    smtp_port: int = 2525
    smtp_username: str | None = None
    smtp_password: str | None = None
    # TLS to the relay, its certificate verified: STARTTLS (port 587) or implicit TLS (465). `off` is accepted only
    # for a catcher on a loopback address (`dmcflow dev`, the tests): mail carries names, IDs and SMTP credentials
    smtp_tls: Literal["starttls", "implicit", "off"] = "starttls"
    smtp_tls_ca_file: Path | None = None  # a private CA to verify the relay with, instead of the system's
    smtp_timeout_seconds: float = 20.0
    mail_from: str = "DMC Flow <dmcflow@localhost>"

    # the ID-correction intake (R4): an SMTP listener for the district's mailbox address
    # the address schools mail their requests to, shown on the staff's ID-correction page (unset: not shown)
    intake_address: str | None = Field(None, max_length=254)
    intake_smtp_host: str = "127.0.0.1"
    intake_smtp_port: int = 2526
    intake_max_bytes: int = Field(25 * 1024 * 1024, description="messages above this are refused with the limit")
    # who may speak SMTP to the intake: the relay(s) in front of it (addresses or networks); anyone else gets 554
    intake_relay_addresses: Annotated[list[str], NoDecode] = Field(default_factory=lambda: ["127.0.0.1/32", "::1/128"])
    # the trusted relay's authserv-id: its topmost Authentication-Results header with dmarc=pass authenticates
    # the From domain; unset, only DKIM signatures verified by the intake itself do (README, security)
    intake_authserv_id: str | None = None
    # MIME caps, checked on the raw bytes before parsing: over them the school is told why, nothing is read
    intake_max_mime_parts: int = Field(500, ge=1)
    intake_max_mime_depth: int = Field(20, ge=1)
    intake_max_decoded_bytes: int = Field(25 * 1024 * 1024, ge=1)
    # messages per window: per SMTP client address, and per sender (authenticated address, or the claimed
    # domain of unauthenticated mail, which beyond its limit is dropped unstored)
    intake_rate_per_client: int = Field(600, ge=1)
    intake_rate_per_sender: int = Field(60, ge=1)
    intake_rate_window_seconds: float = Field(3600.0, gt=0)
    # or a real district mailbox over IMAP (polled with IDLE where offered); off while intake_imap_host is unset
    intake_imap_host: str | None = None
    intake_imap_port: int = 993
    intake_imap_ssl: bool = True
    intake_imap_user: str | None = None
    intake_imap_password: str | None = None
    intake_imap_mailbox: str = "INBOX"
    intake_imap_processed_mailbox: str | None = None

    # working days for the dropout consultation's reminders (R8): see dmcflow/holiday_calendar.py
    holiday_files: list[Path] = Field(default_factory=lambda: [Path(__file__).parent / "calendars" / "th-holidays-2567.csv"])
    extra_holidays: list[date] = Field(default_factory=list)

    api_host: str = "127.0.0.1"
    api_port: int = 8000
    # failed sign-ins (bearer token, login form, session cookie) per client address and per presented credential
    # before further failures are answered 429 too_many_failed_logins, over a sliding window; a valid credential
    # is never refused (api/auth_limits.py)
    auth_failure_limit: int = 20
    auth_failure_window_seconds: float = 300.0
    # reverse proxies whose X-Forwarded-For is believed (addresses or CIDRs, comma-separated); nobody's by default
    trusted_proxies: Annotated[list[str], NoDecode] = Field(default_factory=list)
    # bearer tokens from `dmcflow users add` / `users rotate-token` expire after this many days
    token_lifetime_days: int = Field(180, ge=1)
    # the dashboard's web session: ends after this long without a request, and this long after login at most
    session_idle_minutes: int = Field(60, ge=1)
    session_absolute_hours: int = Field(12, ge=1)
    # the session cookie is sent over HTTPS only; `dmcflow dev` turns it off when it serves plain http on loopback
    session_cookie_secure: bool = True
    # the one-time link that sets a password (a new account, "forgot password") works once, for this long
    password_link_hours: int = Field(72, ge=1)
    # a password set through the link: at least this long, and not the user name (NIST SP 800-63B)
    password_min_length: int = Field(10, ge=8)
    # single sign-on with an OpenID Connect provider (web/oidc.py), off while the issuer or the client id is unset.
    # The issuer exactly as its discovery document (<issuer>/.well-known/openid-configuration) says it
    oidc_issuer: str | None = Field(None, max_length=255)
    oidc_client_id: str | None = None
    oidc_client_secret: SecretStr | None = None  # unset: a public client, PKCE alone
    oidc_provider_name: str = Field("OpenID Connect", max_length=60)  # the login page's "เข้าสู่ระบบด้วย <name>"
    # the ID token's claim that finds the account at its first sign-in through the provider: `email` (only when
    # email_verified; the account's registered email) or another (e.g. preferred_username: the user name)
    oidc_user_claim: str = "email"
    oidc_scopes: str = "openid email profile"
    # the areas whose accounts may sign in through this provider (comma-separated); empty: every account
    oidc_areas: Annotated[list[str], NoDecode] = Field(default_factory=list)

    @property
    def oidc_enabled(self) -> bool:
        return bool(self.oidc_issuer and self.oidc_client_id)
    # request bodies above these are refused (413) before they are read: uploads, and everything else (JSON)
    max_upload_bytes: int = 50 * 1024 * 1024
    max_json_bytes: int = 1024 * 1024
    # an uploaded roster or affiliation list (CSV/XLSX) is read row by row within these; past any of them it is
    # refused (413) with the limit named (domain/spreadsheet_limits.py). A whole area's DMC export is 60,000 rows
    # of 12 columns, whose XLSX unpacks to about 45 MB
    upload_max_rows: int = Field(200_000, ge=1)
    upload_max_columns: int = Field(64, ge=1, le=16384)
    upload_max_cell_chars: int = Field(4096, ge=1)
    upload_max_unpacked_bytes: int = Field(256 * 1024 * 1024, ge=1)
    # claims on students held by another school (each tells the claimant an ID is on some roster): per user and
    # per school within the window, and per imported file; over them, adding new students is refused (429)
    duplicate_claims_per_user: int = Field(20, ge=0)
    duplicate_claims_per_school: int = Field(50, ge=0)
    duplicate_claims_window_seconds: float = Field(86400.0, gt=0)
    duplicate_claims_per_file: int = Field(20, ge=0)

    def claim_limits(self) -> ClaimLimits:  # noqa: F821  (imported inside: settings stay free of the domain)
        from domain.duplicates import ClaimLimits

        return ClaimLimits(per_user=self.duplicate_claims_per_user, per_school=self.duplicate_claims_per_school,
                           window=timedelta(seconds=self.duplicate_claims_window_seconds),
                           per_file=self.duplicate_claims_per_file)
    public_url: str | None = Field(None, description="base URL in emails; defaults to http://api_host:api_port")

    # the local stack (dmcflow dev): where the embedded servers keep their files
    var_dir: Path = VAR_DIR
    temporal_ui_port: int = 8233


    @field_validator("smtp_username", "smtp_password", "smtp_tls_ca_file", "oidc_issuer", "oidc_client_id",
                     "oidc_client_secret", mode="before")
    @classmethod
    def _empty_is_unset(cls, value):
        return None if value == "" else value  # docker-compose passes an unset ${VAR:-} as ""

    @field_validator("smtp_tls")
    @classmethod
    def _plain_smtp_only_on_loopback(cls, value: str, info) -> str:
        host = info.data.get("smtp_host", "")
        if value == "off" and not is_loopback(host):
            raise ValueError(
                f"DMCFLOW_SMTP_TLS=off would send mail (names, national IDs, SMTP credentials) in clear to {host!r}: "
                "it is allowed only for a catcher on a loopback address. Use DMCFLOW_SMTP_TLS=starttls (port 587) "
                "or implicit (port 465), with DMCFLOW_SMTP_TLS_CA_FILE for a relay with a private CA")
        return value

    @field_validator("oidc_issuer")
    @classmethod
    def _issuer_over_https(cls, value: str | None) -> str | None:
        if value and not (value.startswith("https://")
                          or (value.startswith("http://") and is_loopback(urlsplit(value).hostname or ""))):
            raise ValueError(f"DMCFLOW_OIDC_ISSUER={value!r}: the provider's keys and tokens must come over https "
                             "(plain http is accepted only on a loopback address, for tests)")
        return value

    @field_validator("trusted_proxies", "intake_relay_addresses", "oidc_areas", mode="before")
    @classmethod
    def _comma_separated(cls, value):
        if isinstance(value, str):
            value = value.strip()
            if value.startswith("["):
                return json.loads(value)
            return [item.strip() for item in value.split(",") if item.strip()]
        return value

    @field_validator("trusted_proxies", "intake_relay_addresses")
    @classmethod
    def _networks(cls, value: list[str]) -> list[str]:
        for item in value:
            ipaddress.ip_network(item)  # a typo (or "*") fails at start-up, not silently
        return value

    def model_post_init(self, _context) -> None:
        if self.public_url is None:
            self.public_url = f"http://{self.api_host}:{self.api_port}"


@lru_cache
def get_settings() -> Settings:
    return Settings()


def is_loopback(host: str) -> bool:
    host = host.strip().strip("[]").lower()
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
