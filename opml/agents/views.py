"""What the services show of requests and disputes: built from the chain (the truth) and the agent's
index of events (history, transaction hashes), with the gas of every transaction from its receipt.

`request_report` answers GET /inference-requests/{id}; `dispute_report` GET /disputes/{id}.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field, replace

import numpy as np
from web3 import Web3

from ..chain.client import with_retries
from ..chain.registry import Registry
from ..errors import OpmlError, Unavailable
from ..game.trace import TraceProvider
from ..models.formats import Prediction
from ..protocol.dissection import interior_points
from ..protocol.types import Game, GameStatus, RequestStatus, Turn
from ..vm.disasm import mnemonic
from ..vm.output import ResultKind
from ..vm.state import State
from .store import AgentStore, EventRow


def _hex(value: bytes) -> str:
    return "0x" + value.hex()


def _bytes(value: str) -> bytes:
    return bytes.fromhex(value.removeprefix("0x"))


class Receipts:
    """Gas and sender of transactions, from their receipts, remembered (a mined receipt never changes)."""

    def __init__(self, w3: Web3, capacity: int = 10_000):
        self.w3 = w3
        self.capacity = capacity
        self._known: OrderedDict[str, tuple[int, str]] = OrderedDict()
        self._lock = threading.Lock()

    def of(self, tx_hash: str) -> tuple[int, str]:
        with self._lock:
            if tx_hash in self._known:
                return self._known[tx_hash]
        receipt = with_retries(lambda: self.w3.eth.get_transaction_receipt(tx_hash), what="reading a receipt")
        known = (receipt["gasUsed"], receipt["from"])
        with self._lock:
            self._known[tx_hash] = known
            while len(self._known) > self.capacity:
                self._known.popitem(last=False)
        return known


@dataclass(frozen=True)
class TransactionView:
    tx_hash: str
    events: list[str]
    gas_used: int
    sender: str
    block_number: int


def transactions_of(rows: list[EventRow], receipts: Receipts) -> list[TransactionView]:
    """The transactions behind some events, in chain order, each with its gas."""
    by_hash: dict[str, list[EventRow]] = {}
    for row in rows:
        by_hash.setdefault(row.tx_hash, []).append(row)
    views = []
    for tx_hash, events in by_hash.items():
        gas, sender = receipts.of(tx_hash)
        views.append(TransactionView(tx_hash, [event.name for event in events], gas, sender, events[0].block_number))
    return sorted(views, key=lambda view: view.block_number)


# --- requests ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class OutputView:
    kind: str  # output, step_limit_reached, malformed_output or output_too_large (ResultKind.label)
    exited: bool  # every kind but step_limit_reached
    exit_code: int
    output: str  # 0x-hex; empty unless the kind is output
    predicted: int | None = None  # for classifiers
    scores: list[float] | None = None
    embedding: list[float] | None = None  # for embedding models (the scores are the vector)
    norm: float | None = None  # the embedding's L2 norm (1 for a normalized one)


@dataclass(frozen=True)
class ClaimView:
    id: int
    claimant: str
    status: str
    final_state_hash: str
    steps: int
    exited: bool
    exit_code: int
    submitted_at: int
    games: list[int]


@dataclass(frozen=True)
class GameSummary:
    id: int
    claim_id: int
    challenger: str
    status: str
    rounds: int


@dataclass(frozen=True)
class RequestReport:
    id: int
    status: str  # requested, claimed, challenged, final, rejected, expired
    requester: str
    program_id: int
    model_id: int
    fee: int
    step_limit: int
    deadline: int
    input_size: int
    result: OutputView | None
    claims: list[ClaimView]
    games: list[GameSummary]
    transactions: list[TransactionView] = field(default_factory=list)


def decode_output(kind: ResultKind, exit_code: int, output: bytes, embedding: bool = False) -> OutputView:
    """The result's kind and raw output, and the output decoded: the predicted class and scores of a classifier,
    or the vector and its norm of an embedding model (whose "predicted class", the index of its largest element,
    means nothing)."""
    kind = ResultKind(kind)
    raw = OutputView(kind.label, kind != ResultKind.STEP_LIMIT_REACHED, exit_code, _hex(output))
    try:
        prediction = Prediction.from_bytes(output) if kind == ResultKind.OUTPUT and exit_code == 0 else None
    except OpmlError:
        prediction = None
    if prediction is None:
        return raw
    values = [float(value) for value in prediction.scores]
    if embedding:
        norm = float(np.sqrt(np.sum(prediction.scores.astype(np.float64) ** 2)))
        return replace(raw, embedding=values, norm=norm)
    return replace(raw, predicted=prediction.predicted, scores=values)


class EmbeddingModels:
    """Whether a registered model's output is an embedding (a text model's: opml.requests.is_text_model) rather
    than class scores, by on-chain id; remembered, since a registration never changes. A model whose file
    cannot be had now counts as a classifier, and is asked about again next time."""

    def __init__(self, registry: Registry, models):
        self.registry = registry
        self.models = models  # a ModelSource: model_bytes(root, uri)
        self._known: dict[int, bool] = {}

    def __call__(self, model_id: int) -> bool:
        from ..models.formats import parse_model
        from ..requests import is_text_model

        if model_id not in self._known:
            try:
                registered = self.registry.model(model_id)
                graph = parse_model(self.models.model_bytes(registered.root, registered.uri))
            except OpmlError:
                return False
            self._known[model_id] = is_text_model(graph)
        return self._known[model_id]


def request_status(registry: Registry, request_id: int, claims: list[ClaimView], result_indexed: bool) -> str:
    """The request's status; "final" once its result is in the index too (so a final report has a result)."""
    request = registry.request(request_id)
    if request.status == RequestStatus.FINALIZED and result_indexed:
        return "final"
    if request.status == RequestStatus.CANCELLED:
        return "expired"
    live = [claim for claim in claims if claim.status in ("live", "finalized")]
    if any(registry.claim(claim.id).open_games > 0 for claim in live):
        return "challenged"
    if live:
        return "claimed"
    return "rejected" if claims else "requested"


