"""A Hardhat node as a subprocess (npm `hardhat`, pinned): the seed's chain, for checking that the agents
use only standard JSON-RPC. Same chain id (31337) and dev accounts as anvil (chain/hardhat/hardhat.config.js)."""

from __future__ import annotations

from .. import resources
from .anvil import LocalNode
from .toolchain import tool


class Hardhat(LocalNode):
    name = "hardhat"

    def command(self) -> list[str]:
        return [tool("hardhat"), "node", "--port", str(self.port), "--hostname", "127.0.0.1"]

    def cwd(self) -> str:
        return str(resources.root() / "chain" / "hardhat")
