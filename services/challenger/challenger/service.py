"""The challenger's API logic, outside HTTP: the disputes it plays and every other game on the registry."""

from __future__ import annotations

from opml.agents.store import AgentStore
from opml.agents.traces import TraceSource, Unverifiable
from opml.agents.views import DisputeReport, Receipts, dispute_report
from opml.chain.registry import Registry
from opml.errors import OpmlError


class Disputes:
    def __init__(self, registry: Registry, store: AgentStore, receipts: Receipts, traces: TraceSource, agent):
        self.registry = registry
        self.store = store
        self.receipts = receipts
        self.traces = traces
        self.agent = agent

    def report(self, game_id: int) -> DisputeReport:
        game = self.registry.game(game_id)  # NotFound for an unknown id
        trace = None
        if game.width == 1:
            try:
                trace = self.traces.trace_for(self.agent.request_view(self.registry.claim(game.claim_id).request_id))
            except (Unverifiable, OpmlError):
                trace = None  # shown without the true post-state
        return dispute_report(self.registry, self.store, self.receipts, game_id, trace)

    def ids(self, *, mine: bool | None, request_id: int | None, offset: int, limit: int) -> tuple[list[int], int]:
        """Game ids, newest first, and how many match."""
        rows = self.store.events(name="GameStarted")
        if mine is not None:
            me = self.agent.address.lower()
            rows = [row for row in rows if (row.args["challenger"].lower() == me) == mine]
        if request_id is not None:
            claims = {row.claim_id for row in self.store.events(name="ClaimSubmitted", request_id=request_id)}
            rows = [row for row in rows if row.claim_id in claims]
        ids = sorted((row.game_id for row in rows), reverse=True)
        return ids[offset : offset + limit], len(ids)
