"""Statuses, filters and pages where the data is: SQL over the agents' index of registry events.

A request's and a game's status follow from their events alone, as of any block:

- a game is active from its GameStarted until its GameEnded, which carries who won;
- a request is final once ResultFinalized is emitted for it, expired once RequestCancelled is; before either,
  it is challenged while one of its live claims (revealed by ClaimSubmitted, not rejected by ClaimRejected)
  has a game in play, claimed while it has a live claim, rejected when every claim it had was rejected, and
  requested before any claim.

So a list filtered by status is one query with the page (`offset`, `limit`) and one count, whatever the
history's length, and the status a report shows is the same expression: a list and its items never disagree.
"""

from __future__ import annotations

from sqlalchemy import ColumnElement, Select, and_, case, func, not_, select
from sqlalchemy.orm import aliased

from ..agents.store import AgentStore, EventRow, SubmittedRequestRow
from ..protocol.types import GameStatus


def _event(name: str, block: int):
    """An alias of the events table and the conditions that pick one event name up to `block`."""
    row = aliased(EventRow)
    return row, and_(row.name == name, row.block_number <= block)


def _ended(game_id: ColumnElement, block: int, status: GameStatus | None = None) -> ColumnElement[bool]:
    ended, is_ended = _event("GameEnded", block)
    condition = and_(is_ended, ended.game_id == game_id)
    if status is not None:
        condition = and_(condition, ended.args["status"].as_integer() == int(status))
    return select(ended.id).where(condition).exists()


def _rejected(claim_id: ColumnElement, block: int) -> ColumnElement[bool]:
    rejected, is_rejected = _event("ClaimRejected", block)
    return select(rejected.id).where(is_rejected, rejected.claim_id == claim_id).exists()


def request_status(request_id: ColumnElement, block: int) -> ColumnElement[str]:
    """The status of the request `request_id` (a column) as of `block`, as a SQL expression."""
    final, is_final = _event("ResultFinalized", block)
    cancelled, is_cancelled = _event("RequestCancelled", block)
    claim, is_claim = _event("ClaimSubmitted", block)
    live_claim, is_live_claim = _event("ClaimSubmitted", block)
    started, is_started = _event("GameStarted", block)
    of_request = live_claim.request_id == request_id
    live = and_(is_live_claim, of_request, not_(_rejected(live_claim.claim_id, block)))
    in_play = (
        select(started.id)
        .where(is_started, started.claim_id == live_claim.claim_id, not_(_ended(started.game_id, block)))
        .exists()
    )
    return case(
        (select(final.id).where(is_final, final.request_id == request_id).exists(), "final"),
        (select(cancelled.id).where(is_cancelled, cancelled.request_id == request_id).exists(), "expired"),
        (select(live_claim.id).where(live, in_play).exists(), "challenged"),
        (select(live_claim.id).where(live).exists(), "claimed"),
        (select(claim.id).where(is_claim, claim.request_id == request_id).exists(), "rejected"),
        else_="requested",
    )


def game_status(game_id: ColumnElement, block: int) -> ColumnElement[str]:
    """The status of the game `game_id` (a column) as of `block`, as a SQL expression."""
    return case(
        (_ended(game_id, block, GameStatus.DEFENDER_WON), "defender_won"),
        (_ended(game_id, block, GameStatus.CHALLENGER_WON), "challenger_won"),
        else_="active",
    )


def _page(store: AgentStore, query: Select, id_column, offset: int, limit: int) -> tuple[list[int], int]:
    """One page of ids, newest first, and how many match in all."""
    with store.database.session() as session:
        total = session.scalar(select(func.count()).select_from(query.subquery()))
        ids = list(session.scalars(query.order_by(id_column.desc()).offset(offset).limit(limit)))
    return ids, total or 0


def request_page(
    store: AgentStore,
    block: int,
    *,
    status: str | None = None,
    submitted_here: bool | None = None,
    offset: int = 0,
    limit: int = 20,
) -> tuple[list[int], int]:
    """Request ids as of `block`, newest first, with the given status, sent through this service's API or not."""
    requested, is_requested = _event("InferenceRequested", block)
    query = select(requested.request_id).where(is_requested)
    if status is not None:
        query = query.where(request_status(requested.request_id, block) == status)
    if submitted_here is not None:
        here = select(SubmittedRequestRow.request_id).where(SubmittedRequestRow.request_id == requested.request_id)
        query = query.where(here.exists() if submitted_here else not_(here.exists()))
    return _page(store, query, requested.request_id, offset, limit)


def game_page(
    store: AgentStore,
    block: int,
    *,
    status: str | None = None,
    challenger: str | None = None,
    mine: bool | None = None,
    request_id: int | None = None,
    offset: int = 0,
    limit: int = 20,
) -> tuple[list[int], int]:
    """Game ids as of `block`, newest first: with the given status, played by `challenger` (or not, with `mine`
    false), over the claims of one request."""
    started, is_started = _event("GameStarted", block)
    query = select(started.game_id).where(is_started)
    if status is not None:
        query = query.where(game_status(started.game_id, block) == status)
    if mine is not None:
        ours = func.lower(started.args["challenger"].as_string()) == (challenger or "").lower()
        query = query.where(ours if mine else not_(ours))
    if request_id is not None:
        claim, is_claim = _event("ClaimSubmitted", block)
        claims = select(claim.claim_id).where(is_claim, claim.request_id == request_id)
        query = query.where(started.claim_id.in_(claims))
    return _page(store, query, started.game_id, offset, limit)


def request_statuses(store: AgentStore, request_ids: list[int], block: int) -> dict[int, str]:
    """The status of each of these requests as of `block` (those not requested by then are left out)."""
    if not request_ids:
        return {}
    requested, is_requested = _event("InferenceRequested", block)
    query = select(requested.request_id, request_status(requested.request_id, block)).where(
        is_requested, requested.request_id.in_(request_ids)
    )
    with store.database.session() as session:
        return dict(session.execute(query).all())
