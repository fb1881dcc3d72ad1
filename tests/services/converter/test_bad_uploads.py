"""Every bad upload gets a 4xx with a reason, and leaves nothing in the store or the database: garbage,
truncated and oversized files, wrong content types, state_dicts of unknown architectures or holding
code, unknown and malformed ids. A database that fails mid-upload takes the stored file back."""

import io
import os
import random
import sqlite3
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
import torch
from torch import nn

from opml.models.formats import Graph, InputType, Node, Op
from opml.models.training import SeedMLP, SmallCNN

from .conftest import SEED, onnx_bytes, running_converter, state_dict_bytes

SEED_STATE_DICT = (SEED / "mnist-small.state_dict").read_bytes()
SEED_MODEL = (SEED / "model.bin").read_bytes()
UNKNOWN_ID = "0x" + "ab" * 32
NOISE = random.Random(0).randbytes(500)


@contextmanager
def nothing_stored(converter):
    count, files = converter.model_count(), converter.stored_files()
    yield
    assert converter.model_count() == count and converter.stored_files() == files


def assert_refused(response: httpx.Response, status: int, *phrases: str) -> None:
    assert response.status_code == status, response.text
    problem = response.json()
    assert problem["error"] == "bad_input" and problem["message"], problem
    for phrase in phrases:
        assert phrase in problem["message"], problem["message"]


def test_garbage_is_refused_with_a_reason(converter):
    cases = {
        b"": "unknown model format",
        b"hello, converter": "unknown model format",
        bytes([0xFF]) * 100: "unknown model format",
        b"PK\x03\x04" + NOISE: "not a PyTorch state_dict",
        b"\x80\x02" + NOISE: "not a PyTorch state_dict",
        b"\x08" + NOISE: "ONNX model",
        b"ggml\x00\x00\x00\x02": "truncated",
        b"OPMG\x00\x00\x00\x07": "unsupported graph format version",
    }
    with nothing_stored(converter):
        for data, phrase in cases.items():
            assert_refused(converter.upload(data), 422, phrase)


