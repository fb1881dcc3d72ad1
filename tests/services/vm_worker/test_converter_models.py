"""Models by root: fetched from the converter over real HTTP, checked against the root, kept in the store.

The first test uses the real converter service; the others a stand-in serving the converter's
GET /models/{root}/file from a dict, so that it can lie about the bytes or be missing."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass, field

import httpx
import pytest
from fastapi import FastAPI, HTTPException, Response

from opml.models.formats import model_root
from opml.models.reference import predict
from opml.service.testing import free_port, serve_in_thread

from .conftest import b64, hex0x, running_worker, unhex, wait_until_ready


@dataclass
class StandInConverter:
    files: dict[str, bytes] = field(default_factory=dict)  # by 0x-hex root: what it serves, true or not
    fetches: list[str] = field(default_factory=list)

    def app(self) -> FastAPI:
        app = FastAPI()

        @app.get("/healthz")
        def healthz() -> dict:
            return {"status": "ok"}

        @app.get("/models/{root}/file")
        def model_file(root: str) -> Response:
            self.fetches.append(root)
            if root not in self.files:
                raise HTTPException(404, f"no model {root}")
            return Response(self.files[root], media_type="application/octet-stream")

        return app


@pytest.fixture
def converter() -> Iterator[tuple[StandInConverter, str]]:
    stand_in = StandInConverter()
    with serve_in_thread(stand_in.app()) as url:
        yield stand_in, url


def by_root(root: bytes, input: bytes) -> dict:
    return {"model": {"root": hex0x(root)}, "input_base64": b64(input)}


def test_a_model_uploaded_to_the_converter_runs_by_its_root(tmp_path, seed_model, seed_input):
    from converter.main import create_app as create_converter
    from converter.settings import ConverterSettings

    port = free_port()
    settings = ConverterSettings(data_dir=tmp_path / "converter", public_url=f"http://127.0.0.1:{port}")
    with serve_in_thread(create_converter(settings), port=port) as converter_url:
        files = {"file": ("model.bin", seed_model, "application/octet-stream")}
        uploaded = httpx.post(f"{converter_url}/models", files=files, timeout=60)
        assert uploaded.status_code == 201, uploaded.text
        root = uploaded.json()["root"]
        assert root == hex0x(model_root(seed_model))
        with running_worker(tmp_path / "worker", converter_url=converter_url) as url:
            assert httpx.get(f"{url}/readyz").json()["checks"] == {"vm": "ok", "converter": "ok"}
            response = httpx.post(f"{url}/executions", json=by_root(unhex(root), seed_input))
            assert response.status_code == 201, response.text
            assert unhex(response.json()["result"]["output"]) == predict(seed_model, seed_input).to_bytes()


def test_a_model_by_root_is_fetched_once_checked_and_kept(tmp_path, converter, seed_model, seed_input):
    stand_in, converter_url = converter
    root = model_root(seed_model)
    stand_in.files[hex0x(root)] = seed_model
    with running_worker(tmp_path, converter_url=converter_url) as url:
        first = httpx.post(f"{url}/executions", json=by_root(root, seed_input))
        assert first.status_code == 201, first.text
        assert unhex(first.json()["result"]["output"]) == predict(seed_model, seed_input).to_bytes()
        second = httpx.post(f"{url}/executions", json=by_root(root, bytes(784)))
        assert second.status_code == 201 and second.json()["roots"]["model"] == hex0x(root)
    assert stand_in.fetches == [hex0x(root)]
    with running_worker(tmp_path, converter_url=f"http://127.0.0.1:{free_port()}", wait_ready=False) as url:
        wait_until_vm_is_warm(url)  # (never ready: its converter is away)
        kept = httpx.post(f"{url}/executions", json=by_root(root, bytes(range(200))))  # no converter needed now
        assert kept.status_code == 201, kept.text


def test_a_converter_that_lies_about_the_bytes_is_refused(tmp_path, converter, seed_model, seed_input):
    stand_in, converter_url = converter
    root = model_root(seed_model)
    stand_in.files[hex0x(root)] = seed_model[:-4] + b"\x00\x00\x00\x00"
    with running_worker(tmp_path, converter_url=converter_url) as url:
        refused = httpx.post(f"{url}/executions", json=by_root(root, seed_input))
        assert refused.status_code == 422, refused.text
        assert refused.json()["error"] == "bad_input" and "has root" in refused.json()["message"]
        stand_in.files[hex0x(root)] = seed_model  # the lie was not kept: the honest file is fetched now
        assert httpx.post(f"{url}/executions", json=by_root(root, seed_input)).status_code == 201
    assert stand_in.fetches == [hex0x(root)] * 2


def test_a_model_nobody_has_is_not_found(tmp_path, converter, seed_input):
    _, converter_url = converter
    with running_worker(tmp_path, converter_url=converter_url) as url:
        missing = httpx.post(f"{url}/executions", json=by_root(b"\x42" * 32, seed_input))
        assert missing.status_code == 404 and "converter" in missing.json()["message"]
    with running_worker(tmp_path, converter_url="") as url:
        unconfigured = httpx.post(f"{url}/executions", json=by_root(b"\x42" * 32, seed_input))
        assert unconfigured.status_code == 404 and "no converter" in unconfigured.json()["message"]


def test_not_ready_while_the_converter_is_unreachable(tmp_path, seed_model, seed_input):
    stand_in = StandInConverter({hex0x(model_root(seed_model)): seed_model})
    port = free_port()
    with running_worker(tmp_path, converter_url=f"http://127.0.0.1:{port}", wait_ready=False) as url:
        wait_until_vm_is_warm(url)
        readiness = httpx.get(f"{url}/readyz")
        assert readiness.status_code == 503 and readiness.json()["checks"]["converter"].startswith("failing")
        unreachable = httpx.post(f"{url}/executions", json=by_root(model_root(seed_model), seed_input))
        assert unreachable.status_code == 502 and "does not answer" in unreachable.json()["message"]
        with serve_in_thread(stand_in.app(), port=port):
            wait_until_ready(url)
            assert httpx.post(f"{url}/executions", json=by_root(model_root(seed_model), seed_input)).status_code == 201


def wait_until_vm_is_warm(url: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while httpx.get(f"{url}/readyz").json()["checks"].get("vm") != "ok":
        assert time.monotonic() < deadline, "the VM did not warm up"
        time.sleep(0.05)
