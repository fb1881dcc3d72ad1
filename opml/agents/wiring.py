"""Building an agent from its settings: the chain connection and key, the deployment, the store, the
trace source. Both agent services start theirs this way; the CLI and tests can too."""

from __future__ import annotations

from dataclasses import dataclass

import structlog

from ..chain.anvil import dev_key
from ..chain.client import TransactionManager, connect, with_retries
from ..chain.registry import Deployment, Registry
from ..errors import BadInput, Conflict, Unavailable
from ..service.app import Check
from ..service.clients import ServiceClient
from .deadlines import EXTRA_MOVES, Assessment, assess, block_interval, probe_move_seconds
from .runtime import AgentConfig
from .settings import AgentSettings
from .store import AgentStore
from .traces import FetchedModels, LocalTraces, TraceSource, WorkerTraces
from .work import WorkKind

DEV_CHAIN_ID = 31337


@dataclass
class AgentParts:
    registry: Registry
    tx: TransactionManager
    store: AgentStore
    traces: TraceSource
    deployment: Deployment
    config: AgentConfig
    converter: ServiceClient | None
    worker: ServiceClient | None
    models: FetchedModels

    def agent_kwargs(self) -> dict:
        return {
            "registry": self.registry,
            "tx": self.tx,
            "store": self.store,
            "traces": self.traces,
            "deployment": self.deployment,
            "config": self.config,
        }


def key_for(settings: AgentSettings, chain_id: int, dev_account: int) -> str:
    """The agent's key: the configured one, else a dev account's on a dev chain."""
    if settings.private_key is not None:
        return settings.private_key.get_secret_value()
    if chain_id != DEV_CHAIN_ID:
        raise BadInput(f"chain {chain_id} is not a dev chain: set the service's PRIVATE_KEY to a funded key")
    return dev_key(dev_account)


def agent_address(settings: AgentSettings, chain_id: int, dev_account: int) -> str:
    """The agent's account, from its configuration: what the read side shows as "this agent" (it never asks the
    running agent)."""
    from eth_account import Account

    return Account.from_key(key_for(settings, chain_id, dev_account)).address


def build_parts(settings: AgentSettings, dev_account: int) -> AgentParts:
    deployment = Deployment.read(settings.deployment_path)
    w3 = connect(settings.rpc_url)
    chain_id = with_retries(lambda: w3.eth.chain_id, what=f"connecting to {settings.rpc_url}", attempts=10)
    if chain_id != deployment.chain_id:
        raise BadInput(f"{settings.rpc_url} is chain {chain_id}, the deployment is on chain {deployment.chain_id}")
    store = AgentStore.open(settings.database_url)
    tx = TransactionManager(w3, key_for(settings, chain_id, dev_account), store.journal())
    converter = ServiceClient("converter", settings.converter_url) if settings.converter_url else None
    worker = ServiceClient("vm-worker", settings.vm_worker_url, timeout=300) if settings.vm_worker_url else None
    models = FetchedModels(converter)  # one copy of each model file, for the traces and the API alike
    traces: TraceSource
    if worker is not None:
        traces = WorkerTraces(worker, models)
    else:
        traces = LocalTraces(models)
    config = AgentConfig(
        poll_interval=settings.poll_interval,
        confirmations=settings.confirmations,
        max_log_range=settings.max_log_range,
        workers=settings.workers,
        withdraw_interval=settings.withdraw_interval,
    )
    registry = Registry(w3, deployment.registry)
    return AgentParts(registry, tx, store, traces, deployment, config, converter, worker, models)