def truncations(data: bytes) -> list[bytes]:
    return [data[:cut] for cut in (5, len(data) // 3, len(data) // 2, len(data) - 1)]


def test_truncated_uploads_are_refused(converter):
    torch.manual_seed(0)
    network = SmallCNN().eval()
    sources = {
        "state_dict": state_dict_bytes(network),
        "seed model": SEED_MODEL,
        "onnx": onnx_bytes(network, torch.zeros(1, 1, 28, 28)),
        "graph model": Graph(InputType.U8, (4,), [torch.ones(2, 4).numpy()], [Node(Op.LINEAR, [0], [0])]).to_bytes(),
    }
    with nothing_stored(converter):
        for name, data in sources.items():
            for cut in truncations(data):
                response = converter.upload(cut)
                assert 400 <= response.status_code < 500, (name, len(cut), response.text)
                assert response.json()["message"]


def test_models_that_cannot_run_are_refused(converter):
    misfit = Graph(InputType.U8, (4,), [torch.ones(2, 5).numpy()], [Node(Op.LINEAR, [0], [0])]).to_bytes()
    unknown_op = Graph(InputType.U8, (4,), [], [Node(99, [0])]).to_bytes()
    trailing = SEED_MODEL + b"\x00"
    with nothing_stored(converter):
        assert_refused(converter.upload(misfit), 422, "linear weight (2, 5) for 4 inputs")
        assert_refused(converter.upload(unknown_op), 422, "unsupported op 99")
        assert_refused(converter.upload(trailing), 422, "bytes after its end")
        assert_refused(converter.upload(SEED_MODEL, format="graph"), 422, "not a graph-format model file")


def test_state_dicts_of_unknown_architectures_are_refused(converter):
    torch.manual_seed(0)
    with nothing_stored(converter):
        other = converter.upload(state_dict_bytes(nn.Sequential(nn.Linear(4, 2))))
        assert_refused(other, 422, "unknown architecture", "0.weight", "mlp, cnn")
        wrong = converter.upload(SEED_STATE_DICT, architecture="cnn")
        assert_refused(wrong, 422, "does not fit the cnn architecture")
        extra = {
            **torch.load(io.BytesIO(SEED_STATE_DICT), map_location="cpu", weights_only=True),
            "fc3.weight": torch.ones(1),
        }
        buffer = io.BytesIO()
        torch.save(extra, buffer)
        assert_refused(converter.upload(buffer.getvalue()), 422, "unknown architecture")
        buffer = io.BytesIO()
        torch.save([torch.ones(1)], buffer)
        assert_refused(converter.upload(buffer.getvalue()), 422, "holds a list, not a state_dict")
        named = converter.upload(SEED_STATE_DICT, architecture="resnet")
        assert_refused(named, 422, "architecture")


class Payload:
    """Pickles to a call of open(): what a malicious 'state_dict' would run if it were unpickled fully."""

    def __init__(self, path: Path):
        self.path = path

    def __reduce__(self):
        return open, (str(self.path), "w")


def test_a_state_dict_holding_code_is_refused_without_running_it(converter, tmp_path):
    marker = tmp_path / "pwned"
    buffer = io.BytesIO()
    torch.save({"fc1.weight": Payload(marker)}, buffer)
    whole_module = io.BytesIO()
    torch.save(SeedMLP(), whole_module)
    with nothing_stored(converter):
        assert_refused(converter.upload(buffer.getvalue()), 422, "not a PyTorch state_dict")
        assert_refused(converter.upload(whole_module.getvalue()), 422, "not a PyTorch state_dict")
    assert not marker.exists()


def test_the_legacy_torch_save_format_is_read_too(converter):
    legacy = io.BytesIO()
    torch.save(
        torch.load(io.BytesIO(SEED_STATE_DICT), map_location="cpu", weights_only=True),
        legacy,
        _use_new_zipfile_serialization=False,
    )
    response = converter.upload(legacy.getvalue())
    assert response.status_code in (200, 201) and response.json()["size"] == len(SEED_MODEL)


def test_wrong_content_types_are_refused(converter):
    with nothing_stored(converter):
        assert_refused(converter.http.post("/models", json={"file": "AAAA"}), 415, "multipart/form-data")
        assert_refused(converter.http.post("/models", data={"file": "AAAA"}), 415, "multipart/form-data")
        raw = converter.http.post("/models", content=SEED_MODEL, headers={"content-type": "application/octet-stream"})
        assert_refused(raw, 415, "multipart/form-data")
        no_file = converter.http.post("/models", files={"model": ("m", SEED_MODEL)})
        assert_refused(no_file, 422, "file")
        text_field = converter.http.post("/models", files={"file": (None, "just text")})
        assert_refused(text_field, 422, "file")
        body, content_type = multipart(SEED_MODEL)
        broken = converter.http.post(
            "/models", content=body.replace(b"filename=", b"\rfilename="), headers={"content-type": content_type}
        )
        assert_refused(broken, 400, "multipart")
        assert_refused(converter.upload(SEED_MODEL, format="tflite"), 422, "format")
        assert_refused(converter.upload(SEED_MODEL, register="maybe"), 422, "register")


def test_unknown_and_malformed_ids(converter):
    for path in (f"/models/{UNKNOWN_ID}", f"/models/{UNKNOWN_ID}/file"):
        missing = converter.http.get(path)
        assert missing.status_code == 404 and missing.json() == {
            "error": "not_found",
            "message": f"no model {UNKNOWN_ID}",
        }
    assert converter.http.post(f"/models/{UNKNOWN_ID}/register").status_code == 404
    for malformed in ("0x1234", "seed", "0x" + "g" * 64, UNKNOWN_ID + "00"):
        assert_refused(converter.http.get(f"/models/{malformed}"), 422, "model_id")
    assert_refused(converter.http.get("/models", params={"limit": 0}), 422, "limit")
    assert_refused(converter.http.get("/models", params={"offset": -1}), 422, "offset")


def test_registration_without_a_chain_is_a_conflict(converter):
    root = converter.upload(SEED_STATE_DICT).json()["id"]
    refused = converter.http.post(f"/models/{root}/register")
    assert refused.status_code == 409 and "CONVERTER_RPC_URL" in refused.json()["message"]
    torch.manual_seed(9)
    with nothing_stored(converter):
        upload = converter.upload(state_dict_bytes(SeedMLP(hidden=9)), register=True)
        assert upload.status_code == 409 and "CONVERTER_PRIVATE_KEY" in upload.json()["message"]


def multipart(data: bytes, boundary: str = "opml-boundary") -> tuple[bytes, str]:
    head = f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="m"\r\n\r\n'.encode()
    return head + data + f"\r\n--{boundary}--\r\n".encode(), f"multipart/form-data; boundary={boundary}"


@pytest.fixture(scope="module")
def small_converter(tmp_path_factory):
    """A converter that takes uploads of up to 100 kB (the seed state_dict is 65 kB)."""
    with running_converter(tmp_path_factory.mktemp("small"), max_upload_bytes=100_000) as service:
        yield service


def test_oversized_uploads_are_refused_with_413(small_converter):
    converter = small_converter
    with nothing_stored(converter):
        far_over = converter.upload(os.urandom(500_000))  # refused by its Content-Length, before it is read
        assert_refused(far_over, 413, "larger than this service accepts")
        just_over = converter.upload(b"\x08" + os.urandom(100_000))  # within the form's margin: refused by the route
        assert_refused(just_over, 413, "larger than this converter accepts (100000 bytes)")
        body, content_type = multipart(os.urandom(300_000))
        streamed = converter.http.post(
            "/models", content=(body[i : i + 65536] for i in range(0, len(body), 65536)),
            headers={"content-type": content_type},
        )  # fmt: skip
        assert streamed.status_code == 413  # no Content-Length: counted as it streams in
    assert converter.upload(SEED_STATE_DICT).status_code == 201


def test_a_database_failing_mid_upload_takes_the_stored_file_back(tmp_path):
    with running_converter(tmp_path) as converter:
        database = sqlite3.connect(converter.settings.database_url)
        database.execute("CREATE TRIGGER refuse BEFORE INSERT ON models BEGIN SELECT RAISE(ABORT, 'refused'); END")
        database.commit()
        failed = converter.upload(SEED_STATE_DICT)
        assert failed.status_code == 500 and failed.headers["x-request-id"] in failed.json()["message"]
        assert converter.stored_files() == [] and converter.model_count() == 0
        database.execute("DROP TRIGGER refuse")
        database.commit()
        database.close()
        assert converter.upload(SEED_STATE_DICT).status_code == 201
        assert len(converter.stored_files()) == 1
