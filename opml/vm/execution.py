"""The run API of an inference execution, used by the services, the agents and the CLI.

    execution = Execution(program, model=model_bytes, input=input_bytes)
    result = execution.run()                 # output, steps, final state
    execution.state_at(1234).hash            # state at any step
    execution.proof_at(1234)                 # witness for the on-chain step

`run` keeps a snapshot every `snapshot_interval` steps (registers plus a page
mapping; pages are shared copy-on-write), so a query at step n re-executes at most
`snapshot_interval` steps and re-hashes only the pages those steps wrote.
"""

from __future__ import annotations

import bisect
import threading
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from ..errors import BadInput
from . import layout as L
from .elf import Program
from .machine import Machine, StepWitness
from .merkle import UpperTree
from .state import State

DEFAULT_SNAPSHOT_INTERVAL = 1 << 20
CONSOLE_LIMIT = 1 << 20  # bytes of stdout/stderr kept per stream


@dataclass
class Snapshot:
    step: int
    registers: np.ndarray
    special: np.ndarray
    vpages: np.ndarray
    pool_pages: np.ndarray
    tree: UpperTree | None = None  # computed when first needed


@dataclass(frozen=True)
class RunResult:
    final_state: State
    output: bytes
    stdout: bytes = b""
    stderr: bytes = b""

    @property
    def steps(self) -> int:
        return self.final_state.step

    @property
    def exit_code(self) -> int:
        return self.final_state.exit_code


@dataclass
class Console:
    stdout: bytearray = field(default_factory=bytearray)
    stderr: bytearray = field(default_factory=bytearray)

    def write(self, fd: int, data: bytes) -> None:
        stream = self.stdout if fd == L.STDOUT else self.stderr
        stream.extend(data[: max(0, CONSOLE_LIMIT - len(stream))])


class StepLimitExceeded(BadInput):
    pass


class Execution:
    def __init__(
        self,
        program: Program,
        model: bytes = b"",
        input: bytes = b"",
        snapshot_interval: int = DEFAULT_SNAPSHOT_INTERVAL,
    ):
        self.program = program
        self.snapshot_interval = snapshot_interval
        self.machine = Machine.boot(program, model=model, input=input)
        self.initial_state = self.machine.state()
        self.snapshots: list[Snapshot] = []
        self._take_snapshot(tree=self.machine.memory.upper.copy())
        self._lock = threading.RLock()
        self.result: RunResult | None = None

    # --- regions of the initial state (the golden image) -------------------------------

    def region_roots(self) -> dict[str, bytes]:
        """Roots P, I, M of the program, input and model regions at step 0."""
        tree = self.snapshots[0].tree
        assert tree is not None
        return {region.name: tree.node(region.gindex) for region in (L.PROGRAM, L.INPUT, L.MODEL)}

    # --- running -------------------------------------------------------------------------

    def run(
        self,
        max_steps: int | None = None,
        progress: Callable[[int], None] | None = None,
    ) -> RunResult:
        """Run to the exit from the latest snapshot, keeping snapshots on the way."""
        with self._lock:
            if self.result is not None:
                return self.result
            machine = self._restore(self.snapshots[-1])
            console = Console()
            while not machine.exited:
                if max_steps is not None and machine.step_count >= max_steps:
                    raise StepLimitExceeded(f"the program did not exit within {max_steps} steps")
                budget = self.snapshot_interval
                if max_steps is not None:
                    budget = min(budget, max_steps - machine.step_count)
                machine.run(budget, on_write=console.write)
                self._take_snapshot()
                if progress is not None:
                    progress(machine.step_count)
            self.result = RunResult(
                final_state=machine.state(),
                output=machine.output(),
                stdout=bytes(console.stdout),
                stderr=bytes(console.stderr),
            )
            return self.result

    def run_bounded(self, step_limit: int, progress: Callable[[int], None] | None = None) -> RunResult:
        """Run to the exit or to `step_limit` steps, whichever comes first. At the limit the result is the
        state there, not exited and with no output: what a request's "step limit reached" claim posts."""
        result = self.result
        if result is None:
            try:
                result = self.run(max_steps=step_limit, progress=progress)
            except StepLimitExceeded:
                pass
        if result is None or result.steps > step_limit:
            return RunResult(final_state=self.state_at(step_limit), output=b"")
        return result

    # --- queries ---------------------------------------------------------------------------

    def state_at(self, step: int) -> State:
        """The state after `step` instructions (the final state for any step past the exit)."""
        with self._lock:
            return self.machine_at(step).state()

    def proof_at(self, step: int) -> StepWitness:
        """The witness for executing the instruction at `step` (pre-state = state_at(step))."""
        with self._lock:
            return self.machine_at(step).step_with_witness()

    def output_siblings(self) -> list[bytes]:
        """Roots of the subtrees beside the output region's path to the final memory root.

        With the output bytes they show the output is that of the final state:
        nodes 19, 8, 5 and 3 (docs/vm-spec.md), bottom first.
        """
        with self._lock:
            return self.machine_at(self.run().steps).memory.region_siblings(L.OUTPUT)

    # --- snapshots -------------------------------------------------------------------------

    def machine_at(self, step: int) -> Machine:
        """The machine in the state after `step` instructions; valid until the next query."""
        if step < 0:
            raise ValueError("step must be non-negative")
        index = bisect.bisect_right([s.step for s in self.snapshots], step) - 1
        snapshot = self.snapshots[index]
        machine = self._restore(snapshot)
        machine.run(step - snapshot.step)
        return machine

    def _take_snapshot(self, tree: UpperTree | None = None) -> None:
        machine = self.machine
        machine.memory.freeze()
        vpages, pool_pages = machine.memory.mapped_pages()
        snapshot = Snapshot(
            step=machine.step_count,
            registers=machine.registers.copy(),
            special=machine.special.copy(),
            vpages=vpages,
            pool_pages=pool_pages,
            tree=tree,
        )
        if self.snapshots and self.snapshots[-1].step == snapshot.step:
            self.snapshots[-1] = snapshot  # the run exited on a snapshot boundary
        else:
            self.snapshots.append(snapshot)
        self._committed_pages = machine.memory.pages_in_use

    def _restore(self, snapshot: Snapshot) -> Machine:
        """Make the machine the state of `snapshot`, sharing its pages copy-on-write."""
        machine = self.machine
        memory = machine.memory
        memory.truncate(self._committed_pages)
        memory.load_mapping(snapshot.vpages, snapshot.pool_pages, self._tree(snapshot).copy())
        memory.freeze()
        machine.registers[:] = snapshot.registers
        machine.special[:] = snapshot.special
        return machine

    def _tree(self, snapshot: Snapshot) -> UpperTree:
        """The tree above the pages of `snapshot`, built from the nearest earlier one known."""
        if snapshot.tree is not None:
            return snapshot.tree
        index = self.snapshots.index(snapshot)
        base = next(s for s in reversed(self.snapshots[:index]) if s.tree is not None)
        earlier = np.full(L.PAGE_COUNT, -1, dtype=np.int32)
        earlier[base.vpages] = base.pool_pages
        changed = earlier[snapshot.vpages] != snapshot.pool_pages
        snapshot.tree = self.machine.memory.tree_with_pages(
            base.tree, snapshot.vpages[changed], snapshot.pool_pages[changed]
        )
        return snapshot.tree
