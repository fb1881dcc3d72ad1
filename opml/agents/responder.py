"""Sends a game move idempotently: one intent per (game, position, move), and "already done" is success.

Several honest agents may play the same game position (two challengers resolving one
step, a restarted agent repeating its last move): the contract then refuses the late
copy with an error that means the move is no longer needed. Those reverts end the
attempt quietly; any other revert is raised.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from ..chain.client import Sent, TransactionManager
from ..chain.errors import TxReverted
from ..chain.registry import Registry
from ..game.moves import Bisect, Link, Move, Resolve, Select, Timeout
from ..protocol.types import Game

log = logging.getLogger(__name__)

# Errors that mean someone (maybe we, before a restart) already made this move or the game moved on.
ALREADY_DONE = frozenset({"GameNotActive", "NotYourTurn", "WrongPhase"})


@dataclass(frozen=True)
class MoveOutcome:
    move: Move
    sent: Sent | None  # None: the move was no longer needed


def move_name(move: Move) -> str:
    return type(move).__name__.lower()


def intent_of(game_id: int, game: Game, move: Move) -> str:
    """The same position and move always give the same intent, so a restart never sends it twice."""
    return f"game {game_id} {move_name(move)} {game.phase.name.lower()} [{game.lo},{game.hi}] r{game.rounds}"


class Responder:
    def __init__(self, registry: Registry, tx: TransactionManager):
        self.registry = registry
        self.tx = tx

    def call_for(self, game_id: int, move: Move):
        if isinstance(move, Bisect):
            return self.registry.bisect(game_id, move.hashes)
        if isinstance(move, Select):
            return self.registry.select(game_id, move.segment, move.hashes)
        if isinstance(move, Resolve):
            return self.registry.resolve(game_id, move.witness)
        if isinstance(move, Link):
            return self.registry.link(game_id, move.proof)
        if isinstance(move, Timeout):
            return self.registry.timeout(game_id)
        raise TypeError(f"not a move: {move!r}")

    def send(self, game_id: int, game: Game, move: Move) -> MoveOutcome:
        try:
            sent = self.tx.send(self.call_for(game_id, move), intent=intent_of(game_id, game, move))
        except TxReverted as error:
            if error.name in ALREADY_DONE:
                log.info("game %d: %s no longer needed (%s)", game_id, move_name(move), error.name)
                return MoveOutcome(move, None)
            raise
        return MoveOutcome(move, sent)