def request_report(
    registry: Registry,
    store: AgentStore,
    receipts: Receipts,
    request_id: int,
    is_embedding_model: Callable[[int], bool] = lambda model_id: False,
) -> RequestReport:
    """The report of a request; `is_embedding_model(model id)` says how to decode its result."""
    requested = store.events(name="InferenceRequested", request_id=request_id)
    if not requested:
        registry.request(request_id)  # NotFound if the chain does not know it either
        raise Unavailable(f"request {request_id} is on-chain but not indexed yet: retry in a moment")
    args = requested[0].args
    claims = [_claim_view(registry, store, row) for row in store.events(name="ClaimSubmitted", request_id=request_id)]
    game_ids = [game_id for claim in claims for game_id in claim.games]
    games = [_game_summary(registry, game_id) for game_id in game_ids]
    finalized = store.events(name="ResultFinalized", request_id=request_id)
    result = None
    if finalized:
        final = finalized[0].args
        embedding = is_embedding_model(args["modelId"])
        result = decode_output(final["kind"], final["exitCode"], _bytes(final["output"]), embedding)
    related = list(requested) + store.events(request_id=request_id)
    for game_id in game_ids:
        related += store.events(game_id=game_id)
    unique = {(row.block_number, row.log_index): row for row in related}
    ordered = [unique[key] for key in sorted(unique)]
    transactions = transactions_of(ordered, receipts)
    for row in store.transactions(intent_prefix=f"commit r{request_id}"):  # our commitments carry no request id
        if row.intent == f"commit r{request_id}" and row.status == "mined":
            gas, sender = receipts.of(row.tx_hash)
            transactions.append(TransactionView(row.tx_hash, ["ClaimCommitted"], gas, sender, row.block_number or 0))
    transactions.sort(key=lambda view: view.block_number)
    return RequestReport(
        id=request_id,
        status=request_status(registry, request_id, claims, result is not None),
        requester=args["requester"],
        program_id=args["programId"],
        model_id=args["modelId"],
        fee=args["fee"],
        step_limit=args["stepLimit"],
        deadline=args["deadline"],
        input_size=len(_bytes(args["input"])),
        result=result,
        claims=claims,
        games=games,
        transactions=transactions,
    )


def _claim_view(registry: Registry, store: AgentStore, row: EventRow) -> ClaimView:
    args = row.args
    claim = registry.claim(args["claimId"])
    games = [event.game_id for event in store.events(name="GameStarted", claim_id=args["claimId"])]
    return ClaimView(
        id=args["claimId"],
        claimant=args["claimant"],
        status=claim.status.name.lower(),
        final_state_hash=args["finalStateHash"],
        steps=args["steps"],
        exited=args["exited"],
        exit_code=args["exitCode"],
        submitted_at=claim.submitted_at,
        games=games,
    )


