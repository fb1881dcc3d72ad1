"""The read model: what the services show of requests and games, built from the agents' index of registry
events (history, transaction hashes, block times), the registry read at one block (the truth), the agent's
transaction journal (its own reverted and dropped transactions, which emitted no event) and the receipts of
the transactions (their gas).

Every report and every page is read at one block: the newest block the index holds in full (its cursor),
never past the chain's head. The registry is pinned there (`Registry.at`) and the index is read up to it, so
a report is the state of one moment even while blocks are mined between its reads (a finalize mined between
the read of a request's claims and of its status once gave a report of two moments).

Lists filter and page in SQL over the index (opml.readmodel.sql), then build the reports of one page.

The read model depends on the store, the registry and a receipts cache, and, to show the instruction of a
game's last step, on a trace source; never on a running agent: the agent's address is given as data.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from ..agents.store import REGISTRY_CURSOR, AgentStore, AlertRow, EventRow
from ..agents.timing import MOVE_OF, game_timeline
from ..agents.traces import TraceSource, Unverifiable, request_view
from ..agents.work import WorkKey
from ..chain.client import with_retries
from ..chain.registry import Registry
from ..errors import OpmlError, Unavailable
from ..game.graph import GraphTrace
from ..game.trace import TraceProvider
from ..protocol.dissection import interior_points
from ..protocol.types import Game, GameStatus, ProgramKind, Turn
from ..service.journal import DROPPED, MINED, REVERTED
from ..vm.disasm import mnemonic
from ..vm.node_run import NodeHeader
from ..vm.output import ResultKind
from ..vm.state import State
from . import sql
from .decode import NoModels, decode_output, generation_of
from .receipts import Receipts
from .schemas import (
    LOW_MARGIN,
    BondOut,
    ClaimOut,
    DisputeOut,
    DisputePage,
    FinalizedAgainstOursOut,
    FinalStepOut,
    GameBriefOut,
    GameBriefPage,
    GameOut,
    InferenceRequestOut,
    InferenceRequestPage,
    LeastLeftOut,
    LinkOut,
    MoveOut,
    NodeOut,
    OperandOut,
    OutputOut,
    RequestBriefOut,
    RequestBriefPage,
    RoundOut,
    TransactionOut,
)


def _bytes(value: str) -> bytes:
    return bytes.fromhex(value.removeprefix("0x"))


@dataclass(frozen=True)
class At:
    """The world as of one block: the registry pinned there and the index up to it."""

    block: int
    chain: Registry
    store: AgentStore

    def events(self, name: str | None = None, **ids: int) -> list[EventRow]:
        return self.store.events(name=name, until=self.block, **ids)


class ReadModel:
    """Requests and games as the APIs and the explorer show them (opml.readmodel.schemas)."""

    def __init__(
        self,
        store: AgentStore,
        registry: Registry,
        receipts: Receipts,
        *,
        address: str | None = None,
        traces: TraceSource | None = None,
        models=None,
    ):
        self.store = store
        self.registry = registry
        self.receipts = receipts
        self.address = address  # the service's agent's account: "mine" in the lists, the sender of its journal
        self.traces = traces  # for the instruction at stake in a game's last step (optional)
        # what is known of a registered model by id (opml.readmodel.decode.RegisteredModels): how to decode its
        # results (class scores, a vector, a language model's tokens and text) and the nodes of its graphs
        self.models = models if models is not None else NoModels()

    # --- the one block -----------------------------------------------------------------------------------

    def block(self) -> int:
        """The block to read at now: the newest one whose events are all indexed, never past the chain's head
        (the chain's head before anything is indexed)."""
        head = with_retries(lambda: self.registry.w3.eth.block_number, what="reading the chain's head")
        indexed = self.store.cursor(REGISTRY_CURSOR, None)
        return head if indexed is None else min(head, indexed)

    def at(self, block: int | None = None) -> At:
        block = self.block() if block is None else block
        return At(block, self.registry.at(block), self.store)

    def _not_indexed(self, what: str, read: Callable[[Registry], object]) -> Unavailable:
        """`what` is not in the index at the block read: NotFound if the chain does not know it either, else
        Unavailable (it is newer than the index: retry)."""
        read(self.registry)  # raises NotFound
        return Unavailable(f"{what} is on-chain but not indexed yet: retry in a moment")

    # --- requests ----------------------------------------------------------------------------------------

    def request(self, request_id: int, block: int | None = None) -> InferenceRequestOut:
        """GET /inference-requests/{id}: the request, its claims and games, its result and every transaction."""
        at = self.at(block)
        requested = at.events("InferenceRequested", request_id=request_id)
        if not requested:
            raise self._not_indexed(f"request {request_id}", lambda registry: registry.request(request_id))
        args = requested[0].args
        claims = [self._claim(at, row) for row in at.events("ClaimSubmitted", request_id=request_id)]
        game_ids = [game_id for claim in claims for game_id in claim.games]
        games = [self._game_summary(at, game_id) for game_id in game_ids]
        related = list(requested) + at.events(request_id=request_id)
        for game_id in game_ids:
            related += at.events(game_id=game_id)
        subjects = [WorkKey.request(request_id)] + [WorkKey.claim(claim.id) for claim in claims]
        subjects += [WorkKey.game(game_id) for game_id in game_ids]
        return InferenceRequestOut(
            id=request_id,
            status=sql.request_statuses(self.store, [request_id], at.block)[request_id],
            requester=args["requester"],
            program_id=args["programId"],
            game="two_phase"
            if self.registry.program(args["programId"]).kind == ProgramKind.GRAPH_NODES
            else "whole_run",
            model_id=args["modelId"],
            fee=args["fee"],
            step_limit=args["stepLimit"],
            deadline=args["deadline"],
            input_size=len(_bytes(args["input"])),
            generation=self._generation(at, request_id, args),
            result=self._result(at, request_id, args["modelId"]),
            claims=claims,
            games=games,
            transactions=self._transactions(at, related, subjects),
            finalized_against_ours=_against_ours(self.store.alerts([request_id]).get(request_id)),
            block=at.block,
        )

    def requests(
        self,
        *,
        status: str | None = None,
        submitted_here: bool | None = None,
        offset: int = 0,
        limit: int = 20,
        block: int | None = None,
    ) -> InferenceRequestPage:
        """GET /inference-requests: one page of reports, newest first, filtered and paged in the index."""
        at = self.at(block)
        ids, total = sql.request_page(self.store, at.block, status=status, submitted_here=submitted_here,
                                      offset=offset, limit=limit)  # fmt: skip
        return InferenceRequestPage(items=[self.request(i, at.block) for i in ids], total=total, block=at.block)

    def request_briefs(
        self, *, status: str | None = None, offset: int = 0, limit: int = 20, block: int | None = None
    ) -> RequestBriefPage:
        """Every request at a glance, newest first: from the index alone (no chain read but the time)."""
        at = self.at(block)
        ids, total = sql.request_page(self.store, at.block, status=status, offset=offset, limit=limit)
        statuses = sql.request_statuses(self.store, ids, at.block)
        alerts = self.store.alerts(ids)
        roots = {row.args["modelId"]: row.args["root"] for row in at.events("ModelRegistered")}
        items = [self._brief(at, request_id, statuses[request_id], roots, alerts.get(request_id)) for request_id in ids]
        return RequestBriefPage(items=items, total=total, chain_time=self.registry.now(), block=at.block)

    def _brief(self, at: At, request_id: int, status: str, roots: dict[int, str], alert) -> RequestBriefOut:
        (requested,) = at.events("InferenceRequested", request_id=request_id)
        args = requested.args
        claims = [row.claim_id for row in at.events("ClaimSubmitted", request_id=request_id)]
        games = sum(len(at.events("GameStarted", claim_id=claim_id)) for claim_id in claims)
        result = self._result(at, request_id, args["modelId"])
        # an event indexed before block times were stored has none: the request's deadline says when it was made
        requested_at = requested.block_timestamp or args["deadline"] - self.registry.parameters.request_timeout
        return RequestBriefOut(
            id=request_id,
            status=status,
            model_id=args["modelId"],
            model_root=roots.get(args["modelId"]),
            requested_at=requested_at,
            claims=len(claims),
            games=games,
            exited=result.exited if result else None,
            exit_code=result.exit_code if result else None,
            kind=result.kind if result else None,
            predicted=result.predicted if result else None,
            embedding=bool(result and result.embedding),
            language_model=self.models.kind(args["modelId"]) == "language_model",
            text=result.text if result else None,
            finalized_against_ours=_against_ours(alert),
        )

    def _result(self, at: At, request_id: int, model_id: int) -> OutputOut | None:
        finalized = at.events("ResultFinalized", request_id=request_id)
        if not finalized:
            return None
        final = finalized[0].args
        claims = at.events("ClaimSubmitted", claim_id=final["claimId"])
        graph_value = bool(claims) and self._is_graph_program(claims[0], request_id, at)
        kind = self.models.kind(model_id)
        language_model = kind == "language_model" and graph_value
        return decode_output(final["kind"], final["exitCode"], _bytes(final["output"]), kind == "embedding",
                             graph_value, language_model=language_model,
                             tokenizer=self.models.tokenizer(model_id) if language_model else None)  # fmt: skip

    def _generation(self, at: At, request_id: int, args: dict):
        """A language model's request: its prompt, and its answer once final (GenerationOut), else None."""
        if self.models.kind(args["modelId"]) != "language_model":
            return None
        finalized = at.events("ResultFinalized", request_id=request_id)
        output = None
        if finalized and finalized[0].args["kind"] == ResultKind.OUTPUT and finalized[0].args["exitCode"] == 0:
            output = _bytes(finalized[0].args["output"])
        return generation_of(self.models, args["modelId"], _bytes(args["input"]), output)

    def _is_graph_program(self, claim_row: EventRow, request_id: int, at: At) -> bool:
        requested = at.events("InferenceRequested", request_id=request_id)
        return bool(requested) and self.registry.program(requested[0].args["programId"]).kind == ProgramKind.GRAPH_NODES

    def _claim(self, at: At, row: EventRow) -> ClaimOut:
        args = row.args
        claim = at.chain.claim(args["claimId"])
        return ClaimOut(
            id=args["claimId"],
            claimant=args["claimant"],
            status=claim.status.name.lower(),
            final_state_hash=args["finalStateHash"],
            steps=args["steps"],
            exited=args["exited"],
            exit_code=args["exitCode"],
            submitted_at=claim.submitted_at,
            games=[event.game_id for event in at.events("GameStarted", claim_id=args["claimId"])],
        )

    def _game_summary(self, at: At, game_id: int) -> GameOut:
        game = at.chain.game(game_id)
        return GameOut(id=game_id, claim_id=game.claim_id, challenger=game.challenger,
                       status=game.status.name.lower(), rounds=game.rounds)  # fmt: skip

    # --- transactions ------------------------------------------------------------------------------------

    def _transactions(self, at: At, rows: list[EventRow], subjects: list[WorkKey]) -> list[TransactionOut]:
        """The transactions behind these events, each once with all its events, and this service's own
        transactions about these subjects from its journal: those the events miss (a commitment carries no
        request id; a reverted or dropped transaction emitted nothing). In chain order, each with its gas."""
        unique = {(row.block_number, row.log_index): row for row in rows}
        by_hash: dict[str, list[EventRow]] = {}
        for key in sorted(unique):
            by_hash.setdefault(unique[key].tx_hash, []).append(unique[key])
        journal = {row.tx_hash: row for row in self.store.journal().rows(subjects=[str(s) for s in subjects])}
        listed: list[tuple[tuple, TransactionOut]] = []
        for tx_hash, events in by_hash.items():
            gas, sender = self.receipts.of(tx_hash)
            intent = journal[tx_hash].intent if tx_hash in journal else None
            listed.append(((events[0].block_number, events[0].log_index),
                           TransactionOut(tx_hash=tx_hash, events=[event.name for event in events], gas_used=gas,
                                          sender=sender, block_number=events[0].block_number, intent=intent)))  # fmt: skip
        for tx_hash, row in journal.items():
            if tx_hash in by_hash:
                continue
            mined_by_then = row.block_number is not None and row.block_number <= at.block
            if row.status == MINED and mined_by_then:
                events = self.store.events_in([tx_hash], until=at.block)
                if not events:
                    continue
                gas, sender = self.receipts.of(tx_hash)
                order = (events[0].block_number, events[0].log_index)
                out = TransactionOut(tx_hash=tx_hash, events=[event.name for event in events], gas_used=gas,
                                     sender=sender, block_number=events[0].block_number, intent=row.intent)  # fmt: skip
            elif row.status == REVERTED and mined_by_then:
                gas, sender = self.receipts.of(tx_hash)
                order = (row.block_number, -1)
                out = TransactionOut(tx_hash=tx_hash, events=[], gas_used=gas, sender=sender,
                                     block_number=row.block_number, status=REVERTED, intent=row.intent)  # fmt: skip
            elif row.status == DROPPED:
                order = (at.block + 1, 0)  # never mined: after everything that was
                out = TransactionOut(tx_hash=tx_hash, events=[], gas_used=0, sender=self.address or "",
                                     block_number=None, status=DROPPED, intent=row.intent)  # fmt: skip
            else:
                continue  # pending, or mined after the block read
            listed.append((order, out))
        return [out for _, out in sorted(listed, key=lambda pair: pair[0])]

    # --- games -------------------------------------------------------------------------------------------

    def dispute(self, game_id: int, block: int | None = None) -> DisputeOut:
        """GET /disputes/{id}: a game round by round, every move against its clock, its end and its bonds."""
        at = self.at(block)
        events = at.events(game_id=game_id)  # its GameStarted, every move, its GameEnded: in chain order
        if not any(row.name == "GameStarted" for row in events):
            raise self._not_indexed(f"game {game_id}", lambda registry: registry.game(game_id))
        game = at.chain.game(game_id)
        claim = at.chain.claim(game.claim_id)
        now = self.registry.now()
        parameters = self.registry.parameters
        ended = [row.tx_hash for row in events if row.name == "GameEnded"]
        transactions = self._transactions(at, events, [WorkKey.game(game_id)])
        moves = self._moves(events, claim.submitted_at)
        winner = {GameStatus.DEFENDER_WON: claim.claimant, GameStatus.CHALLENGER_WON: game.challenger}.get(game.status)
        nodes = self._graph_of(at, claim.request_id) if claim.graph else None
        return DisputeOut(
            id=game_id,
            status=game.status.name.lower(),
            winner=winner,
            request_id=claim.request_id,
            claim_id=game.claim_id,
            claim_status=claim.status.name.lower(),
            defender=claim.claimant,
            challenger=game.challenger,
            claimed_final_state_hash="0x" + claim.final_state_hash.hex(),
            claimed_steps=claim.steps,
            lo=game.lo,
            hi=game.hi,
            rounds=game.rounds,
            turn="defender" if game.turn == Turn.DEFENDER else "challenger",
            defender_clock_left=max(0, game.clock_left(Turn.DEFENDER, now)),
            challenger_clock_left=max(0, game.clock_left(Turn.CHALLENGER, now)),
            chain_time=now,
            game="two_phase" if claim.graph else "whole_run",
            phase=game.phase.name.lower(),
            generation=self._generation_of_request(at, claim.request_id),
            history=_rounds(events, parameters.arity, nodes if claim.graph else None),
            link=_link(events, nodes),
            moves=moves,
            least_left=LeastLeftOut(defender=_least(moves, "defender"), challenger=_least(moves, "challenger")),
            final_step=self._final_step(at, game_id, game, claim.request_id) if game.width == 1 else None,
            bonds=_bonds(self.store.events_in(ended, until=at.block)),
            transactions=transactions,
            gas_total=sum(tx.gas_used for tx in transactions),
            block=at.block,
        )

    def disputes(
        self,
        *,
        mine: bool | None = None,
        request_id: int | None = None,
        status: str | None = None,
        offset: int = 0,
        limit: int = 20,
        block: int | None = None,
    ) -> DisputePage:
        """GET /disputes: one page of games, newest first, filtered and paged in the index."""
        at = self.at(block)
        ids, total = sql.game_page(self.store, at.block, status=status, challenger=self.address, mine=mine,
                                   request_id=request_id, offset=offset, limit=limit)  # fmt: skip
        return DisputePage(items=[self.dispute(i, at.block) for i in ids], total=total, block=at.block)

    def game_briefs(self, *, offset: int = 0, limit: int = 20, block: int | None = None) -> GameBriefPage:
        """Every game on the registry at a glance, newest first, with both clocks at one chain time."""
        at = self.at(block)
        ids, total = sql.game_page(self.store, at.block, offset=offset, limit=limit)
        now = self.registry.now()
        items = [self._game_brief(at, game_id, now) for game_id in ids]
        return GameBriefPage(items=items, total=total, chain_time=now, block=at.block)

    def _game_brief(self, at: At, game_id: int, now: int) -> GameBriefOut:
        game = at.chain.game(game_id)
        claim = at.chain.claim(game.claim_id)
        winner = {GameStatus.DEFENDER_WON: claim.claimant, GameStatus.CHALLENGER_WON: game.challenger}.get(game.status)
        return GameBriefOut(
            id=game_id,
            request_id=claim.request_id,
            claim_id=game.claim_id,
            defender=claim.claimant,
            challenger=game.challenger,
            status=game.status.name.lower(),
            winner=winner,
            claimed_steps=claim.steps,
            lo=game.lo,
            hi=game.hi,
            rounds=game.rounds,
            turn="defender" if game.turn == Turn.DEFENDER else "challenger",
            defender_clock_left=max(0, game.clock_left(Turn.DEFENDER, now)),
            challenger_clock_left=max(0, game.clock_left(Turn.CHALLENGER, now)),
        )

    def _moves(self, events: list[EventRow], claimed_at: int) -> list[MoveOut]:
        """Every move against its clock (opml.agents.timing), from the events' block times."""
        parameters = self.registry.parameters
        timed = [row for row in events if row.name in MOVE_OF]
        timeline = game_timeline(timed, claimed_at, parameters.challenge_window, parameters.clock_budget)
        moves = []
        for row, timing in zip(timed, timeline, strict=True):
            end = timing.move == "end"
            budget = (
                None if end else parameters.challenge_window if timing.move == "challenge" else parameters.clock_budget
            )
            moves.append(MoveOut(
                move=timing.move,
                side=timing.side or None,
                tx_hash=row.tx_hash,
                block_number=timing.block_number,
                chain_time=timing.chain_time,
                took=timing.took,
                left=None if end else timing.left,
                budget=budget,
                low=budget is not None and timing.left < LOW_MARGIN * budget,
            ))  # fmt: skip
        return moves

    def _final_step(self, at: At, game_id: int, game: Game, request_id: int) -> FinalStepOut:
        trace = None
        if self.traces is not None:
            try:
                requested = at.events("InferenceRequested", request_id=request_id)
                trace = self.traces.trace_for(request_view(self.registry, requested[0].args)) if requested else None
                if isinstance(trace, GraphTrace):  # phase 2: the instruction is one of the linked node's run
                    linked = at.events("Linked", game_id=game_id)
                    trace = trace.node_trace(NodeHeader.from_bytes(_bytes(linked[-1].args["header"])))
            except (Unverifiable, OpmlError, IndexError):
                trace = None  # shown without the instruction and the true post-state
        return _final_step(game, trace)

    def _graph_of(self, at: At, request_id: int):
        """The nodes of a two-phase request's graph (opml.graph.describe), when its model is known here."""
        requested = at.events("InferenceRequested", request_id=request_id)
        if not requested:
            return None
        return self.models.nodes(requested[0].args["modelId"], _bytes(requested[0].args["input"]))

    def _generation_of_request(self, at: At, request_id: int):
        requested = at.events("InferenceRequested", request_id=request_id)
        return self._generation(at, request_id, requested[0].args) if requested else None


def _least(moves: list[MoveOut], side: str) -> int | None:
    margins = [move.left for move in moves if move.side == side and move.left is not None]
    return min(margins) if margins else None


def _against_ours(alert: AlertRow | None) -> FinalizedAgainstOursOut | None:
    if alert is None:
        return None
    return FinalizedAgainstOursOut(claim_id=alert.claim_id, final_state_hash=alert.final_state_hash,
                                   our_state_hash=alert.our_state_hash)  # fmt: skip


def _rounds(events: list[EventRow], arity: int, nodes=None) -> list[RoundOut]:
    """The rounds of a game; of a two-phase game (`nodes` given: its graph's, opml.graph.describe; or None when its
    model is not known here, and `phase` "graph" until its Linked event), phase 1's first, each point named by the
    node it adds."""
    two_phase = nodes is not None or any(row.name == "Linked" for row in events)
    phase = "graph" if two_phase else "run"
    rounds: list[RoundOut] = []
    pending: EventRow | None = None
    for row in events:
        if row.name == "Bisected":
            pending = row
        elif row.name == "SegmentSelected" and pending is not None:
            rounds.append(_round(len(rounds) + 1, pending, row, arity, phase, nodes))
            pending = None
        elif row.name == "Linked":
            phase = "run"
    if pending is not None:
        rounds.append(_round(len(rounds) + 1, pending, None, arity, phase, nodes))
    return rounds


def _round(number: int, bisected: EventRow, selected: EventRow | None, arity: int, phase: str = "run",
           nodes=None) -> RoundOut:  # fmt: skip
    lo, hi = bisected.args["lo"], bisected.args["hi"]
    points = interior_points(lo, hi, arity)
    return RoundOut(
        round=number,
        phase=phase,
        nodes=[_node(nodes, point - 1) for point in points] if phase == "graph" and nodes is not None else None,
        lo=lo,
        hi=hi,
        hashes=bisected.args["hashes"],
        points=interior_points(lo, hi, arity),
        segment=selected.args["segment"] if selected else None,
        next_lo=selected.args["lo"] if selected else None,
        next_hi=selected.args["hi"] if selected else None,
        bisect_tx=bisected.tx_hash,
        select_tx=selected.tx_hash if selected else None,
    )


def _node(nodes, index: int) -> NodeOut:
    """Node `index` of a graph (opml.graph.describe): its op, its value's shape, and an LLM node's step and layer."""
    info = nodes.node_info(index)
    return NodeOut(index=index, op=info.op, shape=list(info.shape), role=info.role, step=info.step,
                   layer=info.layer, chunk=info.chunk, tensor=info.tensor)  # fmt: skip


def _link(events: list[EventRow], nodes) -> LinkOut | None:
    linked = [row for row in events if row.name == "Linked"]
    if not linked:
        return None
    row = linked[-1]
    header = NodeHeader.from_bytes(_bytes(row.args["header"]))
    known = nodes is not None and header.node < nodes.node_count
    node = _node(nodes, header.node) if known else None
    operands = [OperandOut(slot=slot, node=_node(nodes, slot - 1) if known and 0 < slot <= nodes.node_count else None)
                for slot in header.slots]  # fmt: skip
    return LinkOut(node=header.node, op=node.op if node else None, shape=node.shape if node else None,
                   role=node.role if node else None, step=node.step if node else None,
                   layer=node.layer if node else None, tensor=node.tensor if node else None,
                   operand_slots=list(header.slots), operands=operands, node_count=header.node_count,
                   start_state_hash=row.args["startStateHash"], final_state_hash=row.args["finalStateHash"],
                   steps=row.args["steps"], tx_hash=row.tx_hash)  # fmt: skip


def _final_step(game: Game, trace: TraceProvider | None) -> FinalStepOut:
    true_post, pc, word = None, 0, 0
    if trace is not None:
        witness = trace.step_witness(game.lo)
        state = State.decode(witness.state_data)
        if state.hash == game.lo_hash:  # the agreed state is the true one: we can say what the step does
            pc = state.pc
            leaf = witness.proof[:32]
            offset = pc & 31
            word = int.from_bytes(leaf[offset : offset + 4], "big")
            true_post = "0x" + trace.state_hashes([game.lo + 1])[0].hex()
    return FinalStepOut(
        step=game.lo,
        pc=pc,
        instruction=f"0x{word:08x}",
        mnemonic=mnemonic(word) if trace is not None else "unknown",
        pre_state_hash="0x" + game.lo_hash.hex(),
        defender_post_state_hash="0x" + game.hi_hash.hex(),
        true_post_state_hash=true_post,
    )


def _bonds(rows: list[EventRow]) -> list[BondOut]:
    """What the end of a game paid out: the Credited, Paid and Burned events of its GameEnded transaction."""
    bonds = []
    for row in rows:
        if row.name == "Credited":
            bonds.append(BondOut(account=row.args["account"], amount=row.args["amount"], kind="credited"))
        elif row.name == "Paid":
            bonds.append(BondOut(account=row.args["account"], amount=row.args["amount"], kind="paid"))
        elif row.name == "Burned":
            bonds.append(BondOut(account="burned", amount=row.args["amount"], kind="burned"))
    return bonds
