"""The dissection as a picture: the geometry of the game page's inline SVG, worked out here so that the
template only draws.

One row per round, top to bottom. A row's bar is that round's interval [lo, hi] on a log scale of its
width: it reaches from the left edge (one step) to log(width) / log(claimed steps) of the plot, so the
claim's whole run spans the plot and every round's bar is visibly shorter than the one before, down to
the single step at the bottom. The bar is cut into the round's segments at the steps whose state hashes
the defender posted; the segment the challenger disputed is filled, and a band joins it to the next
row's bar, since that segment is the next round's interval. Below the rows, an axis in powers of ten.

A two-phase game (docs/two-phase.md) is two pictures: phase 1 over the claim's values (from its node count down
to one node, which the defender links to a VM run of that node), then phase 2 over that node's run (from its
steps down to one instruction). A whole-run game is one picture, over the run's steps.
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
    phase: str = "run"  # "run": a whole run's steps; "graph": phase 1's values; "node": phase 2, a node's run
    unit: str = "steps"  # what the bars count: steps, or nodes


def dissection_picture(report: DisputeReport) -> Picture:
    """The one picture of a whole-run game."""
    return _picture(report.history, (report.lo, report.hi), report.claimed_steps, report, "steps",
                    _summary(report), phase="run")  # fmt: skip


def dissection_pictures(report: DisputeReport) -> list[Picture]:
    """The game's pictures: one for a whole-run game; for a two-phase game, phase 1 over its values, then (once
    linked) phase 2 over the linked node's run."""
    if report.game != "two_phase":
        return [dissection_picture(report)]
    phase1 = [round_ for round_ in report.history if round_.phase == "graph"]
    phase2 = [round_ for round_ in report.history if round_.phase == "run"]
    link = report.link
    if link is None:  # phase 1 is still played (or ended on time in it)
        return [_picture(phase1, (report.lo, report.hi), report.claimed_steps, report, "nodes",
                         _phase1_summary(report), phase="graph")]  # fmt: skip
    pictures = [_picture(phase1, (link.node, link.node + 1), report.claimed_steps, report, "nodes",
                         _phase1_summary(report), phase="graph", linked=True)]  # fmt: skip
    pictures.append(_picture(phase2, (report.lo, report.hi), max(link.steps, 1), report, "steps",
                             _phase2_summary(report), phase="node"))  # fmt: skip
    return pictures


def _picture(rounds: list[RoundView], current: tuple[int, int], total: int, report: DisputeReport, unit: str,
             summary: str, *, phase: str, linked: bool = False) -> Picture:  # fmt: skip
    scale = math.log10(max(total, 2))

    def bar_width(lo: int, hi: int) -> float:
        return max(MIN_BAR, PLOT * math.log10(max(hi - lo, 1)) / scale)

    rows: list[Row] = []
    for interval, round_, caption, final in _intervals(rounds, current, report, unit, phase, linked):
        y = TOP + len(rows) * ROW
        width = bar_width(*interval)
        segments, cuts = _segments(round_, width) if round_ is not None else ([], [])
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
    return Picture(WIDTH, int(axis_y + AXIS), BAR_HEIGHT, LEFT, WIDTH - RIGHT, axis_y, rows, zooms, ticks, summary,
                   phase, unit)  # fmt: skip


def _intervals(rounds: list[RoundView], current: tuple[int, int], report: DisputeReport, unit: str, phase: str,
               linked: bool) -> list[tuple[tuple[int, int], RoundView | None, str, bool]]:  # fmt: skip
    """Each row's interval, the round played on it (None if none was), its caption, and whether it is the end of
    the picture's dissection (one step, or one node)."""
    rows: list[tuple[tuple[int, int], RoundView | None, str, bool]] = []
    for round_ in rounds:
        note = None if round_.segment is not None else _waiting(report, "to choose")
        rows.append(((round_.lo, round_.hi), round_, _caption(f"Round {round_.round}", round_.lo, round_.hi, note,
                                                              unit), False))  # fmt: skip
    choosing = rounds and rounds[-1].segment is None  # the current interval is that round's row
    if _one_step(current):
        lo, hi = current
        if phase == "graph":
            node = report.link
            if linked and node is not None:
                what = f"node {node.node:,}" + (f" ({node.op})" if node.op else "")
                rows.append((current, None, f"One node: {what}, linked to its run", True))
            else:
                note = "the defender to link it" if report.status == "active" else "the defender did not link it"
                rows.append((current, None, f"One node: [{lo:,}, {hi:,}], {note}", True))
        else:
            note = "to be executed on-chain" if report.status == "active" else "settled on-chain"
            rows.append((current, None, f"One step: {lo:,} → {hi:,}, {note}", True))
    elif not choosing:
        number = (rounds[-1].round if rounds else _rounds_before(report, phase)) + 1
        caption = _caption(f"Round {number}", *current, _waiting(report, "to post hashes"), unit)
        rows.append((current, None, caption, False))
    return rows


def _rounds_before(report: DisputeReport, phase: str) -> int:
    """Rounds played before this picture's first: phase 2's numbers go on from phase 1's."""
    return sum(1 for round_ in report.history if round_.phase == "graph") if phase == "node" else 0


def _waiting(report: DisputeReport, move: str) -> str:
    return f"the {report.turn} ran out of time" if report.status != "active" else f"{report.turn} {move}"


def _caption(name: str, lo: int, hi: int, note: str | None, unit: str = "steps") -> str:
    """A row's caption, kept short enough for the picture's width: the note replaces the count."""
    return f"{name}: [{lo:,}, {hi:,}] · {note or f'{hi - lo:,} {unit}'}"


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


def _phase1_summary(report: DisputeReport) -> str:
    start = f"Phase 1 of game {report.id} disputes a claim of {report.claimed_steps:,} node values"
    chosen = sum(1 for round_ in report.history if round_.phase == "graph" and round_.segment is not None)
    if report.link is not None:
        return f"{start}; {chosen} rounds narrowed it to node {report.link.node:,}, which the defender linked."
    return f"{start}; after {chosen} rounds the disputed nodes are [{report.lo:,}, {report.hi:,}]."


def _phase2_summary(report: DisputeReport) -> str:
    link = report.link
    start = f"Phase 2 of game {report.id} disputes node {link.node:,}'s run of {link.steps:,} steps"
    chosen = sum(1 for round_ in report.history if round_.phase == "run" and round_.segment is not None)
    if _one_step((report.lo, report.hi)):
        return f"{start}; {chosen} rounds narrowed it to the one step from {report.lo:,} to {report.hi:,}."
    return f"{start}; after {chosen} rounds the disputed interval is [{report.lo:,}, {report.hi:,}]."
