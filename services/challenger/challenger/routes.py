"""The challenger's JSON routes: thin over the read model (opml.readmodel). (The explorer's pages are in ui/.)"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Request

from opml.readmodel import ReadModel

from .schemas import DisputeOut, DisputePage, RequestBriefPage

router = APIRouter()


def _reads(request: Request) -> ReadModel:
    return request.app.state.reads


@router.get(
    "/disputes/{game_id}", response_model=DisputeOut, tags=["disputes"], summary="A dispute game, round by round"
)
def get_dispute(game_id: Annotated[int, Path(ge=1, lt=1 << 63)], request: Request) -> DisputeOut:
    return _reads(request).dispute(game_id)


@router.get("/disputes", response_model=DisputePage, tags=["disputes"], summary="Dispute games, newest first")
def list_disputes(
    request: Request,
    mine: bool | None = None,
    request_id: Annotated[int | None, Query(ge=1, lt=1 << 63)] = None,
    status: Annotated[str | None, Query(pattern="^(active|defender_won|challenger_won)$")] = None,
    offset: Annotated[int, Query(ge=0, lt=1 << 62)] = 0,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
) -> DisputePage:
    return _reads(request).disputes(mine=mine, request_id=request_id, status=status, offset=offset, limit=limit)


@router.get(
    "/requests",
    response_model=RequestBriefPage,
    tags=["requests"],
    summary="Inference requests on the registry at a glance, newest first",
)
def list_requests(
    request: Request,
    status: Annotated[str | None, Query(pattern="^(requested|claimed|challenged|final|rejected|expired)$")] = None,
    offset: Annotated[int, Query(ge=0, lt=1 << 62)] = 0,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
) -> RequestBriefPage:
    return _reads(request).request_briefs(status=status, offset=offset, limit=limit)
