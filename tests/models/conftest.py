"""Shared fixtures: the seed's artifacts, the inference program, Fashion-MNIST."""

from pathlib import Path

import numpy as np
import pytest

from opml.guest import INFERENCE, built
from opml.models.formats import Prediction
from opml.vm.elf import Program
from opml.vm.execution import Execution

SEED = Path(__file__).resolve().parents[2] / "models" / "seed-mnist"  # verbatim copies of the seed's files
FASHION = Path("/usr/share/datasets/fashion-mnist")


@pytest.fixture(scope="session")
def seed_model() -> bytes:
    return (SEED / "model.bin").read_bytes()


@pytest.fixture(scope="session")
def input_7() -> bytes:
    return (SEED / "input_7.bin").read_bytes()


@pytest.fixture(scope="session")
def inference() -> Program:
    return Program.from_file(built(INFERENCE.name))


@pytest.fixture(scope="session")
def fashion():
    from opml.models.training import load_dataset

    if not (FASHION / "train-images-idx3-ubyte.gz").exists():
        pytest.fail("Debian's dataset-fashion-mnist is not installed (make install installs it)")
    train = load_dataset(FASHION / "train-images-idx3-ubyte.gz", FASHION / "train-labels-idx1-ubyte.gz")
    test = load_dataset(FASHION / "t10k-images-idx3-ubyte.gz", FASHION / "t10k-labels-idx1-ubyte.gz")
    return train, test


def run_in_vm(program: Program, model: bytes, input: bytes):
    """(exit code, output bytes, stderr) of the inference program."""
    result = Execution(program, model=model, input=input).run(max_steps=2_000_000_000)
    return result.exit_code, result.output, result.stderr


def vm_prediction(program: Program, model: bytes, input: bytes) -> Prediction:
    code, output, stderr = run_in_vm(program, model, input)
    assert code == 0, stderr
    return Prediction.from_bytes(output)


def random_u8(rng: np.random.Generator, count: int) -> bytes:
    return rng.integers(0, 256, count, dtype=np.uint8).tobytes()
