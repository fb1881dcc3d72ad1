"""Where the pinned chain tools live (npm, package.json) and how the contracts are built."""

from __future__ import annotations

import os
import shutil
import subprocess

from .. import resources
from ..errors import Unavailable


class ToolchainError(Unavailable):
    pass


def tool(name: str) -> str:
    """Path of anvil, forge or cast: $OPML_<NAME>, else node_modules/.bin, else PATH."""
    configured = os.environ.get(f"OPML_{name.upper()}")
    if configured:
        return configured
    try:
        local = resources.node_bin_dir() / name
    except Unavailable:
        local = None
    if local is not None and local.exists():
        return str(local)
    found = shutil.which(name)
    if found:
        return found
    raise ToolchainError(
        f"{name} not found: run `npm ci` in the repository (or `make install`), or set OPML_{name.upper()}"
    )


def build_contracts() -> None:
    """Compile contracts/ with forge (offline, through the solc-js wrapper)."""
    result = subprocess.run(
        [tool("forge"), "build", "--offline"], cwd=resources.contracts_dir(), capture_output=True, text=True
    )
    if result.returncode != 0:
        raise ToolchainError(f"forge build failed:\n{result.stdout}\n{result.stderr}")
