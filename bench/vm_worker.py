"""vm-worker benchmark: a real `python -m vm_worker` process over HTTP.

    python bench/vm_worker.py [--json]

Prints its figures; the last line is one JSON object. Targets on the 2-core dev machine:
executions_per_s >= 40 (the seed model, distinct inputs, 2 concurrent clients),
states_query_ms_median <= 50 (15 states of one execution: one 16-ary round),
proof_ms_median <= 30, cold_start_s <= 5 (process start to /readyz, numba cache warm on
disk). upload_ms_median comes from bench/converter_upload.py when it exists.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

from opml import resources
from opml.guest import SPIN, built
from opml.protocol.dissection import interior_points
from opml.service.testing import free_port
from opml.vm.elf import Program
from opml.vm.execution import Execution

EXECUTIONS = 240
CLIENTS = 2
QUERIES = 30
ARITY = 16
READY_TIMEOUT = 60.0
HERE = Path(__file__).resolve().parent


def warm_numba_cache() -> None:
    """Compile (or load) the VM's functions once here, so the worker's start measures a warm disk cache."""
    Execution(Program.from_file(built(SPIN.name))).proof_at(10)


def start_worker(store_dir: str, port: int) -> tuple[subprocess.Popen, float]:
    """The worker as its own process; returns it and the seconds from start to /readyz true."""
    env = {
        **os.environ,
        "VM_WORKER_PORT": str(port),
        "VM_WORKER_STORE_DIR": store_dir,
        "VM_WORKER_CONVERTER_URL": "",
        "VM_WORKER_LOG_LEVEL": "warning",
    }
    started = time.perf_counter()
    process = subprocess.Popen([sys.executable, "-m", "vm_worker"], env=env, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    while True:
        try:
            if httpx.get(f"{url}/readyz", timeout=1).status_code == 200:
                return process, time.perf_counter() - started
        except httpx.TransportError:
            pass
        if process.poll() is not None or time.perf_counter() - started > READY_TIMEOUT:
            process.kill()
            raise RuntimeError("the vm-worker did not become ready")
        time.sleep(0.01)


def distinct_inputs(base: bytes, count: int) -> list[bytes]:
    """The seed's 7 with one pixel changed per copy: each a new execution, all about as long."""
    inputs = []
    for index in range(count):
        pixels = bytearray(base)
        pixels[index % len(pixels)] = (pixels[index % len(pixels)] + 1 + index // len(pixels)) % 256
        inputs.append(bytes(pixels))
    return inputs


def cpu_seconds(pid: int) -> float:
    """CPU time (user + system) a process has used so far, from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def executions_per_second(url: str, model_root: str, inputs: list[bytes]) -> float:
    """Create every execution from CLIENTS threads, each posting one after another."""
    shares = [inputs[index::CLIENTS] for index in range(CLIENTS)]
    failures: list[str] = []

    def client(share: list[bytes]) -> None:
        with httpx.Client(base_url=url, timeout=60) as http:
            for data in share:
                body = {"model": {"root": model_root}, "input_base64": base64.b64encode(data).decode()}
                response = http.post("/executions", json=body)
                if response.status_code != 201 or response.json()["result"]["exit_code"] != 0:
                    failures.append(response.text[:200])

    threads = [threading.Thread(target=client, args=(share,)) for share in shares]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    assert not failures, failures[:3]
    return len(inputs) / elapsed


def timed_ms(action) -> float:
    started = time.perf_counter()
    action()
    return (time.perf_counter() - started) * 1000


def states_query_ms(http: httpx.Client, execution: dict, rng: random.Random) -> list[float]:
    """One 16-ary round (15 interior states) of an interval as a game would ask for it."""
    steps = execution["result"]["steps"]
    timings = []
    for _ in range(QUERIES):
        lo = rng.randrange(0, steps // 2)
        points = interior_points(lo, rng.randrange(lo + steps // 4, steps + 1), ARITY)
        path = f"/executions/{execution['id']}/states"
        timings.append(timed_ms(lambda: http.post(path, json={"steps": points}).raise_for_status()))
    return timings


def proof_ms(http: httpx.Client, execution: dict, rng: random.Random) -> list[float]:
    steps = execution["result"]["steps"]
    path = f"/executions/{execution['id']}/proof"
    return [
        timed_ms(lambda: http.get(path, params={"step": rng.randrange(steps)}).raise_for_status())
        for _ in range(QUERIES)
    ]


def converter_upload_ms() -> float | None:
    """The converter's figure, from its own benchmark if it has been written."""
    script = HERE / "converter_upload.py"
    if not script.exists():
        return None
    done = subprocess.run([sys.executable, str(script), "--json"], capture_output=True, text=True, timeout=60)
    if done.returncode != 0:
        raise RuntimeError(f"bench/converter_upload.py failed: {done.stderr[-500:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])["upload_ms_median"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print only the JSON line")
    args = parser.parse_args()
    say = (lambda *a: None) if args.json else print

    model = (resources.seed_model_dir() / "model.bin").read_bytes()
    seed_input = (resources.seed_model_dir() / "input_7.bin").read_bytes()
    warm_numba_cache()
    rng = random.Random(7)
    with tempfile.TemporaryDirectory(prefix="bench-vm-worker-") as store_dir:
        port = free_port()
        process, cold_start_s = start_worker(store_dir, port)
        try:
            url = f"http://127.0.0.1:{port}"
            with httpx.Client(base_url=url, timeout=60) as http:
                first = http.post(
                    "/executions",
                    json={"model": {"base64": base64.b64encode(model).decode()}, "input_base64": ""},
                )
                model_root = first.raise_for_status().json()["roots"]["model"]  # now in the worker's store
                cpu_before = cpu_seconds(process.pid)
                rate = executions_per_second(url, model_root, distinct_inputs(seed_input, EXECUTIONS))
                cpu_ms = (cpu_seconds(process.pid) - cpu_before) * 1000 / EXECUTIONS
                execution = http.post(
                    "/executions",
                    json={"model": {"root": model_root}, "input_base64": base64.b64encode(seed_input).decode()},
                ).json()
                states = states_query_ms(http, execution, rng)
                proofs = proof_ms(http, execution, rng)
        finally:
            process.terminate()
            process.wait(timeout=30)
    upload = converter_upload_ms()

    figures = {
        "executions_per_s": round(rate, 1),
        "states_query_ms_median": round(statistics.median(states), 2),
        "proof_ms_median": round(statistics.median(proofs), 2),
        "cold_start_s": round(cold_start_s, 2),
        "upload_ms_median": upload,
        "worker_cpu_ms_per_execution": round(cpu_ms, 1),  # to tell a slow worker from a busy machine
    }
    say(f"cold start          {cold_start_s:8.2f} s   process start to /readyz (target <= 5)")
    say(f"executions          {rate:8.1f} /s  seed model, {EXECUTIONS} distinct inputs, {CLIENTS} clients (>= 40)")
    say(f"  worker CPU        {cpu_ms:8.1f} ms per execution (the machine's load shows in the rate, not here)")
    say(f"states query        {figures['states_query_ms_median']:8.2f} ms  median, 15 states (<= 50)")
    say(f"proof               {figures['proof_ms_median']:8.2f} ms  median (<= 30)")
    say(f"converter upload    {upload if upload is not None else 'n/a':>8} ms  median")
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
