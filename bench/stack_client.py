"""The HTTP calls the benchmarks make on a running stack (opml.stack.Stack): requests, reports, disputes, and a
poll until a condition holds."""

from __future__ import annotations

import base64
import time

import httpx

from opml.stack import Stack


class ServicesClient:
    def __init__(self, stack: Stack, timeout: float = 60, program_id: int | None = None):
        self.stack = stack
        self.http = httpx.Client(timeout=timeout)
        self.program_id = program_id  # None: the one the submitter picks for the model

    def upload(self, name: str, model: bytes) -> str:
        """A model file uploaded to the converter and registered on-chain: its id."""
        response = self.http.post(f"{self.stack.url('converter')}/models", files={"file": (name, model)},
                                  data={"register": "true"})  # fmt: skip
        response.raise_for_status()
        return response.json()["id"]

    def request(self, model_id: str, input: bytes) -> int:
        body = {"model": model_id, "input_base64": base64.b64encode(input).decode()}
        if self.program_id is not None:
            body["program"] = self.program_id
        response = self.http.post(f"{self.stack.url('submitter')}/inference-requests", json=body)
        response.raise_for_status()
        return response.json()["request_id"]

    def report(self, request_id: int) -> dict:
        response = self.http.get(f"{self.stack.url('submitter')}/inference-requests/{request_id}")
        return response.json() if response.status_code == 200 else {}

    def dispute(self, game_id: int) -> dict:
        return self.http.get(f"{self.stack.url('challenger')}/disputes/{game_id}").json()

    def until(self, condition, timeout: float = 60.0, interval: float = 0.05):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            value = condition()
            if value:
                return value
            time.sleep(interval)
        raise TimeoutError("the bench waited too long")
