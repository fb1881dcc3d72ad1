"""The whole system as processes on a real anvil, for end-to-end tests: real services, real HTTP."""

from __future__ import annotations

import base64
import time
from contextlib import contextmanager

import httpx
import pytest

from opml.chain.anvil import dev_key
from opml.chain.client import TransactionManager, connect
from opml.chain.registry import Registry
from opml.protocol.parameters import Parameters
from opml.resources import seed_model_dir
from opml.stack import Stack, StackConfig

# The deployment the end-to-end tests play on; its window and clocks are sized for this machine's pace when the
# session starts (tests/timing.py: short, so a test waits seconds, but never shorter than a loaded machine needs).
E2E_BASE = Parameters(max_step_limit=1 << 30, request_timeout=60)
CLAIM_BOND, CHALLENGE_BOND = E2E_BASE.claim_bond, E2E_BASE.challenge_bond
SEVEN = (seed_model_dir() / "input_7.bin").read_bytes()


class Harness:
    """A running stack and the calls the tests make on it."""

    def __init__(self, stack: Stack):
        self.stack = stack
        self.parameters = stack.config.parameters
        self.w3 = connect(stack.rpc_url)
        self.registry = Registry(self.w3, stack.deployment.registry)
        self.model_id = self.upload_seed_model()

    def url(self, name: str) -> str:
        return self.stack.url(name)

    def upload_seed_model(self) -> str:
        response = httpx.post(
            f"{self.url('converter')}/models",
            files={"file": ("seed.state_dict", (seed_model_dir() / "mnist-small.state_dict").read_bytes())},
            data={"register": "true"},
            timeout=120,
        )
        assert response.status_code in (200, 201), response.text
        return response.json()["id"]

    def request(self, input: bytes = SEVEN, **fields) -> int:
        body = {"model": self.model_id, "input_base64": base64.b64encode(input).decode(), **fields}
        response = httpx.post(f"{self.url('submitter')}/inference-requests", json=body, timeout=60)
        assert response.status_code == 202, response.text
        return response.json()["request_id"]

    def report(self, request_id: int) -> dict:
        response = httpx.get(f"{self.url('submitter')}/inference-requests/{request_id}", timeout=30)
        return response.json() if response.status_code == 200 else {}

    def dispute(self, game_id: int) -> dict:
        return httpx.get(f"{self.url('challenger')}/disputes/{game_id}", timeout=30).json()

    @property
    def patience(self) -> float:
        """Long enough for anything a request goes through: its window, a game played to the last clock second by
        both sides, and a minute for the machine."""
        return self.parameters.challenge_window + 2 * self.parameters.clock_budget + 60

    def wait_final(self, request_id: int, timeout: float | None = None) -> dict:
        timeout = timeout or self.patience
        return wait_for(
            lambda: (r := self.report(request_id)).get("status") == "final" and r,
            timeout,
            f"request {request_id} final",
        )

    def wait_games_over(self, request_id: int, count: int, timeout: float | None = None) -> list:
        timeout = timeout or self.patience

        def over():
            games = self.report(request_id).get("games", [])
            return len(games) >= count and all(game["status"] != "active" for game in games) and games

        return wait_for(over, timeout, f"{count} game(s) of request {request_id} to end")

    def tx(self, index: int) -> TransactionManager:
        return TransactionManager(self.w3, dev_key(index))

    def address(self, index: int) -> str:
        return self.tx(index).address


def wait_for(condition, timeout: float, what: str, interval: float = 0.25):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


@contextmanager
def running(harness: Harness, *agents: tuple[str, str, int, dict]):
    """Extra agents for one test: (name, kind, dev account, environment)."""
    started = []
    try:
        for name, kind, account, env in agents:
            prefix = "SUBMITTER_" if kind == "submitter" else "CHALLENGER_"
            started.append(harness.stack.start_service(name, kind, {f"{prefix}DEV_ACCOUNT": str(account), **env}))
        yield
    finally:
        for service in started:
            service.stop()
            harness.stack.services.pop(service.name, None)


@pytest.fixture(scope="session")
def e2e_parameters(timing) -> Parameters:
    return timing.sized(E2E_BASE)


@contextmanager
def started_stack(directory, parameters: Parameters, **options):
    config = StackConfig.ephemeral(directory, parameters=parameters, echo=False, poll_interval=0.1, **options)
    with Stack(config) as stack:
        yield Harness(stack)


@pytest.fixture(scope="session")
def sqlite_harness(tmp_path_factory, e2e_parameters):
    """The stack every end-to-end module shares (its services' databases in SQLite files): started once."""
    with started_stack(tmp_path_factory.mktemp("stack"), e2e_parameters) as harness:
        yield harness


@pytest.fixture(scope="session")
def postgresql_harness(tmp_path_factory, e2e_parameters, postgres_server):
    """The same stack with its services' databases on a real PostgreSQL server."""
    with started_stack(tmp_path_factory.mktemp("stack-pg"), e2e_parameters, database_url=postgres_server.url) as h:
        yield h


@pytest.fixture(scope="module")
def harness(request):
    """A running stack: the shared SQLite one, or (with the parameter "postgresql") the PostgreSQL one."""
    return request.getfixturevalue(f"{getattr(request, 'param', 'sqlite')}_harness")
