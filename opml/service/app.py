"""The app factory every service uses: error mapping, request ids, logs, metrics, health and readiness.

    app = create_app(name="converter", title="OPML converter", settings=settings,
                     routers=[routes.router], lifespan=lifespan, checks=[Check("database", db_ok)])

- `OpmlError` becomes its kind's HTTP status with `{"error", "message", "details"}`; a
  validation error is a 422, and what the framework refuses itself (404, 405, a body it
  cannot parse) its own status, with the same shape; anything else a 500 that names the
  request id to look for in the logs (never a stack trace).
- Every request gets an id (`X-Request-ID`, taken from the caller or made up), bound into
  every log line written while it is handled, and returned in the response.
- `/healthz` says the process is alive; `/readyz` runs the service's checks (dependencies
  reachable, caches warm, migrations applied) and answers 503 until all pass;
  `/metrics` is Prometheus text.
- Bodies larger than the service's limit are refused with 413 before they are read.
- Swagger UI (`/docs`) and ReDoc (`/redoc`) are served with their scripts and styles from this process
  (the `fastapi-offline` package ships them), so they work on a machine without the internet.
- Every route that reads a JSON body refuses another content type with 415, and a body that is not
  JSON with 400, before validating anything.
"""

from __future__ import annotations

import asyncio
import inspect
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

import structlog
from fastapi import APIRouter, Depends, FastAPI, Request, params
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse
from fastapi.routing import APIRoute
from fastapi_offline import FastAPIOffline
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException

from ..errors import OpmlError, UnsupportedMediaType
from .logs import configure_logging
from .metrics import Metrics
from .settings import ServiceSettings

log = structlog.get_logger("opml.service")

REQUEST_ID_HEADER = "x-request-id"


@dataclass(frozen=True)
class Check:
    """A readiness check: `probe` returns (or awaits) normally when the dependency is fine, raises otherwise."""

    name: str
    probe: Callable[[], object | Awaitable[object]]


class Problem(BaseModel):
    """The body of every error response."""

    error: str
    message: str
    details: dict | list | None = None

    model_config = {
        "json_schema_extra": {"examples": [{"error": "not_found", "message": "no model 0x12..", "details": None}]}
    }


class Readiness(BaseModel):
    ready: bool
    checks: dict[str, str]


ERROR_RESPONSES = {
    400: {"model": Problem, "description": "Body could not be parsed (not JSON, not the declared content type)"},
    404: {"model": Problem, "description": "Not found"},
    409: {"model": Problem, "description": "Conflict with the current state"},
    413: {"model": Problem, "description": "Body too large"},
    422: {"model": Problem, "description": "Invalid input"},
    502: {"model": Problem, "description": "A dependency failed"},
    503: {"model": Problem, "description": "Not ready"},
}


UNSUPPORTED_MEDIA_TYPE_RESPONSE = {"model": Problem, "description": "The body is not application/json"}


def create_app(
    *,
    name: str,
    title: str,
    description: str,
    settings: ServiceSettings,
    routers: Sequence[APIRouter] = (),
    lifespan=None,
    checks: Sequence[Check] = (),
    metrics: Metrics | None = None,
    max_body_bytes: int = 1 << 20,
    version: str = "0.1.0",
) -> FastAPI:
    configure_logging(settings.log_level, settings.log_format, service=name)
    # FastAPI's own /docs and /redoc load their scripts from a CDN (and ReDoc its fonts from Google): a blank
    # page offline. These are the same pages over the copies fastapi-offline ships, under /static-offline-docs.
    app = FastAPIOffline(title=title, description=description, version=version, lifespan=lifespan)
    app.state.settings = settings
    app.state.metrics = metrics or Metrics(name.replace("-", "_"))
    app.state.checks = list(checks)
    _install_error_handlers(app)
    for router in routers:
        for route in router.routes:
            if _reads_json(route):  # documented where it can happen
                route.responses.setdefault(415, UNSUPPORTED_MEDIA_TYPE_RESPONSE)
        app.include_router(router, responses=ERROR_RESPONSES, dependencies=[Depends(_json_body_only)])
    app.include_router(_operations_router())
    app.add_middleware(_BodyLimit, max_bytes=max_body_bytes)
    app.add_middleware(_SameOriginOnly, paths=("/docs", "/redoc"))
    app.add_middleware(_RequestContext, metrics=app.state.metrics)
    return app


