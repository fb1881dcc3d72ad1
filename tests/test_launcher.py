"""`opml up`: the whole stack from a clean state, every /readyz green, and nothing left behind on Ctrl-C; and
what a process starts (anvil, services) ends with it however it ends, SIGKILL included."""

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest


def descendants(pid: int) -> set[int]:
    """Every process below `pid`, from /proc."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(parent, []).append(int(entry.name))
    found, todo = set(), [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.add(child)
            todo.append(child)
    return found


def alive(pid: int) -> bool:
    try:
        state = (Path("/proc") / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def service_pid(parent: int, module: str) -> int:
    """The process running `python -m module` below `parent`."""
    for pid in descendants(parent):
        try:
            command = (Path("/proc") / str(pid) / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"-m" in command and command[command.index(b"-m") + 1] == module.encode():
            return pid
    raise AssertionError(f"no {module} process below {parent}")


def ready(url: str) -> bool:
    try:
        return httpx.get(f"{url}/readyz", timeout=5).status_code == 200
    except httpx.HTTPError:
        return False


def test_opml_up_starts_everything_restarts_what_crashes_and_leaves_nothing_behind(tmp_path):
    data = tmp_path / "var"
    (data / "leftover").mkdir(parents=True)  # a clean start removes what an earlier run left
    up = subprocess.Popen([sys.executable, "-m", "opml.cli", "up", "--data-dir", str(data), "--quiet", "--free-ports"],
                          stderr=subprocess.PIPE, text=True, start_new_session=True)  # fmt: skip
    urls, lines = {}, []
    deadline = time.monotonic() + 180
    try:
        while len(urls) < 4 and time.monotonic() < deadline:
            line = up.stderr.readline()
            assert line or up.poll() is None, "opml up exited:\n" + "".join(lines)
            lines.append(line)
            match = re.match(r"\s+(converter|vm-worker|submitter|challenger)\s+(http://\S+)/docs", line)
            if match:
                urls[match[1]] = match[2]
        assert len(urls) == 4, "".join(lines)
        for name, url in urls.items():
            ready_now = httpx.get(f"{url}/readyz", timeout=10)
            assert ready_now.status_code == 200 and ready_now.json()["ready"], name
        assert not (data / "leftover").exists()
        assert (data / "deployment.json").exists()

        # a crash: the challenger is reaped at once (no zombie) and started again on its port
        crashed = service_pid(up.pid, "challenger")
        os.kill(crashed, signal.SIGKILL)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and not (ready(urls["challenger"]) and alive(service_pid(up.pid, "challenger"))
                                                   and service_pid(up.pid, "challenger") != crashed):  # fmt: skip
            time.sleep(0.5)
        assert ready(urls["challenger"]) and service_pid(up.pid, "challenger") != crashed
        assert not (Path("/proc") / str(crashed)).exists()  # reaped, not left defunct
        started = descendants(up.pid)
        assert len(started) >= 5  # anvil and four services (and their children)
    finally:
        os.kill(up.pid, signal.SIGINT)
        up.wait(60)
    time.sleep(0.5)
    assert up.returncode == 0
    assert [pid for pid in started if alive(pid)] == []
    for url in urls.values():
        try:
            httpx.get(f"{url}/healthz", timeout=2)
            raise AssertionError(f"{url} still answers")
        except httpx.TransportError:
            pass


# Anvil and a service started as a Stack starts them, in a script that then waits to be ended.
HOLDER = """
import json, os, signal, sys, time
from pathlib import Path
# Ctrl-C's KeyboardInterrupt, as in a terminal: a job started in the background by a shell (CI's runner can be one)
# inherits SIGINT ignored, and Python then leaves it ignored
signal.signal(signal.SIGINT, signal.default_int_handler)
from opml.chain.anvil import Anvil, free_port
from opml.stack import ServiceProcess

node = Anvil().start()
port = free_port()
env = {**os.environ, "VM_WORKER_HOST": "127.0.0.1", "VM_WORKER_PORT": str(port), "VM_WORKER_CONVERTER_URL": "",
       "VM_WORKER_STORE_DIR": str(Path(sys.argv[1]) / "store")}
service = ServiceProcess("vm-worker", "vm_worker", env, f"http://127.0.0.1:{port}", echo=False)
service.wait_ready(120)
print(json.dumps([node.process.pid, service.pid]), flush=True)
time.sleep(600)
"""


@pytest.mark.parametrize("ending", [signal.SIGTERM, signal.SIGHUP, signal.SIGINT, signal.SIGKILL], ids=lambda s: s.name)
def test_what_a_process_starts_ends_with_it_however_it_ends(tmp_path, ending):
    """A benchmark killed by `timeout` (SIGTERM), a closed terminal (SIGHUP), Ctrl-C, or SIGKILL (which no
    handler sees: each child has the kernel tell it, PR_SET_PDEATHSIG): anvil and the service end too."""
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(tmp_path)], stdout=subprocess.PIPE, text=True,
                              start_new_session=True)  # fmt: skip
    started: set[int] = set()
    try:
        line = holder.stdout.readline()
        assert line, "the script did not start anvil and the vm-worker"
        children = json.loads(line)
        started = descendants(holder.pid)
        assert set(children) <= started  # (the shim that guards each child has become it: exec)
        os.kill(holder.pid, ending)
        holder.wait(60)
        if ending in (signal.SIGTERM, signal.SIGHUP, signal.SIGKILL):
            assert holder.returncode == -ending  # ended as that signal ends a process, after the children
        deadline = time.monotonic() + 30
        while [pid for pid in started if alive(pid)] and time.monotonic() < deadline:
            time.sleep(0.1)
        assert [pid for pid in started if alive(pid)] == []
    finally:
        for pid in [holder.pid, *started]:
            if alive(pid):
                os.kill(pid, signal.SIGKILL)
