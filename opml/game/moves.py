"""The moves of a dispute game and how each side chooses one: pure functions of the game's position.

`defender_move` and `challenger_move` take a game as the chain shows it and a solver for
the side's view of the trace, and return the move to make, or None when it is not this
side's turn (or nothing can be done). A `Timeout` is a move of whichever side is waiting.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..protocol.claims import LinkProof, StepProof
from ..protocol.types import Game, Phase, Turn
from .solver import Solver


@dataclass(frozen=True)
class Bisect:
    hashes: list[bytes]


@dataclass(frozen=True)
class Select:
    segment: int
    hashes: list[bytes]


@dataclass(frozen=True)
class Resolve:
    witness: StepProof


@dataclass(frozen=True)
class Link:
    """The defender's move when phase 1 of a graph claim's game is one node wide (docs/two-phase.md)."""

    proof: LinkProof


@dataclass(frozen=True)
class Timeout:
    pass


Move = Bisect | Select | Resolve | Link | Timeout


def opponent_timed_out(game: Game, side: Turn, now: int) -> bool:
    """Whether the other side is to move and has run out of time at chain time `now`."""
    return game.active and game.turn != side and game.clock_left(game.turn, now) < 0


def defender_move(game: Game, solver: Solver, now: int) -> Move | None:
    if not game.active or not solver.plays(game):
        return None
    if opponent_timed_out(game, Turn.DEFENDER, now):
        return Timeout()
    if game.turn != Turn.DEFENDER:
        return None
    if game.phase == Phase.GRAPH and game.width == 1:
        # one node wide: link it to a run of the node program, if the disputed value is the true one
        return Link(solver.link_proof(game.lo)) if solver.step_leads_to(game.lo, game.hi_hash) else None
    if game.width == 1:
        # the step is proven only by the side it proves right; a liar would only lose sooner
        return Resolve(solver.step_witness(game.lo)) if solver.step_leads_to(game.lo, game.hi_hash) else None
    if game.width == 0:
        return None  # a zero-step claim cannot be defended
    return Bisect(solver.bisection(game.lo, game.hi))


def challenger_move(game: Game, solver: Solver, now: int, bisection: list[bytes] | None) -> Move | None:
    """`bisection` is the defender's latest hashes for [lo, hi] (from its Bisected event)."""
    if not game.active or not solver.plays(game):
        return None
    if opponent_timed_out(game, Turn.CHALLENGER, now):
        return Timeout()
    if game.phase == Phase.GRAPH and game.width == 1:
        return None  # the defender links the node (the game goes on over its run) or loses on time
    if game.turn == Turn.DEFENDER and game.width == 1:
        if solver.step_leads_to(game.lo, game.hi_hash):
            return None  # the defender is right about this step: it proves it, or loses on time
        return Resolve(solver.step_witness(game.lo))  # anyone may prove the last step
    if game.turn != Turn.CHALLENGER or bisection is None:
        return None
    return Select(solver.disputed_segment(game.lo, game.hi, bisection), bisection)
