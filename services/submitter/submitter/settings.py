"""The submitter's settings: environment variables with the SUBMITTER_ prefix (e.g. SUBMITTER_RPC_URL)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import SettingsConfigDict

from opml.agents.settings import AgentSettings


class SubmitterSettings(AgentSettings):
    model_config = SettingsConfigDict(env_prefix="SUBMITTER_", extra="ignore")

    port: int = 8003
    database_url: str = "var/submitter.db"
    dev_account: int = Field(1, description="On a dev chain without a private key: which dev account plays")
    requester_key: SecretStr | None = None  # sends POST /inference-requests on-chain; dev account 5 by default
    requester_dev_account: int = 5
    default_fee: int = 10**15  # wei
    # The least step limit a request without one gets (it gets more when its model's run needs more).
    default_step_limit: int = 100_000_000
    min_fee: int = 0  # policy: requests paying less are not served
    # A language model's requests: max_new_tokens when none is given, and the most a request may ask for (a
    # generation's claim is computed natively: about 5 s for 16 + 32 tokens here, growing with both).
    llm_default_new_tokens: int = Field(64, ge=1)
    llm_max_new_tokens: int = Field(64, ge=1)
    # Policy: requests allowing more steps are not served. The vm-worker's own cap (2^34, about a minute of
    # VM time): all-MiniLM-L6-v2 on 16 tokens is 1.63e10 steps.
    max_step_limit: int = 1 << 34
    # Deliberate faults, for demos and tests only.
    fault_lie: Literal["none", "output", "states", "answer"] = "none"
    fault_lie_from_step: int = 1
    fault_silent_after_rounds: int | None = None
