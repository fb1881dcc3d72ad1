"""The linked two-phase game (docs/two-phase.md), per model: the honest claim computed natively, its largest node in
the VM, and a dispute through the services on anvil.

    python bench/two_phase.py [--json] [--models seed_mlp,cnn,minilm]

For each model (`seed_mlp`: the seed's MNIST MLP; `cnn`: a small CNN; `minilm`: all-MiniLM-L6-v2 on a 16-token
sentence), in one stack of the four services as processes on anvil:
- native_s: the honest claim's computation (every value, every value root, the value tree), from the model
  file and the input, in this process;
- largest_node_steps, largest_node_vm_s: the node with the most multiply-adds (or output elements) run in the
  VM by the node program, its memory built included;
- request_to_reveal_s: POST /inference-requests to the submitter's claim revealed (GET /inference-requests);
- a lie in one node's value (a lying submitter beside the honest one; the node half-way through the graph):
  phase1_rounds and phase2_rounds (the challenger's game, rounds before and after its link), link_gas,
  dispute_gas (every transaction of that game, its challenge to its final step) and dispute_wall_s (the lie
  revealed to its game's end).
Targets for minilm: native_s <= 2, request_to_reveal_s <= 5, link_gas <= 150,000, dispute_gas <= 2,500,000,
phase1_rounds + phase2_rounds <= 12, dispute_wall_s <= 120. The last line is one JSON object, by model.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import tempfile
import time
from pathlib import Path


sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from opml.chain.client import connect  # noqa: E402
from opml.chain.registry import Registry  # noqa: E402
from opml.graph.native import evaluate  # noqa: E402
from opml.guest import NODE, built  # noqa: E402
from opml.models.formats import parse_model  # noqa: E402
from opml.models.summary import summarize  # noqa: E402
from opml.protocol.parameters import Parameters  # noqa: E402
from opml.requests import STEPS_PER_ELEMENT, STEPS_PER_MULTIPLY_ADD, _node_multiply_adds  # noqa: E402
from opml.resources import seed_model_dir  # noqa: E402
from opml.stack import Stack, StackConfig  # noqa: E402
from stack_client import ServicesClient  # noqa: E402  (bench/stack_client.py)
from opml.vm.elf import Program  # noqa: E402
from opml.vm.execution import Execution  # noqa: E402

SEVEN = (seed_model_dir() / "input_7.bin").read_bytes()
SENTENCE = "A man is eating food."
# Node runs of up to 2^31 steps (MiniLM's largest is 8.7e8); clocks for phase 1, then a node's run computed by
# the defender before its link and by the challenger after it (seconds here), and the rounds of both phases.
PARAMETERS = Parameters(max_step_limit=1 << 31, challenge_window=30, clock_budget=180, request_timeout=900)
LIAR = {"SUBMITTER_DEV_ACCOUNT": "3", "SUBMITTER_FAULT_LIE": "states"}


def seed_mlp() -> tuple[bytes, bytes]:
    return (seed_model_dir() / "model.bin").read_bytes(), SEVEN


def cnn() -> tuple[bytes, bytes]:
    import torch
    from torch import nn

    from opml.models.convert import graph_from_module
    from opml.models.formats import InputType

    torch.manual_seed(5)
    network = nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(8, 16, 3, padding=1),
                            nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(16 * 7 * 7, 10))  # fmt: skip
    return graph_from_module(network, (1, 28, 28), InputType.U8).to_bytes(), SEVEN


def minilm() -> tuple[bytes, bytes]:
    from opml.models import minilm as m

    model = m.model_file()
    return model, m.encode_text_exactly(SENTENCE, m.text_length(parse_model(model)))


MODELS = {"seed_mlp": seed_mlp, "cnn": cnn, "minilm": minilm}


def largest_node(model: bytes) -> int:
    """The node with the most work: multiply-adds, or output elements for an op without a dot product."""
    graph = parse_model(model)
    layers = summarize(graph).layers
    work = [max(macs * STEPS_PER_MULTIPLY_ADD, math.prod(layer.output_shape) * STEPS_PER_ELEMENT)
            for macs, layer in zip(_node_multiply_adds(graph, True), layers, strict=True)]  # fmt: skip
    return max(range(len(work)), key=work.__getitem__)


def native(model: bytes, input: bytes) -> dict:
    evaluate(model, input)  # warm
    started = time.monotonic()
    run = evaluate(model, input)
    native_s = time.monotonic() - started
    node = largest_node(model)
    started = time.monotonic()
    execution = Execution.node_run(Program.from_file(built(NODE.name)), model=model, input=input, node=node,
                                   node_count=run.node_count, operands=run.operands(node))  # fmt: skip
    result = execution.run()
    return {
        "native_s": round(native_s, 3),
        "node_count": run.node_count,
        "largest_node": node,
        "largest_node_steps": result.steps,
        "largest_node_vm_s": round(time.monotonic() - started, 2),
    }


class Services(ServicesClient):
    """Requests asked of the node program (so the seed's format plays the two-phase game too), or of `program_id`
    (the LLM node program for an OPLM model)."""

    def __init__(self, stack: Stack, program_id: int | None = None):
        super().__init__(stack, timeout=600, program_id=program_id or stack.deployment.node_program_id)
        self.registry = Registry(connect(stack.rpc_url), stack.deployment.registry)

    def honest(self, model_id: str, input: bytes) -> float:
        started = time.monotonic()
        request_id = self.request(model_id, input)
        self.until(lambda: self.report(request_id).get("claims"), 300)
        return round(time.monotonic() - started, 2)

    def lie(self, name: str, model_id: str, input: bytes, node_count: int) -> dict:
        lied_node = node_count // 2
        liar = self.stack.start_service(f"liar-{name}", "submitter",
                                        LIAR | {"SUBMITTER_FAULT_LIE_FROM_STEP": str(lied_node + 1)})  # fmt: skip
        try:
            request_id = self.request(model_id, input[:-1] + bytes([(input[-1] + 1) % 256]))
            liar_address = self.registry.w3.eth.account.from_key(_key(3)).address
            self.until(lambda: any(c["claimant"] == liar_address for c in self.report(request_id).get("claims", [])),
                       300)  # fmt: skip
            revealed = time.monotonic()
            challenger = self.registry.w3.eth.account.from_key(_key(2)).address
            game_id = self.until(lambda: next((g["id"] for g in self.report(request_id).get("games", [])
                                               if g["challenger"] == challenger), None), 300)  # fmt: skip
            dispute = self.until(lambda: (d := self.dispute(game_id))["status"] != "active" and d["bonds"] and d, 900,
                                 0.2)  # fmt: skip
            wall = time.monotonic() - revealed
        finally:
            liar.stop()
            self.stack.services.pop(liar.name, None)
        rounds = dispute["history"]
        link = next(tx for tx in dispute["transactions"] if tx["tx_hash"] == dispute["link"]["tx_hash"])
        return {
            "lied_node": lied_node,
            "linked_node": dispute["link"]["node"],
            "winner_is_challenger": dispute["status"] == "challenger_won",
            "phase1_rounds": sum(1 for r in rounds if r["phase"] == "graph"),
            "phase2_rounds": sum(1 for r in rounds if r["phase"] == "run"),
            "link_gas": link["gas_used"],
            "dispute_gas": dispute["gas_total"],
            "dispute_wall_s": round(wall, 1),
        }


def _key(index: int) -> str:
    from opml.chain.anvil import dev_key

    return dev_key(index)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print only the JSON line")
    parser.add_argument("--models", default=",".join(MODELS))
    args = parser.parse_args()
    figures: dict[str, dict] = {}
    with (
        tempfile.TemporaryDirectory() as data,
        Stack(StackConfig.ephemeral(Path(data), parameters=PARAMETERS, echo=False, poll_interval=0.1)) as stack,
    ):
        services = Services(stack)
        for name in args.models.split(","):
            model, input = MODELS[name]()
            measured = native(model, input)
            model_id = services.upload(f"{name}.opmg", model)
            measured["request_to_reveal_s"] = services.honest(model_id, input)
            measured |= services.lie(name, model_id, input, measured["node_count"])
            figures[name] = measured
            if not args.json:
                print(name, json.dumps(measured), flush=True)
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