def add_check(app: FastAPI, check: Check) -> None:
    app.state.checks.append(check)


# --- JSON bodies ------------------------------------------------------------------------------------


def _reads_json(route) -> bool:
    """A route whose body is JSON (a pydantic model, a dict...), not a form or an upload."""
    if not isinstance(route, APIRoute) or route.body_field is None:
        return False
    return not isinstance(route.body_field.field_info, params.Form)  # File is a Form too


async def _json_body_only(request: Request) -> None:
    """415 for a body sent to a JSON route as anything but JSON. (FastAPI would read such a body as bytes and
    answer 422 "Input should be a valid dictionary", which tells nobody what to fix.)"""
    if not _reads_json(request.scope.get("route")):
        return
    content_type = request.headers.get("content-type")
    if content_type is None:
        if not await request.body():
            return  # no body at all: validation says which field is missing
    elif _is_json_media_type(content_type):
        return
    raise UnsupportedMediaType(
        "send the body as JSON (content-type: application/json), "
        + (f"not {content_type}" if content_type else "and say so: the request has no content-type")
    )


def _is_json_media_type(content_type: str) -> bool:
    media_type = content_type.split(";", 1)[0].strip().lower()
    main, _, sub = media_type.partition("/")
    return main == "application" and (sub == "json" or sub.endswith("+json"))


# --- operations --------------------------------------------------------------------------------


def _operations_router() -> APIRouter:
    router = APIRouter(tags=["operations"])

    @router.get("/healthz", summary="The process is alive")
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @router.get(
        "/readyz",
        summary="Dependencies reachable, caches warm, migrations applied",
        response_model=Readiness,
        responses={503: {"model": Readiness, "description": "Not ready yet"}},
    )
    async def readyz(request: Request):
        results: dict[str, str] = {}
        for check in request.app.state.checks:
            try:
                outcome = await asyncio.to_thread(check.probe)
                if inspect.isawaitable(outcome):
                    await outcome
                results[check.name] = "ok"
            except Exception as error:  # a failing check is a report, not a crash
                results[check.name] = f"failing: {error}"
        ready = all(value == "ok" for value in results.values())
        return JSONResponse(Readiness(ready=ready, checks=results).model_dump(), status_code=200 if ready else 503)

    @router.get("/metrics", summary="Prometheus metrics", response_class=PlainTextResponse)
    def metrics(request: Request) -> PlainTextResponse:
        return PlainTextResponse(generate_latest(request.app.state.metrics.registry), media_type=CONTENT_TYPE_LATEST)

    return router


# --- errors ------------------------------------------------------------------------------------


def _install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(OpmlError)
    async def opml_error(request: Request, error: OpmlError) -> JSONResponse:
        if error.http_status >= 500:
            log.warning("request failed", error=error.kind.value, message=error.message)
        return JSONResponse(error.to_dict(), status_code=error.http_status)

    @app.exception_handler(StarletteHTTPException)
    async def refused_by_the_framework(request: Request, error: StarletteHTTPException) -> JSONResponse:
        # what Starlette refuses itself (no such route, a wrong method, a body it cannot parse), in our shape
        kind = "not_found" if error.status_code == 404 else "internal" if error.status_code >= 500 else "bad_input"
        headers = dict(error.headers or {})
        if error.status_code == 405:  # every method the path answers, not only the first route's
            headers["Allow"] = ", ".join(_methods_for(request.app, request.url.path))
        return JSONResponse(
            {"error": kind, "message": str(error.detail)}, status_code=error.status_code, headers=headers
        )

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, error: RequestValidationError) -> JSONResponse:
        for item in error.errors():
            if item.get("type") == "json_invalid":  # FastAPI reports it as a validation error; it is a 400
                position = item.get("loc", ("body", None))[-1]
                reason = (item.get("ctx") or {}).get("error", "JSON decode error")
                return JSONResponse(
                    {"error": "bad_input", "message": f"the body is not valid JSON: {reason} at character {position}"},
                    status_code=400,
                )
        details = [
            {"where": ".".join(str(part) for part in item.get("loc", ())), "problem": item.get("msg", "")}
            for item in error.errors()
        ]
        first = details[0] if details else {"where": "", "problem": "invalid request"}
        message = f"{first['where']}: {first['problem']}" if first["where"] else first["problem"]
        return JSONResponse({"error": "bad_input", "message": message, "details": details}, status_code=422)


