"""Dissection points of an interval, computed exactly as InferenceRegistry.sol does.

A game over [lo, hi] is cut into `segment_count(lo, hi, k)` segments; the defender posts
the state hashes at the interior points, the challenger names the first segment it
disputes, and the game continues on that segment until it is one step wide.
"""

from __future__ import annotations

import math


def segment_count(lo: int, hi: int, arity: int) -> int:
    """k segments, or fewer when the interval is shorter than k steps."""
    return min(hi - lo, arity)


def point(lo: int, hi: int, segments: int, index: int) -> int:
    """The step that bounds segment `index` from below (index == segments gives hi)."""
    return lo + (hi - lo) * index // segments


def points(lo: int, hi: int, arity: int) -> list[int]:
    """All bounds of the segments of [lo, hi], lo and hi included."""
    segments = segment_count(lo, hi, arity)
    return [point(lo, hi, segments, index) for index in range(segments + 1)]


def interior_points(lo: int, hi: int, arity: int) -> list[int]:
    """The steps whose state hashes a bisection of [lo, hi] posts."""
    return points(lo, hi, arity)[1:-1]


def segment(lo: int, hi: int, arity: int, index: int) -> tuple[int, int]:
    """The interval the game continues on when the challenger selects segment `index`."""
    segments = segment_count(lo, hi, arity)
    return point(lo, hi, segments, index), point(lo, hi, segments, index + 1)


def max_rounds(steps: int, arity: int) -> int:
    """The most bisection rounds a game over [0, steps] can take (the widest segment each time)."""
    rounds, width = 0, steps
    while width > 1:
        width = math.ceil(width / min(width, arity))
        rounds += 1
    return rounds
