"""The run API of an inference execution, used by the services, the agents and the CLI.

    execution = Execution(program, model=model_bytes, input=input_bytes)
    result = execution.run()                 # output, steps, final state
    execution.state_at(1234).hash            # state at any step
    execution.proof_at(1234)                 # witness for the on-chain step

    Execution.node_run(node_program, model=..., input=..., node=i, node_count=n, operands=[(slot, value)])
                                             # the linked two-phase game's run of one node (docs/two-phase.md)

`run` keeps a snapshot every `snapshot_interval` steps (registers plus a page
mapping; pages are shared copy-on-write), so a query at step n re-executes at most
`snapshot_interval` steps and re-hashes only the pages those steps wrote.

Long runs stay within bounded memory (a transformer runs 10^10 steps over a 91 MB model):
- a snapshot's mapping is only the pages that differ from step 0's (the model and the
  program are mapped once), kept up to date from the memory's write log;
- past MAX_SNAPSHOTS, every other snapshot goes and the interval doubles, so a run of any
  length keeps at most MAX_SNAPSHOTS, and a query re-executes at most run length /
  (MAX_SNAPSHOTS / 2) steps;
- the Merkle tree above a snapshot's pages is computed when a query needs it, from the
  nearest earlier tree, and only the TREES_KEPT most recently used are kept (and step 0's).
Which snapshots exist never changes a state: every query re-executes from one.

A finished run can be saved (`saved_run`: the snapshots and the pages written after boot) and
restored into a fresh Execution of the same program, model and input (`restore_run`), so a
process that did not run it answers queries as fast as the one that did.
"""

from __future__ import annotations

import bisect
import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from ..errors import BadInput
from . import layout as L
from .elf import Program
from .machine import Machine, StepWitness
from .merkle import UpperTree
from .node_run import NodeHeader
from .output import OutputProof, OutputReading, output_proof, read_output
from .semantics import N_PAGES
from .state import State

DEFAULT_SNAPSHOT_INTERVAL = 1 << 20
MAX_SNAPSHOTS = 2048  # about 20 MB of page maps for a transformer's run
TREES_KEPT = 16  # Merkle trees of recently queried snapshots (a few MB each for a large model)
CONSOLE_LIMIT = 1 << 20  # bytes of stdout/stderr kept per stream


@dataclass
class Snapshot:
    step: int
    registers: np.ndarray
    special: np.ndarray
    vpages: np.ndarray  # the virtual pages mapped otherwise than at step 0, ascending
    pool_pages: np.ndarray  # their pool pages
    tree: UpperTree | None = None  # computed when a query needs it


@dataclass(frozen=True)
class SavedRun:
    """A finished run as plain arrays: what another process needs to answer queries without re-running.

    Snapshot i's page map is `vpages[offsets[i]:offsets[i + 1]]` -> `pool_pages[...]`; `pool` holds the
    pool pages written after boot (pool pages from `boot_pages` on).
    """

    initial_state_hash: bytes
    boot_pages: int
    pool: np.ndarray
    snapshot_interval: int
    steps: np.ndarray
    registers: np.ndarray
    special: np.ndarray
    offsets: np.ndarray
    vpages: np.ndarray
    pool_pages: np.ndarray
    exited: bool
    stdout: bytes
    stderr: bytes


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


