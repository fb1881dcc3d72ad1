"""The HTTP API: thin handlers over the execution pool (executions.py)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import JSONResponse

from opml.service.app import Problem

from .executions import ExecutionPool, Job, Status
from .schemas import (
    EXAMPLE_ID,
    HASH_PATTERN,
    STEP_MAX,
    ExecutionIn,
    ExecutionOut,
    GoldenOut,
    ProgramOut,
    ProofOut,
    StatesIn,
    StatesOut,
    from_hex,
    hex0x,
)
from .settings import VmWorkerSettings

router = APIRouter()
UNPARSABLE = {400: {"model": Problem, "description": "The body cannot be parsed"}}


def _pool(request: Request) -> ExecutionPool:
    return request.app.state.pool


def _settings(request: Request) -> VmWorkerSettings:
    return request.app.state.settings


Pool = Annotated[ExecutionPool, Depends(_pool)]
Settings = Annotated[VmWorkerSettings, Depends(_settings)]
ExecutionId = Annotated[
    str,
    Path(
        pattern=HASH_PATTERN,
        description="keccak256(P || M || I || step_limit as u64 [|| node header || operand roots, for a node run])",
        examples=[EXAMPLE_ID],
    ),
]


@router.post(
    "/executions",
    tags=["executions"],
    summary="Run a program on a model and an input, or one node of a graph (or find that run: keyed by content)",
    status_code=201,
    response_model=ExecutionOut,
    responses={
        **UNPARSABLE,
        201: {"description": "The run has ended (done or failed)"},
        202: {"model": ExecutionOut, "description": "Queued or still running: poll the Location header's URL"},
    },
)
async def create_execution(body: ExecutionIn, pool: Pool, settings: Settings) -> JSONResponse:
    job = await pool.create(body.to_request(settings.default_step_limit))
    job = await pool.settled(job, settings.wait_seconds)
    return _created(job)


@router.get(
    "/executions/{execution_id}",
    tags=["executions"],
    summary="An execution (recomputed from the store if this worker does not hold it); waits a while if running",
    response_model=ExecutionOut,
)
async def get_execution(execution_id: ExecutionId, pool: Pool, settings: Settings) -> ExecutionOut:
    job = await pool.settled(await pool.find(from_hex(execution_id)), settings.wait_seconds)
    return ExecutionOut.of(job)


@router.post(
    "/executions/{execution_id}/states",
    tags=["executions"],
    summary="State hashes after each of the given steps (one dissection round); waits for the run",
    response_model=StatesOut,
    responses=UNPARSABLE,
)
async def state_hashes(execution_id: ExecutionId, body: StatesIn, pool: Pool) -> StatesOut:
    hashes = await pool.state_hashes(from_hex(execution_id), body.steps)
    return StatesOut(hashes=[hex0x(h) for h in hashes])


@router.get(
    "/executions/{execution_id}/proof",
    tags=["executions"],
    summary="The witness of the step from state N to N + 1, ready for MIPS.step; waits for the run",
    response_model=ProofOut,
)
async def proof(
    execution_id: ExecutionId, pool: Pool, step: Annotated[int, Query(ge=0, le=STEP_MAX, examples=[1000])]
) -> ProofOut:
    return ProofOut.of(await pool.proof(from_hex(execution_id), step))


@router.get(
    "/executions/{execution_id}/golden",
    tags=["executions"],
    summary="The initial state and the roots P, M, I (the golden image)",
    response_model=GoldenOut,
)
async def golden(execution_id: ExecutionId, pool: Pool) -> GoldenOut:
    return GoldenOut.of(await pool.find(from_hex(execution_id)))


@router.get("/programs", tags=["programs"], summary="The built-in programs", response_model=list[ProgramOut])
def programs(pool: Pool) -> list[ProgramOut]:
    catalog = pool.programs()
    return [ProgramOut.of(program, default=program is catalog.default) for program in catalog.programs]


def _created(job: Job) -> JSONResponse:
    body = ExecutionOut.of(job)
    status = 202 if job.status in (Status.QUEUED, Status.RUNNING) else 201
    return JSONResponse(
        body.model_dump(mode="json"), status_code=status, headers={"Location": f"/executions/{body.id}"}
    )
