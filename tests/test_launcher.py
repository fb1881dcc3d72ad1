"""`opml up`: the whole stack from a clean state, every /readyz green, and nothing left behind on Ctrl-C."""

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx


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


def test_opml_up_starts_everything_and_leaves_nothing_behind(tmp_path):
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
            ready = httpx.get(f"{url}/readyz", timeout=10)
            assert ready.status_code == 200 and ready.json()["ready"], name
        assert not (data / "leftover").exists()
        assert (data / "deployment.json").exists()
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
