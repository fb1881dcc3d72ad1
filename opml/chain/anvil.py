"""Local dev chains as subprocesses (anvil here, Hardhat in hardhat.py): for tests, benchmarks and the
embedded default; and the dev accounts both fund."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time

from eth_account import Account
from web3 import Web3

from ..processes import guarded, track
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


class LocalNode:
    """A dev chain node as a subprocess: `with Anvil() as node:`; `node.url` is its RPC endpoint."""

    name = "node"

    def __init__(self, port: int | None = None):
        self.port = port or free_port()
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def command(self) -> list[str]:
        raise NotImplementedError

    def cwd(self) -> str | None:
        return None

    def start(self, timeout: float = 60.0) -> LocalNode:
        # It ends with this process, however that ends (opml/processes.py); SIGTERM, which npm's launcher
        # passes on to the node it starts.
        command = guarded(self.command(), on_parent_death=signal.SIGTERM)
        self.process = track(
            subprocess.Popen(
                command, cwd=self.cwd(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True
            )
        )
        deadline = time.monotonic() + timeout
        w3 = Web3(Web3.HTTPProvider(self.url))
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise ToolchainError(f"{self.name} exited: {self.process.stderr.read().decode(errors='replace')}")
            try:
                if w3.is_connected():
                    return self
            except Exception:  # not listening yet
                pass
            time.sleep(0.05)
        self.stop()
        raise ToolchainError(f"{self.name} did not answer on {self.url} within {timeout} s")

    def stop(self) -> None:
        """Stop the node and whatever it started (npm's launcher runs the real binary as a child)."""
        if self.process is not None and self.process.poll() is None:
            try:
                os.killpg(self.process.pid, signal.SIGTERM)
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=10)
            except ProcessLookupError:
                pass
        self.process = None

    def __enter__(self) -> LocalNode:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


class Anvil(LocalNode):
    name = "anvil"

    def __init__(self, port: int | None = None, gas_limit: int = DEFAULT_GAS_LIMIT, block_time: int | None = None):
        super().__init__(port)
        self.gas_limit = gas_limit
        self.block_time = block_time

    def command(self) -> list[str]:
        command = [tool("anvil"), "--port", str(self.port), "--gas-limit", str(self.gas_limit), "--silent"]
        return command + (["--block-time", str(self.block_time)] if self.block_time else [])


def advance_time(w3: Web3, seconds: int) -> None:
    """Move a dev chain's clock forward and mine a block, so calls and gas estimates see the new time."""
    w3.provider.make_request("evm_increaseTime", [seconds])
    w3.provider.make_request("evm_mine", [])
