"""The submitter's API logic, outside HTTP: sending inference requests and reporting on them."""

from __future__ import annotations

import threading

from opml.agents.store import AgentStore
from opml.agents.traces import FetchedModels
from opml.agents.views import Receipts, RequestReport, request_report
from opml.chain.client import TransactionManager
from opml.chain.registry import Deployment, Registry
from opml.errors import BadInput
from opml.requests import SentRequest, check_bounds, check_input, input_from_pixels, resolve_model_id, send_request


class InferenceRequests:
    def __init__(
        self,
        registry: Registry,
        requester: TransactionManager,
        store: AgentStore,
        models: FetchedModels,
        deployment: Deployment,
        receipts: Receipts,
    ):
        self.registry = registry
        self.requester = requester
        self.store = store
        self.models = models
        self.deployment = deployment
        self.receipts = receipts
        self._lock = threading.Lock()  # one request at a time from the requester key

    def registered_models(self) -> dict[bytes, int]:
        """Roots of the models registered on-chain, with their ids (the first registration of a root)."""
        roots: dict[bytes, int] = {}
        for row in self.store.events(name="ModelRegistered"):
            roots.setdefault(bytes.fromhex(row.args["root"][2:]), row.args["modelId"])
        return roots

    def submit(
        self,
        model: int | str,
        input: bytes | None,
        pixels: list[int] | None,
        fee: int,
        step_limit: int,
        program_id: int | None = None,
    ) -> SentRequest:
        program_id = program_id or self.deployment.program_id
        self.registry.program(program_id)  # NotFound if it is not registered
        model_id = resolve_model_id(self.registry, model, self.registered_models())
        registered = self.registry.model(model_id)
        model_file = self.models.model_bytes(registered.root, registered.uri)
        if (input is None) == (pixels is None):
            raise BadInput("give the input either as base64 bytes or as pixel values, not both")
        data = input_from_pixels(pixels, model_file) if pixels is not None else input
        if program_id == self.deployment.program_id:  # the inference program reads the model's input size
            check_input(data, model_file)
        check_bounds(self.registry, fee, step_limit, self.requester.balance())
        with self._lock:
            sent = send_request(self.registry, self.requester, program_id, model_id, data, fee, step_limit)
        self.store.record_submitted(sent.request_id, "0x" + sent.tx_hash.hex(), "0x" + registered.root.hex(), data)
        return sent

    def report(self, request_id: int) -> RequestReport:
        return request_report(self.registry, self.store, self.receipts, request_id)

    def ids(self, *, submitted_here: bool | None, offset: int, limit: int) -> tuple[list[int], int]:
        """Request ids, newest first, and how many there are."""
        ids = [row.request_id for row in self.store.events(name="InferenceRequested")]
        if submitted_here is not None:
            ids = [rid for rid in ids if (self.store.submitted(rid) is not None) == submitted_here]
        ids.sort(reverse=True)
        return ids[offset : offset + limit], len(ids)
