"""The submitter service: the app factory and the lifespan that starts (and stops) its agent."""

from __future__ import annotations

from contextlib import asynccontextmanager

from fastapi import FastAPI

from opml.agents.metrics import AgentMetrics
from opml.agents.solvers import SubmitterFaults
from opml.agents.submitter import SubmitterAgent, SubmitterPolicy
from opml.agents.traces import LocalTraces
from opml.agents.wiring import agent_address, build_parts, key_for, readiness_checks
from opml.chain.client import TransactionManager
from opml.readmodel import ReadModel, Receipts
from opml.readmodel.decode import RegisteredModels
from opml.service.app import create_app as create_service_app
from opml.service.metrics import Metrics

from .routes import router
from .service import InferenceRequests
from .settings import SubmitterSettings

DESCRIPTION = """
Ask for an ML inference that is run in a deterministic MIPS VM and settled on-chain.

`POST /inference-requests` checks the model and input (bytes; numbers for float32 models as `input_f32`;
pixels for image models; text for text models such as all-MiniLM-L6-v2, tokenized here; a `prompt` or chat
`messages` for a language model such as SmolLM2-135M-Instruct, answered by a greedy generation) and a step
limit that can cover the model's run, and sends the request on-chain; the
submitter's agent (and any other submitter watching the chain) computes it, claims the
result with a bond, defends it against every challenge and finalizes it. `GET
/inference-requests/{id}` shows where it stands: claims, games, the result (decoded: the class of
a classifier, the vector and norm of an embedding model, a language model's prompt and answer as tokens and
text) and every transaction with its gas.
"""


def create_app(settings: SubmitterSettings | None = None) -> FastAPI:
    settings = settings or SubmitterSettings()
    metrics = Metrics("submitter")
    state: dict = {}

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        parts = build_parts(settings, settings.dev_account)
        faults = SubmitterFaults(settings.fault_lie, settings.fault_lie_from_step, settings.fault_silent_after_rounds)
        agent = SubmitterAgent(
            policy=SubmitterPolicy(min_fee=settings.min_fee, max_step_limit=settings.max_step_limit),
            solvers=faults.solvers(LocalTraces(parts.models) if faults.lie != "none" else None),
            metrics=AgentMetrics("submitter", metrics),
            **parts.agent_kwargs(),
        )
        requester_key = key_for(
            settings.model_copy(update={"private_key": settings.requester_key}),
            parts.deployment.chain_id,
            settings.requester_dev_account,
        )
        requester = TransactionManager(parts.registry.w3, requester_key)
        app.state.requests = InferenceRequests(
            parts.registry,
            requester,
            parts.store,
            parts.models,
            parts.deployment,
            default_step_limit=settings.default_step_limit,
            served_step_limit=settings.max_step_limit,
            llm_default_new_tokens=settings.llm_default_new_tokens,
            llm_max_new_tokens=settings.llm_max_new_tokens,
        )
        # the read side: the store, the registry and receipts; the agent's address is configuration
        address = agent_address(settings, parts.deployment.chain_id, settings.dev_account)
        app.state.reads = ReadModel(parts.store, parts.registry, Receipts(parts.registry.w3), address=address,
                                    models=RegisteredModels(parts.registry, parts.models))  # fmt: skip
        state.update(agent=agent, parts=parts)
        agent.start()
        try:
            yield
        finally:
            agent.stop()
            parts.store.database.dispose()

    return create_service_app(
        name="submitter",
        title="OPML submitter",
        description=DESCRIPTION,
        settings=settings,
        routers=[router],
        lifespan=lifespan,
        metrics=metrics,
        max_body_bytes=8 << 20,
        checks=readiness_checks(state),
    )
