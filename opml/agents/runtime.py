"""The loop every agent runs: monitor the chain, schedule what is due by its deadline, compute off the movers.

Each tick (every `poll_interval`, or at once when a job ends or a trace is ready):
1. **monitor**: read the registry's events since the stored cursor (confirmations and ranges as
   configured), store the new ones, with their block times, and the new cursor in one transaction,
   and turn each into work (`on_event`): a request to serve, a claim to check, a game to play. An
   opponent's move wakes the game it was made in at once.
2. **schedule**: the open work that is due runs on a bounded pool, the nearest deadline in chain
   time first whatever its kind (a claim's window end, the agent's own clock in a game, a
   finalize's window end), one job per key at a time (opml.agents.scheduler).
3. **withdraw**: credits are pulled on their own schedule.

Trace runs (CPU-bound, or a wait on the vm-worker) never hold a job worker: a job that needs a trace
not yet computed starts it on the compute pool (`PreparedTraces`) and returns; the trace's completion
wakes it. Every action with a deadline records its margin (opml.agents.deadlines); a job that fails
backs off, doubling, up to `max_backoff`.

A job re-reads the chain every time it runs (the chain is the truth; the store is memory) and sends
through the transaction manager with an intent per move, so a restarted agent picks up every open
request and game and never sends a move twice. Subclasses say what an event means and what a job does.
"""

from __future__ import annotations

import threading
import time
from collections import defaultdict
from dataclasses import dataclass

import structlog

from ..chain.client import Sent, TransactionManager
from ..chain.errors import TxReverted
from ..chain.events import ChainEvent, EventReader
from ..chain.registry import Deployment, Registry
from ..errors import OpmlError
from ..game.moves import Resolve, Timeout
from ..game.solver import Solver
from ..protocol.types import Game, Turn
from .deadlines import Margin
from .metrics import AgentMetrics
from .player import BisectionSource, Player
from .responder import Responder, move_name
from .scheduler import Scheduler
from .solvers import SolverFactory, honest
from .store import REGISTRY_CURSOR, AgentStore
from .traces import PreparedTraces, RequestView, TraceSource, request_view
from .work import NO_DEADLINE, DueWork, WorkKey, WorkKind

GAUGE_INTERVAL = 1.0  # seconds between updates of the gauges that need a query
WAITING_FOR_TRACE = 60.0  # seconds a job waiting for its trace sleeps at most (it is woken when it is ready)


