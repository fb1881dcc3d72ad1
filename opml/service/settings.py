"""The settings every service has; each service's own class adds its fields and its env prefix.

Configuration is by environment variables only (pydantic-settings), the same names in the
embedded launcher and in docker compose: e.g. CONVERTER_PORT, VM_WORKER_CONVERTER_URL.
"""

from __future__ import annotations

from typing import Literal

from pydantic_settings import BaseSettings, SettingsConfigDict


class ServiceSettings(BaseSettings):
    model_config = SettingsConfigDict(extra="ignore")

    host: str = "127.0.0.1"
    port: int = 8000
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    log_format: Literal["json", "console"] = "json"
