"""A vm-worker over real HTTP on a free port, with its store in a temporary directory."""

from __future__ import annotations

import base64
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
from vm_worker.main import create_app
from vm_worker.settings import VmWorkerSettings

from opml import resources
from opml.guest import SPIN, built
from opml.service.testing import serve_in_thread
from opml.vm.elf import Program
from opml.vm.execution import Execution

READY_TIMEOUT = 60.0  # a cold numba cache compiles for about 20 s


@contextmanager
def running_worker(store_dir: Path, port: int | None = None, wait_ready: bool = True, **settings) -> Iterator[str]:
    """A vm-worker serving on `port` (default a free one) until the block ends; waits for /readyz unless told
    not to. No converter unless `converter_url` is given."""
    settings.setdefault("converter_url", "")
    app = create_app(VmWorkerSettings(store_dir=store_dir, **settings))
    with serve_in_thread(app, port=port) as url:
        if wait_ready:
            wait_until_ready(url)
        yield url


def wait_until_ready(url: str, timeout: float = READY_TIMEOUT) -> None:
    deadline = time.monotonic() + timeout
    while httpx.get(f"{url}/readyz").status_code != 200:
        assert time.monotonic() < deadline, httpx.get(f"{url}/readyz").json()
        time.sleep(0.05)


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def hex0x(data: bytes) -> str:
    return "0x" + data.hex()


def unhex(text: str) -> bytes:
    return bytes.fromhex(text.removeprefix("0x"))


@pytest.fixture(scope="session")
def seed_model() -> bytes:
    return (resources.seed_model_dir() / "model.bin").read_bytes()


@pytest.fixture(scope="session")
def seed_input() -> bytes:
    return (resources.seed_model_dir() / "input_7.bin").read_bytes()


@pytest.fixture(scope="module")
def store_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("vm-worker-store")


@pytest.fixture(scope="module")
def worker(store_dir) -> Iterator[str]:
    with running_worker(store_dir) as url:
        yield url


@pytest.fixture(scope="module")
def seed_execution(worker, seed_model, seed_input) -> dict:
    """The seed model on its handwritten 7, run by the worker (the model given inline)."""
    response = httpx.post(
        f"{worker}/executions", json={"model": {"base64": b64(seed_model)}, "input_base64": b64(seed_input)}
    )
    assert response.status_code == 201, response.text
    return response.json()


@pytest.fixture(scope="session")
def spin_root() -> bytes:
    return Execution(Program.from_file(built(SPIN.name))).region_roots()["program"]


def spin_request(spin_root: bytes, step_limit: int) -> dict:
    return {"program": {"root": hex0x(spin_root)}, "model": None, "input_base64": "", "step_limit": step_limit}


def metric(url: str, name: str) -> float:
    """The metric's value, summed over its labels."""
    lines = httpx.get(f"{url}/metrics", timeout=30).text.splitlines()
    return sum(float(line.rsplit(" ", 1)[1]) for line in lines if line.startswith((name + " ", name + "{")))
