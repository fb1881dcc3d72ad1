"""The challenger agent: re-checks every claim and disputes the wrong ones.

For each claim it sees: compute the trace of the claim's request (checked against the on-chain
start state) within the claim's window and compare final states. On a mismatch it challenges
with its bond and plays the game to its end: it picks the first segment it disagrees with each
round, proves the last step itself (anyone may), and calls `timeout` when the defender's clock
runs out. A game it wins gives back its bond and a refund per move it made (from the claim's bond; no
prize: docs/contracts.md). It plays every game to its end even after another game has rejected the
claim, since a game it abandons is lost on time, and it ends the claim's other games by `timeout`
when their clocks run out, since the rest of the claim's bond is burned only when its last game ends
(until then a liar's silent games would hold it). Credits are withdrawn on their own schedule by the
runtime.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..chain.events import ChainEvent
from ..chain.registry import ClaimStatus, Game, GameStatus, Turn, move_refund_of
from ..game.faults import RandomChallenger
from ..game.solver import Solver
from .runtime import Agent
from .traces import Unverifiable

CHALLENGE_DONE = frozenset({"AlreadyChallenged", "ClaimNotLive", "ChallengeWindowClosed"})


@dataclass(frozen=True)
class ChallengerFaults:
    """Deliberate faults, for demos and tests only: a challenger that disputes honest claims or goes silent."""

    dispute_honest: bool = False  # challenge every claim and pick segments at random
    silent_after_rounds: int | None = None  # stop playing after this many rounds (0: never answer)


class ChallengerAgent(Agent):
    role = "challenger"

    def __init__(self, *, faults: ChallengerFaults = ChallengerFaults(), **kwargs):
        super().__init__(**kwargs)
        self.faults = faults

    # --- events -> work --------------------------------------------------------------------------------

    def on_event(self, event: ChainEvent) -> None:
        if event.name == "ClaimSubmitted" and event.args["claimant"].lower() != self.address.lower():
            self.store.add_work(f"claim:{event.args['claimId']}")
        elif event.name == "GameStarted" and event.args["challenger"].lower() == self.address.lower():
            self.store.add_work(f"game:{event.args['gameId']}")

    def work_on(self, key: str) -> None:
        kind, ident = key.split(":")
        if kind == "claim":
            self.check(int(ident))
        elif kind == "game":
            self.play(int(ident))
        elif kind == "sweep":
            self.sweep(int(ident))

    # --- checking a claim ---------------------------------------------------------------------------------

    def check(self, claim_id: int) -> None:
        key = f"claim:{claim_id}"
        claim = self.registry.claim(claim_id)
        window_end = claim.submitted_at + self.registry.parameters.challenge_window
        if claim.status != ClaimStatus.LIVE:
            self.store.set_work(key, claim.status.name.lower(), done=True)
            return
        try:
            solver = self.solver_for(claim.request_id)
            honest = solver.agrees_with(claim.final_state_hash)
        except Unverifiable as error:
            self.store.set_work(key, "unverifiable", done=True, reason=str(error))
            self.log.warning("cannot check claim", claim=claim_id, reason=str(error))
            return
        if honest and not self.faults.dispute_honest:
            self.store.set_work(key, "honest", done=True, request_id=claim.request_id)
            return
        self.store.set_work(
            key, "lie" if not honest else "disputing (fault)", request_id=claim.request_id, due=window_end
        )
        if self.registry.game_of(claim_id, self.address) == 0:
            opened = self.send(
                self.registry.challenge(claim_id),
                value=self.registry.parameters.challenge_bond,
                intent=f"challenge c{claim_id}",
                already_done=CHALLENGE_DONE,
            )
            if opened:
                self.metrics.challenges_sent.inc()
                self.log.info("challenged", claim=claim_id, request=claim.request_id)
        self.store.set_work(key, "challenged", done=True)

    # --- playing a game --------------------------------------------------------------------------------------

    def play(self, game_id: int) -> None:
        key = f"game:{game_id}"
        game = self.registry.game(game_id)
        if not game.active:
            if game.status == GameStatus.CHALLENGER_WON:
                self.metrics.bonds_won.inc(move_refund_of(self.registry.parameters, game.moves))
                if self.registry.claim(game.claim_id).open_games > 0:
                    self.store.add_work(f"sweep:{game.claim_id}")  # the claim's burn waits for its other games
            else:
                self.metrics.bonds_lost.inc(self.registry.parameters.challenge_bond)
            self.store.set_work(key, game.status.name.lower(), done=True, rounds=game.rounds)
            return
        if self.faults.silent_after_rounds is not None and game.rounds >= self.faults.silent_after_rounds:
            self.store.set_work(key, "silent (fault)", rounds=game.rounds)
            return
        request_id = self.registry.claim(game.claim_id).request_id
        solver = self.solver_for(request_id)
        if self.faults.dispute_honest:
            solver = RandomChallenger(solver, seed=game_id)
        self.play_turn(game_id, game, Turn.CHALLENGER, solver, self.bisection_of)
        self.store.set_work(key, "playing", rounds=game.rounds, due=game.deadline)

    # --- sweeping a rejected claim's other games --------------------------------------------------------------

    def sweep(self, claim_id: int) -> None:
        """End, by `timeout`, the other games of a claim this agent beat once their mover's clock has run out:
        the rest of the claim's bond is burned only when its last game ends, and a liar could leave a game
        between its own silent accounts open for ever. Anyone may call `timeout`."""
        key = f"sweep:{claim_id}"
        if self.registry.claim(claim_id).open_games == 0:
            self.store.set_work(key, "done", done=True)
            return
        now = self.registry.now()
        for row in self.store.events(name="GameStarted", claim_id=claim_id):
            game = self.registry.game(row.game_id)
            if game.active and game.clock_left(game.turn, now) < 0:
                self.send(self.registry.timeout(row.game_id), intent=f"timeout g{row.game_id} r{game.rounds}",
                          already_done=frozenset({"GameNotActive", "ClockNotExpired"}))  # fmt: skip
        self.store.set_work(key, "waiting for clocks")

    def bisection_of(self, game_id: int, game: Game) -> list[bytes] | None:
        """The defender's hashes for the game's current interval, from the index."""
        for row in reversed(self.store.events(name="Bisected", game_id=game_id)):
            if (row.args["lo"], row.args["hi"]) == (game.lo, game.hi):
                return [bytes.fromhex(value[2:]) for value in row.args["hashes"]]
        return None

    def solver_for(self, request_id: int) -> Solver:
        return Solver(self.trace_for(self.request_view(request_id)), self.registry.parameters.arity)
