"""`opml deploy`: put the contracts on a chain and write their addresses for the services."""

from __future__ import annotations

import os
from pathlib import Path

import typer
from web3 import Web3
from web3.middleware import SignAndSendRawMiddlewareBuilder

from ..chain.registry import Parameters, deploy_all
from ..chain.toolchain import ToolchainError
from .common import UserError, console, print_json, user_errors

DEFAULTS = Parameters()


def connect(rpc: str) -> Web3:
    """A web3 connection; with $OPML_PRIVATE_KEY its account signs, else the node's first account does."""
    w3 = Web3(Web3.HTTPProvider(rpc))
    if not w3.is_connected():
        raise UserError(f"no Ethereum node answers at {rpc}")
    key = os.environ.get("OPML_PRIVATE_KEY")
    if key:
        account = w3.eth.account.from_key(key)
        w3.middleware_onion.inject(SignAndSendRawMiddlewareBuilder.build(account), layer=0)
        w3.eth.default_account = account.address
    elif w3.eth.accounts:
        w3.eth.default_account = w3.eth.accounts[0]
    else:
        raise UserError("the node has no unlocked account: set OPML_PRIVATE_KEY")
    return w3


def deploy(
    rpc: str = typer.Option("http://127.0.0.1:8545", help="JSON-RPC URL of the chain."),
    out: Path = typer.Option(Path("deployment.json"), "--out", "-o", help="Where to write the addresses."),
    arity: int = typer.Option(DEFAULTS.arity, min=2, help="k: segments per dissection round."),
    claim_bond: int = typer.Option(DEFAULTS.claim_bond, help="Claim bond in wei."),
    challenge_bond: int = typer.Option(DEFAULTS.challenge_bond, help="Challenge bond in wei."),
    challenge_window: int = typer.Option(DEFAULTS.challenge_window, help="Seconds a claim may be challenged."),
    clock_budget: int = typer.Option(DEFAULTS.clock_budget, help="Seconds each side of a game may spend."),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Deploy MIPS and the inference registry, and write their addresses to a JSON file."""
    with user_errors(ToolchainError):
        w3 = connect(rpc)
        parameters = Parameters(arity, claim_bond, challenge_bond, challenge_window, clock_budget)
        try:
            deployment, _ = deploy_all(w3, parameters)
        except ValueError as error:  # the node refused a transaction
            raise UserError(f"deployment failed: {error}") from None
        deployment.write(out)
    if as_json:
        print_json({"mips": deployment.mips, "registry": deployment.registry, "chain_id": deployment.chain_id})
    else:
        console.print(f"MIPS      {deployment.mips}\nregistry  {deployment.registry}\nwritten to {out}")
