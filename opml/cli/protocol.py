"""The protocol by hand, one transaction per command: the seed tutorial's flow over the same library
the agents use (docs/tutorial.md walks through it).

    opml request  --input input_7.bin                   # ask; prints the request id
    opml claim    --request 1 [--lie-from N]            # commit, then reveal a claim (honest, or a lie)
    opml challenge --claim 1                            # dispute a claim; prints the game id
    opml respond  --game 1 --as challenger [--all]      # the next move of one side (bisect or select)
    opml resolve  --game 1                              # prove the last step on-chain
    opml finalize --claim 1                             # make a claim's result final after its window
    opml status   --request 1 | --game 1                # where things stand

Traces are computed here, in-process, from the registered program and model (the seed model's
registered uri is a path in this repository), checked against the on-chain start state.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import typer

from .common import console, hex0x, print_json, read_optional, user_errors

RpcOption = typer.Option("http://127.0.0.1:8545", "--rpc", envvar="OPML_RPC_URL", help="JSON-RPC URL of the chain.")
DeploymentOption = typer.Option(
    Path("deployment.json"), "--deployment", envvar="OPML_DEPLOYMENT", help="The file `opml deploy` wrote."
)
AccountOption = typer.Option(
    None, "--account", help="Dev account index to sign with on a dev chain (else $OPML_PRIVATE_KEY)."
)
JsonOption = typer.Option(False, "--json", help="Print JSON.")


class Session:
    """The chain, the registry and a signer, from the common options."""

    def __init__(self, rpc: str, deployment: Path, account: int | None):
        from ..chain.anvil import dev_key
        from ..chain.client import TransactionManager, connect
        from ..chain.registry import Deployment, Registry
        from ..errors import BadInput

        self.deployment = Deployment.read(deployment)
        self.w3 = connect(rpc)
        self.registry = Registry(self.w3, self.deployment.registry)
        key = os.environ.get("OPML_PRIVATE_KEY") if account is None else dev_key(account)
        if not key:
            raise BadInput("give --account N on a dev chain, or set OPML_PRIVATE_KEY")
        self.tx = TransactionManager(self.w3, key)

    def request_view(self, request_id: int):
        from ..agents.traces import request_view

        events = self.registry.contract.events.InferenceRequested.get_logs(
            from_block=self.deployment.start_block, argument_filters={"requestId": request_id}
        )
        if not events:
            from ..errors import NotFound

            raise NotFound(f"no request {request_id} on this registry")
        return request_view(self.registry, _json_args(events[0]["args"]))

    def solver(self, request_id: int, lie_from: int | None = None):
        """The honest solver of a request, or a liar's (states made up from `lie_from` on)."""
        from ..agents.traces import FetchedModels, LocalTraces
        from ..game.faults import LyingTrace, lying_output
        from ..game.solver import Solver
        from ..game.trace import forged_claim

        view = self.request_view(request_id)
        trace = LocalTraces(FetchedModels(None)).trace_for(view)
        arity = self.registry.parameters.arity
        if lie_from is None:
            return Solver(trace, arity)
        claim = forged_claim(trace.execution, lying_output(trace.execution, view.step_limit))
        return Solver(LyingTrace(trace, claim, min(lie_from, claim.steps)), arity)

    def claim_request(self, claim_id: int) -> int:
        return self.registry.claim(claim_id).request_id


def _json_args(args) -> dict:
    return {
        key: ("0x" + bytes(value).hex() if isinstance(value, bytes | bytearray) else value)
        for key, value in args.items()
    }


