"""The dissection as a picture: the geometry of the game page's inline SVG, worked out here so that the
template only draws.

One row per round, top to bottom. A row's bar is that round's interval [lo, hi] on a log scale of its
width: it reaches from the left edge (one step) to log(width) / log(claimed steps) of the plot, so the
claim's whole run spans the plot and every round's bar is visibly shorter than the one before, down to
the single step at the bottom. The bar is cut into the round's segments at the steps whose state hashes
the defender posted; the segment the challenger disputed is filled, and a band joins it to the next
row's bar, since that segment is the next round's interval. Below the rows, an axis in powers of ten.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from opml.readmodel.schemas import DisputeOut as DisputeReport
from opml.readmodel.schemas import RoundOut as RoundView

from .formatting import compact

WIDTH = 420  # the SVG's own units; it scales to the page's width
LEFT = RIGHT = 8
PLOT = WIDTH - LEFT - RIGHT
TOP = 4
ROW = 52  # height of one row: a caption line, then the bar
CAPTION_BASELINE = 14
BAR_TOP, BAR_HEIGHT = 22, 18
MIN_BAR = 6  # a one-step interval is still drawn
AXIS = 34  # below the rows: the axis line and its labels


@dataclass(frozen=True)
class Segment:
    x: float
    width: float
    lo: int
    hi: int
    chosen: bool


@dataclass(frozen=True)
class Cut:
    """A step inside a round's interval whose state hash the defender posted."""

    x: float
    step: int
    hash: str


@dataclass(frozen=True)
class Row:
    caption: str
    caption_y: float  # the caption's baseline
    bar_y: float
    bar_width: float
    segments: list[Segment]  # empty until the defender posts the round's hashes
    cuts: list[Cut]
    final: bool  # the one step the contract executes


@dataclass(frozen=True)
class Tick:
    x: float
    label: str


@dataclass(frozen=True)
class Picture:
    width: int
    height: int
    bar_height: int
    plot_left: int
    plot_right: int
    axis_y: float
    rows: list[Row]
    zooms: list[str]  # polygons ("x,y x,y ...") from a chosen segment to the next row's bar
    ticks: list[Tick]
    summary: str  # the picture in a sentence, for its <desc>


def dissection_picture(report: DisputeReport) -> Picture:
    scale = math.log10(max(report.claimed_steps, 2))

    def bar_width(lo: int, hi: int) -> float:
        return max(MIN_BAR, PLOT * math.log10(max(hi - lo, 1)) / scale)

    rows: list[Row] = []
    for interval, round_, caption in _intervals(report):
        y = TOP + len(rows) * ROW
        width = bar_width(*interval)
        segments, cuts = _segments(round_, width) if round_ is not None else ([], [])
        final = round_ is None and _one_step(interval)
        rows.append(Row(caption, y + CAPTION_BASELINE, y + BAR_TOP, width, segments, cuts, final))
    zooms = []
    for row, below in zip(rows, rows[1:], strict=False):
        for segment in row.segments:
            if segment.chosen:
                bottom = row.bar_y + BAR_HEIGHT
                zooms.append(
                    f"{segment.x:.1f},{bottom:.1f} {segment.x + segment.width:.1f},{bottom:.1f} "
                    f"{LEFT + below.bar_width:.1f},{below.bar_y:.1f} {LEFT:.1f},{below.bar_y:.1f}"
                )
    axis_y = TOP + len(rows) * ROW + 6
    ticks = [Tick(LEFT + PLOT * power / scale, compact(10**power)) for power in range(int(scale) + 1)]
    return Picture(
        WIDTH, int(axis_y + AXIS), BAR_HEIGHT, LEFT, WIDTH - RIGHT, axis_y, rows, zooms, ticks, _summary(report)
    )


def _intervals(report: DisputeReport) -> list[tuple[tuple[int, int], RoundView | None, str]]:
    """Each row's interval, the round played on it (None if none was), and its caption."""
    rows: list[tuple[tuple[int, int], RoundView | None, str]] = []
    for round_ in report.history:
        note = None if round_.segment is not None else _waiting(report, "to choose")
        rows.append(((round_.lo, round_.hi), round_, _caption(f"Round {round_.round}", round_.lo, round_.hi, note)))
    current = (report.lo, report.hi)
    choosing = report.history and report.history[-1].segment is None  # the current interval is that round's row
    if _one_step(current):
        note = "to be executed on-chain" if report.status == "active" else "settled on-chain"
        rows.append((current, None, f"One step: {report.lo:,} → {report.hi:,}, {note}"))
    elif not choosing:
        caption = _caption(f"Round {len(report.history) + 1}", *current, _waiting(report, "to post hashes"))
        rows.append((current, None, caption))
    return rows


def _waiting(report: DisputeReport, move: str) -> str:
    return f"the {report.turn} ran out of time" if report.status != "active" else f"{report.turn} {move}"


def _caption(name: str, lo: int, hi: int, note: str | None) -> str:
    """A row's caption, kept short enough for the picture's width: the note replaces the step count."""
    return f"{name}: [{lo:,}, {hi:,}] · {note or f'{hi - lo:,} steps'}"


def _segments(round_: RoundView, bar_width: float) -> tuple[list[Segment], list[Cut]]:
    bounds = [round_.lo, *round_.points, round_.hi]

    def x(step: int) -> float:
        return LEFT + bar_width * (step - round_.lo) / (round_.hi - round_.lo)

    segments = [
        Segment(x(lo), x(hi) - x(lo), lo, hi, chosen=(lo, hi) == (round_.next_lo, round_.next_hi))
        for lo, hi in zip(bounds, bounds[1:], strict=False)
    ]
    cuts = [Cut(x(step), step, hash_) for step, hash_ in zip(round_.points, round_.hashes, strict=True)]
    return segments, cuts


def _one_step(interval: tuple[int, int]) -> bool:
    return interval[1] - interval[0] == 1


def _summary(report: DisputeReport) -> str:
    start = f"Game {report.id} disputes a claim of {report.claimed_steps:,} steps"
    chosen = sum(1 for round_ in report.history if round_.segment is not None)
    if _one_step((report.lo, report.hi)):
        return f"{start}; {chosen} rounds narrowed it to the one step from {report.lo:,} to {report.hi:,}."
    return f"{start}; after {chosen} rounds the disputed interval is [{report.lo:,}, {report.hi:,}]."
