"""RemoteTrace: the TraceProvider over a vm-worker gives exactly what LocalTrace gives."""

from __future__ import annotations

import pytest

from opml.errors import NotFound
from opml.game.remote import ExecutionRequest, RemoteTrace, create_execution
from opml.game.solver import Solver
from opml.game.trace import LocalTrace
from opml.guest import INFERENCE, MALFORMED_OUTPUT, SPIN, built
from opml.protocol import dissection
from opml.service.clients import ServiceClient
from opml.service.testing import free_port
from opml.vm.elf import Program
from opml.vm.execution import Execution
from opml.vm.output import ResultKind

from .conftest import running_worker

STEP_LIMIT = 1 << 30
ARITY = 16


@pytest.fixture(scope="module")
def seed_request(seed_model, seed_input) -> ExecutionRequest:
    return ExecutionRequest(step_limit=STEP_LIMIT, input=seed_input, model=seed_model)


@pytest.fixture(scope="module")
def local(seed_model, seed_input) -> LocalTrace:
    return LocalTrace(
        Execution(Program.from_file(built(INFERENCE.name)), model=seed_model, input=seed_input), STEP_LIMIT
    )


def test_a_remote_trace_is_the_local_trace(worker, seed_request, local):
    remote = RemoteTrace(worker, seed_request)
    claim = remote.final_claim()
    assert claim == local.final_claim() and claim.exited and claim.steps > 1_000_000
    steps = [0, 1, 999, 123_456, claim.steps - 1, claim.steps, claim.steps + 5]
    assert remote.state_hashes(steps) == local.state_hashes(steps)
    for step in (0, 4321, claim.steps - 1):
        assert remote.step_witness(step) == local.step_witness(step)
    assert remote.roots() == local.execution.region_roots()
    assert remote.initial_state_hash() == local.execution.initial_state.hash


def test_a_solver_plays_the_same_moves_from_either_trace(worker, seed_request, local):
    remote, truth = Solver(RemoteTrace(worker, seed_request), ARITY), Solver(local, ARITY)
    lo, hi = 0, truth.claim().steps
    while hi - lo > 1:
        bisection = remote.bisection(lo, hi)
        assert bisection == truth.bisection(lo, hi)
        lie = min(3, len(bisection) - 1)
        lying = [b"\x01" * 32 if i == lie else h for i, h in enumerate(bisection)]
        index = remote.disputed_segment(lo, hi, lying)
        assert index == truth.disputed_segment(lo, hi, lying) == lie
        lo, hi = dissection.segment(lo, hi, ARITY, index)
    assert remote.step_witness(lo) == truth.step_witness(lo)


def test_a_trace_by_id_reads_what_the_worker_has(worker, seed_execution, local):
    assert RemoteTrace(worker, seed_execution["id"]).final_claim() == local.final_claim()
    with pytest.raises(NotFound):
        RemoteTrace(worker, "0x" + "ee" * 32).final_claim()


def test_a_step_limited_run_and_a_long_one_through_the_helper(tmp_path):
    spin = Program.from_file(built(SPIN.name))
    spin_root = Execution(spin).region_roots()["program"]
    limit = 1 << 26
    with running_worker(tmp_path, wait_seconds=0.0) as url:
        client = ServiceClient("vm-worker", url)
        created = create_execution(client, ExecutionRequest(step_limit=limit, program_root=spin_root))
        assert created["status"] == "done" and created["result"]["steps"] == limit
        remote = RemoteTrace(client, created["id"])
        assert remote.final_claim() == LocalTrace(Execution(spin), limit).final_claim()


def test_a_malformed_output_region_comes_back_with_its_kind_and_proof(worker):
    """So an agent that computes on a worker can finalize every kind (finalizeMalformed needs the proof)."""
    program = Program.from_file(built(MALFORMED_OUTPUT.name))
    root = Execution(program).region_roots()["program"]
    remote = RemoteTrace(worker, ExecutionRequest(step_limit=1_000_000, program_root=root))
    claim = remote.final_claim()
    assert claim == LocalTrace(Execution(program), 1_000_000).final_claim()
    assert claim.kind == ResultKind.MALFORMED_OUTPUT and claim.proof is not None


def test_the_golden_image_is_known_before_the_run_ends(tmp_path):
    spin = Program.from_file(built(SPIN.name))
    local = Execution(spin)
    request = ExecutionRequest(step_limit=1 << 30, program_root=local.region_roots()["program"])  # seconds of VM time
    with running_worker(tmp_path, wait_seconds=0.0) as url:
        remote = RemoteTrace(url, request)
        assert remote.initial_state_hash() == local.initial_state.hash
        assert remote.roots() == local.region_roots()
        assert ServiceClient("vm-worker", url).get(f"/executions/{remote.execution_id}").json()["status"] == "running"


def test_a_trace_with_its_request_survives_a_worker_that_forgot_it(tmp_path, seed_request, local):
    port = free_port()
    with running_worker(tmp_path / "first", port=port) as url:
        remote = RemoteTrace(url, seed_request)
        assert remote.final_claim() == local.final_claim()
    with running_worker(tmp_path / "second", port=port):  # a new worker, an empty store
        assert remote.state_hashes([77_777]) == local.state_hashes([77_777])
