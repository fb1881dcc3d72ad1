"""One side of one game: read the game from the chain, ask the solver for the move, send it.

The player keeps no state of its own: every call re-reads the game (the chain is the
truth) and takes the defender's latest bisection from its Bisected event (from the
agent's index, or from the node), so a restarted agent plays on from wherever the game is.
"""

from __future__ import annotations

from collections.abc import Callable

from ..chain.events import EventReader
from ..chain.registry import Registry
from ..game.moves import Move, challenger_move, defender_move
from ..game.solver import Solver
from ..protocol.types import Game, Turn
from .responder import MoveOutcome, Responder

# (game id, game) -> the defender's hashes for the game's current interval, or None if not posted yet
BisectionSource = Callable[[int, Game], list[bytes] | None]


class Player:
    def __init__(
        self,
        registry: Registry,
        responder: Responder,
        side: Turn,
        solver: Solver,
        bisections: BisectionSource,
    ):
        self.registry = registry
        self.responder = responder
        self.side = side
        self.solver = solver
        self.bisections = bisections

    def next_move(self, game_id: int, game: Game | None = None) -> Move | None:
        game = game or self.registry.game(game_id)
        now = self.registry.now()
        if self.side == Turn.DEFENDER:
            return defender_move(game, self.solver, now)
        bisection = self.bisections(game_id, game) if game.turn == Turn.CHALLENGER else None
        return challenger_move(game, self.solver, now, bisection)

    def act(self, game_id: int, game: Game | None = None) -> MoveOutcome | None:
        """Make this side's move in the game if one is due; None if there is nothing to do now. A game read
        earlier may be passed in: if the other side has moved since, it is not our turn in it, so nothing is
        sent; if it is our turn, the other side cannot have moved."""
        game = game or self.registry.game(game_id)
        move = self.next_move(game_id, game)
        if move is None:
            return None
        return self.responder.send(game_id, game, move)


def bisections_from_logs(events: EventReader, from_block: int) -> BisectionSource:
    """Find the defender's hashes in its Bisected event, asking the node (when there is no index)."""

    def lookup(game_id: int, game: Game) -> list[bytes] | None:
        for event in reversed(events.query("Bisected", from_block, gameId=game_id)):
            if (event.args["lo"], event.args["hi"]) == (game.lo, game.hi):
                return [bytes(h) for h in event.args["hashes"]]
        return None

    return lookup


def play_out(registry: Registry, game_id: int, defender: Player, challenger: Player) -> list[MoveOutcome]:
    """Play a game to its end, both sides in turn (benchmarks, tests, demos; the agents play one move per
    tick instead). Returns every move sent, in order."""
    moves: list[MoveOutcome] = []
    while registry.game(game_id).active:
        game = registry.game(game_id)
        mover = defender if game.turn == Turn.DEFENDER else challenger
        outcome = mover.act(game_id, game) or challenger.act(game_id)  # the last step: whoever it proves right
        if outcome is None or outcome.sent is None:
            raise RuntimeError(f"game {game_id} is stuck: neither side has a move at [{game.lo}, {game.hi}]")
        moves.append(outcome)
    return moves
