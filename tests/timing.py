"""Windows and clocks for tests that wait on chain time, sized from what this machine does now.

No test assumes an idle machine: before the first such test, the session measures a transaction's round trip
on its anvil (a read, a simulation, a send and its receipt) and a run of the seed model in the VM, and each
test deploys with

    move   = poll interval + 3 x round trip + run / 10   (an agent's move: the event seen, reads, a simulation
                                                         and a send, a state query re-running part of a run)
    window = SAFETY x (run + move)                        (a challenger checks the claim, then challenges)
    clock  = SAFETY x (rounds + 1) x move                 (every move of one side of the seed model's game)

never below the floors the tests were written with (6 s and 12 s: plenty on an idle machine). SAFETY = 4
covers a busy process per core beside the tests: bench/e2e.py measured an honest move's p99 at about twice
its idle value under that load, and the margin logs (agent_deadline_margin_seconds) show what was left.
"""

from __future__ import annotations

import dataclasses
import math
import statistics
import time
from dataclasses import dataclass

from web3 import Web3

from opml.protocol.dissection import max_rounds
from opml.protocol.parameters import Parameters

SAFETY = 4.0
AGENT_POLL_INTERVAL = 0.1  # what the tests configure their agents with
WINDOW_FLOOR = 6
CLOCK_FLOOR = 12


@dataclass(frozen=True)
class Timing:
    round_trip_s: float  # a read, a simulation, a transaction sent and mined
    run_s: float  # the seed model's run in the VM, here and now

    @property
    def move_s(self) -> float:
        return AGENT_POLL_INTERVAL + 3 * self.round_trip_s + self.run_s / 10

    def sized(self, base: Parameters, steps: int = 2_400_000, *, window_floor: int = WINDOW_FLOOR,
              clock_floor: int = CLOCK_FLOOR) -> Parameters:  # fmt: skip
        """`base` with a window and clocks for games over runs of `steps` steps at this machine's pace."""
        window = math.ceil(SAFETY * (self.run_s + self.move_s))
        clock = math.ceil(SAFETY * (max_rounds(steps, base.arity) + 1) * self.move_s)
        return dataclasses.replace(
            base, challenge_window=max(window_floor, window), clock_budget=max(clock_floor, clock)
        )


def measure(w3: Web3, run, samples: int = 5) -> Timing:
    """Time `samples` round trips on the node (from an unlocked dev account to itself) and one call of `run`."""
    account = w3.eth.accounts[-1]  # the last dev account: no test plays with it
    trips = []
    for _ in range(samples):
        started = time.monotonic()
        w3.eth.get_block("latest")
        transaction = {"from": account, "to": account, "value": 0}
        w3.eth.estimate_gas(transaction)
        w3.eth.wait_for_transaction_receipt(w3.eth.send_transaction(transaction), timeout=60, poll_latency=0.01)
        trips.append(time.monotonic() - started)
    started = time.monotonic()
    run()
    return Timing(round_trip_s=statistics.median(trips), run_s=time.monotonic() - started)
