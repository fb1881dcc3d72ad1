"""Replicas behind one URL with the job queue (procrastinate on a real PostgreSQL server) and a shared run
store: a run is executed once, by one replica, and every replica answers for it."""

from __future__ import annotations

import os
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest
from vm_worker.runs import RunStore

from opml.game.remote import ExecutionRequest, NodeRun
from opml.graph.native import evaluate
from opml.guest import NODE, SPIN, built
from opml.service.testing import free_port
from opml.stack import ServiceProcess
from opml.vm import execution as execution_module
from opml.vm.elf import Program
from opml.vm.execution import Execution

from .conftest import metric, running_worker, spin_request, unhex

LONG_RUN = 1 << 31  # over ten seconds of VM time: polls see it run even when replicas in one process share the GIL


class RoundRobin:
    """One URL in front of several replicas: each request goes to the next one in turn (what a load
    balancer or compose's service name does)."""

    def __init__(self, targets: list[str]):
        self.targets = targets
        self.served_by: list[str] = []
        self._next = 0
        self._lock = threading.Lock()
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                self._forward()

            def do_POST(self):
                self._forward()

            def _forward(self):
                body = self.rfile.read(int(self.headers.get("content-length", 0)))
                target = proxy.pick()
                headers = {"content-type": self.headers.get("content-type", "application/json")}
                answer = httpx.request(self.command, target + self.path, content=body, headers=headers, timeout=120)
                self.send_response(answer.status_code)
                for name in ("content-type", "location"):
                    if name in answer.headers:
                        self.send_header(name, answer.headers[name])
                self.send_header("content-length", str(len(answer.content)))
                self.end_headers()
                self.wfile.write(answer.content)

            def log_message(self, *args):
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self._server.server_port}"

    def pick(self) -> str:
        with self._lock:
            target = self.targets[self._next % len(self.targets)]
            self._next += 1
            self.served_by.append(target)
            return target

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


@pytest.fixture
def queue_url(postgres_server) -> str:
    """A database of its own per test: the queue's tables are created by the first replica."""
    return postgres_server.url.rsplit("/", 1)[0] + f"/vm_queue_{uuid.uuid4().hex[:8]}"


@pytest.fixture
def replicas(tmp_path, queue_url):
    """Two vm-workers sharing a store directory and a job queue, and one URL in front of them."""
    with ExitStack() as stack:
        urls = [stack.enter_context(running_worker(tmp_path, queue_url=queue_url, wait_seconds=0.05)) for _ in range(2)]
        balancer = RoundRobin(urls)
        stack.callback(balancer.close)
        yield urls, balancer


def runs_executed(urls: list[str]) -> float:
    return sum(metric(url, "vm_worker_executions_total") for url in urls)


