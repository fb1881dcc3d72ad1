"""The loop every agent runs: monitor the chain, schedule the work that is due, run it in a bounded pool.

Each tick:
1. **monitor**: read the registry's events since the stored cursor (confirmations and ranges as
   configured), store the new ones and the new cursor in one transaction, and turn each into
   work (`on_event`): a request to serve, a claim to check, a game to play.
2. **schedule**: every open piece of work not already in flight is submitted to the pool, most
   urgent first (games before claims before requests, then by chain-time deadline). One job per
   key is in flight at a time.
3. **withdraw**: credits are pulled on their own schedule.

A job re-reads the chain every time it runs (the chain is the truth; the store is memory) and
sends through the transaction manager with an intent per move, so a restarted agent picks up
every open request and game and never sends a move twice. Subclasses (the submitter and the
challenger) say what an event means and what a job does.
"""

from __future__ import annotations

import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass

import structlog

from ..chain.client import TransactionManager
from ..chain.errors import TxReverted
from ..chain.events import ChainEvent, EventReader
from ..chain.registry import Deployment, Registry
from ..errors import OpmlError
from .metrics import AgentMetrics
from .store import AgentStore
from ..chain.registry import Game, Turn
from ..game.moves import Resolve
from ..game.solver import Solver
from ..game.trace import TraceProvider
from .player import BisectionSource, Player
from .responder import Responder, move_name
from .traces import RequestView, TraceSource, request_view

CURSOR = "registry"
# Work kinds, most urgent first: a game's clock runs, a claim's window closes, a request waits.
PRIORITY = {"game": 0, "claim": 1, "request": 2, "sweep": 3}


@dataclass(frozen=True)
class AgentConfig:
    poll_interval: float = 0.25  # seconds between ticks
    confirmations: int = 0
    max_log_range: int = 2_000
    workers: int = 4
    withdraw_interval: float = 10.0  # seconds between withdrawals of credits


