"""All configuration, from XKIT_* environment variables."""

from __future__ import annotations

from pathlib import Path

from pydantic import SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="XKIT_", extra="ignore")

    data_dir: Path = Path(".xkit")
    database_url: str | None = None
    secret_key: SecretStr | None = None
    host: str = "127.0.0.1"
    port: int = 8000
    # Where browsers reach this gateway; OAuth callbacks are built on it.
    public_url: str | None = None
    dev_api_key: SecretStr | None = None
    worker_concurrency: int = 8
    worker_poll_seconds: float = 1.0
    run_worker: bool = True
    http_timeout_seconds: float = 30.0
    # How long the change log keeps changes; a subscriber resuming from an older cursor is told to re-read.
    change_retention_days: float = 30.0
    # permessage-deflate on subscription WebSockets. Off by default: change events are small JSON messages,
    # and compressing each one for each subscriber (and inflating it at the client) cost a broadcast of
    # 100,000 deliveries about two thirds of its speed (fan-out benchmark). Worth it on slow links only.
    websocket_compression: bool = False
    log_level: str = "info"

    @property
    def resolved_database_url(self) -> str:
        return self.database_url or f"sqlite+aiosqlite:///{(self.data_dir / 'xkit.db').resolve()}"

    @property
    def resolved_public_url(self) -> str:
        return (self.public_url or f"http://{self.host}:{self.port}").rstrip("/")
