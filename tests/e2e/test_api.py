"""The APIs as a person uses them, on the whole stack as processes on anvil: Swagger UI of every service in a
real browser (Debian's Chromium, driven by Playwright) with every request off this machine blocked, "Try it
out" on the submitter and the challenger; a float32 image classifier exported from PyTorch asked for with
its input as JSON numbers (input_f32) and as pixels; step limits that cannot cover a model's run; bodies
that are not JSON."""

from __future__ import annotations

import base64
import io
import json
import warnings
from pathlib import Path
from urllib.parse import urlparse

import httpx
import numpy as np
import pytest
import torch
from playwright.sync_api import Page, Route, sync_playwright
from torch import nn

from opml.models.formats import parse_model
from opml.requests import least_steps

from .conftest import SEVEN, running, wait_for
from .test_explorer import CHROMIUM, CHROMIUM_ARGS

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "swagger"  # screenshots, for people
LIAR_ACCOUNT = 3
CHALLENGER_ACCOUNT = 2  # the challenger service's dev account
OPERATIONS = {
    "converter": ["/models", "/models/{model_id}", "/models/{model_id}/file", "/models/{model_id}/register"],
    "vm-worker": ["/executions", "/executions/{execution_id}", "/executions/{execution_id}/states", "/programs"],
    "submitter": ["/inference-requests", "/inference-requests/{request_id}"],
    "challenger": ["/disputes", "/disputes/{game_id}"],
}


# --- a float32 image classifier, as PyTorch exports it -------------------------------------------------


