"""Building an agent from its settings: the chain connection and key, the deployment, the store, the
trace source. Both agent services start theirs this way; the CLI and tests can too."""

from __future__ import annotations

from dataclasses import dataclass

from ..chain.anvil import dev_key
from ..chain.client import TransactionManager, connect, with_retries
from ..chain.registry import Deployment, Registry
from ..errors import BadInput, Unavailable
from ..service.app import Check
from ..service.clients import ServiceClient
from .runtime import AgentConfig
from .settings import AgentSettings
from .store import AgentStore
from .traces import FetchedModels, LocalTraces, TraceSource, WorkerTraces

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
    traces: TraceSource
    if worker is not None:
        traces = WorkerTraces(worker)
    else:
        traces = LocalTraces(FetchedModels(converter))
    config = AgentConfig(
        poll_interval=settings.poll_interval,
        confirmations=settings.confirmations,
        max_log_range=settings.max_log_range,
        workers=settings.workers,
        withdraw_interval=settings.withdraw_interval,
    )
    registry = Registry(w3, deployment.registry)
    return AgentParts(registry, tx, store, traces, deployment, config, converter, worker, FetchedModels(converter))


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