def test_a_long_run_asked_through_one_replica_and_queried_through_the_other_runs_once(replicas, spin_root):
    urls, balancer = replicas
    created = httpx.post(f"{balancer.url}/executions", json=spin_request(spin_root, LONG_RUN), timeout=60)
    assert created.status_code == 202, created.text
    assert created.json()["status"] in ("queued", "running")
    location = created.headers["location"]
    seen_running_elsewhere, polls = False, []
    while (polled := httpx.get(f"{balancer.url}{location}", timeout=30).json())["status"] != "done":
        assert polled["status"] in ("queued", "running"), polled
        polls.append((polled["status"], polled["steps_done"]))
        seen_running_elsewhere |= polled["status"] == "running" and polled["steps_done"] > 0
    steps = [1, 12_345, LONG_RUN // 3, LONG_RUN]
    answers = [httpx.post(f"{balancer.url}{location}/states", json={"steps": steps}, timeout=60) for _ in urls]
    assert set(balancer.served_by[-2:]) == set(urls)  # one query through each replica
    assert answers[0].json() == answers[1].json()
    hashes = [unhex(h) for h in answers[0].json()["hashes"]]
    local = Execution(Program.from_file(built(SPIN.name)))
    assert hashes[:2] == [local.state_at(1).hash, local.state_at(12_345).hash]
    assert hashes[-1] == unhex(polled["result"]["final_state_hash"])
    proofs = [httpx.get(f"{url}{location}/proof", params={"step": 12_345}, timeout=60).json() for url in urls]
    assert proofs[0] == proofs[1] == local.proof_at(12_345).to_json()
    assert seen_running_elsewhere, f"progress of the run was visible while it ran: {polls}"
    assert runs_executed(urls) == 1
    assert sum(metric(url, "vm_worker_runs_loaded_total") for url in urls) == 1  # the other replica loaded it


def test_the_same_run_asked_of_both_replicas_at_once_runs_once(replicas, spin_root):
    urls, _ = replicas
    request = spin_request(spin_root, 1 << 26)
    with ThreadPoolExecutor(4) as pool:
        created = list(pool.map(lambda url: httpx.post(f"{url}/executions", json=request, timeout=60), urls * 2))
    assert {response.json()["id"] for response in created} == {created[0].json()["id"]}
    location = created[0].headers["location"]
    finals = [httpx.get(f"{url}{location}", timeout=30) for url in urls]
    while any(final.json()["status"] != "done" for final in finals):
        finals = [httpx.get(f"{url}{location}", timeout=30) for url in urls]
    assert finals[0].json()["result"] == finals[1].json()["result"]
    assert runs_executed(urls) == 1


def test_a_node_run_asked_of_both_replicas_at_once_runs_once_and_both_answer_for_it(replicas, seed_model, seed_input):
    """A node run goes through the queue like a whole run (a MiniLM node runs 1e9 steps): one replica runs it,
    the other loads it from the run store, and both answer its states and proofs; here the seed model's first
    node, on the input (2.3 million steps)."""
    urls, _ = replicas
    run = evaluate(seed_model, seed_input)
    request = ExecutionRequest(
        step_limit=1 << 30, input=seed_input, model=seed_model, node=NodeRun(0, run.node_count, run.operands(0))
    ).to_json()
    with ThreadPoolExecutor(4) as pool:
        created = list(pool.map(lambda url: httpx.post(f"{url}/executions", json=request, timeout=60), urls * 2))
    assert {response.json()["id"] for response in created} == {created[0].json()["id"]}
    location = created[0].headers["location"]
    finals = [httpx.get(f"{url}{location}", timeout=30).json() for url in urls]
    while any(final["status"] != "done" for final in finals):
        assert all(final["status"] in ("queued", "running", "done") for final in finals), finals
        finals = [httpx.get(f"{url}{location}", timeout=30).json() for url in urls]
    assert finals[0] == finals[1] and unhex(finals[0]["result"]["output"]) == run.values[1]
    local = Execution.node_run(
        Program.from_file(built(NODE.name)),
        model=seed_model,
        input=seed_input,
        node=0,
        node_count=run.node_count,
        operands=run.operands(0),
    )
    steps = [7, 1_234_567, finals[0]["result"]["steps"]]
    for url in urls:
        hashes = httpx.post(f"{url}{location}/states", json={"steps": steps}, timeout=60).json()["hashes"]
        assert [unhex(h) for h in hashes] == [local.state_at(step).hash for step in steps]
        proof = httpx.get(f"{url}{location}/proof", params={"step": 1_234_567}, timeout=60).json()
        assert proof == local.proof_at(1_234_567).to_json()
    assert runs_executed(urls) == 1
    assert sum(metric(url, "vm_worker_runs_loaded_total") for url in urls) == 1


def test_a_replica_that_joins_later_loads_the_saved_run_instead_of_running_it(tmp_path, queue_url, spin_root):
    request = spin_request(spin_root, 1 << 25)
    with running_worker(tmp_path, queue_url=queue_url, wait_seconds=30) as first:
        done = httpx.post(f"{first}/executions", json=request, timeout=60).json()
        assert done["status"] == "done" and metric(first, "vm_worker_executions_total") == 1
    with running_worker(tmp_path, queue_url=queue_url, wait_seconds=30) as later:
        again = httpx.post(f"{later}/executions", json=request, timeout=60).json()
        assert again["result"] == done["result"]
        assert metric(later, "vm_worker_executions_total") == 0
        assert metric(later, "vm_worker_runs_loaded_total") == 1


@pytest.mark.slow  # a dead worker is declared after 30 s
def test_a_run_whose_replica_is_killed_is_taken_over_by_another(tmp_path, queue_url, spin_root):
    """SIGKILL mid-run: no goodbye to the queue. The dead worker's heartbeat stops, a live replica gives
    its job back and runs it to the end."""
    port = free_port()
    env = {
        **os.environ,
        "VM_WORKER_PORT": str(port),
        "VM_WORKER_STORE_DIR": str(tmp_path),
        "VM_WORKER_QUEUE_URL": queue_url,
        "VM_WORKER_CONVERTER_URL": "",
        "VM_WORKER_MAX_STEP_LIMIT": str(1 << 40),
        "VM_WORKER_WAIT_SECONDS": "0.2",
    }
    doomed = ServiceProcess("doomed", "vm_worker", env, f"http://127.0.0.1:{port}", echo=False)
    try:
        doomed.wait_ready(timeout=60)
        request = spin_request(spin_root, 1 << 31)  # over ten seconds of VM time: killed long before its end
        created = httpx.post(f"{doomed.url}/executions", json=request, timeout=60).json()
        while (seen := httpx.get(f"{doomed.url}/executions/{created['id']}", timeout=60).json())["steps_done"] == 0:
            assert seen["status"] in ("queued", "running")
        doomed.kill()
    finally:
        doomed.stop()
    with running_worker(tmp_path, queue_url=queue_url, wait_seconds=1, max_step_limit=1 << 40) as survivor:
        taken_over = time.monotonic()
        while (polled := httpx.get(f"{survivor}/executions/{created['id']}", timeout=30).json())["status"] != "done":
            assert polled["status"] in ("queued", "running"), polled
            assert time.monotonic() - taken_over < 300
        assert polled["result"]["steps"] == 1 << 31 and not polled["result"]["exited"]
        assert metric(survivor, "vm_worker_executions_total") == 1


def test_a_thinned_run_survives_the_run_store_round_trip(tmp_path, monkeypatch):
    """Past MAX_SNAPSHOTS the run keeps every other snapshot: what is saved, written, read and restored
    must still give every state and proof of a fresh execution."""
    monkeypatch.setattr(execution_module, "MAX_SNAPSHOTS", 8)
    program = Program.from_file(built(SPIN.name))
    store = RunStore(tmp_path)
    for limit, key in ((50_000, b"\x01" * 32), (77_777, b"\x02" * 32)):
        ran = Execution(program, snapshot_interval=1_000)
        ran.run_bounded(limit)
        assert ran.snapshot_interval > 1_000  # thinned
        store.save_run(key, ran.saved_run())
        restored = Execution(program)
        restored.restore_run(store.load_run(key))
        assert restored.run_bounded(limit) == ran.run_bounded(limit)
        fresh = Execution(program, snapshot_interval=limit + 1)
        for step in (0, 999, 1_000, limit // 2 + 3, limit - 1, limit):
            assert restored.state_at(step) == fresh.state_at(step), step
            if step < limit:
                assert restored.proof_at(step) == fresh.proof_at(step), step


def test_a_replica_whose_queue_is_unreachable_is_not_ready_and_still_stops(tmp_path):
    unreachable = f"postgresql://postgres@127.0.0.1:{free_port()}/vm_queue"
    with running_worker(tmp_path, queue_url=unreachable, wait_ready=False) as url:
        deadline = time.monotonic() + 60
        while "failing" not in (checks := httpx.get(f"{url}/readyz", timeout=30).json()["checks"]).get("queue", ""):
            assert time.monotonic() < deadline, checks
            time.sleep(0.2)
        assert httpx.get(f"{url}/readyz", timeout=30).status_code == 503
        stopping = time.monotonic()
    assert time.monotonic() - stopping < 10
