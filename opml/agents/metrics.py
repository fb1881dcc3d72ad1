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
        self.margin = m.histogram(
            "agent_deadline_margin_seconds",
            "Chain seconds left before the deadline (a clock's end, a window's end) when an action was mined",
            buckets=(0, 1, 2, 3, 5, 8, 13, 21, 34, 55, 89, 144, 233, 377, 610, float("inf")),
        )
        self.move_latency = m.histogram(
            "agent_move_latency_seconds",
            "Seconds from seeing the opponent's move to this agent's answer mined",
            buckets=(0.05, 0.1, 0.25, 0.5, 1, 2, 3, 5, 8, 13, float("inf")),
        )
        self.missed = m.counter("deadlines_missed_total", "Actions that could no longer be made in time", ["action"])
        self.results_against_us = m.counter(
            "results_finalized_against_ours_total", "Requests whose final result differs from the one computed here"
        )
