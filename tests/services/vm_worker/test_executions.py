"""The vm-worker's executions over real HTTP: the seed model, traces equal to the library's, step
limits, long runs, eviction and recomputation, replicas sharing a store."""

from __future__ import annotations

import struct
import time

import httpx
import pytest
from vm_worker.content import ExecutionSpec
from vm_worker.executions import Job

from opml.game.remote import execution_id
from opml.game.trace import LocalTrace
from opml.guest import INFERENCE, LARGE_OUTPUT, MALFORMED_OUTPUT, SPIN, built
from opml.models.formats import Prediction
from opml.models.reference import predict
from opml.protocol.dissection import interior_points
from opml.vm.elf import Program
from opml.vm.execution import Execution
from opml.vm.machine import Machine
from opml.vm.merkle import keccak256

from .conftest import b64, hex0x, metric, running_worker, spin_request, unhex

DEFAULT_STEP_LIMIT = 1 << 30
ZERO_SIBLINGS = ["0x" + "00" * 32] * 4


@pytest.fixture(scope="module")
def local_seed(seed_model, seed_input) -> Execution:
    execution = Execution(Program.from_file(built(INFERENCE.name)), model=seed_model, input=seed_input)
    execution.run()
    return execution


def test_the_seed_model_predicts_7_bit_identical_to_the_reference_and_the_local_vm(
    seed_execution, seed_model, seed_input, local_seed
):
    result = seed_execution["result"]
    assert seed_execution["status"] == "done" and seed_execution["error"] is None
    assert result["exited"] and result["exit_code"] == 0
    assert result["kind"] == "output" and result["output_proof"] is None
    output = unhex(result["output"])
    assert output == predict(seed_model, seed_input).to_bytes()
    assert Prediction.from_bytes(output).predicted == 7
    local = local_seed.run()
    assert output == local.output
    assert result["steps"] == seed_execution["steps_done"] == local.steps
    assert unhex(result["final_state"]) == local.final_state.encode()
    assert unhex(result["final_state_hash"]) == local.final_state.hash
    assert [unhex(s) for s in result["output_siblings"]] == local_seed.output_siblings()


def test_the_id_and_roots_are_the_contents(seed_execution, local_seed):
    roots = local_seed.region_roots()
    assert seed_execution["roots"] == {name: hex0x(root) for name, root in roots.items()}
    content = roots["program"] + roots["model"] + roots["input"] + struct.pack(">Q", DEFAULT_STEP_LIMIT)
    assert seed_execution["id"] == hex0x(keccak256(content))
    assert execution_id(roots["program"], roots["model"], roots["input"], DEFAULT_STEP_LIMIT) == keccak256(content)
    assert seed_execution["step_limit"] == DEFAULT_STEP_LIMIT
    assert seed_execution["initial_state_hash"] == hex0x(local_seed.initial_state.hash)


@pytest.mark.parametrize(
    "round_of",
    [
        lambda steps: [0, 1, *interior_points(0, steps, 16), steps - 1, steps, steps + 1, DEFAULT_STEP_LIMIT],
        lambda steps: interior_points(1_000_000, 1_000_040, 16),  # a narrow round, late in a game
        lambda steps: [steps, 5, 1_700_000, 5, 0, 600_000, steps + 9],  # unsorted, repeated
        lambda steps: [],
    ],
)
def test_state_hashes_are_the_librarys(worker, seed_execution, local_seed, round_of):
    steps = seed_execution["result"]["steps"]
    points = round_of(steps)
    response = httpx.post(f"{worker}/executions/{seed_execution['id']}/states", json={"steps": points})
    assert response.status_code == 200, response.text
    expected = LocalTrace(local_seed, DEFAULT_STEP_LIMIT).state_hashes(points)
    assert [unhex(h) for h in response.json()["hashes"]] == expected
    if steps + 1 in points:  # past the exit: the final state
        assert unhex(response.json()["hashes"][points.index(steps + 1)]) == local_seed.run().final_state.hash


def test_proofs_are_the_librarys(worker, seed_execution, local_seed):
    steps = seed_execution["result"]["steps"]
    for step in (0, 1000, 1_234_567, steps - 1, steps):
        response = httpx.get(f"{worker}/executions/{seed_execution['id']}/proof", params={"step": step})
        assert response.status_code == 200, response.text
        witness = response.json()
        assert witness == local_seed.proof_at(step).to_json()
        assert len(unhex(witness["proof"])) == 1792 and len(unhex(witness["pre_state"])) == 190


def test_the_golden_image_is_the_initial_state(worker, seed_execution, local_seed):
    golden = httpx.get(f"{worker}/executions/{seed_execution['id']}/golden").json()
    assert unhex(golden["initial_state"]) == local_seed.initial_state.encode()
    assert golden["initial_state_hash"] == seed_execution["initial_state_hash"]
    assert golden["roots"] == seed_execution["roots"]


