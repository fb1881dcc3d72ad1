"""The explorer's pages: /ui (requests and games, paginated) and /ui/disputes/{id} (one game).

Routes stay thin: the data comes from the read model (opml.readmodel: the same reports as the JSON API, each
read at one block), the words and numbers from formatting.py, the picture's geometry from picture.py. Under /ui every error is a page
for people (a 404 for an unknown game, no stack trace ever); elsewhere the service's JSON errors stand.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlencode

import jinja2
from fastapi import APIRouter, FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from starlette.exceptions import HTTPException as StarletteHTTPException

from opml.errors import NotFound, OpmlError
from opml.readmodel import ReadModel
from opml.readmodel.schemas import GameBriefPage, RequestBriefPage

from .formatting import FILTERS
from .picture import dissection_pictures

HERE = Path(__file__).parent
PREFIX = "/ui"
PAGE_SIZE = 20
# How often a page re-fetches itself: a game's moves come seconds apart; the lists change more slowly.
POLL_MS = {"explorer.html": 2_000, "game.html": 1_000}

templates = Jinja2Templates(
    env=jinja2.Environment(
        loader=jinja2.FileSystemLoader(HERE / "templates"),
        autoescape=jinja2.select_autoescape(),
        undefined=jinja2.StrictUndefined,  # a misspelt name fails the page, not silently blanks it
    )
)
templates.env.filters.update(FILTERS)

router = APIRouter(prefix=PREFIX, include_in_schema=False)


def install(app: FastAPI) -> None:
    """Add the pages, their static files and error pages to the challenger's app."""
    app.include_router(router)
    app.mount(f"{PREFIX}/static", StaticFiles(directory=HERE / "static"), name="ui-static")
    for error in (StarletteHTTPException, RequestValidationError, OpmlError):
        app.add_exception_handler(error, _pages_for_people(app.exception_handlers[error]))


@router.get("", response_class=HTMLResponse)
def explorer(
    request: Request,
    requests_page: Annotated[int, Query(ge=1, lt=1 << 31)] = 1,
    games_page: Annotated[int, Query(ge=1, lt=1 << 31)] = 1,
) -> HTMLResponse:
    reads = _reads(request)
    requests, requests_page, requests_pages = _page(reads.request_briefs, requests_page)
    games, games_page, games_pages = _page(reads.game_briefs, games_page)
    pages = {"requests_page": requests_page, "games_page": games_page}

    def page_url(**changes: int) -> str:
        return f"{_root(request)}{PREFIX}?{urlencode({**pages, **changes})}"

    return _render(
        request,
        "explorer.html",
        requests=requests,
        games=games,
        chain_time=games.chain_time,
        pagers={
            "requests": (requests_page, requests_pages, "requests_page"),
            "games": (games_page, games_pages, "games_page"),
        },
        page_url=page_url,
    )


@router.get("/disputes/{game_id:int}", response_class=HTMLResponse)
def game(request: Request, game_id: int) -> HTMLResponse:
    if not 1 <= game_id < 1 << 63:
        raise NotFound(f"no game {game_id}")
    report = _reads(request).dispute(game_id)  # NotFound for an unknown id: the 404 page
    return _render(
        request,
        "game.html",
        report=report,
        pictures=dissection_pictures(report),
        chain_time=report.chain_time,
        # nothing left to change once the game is over and its bonds are indexed: the page stops fetching
        settled=report.status != "active" and bool(report.bonds),
    )


Listing = RequestBriefPage | GameBriefPage


def _page(read: Callable[..., Listing], page: int) -> tuple[Listing, int, int]:
    """One page of a list; a page past the end shows the last one."""
    listing = read(offset=(page - 1) * PAGE_SIZE, limit=PAGE_SIZE)
    pages = max(1, math.ceil(listing.total / PAGE_SIZE))
    if page > pages:
        page = pages
        listing = read(offset=(page - 1) * PAGE_SIZE, limit=PAGE_SIZE)
    return listing, page, pages


def _render(request: Request, template: str, *, status_code: int = 200, **context: Any) -> HTMLResponse:
    reads: ReadModel | None = getattr(request.app.state, "reads", None)
    root = _root(request)
    return templates.TemplateResponse(
        request,
        template,
        {
            "ui_url": f"{root}{PREFIX}",
            "docs_url": f"{root}/docs",
            "static_url": lambda name: f"{root}{PREFIX}/static/{name}",
            "me": reads.address if reads else None,
            "registry": reads.registry.address if reads else None,
            "poll_ms": POLL_MS.get(template, 0),
            "settled": False,
            "chain_time": None,
            **context,
        },
        status_code=status_code,
    )


def _reads(request: Request) -> ReadModel:
    return request.app.state.reads


def _root(request: Request) -> str:
    return request.scope.get("root_path", "")


def _pages_for_people(json_handler):
    """An exception handler that answers under /ui with an error page, and elsewhere as `json_handler` does."""

    async def handle(request: Request, error: Exception):
        if request.url.path != PREFIX and not request.url.path.startswith(f"{PREFIX}/"):
            return await json_handler(request, error)
        if isinstance(error, OpmlError):
            status, message = error.http_status, error.message
        elif isinstance(error, RequestValidationError):
            status, message = 422, "; ".join(item.get("msg", "") for item in error.errors()) or "invalid request"
        elif error.status_code == 404:
            status, message = 404, f"there is no page at {request.url.path}"
        else:
            status, message = error.status_code, str(error.detail)
        return _render(request, "error.html", status_code=status, status=status, message=message)

    return handle