def request(
    input: Path = typer.Option(None, "--input", "-i", exists=True, dir_okay=False,
                               help="The input file: the bytes the program reads."),
    input_f32: Path = typer.Option(None, "--input-f32", exists=True, dir_okay=False,
                                   help="For a float32 model: a JSON file holding the input as a list of numbers "
                                        "(sent as big-endian float32)."),
    model: str = typer.Option(None, help="On-chain model id (default: the deployment's seed model)."),
    program: int = typer.Option(None, help="On-chain program id (default: the inference program)."),
    fee: int = typer.Option(10**15, min=0, help="Fee in wei."),
    step_limit: int = typer.Option(100_000_000, min=1, help="Steps the run may take."),
    allow_step_limit_below_run: bool = typer.Option(
        False, help="Send a step limit below the least the model's run takes (its claim will have no result)."),
    rpc: str = RpcOption,
    deployment: Path = DeploymentOption,
    account: int = AccountOption,
    as_json: bool = JsonOption,
) -> None:  # fmt: skip
    """Ask for an inference on-chain (the seed's golden image, now with the input in the request).

    For the inference program, the model's file is fetched (from its registered uri) to check the input
    and that the step limit can cover its run, as POST /inference-requests does; a model whose file cannot
    be had here is sent unchecked, with a note."""
    from ..errors import BadInput
    from ..requests import check_input, check_step_limit_covers_run, f32_bytes, input_from_f32, send_request

    with user_errors():
        if (input is None) == (input_f32 is None):
            raise BadInput("give the input as --input (a file of bytes) or --input-f32 (a JSON list of numbers)")
        numbers = _read_numbers(input_f32) if input_f32 is not None else None
        session = Session(rpc, deployment, account)
        model_id = int(model) if model else session.deployment.model_id
        program_id = program or session.deployment.program_id
        graph = _model_graph(session, model_id) if program_id == session.deployment.program_id else None
        if numbers is not None:
            data = f32_bytes(numbers) if graph is None else input_from_f32(numbers, graph)
        else:
            data = read_optional(input)
        if graph is not None:
            check_input(data, graph)
            check_step_limit_covers_run(graph, step_limit, allow_step_limit_below_run)
        sent = send_request(session.registry, session.tx, program_id, model_id, data, fee, step_limit)
    _say(as_json, {"request_id": sent.request_id, "tx_hash": hex0x(sent.tx_hash), "gas_used": sent.gas_used},
         f"request {sent.request_id} ({sent.gas_used:,} gas)")  # fmt: skip


def _read_numbers(path: Path) -> list:
    from ..errors import BadInput

    try:
        numbers = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, ValueError) as error:
        raise BadInput(f"{path} is not a JSON file: {error}") from None
    if not isinstance(numbers, list) or not all(
        isinstance(value, int | float) and not isinstance(value, bool) for value in numbers
    ):
        raise BadInput(f"{path} must hold a JSON list of numbers")
    return numbers


def _model_graph(session: Session, model_id: int):
    """The registered model's graph, from its file at its uri (checked against its root); None, with a note,
    if the file cannot be had here."""
    from ..agents.traces import FetchedModels
    from ..errors import OpmlError
    from ..models.formats import parse_model

    registered = session.registry.model(model_id)
    try:
        return parse_model(FetchedModels(None).model_bytes(registered.root, registered.uri))
    except OpmlError as error:
        console.print(f"[yellow]note:[/yellow] the input and step limit are not checked: {error}")
        return None


def claim(
    request_id: int = typer.Option(..., "--request", help="The request to claim."),
    lie_from: int = typer.Option(None, help="Lie on purpose: states made up from this step (a demo of a liar)."),
    rpc: str = RpcOption,
    deployment: Path = DeploymentOption,
    account: int = AccountOption,
    as_json: bool = JsonOption,
) -> None:
    """Compute the request's run, commit to its final state, and reveal the claim with the bond."""
    with user_errors():
        session = Session(rpc, deployment, account)
        final = session.solver(request_id, lie_from).claim()
        registry, tx = session.registry, session.tx
        tx.send(registry.commit_claim(request_id, final, tx.address))
        sent = tx.send(registry.submit_claim(request_id, final), value=registry.parameters.claim_bond)
        claim_id = registry.count("claim")
    _say(as_json, {"claim_id": claim_id, "final_state_hash": hex0x(final.hash), "steps": final.steps,
                   "gas_used": sent.gas_used},
         f"claim {claim_id}: {final.steps:,} steps, final state {hex0x(final.hash)[:18]}..")  # fmt: skip


def challenge(
    claim_id: int = typer.Option(..., "--claim", help="The claim to dispute."),
    rpc: str = RpcOption,
    deployment: Path = DeploymentOption,
    account: int = AccountOption,
    as_json: bool = JsonOption,
) -> None:
    """Dispute a claim with the challenge bond (the seed's challenge.js); prints the game id."""
    with user_errors():
        session = Session(rpc, deployment, account)
        registry = session.registry
        honest = session.solver(session.claim_request(claim_id)).agrees_with(registry.claim(claim_id).final_state_hash)
        if honest:
            console.print("[yellow]note:[/yellow] this claim agrees with the run computed here")
        session.tx.send(registry.challenge(claim_id), value=registry.parameters.challenge_bond)
        game_id = registry.game_of(claim_id, session.tx.address)
    _say(as_json, {"game_id": game_id}, f"game {game_id}")


