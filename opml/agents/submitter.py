"""The submitter agent: serves every request it finds on-chain that its policy accepts, and defends its result.

For each request: compute the trace as soon as the request is seen (on the vm-worker or in-process,
checked against the on-chain start state), commit to the final state, reveal it with the claim bond
in a later block, defend every game against the claim round by round, finalize once the window has
passed with no open game (finalize pays the fee and the bond back directly), and settle the claim
instead if another claim of the request became final first. Like every honest agent it also
challenges, within their window, the other claims of the requests it serves that differ from its
result (opml.agents.disputes): a lie must not become final because only a challenger watched and it
was down. Credits from won games are withdrawn on their own schedule by the runtime.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..chain.errors import TxReverted
from ..chain.events import ChainEvent
from ..protocol.types import ClaimStatus, RequestStatus
from .disputes import DisputingAgent
from .traces import RequestView, Unverifiable
from .work import WorkKey, WorkKind

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


class SubmitterAgent(DisputingAgent):
    role = "submitter"

    def __init__(self, *, policy: SubmitterPolicy = SubmitterPolicy(), **kwargs):
        super().__init__(**kwargs)
        self.policy = policy

    # --- events -> work ------------------------------------------------------------------------------

    def on_request(self, event: ChainEvent) -> None:
        request_id = event.args["requestId"]
        self.store.add_work(WorkKey.request(request_id), deadline=event.args["deadline"])
        if self._refusal(request_id) is None:
            self.prepare(request_id)  # computing starts now, before the job that needs it runs

    def checks_claims_of(self, request_id: int) -> bool:
        """The claims of the requests it serves: it holds a result for them."""
        row = self.store.work(WorkKey.request(request_id))
        return row is not None and row.state != "skipped"

    def work_on(self, key: WorkKey) -> None:
        if key.kind == WorkKind.REQUEST:
            self.serve(key.id)
        else:
            super().work_on(key)

    # --- serving a request ---------------------------------------------------------------------------

    def serve(self, request_id: int) -> None:
        key = WorkKey.request(request_id)
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

    def _refusal(self, request_id: int) -> str | None:
        return self.policy.refusal(self.request_view(request_id))

    def _claim(self, key: WorkKey, request_id: int) -> None:
        refusal = self._refusal(request_id)
        if refusal is not None:
            self.store.set_work(key, "skipped", done=True, reason=refusal)
            return
        try:
            solver = self.solver_or_wait(key, request_id)
        except Unverifiable as error:
            self.store.set_work(key, "skipped", done=True, reason=str(error))
            self.log.warning("refusing to serve", request=request_id, reason=str(error))
            return
        if solver is None:
            self.store.set_work(key, "computing")
            return
        claim = solver.claim()
        commitment = self.registry.commitment(request_id, claim.result_id, self.address)
        if self.registry.contract.functions.commitments(commitment).call() == 0:
            self.send(self.registry.commit_claim(request_id, claim, self.address), intent=f"commit r{request_id}")
            self.store.set_work(key, "committed", final_state_hash=claim.hash, steps=claim.steps)
        sent = self.tx.send(
            self.registry.submit_claim(request_id, claim),
            value=self.registry.parameters.claim_bond,
            intent=f"reveal r{request_id}",
        )
        self.metrics.claims_sent.inc()
        window = self.registry.parameters.challenge_window
        self.store.set_work(key, "claimed", final_state_hash=claim.hash, reveal_tx=sent.tx_hash,
                            deadline=self.registry.now() + window)  # fmt: skip
        self.sleep_work(key, window)  # nothing to do until the window ends
        self.log.info("claimed", request=request_id, steps=claim.steps, final_state=claim.hash.hex()[:16])

    def _finalize_when_due(self, key: WorkKey, request_id: int, claim_id: int) -> None:
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
                self.store.set_work(key, deadline=window_end + FINALIZE_GRACE)
                self.sleep_work(key, window_end + FINALIZE_GRACE - now)
                return
        if now < window_end:
            self.store.set_work(key, deadline=window_end)
            self.sleep_work(key, window_end - now)
            return
        final = self._solvers[request_id].claim() if request_id in self._solvers else None
        if final is None:
            solver = self.solver_or_wait(key, request_id)
            if solver is None:
                return
            final = solver.claim()
        try:
            sent = self.tx.send(self.registry.finalize(claim_id, final), intent=f"finalize c{claim_id}")
        except TxReverted as error:
            if error.name in NOT_YET:  # its games are still being played: look again when they end
                self.sleep_work(key, 1.0)
                return
            if error.name in ("ClaimNotLive", "RequestNotOpen"):
                return  # another claim won or ours ended: the next run settles
            raise
        self.metrics.finalized.inc()
        self.store.set_work(key, "final", done=True, claim_id=claim_id, finalize_tx=sent.tx_hash)
        self.log.info("finalized", request=request_id, claim=claim_id)

    def _settle(self, key: WorkKey, request_id: int, final_claim: int, mine: list[int]) -> None:
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
                    self.sleep_work(key, 1.0)
                    return
                raise
        self.store.set_work(key, "settled" if mine else "served by others", done=True)