class ImageClassifier(nn.Module):
    """Gray 8x8 images (float32, the pixel values as they are) -> 3 classes."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 4, 3, padding=1)
        self.head = nn.Linear(4 * 8 * 8, 3)

    def forward(self, x):
        return self.head(torch.relu(self.conv(x / 255.0)).flatten(1))


def onnx_bytes(network: nn.Module, example: torch.Tensor) -> bytes:
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(network.eval(), (example,), buffer, dynamo=False)
    return buffer.getvalue()


def upload(harness, data: bytes) -> dict:
    """Upload and register a model; its "id" here is its on-chain id (known to the chain at once, where its root
    is known to the submitter once its agent has read the registration)."""
    response = httpx.post(
        f"{harness.url('converter')}/models",
        files={"file": ("model.onnx", data)},
        data={"register": "true"},
        timeout=120,
    )
    assert response.status_code in (200, 201), response.text
    return {**response.json(), "id": str(response.json()["onchain_model_id"])}


@pytest.fixture(scope="module")
def classifier(harness):
    torch.manual_seed(11)
    network = ImageClassifier().eval()
    return network, upload(harness, onnx_bytes(network, torch.zeros(1, 1, 8, 8)))


@pytest.fixture(scope="module")
def vector_model(harness):
    """A float32 model whose input is no image: 16 numbers."""
    torch.manual_seed(12)
    return upload(harness, onnx_bytes(nn.Sequential(nn.Linear(16, 4), nn.ReLU(), nn.Linear(4, 2)), torch.zeros(1, 16)))


def post(harness, body: dict | None = None, **options) -> httpx.Response:
    return httpx.post(f"{harness.url('submitter')}/inference-requests", json=body, timeout=60, **options)


def accepted(response: httpx.Response) -> int:
    assert response.status_code == 202, response.text
    return response.json()["request_id"]


# --- inputs as JSON numbers and pixels ----------------------------------------------------------------------


def test_a_float32_classifier_takes_its_input_as_numbers_or_as_pixels(harness, classifier):
    network, model = classifier
    pixels = np.random.default_rng(3).integers(0, 256, 64)
    numbers = (pixels / 255.0).astype(np.float32) * 200.0 + 0.5  # any float32 numbers, not only whole ones
    as_numbers = accepted(post(harness, {"model": model["id"], "input_f32": numbers.tolist()}))
    as_pixels = accepted(post(harness, {"model": model["id"], "pixels": pixels.tolist()}))
    for request_id, values in ((as_numbers, numbers), (as_pixels, pixels.astype(np.float32))):
        report = harness.wait_final(request_id)
        with torch.no_grad():
            expected = network(torch.from_numpy(values.astype(np.float32)).reshape(1, 1, 8, 8))[0].numpy()
        result = report["result"]
        assert result["predicted"] == int(np.argmax(expected)), (request_id, result, expected)
        np.testing.assert_allclose(result["scores"], expected, rtol=1e-4, atol=1e-5)
        assert report["input_size"] == 64 * 4  # big-endian float32, what the program reads


def test_numbers_are_checked_against_the_model_before_anything_is_sent(harness, classifier, vector_model):
    _, model = classifier
    before = harness.registry.count("request")
    cases = {
        "one number short": ({"model": model["id"], "input_f32": [0.5] * 63}, "reads 64 values (f32 1x8x8); got 63"),
        "beyond float32": ({"model": model["id"], "input_f32": [1e39] + [0.0] * 63}, "value 0 is 1e+39"),
        "not numbers": ({"model": model["id"], "input_f32": ["1.0"] * 64}, "input_f32.0"),
        "numbers for a u8 model": ({"model": harness.model_id, "input_f32": [0.0] * 784}, "send pixels"),
        "pixels for a model that reads no image": (
            {"model": vector_model["id"], "pixels": [0] * 16}, "does not read pixels (its input is f32 16"),
        "pixel count": ({"model": model["id"], "pixels": [0] * 65}, "reads 64 values (f32 1x8x8); got 65 pixels"),
        "two inputs": ({"model": model["id"], "pixels": [0] * 64, "input_f32": [0.0] * 64}, "got input_f32 and pixels"),
    }  # fmt: skip
    for case, (body, reason) in cases.items():
        response = post(harness, body)
        assert response.status_code == 422, (case, response.text)
        assert reason in response.json()["message"], (case, response.json())
    nan = httpx.post(
        f"{harness.url('submitter')}/inference-requests",
        content=json.dumps({"model": model["id"], "input_f32": [float("nan")] * 64}),
        headers={"content-type": "application/json"},
        timeout=30,
    )
    assert nan.status_code == 422, nan.text
    # little-endian floats (numpy's default) as bytes: read big-endian, one of them is a NaN
    little = np.full(64, 0.5, np.float32)
    little[5] = np.uint32(0x3F00FFFF).view(np.float32)
    response = post(harness, {"model": model["id"], "input_base64": base64.b64encode(little.tobytes()).decode()})
    assert response.status_code == 422 and "little-endian" in response.json()["message"], response.text
    numbers = post(harness, {"model": vector_model["id"], "input_f32": list(range(16))})  # whole numbers are numbers
    assert harness.registry.count("request") == before + 1
    harness.wait_final(accepted(numbers))


# --- step limits ------------------------------------------------------------------------------------------


def test_a_step_limit_below_the_models_run_is_refused_unless_asked_for(harness):
    model_file = httpx.get(f"{harness.url('converter')}/models/{harness.model_id}/file", timeout=30).content
    least = least_steps(parse_model(model_file))
    assert 1_000_000 < least < 1_460_000  # the seed's run takes 1.46e6 to 2.47e6 steps, by its input
    before = harness.registry.count("request")
    refused = post(harness, {"model": harness.model_id, "pixels": list(SEVEN), "step_limit": least - 1})
    assert refused.status_code == 422
    assert f"this model needs at least {least:,} steps" in refused.json()["message"], refused.text
    assert refused.json()["details"]["least_steps"] == least
    assert harness.registry.count("request") == before
    at_least = accepted(post(harness, {"model": harness.model_id, "pixels": list(SEVEN), "step_limit": 3_000_000}))
    below = accepted(
        post(harness, {"model": harness.model_id, "pixels": list(SEVEN), "step_limit": 1_000,
                       "allow_step_limit_below_run": True})
    )  # fmt: skip
    assert harness.wait_final(at_least)["result"]["predicted"] == 7
    stopped = harness.wait_final(below)
    assert stopped["result"]["exited"] is False and stopped["result"]["predicted"] is None
    assert stopped["claims"][0]["steps"] == 1_000


# --- bodies that are not JSON ----------------------------------------------------------------------------------


def test_json_routes_of_every_service_refuse_other_bodies_with_415_and_bad_json_with_400(harness):
    routes = {"submitter": "/inference-requests", "vm-worker": "/executions"}
    for name, path in routes.items():
        url = f"{harness.url(name)}{path}"
        form = httpx.post(url, data={"model": harness.model_id, "pixels": "0"}, timeout=30)
        assert form.status_code == 415, (name, form.text)
        assert form.json()["message"].startswith("send the body as JSON (content-type: application/json)")
        text = httpx.post(url, content=b"{}", headers={"content-type": "text/plain"}, timeout=30)
        assert text.status_code == 415, (name, text.text)
        garbage = httpx.post(url, content=b"{not json", headers={"content-type": "application/json"}, timeout=30)
        assert garbage.status_code == 400, (name, garbage.text)
        assert garbage.json() == {
            "error": "bad_input",
            "message": "the body is not valid JSON: Expecting property name enclosed in double quotes at character 1",
        }
        schema = httpx.get(f"{harness.url(name)}/openapi.json", timeout=30).json()
        assert {"400", "415"} <= set(schema["paths"][path]["post"]["responses"]), name
    # and the converter's upload, multipart, refuses JSON as before
    as_json = httpx.post(f"{harness.url('converter')}/models", json={"file": "x"}, timeout=30)
    assert as_json.status_code == 415


# --- Swagger UI in a browser, offline ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def browser():
    assert CHROMIUM.exists(), "Debian's chromium is not installed: `make install` installs it"
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture()
def offline_page(browser):
    """A page that can reach this machine only: any request to another host is blocked and noted (and must
    not happen); a script error fails the test."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    elsewhere: list[str] = []

    def only_here(route: Route) -> None:
        if urlparse(route.request.url).hostname == "127.0.0.1":
            route.continue_()
        else:
            elsewhere.append(route.request.url)
            route.abort()

    context.route("**/*", only_here)
    page = context.new_page()
    script_errors: list[str] = []
    page.on("pageerror", lambda error: script_errors.append(str(error)))
    yield page
    context.close()
    assert elsewhere == [], "the page tried to load from elsewhere"
    assert script_errors == []


