"""A Hardhat node as a subprocess (npm `hardhat`, pinned): the seed's chain, for checking that the agents
use only standard JSON-RPC. Same chain id (31337) and dev accounts as anvil."""

from __future__ import annotations

import subprocess
import time

from web3 import Web3

from .. import resources
from .anvil import free_port
from .toolchain import ToolchainError


class Hardhat:
    def __init__(self, port: int | None = None):
        self.port = port or free_port()
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 60.0) -> Hardhat:
        binary = resources.node_bin_dir() / "hardhat"
        if not binary.exists():
            raise ToolchainError("hardhat not found: run `npm ci` in the repository (or `make install`)")
        self.process = subprocess.Popen(
            [str(binary), "node", "--port", str(self.port), "--hostname", "127.0.0.1"],
            cwd=resources.root() / "chain" / "hardhat",
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            start_new_session=True,
        )
        deadline = time.monotonic() + timeout
        w3 = Web3(Web3.HTTPProvider(self.url))
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise ToolchainError(f"hardhat exited: {self.process.stderr.read().decode(errors='replace')}")
            try:
                if w3.is_connected():
                    return self
            except Exception:  # not listening yet
                pass
            time.sleep(0.1)
        self.stop()
        raise ToolchainError(f"hardhat did not answer on {self.url} within {timeout} s")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
        self.process = None
