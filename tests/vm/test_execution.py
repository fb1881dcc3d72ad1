"""The run API: states at any step agree with a fresh run; proofs check out."""

import random

import pytest

from opml.guest import built
from opml.vm import execution as execution_module
from opml.vm import layout as L
from opml.vm.elf import Program
from opml.vm.execution import Execution, StepLimitExceeded
from opml.vm.machine import Machine
from opml.vm.merkle import root_from_proof, verify_leaf_proof

CONTROL = Program.from_file(built("tests/control"))
SYSCALLS = Program.from_file(built("tests/syscalls"))


def fresh_state(program, steps, **inputs):
    machine = Machine.boot(program, **inputs)
    machine.run(steps)
    return machine.state()


@pytest.fixture(scope="module")
def control_run():
    execution = Execution(CONTROL, snapshot_interval=500)
    result = execution.run()
    return execution, result


def test_run_keeps_snapshots(control_run):
    execution, result = control_run
    assert result.steps > 5000
    assert len(execution.snapshots) == result.steps // 500 + 1 + (result.steps % 500 > 0)
    assert [s.step for s in execution.snapshots] == sorted({s.step for s in execution.snapshots})


def test_state_at_matches_a_fresh_run_at_any_step(control_run):
    execution, result = control_run
    rng = random.Random(1)
    steps = [0, 1, 499, 500, 501, 1000, result.steps - 1, result.steps] + rng.sample(range(result.steps), 15)
    rng.shuffle(steps)  # queries in any order
    for step in steps:
        assert execution.state_at(step) == fresh_state(CONTROL, step), step


def test_states_past_the_exit_are_the_final_state(control_run):
    execution, result = control_run
    assert execution.state_at(result.steps + 1) == result.final_state
    assert execution.state_at(result.steps * 10) == result.final_state
    assert result.final_state.step == result.steps


def test_initial_state_and_region_roots():
    execution = Execution(SYSCALLS, input=b"abc", model=b"model")
    state = execution.initial_state
    assert state.pc == SYSCALLS.entry and state.next_pc == SYSCALLS.entry + 4
    assert state.registers[29] == L.STACK_TOP and state.heap == L.HEAP_START
    assert state.step == 0 and not state.exited
    roots = execution.region_roots()
    other = Execution(SYSCALLS, input=b"abd", model=b"model").region_roots()
    assert roots["program"] == other["program"] and roots["model"] == other["model"]
    assert roots["input"] != other["input"]


def test_proof_at_every_step_of_a_program():
    execution = Execution(SYSCALLS, snapshot_interval=100)
    final = execution.run()
    for step in range(final.steps + 2):
        witness = execution.proof_at(step)
        pre, post = witness.pre_state, witness.post_state
        assert pre == execution.state_at(step)
        assert post == execution.state_at(step + 1)
        assert len(witness.proof) == 2 * 896
        assert verify_leaf_proof(witness.instruction_proof, pre.pc & ~3, pre.mem_root)
        if witness.data_address is None:
            assert witness.data_proof == witness.instruction_proof
            assert post.mem_root == pre.mem_root
            continue
        assert verify_leaf_proof(witness.data_proof, witness.data_address, pre.mem_root)
        # a store: the same siblings with the new leaf give the post-state root
        leaf_address = witness.data_address & ~31
        new_leaf = execution.machine.memory.read(leaf_address, 32)
        assert root_from_proof(new_leaf + witness.data_proof[32:], witness.data_address) == post.mem_root


def test_step_limit():
    with pytest.raises(StepLimitExceeded):
        Execution(CONTROL).run(max_steps=100)


def test_queries_do_not_disturb_a_later_run():
    execution = Execution(CONTROL, snapshot_interval=700)
    for step in (3000, 10, 2500):
        execution.state_at(step)
    assert execution.run() == Execution(CONTROL).run()


def test_long_runs_keep_a_bounded_number_of_snapshots(monkeypatch):
    """Past MAX_SNAPSHOTS every other snapshot goes and the interval doubles; states and proofs stay exact."""
    monkeypatch.setattr(execution_module, "MAX_SNAPSHOTS", 8)
    monkeypatch.setattr(execution_module, "TREES_KEPT", 2)
    execution = Execution(CONTROL, snapshot_interval=64)
    result = execution.run()
    steps = [s.step for s in execution.snapshots]
    assert len(steps) <= 9 and execution.snapshot_interval > 64 and steps[0] == 0
    assert all(step % execution.snapshot_interval == 0 for step in steps[:-1])
    reference = Execution(CONTROL, snapshot_interval=result.steps + 1)  # one snapshot: every query from step 0
    rng = random.Random(2)
    for step in [*steps, *rng.sample(range(result.steps), 12)]:
        assert execution.state_at(step) == fresh_state(CONTROL, step), step
        assert execution.proof_at(step) == reference.proof_at(step), step
    assert sum(s.tree is not None for s in execution.snapshots) <= 1 + 2  # step 0's, and the two kept


def test_snapshots_map_only_the_pages_written_since_step_0():
    """A large model is mapped once, at step 0: later snapshots list only what the run wrote."""
    model = bytes(range(256)) * 4096  # 1 MiB: 256 pages
    execution = Execution(SYSCALLS, model=model, snapshot_interval=50)
    execution.run()
    assert len(execution.snapshots) > 3
    assert all(len(s.vpages) < 16 for s in execution.snapshots)
    for snapshot in execution.snapshots:
        assert execution.state_at(snapshot.step) == fresh_state(SYSCALLS, snapshot.step, model=model)


def test_a_saved_run_restored_elsewhere_answers_every_query_without_running(monkeypatch):
    """What a vm-worker replica loads from the shared store: the same states, proofs and result."""
    ran = Execution(CONTROL, snapshot_interval=300)
    result = ran.run()
    ran.state_at(1234)  # a query's pages are not part of the saved run
    saved = ran.saved_run()
    restored = Execution(CONTROL)
    monkeypatch.setattr(Machine, "run", lambda *_: pytest.fail("restoring re-executed"))
    restored.restore_run(saved)
    assert restored.result == result and restored.run() == result
    monkeypatch.undo()
    assert [s.step for s in restored.snapshots] == [s.step for s in ran.snapshots]
    rng = random.Random(3)
    for step in [0, 299, 300, result.steps - 1, result.steps, *rng.sample(range(result.steps), 10)]:
        assert restored.state_at(step) == fresh_state(CONTROL, step), step
        assert restored.proof_at(step) == ran.proof_at(step), step
    assert restored.output_siblings() == ran.output_siblings()


def test_a_run_stopped_at_its_step_limit_restores_as_not_exited():
    ran = Execution(CONTROL, snapshot_interval=256)
    bounded = ran.run_bounded(1000)
    restored = Execution(CONTROL)
    restored.restore_run(ran.saved_run())
    assert restored.result is None
    assert restored.run_bounded(1000) == bounded and not bounded.final_state.exited
    assert restored.state_at(777) == fresh_state(CONTROL, 777)


def test_a_saved_run_of_other_content_is_refused():
    saved = Execution(SYSCALLS, input=b"abc").saved_run()
    with pytest.raises(ValueError, match="another program, model or input"):
        Execution(SYSCALLS, input=b"abd").restore_run(saved)