def _game_summary(registry: Registry, game_id: int) -> GameSummary:
    game = registry.game(game_id)
    return GameSummary(game_id, game.claim_id, game.challenger, game.status.name.lower(), game.rounds)


# --- disputes -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RoundView:
    round: int
    lo: int
    hi: int
    hashes: list[str]  # the defender's state hashes at the interior points
    points: list[int]  # the steps of those hashes
    segment: int | None  # the challenger's choice; None while it is to choose
    next_lo: int | None
    next_hi: int | None
    bisect_tx: str
    select_tx: str | None


@dataclass(frozen=True)
class FinalStepView:
    step: int
    pc: int
    instruction: str  # 0x-hex word
    mnemonic: str
    pre_state_hash: str
    defender_post_state_hash: str
    true_post_state_hash: str | None  # from this agent's trace, when it has one


@dataclass(frozen=True)
class BondView:
    account: str
    amount: int
    kind: str  # credited, paid, burned


@dataclass(frozen=True)
class DisputeReport:
    id: int
    status: str  # active, defender_won, challenger_won
    winner: str | None
    request_id: int
    claim_id: int
    claim_status: str
    defender: str
    challenger: str
    claimed_final_state_hash: str
    claimed_steps: int
    lo: int
    hi: int
    rounds: int
    turn: str
    defender_clock_left: int
    challenger_clock_left: int
    chain_time: int
    history: list[RoundView]
    final_step: FinalStepView | None
    bonds: list[BondView]
    transactions: list[TransactionView]
    gas_total: int


def dispute_report(
    registry: Registry, store: AgentStore, receipts: Receipts, game_id: int, trace: TraceProvider | None = None
) -> DisputeReport:
    game = registry.game(game_id)
    claim = registry.claim(game.claim_id)
    now = registry.now()
    events = store.events(game_id=game_id)
    started = store.events(name="GameStarted", game_id=game_id)
    history = _rounds(registry, events)
    ended = [row for row in events if row.name == "GameEnded"]
    bonds = _bonds(store, [row.tx_hash for row in ended])
    transactions = transactions_of(started + events, receipts)
    winner = None
    if game.status == GameStatus.DEFENDER_WON:
        winner = claim.claimant
    elif game.status == GameStatus.CHALLENGER_WON:
        winner = game.challenger
    return DisputeReport(
        id=game_id,
        status=game.status.name.lower(),
        winner=winner,
        request_id=claim.request_id,
        claim_id=game.claim_id,
        claim_status=claim.status.name.lower(),
        defender=claim.claimant,
        challenger=game.challenger,
        claimed_final_state_hash=_hex(claim.final_state_hash),
        claimed_steps=claim.steps,
        lo=game.lo,
        hi=game.hi,
        rounds=game.rounds,
        turn="defender" if game.turn == Turn.DEFENDER else "challenger",
        defender_clock_left=max(0, game.clock_left(Turn.DEFENDER, now)),
        challenger_clock_left=max(0, game.clock_left(Turn.CHALLENGER, now)),
        chain_time=now,
        history=history,
        final_step=_final_step(game, trace) if game.width == 1 else None,
        bonds=bonds,
        transactions=transactions,
        gas_total=sum(tx.gas_used for tx in transactions),
    )


def _rounds(registry: Registry, events: list[EventRow]) -> list[RoundView]:
    arity = registry.parameters.arity
    rounds: list[RoundView] = []
    pending: EventRow | None = None
    for row in events:
        if row.name == "Bisected":
            pending = row
        elif row.name == "SegmentSelected" and pending is not None:
            rounds.append(_round(len(rounds) + 1, pending, row, arity))
            pending = None
    if pending is not None:
        rounds.append(_round(len(rounds) + 1, pending, None, arity))
    return rounds


