"""The settings both agent services share (the submitter and the challenger add theirs and an env prefix)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import SecretStr

from ..service.settings import ServiceSettings


class AgentSettings(ServiceSettings):
    rpc_url: str = "http://127.0.0.1:8545"
    deployment_path: Path = Path("var/deployment.json")
    private_key: SecretStr | None = None  # on a dev chain (31337) a dev account's key by default
    database_url: str = "var/agent.db"
    vm_worker_url: str = "http://127.0.0.1:8002"  # empty: compute traces in-process
    converter_url: str = "http://127.0.0.1:8001"
    poll_interval: float = 0.25
    confirmations: int = 0
    max_log_range: int = 2_000
    workers: int = 4
    withdraw_interval: float = 10.0
    # At start: refuse to play when the deployment's clock cannot hold every move of a game at the move time
    # measured here ("refuse"), or only say so ("warn"), or do not measure ("off"). opml.agents.deadlines.
    deadline_check: Literal["refuse", "warn", "off"] = "refuse"
