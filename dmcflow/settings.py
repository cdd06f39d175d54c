"""Configuration from the environment (prefix DMCFLOW_) or a .env file, with embedded local defaults."""

from __future__ import annotations

from datetime import date
from functools import lru_cache
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

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

    @property
    def ops_task_queue(self) -> str:
        """Round-wide operations (start, extend, the areas' cutoffs) have their own queue, so a round of
        30,000 schools starting never queues the starter behind the schools' own first tasks."""
        return f"{self.task_queue}-ops"

    smtp_host: str = "127.0.0.1"
    smtp_port: int = 2525
    smtp_username: str | None = None
    smtp_password: str | None = None
    smtp_starttls: bool = False
    smtp_timeout_seconds: float = 20.0
    mail_from: str = "DMC Flow <dmcflow@localhost>"

    # the ID-correction intake (R4): an SMTP listener for the district's mailbox address
    intake_smtp_host: str = "127.0.0.1"
    intake_smtp_port: int = 2526
    intake_max_bytes: int = Field(25 * 1024 * 1024, description="messages above this are refused with the limit")
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
    # wrong bearer tokens per client address before 429 too_many_failed_logins, over a sliding window
    auth_failure_limit: int = 20
    auth_failure_window_seconds: float = 300.0
    # request bodies above these are refused (413) before they are read: uploads, and everything else (JSON)
    max_upload_bytes: int = 50 * 1024 * 1024
    max_json_bytes: int = 1024 * 1024
    public_url: str | None = Field(None, description="base URL in emails; defaults to http://api_host:api_port")

    # the local stack (dmcflow dev): where the embedded servers keep their files
    var_dir: Path = VAR_DIR
    temporal_ui_port: int = 8233


    def model_post_init(self, _context) -> None:
        if self.public_url is None:
            self.public_url = f"http://{self.api_host}:{self.api_port}"


@lru_cache
def get_settings() -> Settings:
    return Settings()
