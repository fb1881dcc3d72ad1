"""Running a service: uvicorn with the service's host, port and our logging."""

from __future__ import annotations

import uvicorn
from fastapi import FastAPI

from .settings import ServiceSettings


def serve(app: FastAPI, settings: ServiceSettings) -> None:
    uvicorn.run(app, host=settings.host, port=settings.port, log_config=None, access_log=False)
