"""The submitter agent: serves every request it finds on-chain that its policy accepts.

For each request: compute the trace (on the vm-worker or in-process, checked against the
on-chain start state), commit to the final state, reveal it with the claim bond in a later
block, defend every game against the claim round by round, finalize once the window has
passed with no open game (finalize pays the fee and the bond back directly), and settle the
claim instead if another claim of the request became final first. Credits from won games are
withdrawn on their own schedule by the runtime.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from ..chain.errors import TxReverted
from ..chain.events import ChainEvent
from ..chain.registry import ClaimStatus, GameStatus, RequestStatus, Turn, kept_share
from ..game.faults import LyingTrace, lying_output
from ..game.solver import Solver
from ..game.trace import LocalTrace, forged_claim
from .runtime import Agent
from .traces import LocalTraces, RequestView, Unverifiable

NOT_YET = frozenset({"ChallengeWindowOpen", "GamesStillOpen"})
FINALIZE_GRACE = 10  # seconds a claimant that is not the fee's lead waits past the window before finalizing


@dataclass(frozen=True)
class SubmitterPolicy:
    """Which requests to serve."""

    min_fee: int = 0
    max_step_limit: int = 1 << 34  # the vm-worker's cap; all-MiniLM-L6-v2 on 16 tokens is 1.63e10 steps
    model_roots: frozenset[bytes] | None = None  # None: any model it can fetch and verify

    def refusal(self, request: RequestView) -> str | None:
        if request.fee < self.min_fee:
            return f"fee {request.fee} is below the minimum {self.min_fee}"
        if request.step_limit > self.max_step_limit:
            return f"step limit {request.step_limit} is above this submitter's {self.max_step_limit}"
        if self.model_roots is not None and request.model_root not in self.model_roots:
            return "the model is not one this submitter serves"
        return None


@dataclass(frozen=True)
class SubmitterFaults:
    """Deliberate faults, for demos and tests only: a submitter that lies or goes silent."""

    lie: Literal["none", "output", "states"] = "none"
    lie_from_step: int = 1  # with lie="states": the first step whose state is made up
    silent_after_rounds: int | None = None  # stop defending after this many rounds (0: never answer)

    @property
    def active(self) -> bool:
        return self.lie != "none" or self.silent_after_rounds is not None


class SubmitterAgent(Agent):
    role = "submitter"

    def __init__(
        self,
        *,
        policy: SubmitterPolicy = SubmitterPolicy(),
        faults: SubmitterFaults = SubmitterFaults(),
        local_traces: LocalTraces | None = None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.policy = policy
        self.faults = faults
        self.local_traces = local_traces  # a lie needs the run's memory, so a liar computes in-process
        self._solvers: dict[int, Solver] = {}

    # --- events -> work ------------------------------------------------------------------------------

    def on_event(self, event: ChainEvent) -> None:
        if event.name == "InferenceRequested":
            self.store.add_work(f"request:{event.args['requestId']}")
        elif event.name == "GameStarted" and self._is_mine(event.args["claimId"]):
            self.store.add_work(f"game:{event.args['gameId']}")

    def work_on(self, key: str) -> None:
        kind, ident = key.split(":")
        if kind == "request":
            self.serve(int(ident))
        elif kind == "game":
            self.defend(int(ident))

    # --- serving a request ---------------------------------------------------------------------------

    def serve(self, request_id: int) -> None:
        key = f"request:{request_id}"
        request = self.registry.request(request_id)
        mine = self.my_claims(request_id)
        if request.status == RequestStatus.CANCELLED:
            if any(self.registry.claim(claim_id).status == ClaimStatus.LIVE for claim_id in mine):
                self._settle(key, request_id, 0, mine)  # cancelled as a last resort: our claims are released
                return
            self.store.set_work(key, "cancelled", done=True)
            return
        if request.status == RequestStatus.FINALIZED:
            self._settle(key, request_id, request.final_claim, mine)
            return
        if not mine:
            if self.sent(f"reveal r{request_id}"):
                return  # revealed; its event will reach the index on a later tick
            self._claim(key, request_id)
            return
        for claim_id in mine:
            self._finalize_when_due(key, request_id, claim_id)

    def _claim(self, key: str, request_id: int) -> None:
        view = self.request_view(request_id)
        refusal = self.policy.refusal(view)
        if refusal is not None:
            self.store.set_work(key, "skipped", done=True, reason=refusal)
            return
        try:
            solver = self.solver_for(view)
            claim = solver.claim()
        except Unverifiable as error:
            self.store.set_work(key, "skipped", done=True, reason=str(error))
            self.log.warning("refusing to serve", request=request_id, reason=str(error))
            return
        commitment = self.registry.commitment(request_id, claim.hash, self.address)
        if self.registry.contract.functions.commitments(commitment).call() == 0:
            self.send(self.registry.commit_claim(request_id, claim, self.address), intent=f"commit r{request_id}")
            self.store.set_work(key, "committed", final_state_hash=claim.hash, steps=claim.steps)
        sent = self.tx.send(
            self.registry.submit_claim(request_id, claim),
            value=self.registry.parameters.claim_bond,
            intent=f"reveal r{request_id}",
        )
        self.metrics.claims_sent.inc()
        self.store.set_work(key, "claimed", final_state_hash=claim.hash, reveal_tx=sent.tx_hash)
        self.sleep_work(key, self.registry.parameters.challenge_window)  # nothing to do until the window ends
        self.log.info("claimed", request=request_id, steps=claim.steps, final_state=claim.hash.hex()[:16])

    def _finalize_when_due(self, key: str, request_id: int, claim_id: int) -> None:
        claim = self.registry.claim(claim_id)
        if claim.status == ClaimStatus.REJECTED:
            self.metrics.bonds_lost.inc(self.registry.parameters.claim_bond)
        if claim.status != ClaimStatus.LIVE:
            self.store.set_work(key, claim.status.name.lower(), done=True, claim_id=claim_id)
            return
        window_end = claim.submitted_at + self.registry.parameters.challenge_window
        now = self.registry.now()
        if self.registry.lead_claim(request_id, claim.final_state_hash) != claim_id:
            # another claimant committed first to this result and earns the fee whoever finalizes: give it
            # the first go, so two honest submitters do not race (the loser's transaction would revert)
            if now < window_end + FINALIZE_GRACE:
                self.sleep_work(key, window_end + FINALIZE_GRACE - now)
                return
        if now < window_end:
            self.sleep_work(key, window_end - now)
            return
        final = self.solver_for(self.request_view(request_id)).claim()
        try:
            sent = self.tx.send(self.registry.finalize(claim_id, final), intent=f"finalize c{claim_id}")
        except TxReverted as error:
            if error.name in NOT_YET:  # its games are still being played: look again in a moment
                self.sleep_work(key, 1.0)
                return
            if error.name in ("ClaimNotLive", "RequestNotOpen"):
                return  # another claim won or ours ended: the next run settles
            raise
        self.metrics.finalized.inc()
        self.store.set_work(key, "final", done=True, claim_id=claim_id, finalize_tx=sent.tx_hash)
        self.log.info("finalized", request=request_id, claim=claim_id)

    def _settle(self, key: str, request_id: int, final_claim: int, mine: list[int]) -> None:
        if final_claim in mine:
            self.store.set_work(key, "final", done=True, claim_id=final_claim)
            return
        for claim_id in mine:
            if self.registry.claim(claim_id).status != ClaimStatus.LIVE:
                continue
            try:
                self.send(
                    self.registry.settle(claim_id),
                    intent=f"settle c{claim_id}",
                    already_done=frozenset({"ClaimNotLive"}),
                )
            except TxReverted as error:
                if error.name in NOT_YET:
                    return
                raise
        self.store.set_work(key, "settled" if mine else "served by others", done=True)

    # --- defending a game ------------------------------------------------------------------------------

    def defend(self, game_id: int) -> None:
        key = f"game:{game_id}"
        game = self.registry.game(game_id)
        if not game.active:
            if game.status == GameStatus.DEFENDER_WON:
                self.metrics.bonds_won.inc(
                    kept_share(self.registry.parameters, self.registry.parameters.challenge_bond)
                )
            self.store.set_work(key, game.status.name.lower(), done=True, rounds=game.rounds)
            return
        if self.faults.silent_after_rounds is not None and game.rounds >= self.faults.silent_after_rounds:
            self.store.set_work(key, "silent (fault)", rounds=game.rounds)
            return
        request_id = self.registry.claim(game.claim_id).request_id
        solver = self.solver_for(self.request_view(request_id))
        self.play_turn(game_id, game, Turn.DEFENDER, solver, bisections=lambda *_: None)  # it never selects
        self.store.set_work(key, "playing", rounds=game.rounds, due=game.deadline)

    # --- traces and lies -------------------------------------------------------------------------------

    def solver_for(self, view: RequestView) -> Solver:
        """The solver this submitter plays a request with: the truth, or a deliberate lie."""
        if view.request_id in self._solvers:
            return self._solvers[view.request_id]
        arity = self.registry.parameters.arity
        if self.faults.lie == "none":
            solver = Solver(self.trace_for(view), arity)
        else:
            solver = self._lying_solver(view, arity)
        self._solvers[view.request_id] = solver
        return solver

    def _lying_solver(self, view: RequestView, arity: int) -> Solver:
        if self.local_traces is None:
            raise Unverifiable("a lying submitter needs local traces")
        truth = self.local_traces.trace_for(view)
        assert isinstance(truth, LocalTrace)
        claim = forged_claim(truth.execution, lying_output(truth.execution, view.step_limit))
        lie_from = claim.steps if self.faults.lie == "output" else min(self.faults.lie_from_step, claim.steps)
        return Solver(LyingTrace(truth, claim, lie_from), arity)

    def _is_mine(self, claim_id: int) -> bool:
        rows = self.store.events(name="ClaimSubmitted", claim_id=claim_id)
        return bool(rows) and rows[0].args["claimant"].lower() == self.address.lower()