@dataclass(frozen=True)
class FinalOutput:
    """An exited run's output region as the registry reads it, and what proves it under the final memory root:
    the region's 4 siblings (for an output) and, for a malformed or too large one, its leaf proofs."""

    reading: OutputReading
    siblings: tuple[bytes, ...]
    proof: OutputProof | None
    region_root: bytes = b""  # the output region's root: for a node run that exits 0, the node's value root V


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
        *,
        machine: Machine | None = None,
    ):
        """An inference run of `program` on this model and input, or, given `machine`, a run from that
        machine as booted (a node run: `node_run`)."""
        self.program = program
        self.snapshot_interval = snapshot_interval
        self.machine = machine if machine is not None else Machine.boot(program, model=model, input=input)
        self.initial_state = self.machine.state()
        # Step 0's page table: every snapshot's mapping is this with its own pages in place.
        self._base_table = self.machine.memory.page_table.copy()
        self._boot_pages = self.machine.memory.pages_in_use
        self._trees: OrderedDict[int, Snapshot] = OrderedDict()  # snapshots with a tree, least recently used first
        self.snapshots: list[Snapshot] = []
        self._since_base = (np.zeros(0, np.int32), np.zeros(0, np.int32))  # the machine's pages not as at step 0
        self._log_position = self.machine.memory.log_position
        self._committed_pages = self.machine.memory.pages_in_use
        self._take_snapshot(tree=self.machine.memory.upper.copy())
        self._lock = threading.RLock()
        self.result: RunResult | None = None

    @classmethod
    def node_run(
        cls,
        program: Program,
        *,
        model: bytes,
        input: bytes,
        node: int,
        node_count: int,
        operands: Sequence[tuple[int, bytes]],
        snapshot_interval: int = DEFAULT_SNAPSHOT_INTERVAL,
    ) -> Execution:
        """The VM run of the node program for node `node` of a graph of `node_count` nodes (docs/two-phase.md,
        "The link"): `operands` are (slot, value bytes) in the order of the header's slots; slot 0's bytes are
        the request's input. Its start state's hash is `opml.vm.node_run.node_start_state_hash` of its roots,
        and everything an inference run's Execution answers (run, state_at, proof_at, output_siblings, saved
        runs) works the same on it; its output is the node's value."""
        header = NodeHeader(node, node_count, tuple(slot for slot, _ in operands))
        machine = Machine.boot_node(
            program, model=model, input=input, header=header.to_bytes(), operands=[value for _, value in operands]
        )
        return cls(program, snapshot_interval=snapshot_interval, machine=machine)

    # --- regions of the initial state (the golden image) -------------------------------

    def region_roots(self) -> dict[str, bytes]:
        """Roots P, I, M of the program, input and model regions at step 0."""
        return {region.name: self.initial_region_root(region) for region in (L.PROGRAM, L.INPUT, L.MODEL)}

    def initial_region_root(self, region: L.Region) -> bytes:
        """The root of `region` at step 0 (a node run's header and operand regions, say)."""
        tree = self.snapshots[0].tree
        assert tree is not None
        return tree.node(region.gindex)

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
                budget = self.snapshot_interval - machine.step_count % self.snapshot_interval
                if max_steps is not None:
                    budget = min(budget, max_steps - machine.step_count)
                machine.run(budget, on_write=console.write)
                self._take_snapshot()
                if len(self.snapshots) > MAX_SNAPSHOTS:
                    self._thin_snapshots()
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

    # --- saving and restoring a finished run ----------------------------------------------

    def saved_run(self) -> SavedRun:
        """The run so far (to its exit or its step limit) as arrays; see `restore_run`."""
        with self._lock:
            self._restore(self.snapshots[-1])  # drops the pages of queries: only the run's pages are saved
            words = L.WORDS_PER_PAGE
            result = self.result
            return SavedRun(
                initial_state_hash=self.initial_state.hash,
                boot_pages=self._boot_pages,
                pool=self.machine.memory.pool[self._boot_pages * words : self._committed_pages * words].copy(),
                snapshot_interval=self.snapshot_interval,
                steps=np.array([s.step for s in self.snapshots], dtype=np.uint64),
                registers=np.stack([s.registers for s in self.snapshots]),
                special=np.stack([s.special for s in self.snapshots]),
                offsets=np.cumsum([0] + [len(s.vpages) for s in self.snapshots]).astype(np.int64),
                vpages=np.concatenate([s.vpages for s in self.snapshots]).astype(np.int32),
                pool_pages=np.concatenate([s.pool_pages for s in self.snapshots]).astype(np.int32),
                exited=result is not None,
                stdout=b"" if result is None else result.stdout,
                stderr=b"" if result is None else result.stderr,
            )

    def restore_run(self, saved: SavedRun) -> None:
        """Take over a run saved by another Execution of the same program, model and input: its snapshots
        and pages, and its result if it exited. Nothing is re-executed."""
        with self._lock:
            if saved.initial_state_hash != self.initial_state.hash or saved.boot_pages != self._boot_pages:
                raise ValueError("the saved run is of another program, model or input")
            memory = self.machine.memory
            new_pages = saved.pool.size // L.WORDS_PER_PAGE
            memory.truncate(self._boot_pages)
            memory.reserve(new_pages)
            start = self._boot_pages * L.WORDS_PER_PAGE
            memory.pool[start : start + saved.pool.size] = saved.pool
            memory.meta[N_PAGES] = self._boot_pages + new_pages
            memory.freeze()
            self._committed_pages = memory.pages_in_use
            self._trees.clear()
            initial = self.snapshots[0]
            self.snapshots = [initial]
            for index in range(1, len(saved.steps)):
                begin, end = saved.offsets[index], saved.offsets[index + 1]
                self.snapshots.append(
                    Snapshot(
                        step=int(saved.steps[index]),
                        registers=saved.registers[index].copy(),
                        special=saved.special[index].copy(),
                        vpages=saved.vpages[begin:end].copy(),
                        pool_pages=saved.pool_pages[begin:end].copy(),
                    )
                )
            self.snapshot_interval = saved.snapshot_interval
            machine = self._restore(self.snapshots[-1])
            if saved.exited:
                self.result = RunResult(machine.state(), machine.output(), saved.stdout, saved.stderr)

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

    def final_output(self) -> FinalOutput:
        """The output region of the run's exited final state: its kind, output and proofs."""
        with self._lock:
            memory = self.machine_at(self.run().steps).memory
            reading = read_output(memory)
            return FinalOutput(
                reading,
                tuple(memory.region_siblings(L.OUTPUT)),
                output_proof(memory, reading),
                memory.region_root(L.OUTPUT),
            )

    # --- snapshots -------------------------------------------------------------------------

    def snapshot_step_before(self, step: int) -> int:
        """The step of the latest snapshot at or before `step`: where a query for `step` starts."""
        return self._snapshot_before(step).step

    def machine_at(self, step: int) -> Machine:
        """The machine in the state after `step` instructions; valid until the next query."""
        snapshot = self._snapshot_before(step)
        machine = self._restore(snapshot)
        machine.run(step - snapshot.step)
        return machine

    def _snapshot_before(self, step: int) -> Snapshot:
        if step < 0:
            raise ValueError("step must be non-negative")
        return self.snapshots[bisect.bisect_right([s.step for s in self.snapshots], step) - 1]

    def _take_snapshot(self, tree: UpperTree | None = None) -> None:
        machine = self.machine
        machine.memory.freeze()
        vpages, pool_pages = self._update_since_base()
        snapshot = Snapshot(
            step=machine.step_count,
            registers=machine.registers.copy(),
            special=machine.special.copy(),
            vpages=vpages,
            pool_pages=pool_pages,
            tree=tree,
        )
        if self.snapshots and self.snapshots[-1].step == snapshot.step:
            self._forget_tree(self.snapshots[-1])
            self.snapshots[-1] = snapshot  # the run exited on a snapshot boundary
        else:
            self.snapshots.append(snapshot)
        if tree is not None and snapshot.step > 0:
            self._remember_tree(snapshot)

    def _update_since_base(self) -> tuple[np.ndarray, np.ndarray]:
        """The machine's pages mapped otherwise than at step 0: the last snapshot's, updated with the pages
        written since (each first write after a snapshot copies its page, and logs it once)."""
        memory = self.machine.memory
        table = memory.page_table
        written = memory.logged_pages(self._log_position)
        if len(written) == memory.pages_in_use - self._committed_pages:
            vpages = np.union1d(self._since_base[0], written).astype(np.int32)
        else:  # the log does not account for every new page: compare the whole table
            vpages = np.flatnonzero(table != self._base_table).astype(np.int32)
        vpages = vpages[table[vpages] != self._base_table[vpages]]
        self._since_base = (vpages, table[vpages].copy())
        self._log_position = memory.log_position
        self._committed_pages = memory.pages_in_use
        return self._since_base

    def _thin_snapshots(self) -> None:
        """Keep every other snapshot (steps at multiples of twice the interval, and the latest) and double
        the interval."""
        self.snapshot_interval *= 2
        latest = self.snapshots[-1]
        kept = [s for s in self.snapshots if s.step % self.snapshot_interval == 0 or s is latest]
        for snapshot in self.snapshots:
            if snapshot.step % self.snapshot_interval and snapshot is not latest:
                self._forget_tree(snapshot)
        self.snapshots = kept

    def _restore(self, snapshot: Snapshot) -> Machine:
        """Make the machine the state of `snapshot`, sharing its pages copy-on-write."""
        machine = self.machine
        memory = machine.memory
        memory.truncate(self._committed_pages)
        tree = self._tree(snapshot).copy()
        memory.load_mapping(self._base_table, snapshot.vpages, snapshot.pool_pages, tree)
        memory.freeze()
        machine.registers[:] = snapshot.registers
        machine.special[:] = snapshot.special
        self._since_base = (snapshot.vpages, snapshot.pool_pages)
        self._log_position = memory.log_position
        return machine

    def _pool_pages(self, snapshot: Snapshot, vpages: np.ndarray) -> np.ndarray:
        """The pool pages that `vpages` (ascending) map to in `snapshot`."""
        pages = self._base_table[vpages]
        at = np.searchsorted(snapshot.vpages, vpages)
        found = at < len(snapshot.vpages)
        found[found] = snapshot.vpages[at[found]] == vpages[found]
        pages[found] = snapshot.pool_pages[at[found]]
        return pages

    def _tree(self, snapshot: Snapshot) -> UpperTree:
        """The tree above the pages of `snapshot`, built from the nearest earlier one known."""
        if snapshot.tree is None:
            index = self.snapshots.index(snapshot)
            base = next(s for s in reversed(self.snapshots[:index]) if s.tree is not None)
            candidates = np.union1d(base.vpages, snapshot.vpages)
            pages = self._pool_pages(snapshot, candidates)
            changed = pages != self._pool_pages(base, candidates)
            snapshot.tree = self.machine.memory.tree_with_pages(base.tree, candidates[changed], pages[changed])
        if snapshot.step > 0:
            self._remember_tree(snapshot)
        return snapshot.tree

    def _remember_tree(self, snapshot: Snapshot) -> None:
        """Mark the tree of `snapshot` as just used; forget the least recently used beyond TREES_KEPT."""
        self._trees[snapshot.step] = snapshot
        self._trees.move_to_end(snapshot.step)
        while len(self._trees) > TREES_KEPT:
            _, oldest = self._trees.popitem(last=False)
            oldest.tree = None

    def _forget_tree(self, snapshot: Snapshot) -> None:
        if snapshot.step > 0 and self._trees.pop(snapshot.step, None) is not None:
            snapshot.tree = None
