"""One ``Settings`` object for every service, read from environment variables.

Bad configuration fails at start with one line naming the variable
(:func:`load_settings`), never with a traceback.
"""

from __future__ import annotations

import sys
from enum import StrEnum
from typing import Annotated

from pydantic import (
    Field,
    HttpUrl,
    MongoDsn,
    SecretStr,
    UrlConstraints,
    ValidationError,
    field_validator,
)
from pydantic_core import MultiHostUrl
from pydantic_settings import BaseSettings, SettingsConfigDict

Port = Annotated[int, Field(ge=1, le=65535)]
PositiveSeconds = Annotated[float, Field(gt=0)]
# One RabbitMQ node, or several of a cluster: amqp://user:pass@host1:5672,host2:5672/vhost
AmqpNodesDsn = Annotated[MultiHostUrl, UrlConstraints(allowed_schemes=["amqp", "amqps"],
                                                       host_required=True)]


class LogFormat(StrEnum):
    JSON = "json"
    CONSOLE = "console"


class LogLevel(StrEnum):
    DEBUG = "DEBUG"
    INFO = "INFO"
    WARNING = "WARNING"
    ERROR = "ERROR"


class Settings(BaseSettings):
    """Environment variables, with the defaults documented in the README."""

    model_config = SettingsConfigDict(case_sensitive=False, extra="ignore", frozen=True)

    mongo_url: MongoDsn = MongoDsn("mongodb://127.0.0.1:27017/?replicaSet=rs0")
    mongo_db: str = Field(default="planner", min_length=1, pattern=r"^[^/\\. \"$]+$")
    amqp_url: AmqpNodesDsn = MultiHostUrl("amqp://guest:guest@127.0.0.1:5672/")
    # Prefix of every exchange and queue name, so several deployments (or test
    # runs) can share one broker without seeing each other's messages.
    amqp_prefix: str = Field(default="planner", min_length=1, pattern=r"^[A-Za-z0-9_.-]+$")
    vk_api_url: HttpUrl = HttpUrl("https://api.vk.com/method")
    vk_api_version: str = Field(default="5.199", pattern=r"^\d+\.\d+$")
    vk_timeout_seconds: PositiveSeconds = 10.0
    vk_user_rps: Annotated[float, Field(gt=0)] = 3.0
    vk_group_rps: Annotated[float, Field(gt=0)] = 20.0
    vk_max_attempts: Annotated[int, Field(ge=1, le=20)] = 5
    gateway_host: str = "0.0.0.0"
    gateway_port: Port = 8080
    gateway_max_body_bytes: Annotated[int, Field(ge=1024)] = 256 * 1024
    gateway_publish_timeout_seconds: PositiveSeconds = 2.0
    gateway_project_cache_seconds: Annotated[float, Field(ge=0)] = 5.0
    # A community's refused secrets are answered 403 without MongoDB for this long.
    gateway_refusal_cache_seconds: Annotated[float, Field(ge=0)] = 5.0
    gateway_batch_max_events: Annotated[int, Field(ge=1, le=10_000)] = 128
    gateway_batch_max_bytes: Annotated[int, Field(ge=1024, le=64 * 1024 * 1024)] = 1024 * 1024
    gateway_workers: Annotated[int, Field(ge=1, le=64)] = 1
    notifier_host: str = "0.0.0.0"
    notifier_port: Port = 8081
    notifier_token: SecretStr | None = None
    # Sandbox only: the dashboard's buttons that write system_posts (docs/dashboard.md).
    # Empty means unset, so manifests can list it switched off.
    dashboard_sandbox_url: HttpUrl | None = None
    updates_retention_seconds: PositiveSeconds = 24 * 3600
    refresher_published_limit: Annotated[int, Field(ge=1, le=1000)] = 100
    refresher_lease_seconds: PositiveSeconds = 10.0
    # Spacing of a key's refresh rounds (services/refresher/spacing.py): base + per event/s.
    refresher_round_spacing_seconds: Annotated[float, Field(ge=0)] = 0.3
    refresher_round_spacing_per_event_seconds: Annotated[float, Field(ge=0)] = 0.012
    refresher_round_spacing_max_seconds: Annotated[float, Field(ge=0)] = 2.0
    # Every cache is refreshed at least this often, even without a callback.
    reconcile_interval_seconds: Annotated[float, Field(ge=1)] = 900.0
    # A token VK rejected for good is tried again at most this often (until it changes).
    vk_token_probe_seconds: Annotated[float, Field(ge=1)] = 60.0
    refresher_prefetch: Annotated[int, Field(ge=2, le=1000)] = 64
    tracker_interval_seconds: PositiveSeconds = 50.0
    tracker_verify_timeout_seconds: PositiveSeconds = 300.0
    tracker_max_parallel_projects: Annotated[int, Field(ge=1, le=10_000)] = 128
    tracker_lease_seconds: Annotated[float, Field(ge=3)] = 10.0
    tracker_publish_attempts: Annotated[int, Field(ge=1, le=20)] = 5
    tracker_guid_max_resends: Annotated[int, Field(ge=0, le=20)] = 3
    tracker_guid_resend_window_seconds: Annotated[float, Field(ge=0)] = 600.0
    health_host: str = "0.0.0.0"
    health_port: Annotated[int, Field(ge=0, le=65535)] = 0
    log_level: LogLevel = LogLevel.INFO
    log_format: LogFormat = LogFormat.JSON

    @field_validator("dashboard_sandbox_url", mode="before")
    @classmethod
    def _empty_is_unset(cls, value: object) -> object:
        return None if isinstance(value, str) and not value.strip() else value


def describe_error(error: ValidationError) -> str:
    """One line naming the first offending environment variable."""
    first = error.errors()[0]
    variable = "_".join(str(part) for part in first["loc"]).upper() or "configuration"
    return f"invalid configuration: {variable}: {first['msg']}"


def load_settings() -> Settings:
    """Read settings from the environment or exit with one clear line (status 2)."""
    try:
        return Settings()
    except ValidationError as error:
        print(describe_error(error), file=sys.stderr)
        raise SystemExit(2) from None
