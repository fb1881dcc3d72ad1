"""The two-phase game from a player's side (docs/two-phase.md).

A `GraphTrace` is a graph request's honest run: every value computed natively (an `opml.graph.run.ValueRun`: a
graph-format model's, opml.graph.native, or an LLM generation's, opml.models.llm.graph), the value tree whose
prefix roots are phase 1's states, and, when a dispute reaches one node, the VM run of the node program for
that node (phase 2). A `GraphSolver` answers both phases: phase 1 over the value tree, the link of
the node the game narrows to, and phase 2 by a plain `Solver` over that node's run.

    trace = GraphTrace(evaluate(model, input), node_runs, step_limit)
    solver = GraphSolver(trace, arity)
    solver.claim()                       # GraphClaim: S_n, n, the output and its proof
    solver.link_proof(i)                 # the defender's move at [i, i + 1] of phase 1
    solver.phase2(header).bisection(...) # a Solver over the run of the node the game linked
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from ..graph.run import ValueRun
from ..graph.values import first_leaf_proof
from ..protocol.claims import GraphClaim, LinkProof, Opening, StepProof
from ..vm.layout import MAX_OUTPUT_BYTES
from ..vm.node_run import NodeHeader
from ..vm.output import LeafProof, ResultKind
from .solver import Solver
from .trace import TraceProvider

# (header, operands as (slot, value bytes)) -> the trace of that node's run of the node program
NodeRuns = Callable[[NodeHeader, Sequence[tuple[int, bytes]]], TraceProvider]


class GraphTrace:
    """A graph request's run as a player knows it: natively computed values, and node runs on demand."""

    def __init__(self, run: ValueRun, node_runs: NodeRuns):
        self.run = run
        self.node_runs = node_runs
        self._node_traces: dict[NodeHeader, TraceProvider] = {}

    @property
    def node_count(self) -> int:
        return self.run.node_count

    def final_claim(self) -> GraphClaim:
        n = self.run.node_count
        output = self.run.output
        siblings = tuple(self.run.output_opening().siblings)
        if len(output) > MAX_OUTPUT_BYTES:
            leaf, leaf_siblings = first_leaf_proof(output)
            return GraphClaim(self.run.final_state, n, b"", siblings, ResultKind.OUTPUT_TOO_LARGE,
                              LeafProof(leaf, 0, tuple(leaf_siblings)))  # fmt: skip
        return GraphClaim(self.run.final_state, n, output, siblings)

    def state_hashes(self, steps: list[int]) -> list[bytes]:
        """Phase 1's states: S_t for each t (S_n past the last node)."""
        n = self.run.node_count
        return [self.run.state(min(step, n)) for step in steps]

    def step_witness(self, step: int) -> StepProof:
        raise TypeError("phase 1 has no VM step to prove: a game one node wide is linked (GraphSolver.link_proof)")

    def header_of(self, node: int) -> NodeHeader:
        """The node header of an honest link of `node`: its own operands, the run's node count."""
        return NodeHeader(node, self.run.node_count, self.run.operand_slots(node))

    def node_trace(self, header: NodeHeader) -> TraceProvider:
        """The run of the node program from the start state a link with `header` gives (its operands taken from
        this run's values, which the game agreed on up to the node)."""
        if header not in self._node_traces:
            operands = [(slot, self.run.values[slot]) for slot in header.slots]
            self._node_traces[header] = self.node_runs(header, operands)
        return self._node_traces[header]

    def link_proof(self, node: int) -> LinkProof:
        """The honest link of `node`: its operands, the input and its value opened in the value tree, and the
        final state of its node run."""
        openings = self.run.link_openings(node)
        final = self.node_trace(self.header_of(node)).final_claim()
        return LinkProof(
            operand_slots=tuple(opening.slot for opening in openings.operands),
            operands=tuple(Opening(opening.root, tuple(opening.siblings)) for opening in openings.operands),
            input=Opening(openings.input.root, tuple(openings.input.siblings)),
            output=Opening(openings.output.root, tuple(openings.output.siblings)),
            final_state=final.state_data,
            output_region_siblings=tuple(final.siblings),
        )


class GraphSolver(Solver):
    """The honest moves of a graph claim's game: phase 1 over the value tree (the base class's dissection over
    `GraphTrace.state_hashes`), the link at one node, and a `Solver` over the linked node's run for phase 2."""

    trace: GraphTrace

    def __init__(self, trace: GraphTrace, arity: int):
        super().__init__(trace, arity)
        self._phase2: dict[NodeHeader, Solver] = {}

    def agrees_with(self, final_state_hash: bytes, steps: int | None = None) -> bool:
        """A claim's values root and node count are this run's (a claim of the same root with another node count
        poses another value as the output)."""
        claim = self.claim()
        return bytes(final_state_hash) == claim.hash and (steps is None or steps == claim.steps)

    def link_proof(self, node: int) -> LinkProof:
        return self.trace.link_proof(node)

    def phase2(self, header: NodeHeader) -> Solver:
        """The solver of a game linked with `header`: over the run of the node program the link started."""
        if header not in self._phase2:
            self._phase2[header] = Solver(self.trace.node_trace(header), self.arity)
        return self._phase2[header]
