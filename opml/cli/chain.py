"""`opml deploy`: put the contracts on a chain, register the default program and model, write the addresses."""

from __future__ import annotations

import os
from pathlib import Path

import typer

from ..protocol.parameters import Parameters
from .common import console, print_json, user_errors

DEFAULTS = Parameters()
DEV_CHAIN_IDS = (31337,)  # anvil and Hardhat


def transaction_manager(rpc: str, private_key: str | None):
    """A connection and a transaction manager for `private_key`, or for the first dev account on a dev chain."""
    from ..chain.anvil import dev_key
    from ..chain.client import TransactionManager, connect, with_retries
    from ..errors import BadInput

    w3 = connect(rpc)
    chain_id = with_retries(lambda: w3.eth.chain_id, what=f"connecting to {rpc}", attempts=2)
    if not private_key:
        if chain_id not in DEV_CHAIN_IDS:
            raise BadInput(f"chain {chain_id} is not a dev chain: set OPML_PRIVATE_KEY to a funded key")
        private_key = dev_key(0)
    return w3, TransactionManager(w3, private_key)


def deploy(
    rpc: str = typer.Option("http://127.0.0.1:8545", envvar="OPML_RPC_URL", help="JSON-RPC URL of the chain."),
    out: Path = typer.Option(Path("deployment.json"), "--out", "-o", help="Where to write the addresses."),
    private_key: str = typer.Option(
        None, envvar="OPML_PRIVATE_KEY", help="Deployer key (default on a dev chain: dev account 0)."
    ),
    arity: int = typer.Option(DEFAULTS.arity, help="k: segments per dissection round."),
    claim_bond: int = typer.Option(DEFAULTS.claim_bond, help="Claim bond in wei."),
    challenge_bond: int = typer.Option(DEFAULTS.challenge_bond, help="Challenge bond in wei."),
    burn_share_bps: int = typer.Option(
        DEFAULTS.burn_share_bps,
        help="Share of a lost challenge bond burned, and the least of a rejected claim's bond burned, in bps.",
    ),
    challenge_window: int = typer.Option(DEFAULTS.challenge_window, help="Seconds a claim may be challenged."),
    clock_budget: int = typer.Option(DEFAULTS.clock_budget, help="Seconds each side of a game may spend."),
    max_step_limit: int = typer.Option(DEFAULTS.max_step_limit, help="Largest step limit a request may ask for."),
    request_timeout: int = typer.Option(
        DEFAULTS.request_timeout, help="Seconds before an unserved request may be cancelled."
    ),
    callback_gas_limit: int = typer.Option(DEFAULTS.callback_gas_limit, help="Gas a consumer's callback gets."),
    move_refund: int = typer.Option(
        DEFAULTS.move_refund, help="Wei refunded per move to a challenger who proves a claim wrong."
    ),
    model_uri: str = typer.Option("models/seed-mnist/model.bin", help="Where the seed model's file can be fetched."),
    defaults: bool = typer.Option(True, help="Register the inference program and the seed MNIST model."),
    llm: bool = typer.Option(
        False,
        help="Size for a language model's generations (as `opml up --llm`): a max step limit of at least 2^33 and "
        "the window and clocks grown for it (docs/llm-graph.md); e.g. OPML_DEPLOY_OPTIONS=--llm in docker compose.",
    ),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Deploy MIPS and the inference registry, register the defaults, and write a deployment JSON file."""
    from ..chain.deploy import deploy_contracts, deploy_with_defaults

    parameters = Parameters(
        arity=arity,
        claim_bond=claim_bond,
        challenge_bond=challenge_bond,
        burn_share_bps=burn_share_bps,
        challenge_window=challenge_window,
        clock_budget=clock_budget,
        max_step_limit=max_step_limit,
        request_timeout=request_timeout,
        callback_gas_limit=callback_gas_limit,
        move_refund=move_refund,
    )
    if llm:
        from ..protocol.parameters import LLM_STEP_LIMIT, sized_for_llm

        parameters = sized_for_llm(max(max_step_limit, LLM_STEP_LIMIT), parameters)
    with user_errors():
        w3, tx = transaction_manager(rpc, private_key or os.environ.get("OPML_PRIVATE_KEY"))
        if defaults:
            deployment = deploy_with_defaults(w3, tx, parameters, model_uri)
        else:
            deployment = deploy_contracts(w3, tx, parameters)
        deployment.write(out)
    if as_json:
        print_json({"mips": deployment.mips, "registry": deployment.registry, "chain_id": deployment.chain_id,
                    "program_id": deployment.program_id, "model_id": deployment.model_id})  # fmt: skip
    else:
        console.print(f"MIPS      {deployment.mips}\nregistry  {deployment.registry}\nwritten to {out}")