def respond(
    game_id: int = typer.Option(..., "--game", help="The game to move in."),
    side: str = typer.Option(..., "--as", help="defender or challenger"),
    lie_from: int = typer.Option(None, help="As a lying defender: states made up from this step."),
    all_moves: bool = typer.Option(False, "--all", help="Keep moving until the game needs the other side."),
    rpc: str = RpcOption,
    deployment: Path = DeploymentOption,
    account: int = AccountOption,
) -> None:
    """Make this side's next move: bisect (defender) or select (challenger), as the seed's respond.js."""
    from ..agents.player import Player, bisections_from_logs
    from ..agents.responder import Responder, move_name
    from ..chain.events import EventReader
    from ..errors import BadInput
    from ..protocol.types import Turn

    if side not in ("defender", "challenger"):
        raise typer.BadParameter("--as is defender or challenger")
    with user_errors():
        session = Session(rpc, deployment, account)
        registry = session.registry
        game = registry.game(game_id)
        turn = Turn.DEFENDER if side == "defender" else Turn.CHALLENGER
        solver = session.solver(session.claim_request(game.claim_id), lie_from)
        bisections = bisections_from_logs(EventReader(session.w3, registry.contract), session.deployment.start_block)
        player = Player(registry, Responder(registry, session.tx), turn, solver, bisections)
        moved = False
        while True:
            outcome = player.act(game_id)
            if outcome is None:
                break
            moved = True
            game = registry.game(game_id)
            console.print(f"{move_name(outcome.move)}: game {game_id} is now [{game.lo:,}, {game.hi:,}], "
                          f"round {game.rounds}")  # fmt: skip
            if not all_moves:
                break
        if not moved:
            raise BadInput(f"nothing for the {side} to do in game {game_id} now (see `opml status --game`)")


def resolve(
    game_id: int = typer.Option(..., "--game", help="A game narrowed to one step."),
    rpc: str = RpcOption,
    deployment: Path = DeploymentOption,
    account: int = AccountOption,
) -> None:
    """Prove the last step on-chain: MIPS.step decides who was right (the seed's assert.js)."""
    from ..errors import Conflict

    with user_errors():
        session = Session(rpc, deployment, account)
        registry = session.registry
        game = registry.game(game_id)
        if game.width != 1:
            raise Conflict(f"game {game_id} is {game.width:,} steps wide; it needs to be one step wide")
        witness = session.solver(session.claim_request(game.claim_id)).step_witness(game.lo)
        sent = session.tx.send(registry.resolve(game_id, witness))
        console.print(f"game {game_id}: {registry.game(game_id).status.name.lower()} ({sent.gas_used:,} gas)")


def finalize(
    claim_id: int = typer.Option(..., "--claim", help="The claim whose result to make final."),
    rpc: str = RpcOption,
    deployment: Path = DeploymentOption,
    account: int = AccountOption,
) -> None:
    """Make a claim's result final once its window has passed with no open game."""
    with user_errors():
        session = Session(rpc, deployment, account)
        registry = session.registry
        request_id = session.claim_request(claim_id)
        final = session.solver(request_id).claim()
        if not final.hash == registry.claim(claim_id).final_state_hash:
            console.print("[yellow]note:[/yellow] this claim is not the run computed here; finalizing it anyway")
        sent = session.tx.send(registry.finalize(claim_id, final))
        console.print(f"request {request_id} is final ({sent.gas_used:,} gas)")


def status(
    request_id: int = typer.Option(None, "--request"),
    game_id: int = typer.Option(None, "--game"),
    rpc: str = RpcOption,
    deployment: Path = DeploymentOption,
    as_json: bool = JsonOption,
) -> None:
    """Where a request or a game stands, as the chain says."""
    from ..chain.client import connect
    from ..chain.registry import Deployment, Registry
    from ..errors import BadInput
    from ..protocol.types import Turn

    with user_errors():
        if (request_id is None) == (game_id is None):
            raise BadInput("give --request or --game")
        registry = Registry(connect(rpc), Deployment.read(deployment).registry)
        if request_id is not None:
            request = registry.request(request_id)
            result = registry.result(request_id)
            data = {"request": request_id, "status": request.status.name.lower(), "live_claims": request.live_claims,
                    "final_claim": request.final_claim or None, "fee": request.fee, "step_limit": request.step_limit,
                    "result": None if result is None else {"kind": result.kind.label, "exited": result.exited,
                                                           "exit_code": result.exit_code,
                                                           "output_hash": hex0x(result.output_hash)}}  # fmt: skip
        else:
            game = registry.game(game_id)
            now = registry.now()
            data = {"game": game_id, "status": game.status.name.lower(), "claim": game.claim_id, "lo": game.lo,
                    "hi": game.hi, "rounds": game.rounds, "turn": "defender" if game.turn == Turn.DEFENDER else "challenger",
                    "defender_clock_left": game.clock_left(Turn.DEFENDER, now),
                    "challenger_clock_left": game.clock_left(Turn.CHALLENGER, now)}  # fmt: skip
    if as_json:
        print_json(data)
    else:
        for key, value in data.items():
            typer.echo(f"{key:<22} {value}")


def _say(as_json: bool, data: dict, text: str) -> None:
    if as_json:
        print_json(data)
    else:
        console.print(text)
