"""An agent against its clocks: how long its moves take, whether the deployment's window and clocks leave it
time to win, and how close each action came to its deadline.

A game is won on time as surely as on the last step: a defender whose clock runs out loses a true claim,
and a challenger that does not challenge within the window lets a lie become final. So an agent
- measures, at start, what one move costs it here (`probe_move_seconds`: the reads, the simulation and the
  state query a move makes, and the time a transaction waits for its block) and refuses to play a
  deployment whose clocks cannot hold every move a game can need (`assess`), or warns when they barely do;
- records, for every action with a deadline, the time that was left when it was mined (its margin), as the
  Prometheus histogram `agent_deadline_margin_seconds`, in its store, and as a warning log when less than
  a quarter of the budget was left.
"""

from __future__ import annotations

import math
import statistics
import time
from dataclasses import dataclass

from ..protocol.dissection import max_rounds
from ..protocol.parameters import Parameters

WARN_SHARE = 0.25  # a margin below this share of its budget is logged as a warning
# Moves a side makes in a game of R rounds: R bisections or selections, then the last step (or a timeout).
EXTRA_MOVES = 1
# The probe is taken on whatever the machine is doing at start; a game may be played under more load.
# Measured here: a move under a CPU hog (one busy process per core) took up to 4x its idle time.
LOAD_FACTOR = 4.0
# VM speed assumed for a challenger's check of a run at the deployment's step limit (opml.protocol.parameters
# sized_for uses the same: half of what the VM does on this machine's two cores).
VM_STEPS_PER_SECOND = 150_000_000


@dataclass(frozen=True)
class Assessment:
    """Whether a deployment's window and clocks fit this agent's measured move time."""

    move_seconds: float  # one move, as probed, times LOAD_FACTOR
    rounds: int  # the most rounds a game at the deployment's step limit takes
    clock_needed: float  # every move of one side of such a game
    clock_budget: int
    window_needed: float  # a check of a run at the step limit, then the challenge
    challenge_window: int

    @property
    def fits(self) -> bool:
        """Whether every move of a whole game fits the clock (the window is a per-request matter: see
        `window_tight`)."""
        return self.clock_needed <= self.clock_budget

    @property
    def tight(self) -> bool:
        """Less than WARN_SHARE of the clock would be left after the moves of a whole game."""
        return self.clock_needed > (1 - WARN_SHARE) * self.clock_budget

    @property
    def window_tight(self) -> bool:
        """A claim of a request at the deployment's step limit could not be checked and challenged within the
        window with WARN_SHARE of it left."""
        return self.window_needed > (1 - WARN_SHARE) * self.challenge_window

    def describe(self) -> str:
        return (
            f"a move takes up to {self.move_seconds:.2f} s here (probed, x{LOAD_FACTOR:g} for load, and a block's wait); a game at the "
            f"step limit takes up to {self.rounds} rounds, so a side needs {self.clock_needed:.1f} s of its "
            f"{self.clock_budget} s clock; checking a claim at the step limit and challenging it needs "
            f"{self.window_needed:.1f} s of the {self.challenge_window} s window"
        )


def assess(
    parameters: Parameters,
    move_seconds: float,
    block_seconds: float = 0.0,
    vm_steps_per_second: int = VM_STEPS_PER_SECOND,
) -> Assessment:
    """Compare the deployment's clocks with a move: the work probed here times LOAD_FACTOR, plus the wait for a block
    (which load does not lengthen). See the module docstring."""
    move = move_seconds * LOAD_FACTOR + block_seconds
    rounds = max_rounds(parameters.max_step_limit, parameters.arity)
    run = parameters.max_step_limit / vm_steps_per_second
    return Assessment(
        move_seconds=move,
        rounds=rounds,
        clock_needed=(rounds + EXTRA_MOVES) * move,
        clock_budget=parameters.clock_budget,
        window_needed=run + move,
        challenge_window=parameters.challenge_window,
    )


def probe_move_seconds(probes: list, samples: int = 3) -> float:
    """The median time of running every probe once (each a callable doing what a move does: a chain read, a
    simulation, a state query...), over `samples` tries."""
    times = []
    for _ in range(samples):
        started = time.monotonic()
        for probe in probes:
            probe()
        times.append(time.monotonic() - started)
    return statistics.median(times)


def block_interval(w3, blocks: int = 8) -> float:
    """Seconds a transaction waits for its block: the mean interval of the last blocks, if blocks come at that
    pace on their own; 0 on a chain that mines a block per transaction (anvil and Hardhat by default), whose
    block times say nothing about a wait. Watches the head for one interval to tell them apart."""
    head = w3.eth.get_block("latest")
    first = w3.eth.get_block(max(0, head["number"] - blocks))
    count = head["number"] - first["number"]
    interval = (head["timestamp"] - first["timestamp"]) / count if count else 0.0
    if interval < 1:
        return 0.0
    deadline = time.monotonic() + interval + 0.5
    while time.monotonic() < deadline:
        if w3.eth.block_number > head["number"]:
            return interval  # a block came without a transaction of ours: the chain has a block time
        time.sleep(0.1)
    return 0.0


@dataclass(frozen=True)
class Margin:
    """How much of an action's budget was left when it was mined."""

    action: str
    deadline: int  # chain time
    mined_at: int  # chain time of its block
    budget: int  # seconds

    @property
    def left(self) -> int:
        return self.deadline - self.mined_at

    @property
    def share(self) -> float:
        return self.left / self.budget if self.budget else math.inf

    @property
    def low(self) -> bool:
        return self.share < WARN_SHARE
