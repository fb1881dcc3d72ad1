"""The challenger's settings: environment variables with the CHALLENGER_ prefix (e.g. CHALLENGER_RPC_URL)."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from opml.agents.settings import AgentSettings


class ChallengerSettings(AgentSettings):
    model_config = SettingsConfigDict(env_prefix="CHALLENGER_", extra="ignore")

    port: int = 8004
    database_url: str = "var/challenger.db"
    dev_account: int = Field(2, description="On a dev chain without a private key: which dev account plays")
    # Deliberate faults, for demos and tests only.
    fault_dispute_honest: bool = False
    fault_silent_after_rounds: int | None = None
