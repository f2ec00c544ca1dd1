"""Deployment settings (URLs, secrets, limits, sign-in), read from RNNLAB_* environment variables or .env:
the one settings class of rnnlab.

Embedded defaults need no server: SQLite in ``$RNNLAB_HOME/rnnlab.db`` and kombu's filesystem
broker under ``$RNNLAB_HOME/broker``. Teams set RNNLAB_DATABASE_URL (postgresql+psycopg://…) and
RNNLAB_BROKER_URL (redis://…).
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from rnnlab.spec import Limits


class Settings(BaseSettings, Limits):
    """Deployment settings; the job-size limits (RNNLAB_MAX_HIDDEN_SIZE, …) come from Limits."""

    model_config = SettingsConfigDict(env_prefix="RNNLAB_", env_file=".env", extra="ignore")

    home: Path = Field(Path.home() / ".rnnlab", description="data folder for the embedded defaults")
    database_url: str | None = Field(None, description="SQLAlchemy URL; default sqlite under home")
    readonly_database_url: str | None = Field(
        None, description="URL of a read-only role for the SQL console (Postgres); default: database_url"
    )
    broker_url: str | None = Field(None, description="Celery broker URL; default filesystem under home")
    queue_prefix: str = Field("", description="prefix of the queue names (lets several installs share one Redis)")
    auto_queue: Literal["cpu", "gpu"] = Field("cpu", description="queue of specs with device: auto")
    max_attempts: int = Field(3, ge=1, description="attempts before a repeatedly lost run is failed")
    heartbeat_seconds: float = Field(5.0, gt=0, description="worker heartbeat period")
    lost_after_seconds: float = Field(60.0, gt=0, description="a running run with no heartbeat this long is lost")
    visibility_timeout: int = Field(7 * 24 * 3600, description="Redis: seconds before an unacked job is redelivered")
    sql_timeout_seconds: float = Field(10.0, gt=0, description="statement timeout of the SQL console")
    sql_row_limit: int = Field(10_000, ge=1, description="row limit of the SQL console")
    # sign-in (dashboard.auth, rnnlab.users, `rnnlab up`)
    auth: Literal["auto", "none", "users", "oidc"] = Field(
        "auto", description="auto: oidc if secrets have [auth], else users if the users file has any, else none"
    )
    users_file: Path | None = Field(None, description="users file; default $RNNLAB_HOME/users.yaml")
    oidc_default_role: Literal["viewer", "member", "admin"] = Field(
        "viewer", description="role of an OIDC user who is not in the users file"
    )
    oidc_provider: str | None = Field(None, description="provider name for st.login, if [auth] has several")
    trusted_proxies: str = Field(
        "", description="comma-separated addresses of reverse proxies whose X-Forwarded-For names the client "
        "(for sign-in throttling); 127.0.0.1 for a proxy on this host. Empty: the TCP peer is the client"
    )

    @property
    def trusted_proxy_set(self) -> set[str]:
        return {a.strip() for a in self.trusted_proxies.split(",") if a.strip()}

    @property
    def users_path(self) -> Path:
        return self.users_file or self.home / "users.yaml"

    @property
    def db_url(self) -> str:
        if self.database_url:
            return self.database_url
        self.home.mkdir(parents=True, exist_ok=True)
        return f"sqlite:///{(self.home / 'rnnlab.db').resolve()}"

    @property
    def broker(self) -> str:
        return self.broker_url or "filesystem://"

    @property
    def limits(self) -> Limits:
        return Limits(**{k: getattr(self, k) for k in Limits.model_fields})


@lru_cache
def get_settings() -> Settings:
    return Settings()
