"""The submitter's API logic, outside HTTP: sending inference requests. (Reporting on them is the read model's:
opml.readmodel.)"""

from __future__ import annotations

import threading

from opml.agents.store import AgentStore
from opml.agents.traces import FetchedModels
from opml.chain.client import TransactionManager
from opml.chain.registry import Deployment, Registry
from opml.errors import BadInput
from opml.models.formats import parse_model
from opml.requests import (
    SentRequest,
    check_bounds,
    check_input,
    check_step_limit_covers_run,
    default_step_limit,
    input_from_f32,
    input_from_pixels,
    input_from_text,
    resolve_model_id,
    send_request,
    uses_two_phase,
)


class InferenceRequests:
    def __init__(
        self,
        registry: Registry,
        requester: TransactionManager,
        store: AgentStore,
        models: FetchedModels,
        deployment: Deployment,
        default_step_limit: int = 100_000_000,
        served_step_limit: int = 1 << 34,
    ):
        self.registry = registry
        self.requester = requester
        self.store = store
        self.models = models
        self.deployment = deployment
        self.default_step_limit = default_step_limit  # the least a request without step_limit gets
        self.served_step_limit = served_step_limit  # this submitter's policy: it serves no more
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
        step_limit: int | None,
        program_id: int | None = None,
        text: str | None = None,
        *,
        input_f32: list[float] | None = None,
        allow_step_limit_below_run: bool = False,
    ) -> SentRequest:
        """Check everything, then send the request. Exactly one of `input` (bytes), `pixels`, `input_f32` and
        `text`; without `step_limit` the request gets one that covers its model's run (default_step_limit),
        and one below the least its run takes is refused unless `allow_step_limit_below_run`."""
        ways = (("input_base64", input), ("input_f32", input_f32), ("pixels", pixels), ("text", text))
        given = [name for name, value in ways if value is not None]
        if len(given) != 1:
            raise BadInput(
                "give the input one way: input_base64 (bytes), input_f32 (numbers, float32 models), pixels "
                "(image models) or text (text models)" + (f"; got {' and '.join(given)}" if given else "")
            )
        model_id = resolve_model_id(self.registry, model, self.registered_models())
        registered = self.registry.model(model_id)
        model_file = self.models.model_bytes(registered.root, registered.uri)
        graph = parse_model(model_file)
        if program_id is None:  # a graph-format model plays the two-phase game, the seed's format the whole run
            two_phase = uses_two_phase(model_file) and self.deployment.node_program_id
            program_id = self.deployment.node_program_id if two_phase else self.deployment.program_id
        self.registry.program(program_id)  # NotFound if it is not registered
        if pixels is not None:
            data = input_from_pixels(pixels, graph)
        elif input_f32 is not None:
            data = input_from_f32(input_f32, graph)
        elif text is not None:
            data = input_from_text(text, graph)
        else:
            data = input
        whole_run = program_id == self.deployment.program_id
        per_node = program_id == self.deployment.node_program_id  # the step limit bounds each node's run
        if whole_run or per_node:  # the inference and node programs read the model's input
            check_input(data, graph)
        if step_limit is None:
            if whole_run or per_node:
                ceiling = min(self.registry.parameters.max_step_limit, self.served_step_limit)
                step_limit = default_step_limit(graph, self.default_step_limit, ceiling, per_node=per_node)
            else:
                step_limit = min(self.default_step_limit, self.registry.parameters.max_step_limit)
        elif whole_run:
            check_step_limit_covers_run(graph, step_limit, allow_step_limit_below_run)
        check_bounds(self.registry, fee, step_limit, self.requester.balance())
        with self._lock:
            sent = send_request(self.registry, self.requester, program_id, model_id, data, fee, step_limit)
        self.store.record_submitted(sent.request_id, "0x" + sent.tx_hash.hex(), "0x" + registered.root.hex(), data)
        return sent
