"""A local anvil node as a subprocess: for tests, benchmarks and the embedded default."""

from __future__ import annotations

import socket
import subprocess
import time

from eth_account import Account
from web3 import Web3

from .toolchain import ToolchainError, tool

DEFAULT_GAS_LIMIT = 1_000_000_000  # room for batched eth_calls in tests and benchmarks
DEV_MNEMONIC = "test test test test test test test test test test test junk"  # anvil's and Hardhat's default
DEV_ACCOUNTS = 10


def dev_key(index: int) -> str:
    """The private key of dev account `index` (funded with 10,000 ETH by anvil and Hardhat). For local
    chains only: everybody knows these keys."""
    Account.enable_unaudited_hdwallet_features()
    return Account.from_mnemonic(DEV_MNEMONIC, account_path=f"m/44'/60'/0'/0/{index}").key.to_0x_hex()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Anvil:
    """Start with `with Anvil() as node:`; `node.url` is its RPC endpoint."""

    def __init__(self, port: int | None = None, gas_limit: int = DEFAULT_GAS_LIMIT, block_time: int | None = None):
        self.port = port or free_port()
        self.gas_limit = gas_limit
        self.block_time = block_time
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 30.0) -> Anvil:
        command = [tool("anvil"), "--port", str(self.port), "--gas-limit", str(self.gas_limit), "--silent"]
        if self.block_time:
            command += ["--block-time", str(self.block_time)]
        self.process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + timeout
        w3 = Web3(Web3.HTTPProvider(self.url))
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise ToolchainError(f"anvil exited: {self.process.stderr.read().decode(errors='replace')}")
            try:
                if w3.is_connected():
                    return self
            except Exception:  # not listening yet
                pass
            time.sleep(0.05)
        self.stop()
        raise ToolchainError(f"anvil did not answer on {self.url} within {timeout} s")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
        self.process = None

    def __enter__(self) -> Anvil:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def advance_time(w3: Web3, seconds: int) -> None:
    """Move a dev chain's clock forward and mine a block, so calls and gas estimates see the new time."""
    w3.provider.make_request("evm_increaseTime", [seconds])
    w3.provider.make_request("evm_mine", [])