@dataclass(frozen=True)
class AgentConfig:
    poll_interval: float = 0.25  # seconds between ticks
    confirmations: int = 0
    max_log_range: int = 2_000
    workers: int = 4  # jobs (moves, checks, claims) at once
    compute_workers: int = 2  # trace runs at once
    withdraw_interval: float = 10.0  # seconds between withdrawals of credits
    max_backoff: float = 10.0  # seconds a failing job waits at most before it is tried again


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
        solvers: SolverFactory = honest,
    ):
        self.registry = registry
        self.tx = tx
        self.store = store
        self.deployment = deployment
        self.config = config
        self.metrics = metrics or AgentMetrics(self.role)
        self.solvers = solvers
        self.log = structlog.get_logger(f"opml.agents.{self.role}").bind(agent=self.role, address=tx.address)
        self.reader = EventReader(
            registry.w3, registry.contract, confirmations=config.confirmations, max_range=config.max_log_range
        )
        self.responder = Responder(registry, tx)
        self._wake = threading.Event()
        self.scheduler = Scheduler(self._run_job, workers=config.workers, name=self.role, on_done=self._wake.set)
        self.traces = PreparedTraces(
            traces,
            workers=config.compute_workers,
            name=self.role,
            on_ready=self._trace_ready,
            on_seconds=self.metrics.vm_seconds.inc,
        )
        self._waiting: dict[object, set[WorkKey]] = defaultdict(set)  # a computation -> the work waiting for it
        self._solvers: dict[int, Solver] = {}
        self._views: dict[int, RequestView] = {}
        self._failures: dict[WorkKey, int] = defaultdict(int)
        self._seen_at: dict[WorkKey, float] = {}  # when the event that made a game due was seen (monotonic)
        self._woken: set[WorkKey] = set()  # keys woken by an event while their job ran
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._last_withdraw = 0.0
        self._last_gauges = 0.0
        self._cursor: int | None = None  # the last block read (kept in the store too, for restarts)
        self.chain_time = 0  # of the newest block the monitor has seen
        self.caught_up = False  # the monitor has read up to the chain's head at least once
        self.last_error: str | None = None

    @property
    def address(self) -> str:
        return self.tx.address

    # --- running -----------------------------------------------------------------------------------

    def start(self) -> None:
        self._stop.clear()
        self._wake_everything()
        self._thread = threading.Thread(target=self.run_forever, name=f"{self.role}-agent", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 30.0) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
        self.scheduler.shutdown()
        self.traces.shutdown()

    def run_forever(self) -> None:
        self.log.info("agent started", registry=self.registry.address)
        while not self._stop.is_set():
            self._wake.clear()
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
            self._wake.wait(self.config.poll_interval)
        self.log.info("agent stopped")

    def tick(self) -> None:
        self.monitor()
        self.schedule()
        self.withdraw_when_due()

    def _wake_everything(self) -> None:
        """At start, every open piece of work runs once: what it waited for (a trace in memory, an event) may
        have come while the agent was down."""
        for row in self.store.open_work():
            self.store.set_work(row.work_key, wake_at=0)

    # --- monitor -----------------------------------------------------------------------------------

    def monitor(self) -> None:
        """One call when nothing happened (the head block); the logs and block times of new blocks otherwise."""
        head, self.chain_time = self.reader.head()
        if self._cursor is None:
            self._cursor = self.store.cursor(REGISTRY_CURSOR, self.deployment.start_block - 1)
        if head > self._cursor:
            events, new_cursor = self.reader.read(self._cursor, until=head, timestamps=True)
            for event in self.store.save_events(REGISTRY_CURSOR, events, new_cursor):
                try:
                    self.on_event(event)
                except OpmlError as error:  # the event is stored; the work it makes is picked up by its job
                    self.log.warning("could not act on an event yet", event=event.name, error=str(error))
            self._cursor = new_cursor
        self.metrics.block_lag.set(max(0, head - self._cursor))
        self.caught_up = True

    def on_event(self, event: ChainEvent) -> None:
        """Turn a new event into work (subclasses)."""

    def wake_game(self, game_id: int) -> None:
        """A move was made in a game this agent plays: it is due now, and its move latency counts from now."""
        key = WorkKey.game(game_id)
        self._seen_at[key] = time.monotonic()
        self.wake(key)

    def wake(self, key: WorkKey) -> None:
        """Make `key` due now. If its job is running, it runs again as soon as it ends: the job may have read the
        chain before the event that wakes it, and may be putting itself to sleep right now."""
        with self._lock:
            self._woken.add(key)
        self.store.wake(key)

    # --- schedule ----------------------------------------------------------------------------------

    def schedule(self) -> None:
        now = time.time()
        due = [self._due(row) for row in self.store.open_work()]
        self.scheduler.dispatch(due, now)
        if time.monotonic() - self._last_gauges >= GAUGE_INTERVAL:
            self._last_gauges = time.monotonic()
            self.metrics.in_flight.set(self.scheduler.in_flight())
            for state, count in self.store.count_work(WorkKind.GAME).items():
                self.metrics.tracked_games.labels(state).set(count)

    def _due(self, row) -> DueWork:
        detail = row.detail or {}
        # new work has no deadline yet: it counts as due now, so it runs and learns its own
        deadline = detail.get("deadline", self.chain_time)
        return DueWork(row.work_key, NO_DEADLINE if deadline is None else deadline, detail.get("wake_at", 0))

    def _run_job(self, key: WorkKey) -> None:
        log = self.log.bind(work=str(key))
        with self._lock:
            self._woken.discard(key)
        try:
            self.work_on(key)
        except OpmlError as error:
            self.metrics.errors.labels(error.kind.value).inc()
            if isinstance(error, TxReverted):
                self.metrics.tx_failures.inc()
            self._back_off(key, log, str(error))
            return
        except Exception as error:
            self.metrics.errors.labels("internal").inc()
            log.exception("work failed")
            self._back_off(key, log, repr(error))
            return
        finally:
            with self._lock:
                woken = key in self._woken
            if woken:  # an event came while it ran: whatever it decided, it looks again now
                self.store.wake(key)
        self._failures.pop(key, None)

    def _back_off(self, key: WorkKey, log, error: str) -> None:
        """Try `key` again later, twice as late each time it fails in a row; only the first failure of a run
        of them is a warning (a doomed move retried every tick would fill the log)."""
        failures = self._failures[key] = self._failures[key] + 1
        delay = min(self.config.max_backoff, self.config.poll_interval * 2**failures)
        (log.warning if failures == 1 else log.debug)("work failed; trying again later", error=error,
                                                       failures=failures, retry_in=round(delay, 2))  # fmt: skip
        self.store.set_work(key, wake_at=time.time() + delay)

    def work_on(self, key: WorkKey) -> None:
        """Do whatever `key` needs now (subclasses)."""
        raise NotImplementedError

    def sleep_work(self, key: WorkKey, seconds: float) -> None:
        """Leave `key` alone for `seconds` (e.g. until a claim's window ends): a claim waiting out its window
        costs nothing per tick. Relative to now, so a chain clock that runs ahead of this one does no harm;
        the chain still decides when the time has come (the move is simulated first)."""
        self.store.set_work(key, wake_at=time.time() + max(0.0, seconds))

    # --- traces --------------------------------------------------------------------------------------

    def request_view(self, request_id: int) -> RequestView:
        view = self._views.get(request_id)
        if view is None:
            events = self.store.events(name="InferenceRequested", request_id=request_id)
            if not events:
                raise OpmlError(f"request {request_id} has not been seen on the chain yet")
            view = self._views[request_id] = request_view(self.registry, events[0].args)
        return view

    def prepare(self, request_id: int) -> None:
        """Start computing a request's trace now, before any job needs it."""
        self.traces.prepare(self.request_view(request_id))

    def solver_or_wait(self, key: WorkKey, request_id: int) -> Solver | None:
        """The solver this agent plays `request_id` with, if its trace is computed; otherwise None, the run
        started and `key` asleep until it is done."""
        if request_id in self._solvers:
            return self._solvers[request_id]
        view = self.request_view(request_id)
        with self._lock:  # so the trace's completion cannot slip in between and leave `key` asleep
            trace = self.traces.ready(view)
            if trace is None:
                self._waiting[request_id].add(key)
                self.store.set_work(key, wake_at=time.time() + WAITING_FOR_TRACE)
                return None
        solver = self._solvers[request_id] = self.solvers(view, trace, self.registry.parameters.arity)
        return solver

    def computed_or_wait(self, key: WorkKey, task, compute):
        """The result of `compute()` if the compute pool has finished it under `task`; otherwise None, the
        computation started and `key` asleep until it is done (a node run for phase 2, say)."""
        with self._lock:
            result = self.traces.task(task, compute)
            if result is None:
                self._waiting[task].add(key)
                self.store.set_work(key, wake_at=time.time() + WAITING_FOR_TRACE)
        return result

    def _trace_ready(self, request_id) -> None:
        with self._lock:
            keys = self._waiting.pop(request_id, set())
        for key in keys:
            self.wake(key)
        self._wake.set()

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

    # --- moves and their margins ---------------------------------------------------------------------

    def play_turn(
        self, key: WorkKey, game_id: int, game: Game, side: Turn, solver: Solver, bisections: BisectionSource
    ) -> None:
        """Make `side`'s move in `game` if one is due now, count it, and record its margin against the
        mover's clock."""
        outcome = Player(self.registry, self.responder, side, solver, bisections).act(game_id, game)
        if outcome is None or outcome.sent is None:
            return
        self.metrics.moves.labels(move_name(outcome.move)).inc()
        if isinstance(outcome.move, Resolve):
            self.metrics.steps_resolved.inc()
        if not isinstance(outcome.move, Timeout) and game.turn == side:
            self.record_margin(key, move_name(outcome.move), outcome.sent, game.deadline,
                               self.registry.parameters.clock_budget)  # fmt: skip

    def record_margin(self, key: WorkKey, action: str, sent: Sent, deadline: int, budget: int) -> Margin:
        """How much of `budget` was left when `sent` was mined before `deadline` (chain time): kept, measured,
        and a warning when it was less than a quarter."""
        mined_at = self.registry.w3.eth.get_block(sent.block_number)["timestamp"]
        margin = Margin(action, deadline, mined_at, budget)
        seen_at = self._seen_at.pop(key, None)
        latency_ms = None if seen_at is None else round((time.monotonic() - seen_at) * 1000)
        self.store.record_margin(key, action, "0x" + sent.tx_hash.hex(), deadline, mined_at, budget, latency_ms)
        self.metrics.margin.observe(margin.left)
        if latency_ms is not None:
            self.metrics.move_latency.observe(latency_ms / 1000)
        if margin.low:
            self.log.warning("mined with little time left", work=str(key), action=action, left_s=margin.left,
                             budget_s=budget, latency_ms=latency_ms)  # fmt: skip
        return margin

    # --- helpers for subclasses --------------------------------------------------------------------

    def my_claims(self, request_id: int) -> list[int]:
        """Claims this agent made on a request (from its ClaimSubmitted events)."""
        return [
            row.claim_id
            for row in self.store.events(name="ClaimSubmitted", request_id=request_id)
            if row.args["claimant"].lower() == self.address.lower()
        ]

    def is_mine(self, claim_id: int) -> bool:
        rows = self.store.events(name="ClaimSubmitted", claim_id=claim_id)
        return bool(rows) and rows[0].args["claimant"].lower() == self.address.lower()

    def sent(self, intent: str) -> bool:
        """Whether a transaction for `intent` was mined (per the journal)."""
        return any(
            row.status == "mined" for row in self.store.transactions(intent_prefix=intent) if row.intent == intent
        )

    def send(self, call, *, intent: str, value: int = 0, already_done: frozenset[str] = frozenset()) -> Sent | None:
        """Send through the transaction manager; None if the chain says it is no longer needed."""
        try:
            return self.tx.send(call, value=value, intent=intent)
        except TxReverted as error:
            if error.name in already_done:
                self.log.info("no longer needed", intent=intent, reason=error.name)
                return None
            raise
