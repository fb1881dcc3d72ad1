"""Converter benchmark: how long one upload of the seed's state_dict takes, over HTTP.

    python bench/converter_upload.py [--json]

Starts a fresh converter (`python -m converter`, its own process and a temporary data dir),
uploads the seed MNIST state_dict 20 times as 20 distinct files (one weight perturbed in
each, so every upload is converted, checked, hashed and stored: 201, never the 200 of a
re-upload), and reports the median time of one upload as the client sees it. Prints its
figures; the last line is one JSON object: {"upload_ms_median": ...}. bench/vm_worker.py
calls `upload_ms_median()` through this script.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import torch

from opml.service.testing import free_port

SEED_STATE_DICT = Path(__file__).resolve().parents[1] / "models" / "seed-mnist" / "mnist-small.state_dict"
UPLOADS = 20
START_TIMEOUT_S = 60.0


def distinct_state_dicts(count: int) -> list[bytes]:
    """The seed's state_dict `count` times, fc2.bias[0] nudged differently in each."""
    weights = torch.load(SEED_STATE_DICT, map_location="cpu", weights_only=True)
    files = []
    for index in range(count):
        nudged = {name: tensor.clone() for name, tensor in weights.items()}
        nudged["fc2.bias"][0] += (index + 1) * 1e-3
        buffer = io.BytesIO()
        torch.save(nudged, buffer)
        files.append(buffer.getvalue())
    return files


def start_converter(data_dir: str, port: int) -> subprocess.Popen:
    environment = {**os.environ, "CONVERTER_PORT": str(port), "CONVERTER_DATA_DIR": data_dir,
                   "CONVERTER_LOG_LEVEL": "warning"}  # fmt: skip
    return subprocess.Popen([sys.executable, "-m", "converter"], env=environment, stderr=subprocess.DEVNULL)


def wait_until_ready(http: httpx.Client, process: subprocess.Popen) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the converter exited with status {process.returncode}")
        try:
            if http.get("/readyz").status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"the converter was not ready within {START_TIMEOUT_S} s")


def upload_ms_median(uploads: int = UPLOADS) -> float:
    """Median milliseconds of one upload of the seed state_dict to a fresh converter."""
    files = distinct_state_dicts(uploads)
    port = free_port()
    with tempfile.TemporaryDirectory() as data_dir:
        process = start_converter(data_dir, port)
        try:
            with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=60) as http:
                wait_until_ready(http, process)
                return statistics.median(timed_upload_ms(http, data) for data in files)
        finally:
            process.terminate()
            process.wait(timeout=10)


def timed_upload_ms(http: httpx.Client, data: bytes) -> float:
    start = time.perf_counter()
    response = http.post("/models", files={"file": ("mnist-small.state_dict", data)})
    elapsed = (time.perf_counter() - start) * 1000
    if response.status_code != 201:
        raise RuntimeError(f"upload answered {response.status_code}: {response.text[:200]}")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print only the JSON line")
    args = parser.parse_args()
    median = round(upload_ms_median(), 2)
    if not args.json:
        print(f"converter upload (seed state_dict, {UPLOADS} distinct files): {median} ms median")
    print(json.dumps({"upload_ms_median": median}))


if __name__ == "__main__":
    main()
