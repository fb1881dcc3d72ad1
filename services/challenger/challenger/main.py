"""The challenger service: the app factory and the lifespan that starts (and stops) its agent."""

from __future__ import annotations

from contextlib import asynccontextmanager

from fastapi import FastAPI

from opml.agents.challenger import ChallengerAgent
from opml.agents.metrics import AgentMetrics
from opml.agents.solvers import ChallengerFaults
from opml.agents.wiring import agent_address, build_parts, readiness_checks
from opml.readmodel import ReadModel, Receipts
from opml.readmodel.decode import RegisteredModels
from opml.service.app import create_app as create_service_app
from opml.service.metrics import Metrics

from .routes import router
from .settings import ChallengerSettings
from .ui import install as install_explorer

DESCRIPTION = """
The challenger re-checks every claim on the registry against its own run of the VM and disputes
the wrong ones with a bond, then plays each game round by round on its own.

`GET /disputes/{id}` shows a game as it narrows from the claimed step count down to one
instruction: both parties, the interval and round, whose turn it is, both clocks in chain time,
every hash posted and the segment chosen, the final instruction disassembled, the winner, the
bonds paid and every transaction with its gas.

People can watch the same at [/ui](/ui), the dispute explorer: every request and game at a glance, and
each game's dissection drawn round by round, updating on its own while the game runs.
"""


def create_app(settings: ChallengerSettings | None = None) -> FastAPI:
    settings = settings or ChallengerSettings()
    metrics = Metrics("challenger")
    state: dict = {}

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        parts = build_parts(settings, settings.dev_account)
        agent = ChallengerAgent(
            solvers=ChallengerFaults(settings.fault_dispute_honest, settings.fault_silent_after_rounds).solvers(),
            metrics=AgentMetrics("challenger", metrics),
            **parts.agent_kwargs(),
        )
        # the read side: the store, the registry, receipts, and a trace source for the instruction at stake in a
        # game's last step; the agent's address is configuration
        app.state.reads = ReadModel(
            parts.store,
            parts.registry,
            Receipts(parts.registry.w3),
            address=agent_address(settings, parts.deployment.chain_id, settings.dev_account),
            traces=parts.traces,
            models=RegisteredModels(parts.registry, parts.models),
        )
        state.update(agent=agent, parts=parts)
        agent.start()
        try:
            yield
        finally:
            agent.stop()
            parts.store.database.dispose()

    app = create_service_app(
        name="challenger",
        title="OPML challenger",
        description=DESCRIPTION,
        settings=settings,
        routers=[router],
        lifespan=lifespan,
        metrics=metrics,
        checks=readiness_checks(state),
    )
    install_explorer(app)
    return app
