"""Where the pinned chain tools live (npm, package.json) and how the contracts are built."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
CONTRACTS_DIR = REPO / "contracts"
ARTIFACTS_DIR = CONTRACTS_DIR / "out"
NODE_BIN = REPO / "node_modules" / ".bin"


class ToolchainError(RuntimeError):
    pass


def tool(name: str) -> str:
    """Path of anvil, forge or cast: $OPML_<NAME>, else node_modules/.bin, else PATH."""
    configured = os.environ.get(f"OPML_{name.upper()}")
    if configured:
        return configured
    local = NODE_BIN / name
    if local.exists():
        return str(local)
    found = shutil.which(name)
    if found:
        return found
    raise ToolchainError(f"{name} not found: run `npm ci` in {REPO} (or `make install`)")


def build_contracts() -> None:
    """Compile contracts/ with forge (offline, through the solc-js wrapper)."""
    result = subprocess.run([tool("forge"), "build", "--offline"], cwd=CONTRACTS_DIR, capture_output=True, text=True)
    if result.returncode != 0:
        raise ToolchainError(f"forge build failed:\n{result.stdout}\n{result.stderr}")
