"""One side of one game: read the game from the chain, ask the solver for the move, send it.

The player keeps no state of its own: every call re-reads the game (the chain is the
truth) and finds the defender's latest bisection in its Bisected event, so a restarted
agent plays on from wherever the game is.
"""

from __future__ import annotations

from ..chain.events import EventReader
from ..chain.registry import Game, Registry, Turn
from ..game.moves import Move, challenger_move, defender_move
from ..game.solver import Solver
from .responder import MoveOutcome, Responder


class Player:
    def __init__(self, registry: Registry, responder: Responder, events: EventReader, side: Turn, solver: Solver,
                 from_block: int = 0):  # fmt: skip
        self.registry = registry
        self.responder = responder
        self.events = events
        self.side = side
        self.solver = solver
        self.from_block = from_block

    def next_move(self, game_id: int, game: Game | None = None) -> Move | None:
        game = game or self.registry.game(game_id)
        now = self.registry.now()
        if self.side == Turn.DEFENDER:
            return defender_move(game, self.solver, now)
        return challenger_move(game, self.solver, now, self.bisection(game_id, game))

    def act(self, game_id: int) -> MoveOutcome | None:
        """Make this side's move in the game if one is due; None if there is nothing to do now."""
        game = self.registry.game(game_id)
        move = self.next_move(game_id, game)
        if move is None:
            return None
        return self.responder.send(game_id, game, move)

    def bisection(self, game_id: int, game: Game) -> list[bytes] | None:
        """The defender's hashes for the game's current interval, if it has bisected it."""
        if game.turn != Turn.CHALLENGER:
            return None
        for event in reversed(self.events.query("Bisected", self.from_block, gameId=game_id)):
            if (event.args["lo"], event.args["hi"]) == (game.lo, game.hi):
                return [bytes(h) for h in event.args["hashes"]]
        return None