@pytest.mark.parametrize(
    ("guest", "kind"), [(MALFORMED_OUTPUT, "malformed_output"), (LARGE_OUTPUT, "output_too_large")]
)
def test_an_output_region_with_no_output_comes_with_its_kind_and_proof(worker, guest, kind):
    program = Program.from_file(built(guest.name))
    local = LocalTrace(Execution(program), 1_000_000).final_claim()
    root = Execution(program).region_roots()["program"]
    response = httpx.post(f"{worker}/executions", json=spin_request(root, 1_000_000))
    assert response.status_code == 201, response.text
    result = response.json()["result"]
    assert result["kind"] == kind and result["exited"] and result["output"] == "0x"
    assert local.proof is not None and result["output_proof"] == local.proof.to_json()


def test_programs_are_listed_with_their_roots_and_entries(worker, spin_root):
    programs = {p["name"]: p for p in httpx.get(f"{worker}/programs").json()}
    assert {MALFORMED_OUTPUT.name, LARGE_OUTPUT.name} <= set(programs)
    inference = Program.from_file(built(INFERENCE.name))
    assert programs[INFERENCE.name]["default"] and not programs[SPIN.name]["default"]
    assert programs[INFERENCE.name]["root"] == hex0x(Execution(inference).region_roots()["program"])
    assert programs[INFERENCE.name]["entry"] == inference.entry
    assert programs[SPIN.name]["root"] == hex0x(spin_root)


def test_the_same_content_is_the_same_execution_and_a_stored_model_is_found_by_root(worker, seed_execution, seed_input):
    hits = metric(worker, "vm_worker_cache_hits_total")
    again = httpx.post(
        f"{worker}/executions",
        json={"model": {"root": seed_execution["roots"]["model"]}, "input_base64": b64(seed_input)},
    )
    assert again.status_code == 201 and again.json() == seed_execution
    assert again.headers["location"] == f"/executions/{seed_execution['id']}"
    assert metric(worker, "vm_worker_cache_hits_total") == hits + 1
    assert httpx.get(f"{worker}/executions/{seed_execution['id']}").json() == seed_execution


