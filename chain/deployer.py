"""The deployer container's entry point: `opml deploy` once per chain, then exit.

    python chain/deployer.py --out /deployment/deployment.json [any other `opml deploy` option]

More options can come from $OPML_DEPLOY_OPTIONS (e.g. "--challenge-window 60 --clock-budget 300"),
which is how docker compose passes them.

If the deployment file named by --out is already there and describes a deployment that is live on
the chain at $OPML_RPC_URL (same chain id, the registry's code at its address), it is kept and
nothing is sent: `docker compose up` after `docker compose stop` (the chain's state is kept in a
volume) or a restarted deployer changes nothing. Otherwise the contracts are deployed, the
inference program and the seed model registered, and the file written, by `opml deploy` itself.
"""

from __future__ import annotations

import os
import shlex
import sys
from pathlib import Path

DEFAULT_RPC = "http://127.0.0.1:8545"


def out_path(arguments: list[str]) -> Path:
    for index, argument in enumerate(arguments):
        if argument in ("--out", "-o") and index + 1 < len(arguments):
            return Path(arguments[index + 1])
        if argument.startswith("--out="):
            return Path(argument.split("=", 1)[1])
    return Path("deployment.json")


def live(path: Path, rpc_url: str) -> bool:
    """Whether the deployment in `path` is on the chain at `rpc_url`."""
    from opml.chain.client import connect, with_retries
    from opml.chain.registry import Deployment
    from opml.errors import OpmlError

    if not path.exists():
        return False
    try:
        deployment = Deployment.read(path)
    except OpmlError as error:
        print(f"deployer: {error}; deploying again", flush=True)
        return False
    w3 = connect(rpc_url)
    chain_id = with_retries(lambda: w3.eth.chain_id, what=f"connecting to {rpc_url}", attempts=10)
    if chain_id != deployment.chain_id:
        return False
    return len(with_retries(lambda: w3.eth.get_code(deployment.registry), what="reading the registry's code")) > 0


def main() -> None:
    arguments = sys.argv[1:] + shlex.split(os.environ.get("OPML_DEPLOY_OPTIONS", ""))
    path = out_path(arguments)
    rpc_url = os.environ.get("OPML_RPC_URL") or DEFAULT_RPC
    if live(path, rpc_url):
        print(f"deployer: {path} is live on {rpc_url}; nothing to do", flush=True)
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    from opml.cli import main as opml

    sys.argv = ["opml", "deploy", *arguments]
    opml()


if __name__ == "__main__":
    main()