def _round(number: int, bisected: EventRow, selected: EventRow | None, arity: int) -> RoundView:
    lo, hi = bisected.args["lo"], bisected.args["hi"]
    return RoundView(
        round=number,
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


def _final_step(game: Game, trace: TraceProvider | None) -> FinalStepView:
    pre_state_hash, true_post = _hex(game.lo_hash), None
    pc, word = 0, 0
    if trace is not None:
        witness = trace.step_witness(game.lo)
        state = State.decode(witness.state_data)
        if state.hash == game.lo_hash:  # the agreed state is the true one: we can say what the step does
            pc = state.pc
            leaf = witness.proof[:32]
            offset = pc & 31
            word = int.from_bytes(leaf[offset : offset + 4], "big")
            true_post = _hex(trace.state_hashes([game.lo + 1])[0])
    return FinalStepView(
        step=game.lo,
        pc=pc,
        instruction=f"0x{word:08x}",
        mnemonic=mnemonic(word) if trace is not None else "unknown",
        pre_state_hash=pre_state_hash,
        defender_post_state_hash=_hex(game.hi_hash),
        true_post_state_hash=true_post,
    )


def _bonds(store: AgentStore, tx_hashes: list[str]) -> list[BondView]:
    bonds = []
    for row in store.events_in(tx_hashes):
        if row.name == "Credited":
            bonds.append(BondView(row.args["account"], row.args["amount"], "credited"))
        elif row.name == "Paid":
            bonds.append(BondView(row.args["account"], row.args["amount"], "paid"))
        elif row.name == "Burned":
            bonds.append(BondView("burned", row.args["amount"], "burned"))
    return bonds


# --- lists: requests and games at a glance ------------------------------------------------------------
# What the challenger's explorer page and its JSON lists show per row: a few chain reads each, no receipts,
# so a page of them stays cheap however long the history is.


@dataclass(frozen=True)
class RequestBrief:
    id: int
    status: str  # as request_report says
    model_id: int
    model_root: str | None  # from ModelRegistered in the index
    requested_at: int  # chain time
    claims: int
    games: int
    exited: bool | None  # of the final result, once there is one
    exit_code: int | None
    kind: str | None  # of the final result (OutputView.kind), once there is one
    predicted: int | None  # for classifiers
    embedding: bool = False  # the final result is an embedding model's vector (no class)


def request_brief(
    registry: Registry,
    store: AgentStore,
    request_id: int,
    model_roots: dict[int, str],
    is_embedding_model: Callable[[int], bool] = lambda model_id: False,
) -> RequestBrief:
    """A request's row: `model_roots` maps model ids to roots (`model_roots(store)`, read once per page)."""
    requested = store.events(name="InferenceRequested", request_id=request_id)
    if not requested:
        raise Unavailable(f"request {request_id} is not indexed yet: retry in a moment")
    args = requested[0].args
    claims = [_claim_view(registry, store, row) for row in store.events(name="ClaimSubmitted", request_id=request_id)]
    finalized = store.events(name="ResultFinalized", request_id=request_id)
    result = None
    if finalized:
        final = finalized[0].args
        embedding = is_embedding_model(args["modelId"])
        result = decode_output(final["kind"], final["exitCode"], _bytes(final["output"]), embedding)
    return RequestBrief(
        id=request_id,
        status=request_status(registry, request_id, claims, result is not None),
        model_id=args["modelId"],
        model_root=model_roots.get(args["modelId"]),
        # the registry sets the deadline to the request's block time plus the request timeout
        requested_at=args["deadline"] - registry.parameters.request_timeout,
        claims=len(claims),
        games=sum(len(claim.games) for claim in claims),
        exited=result.exited if result else None,
        exit_code=result.exit_code if result else None,
        kind=result.kind if result else None,
        predicted=result.predicted if result else None,
        embedding=bool(result and result.embedding),
    )


def model_roots(store: AgentStore) -> dict[int, str]:
    """Registered models' roots by id, from the index."""
    return {row.args["modelId"]: row.args["root"] for row in store.events(name="ModelRegistered")}


@dataclass(frozen=True)
class GameBrief:
    id: int
    request_id: int
    claim_id: int
    defender: str
    challenger: str
    status: str  # active, defender_won, challenger_won
    winner: str | None
    claimed_steps: int
    lo: int
    hi: int
    rounds: int
    turn: str  # defender or challenger
    defender_clock_left: int  # seconds at `now`, in chain time
    challenger_clock_left: int


def game_brief(registry: Registry, game_id: int, now: int) -> GameBrief:
    """A game's row at chain time `now` (read once per page, so every row's clocks agree)."""
    game = registry.game(game_id)
    claim = registry.claim(game.claim_id)
    winner = {GameStatus.DEFENDER_WON: claim.claimant, GameStatus.CHALLENGER_WON: game.challenger}.get(game.status)
    return GameBrief(
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
