"""What each of an agent's transactions is about, from its intent: the journal's `subject`.

The agents name every transaction's intent after what it does and to what (`commit r5`, `challenge c3`,
`game 7 select [0,1953757] r1`, `timeout g7 r2`: opml.agents.submitter, disputes and responder), so that a
restart finds it again. The read side lists a request's or a game's transactions from the journal by subject,
the reverted and dropped ones too (those emitted no event to find them by).
"""

from __future__ import annotations

import re

from .work import WorkKey

PATTERNS = (
    (re.compile(r"^(?:commit|reveal) r(\d+)$"), WorkKey.request),
    (re.compile(r"^(?:finalize|settle|challenge) c(\d+)$"), WorkKey.claim),
    (re.compile(r"^game (\d+) "), WorkKey.game),
    (re.compile(r"^timeout g(\d+) "), WorkKey.game),
)


def subject_of(intent: str) -> str | None:
    """The work key ("request:5", "claim:3", "game:7") a transaction of this intent is about; None for the
    others (withdrawals, deployments)."""
    for pattern, key in PATTERNS:
        match = pattern.match(intent)
        if match:
            return str(key(int(match.group(1))))
    return None