def operation(page: Page, method: str, path: str):
    """The Swagger UI block of one operation, opened, in "Try it out" mode."""
    block = page.locator(f".opblock-{method}:has(.opblock-summary-path[data-path='{path}'])")
    block.locator(".opblock-summary").first.click()
    block.get_by_role("button", name="Try it out").click()
    return block


def shoot(page: Page, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=ARTIFACTS / f"{name}.png", full_page=True)


def executed(block) -> tuple[int, dict]:
    """Execute, and the status and the JSON body Swagger UI shows (an earlier response cleared first)."""
    clear = block.get_by_role("button", name="Clear")
    if clear.count():
        clear.click()
        block.locator(".live-responses-table").wait_for(state="detached")
    block.get_by_role("button", name="Execute").click()
    row = block.locator(".live-responses-table tbody tr.response").first
    row.wait_for(timeout=30_000)
    status = int(row.locator(".response-col_status").inner_text().strip())
    return status, json.loads(row.locator(".response-col_description pre.microlight").first.inner_text())


def test_swagger_ui_of_every_service_works_without_the_internet(harness, offline_page):
    page = offline_page
    for name, paths in OPERATIONS.items():
        page.goto(f"{harness.url(name)}/docs")
        page.locator(".opblock").first.wait_for(timeout=30_000)
        listed = set(page.locator(".opblock-summary-path").all_inner_texts())
        assert set(paths) <= {text.replace("\u200b", "") for text in listed}, (name, listed)
    page.goto(f"{harness.url('submitter')}/redoc")  # ReDoc too
    page.get_by_role("heading", name="Ask for an inference; the agents take it from there").wait_for(timeout=30_000)


def test_try_it_out_asks_for_an_inference_and_shows_its_dispute(harness, offline_page):
    """POST /inference-requests from the submitter's Swagger UI with a lying submitter about; then the game
    the challenger started against the liar, from the challenger's Swagger UI, and an unknown one."""
    page = offline_page
    body = {"model": harness.model_id, "input_base64": base64.b64encode(SEVEN).decode()}
    with running(harness, ("liar", "submitter", LIAR_ACCOUNT, {"SUBMITTER_FAULT_LIE": "output"})):
        page.goto(f"{harness.url('submitter')}/docs")
        block = operation(page, "post", "/inference-requests")
        block.locator("textarea.body-param__text").fill(json.dumps(body))
        status, shown = executed(block)
        shoot(page, "submitter-post-inference-request")
        assert status == 202, shown
        request_id = shown["request_id"]
        assert shown["url"] == f"/inference-requests/{request_id}" and shown["gas_used"] > 21_000
        liar, challenger = harness.address(LIAR_ACCOUNT), harness.address(CHALLENGER_ACCOUNT)
        # the challenger's game (the honest submitter disputes the lie too: it defends its result)
        games = wait_for(
            lambda: [g for g in harness.report(request_id).get("games", [])
                     if g["status"] != "active" and g["challenger"] == challenger],
            90,
            "the challenger's game against the liar to end",
        )  # fmt: skip
        (game,) = games
        page.goto(f"{harness.url('challenger')}/docs")
        block = operation(page, "get", "/disputes/{game_id}")
        block.locator("input[placeholder='game_id']").fill(str(game["id"]))
        status, shown = executed(block)
        shoot(page, "challenger-get-dispute")
        assert status == 200, shown
        assert (shown["id"], shown["status"], shown["request_id"]) == (game["id"], "challenger_won", request_id)
        assert shown["defender"] == liar and shown["winner"] == shown["challenger"]
        block.locator("input[placeholder='game_id']").fill("99999")
        status, shown = executed(block)
        assert status == 404 and shown["error"] == "not_found", shown
    assert harness.wait_final(request_id)["result"]["predicted"] == 7
