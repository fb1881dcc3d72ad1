"""Model benchmark: each model in the VM, in the numpy reference and in PyTorch.

    python bench/models.py [--json]

seed_mlp is the seed's model on its input_7; mlp_784_500_10 is the seed's big
architecture (random weights); cnn is opml's SmallCNN (random weights). The VM output
is checked bit for bit against the reference. Prints its figures; the last line is
one JSON object. Target: the seed model in <= 2.5M steps (the seed's VM: 14.7M).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

from opml.guest import INFERENCE, built
from opml.models.convert import graph_from_module
from opml.models.formats import InputType, parse_model, seed_model_bytes
from opml.models.reference import run
from opml.models.training import SeedMLP, SmallCNN, with_softmax
from opml.vm.elf import Program
from opml.vm.execution import Execution

DEFAULT_MODEL = Path(__file__).resolve().parents[1] / "models" / "seed-mnist"


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
    return {"steps": result.steps, "vm_s": round(vm_s, 4), "reference_s": round(reference_s, 5), "torch_s": round(torch_s, 6)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print only the JSON line")
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
    if not args.json:
        for name, row in figures.items():
            print(f"{name:16} {row['steps']:>12,} steps  vm {row['vm_s']:.3f} s  "
                  f"reference {row['reference_s'] * 1000:.2f} ms  torch {row['torch_s'] * 1000:.3f} ms")  # fmt: skip
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
