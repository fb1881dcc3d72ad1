"""The converter's business, outside HTTP: uploads become model files stored by their root M, with
their metadata in the database; registration puts a stored model on-chain.

A model is stored in two steps, the file first (written atomically by the blob store) and then
its row; a failure in between removes the file again, so nothing half-stored is ever visible.
Re-uploading a model that is stored already (the same root M) changes nothing.
"""

from __future__ import annotations

import os
import tempfile
import threading
from dataclasses import asdict, dataclass

from eth_utils import keccak
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from opml.errors import Conflict, NotFound, OpmlError
from opml.models.formats import model_root
from opml.models.ingest import Architecture, ConvertedModel, SourceFormat, convert_model
from opml.service.db import Database
from opml.store import BlobStore

from .db import ModelRecord, utc_now
from .metrics import ConverterMetrics
from .registration import OnchainModel, Registrar
from .settings import ConverterSettings


@dataclass(frozen=True)
class Upload:
    record: ModelRecord
    created: bool  # False: the same model was stored already


class ModelLibrary:
    def __init__(
        self,
        settings: ConverterSettings,
        database: Database,
        store: BlobStore,
        metrics: ConverterMetrics,
        registrar: Registrar | None,
    ):
        self.settings = settings
        self.database = database
        self.store = store
        self.metrics = metrics
        self.registrar = registrar
        self._registering = threading.Lock()

    def warm_up(self) -> None:
        """Load the converters (torch, onnx) and the keccak kernels now, not in the first upload."""
        import opml.models.convert  # noqa: F401
        import opml.models.onnx_import  # noqa: F401

        model_root(b"")
        self.metrics.bytes_stored.set(self.stored_bytes())

    def file_url(self, record: ModelRecord) -> str:
        return f"{self.settings.public_url}/models/{record.root}/file"

    # --- uploads ----------------------------------------------------------------------------------

    def upload(
        self, data: bytes, source_format: SourceFormat | None, architecture: Architecture | None, register: bool
    ) -> Upload:
        """Convert and store an upload; with `register`, put the model on-chain too."""
        if register:
            self.require_registrar()
        try:
            converted = convert_model(data, source_format, architecture)
        except OpmlError:
            self.metrics.uploads.labels(source_format or "unknown", "rejected").inc()
            raise
        upload = self.store_model(converted)
        self.metrics.uploads.labels(converted.source_format, "created" if upload.created else "existing").inc()
        if register:
            return Upload(self.register_stored(upload.record.root), upload.created)
        return upload

    def register_stored(self, root: str) -> ModelRecord:
        """Register a model just stored; if that fails, the error says the model is stored all the same."""
        try:
            return self.register(root)
        except OpmlError as error:
            message = f"model {root} is stored but not registered: {error.message}"
            raise OpmlError(message, kind=error.kind, details={"id": root}) from error

    def store_model(self, converted: ConvertedModel) -> Upload:
        root = "0x" + model_root(converted.data).hex()
        existing = self.find(root)
        if existing is not None:
            return Upload(existing, created=False)
        key = root[2:]
        had_file = key in self.store
        self.store.put(key, converted.data)
        record = ModelRecord(
            root=root,
            file_hash="0x" + keccak(converted.data).hex(),
            size=len(converted.data),
            file_format=converted.file_format,
            source_format=converted.source_format,
            summary=asdict(converted.summary),
            created_at=utc_now(),
        )
        try:
            with self.database.session() as session:
                session.add(record)
        except BaseException as error:
            stored_meanwhile = self.find(root) if isinstance(error, IntegrityError) else None
            if stored_meanwhile is not None:  # a concurrent upload of the same model stored it first
                return Upload(stored_meanwhile, created=False)
            if not had_file:
                self.store.delete(key)
            raise
        self.metrics.bytes_stored.inc(record.size)
        return Upload(record, created=True)

    # --- reads --------------------------------------------------------------------------------------

    def find(self, root: str) -> ModelRecord | None:
        with self.database.session() as session:
            return session.get(ModelRecord, root)

    def get(self, root: str) -> ModelRecord:
        record = self.find(root)
        if record is None:
            raise NotFound(f"no model {root}")
        return record

    def page(self, limit: int, offset: int) -> tuple[list[ModelRecord], int]:
        """The newest models first, and how many there are."""
        with self.database.session() as session:
            total = session.scalar(select(func.count()).select_from(ModelRecord))
            query = select(ModelRecord).order_by(ModelRecord.created_at.desc(), ModelRecord.root)
            return list(session.scalars(query.limit(limit).offset(offset))), total

    def open_file(self, root: str):
        """The model's row and its file as chunks (checked to be there before the response starts)."""
        record = self.get(root)
        key = root[2:]
        self.store.size(key)
        return record, self.store.stream(key)

    def stored_bytes(self) -> int:
        with self.database.session() as session:
            return session.scalar(select(func.coalesce(func.sum(ModelRecord.size), 0)))

    # --- registration ---------------------------------------------------------------------------------

    def require_registrar(self) -> Registrar:
        if self.registrar is None:
            missing = ", ".join(self.settings.missing_for_registration)
            raise Conflict(f"this converter does not register models on-chain: set {missing}")
        return self.registrar

    def register(self, root: str) -> ModelRecord:
        """Register the model in the current deployment's registry (idempotent) and record its id."""
        self.get(root)  # an unknown model is a 404, whether or not this converter can register
        registrar = self.require_registrar()
        with self._registering:
            record = self.get(root)
            known = None
            if record.onchain_model_id is not None:
                known = OnchainModel(record.onchain_model_id, record.registry_address, record.chain_id)
            try:
                onchain = registrar.register(
                    bytes.fromhex(root[2:]), bytes.fromhex(record.file_hash[2:]), self.file_url(record), known
                )
            except OpmlError:
                self.metrics.registrations.labels("failed").inc()
                raise
            if onchain == known:
                self.metrics.registrations.labels("known").inc()
                return record
            with self.database.session() as session:
                record = session.get(ModelRecord, root)
                record.onchain_model_id = onchain.model_id
                record.registry_address = onchain.registry
                record.chain_id = onchain.chain_id
                record.registered_at = utc_now()
            self.metrics.registrations.labels("sent").inc()
            return record

    # --- readiness ---------------------------------------------------------------------------------------

    def check_store_writable(self) -> None:
        descriptor, path = tempfile.mkstemp(dir=self.store.root, prefix=".incoming-probe-")
        os.close(descriptor)
        os.unlink(path)