def readiness_checks(running: dict) -> list[Check]:
    """An agent service's /readyz checks, over what its lifespan put in `running` ("parts", "agent"): the
    database migrated, the agent caught up with the chain, the vm-worker and the converter answering."""

    def caught_up() -> None:
        agent = running["agent"]
        if not agent.caught_up:
            raise Unavailable(f"not caught up with the chain yet{': ' + agent.last_error if agent.last_error else ''}")

    def answers(client: ServiceClient | None) -> None:
        if client is not None:
            client.get("/healthz")

    return [
        Check("database", lambda: running["parts"].store.check_migrated()),
        Check("chain", caught_up),
        Check("vm-worker", lambda: answers(running["parts"].worker)),
        Check("converter", lambda: answers(running["parts"].converter)),
    ]


class DeadlinesDoNotFit(Conflict):
    """The deployment's clocks are too short for the moves of a whole game at this agent's measured speed."""


def check_deadlines(settings: AgentSettings, role: str) -> Assessment:
    """Before an agent starts: measure what a move costs here (chain reads, a simulation, the wait for a block)
    and compare the deployment's clock with every move a game at its step limit can need (opml.agents.deadlines).
    Raises DeadlinesDoNotFit when they do not fit (settings.deadline_check "refuse"), logs an error when they do
    not fit but the check is "warn", and a warning when less than a quarter of the clock or window would be
    left."""
    log = structlog.get_logger(f"opml.agents.{role}")
    deployment = Deployment.read(settings.deployment_path)
    w3 = connect(settings.rpc_url)
    registry = Registry(w3, deployment.registry)
    parameters = with_retries(lambda: registry.parameters, what=f"connecting to {settings.rpc_url}", attempts=10)
    probes = [
        lambda: w3.eth.get_block("latest"),  # the monitor's look at the head
        lambda: registry.count("game"),  # a read of the game
        lambda: _simulate(w3, registry),  # the simulation every move makes first
    ]
    # a move: the event seen (up to a poll interval), its reads and simulation, then the wait for its block
    assessment = assess(parameters, settings.poll_interval + probe_move_seconds(probes), block_interval(w3))
    store = AgentStore.open(settings.database_url)
    playing = any(row.work_key.kind == WorkKind.GAME for row in store.open_work())
    recorded = store.slowest_recent_move()
    if not assessment.fits:
        message = f"the deployment's clock is too short for this {role}: {assessment.describe()}"
        if settings.deadline_check == "refuse" and not playing:
            raise DeadlinesDoNotFit(message + f" (set {role.upper()}_DEADLINE_CHECK=warn to play anyway)")
        # an agent with games under way plays them whatever it measures: not playing loses them for sure
        log.error(message + (": playing its open games anyway" if playing else ""))
    elif assessment.tight or assessment.window_tight:
        log.warning(f"little time to spare: {assessment.describe()}")
    else:
        log.info("deadlines fit", detail=assessment.describe())
    if recorded is not None and (assessment.rounds + EXTRA_MOVES) * recorded > parameters.clock_budget:
        log.warning("this agent's slowest recent move, repeated for every move of a game, would not fit the clock",
                    slowest_move_s=round(recorded, 2), clock_s=parameters.clock_budget)  # fmt: skip
    return assessment


def _simulate(w3, registry: Registry) -> None:
    from web3.exceptions import ContractLogicError

    try:
        w3.eth.call({"to": registry.address, "data": registry.withdraw()._encode_transaction_data()})
    except ContractLogicError:
        pass  # it reverts (nothing to withdraw): the round trip is what is timed


def serve_agent(create_app, settings: AgentSettings, role: str) -> None:
    """Run an agent service: first the deadline check (a refusal ends the process with a one-line reason and
    the exit status of its kind, 4), then the app."""
    import sys

    from ..errors import OpmlError
    from ..service.logs import configure_logging
    from ..service.run import serve

    configure_logging(settings.log_level, settings.log_format, service=role)
    if settings.deadline_check != "off":
        try:
            check_deadlines(settings, role)
        except OpmlError as error:
            structlog.get_logger(f"opml.agents.{role}").error("refusing to start", reason=str(error))
            sys.exit(error.exit_status)
    serve(create_app(settings), settings)
