"""`opml up`: the whole stack on this machine (anvil, the contracts, the four services as processes)."""

from __future__ import annotations

import shutil
import signal
import threading
from pathlib import Path

import typer

from .common import console, user_errors

LIAR_ENV = {"SUBMITTER_DEV_ACCOUNT": "3", "SUBMITTER_FAULT_LIE": "states"}


def up(
    data_dir: Path = typer.Option(Path("var"), help="Where the deployment, databases and stores go."),
    keep: bool = typer.Option(False, help="Keep what an earlier run left in data-dir (default: start clean)."),
    quiet: bool = typer.Option(False, help="Do not print the services' logs."),
    free_ports: bool = typer.Option(False, help="Pick free ports instead of 8545 and 8001-8004."),
    minilm: bool = typer.Option(
        False,
        help="Deploy for all-MiniLM-L6-v2: requests of up to 2^34 steps, with a challenge window (about 2.5 "
        "min) and clocks sized for such runs (docs/models.md).",
    ),
    llm: bool = typer.Option(
        False,
        help="Deploy for a language model's generations (SmolLM2-135M-Instruct, docs/models.md): node runs of up to "
        "2^33 steps (prompts of up to 83 tokens), a 62 s challenge window and 258 s clocks (docs/llm-graph.md).",
    ),
    liar: bool = typer.Option(
        False,
        help="Also run a lying submitter (dev account 3, a demo's fault: its states are made up from --lie-from-step "
        "of every request it serves): the challenger disputes its claims and takes its bond.",
    ),
    lie_from_step: int = typer.Option(977_000, help="With --liar: the first step whose state the liar makes up."),
) -> None:
    """Start anvil, deploy, start every service, wait for them to be ready, and run until Ctrl-C; a service that
    exits is started again (after 1 s, doubling up to 30 s while it keeps crashing)."""
    from ..protocol.parameters import MINILM_STEP_LIMIT, Parameters, sized_for, sized_for_llm
    from ..stack import Stack, StackConfig

    if data_dir.exists() and not keep:
        shutil.rmtree(data_dir)
    parameters = sized_for(MINILM_STEP_LIMIT) if minilm else Parameters()
    if llm:  # both: the larger of each
        parameters = sized_for_llm(max(parameters.max_step_limit, sized_for_llm().max_step_limit), parameters)
    if free_ports:
        config = StackConfig.ephemeral(data_dir, echo=not quiet, parameters=parameters)
    else:
        config = StackConfig(data_dir, echo=not quiet, parameters=parameters)
    stack = Stack(config)
    stopping = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stopping.set())
    with user_errors():
        try:
            stack.start()
            if liar:
                stack.start_service(
                    "liar", "submitter", LIAR_ENV | {"SUBMITTER_FAULT_LIE_FROM_STEP": str(lie_from_step)}
                )
            stack.supervise(lambda name, code: console.print(f"[yellow]{name} exited ({code}): started again[/yellow]"))
            console.print(f"[green]ready[/green]: chain {stack.rpc_url}, deployment {stack.deployment_path}")
            if minilm or llm:
                console.print(f"  requests of up to {parameters.max_step_limit:,} steps, a {parameters.challenge_window} s "
                              f"challenge window, {parameters.clock_budget} s clocks")  # fmt: skip
            for name, service in stack.services.items():
                console.print(f"  {name:<11} {service.url}/docs")
            console.print("Ctrl-C stops everything.")
            stopping.wait()
        finally:
            stack.stop()
