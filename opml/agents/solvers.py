"""Which solver an agent plays a request with: the honest one, or a deliberate fault for demos and tests.

An agent is given a `SolverFactory` and never branches on faults itself: the wiring builds the
honest factory by default, and a lying or silent one only where a fault is configured
(SUBMITTER_FAULT_*, CHALLENGER_FAULT_*; dev chains only).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Protocol

from ..game.faults import Liar, LyingGraphTrace, LyingTrace, RandomChallenger, Silent, lying_output
from ..game.graph import GraphSolver, GraphTrace
from ..game.solver import Solver
from ..game.trace import LocalTrace, TraceProvider, forged_claim
from .traces import LocalTraces, RequestView, Unverifiable


class SolverFactory(Protocol):
    def __call__(self, view: RequestView, trace: TraceProvider, arity: int) -> Solver:
        """The solver to play `view` with, over `trace` (the true run, as computed by this agent)."""
        ...


def honest(view: RequestView, trace: TraceProvider, arity: int) -> Solver:
    if isinstance(trace, GraphTrace):
        return GraphSolver(trace, arity)
    return Solver(trace, arity)


@dataclass(frozen=True)
class SubmitterFaults:
    """A submitter that lies about its results or goes silent in its games."""

    lie: Literal["none", "output", "states", "answer"] = "none"
    lie_from_step: int = 1  # with lie="states": the first step whose state is made up; of a graph request,
    # the node whose output value it flips a bit of (the last node when beyond it). lie="answer" is "states" for a
    # whole run; of a graph request it flips the lowest bit of the last element of that node's value (an LLM's
    # argmax: the token it chose becomes another) and computes every later value from it, so its claimed output
    # (an LLM's answer) follows from the lie
    silent_after_rounds: int | None = None  # stop defending after this many rounds (0: never answer)

    def solvers(self, local_traces: LocalTraces | None) -> SolverFactory:
        """The factory of this fault (the honest one when there is none). A lie needs the run's memory, so a
        lying submitter computes in-process (`local_traces`)."""
        factory: SolverFactory = honest
        if self.lie != "none":
            if local_traces is None:
                raise Unverifiable("a lying submitter needs local traces")
            factory = _lying(local_traces, self.lie, self.lie_from_step)
        if self.silent_after_rounds is not None:
            factory = _silent(factory, self.silent_after_rounds)
        return factory


@dataclass(frozen=True)
class ChallengerFaults:
    """A challenger that disputes honest claims or goes silent in its games."""

    dispute_honest: bool = False  # challenge every claim and pick segments at random
    silent_after_rounds: int | None = None  # stop playing after this many rounds (0: never answer)

    def solvers(self) -> SolverFactory:
        factory: SolverFactory = honest
        if self.dispute_honest:

            def factory(view: RequestView, trace: TraceProvider, arity: int) -> Solver:
                return RandomChallenger(Solver(trace, arity), seed=view.request_id)

        if self.silent_after_rounds is not None:
            factory = _silent(factory, self.silent_after_rounds)
        return factory


def _lying(local_traces: LocalTraces, lie: str, lie_from_step: int) -> SolverFactory:
    def factory(view: RequestView, trace: TraceProvider, arity: int) -> Solver:
        if isinstance(trace, GraphTrace):  # a graph request: one bit of one node's value, from the given node
            node = max(0, min(lie_from_step, trace.node_count) - 1 if lie != "output" else trace.node_count - 1)
            if lie == "answer":  # the last element's lowest bit, and every later value computed from it
                model = local_traces.models.model_bytes(view.model_root, view.model_uri)
                lying = LyingGraphTrace(trace, node, element=-1, bit=24, recompute=_recomputed(model, view.input))
            else:
                lying = LyingGraphTrace(trace, node, element=view.request_id, bit=view.request_id)
            return LiarOfGraph(lying, arity)
        truth = local_traces.trace_for(view)
        assert isinstance(truth, LocalTrace)
        claim = forged_claim(truth.execution, lying_output(truth.execution, view.step_limit))
        lie_from = claim.steps if lie == "output" else min(lie_from_step, claim.steps)
        return Liar(LyingTrace(truth, claim, lie_from), arity)

    return factory


def _recomputed(model: bytes, input: bytes):
    """(slot, value) -> the run of this request with that value in that slot and every later value computed from
    it, natively, by the model's format."""
    from ..graph.native import evaluate
    from ..models.llm.graph import evaluate_generation, is_llm_model

    def recompute(slot: int, value: bytes):
        if is_llm_model(model):
            return evaluate_generation(model, input, replaced={slot: value})
        return evaluate(model, input, replaced={slot: value})

    return recompute


class LiarOfGraph(GraphSolver):
    """A graph solver over a lying graph trace; like `Liar`, it disputes nobody else's claim."""

    def agrees_with(self, final_state_hash: bytes, steps: int | None = None) -> bool:
        return True


def _silent(inner: SolverFactory, after_rounds: int) -> SolverFactory:
    def factory(view: RequestView, trace: TraceProvider, arity: int) -> Solver:
        return Silent(inner(view, trace, arity), after_rounds)

    return factory