class Agent:
    role = "agent"

    def __init__(
        self,
        *,
        registry: Registry,
        tx: TransactionManager,
        store: AgentStore,
        traces: TraceSource,
        deployment: Deployment,
        config: AgentConfig = AgentConfig(),
        metrics: AgentMetrics | None = None,
    ):
        self.registry = registry
        self.tx = tx
        self.store = store
        self.traces = traces
        self.deployment = deployment
        self.config = config
        self.metrics = metrics or AgentMetrics(self.role)
        self.log = structlog.get_logger(f"opml.agents.{self.role}").bind(agent=self.role, address=tx.address)
        self.reader = EventReader(
            registry.w3, registry.contract, confirmations=config.confirmations, max_range=config.max_log_range
        )
        self.responder = Responder(registry, tx)
        self._pool = ThreadPoolExecutor(max_workers=config.workers, thread_name_prefix=f"{self.role}-job")
        self._in_flight: dict[str, Future] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._last_withdraw = 0.0
        self.caught_up = False  # the monitor has read up to the chain's head at least once
        self.last_error: str | None = None

    @property
    def address(self) -> str:
        return self.tx.address

    # --- running -----------------------------------------------------------------------------------

    def start(self) -> None:
        self._stop.clear()
        self._thread = threading.Thread(target=self.run_forever, name=f"{self.role}-agent", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 30.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
        self._pool.shutdown(wait=True, cancel_futures=True)

    def run_forever(self) -> None:
        self.log.info("agent started", registry=self.registry.address)
        while not self._stop.is_set():
            started = time.monotonic()
            try:
                self.tick()
                self.last_error = None
            except OpmlError as error:  # the node went away, a service is down: report, retry next tick
                self.last_error = str(error)
                self.metrics.errors.labels(error.kind.value).inc()
                self.log.warning("tick failed", error=str(error))
            except Exception as error:  # a bug: keep the agent alive, make it loud
                self.last_error = repr(error)
                self.metrics.errors.labels("internal").inc()
                self.log.exception("tick failed")
            self._stop.wait(max(0.0, self.config.poll_interval - (time.monotonic() - started)))
        self.log.info("agent stopped")

    def tick(self) -> None:
        self.monitor()
        self.schedule()
        self.withdraw_when_due()

    # --- monitor -----------------------------------------------------------------------------------

    def monitor(self) -> None:
        cursor = self.store.cursor(CURSOR, self.deployment.start_block - 1)
        events, new_cursor = self.reader.read(cursor)
        for event in self.store.save_events(CURSOR, events, new_cursor):
            self.on_event(event)
        head = self.reader.safe_head()
        self.metrics.block_lag.set(max(0, head - new_cursor))
        self.caught_up = True

    def on_event(self, event: ChainEvent) -> None:
        """Turn a new event into work (subclasses)."""

    # --- schedule ----------------------------------------------------------------------------------

    def schedule(self) -> None:
        for key, future in list(self._in_flight.items()):
            if future.done():
                del self._in_flight[key]
        now = time.time()
        open_work = sorted(self.store.open_work(), key=self._urgency)
        for row in open_work:
            if row.key not in self._in_flight and (row.detail or {}).get("wake_at", 0) <= now:
                self._in_flight[row.key] = self._pool.submit(self._run_job, row.key)
        self.metrics.in_flight.set(len(self._in_flight))
        for state, count in self.store.count_work("game:").items():
            self.metrics.tracked_games.labels(state).set(count)

    @staticmethod
    def _urgency(row) -> tuple:
        kind = row.key.split(":", 1)[0]
        return PRIORITY.get(kind, 9), (row.detail or {}).get("due", float("inf"))

    def _run_job(self, key: str) -> None:
        log = self.log.bind(work=key)
        try:
            self.work_on(key)
        except OpmlError as error:
            self.metrics.errors.labels(error.kind.value).inc()
            if isinstance(error, TxReverted):
                self.metrics.tx_failures.inc()
            log.warning("work failed; retrying next tick", error=str(error))
        except Exception:
            self.metrics.errors.labels("internal").inc()
            log.exception("work failed; retrying next tick")

    def work_on(self, key: str) -> None:
        """Do whatever `key` needs now (subclasses)."""
        raise NotImplementedError

    def sleep_work(self, key: str, seconds: float) -> None:
        """Leave `key` alone for `seconds` (e.g. until a claim's window ends): a claim waiting out its window
        costs nothing per tick. Relative to now, so a chain clock that runs ahead of this one does no harm;
        the chain still decides when the time has come (the move is simulated first)."""
        self.store.set_work(key, self.store.work(key).state, wake_at=time.time() + max(0.0, seconds))

    # --- payments ----------------------------------------------------------------------------------

    def withdraw_when_due(self) -> None:
        if time.monotonic() - self._last_withdraw < self.config.withdraw_interval:
            return
        self._last_withdraw = time.monotonic()
        self.metrics.balance.set(self.tx.balance())
        self.metrics.nonce.set(self.tx.nonce())
        credit = self.registry.balance_of(self.address)
        if credit == 0:
            return
        try:
            self.tx.send(self.registry.withdraw(), intent=f"withdraw {credit} at nonce {self.tx.nonce()}")
            self.log.info("withdrew credit", wei=credit)
        except TxReverted as error:
            if error.name != "NothingToWithdraw":
                raise

    # --- helpers for subclasses --------------------------------------------------------------------

    def request_view(self, request_id: int) -> RequestView:
        events = self.store.events(name="InferenceRequested", request_id=request_id)
        if not events:
            raise OpmlError(f"request {request_id} has not been seen on the chain yet")
        return request_view(self.registry, events[0].args)

    def trace_for(self, view: RequestView) -> TraceProvider:
        """The request's trace, its run done (the time it takes counts as VM seconds)."""
        started = time.monotonic()
        trace = self.traces.trace_for(view)
        trace.final_claim()
        self.metrics.vm_seconds.inc(time.monotonic() - started)
        return trace

    def play_turn(self, game_id: int, game: Game, side: Turn, solver: Solver, bisections: BisectionSource) -> None:
        """Make `side`'s move in `game` if one is due now, and count it."""
        outcome = Player(self.registry, self.responder, side, solver, bisections).act(game_id, game)
        if outcome is not None and outcome.sent is not None:
            self.metrics.moves.labels(move_name(outcome.move)).inc()
            if isinstance(outcome.move, Resolve):
                self.metrics.steps_resolved.inc()

    def my_claims(self, request_id: int) -> list[int]:
        """Claims this agent made on a request (from its ClaimSubmitted events)."""
        return [
            row.claim_id
            for row in self.store.events(name="ClaimSubmitted", request_id=request_id)
            if row.args["claimant"].lower() == self.address.lower()
        ]

    def sent(self, intent: str) -> bool:
        """Whether a transaction for `intent` was mined (per the journal)."""
        return any(
            row.status == "mined" for row in self.store.transactions(intent_prefix=intent) if row.intent == intent
        )

    def send(self, call, *, intent: str, value: int = 0, already_done: frozenset[str] = frozenset()) -> bool:
        """Send through the transaction manager; False if the chain says it is no longer needed."""
        try:
            self.tx.send(call, value=value, intent=intent)
        except TxReverted as error:
            if error.name in already_done:
                self.log.info("no longer needed", intent=intent, reason=error.name)
                return False
            raise
        return True
