"""How the explorer writes numbers, hashes and times for people (the Jinja filters of its templates).

Hashes and addresses are shortened to their ends (`0x3c44cd…4293bc`), the whole value kept for a
tooltip; step counts get thousands separators; chain-time durations read like a chess clock. The
page's script counts clocks down with the same `duration` format (static/explorer.js).
"""

from __future__ import annotations

from datetime import UTC, datetime

from opml.vm.disasm import disassemble

WEI_PER_ETH = 10**18

REQUEST_STATUS = {
    "requested": "waiting for a claim",
    "claimed": "claimed",
    "challenged": "challenged",
    "final": "final",
    "rejected": "every claim rejected",
    "expired": "expired",
}
GAME_STATUS = {"active": "in play", "defender_won": "defender won", "challenger_won": "challenger won"}


def short(value: str | None, keep: int = 6) -> str:
    """`0x` and the first and last `keep` hex digits of a hash or address."""
    if not value:
        return "—"
    digits = value.removeprefix("0x")
    return value if len(digits) <= 2 * keep + 1 else f"0x{digits[:keep]}…{digits[-keep:]}"


def steps(count: int) -> str:
    return f"{count:,}"


def compact(count: int) -> str:
    """A step count in three significant figures: 1.95M, 122k, 16."""
    for size, suffix in ((10**9, "G"), (10**6, "M"), (10**3, "k")):
        if count >= size:
            return f"{count / size:.3g}{suffix}"
    return str(count)


def duration(seconds: int) -> str:
    """A clock: 0:42, 12:05, 1:02:03."""
    seconds = max(0, int(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, seconds = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{seconds:02d}" if hours else f"{minutes}:{seconds:02d}"


def age(seconds: int) -> str:
    """How long ago, in the largest whole unit: 12 s, 5 min, 3 h, 2 d."""
    seconds = max(0, int(seconds))
    for size, unit in ((86_400, "d"), (3_600, "h"), (60, "min")):
        if seconds >= size:
            return f"{seconds // size} {unit}"
    return f"{seconds} s"


def utc(timestamp: int) -> str:
    """A chain timestamp as a UTC date and time."""
    return datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%d %H:%M:%S")


def eth(wei: int) -> str:
    return f"{wei / WEI_PER_ETH:.4g} ETH"


def assembly(instruction: str, pc: int) -> str:
    """The final step's instruction word (0x-hex) as assembly text."""
    return disassemble(int(instruction, 16), pc)


FILTERS = {
    "short": short,
    "steps": steps,
    "compact": compact,
    "duration": duration,
    "age": age,
    "utc": utc,
    "eth": eth,
    "assembly": assembly,
    "request_status": lambda status: REQUEST_STATUS.get(status, status),
    "game_status": lambda status: GAME_STATUS.get(status, status),
}
