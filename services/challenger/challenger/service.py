"""The challenger's API logic, outside HTTP: the disputes it plays, every other game on the registry, and the
requests and games the explorer lists."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Generic, TypeVar

from opml.agents.store import AgentStore
from opml.agents.traces import ModelSource, TraceSource, Unverifiable, request_view
from opml.agents.views import (
    DisputeReport,
    EmbeddingModels,
    GameBrief,
    Receipts,
    RequestBrief,
    dispute_report,
    game_brief,
    model_roots,
    request_brief,
)
from opml.chain.registry import Registry
from opml.errors import OpmlError

T = TypeVar("T")


@dataclass(frozen=True)
class Listing(Generic[T]):
    """One page of a list, how many there are in all, and the chain time the page was read at."""

    items: list[T]
    total: int
    chain_time: int


class Disputes:
    def __init__(
        self,
        registry: Registry,
        store: AgentStore,
        receipts: Receipts,
        traces: TraceSource,
        address: str,
        models: ModelSource | None = None,
    ):
        self.registry = registry
        self.store = store
        self.receipts = receipts
        self.traces = traces
        self.address = address  # the challenger's own account: "mine" in the lists
        # an embedding model's result is a vector, not a class: the explorer says so instead of an argmax
        self.embedding_models = EmbeddingModels(registry, models) if models is not None else (lambda model_id: False)

    def report(self, game_id: int) -> DisputeReport:
        game = self.registry.game(game_id)  # NotFound for an unknown id
        trace = None
        if game.width == 1:
            try:
                requested = self.store.events(
                    name="InferenceRequested", request_id=self.registry.claim(game.claim_id).request_id
                )
                trace = self.traces.trace_for(request_view(self.registry, requested[0].args)) if requested else None
            except (Unverifiable, OpmlError):
                trace = None  # shown without the true post-state
        return dispute_report(self.registry, self.store, self.receipts, game_id, trace)

    def ids(self, *, mine: bool | None, request_id: int | None, offset: int, limit: int) -> tuple[list[int], int]:
        """Game ids, newest first, and how many match."""
        rows = self.store.events(name="GameStarted")
        if mine is not None:
            me = self.address.lower()
            rows = [row for row in rows if (row.args["challenger"].lower() == me) == mine]
        if request_id is not None:
            claims = {row.claim_id for row in self.store.events(name="ClaimSubmitted", request_id=request_id)}
            rows = [row for row in rows if row.claim_id in claims]
        ids = sorted((row.game_id for row in rows), reverse=True)
        return ids[offset : offset + limit], len(ids)

    def game_briefs(self, *, offset: int, limit: int) -> Listing[GameBrief]:
        """Every game on the registry at a glance, newest first, with both clocks at one chain time."""
        ids, total = self.ids(mine=None, request_id=None, offset=offset, limit=limit)
        now = self.registry.now()
        return Listing([game_brief(self.registry, game_id, now) for game_id in ids], total, now)

    def request_briefs(self, *, offset: int, limit: int) -> Listing[RequestBrief]:
        """Every request on the registry at a glance, newest first."""
        ids = sorted((row.request_id for row in self.store.events(name="InferenceRequested")), reverse=True)
        roots = model_roots(self.store)
        items = [
            request_brief(self.registry, self.store, request_id, roots, self.embedding_models)
            for request_id in ids[offset : offset + limit]
        ]
        return Listing(items, len(ids), self.registry.now())
