"""Child processes (anvil, Hardhat, the services of a Stack) that never outlive the process that started
them, however it ends.

    process = subprocess.Popen(guarded(command), start_new_session=True, ...)
    track(process)

Each child runs in its own process group (so that stopping it stops what it started), which also puts it
out of reach of a signal sent to its parent's group: a benchmark killed by `timeout` used to leave anvil
and four services running, holding their ports. So:

- `track`: at the interpreter's exit (a normal end, an uncaught exception, Ctrl-C's KeyboardInterrupt),
  and on SIGTERM and SIGHUP (handlers installed from the main thread, where nobody installed their own:
  `opml up` and the demo keep theirs and stop their stack themselves), every tracked child still running
  is sent SIGTERM with its group, and SIGKILL after a grace period; then a SIGTERM or SIGHUP goes on to
  end the process as it would have.
- `guarded`: for what no handler can see, SIGKILL: the child asks the kernel for a signal when its parent
  dies (prctl PR_SET_PDEATHSIG, set by a small Python shim that then execs the command; it survives the
  exec), and exits at once if its parent died before it could ask. Linux only (elsewhere the command runs
  as is). The kernel sends it when the *thread* that started the child ends: start them from a thread that
  lives as long as they should (the main thread, everywhere here). The signal is the child's to choose:
  SIGKILL for a service (its parent was killed: that is a crash, which the services are built to survive,
  and a graceful stop with its chain gone would hold its port for many seconds of RPC retries), SIGTERM
  for a launcher that must pass it on (npm's anvil and hardhat start the real binary as their child).
"""

from __future__ import annotations

import atexit
import os
import signal
import subprocess
import sys
import threading
import time
import weakref

GRACE_SECONDS = 10.0
PR_SET_PDEATHSIG = 1

# The shim: argv = [parent pid, signal, command...]. ctypes.CDLL(None) is libc; an error from prctl leaves
# the child unguarded rather than not started.
_SHIM = (
    "import ctypes, os, sys\n"
    "try:\n"
    f"    ctypes.CDLL(None, use_errno=True).prctl({PR_SET_PDEATHSIG}, int(sys.argv[2]), 0, 0, 0)\n"
    "except (OSError, AttributeError):\n"
    "    pass\n"
    "if os.getppid() != int(sys.argv[1]):\n"
    "    os._exit(0)  # the parent is gone already\n"
    "os.execvp(sys.argv[3], sys.argv[3:])\n"
)

_tracked: weakref.WeakSet[subprocess.Popen] = weakref.WeakSet()
_lock = threading.Lock()
_handled: set[int] = set()


def guarded(command: list[str], on_parent_death: int = signal.SIGTERM) -> list[str]:
    """`command`, run so that it gets `on_parent_death` when this process dies (even by SIGKILL)."""
    if not sys.platform.startswith("linux"):
        return list(command)
    return [sys.executable, "-c", _SHIM, str(os.getpid()), str(int(on_parent_death)), *command]


def track(process: subprocess.Popen) -> subprocess.Popen:
    """End `process` (and its process group: it must have been started with start_new_session=True) when
    this process exits or is terminated, if it is still running then."""
    with _lock:
        _tracked.add(process)
    _install_handlers()
    return process


def end_tracked(grace: float = GRACE_SECONDS) -> None:
    """SIGTERM to every tracked child's group still running, SIGKILL to those still running after `grace`
    seconds. Safe in a signal handler: it never blocks on a lock another frame of this thread may hold."""
    with _lock:
        running = [process for process in _tracked if _running(process)]
    for process in running:
        _signal_group(process, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while running and time.monotonic() < deadline:
        time.sleep(0.05)
        running = [process for process in running if _running(process)]
    for process in running:
        _signal_group(process, signal.SIGKILL)


def _running(process: subprocess.Popen) -> bool:
    # poll() only tries the lock wait() holds: inside a handler that interrupted a wait(), it says "running"
    # and the grace period ends it
    return process.returncode is None and process.poll() is None


def _signal_group(process: subprocess.Popen, signum: int) -> None:
    try:
        os.killpg(process.pid, signum)
    except (ProcessLookupError, PermissionError):
        pass


def _install_handlers() -> None:
    if threading.current_thread() is not threading.main_thread():
        return
    for signum in (signal.SIGTERM, signal.SIGHUP):
        if signum not in _handled and signal.getsignal(signum) in (signal.SIG_DFL, None):
            signal.signal(signum, _on_termination)
            _handled.add(signum)


def _on_termination(signum: int, frame) -> None:
    signal.signal(signum, signal.SIG_DFL)  # a second one ends this process at once (the children still end)
    end_tracked()
    os.kill(os.getpid(), signum)  # and the first ends it as it would have without us


atexit.register(end_tracked)
