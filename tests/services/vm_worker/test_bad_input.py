"""Every bad input gets a 4xx with a reason in the one error shape, never a 500."""

from __future__ import annotations

import httpx
import pytest
from vm_worker.schemas import ExecutionIn

from opml.vm.layout import MAX_INPUT_BYTES

from .conftest import b64, hex0x, running_worker

UNKNOWN_ID = "0x" + "ee" * 32
MAX_STEP_LIMIT = 1 << 34


def assert_refused(response: httpx.Response, status: int, *words: str) -> None:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["error"] in ("bad_input", "not_found", "conflict") and body["message"]
    for word in words:
        assert word in body["message"], body["message"]


@pytest.mark.parametrize(
    ("body", "words"),
    [
        ({"step_limit": 0}, ["step_limit", "greater than or equal to 1"]),
        ({"step_limit": -5}, ["step_limit"]),
        ({"step_limit": MAX_STEP_LIMIT + 1}, ["step_limit must be 1..17179869184"]),
        ({"step_limit": 1 << 70}, ["step_limit"]),
        ({"step_limit": "many"}, ["step_limit"]),
        ({"input_base64": "not base64!"}, ["input_base64", "not base64"]),
        ({"input_base64": "AAE"}, ["input_base64", "padding"]),
        ({"input_base64": 784}, ["input_base64", "expected a base64 string"]),
        ({"model": {}}, ["model", "give the model's root"]),
        ({"model": {"root": "0x12"}}, ["model.root", "pattern"]),
        ({"model": {"root": "12" * 32}}, ["model.root"]),
        ({"model": {"base64": "***"}}, ["model.base64", "not base64"]),
        ({"model": {"base64": "Z2dtbA==", "root": hex0x(b"\x01" * 32)}}, ["the model's bytes have root"]),
        ({"program": {"root": "0xzz"}}, ["program.root"]),
        ({"program": "inference"}, ["program"]),
        ({"surprise": 1}, ["surprise", "Extra inputs"]),
    ],
)
def test_bad_execution_requests_are_422_with_a_reason(worker, body, words):
    assert_refused(httpx.post(f"{worker}/executions", json=body), 422, *words)


def test_bodies_that_are_not_json_objects_are_refused_with_what_to_send(worker):
    json_type = {"content-type": "application/json"}
    assert_refused(httpx.post(f"{worker}/executions", content=b"{not json", headers=json_type), 400, "not valid JSON")
    assert_refused(httpx.post(f"{worker}/executions", json=[1, 2]), 422)
    assert_refused(httpx.post(f"{worker}/executions", content=b"{}"), 415, "send the body as JSON")
    form = {"content-type": "application/x-www-form-urlencoded"}
    assert_refused(httpx.post(f"{worker}/executions", content=b"step_limit=5", headers=form), 415, "application/json")


def test_unknown_programs_models_and_executions_are_404(worker):
    assert_refused(httpx.post(f"{worker}/executions", json={"program": {"root": UNKNOWN_ID}}), 404, "no program")
    assert_refused(httpx.post(f"{worker}/executions", json={"model": {"root": UNKNOWN_ID}}), 404, "no model")
    for path in ("", "/golden", "/proof?step=1"):
        assert_refused(httpx.get(f"{worker}/executions/{UNKNOWN_ID}{path}"), 404, "no execution")
    assert_refused(httpx.post(f"{worker}/executions/{UNKNOWN_ID}/states", json={"steps": [1]}), 404, "no execution")


@pytest.mark.parametrize("execution_id", ["0x1234", "ee" * 32, "0x" + "gg" * 32, "0x" + "ee" * 33])
def test_malformed_execution_ids_are_422(worker, execution_id):
    assert_refused(httpx.get(f"{worker}/executions/{execution_id}"), 422, "execution_id")


@pytest.mark.parametrize(
    ("steps", "words"),
    [
        ([-1], ["steps"]),
        ([1 << 31], ["outside this execution's trace: 0..1073741824"]),
        ([1 << 70], ["steps"]),
        (list(range(257)), ["steps", "at most 256"]),
        ("all", ["steps"]),
        ([1.5], ["steps"]),
    ],
)
def test_bad_state_queries_are_422(worker, seed_execution, steps, words):
    response = httpx.post(f"{worker}/executions/{seed_execution['id']}/states", json={"steps": steps})
    assert_refused(response, 422, *words)


@pytest.mark.parametrize(
    ("query", "words"),
    [
        ("", ["step", "Field required"]),
        ("?step=-1", ["step"]),
        ("?step=abc", ["step"]),
        (f"?step={1 << 30}", ["outside this execution's trace: 0..1073741823"]),
        (f"?step={1 << 80}", ["step"]),
    ],
)
def test_bad_proof_queries_are_422(worker, seed_execution, query, words):
    assert_refused(httpx.get(f"{worker}/executions/{seed_execution['id']}/proof{query}"), 422, *words)


def test_a_body_over_the_limit_is_413_before_it_is_read(tmp_path):
    with running_worker(tmp_path, max_body_bytes=64 << 10) as url:
        response = httpx.post(f"{url}/executions", json={"input_base64": b64(bytes(100_000))})
        assert response.status_code == 413 and "larger than this service accepts" in response.json()["message"]


def test_an_input_larger_than_its_region_is_refused_before_it_is_decoded():
    # Over HTTP such a body (358 MB of base64) is refused by the body limit first (above).
    too_large = "A" * (4 * ((MAX_INPUT_BYTES + 1 + 2) // 3))
    with pytest.raises(ValueError, match=f"the input region holds at most {MAX_INPUT_BYTES} bytes"):
        ExecutionIn.model_validate({"input_base64": too_large})


def test_nothing_above_was_a_5xx(worker):
    requests = [line for line in httpx.get(f"{worker}/metrics").text.splitlines() if "_http_requests_total{" in line]
    assert len(requests) > 5
    assert [line for line in requests if 'status="5' in line and 'route="/readyz"' not in line] == []
