"""The challenger's JSON routes: thin over Disputes. (The explorer's pages are in ui/.)"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Request

from .schemas import DisputeOut, DisputePage, RequestBriefPage
from .service import Disputes

router = APIRouter()


def _disputes(request: Request) -> Disputes:
    return request.app.state.disputes


@router.get(
    "/disputes/{game_id}", response_model=DisputeOut, tags=["disputes"], summary="A dispute game, round by round"
)
def get_dispute(game_id: Annotated[int, Path(ge=1, lt=1 << 63)], request: Request) -> DisputeOut:
    return DisputeOut.model_validate(_disputes(request).report(game_id))


@router.get("/disputes", response_model=DisputePage, tags=["disputes"], summary="Dispute games, newest first")
def list_disputes(
    request: Request,
    mine: bool | None = None,
    request_id: Annotated[int | None, Query(ge=1, lt=1 << 63)] = None,
    status: Annotated[str | None, Query(pattern="^(active|defender_won|challenger_won)$")] = None,
    offset: Annotated[int, Query(ge=0)] = 0,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
) -> DisputePage:
    service = _disputes(request)
    if status is None:
        ids, total = service.ids(mine=mine, request_id=request_id, offset=offset, limit=limit)
        return DisputePage(items=[DisputeOut.model_validate(service.report(i)) for i in ids], total=total)
    every, _ = service.ids(mine=mine, request_id=request_id, offset=0, limit=1 << 31)
    matching = [report for report in (service.report(i) for i in every) if report.status == status]
    return DisputePage(
        items=[DisputeOut.model_validate(r) for r in matching[offset : offset + limit]], total=len(matching)
    )


@router.get(
    "/requests",
    response_model=RequestBriefPage,
    tags=["requests"],
    summary="Inference requests on the registry at a glance, newest first",
)
def list_requests(
    request: Request,
    offset: Annotated[int, Query(ge=0)] = 0,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
) -> RequestBriefPage:
    return RequestBriefPage.model_validate(_disputes(request).request_briefs(offset=offset, limit=limit))
