"""The whole system on one machine without Docker: anvil, the contracts deployed, and the four services
as processes. What `opml up` and `make run` start, and what the end-to-end tests and benchmarks use.

    with Stack(StackConfig(data_dir=tmp)) as stack:
        stack.url("submitter")            # http://127.0.0.1:8003
        stack.start_service("liar", "submitter", {"SUBMITTER_FAULT_LIE": "output", ...})

Services are configured only by environment variables, the same names docker compose sets
(CONVERTER_PORT, SUBMITTER_RPC_URL, ...). Each service's log lines are shown with its name in
front (or kept, when `echo` is off). Stopping the stack (or Ctrl-C) terminates every process it
started, in its own process group, so nothing is left behind; and so does the end of the process
that started them, whatever ends it: an exit, SIGTERM or SIGHUP (a benchmark under `timeout`), or
SIGKILL, which each child learns from the kernel (opml/processes.py).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from .chain.anvil import Anvil, dev_key, free_port
from .chain.client import TransactionManager, connect
from .chain.deploy import deploy_with_defaults
from .chain.hardhat import Hardhat
from .chain.registry import Deployment
from .errors import Unavailable
from .processes import guarded, track
from .protocol.parameters import Parameters
from .service.db import ensure_database

SERVICES = ("converter", "vm-worker", "submitter", "challenger")
MODULES = {"converter": "converter", "vm-worker": "vm_worker", "submitter": "submitter", "challenger": "challenger"}
PREFIXES = {
    "converter": "CONVERTER_",
    "vm-worker": "VM_WORKER_",
    "submitter": "SUBMITTER_",
    "challenger": "CHALLENGER_",
}
CONVERTER_DEV_ACCOUNT = 6  # registers uploaded models on the local chain
DEFAULT_PORTS = {"anvil": 8545, "converter": 8001, "vm-worker": 8002, "submitter": 8003, "challenger": 8004}


@dataclass
class StackConfig:
    data_dir: Path = Path("var")
    parameters: Parameters = field(default_factory=Parameters)
    ports: dict[str, int] = field(default_factory=lambda: dict(DEFAULT_PORTS))
    database_url: str | None = None  # a PostgreSQL server for the services' databases; SQLite files by default
    env: dict[str, dict[str, str]] = field(default_factory=dict)  # extra variables per service
    echo: bool = True  # print the services' logs, prefixed
    poll_interval: float = 0.25
    node: str = "anvil"  # or "hardhat" (the seed's node: checks the agents use only standard JSON-RPC)
    block_time: int | None = None  # seconds between blocks (anvil); None: a block per transaction
    service_rpc_url: str | None = None  # where the services reach the chain (e.g. through a proxy); default anvil

    @classmethod
    def ephemeral(cls, data_dir: Path, **kwargs) -> StackConfig:
        """Free ports everywhere: for tests and benchmarks that run beside other stacks."""
        return cls(data_dir=data_dir, ports={name: free_port() for name in DEFAULT_PORTS}, **kwargs)


class ServiceProcess:
    def __init__(self, name: str, module: str, env: dict[str, str], url: str, echo: bool):
        self.name = name
        self.url = url
        self.module, self.env, self.echo = module, env, echo  # how to start it again
        self.lines: deque[str] = deque(maxlen=2_000)
        self.process = track(  # stopped when this process ends, and guarded: it ends even if this one is killed
            subprocess.Popen(
                guarded([sys.executable, "-m", module], on_parent_death=signal.SIGKILL),
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group: stopping it stops its children too
                text=True,
            )
        )
        self._echo = echo
        threading.Thread(target=self._pump, name=f"{name}-log", daemon=True).start()

    def _pump(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            line = line.rstrip()
            self.lines.append(line)
            if self._echo:
                print(f"{self.name:>10} | {line}", flush=True)

    @property
    def pid(self) -> int:
        return self.process.pid

    def alive(self) -> bool:
        return self.process.poll() is None

    def ready(self) -> bool:
        try:
            return httpx.get(f"{self.url}/readyz", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    def wait_ready(self, timeout: float) -> None:
        """Wait for /readyz; Unavailable with its last log lines if it exits first or is not ready in time."""
        deadline = time.monotonic() + timeout
        while not self.ready():
            if not self.alive():
                tail = "\n".join(list(self.lines)[-20:])
                raise Unavailable(f"{self.name} exited while starting:\n{tail}")
            if time.monotonic() > deadline:
                raise Unavailable(f"not ready after {timeout:.0f} s: {self.name}")
            time.sleep(0.2)

    def stop(self, timeout: float = 15.0) -> None:
        if not self.alive():
            return
        try:
            os.killpg(self.process.pid, signal.SIGTERM)
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout)
        except ProcessLookupError:
            pass

    def kill(self) -> None:
        """SIGKILL, no goodbye: what a crash looks like."""
        if self.alive():
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()


RESTART_BACKOFF = (1.0, 30.0)  # seconds before a crashed service is started again: first, then at most (doubling)


class Stack:
    def __init__(self, config: StackConfig = StackConfig()):
        self.config = config
        self.node: Anvil | Hardhat | None = None
        self.deployment: Deployment | None = None
        self.services: dict[str, ServiceProcess] = {}
        self.restarts: dict[str, int] = {}  # by service name: how often the supervisor started it again
        self._supervising = threading.Event()

    # --- keeping services up ---------------------------------------------------------------------------

    def supervise(self, on_restart: Callable[[str, int], None] | None = None) -> None:
        """Start every service that exits again, after a pause that doubles while it keeps crashing (1 s, then up
        to 30 s; back to 1 s once it has run a minute), as compose's `restart: unless-stopped` does. The exited
        process is reaped at once. For `opml up` and the main job; tests that kill services start them again
        themselves."""
        self._supervising.set()
        threading.Thread(target=self._supervise, args=(on_restart,), name="supervisor", daemon=True).start()

    def _supervise(self, on_restart) -> None:
        pause: dict[str, float] = {}
        down_since: dict[str, float] = {}
        started_at = {name: time.monotonic() for name in self.services}
        while self._supervising.is_set():
            for name, service in list(self.services.items()):
                if service.alive():  # poll() reaps a dead child: no zombie while it waits to be restarted
                    if time.monotonic() - started_at.get(name, 0) > 60:
                        pause.pop(name, None)
                    continue
                now = time.monotonic()
                down_since.setdefault(name, now)
                wait = pause.get(name, RESTART_BACKOFF[0])
                if now - down_since[name] < wait:
                    continue
                if not self._supervising.is_set():
                    return
                self.services[name] = ServiceProcess(name, service.module, service.env, service.url, service.echo)
                self.restarts[name] = self.restarts.get(name, 0) + 1
                pause[name] = min(wait * 2, RESTART_BACKOFF[1])
                started_at[name] = time.monotonic()
                down_since.pop(name, None)
                if on_restart is not None:
                    on_restart(name, service.process.returncode)
            time.sleep(0.2)

    # --- the pieces ----------------------------------------------------------------------------------

    @property
    def rpc_url(self) -> str:
        assert self.node is not None
        return self.node.url

    @property
    def deployment_path(self) -> Path:
        return self.config.data_dir / "deployment.json"

    def url(self, name: str) -> str:
        return self.services[name].url

    def start(self, timeout: float = 120.0) -> Stack:
        self.config.data_dir.mkdir(parents=True, exist_ok=True)
        port = self.config.ports["anvil"]
        if self.config.node == "hardhat":
            self.node = Hardhat(port=port).start()
        else:
            self.node = Anvil(port=port, block_time=self.config.block_time).start()
        w3 = connect(self.node.url)
        self.deployment = deploy_with_defaults(
            w3, TransactionManager(w3, dev_key(0)), self.config.parameters, "models/seed-mnist/model.bin"
        )
        self.deployment.write(self.deployment_path)
        for name in SERVICES:
            self.start_service(name, name, {}, wait=False)
        self.wait_ready(timeout)
        return self

    def start_service(self, name: str, kind: str, env: dict[str, str], *, port: int | None = None, wait: bool = True,
                      timeout: float = 120.0) -> ServiceProcess:  # fmt: skip
        """Start a service process of `kind` under `name` (a second submitter can run as "liar")."""
        port = port or self.config.ports.get(name) or free_port()
        environment = {**os.environ, **self.environment(name, kind, port), **self.config.env.get(name, {}), **env}
        database = environment.get(f"{PREFIXES[kind]}DATABASE_URL")
        if database and self.config.database_url:
            ensure_database(database)
        service = ServiceProcess(name, MODULES[kind], environment, f"http://127.0.0.1:{port}", self.config.echo)
        self.services[name] = service
        if wait:
            self.wait_ready(timeout, [name])
        return service

    def environment(self, name: str, kind: str, port: int) -> dict[str, str]:
        """The variables a service is configured by: the same names docker compose sets."""
        prefix = PREFIXES[kind]
        data = self.config.data_dir.resolve()
        rpc_url = self.config.service_rpc_url or self.rpc_url
        env = {f"{prefix}HOST": "127.0.0.1", f"{prefix}PORT": str(port), f"{prefix}LOG_FORMAT": "console"}
        converter_url = f"http://127.0.0.1:{self.config.ports['converter']}"
        worker_url = f"http://127.0.0.1:{self.config.ports['vm-worker']}"
        database = str(data / f"{name}.db")
        if kind == "converter":
            env |= {
                f"{prefix}DATA_DIR": str(data / name),
                f"{prefix}DATABASE_URL": _database(database, name, self.config.database_url),
                f"{prefix}PUBLIC_URL": converter_url,
                f"{prefix}RPC_URL": rpc_url,
                f"{prefix}DEPLOYMENT_PATH": str(self.deployment_path.resolve()),
                f"{prefix}PRIVATE_KEY": dev_key(CONVERTER_DEV_ACCOUNT),
            }
        elif kind == "vm-worker":
            env |= {f"{prefix}STORE_DIR": str(data / name), f"{prefix}CONVERTER_URL": converter_url}
        else:
            env |= {
                f"{prefix}RPC_URL": rpc_url,
                f"{prefix}DEPLOYMENT_PATH": str(self.deployment_path.resolve()),
                f"{prefix}DATABASE_URL": _database(database, name, self.config.database_url),
                f"{prefix}VM_WORKER_URL": worker_url,
                f"{prefix}CONVERTER_URL": converter_url,
                f"{prefix}POLL_INTERVAL": str(self.config.poll_interval),
                f"{prefix}WITHDRAW_INTERVAL": "2",
            }
        return env

    def wait_ready(self, timeout: float = 120.0, names: list[str] | None = None) -> None:
        """Every service (started together, so waiting for them one by one takes no longer) ready within
        `timeout` seconds in all."""
        deadline = time.monotonic() + timeout
        for name in names or self.services:
            self.services[name].wait_ready(max(0.0, deadline - time.monotonic()))

    def pids(self) -> list[int]:
        pids = [service.pid for service in self.services.values()]
        if self.node is not None and self.node.process is not None:
            pids.append(self.node.process.pid)
        return pids

    def stop(self) -> None:
        self._supervising.clear()
        for service in reversed(list(self.services.values())):
            service.stop()
        if self.node is not None:
            self.node.stop()

    def __enter__(self) -> Stack:
        try:
            return self.start()
        except BaseException:
            self.stop()
            raise

    def __exit__(self, *exc) -> None:
        self.stop()


def _database(default: str, name: str, server_url: str | None) -> str:
    """A service's database: its own database on the PostgreSQL server when one is given, else its file."""
    if server_url is None:
        return default
    return server_url.rsplit("/", 1)[0] + "/" + name.replace("-", "_")


def wait_until(condition: Callable[[], bool], timeout: float, what: str, interval: float = 0.2) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise Unavailable(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(interval)
