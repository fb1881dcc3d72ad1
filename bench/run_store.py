"""Saved runs: what a vm-worker replica saves for the others after a queued run, and what loading it
costs compared with running it again.

    python bench/run_store.py [--json] [--minilm]

For each model: the run's time, the saved run's size on disk, the seconds to save it and to load it into
a fresh execution, and on the loaded one a state query and a dispute's first round (15 states spread
over the whole run, k = 16). --minilm adds all-MiniLM-L6-v2 on a sentence of
16 tokens (minutes). The last line is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "services" / "vm-worker"))

from vm_worker.runs import RunStore  # noqa: E402

from opml import resources  # noqa: E402
from opml.guest import INFERENCE, built  # noqa: E402
from opml.models import minilm  # noqa: E402
from opml.models.formats import seed_model_bytes  # noqa: E402
from opml.models.training import SeedMLP  # noqa: E402
from opml.protocol.dissection import interior_points  # noqa: E402
from opml.vm.elf import Program  # noqa: E402
from opml.vm.execution import Execution  # noqa: E402

ARITY = 16
SENTENCE = "A verified transformer on a blockchain."


def measure(program: Program, model: bytes, input: bytes, store: RunStore) -> dict:
    execution_id = bytes(32)  # any key: one store per model
    started = time.perf_counter()
    ran = Execution(program, model=model, input=input)
    result = ran.run()
    run_s = time.perf_counter() - started

    started = time.perf_counter()
    store.save_run(execution_id, ran.saved_run())
    save_s = time.perf_counter() - started
    size = (store.root / f"{execution_id.hex()}.run.npz").stat().st_size

    booted = Execution(program, model=model, input=input)  # what a replica holds before the run ends
    started = time.perf_counter()
    booted.restore_run(store.load_run(execution_id))
    load_s = time.perf_counter() - started
    assert booted.result == result

    middle = result.steps // 2
    started = time.perf_counter()
    assert booted.state_at(middle) == ran.state_at(middle)
    query_ms = (time.perf_counter() - started) * 1000
    started = time.perf_counter()
    for step in interior_points(0, result.steps, ARITY):  # a dispute's first round: states far apart
        booted.state_at(step)
    first_round_ms = (time.perf_counter() - started) * 1000
    (store.root / f"{execution_id.hex()}.run.npz").unlink()
    return {
        "steps": result.steps,
        "run_s": round(run_s, 3),
        "saved_mb": round(size / 1e6, 1),
        "save_s": round(save_s, 3),
        "load_s": round(load_s, 3),
        "state_query_after_load_ms": round(query_ms, 1),
        "first_round_ms": round(first_round_ms, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print only the JSON line")
    parser.add_argument("--minilm", action="store_true", help="add all-MiniLM-L6-v2 (minutes)")
    args = parser.parse_args()
    program = Program.from_file(built(INFERENCE.name))
    seed = resources.seed_model_dir()
    models = {
        "seed_mlp": ((seed / "model.bin").read_bytes(), (seed / "input_7.bin").read_bytes()),
        "mlp_784_500_10": (seed_model_bytes(SeedMLP(hidden=500).state_dict()), (seed / "input_7.bin").read_bytes()),
    }
    if args.minilm:
        models["minilm"] = (minilm.model_file(), minilm.encode_text(SENTENCE))
    Execution(program).run()  # load the JIT cache: the first run measures the VM, not the compiler
    figures = {}
    with tempfile.TemporaryDirectory() as directory:
        for name, (model, input) in models.items():
            store = RunStore(Path(directory) / name)
            figures[name] = measure(program, model, input, store)
            if not args.json:
                print(name, figures[name], flush=True)
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
