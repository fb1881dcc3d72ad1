"""A converter over real HTTP (uvicorn on a free port) with a temporary data dir per test module, and the
models the tests upload: the seed's files, state_dicts and ONNX exports made here from PyTorch."""

from __future__ import annotations

import io
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import torch
from converter.main import create_app
from converter.settings import ConverterSettings
from torch import nn

from opml import resources
from opml.guest import INFERENCE, built
from opml.service.testing import free_port, serve_in_thread
from opml.vm.elf import Program

SEED = resources.seed_model_dir()


def pytest_configure(config):
    config.addinivalue_line("markers", "chain: starts its own anvil node on a free port (runs beside other tests)")


@dataclass
class Converter:
    url: str
    settings: ConverterSettings
    http: httpx.Client

    def upload(self, data: bytes, filename: str = "model", **form) -> httpx.Response:
        fields = {name: str(value).lower() if isinstance(value, bool) else str(value) for name, value in form.items()}
        return self.http.post("/models", files={"file": (filename, data, "application/octet-stream")}, data=fields)

    def created(self, data: bytes, **form) -> dict:
        response = self.upload(data, **form)
        assert response.status_code == 201, response.text
        return response.json()

    def stored_files(self) -> list[Path]:
        """Every file in the model store, temporary ones included."""
        return sorted(path for path in Path(self.settings.store_dir).rglob("*") if path.is_file())

    def model_count(self) -> int:
        return self.http.get("/models").json()["total"]


@contextmanager
def running_converter(data_dir: Path, **settings) -> Iterator[Converter]:
    port = free_port()
    settings = ConverterSettings(
        data_dir=data_dir, public_url=f"http://127.0.0.1:{port}", log_level="warning", **settings
    )
    with serve_in_thread(create_app(settings), port=port) as url, httpx.Client(base_url=url, timeout=120) as http:
        yield Converter(url, settings, http)


@pytest.fixture(scope="module")
def converter(tmp_path_factory) -> Iterator[Converter]:
    with running_converter(tmp_path_factory.mktemp("converter")) as service:
        yield service


@pytest.fixture(scope="session")
def inference() -> Program:
    return Program.from_file(built(INFERENCE.name))


# --- models ---------------------------------------------------------------------------------------


def state_dict_bytes(model: nn.Module) -> bytes:
    buffer = io.BytesIO()
    torch.save(model.state_dict(), buffer)
    return buffer.getvalue()


def onnx_bytes(model: nn.Module, example: torch.Tensor, **options) -> bytes:
    """torch.onnx.export of the model in eval mode (the TorchScript exporter unless dynamo=True is given)."""
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(model.eval(), (example,), buffer, **{"dynamo": False, **options})
    return buffer.getvalue()
