"""The converter app: `create_app(settings)` for tests and the launcher, `python -m converter` to serve.

The lifespan migrates the database, opens the model store (removing files a crash left half
written), and loads the converters so the first upload is not the slow one. /readyz says
ready while the database is at the newest migration and the store is writable.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI

from opml.service.app import Check, add_check
from opml.service.app import create_app as create_service_app
from opml.service.db import Database
from opml.service.journal import SqlJournal
from opml.service.run import serve
from opml.store import BlobStore

from . import routes
from .db import TransactionRecord
from .metrics import ConverterMetrics
from .registration import Registrar
from .service import ModelLibrary
from .settings import ConverterSettings

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
MULTIPART_MARGIN = 64 << 10  # room for the form's boundaries and other fields beside the file

DESCRIPTION = """Turns models into the files the VM runs and keeps them by their root M.

Upload a seed or graph model file, a PyTorch state_dict (the seed MLP with any hidden width, or the
small CNN; loaded without unpickling code) or an ONNX model (converted for the ops the graph
supports). The answer gives the model's id (its root M), the keccak256 of its file (what
`registerModel` takes), its size and a layer summary. Agents and vm-workers fetch the file from
`/models/{id}/file` and check it against M. `POST /models/{id}/register` puts a model on-chain."""


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    settings: ConverterSettings = app.state.settings
    database = Database(settings.database_url)
    await asyncio.to_thread(database.migrate, MIGRATIONS)
    store = BlobStore(settings.store_dir)
    store.clean_incoming()
    library = ModelLibrary(settings, database, store, app.state.metrics, _registrar(settings, database))
    await asyncio.to_thread(library.warm_up)
    app.state.library = library
    try:
        yield
    finally:
        database.dispose()


def _registrar(settings: ConverterSettings, database: Database) -> Registrar | None:
    if settings.missing_for_registration:
        return None
    key = settings.private_key.get_secret_value()
    return Registrar(settings.rpc_url, settings.deployment_path, key, SqlJournal(database, TransactionRecord))


def create_app(settings: ConverterSettings | None = None) -> FastAPI:
    settings = settings or ConverterSettings()
    app = create_service_app(
        name="converter",
        title="OPML converter",
        description=DESCRIPTION,
        settings=settings,
        routers=[routes.router],
        lifespan=lifespan,
        metrics=ConverterMetrics(),
        max_body_bytes=settings.max_upload_bytes + MULTIPART_MARGIN,
    )
    add_check(app, Check("database", lambda: app.state.library.database.is_migrated(MIGRATIONS)))
    add_check(app, Check("store", lambda: app.state.library.check_store_writable()))
    return app


def main() -> None:
    settings = ConverterSettings()
    serve(create_app(settings), settings)
