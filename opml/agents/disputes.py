"""What every honest agent does about claims, whichever role it has.

It checks each claim it has a stake in against its own result (a challenger: every claim; a
submitter: the claims of the requests it serves, so it defends its result, not only its claim),
challenges within the window every claim that differs, plays each of its games to the end on
either side (defender of its own claims, challenger of the ones it disputes), ends by `timeout`
the other games of a claim it beat (the claim's bond is paid only when its last game ends), and
raises the alarm when a result it disagrees with becomes final anyway (op-dispute-mon's alert): an
error log, the metric `results_finalized_against_ours_total`, and a mark in the explorer.
"""

from __future__ import annotations

import time

from ..chain.errors import TxReverted
from ..chain.events import ChainEvent
from ..game.graph import GraphSolver
from ..game.solver import Solver
from ..protocol.parameters import kept_share, move_refund_of
from ..protocol.types import ClaimStatus, Game, GameStatus, Phase, Turn
from ..vm.node_run import NodeHeader
from .runtime import Agent
from .traces import Unverifiable
from .work import WorkKey, WorkKind

CHALLENGE_DONE = frozenset({"AlreadyChallenged", "ClaimNotLive"})
MOVES = ("Bisected", "SegmentSelected", "Linked", "GameEnded")


class DisputingAgent(Agent):
    # --- what to watch -----------------------------------------------------------------------------

    def checks_claims_of(self, request_id: int) -> bool:
        """Whether this agent checks the claims of a request (subclasses)."""
        raise NotImplementedError

    def on_request(self, event: ChainEvent) -> None:
        """A new request (subclasses)."""

    def on_event(self, event: ChainEvent) -> None:
        args = event.args
        if event.name == "InferenceRequested":
            self.on_request(event)
        elif event.name == "ClaimSubmitted":
            if args["claimant"].lower() != self.address.lower() and self.checks_claims_of(args["requestId"]):
                deadline = event.block_timestamp + self.registry.parameters.challenge_window
                self.store.add_work(WorkKey.claim(args["claimId"]), deadline=deadline,
                                    budget=self.registry.parameters.challenge_window)  # fmt: skip
        elif event.name == "GameStarted":
            if args["challenger"].lower() == self.address.lower() or self.is_mine(args["claimId"]):
                self.store.add_work(WorkKey.game(args["gameId"]))
                self.wake_game(args["gameId"])
        elif event.name in MOVES:
            if self.store.work(WorkKey.game(args["gameId"])) is not None:
                self.wake_game(args["gameId"])
        elif event.name == "ResultFinalized":
            self.compare_result(args["requestId"], args["claimId"])

    def work_on(self, key: WorkKey) -> None:
        if key.kind == WorkKind.CLAIM:
            self.check(key.id)
        elif key.kind == WorkKind.GAME:
            self.play(key.id)
        elif key.kind == WorkKind.SWEEP:
            self.sweep(key.id)

    # --- checking a claim ---------------------------------------------------------------------------

    def check(self, claim_id: int) -> None:
        key = WorkKey.claim(claim_id)
        claim = self.registry.claim(claim_id)
        window = self.registry.parameters.challenge_window
        window_end = claim.submitted_at + window
        if claim.status != ClaimStatus.LIVE:
            self.store.set_work(key, claim.status.name.lower(), done=True)
            return
        self.store.set_work(key, deadline=window_end, budget=window, request_id=claim.request_id)
        try:
            solver = self.solver_or_wait(key, claim.request_id)
        except Unverifiable as error:
            self.store.set_work(key, "unverifiable", done=True, reason=str(error))
            self.log.warning("cannot check claim", claim=claim_id, reason=str(error))
            return
        if solver is None:
            self.store.set_work(key, "computing")
            return
        if solver.agrees_with(claim.final_state_hash, claim.steps):
            self.store.set_work(key, "honest", done=True)
            return
        self.store.set_work(key, "lie")
        if self.registry.game_of(claim_id, self.address) == 0:
            sent = self.send_challenge(claim_id, claim.request_id)
            if sent is not None:
                self.record_margin(key, "challenge", sent, window_end, window)
        self.store.set_work(key, "challenged", done=True)

    def send_challenge(self, claim_id: int, request_id: int):
        try:
            sent = self.send(
                self.registry.challenge(claim_id),
                value=self.registry.parameters.challenge_bond,
                intent=f"challenge c{claim_id}",
                already_done=CHALLENGE_DONE,
            )
        except TxReverted as error:
            if error.name == "ChallengeWindowClosed":
                self.metrics.missed.labels("challenge").inc()
                self.log.error("a claim we disagree with could not be challenged in its window", claim=claim_id,
                               request=request_id)  # fmt: skip
                return None
            raise
        if sent is not None:
            self.metrics.challenges_sent.inc()
            self.log.info("challenged", claim=claim_id, request=request_id)
        return sent

    # --- playing a game --------------------------------------------------------------------------------

    def play(self, game_id: int) -> None:
        key = WorkKey.game(game_id)
        game = self.registry.game(game_id)
        side = Turn.DEFENDER if self.is_mine(game.claim_id) else Turn.CHALLENGER
        if not game.active:
            self._game_over(key, game, side)
            return
        clock = self.registry.parameters.clock_budget
        request_id = self.request_of(game.claim_id)
        solver = self.solver_or_wait(key, request_id)
        if isinstance(solver, GraphSolver):
            solver = self._graph_solver(key, game_id, game, side, request_id, solver)
        if solver is None:
            self.store.set_work(key, "computing", deadline=game.deadline, budget=clock)
            return
        bisections = self.bisection_of if side == Turn.CHALLENGER else (lambda *_: None)  # a defender never selects
        self.play_turn(key, game_id, game, side, solver, bisections)
        game = self.registry.game(game_id)
        self._sleep_until_needed(key, game)

    def _graph_solver(self, key: WorkKey, game_id: int, game: Game, side: Turn, request_id: int,
                      solver: GraphSolver) -> Solver | None:  # fmt: skip
        """The solver of a graph claim's game where it stands: the graph solver in phase 1 (its node run computed
        first when the defender is about to link), the solver over the linked node's run in phase 2. None while
        that run is being computed (off the job workers)."""
        if game.phase == Phase.GRAPH:
            if side == Turn.DEFENDER and game.width == 1:  # about to link: the node run first
                header = solver.trace.header_of(game.lo)
                task = ("node", request_id, header)
                if self.computed_or_wait(key, task, lambda: solver.phase2(header).claim()) is None:
                    return None
            return solver
        header = self.linked_header(game_id)
        if header is None:
            return None  # its Linked event has not reached the index yet: the event wakes the game
        if self.computed_or_wait(key, ("node", request_id, header), lambda: solver.phase2(header).claim()) is None:
            return None
        phase2 = solver.phase2(header)
        start = phase2.trace.state_hashes([0])[0]
        if game.lo == 0 and start != game.lo_hash:
            self.log.error("the linked node run's start state is not the one computed here", game=game_id,
                           chain=game.lo_hash.hex(), here=start.hex())  # fmt: skip
        return phase2

    def linked_header(self, game_id: int) -> NodeHeader | None:
        """The node header a game was linked with, from its Linked event."""
        rows = self.store.events(name="Linked", game_id=game_id)
        return NodeHeader.from_bytes(bytes.fromhex(rows[-1].args["header"][2:])) if rows else None

    def _sleep_until_needed(self, key: WorkKey, game: Game) -> None:
        """Until the next move in the game wakes it (an event), or the mover's clock runs out (a timeout to
        call, or our own deadline to make)."""
        if not game.active:
            self.store.set_work(key, "playing", rounds=game.rounds, deadline=None, wake_at=0)
            return
        left = game.deadline - self.registry.now()
        self.store.set_work(key, "playing", rounds=game.rounds, deadline=game.deadline,
                            budget=self.registry.parameters.clock_budget, wake_at=time.time() + max(0, left) + 1)  # fmt: skip

    def _game_over(self, key: WorkKey, game: Game, side: Turn) -> None:
        parameters = self.registry.parameters
        won = game.status == (GameStatus.DEFENDER_WON if side == Turn.DEFENDER else GameStatus.CHALLENGER_WON)
        if side == Turn.DEFENDER:
            (self.metrics.bonds_won if won else self.metrics.bonds_lost).inc(
                kept_share(parameters, parameters.challenge_bond) if won else parameters.claim_bond
            )
        elif won:
            self.metrics.bonds_won.inc(move_refund_of(parameters, game.moves))
            if self.registry.claim(game.claim_id).open_games > 0:
                self.store.add_work(WorkKey.sweep(game.claim_id))  # the claim's burn waits for its other games
        else:
            self.metrics.bonds_lost.inc(parameters.challenge_bond)
        self.store.set_work(key, game.status.name.lower(), done=True, rounds=game.rounds)

    def request_of(self, claim_id: int) -> int:
        rows = self.store.events(name="ClaimSubmitted", claim_id=claim_id)
        return rows[0].request_id if rows else self.registry.claim(claim_id).request_id

    def bisection_of(self, game_id: int, game: Game) -> list[bytes] | None:
        """The defender's hashes for the game's current interval, from the index."""
        for row in reversed(self.store.events(name="Bisected", game_id=game_id)):
            if (row.args["lo"], row.args["hi"]) == (game.lo, game.hi):
                return [bytes.fromhex(value[2:]) for value in row.args["hashes"]]
        return None

    # --- sweeping a rejected claim's other games ------------------------------------------------------

    def sweep(self, claim_id: int) -> None:
        """End, by `timeout`, the other games of a claim this agent beat once their mover's clock has run out:
        the rest of the claim's bond is burned only when its last game ends, and a liar could leave a game
        between its own silent accounts open for ever. Anyone may call `timeout`."""
        key = WorkKey.sweep(claim_id)
        if self.registry.claim(claim_id).open_games == 0:
            self.store.set_work(key, "done", done=True)
            return
        now = self.registry.now()
        next_expiry = None
        for row in self.store.events(name="GameStarted", claim_id=claim_id):
            game = self.registry.game(row.game_id)
            if not game.active:
                continue
            if game.clock_left(game.turn, now) < 0:
                self.send(self.registry.timeout(row.game_id), intent=f"timeout g{row.game_id} r{game.rounds}",
                          already_done=frozenset({"GameNotActive", "ClockNotExpired"}))  # fmt: skip
            else:
                next_expiry = game.deadline if next_expiry is None else min(next_expiry, game.deadline)
        wake_in = 1.0 if next_expiry is None else next_expiry - now + 1
        self.store.set_work(key, "waiting for clocks", deadline=next_expiry, wake_at=time.time() + max(0, wake_in))

    # --- the alarm -----------------------------------------------------------------------------------------

    def compare_result(self, request_id: int, claim_id: int) -> None:
        """A result became final: if this agent computed the request and the final state is not its own, say so
        loudly (nothing can be done about it on-chain any more)."""
        trace = self.traces.computed(request_id)
        if trace is None:
            return
        rows = self.store.events(name="ClaimSubmitted", claim_id=claim_id)
        final = (
            bytes.fromhex(rows[0].args["finalStateHash"][2:])
            if rows
            else self.registry.claim(claim_id).final_state_hash
        )
        ours = trace.final_claim().hash
        if final == ours:
            return
        self.metrics.results_against_us.inc()
        self.store.record_alert(request_id, claim_id, "0x" + final.hex(), "0x" + ours.hex())
        self.log.error("a result this agent disagrees with became final", request=request_id, claim=claim_id,
                       final_state="0x" + final.hex(), ours="0x" + ours.hex())  # fmt: skip