def test_a_program_that_never_exits_ends_at_its_step_limit(worker, spin_root):
    limit = 3_000_000
    response = httpx.post(f"{worker}/executions", json=spin_request(spin_root, limit))
    assert response.status_code == 201, response.text
    execution = response.json()
    result = execution["result"]
    local = LocalTrace(Execution(Program.from_file(built(SPIN.name))), limit)
    claim = local.final_claim()
    assert not result["exited"] and result["steps"] == limit and result["output"] == "0x"
    assert result["kind"] == "step_limit_reached" and result["output_proof"] is None
    assert result["output_siblings"] == ZERO_SIBLINGS
    assert unhex(result["final_state"]) == claim.state_data
    states = httpx.post(f"{worker}/executions/{execution['id']}/states", json={"steps": [limit // 2, limit]}).json()
    assert [unhex(h) for h in states["hashes"]] == local.state_hashes([limit // 2, limit])
    last = httpx.get(f"{worker}/executions/{execution['id']}/proof", params={"step": limit - 1})
    assert last.status_code == 200 and unhex(last.json()["post_state_hash"]) == claim.hash
    past = httpx.get(f"{worker}/executions/{execution['id']}/proof", params={"step": limit})
    assert past.status_code == 422 and "outside this execution's trace" in past.json()["message"]


def test_a_long_run_answers_202_and_is_polled_to_its_end(tmp_path, spin_root):
    limit = 1 << 28  # about a second and a half of VM time
    with running_worker(tmp_path, wait_seconds=0.05) as url:
        response = httpx.post(f"{url}/executions", json=spin_request(spin_root, limit))
        assert response.status_code == 202, response.text
        running = response.json()
        assert running["status"] == "running" and running["result"] is None
        assert response.headers["location"] == f"/executions/{running['id']}"
        progress = [running["steps_done"]]
        while (polled := httpx.get(f"{url}{response.headers['location']}").json())["status"] == "running":
            progress.append(polled["steps_done"])
        assert progress == sorted(progress) and 0 < progress[-1] < limit
        assert polled["status"] == "done" and polled["steps_done"] == limit
        assert polled["result"]["steps"] == limit and not polled["result"]["exited"]


def test_a_query_waits_for_the_run_it_needs(tmp_path, spin_root):
    limit = 1 << 27
    with running_worker(tmp_path, wait_seconds=0.0) as url:
        created = httpx.post(f"{url}/executions", json=spin_request(spin_root, limit))
        assert created.status_code == 202
        states = httpx.post(f"{url}/executions/{created.json()['id']}/states", json={"steps": [limit]}, timeout=60)
        assert states.status_code == 200
        done = httpx.get(f"{url}/executions/{created.json()['id']}").json()
        assert done["status"] == "done" and states.json()["hashes"] == [done["result"]["final_state_hash"]]


def test_stopping_the_worker_stops_its_runs(tmp_path, spin_root):
    with running_worker(tmp_path, wait_seconds=0.0, max_step_limit=1 << 40) as url:
        response = httpx.post(f"{url}/executions", json=spin_request(spin_root, 1 << 40))  # hours of VM time
        assert response.status_code == 202
        time.sleep(0.2)
        stopping = time.monotonic()
    assert time.monotonic() - stopping < 5


def test_a_run_beyond_the_memory_budget_is_refused_while_others_run(tmp_path, spin_root):
    with running_worker(tmp_path, wait_seconds=0.0, cache_bytes=6 << 20) as url:  # room for one execution
        assert httpx.post(f"{url}/executions", json=spin_request(spin_root, 1 << 30)).status_code == 202
        busy = httpx.post(f"{url}/executions", json=spin_request(spin_root, (1 << 30) + 1))
        assert busy.status_code == 503 and "busy" in busy.json()["message"]


def test_an_evicted_execution_is_recomputed_from_the_store(tmp_path, seed_model, seed_input, local_seed):
    with running_worker(tmp_path, cache_bytes=1) as url:
        first = httpx.post(
            f"{url}/executions", json={"model": {"base64": b64(seed_model)}, "input_base64": b64(seed_input)}
        ).json()
        other = httpx.post(
            f"{url}/executions", json={"model": {"base64": b64(seed_model)}, "input_base64": b64(bytes(784))}
        ).json()
        assert other["id"] != first["id"] and metric(url, "vm_worker_cached_executions") == 0
        misses = metric(url, "vm_worker_cache_misses_total")
        assert httpx.get(f"{url}/executions/{first['id']}").json() == first
        assert metric(url, "vm_worker_cache_misses_total") == misses + 1
        witness = httpx.get(f"{url}/executions/{first['id']}/proof", params={"step": 777_777}).json()
        assert witness == local_seed.proof_at(777_777).to_json()  # evicted again after the GET: run a third time
        assert metric(url, "vm_worker_cache_misses_total") == misses + 2
        assert metric(url, "vm_worker_executions_total") == 4


def test_a_replica_sharing_the_store_answers_for_executions_it_never_saw(store_dir, seed_execution, local_seed):
    with running_worker(store_dir) as replica:
        assert httpx.get(f"{replica}/executions/{seed_execution['id']}").json() == seed_execution
        states = httpx.post(f"{replica}/executions/{seed_execution['id']}/states", json={"steps": [5, 500_000]})
        assert [unhex(h) for h in states.json()["hashes"]] == [local_seed.state_at(s).hash for s in (5, 500_000)]


def test_metrics_count_runs_steps_and_vm_time(worker, seed_execution):
    text = httpx.get(f"{worker}/metrics").text
    assert metric(worker, "vm_worker_executions_total") >= 1 and 'outcome="exited"' in text
    assert metric(worker, "vm_worker_vm_steps_total") >= seed_execution["result"]["steps"]
    assert metric(worker, "vm_worker_vm_seconds_total") > 0
    assert metric(worker, "vm_worker_cached_bytes") > 4_000_000  # a page table alone is 4 MiB


def test_a_wide_round_starts_each_state_from_its_nearest_snapshot(monkeypatch):
    """The first round of a long run asks for states spread over the whole trace: none of them may cost a
    re-execution of the stretch between it and the previous one (a 1.6e10-step run took 45 s for a round)."""
    limit = 1 << 24
    execution = Execution(Program.from_file(built(SPIN.name)), snapshot_interval=1 << 16)
    job = Job(ExecutionSpec(bytes(32), bytes(32), bytes(32), limit), execution)
    job.finish(execution.run_bounded(limit), job.trace.final_claim())
    executed = []
    run = Machine.run
    monkeypatch.setattr(
        Machine, "run", lambda machine, steps, **kw: executed.append(steps) or run(machine, steps, **kw)
    )
    steps = interior_points(0, limit, 16)
    hashes = job.state_hashes(steps)
    assert sum(executed) < len(steps) * (1 << 16)  # at most a snapshot interval per state
    monkeypatch.undo()
    assert hashes == [execution.state_at(step).hash for step in steps]
    narrow = list(range(5_000_000, 5_000_015))  # a late round: one restore, then forward step by step
    executed.clear()
    monkeypatch.setattr(
        Machine, "run", lambda machine, steps, **kw: executed.append(steps) or run(machine, steps, **kw)
    )
    job.state_hashes(narrow)
    assert sum(executed) == narrow[-1] - execution.snapshot_step_before(narrow[0])
