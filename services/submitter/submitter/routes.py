"""The submitter's routes: thin over InferenceRequests (POST) and the read model (GET)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Request, status
from fastapi.responses import JSONResponse

from opml.readmodel import ReadModel

from .schemas import InferenceRequestAccepted, InferenceRequestIn, InferenceRequestOut, InferenceRequestPage
from .service import InferenceRequests

router = APIRouter(tags=["inference requests"])


def _requests(request: Request) -> InferenceRequests:
    return request.app.state.requests


def _reads(request: Request) -> ReadModel:
    return request.app.state.reads


@router.post(
    "/inference-requests",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=InferenceRequestAccepted,
    summary="Ask for an inference; the agents take it from there",
)
def create_request(body: InferenceRequestIn, request: Request) -> JSONResponse:
    settings = request.app.state.settings
    sent = _requests(request).submit(
        body.model,
        body.input_bytes(),
        body.pixels,
        settings.default_fee if body.fee is None else body.fee,
        body.step_limit,  # None: the service picks one for the model
        body.program,
        body.text,
        input_f32=body.input_f32,
        allow_step_limit_below_run=body.allow_step_limit_below_run,
        prompt=body.prompt,
        messages=None if body.messages is None else [message.model_dump() for message in body.messages],
        max_new_tokens=body.max_new_tokens,
    )
    url = f"/inference-requests/{sent.request_id}"
    accepted = InferenceRequestAccepted(
        request_id=sent.request_id, url=url, tx_hash="0x" + sent.tx_hash.hex(), gas_used=sent.gas_used
    )
    return JSONResponse(accepted.model_dump(), status_code=202, headers={"Location": url})


@router.get(
    "/inference-requests/{request_id}",
    response_model=InferenceRequestOut,
    summary="A request, its claims, games, result and transactions",
)
def get_request(request_id: Annotated[int, Path(ge=1, lt=1 << 63)], request: Request) -> InferenceRequestOut:
    return _reads(request).request(request_id)


@router.get("/inference-requests", response_model=InferenceRequestPage, summary="Requests, newest first")
def list_requests(
    request: Request,
    status_filter: Annotated[
        str | None, Query(alias="status", pattern="^(requested|claimed|challenged|final|rejected|expired)$")
    ] = None,
    submitted_here: bool | None = None,
    offset: Annotated[int, Query(ge=0, lt=1 << 62)] = 0,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
) -> InferenceRequestPage:
    return _reads(request).requests(status=status_filter, submitted_here=submitted_here, offset=offset, limit=limit)
