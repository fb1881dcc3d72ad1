"""An agent's Prometheus metrics, named in op-challenger's spirit; they join the service's /metrics."""

from __future__ import annotations

from ..service.metrics import Metrics


class AgentMetrics:
    def __init__(self, role: str, metrics: Metrics | None = None):
        self.metrics = metrics or Metrics(role)
        m = self.metrics
        self.tracked_games = m.gauge("tracked_games", "Games this agent plays, by status", ["status"])
        self.in_flight = m.gauge("in_flight_jobs", "Jobs running now (one per request, claim or game)")
        self.moves = m.counter("moves_total", "Game moves sent, by kind", ["kind"])
        self.steps_resolved = m.counter("steps_resolved_total", "Games settled by a one-step proof this agent sent")
        self.vm_seconds = m.counter("vm_seconds_total", "Seconds spent computing traces")
        self.bonds_won = m.counter("bonds_won_wei_total", "Wei won from other parties' bonds")
        self.bonds_lost = m.counter("bonds_lost_wei_total", "Wei of this agent's bonds forfeited")
        self.claims_sent = m.counter("claims_sent_total", "Claims revealed")
        self.challenges_sent = m.counter("challenges_sent_total", "Challenges opened")
        self.finalized = m.counter("finalized_total", "Claims of this agent finalized")
        self.tx_failures = m.counter("tx_failures_total", "Transactions the chain refused")
        self.errors = m.counter("errors_total", "Failed ticks and jobs, by error kind", ["kind"])
        self.nonce = m.gauge("nonce", "The next nonce of the agent's key")
        self.balance = m.gauge("balance_wei", "The agent's account balance")
        self.block_lag = m.gauge("block_lag", "Blocks between the chain's safe head and the agent's cursor")
