"""Games against their clocks, read from the chain: when each move was mined, how long its side took, and how
much of its clock (or of the claim's window, for a challenge) was left. What `GET /disputes/{id}` and the
explorer show per move, and what bench/e2e.py measures its margins from.

A game starts with both clocks at the deployment's clock budget; the defender moves first. A side's
clock runs only while it is to move: a move mined at chain time t by the side to move spends
t - (time of the previous move) of its clock.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol

from web3 import Web3


class TimedEvent(Protocol):
    name: str
    block_number: int
    block_timestamp: int


@dataclass(frozen=True)
class MoveTiming:
    move: str  # challenge, bisect, select, link, end (a resolve or a timeout: GameEnded)
    side: str  # challenger or defender ("" for the end, which anyone may call)
    block_number: int
    chain_time: int
    took: int  # seconds since the previous move (for a challenge: since the claim was revealed)
    left: int  # seconds of the mover's clock left after it (for a challenge: of the claim's window)


MOVE_OF = {
    "GameStarted": "challenge",
    "Bisected": "bisect",
    "SegmentSelected": "select",
    "Linked": "link",  # the defender's move at one node of a graph claim's phase 1 (docs/two-phase.md)
    "GameEnded": "end",
}


def game_timeline(events: Iterable[TimedEvent], claimed_at: int, window: int, clock_budget: int) -> list[MoveTiming]:
    """The moves of one game from its events (in chain order), `claimed_at` being its claim's reveal time."""
    timeline: list[MoveTiming] = []
    clocks = {"defender": clock_budget, "challenger": clock_budget}
    last = claimed_at
    for event in events:
        move = MOVE_OF.get(event.name)
        if move is None:
            continue
        now = event.block_timestamp
        if move == "challenge":
            timeline.append(MoveTiming(move, "challenger", event.block_number, now, now - claimed_at,
                                       claimed_at + window - now))  # fmt: skip
        elif move == "end":
            timeline.append(MoveTiming(move, "", event.block_number, now, now - last, 0))
        else:
            side = "defender" if move in ("bisect", "link") else "challenger"
            clocks[side] -= now - last
            timeline.append(MoveTiming(move, side, event.block_number, now, now - last, clocks[side]))
        last = now
    return timeline


def least_left(timeline: list[MoveTiming], side: str) -> int | None:
    """The smallest margin `side` had on any of its moves (None if it made none)."""
    margins = [move.left for move in timeline if move.side == side]
    return min(margins) if margins else None


class BlockWatch:
    """Notes the wall-clock time each new block is first seen, polling the node every `interval` seconds: move
    latencies finer than the chain's one-second timestamps (bench/e2e.py)."""

    def __init__(self, w3: Web3, interval: float = 0.01):
        self.w3 = w3
        self.interval = interval
        self.seen: dict[int, float] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, name="block-watch", daemon=True)

    def __enter__(self) -> BlockWatch:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(5)

    def _watch(self) -> None:
        last = self.w3.eth.block_number
        while not self._stop.is_set():
            try:
                head = self.w3.eth.block_number
            except Exception:  # the node is busy or restarting: look again
                head = last
            now = time.monotonic()
            for number in range(last + 1, head + 1):
                self.seen.setdefault(number, now)
            last = max(last, head)
            self._stop.wait(self.interval)