def _methods_for(app: FastAPI, path: str) -> list[str]:
    methods: set[str] = set()
    for route in app.routes:
        regex = getattr(route, "path_regex", None)
        if regex is not None and regex.match(path):
            methods |= set(getattr(route, "methods", None) or ())
    return sorted(methods)


# --- middleware (pure ASGI, so streaming bodies stream) -----------------------------------------


class _RequestContext:
    """Request id in and out, one log line and the metrics of each request."""

    def __init__(self, app, metrics: Metrics):
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        headers = dict(scope.get("headers") or [])
        incoming = headers.get(REQUEST_ID_HEADER.encode(), b"").decode("latin-1")
        request_id = incoming if 0 < len(incoming) <= 128 and incoming.isprintable() else uuid.uuid4().hex
        structlog.contextvars.bind_contextvars(request_id=request_id)
        started = time.perf_counter()
        status = 500  # until the response starts

        async def send_with_id(message):
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message.setdefault("headers", [])
                message["headers"] = [*message["headers"], (REQUEST_ID_HEADER.encode(), request_id.encode())]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        except Exception:
            # a bug: log it with the request id, answer without a stack trace
            log.exception("unexpected error")
            if status == 500:
                body = JSONResponse(
                    {"error": "internal", "message": f"internal error: see the logs for request {request_id}"},
                    status_code=500,
                )
                await send_with_id({"type": "http.response.start", "status": 500, "headers": body.raw_headers})
                await send_with_id({"type": "http.response.body", "body": body.body})
        finally:
            route = scope.get("route")
            template = getattr(route, "path", "unmatched")
            elapsed = time.perf_counter() - started
            self.metrics.requests.labels(scope["method"], template, str(status)).inc()
            self.metrics.latency.labels(scope["method"], template).observe(elapsed)
            if template not in ("/healthz", "/readyz", "/metrics"):
                log.info(
                    "request", method=scope["method"], path=scope["path"], status=status, ms=round(elapsed * 1000, 1)
                )
            structlog.contextvars.unbind_contextvars("request_id")


# What the documentation pages may load: their own scripts and styles (and the inline ones they start with),
# icons drawn as data: URLs, requests to this service ("Try it out") and ReDoc's search worker. Nothing from
# another origin, so a page works the same without the internet; ReDoc's footer links a Redocly logo on its
# CDN, which the browser then never fetches (the image hides itself when it cannot load).
DOCS_CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; font-src 'self' data:; connect-src 'self'; worker-src 'self' blob:"
)


class _SameOriginOnly:
    """The Content-Security-Policy above on the documentation pages."""

    def __init__(self, app, paths: Sequence[str]):
        self.app = app
        self.paths = set(paths)

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope["path"] not in self.paths:
            return await self.app(scope, receive, send)

        async def send_with_policy(message):
            if message["type"] == "http.response.start":
                policy = (b"content-security-policy", DOCS_CONTENT_SECURITY_POLICY.encode())
                message["headers"] = [*message.get("headers", []), policy]
            await send(message)

        await self.app(scope, receive, send_with_policy)


class _BodyLimit:
    """413 for a body over `max_bytes`, by its Content-Length or while it streams in (then the app is
    told the client went away, and whatever it answers is dropped)."""

    def __init__(self, app, max_bytes: int):
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        limit = self.max_bytes
        for key, value in scope.get("headers") or []:
            if key == b"content-length" and value.isdigit() and int(value) > limit:
                return await _too_large(send, limit)
        received = 0
        refused = False

        async def counting_receive():
            nonlocal received, refused
            if refused:
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    refused = True
                    await _too_large(send, limit)
                    return {"type": "http.disconnect"}
            return message

        async def guarded_send(message):
            if not refused:
                await send(message)

        await self.app(scope, counting_receive, guarded_send)


async def _too_large(send, limit: int) -> None:
    body = JSONResponse(
        {"error": "bad_input", "message": f"the body is larger than this service accepts ({limit} bytes)"},
        status_code=413,
    )
    await send({"type": "http.response.start", "status": 413, "headers": body.raw_headers})
    await send({"type": "http.response.body", "body": body.body})
