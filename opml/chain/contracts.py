"""Contract artifacts from forge's build output, and deploying them."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from web3 import Web3
from web3.contract import Contract

from .. import resources
from .toolchain import ToolchainError, build_contracts


@dataclass(frozen=True)
class Artifact:
    name: str
    abi: list
    bytecode: str

    @classmethod
    def load(cls, name: str, source: str | None = None, build: bool = True) -> Artifact:
        """contracts/out/<source>/<name>.json, building the contracts first if it is missing."""
        path = resources.artifacts_dir() / (source or f"{name}.sol") / f"{name}.json"
        if not path.exists() and build:
            build_contracts()
        try:
            data = json.loads(Path(path).read_text())
        except FileNotFoundError:
            raise ToolchainError(f"no build output for {name} at {path}: run `forge build` in contracts/") from None
        return cls(name=name, abi=data["abi"], bytecode=data["bytecode"]["object"])


def send(w3: Web3, call, sender: str | None = None, value: int = 0):
    """Send a contract call or constructor from an unlocked dev account and return its receipt; a revert
    raises. For tests and benchmarks on a dev chain; services send through a TransactionManager.

    The sender defaults to w3.eth.default_account, else the node's first unlocked account.
    """
    sender = sender or w3.eth.default_account or w3.eth.accounts[0]
    receipt = w3.eth.wait_for_transaction_receipt(call.transact({"from": sender, "value": value}))
    if receipt.status != 1:
        raise ToolchainError(f"transaction {receipt.transactionHash.hex()} reverted")
    return receipt


def deploy(w3: Web3, artifact: Artifact, *args, sender: str | None = None) -> Contract:
    """Deploy and wait for the receipt."""
    factory = w3.eth.contract(abi=artifact.abi, bytecode=artifact.bytecode)
    receipt = send(w3, factory.constructor(*args), sender)
    return w3.eth.contract(address=receipt.contractAddress, abi=artifact.abi)
