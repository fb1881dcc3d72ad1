"""Registering models on-chain (InferenceRegistry.registerModel) from the converter's key.

The registry hands out a new model id on every call, so registering is made idempotent
here: a model already registered in the current deployment (checked on-chain, since a
dev chain may have been reset under the same addresses) is not sent again, and every
transaction goes through one TransactionManager whose journal lives in the database, so
a registration mined before a crash is found after it instead of being sent twice.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path

from web3.exceptions import TransactionNotFound
from web3.logs import DISCARD

from opml.chain.client import TransactionManager, connect, with_retries
from opml.chain.registry import Deployment, Registry
from opml.errors import BadInput, NotFound, Unavailable
from opml.service.journal import SqlJournal


@dataclass(frozen=True)
class OnchainModel:
    model_id: int
    registry: str  # the registry's address
    chain_id: int


class Registrar:
    """Registers models in the registry of the deployment file, one transaction at a time."""

    def __init__(self, rpc_url: str, deployment_path: Path, private_key: str, journal: SqlJournal):
        self.w3 = connect(rpc_url)
        self.deployment_path = deployment_path
        self.journal = journal
        self.tx = TransactionManager(self.w3, private_key, journal)
        self._lock = threading.Lock()

    def register(self, root: bytes, file_hash: bytes, uri: str, known: OnchainModel | None) -> OnchainModel:
        """The model's id in the current deployment: `known` if the chain still holds it, else found in a
        registration mined earlier, else registered now."""
        deployment = self.deployment()
        registry = Registry(self.w3, deployment.registry)
        if known is not None and known.registry == registry.address and self.holds(registry, known, root, file_hash):
            return known
        intent = f"registerModel 0x{root.hex()} in {registry.address} on chain {deployment.chain_id}"
        with self._lock:
            model_id = self.mined_before(registry, intent, root, file_hash)
            if model_id is None:
                sent = self.tx.send(registry.register_model(root, file_hash, uri), intent=intent)
                model_id = self.model_id_in(registry, sent.tx_hash, root)
        if model_id is None:
            raise Unavailable(f"{intent}: mined, but its ModelRegistered event is missing from the receipt")
        return OnchainModel(model_id, registry.address, deployment.chain_id)

    def deployment(self) -> Deployment:
        """Read on every registration, so a redeployment is picked up without a restart."""
        try:
            return Deployment.read(self.deployment_path)
        except (NotFound, BadInput) as error:
            raise Unavailable(f"cannot register models yet: {error.message}") from None

    @staticmethod
    def holds(registry: Registry, known: OnchainModel, root: bytes, file_hash: bytes) -> bool:
        try:
            model = registry.model(known.model_id)
        except NotFound:
            return False
        return model.root == root and model.file_hash == file_hash

    def mined_before(self, registry: Registry, intent: str, root: bytes, file_hash: bytes) -> int | None:
        """The id from a registration this converter saw mined before (e.g. before a crash), if the chain
        still holds it."""
        tx_hash = self.journal.mined(intent)
        if tx_hash is None:
            return None
        model_id = self.model_id_in(registry, tx_hash, root)
        if model_id is None or not self.holds(registry, OnchainModel(model_id, registry.address, 0), root, file_hash):
            return None
        return model_id

    def model_id_in(self, registry: Registry, tx_hash: bytes, root: bytes) -> int | None:
        """The model id that the ModelRegistered event of this transaction gives `root`."""
        try:
            receipt = with_retries(lambda: self.w3.eth.get_transaction_receipt(tx_hash), what="reading a receipt")
        except TransactionNotFound:
            return None
        for event in registry.contract.events.ModelRegistered().process_receipt(receipt, errors=DISCARD):
            if bytes(event.args.root) == root:
                return event.args.modelId
        return None
