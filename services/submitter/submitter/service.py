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
    check_generation_step_limit,
    generation_input,
    generation_step_limit,
    input_from_f32,
    input_from_pixels,
    input_from_text,
    is_language_model,
    resolve_model_id,
    send_request,
    uses_two_phase,
)

LLM_FIELDS = ("prompt", "messages", "max_new_tokens")


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
        llm_default_new_tokens: int = 64,
        llm_max_new_tokens: int = 64,
    ):
        self.registry = registry
        self.requester = requester
        self.store = store
        self.models = models
        self.deployment = deployment
        self.default_step_limit = default_step_limit  # the least a request without step_limit gets
        self.served_step_limit = served_step_limit  # this submitter's policy: it serves no more
        self.llm_max_new_tokens = llm_max_new_tokens
        self.llm_default_new_tokens = min(llm_default_new_tokens, llm_max_new_tokens)
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
        prompt: str | None = None,
        messages: list[dict[str, str]] | None = None,
        max_new_tokens: int | None = None,
    ) -> SentRequest:
        """Check everything, then send the request. Exactly one of `input` (bytes), `pixels`, `input_f32`, `text`
        and, for a language model, `prompt` or `messages` (with `max_new_tokens`); without `step_limit` the
        request gets one that covers its model's run (default_step_limit; for a language model, its longest
        node's run), and one below the least its run takes is refused unless `allow_step_limit_below_run`."""
        ways = (("input_base64", input), ("input_f32", input_f32), ("pixels", pixels), ("text", text),
                ("prompt", prompt), ("messages", messages))  # fmt: skip
        given = [name for name, value in ways if value is not None]
        if len(given) != 1:
            raise BadInput(
                "give the input one way: input_base64 (bytes), input_f32 (numbers, float32 models), pixels "
                "(image models), text (text models), or prompt or messages (language models)"
                + (f"; got {' and '.join(given)}" if given else "")
            )
        model_id = resolve_model_id(self.registry, model, self.registered_models())
        registered = self.registry.model(model_id)
        model_file = self.models.model_bytes(registered.root, registered.uri)
        if is_language_model(model_file):
            return self._generation(model_id, registered.root, model_file, given[0], input, prompt, messages,
                                    max_new_tokens, fee, step_limit, program_id)  # fmt: skip
        llm_only = [name for name, value in (("prompt", prompt), ("messages", messages),
                                             ("max_new_tokens", max_new_tokens)) if value is not None]  # fmt: skip
        if llm_only:
            raise BadInput(
                f"{' and '.join(llm_only)} {'is' if len(llm_only) == 1 else 'are'} for language models (OPLM model "
                "files); this model is not one: send its input as input_base64, input_f32, pixels or text (for a text "
                "model such as all-MiniLM-L6-v2)"
            )
        graph = parse_model(model_file)
        if program_id is None:  # a graph-format model plays the two-phase game, the seed's format the whole run
            two_phase = uses_two_phase(model_file) and self.deployment.node_program_id
            program_id = self.deployment.node_program_id if two_phase else self.deployment.program_id
        elif self.deployment.llm_program_id and program_id == self.deployment.llm_program_id:
            raise BadInput(f"program {program_id} is the LLM node program: it runs language models, not this model")
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
                step_limit = default_step_limit(graph, self.default_step_limit, self._ceiling(), per_node=per_node)
            else:
                step_limit = min(self.default_step_limit, self.registry.parameters.max_step_limit)
        elif whole_run:
            check_step_limit_covers_run(graph, step_limit, allow_step_limit_below_run)
        return self._send(program_id, model_id, registered.root, data, fee, step_limit)

    def _generation(self, model_id: int, root: bytes, model_file: bytes, way: str, input: bytes | None,
                    prompt: str | None, messages: list[dict[str, str]] | None, max_new_tokens: int | None, fee: int,
                    step_limit: int | None, program_id: int | None) -> SentRequest:  # fmt: skip
        """A language model's request: a greedy generation, played with the LLM node program."""
        from opml.models.llm.graph import weights_of

        if way not in ("prompt", "messages", "input_base64"):
            raise BadInput(
                f"this is a language model: send prompt (text to continue) or messages (a chat), not {way}"
                + (" (text is a sentence to embed, for text models such as all-MiniLM-L6-v2)" if way == "text" else "")
            )
        llm_program = self.deployment.llm_program_id
        if program_id is None:
            if not llm_program:
                raise BadInput("this deployment has no LLM node program registered: it cannot serve language models")
            program_id = llm_program
        elif program_id != llm_program:
            raise BadInput(
                f"a language model's requests play the two-phase game with the LLM node program (program "
                f"{llm_program}): program {program_id} cannot run it"
            )
        self.registry.program(program_id)  # NotFound if it is not registered
        if input is not None and max_new_tokens is not None:
            raise BadInput("max_new_tokens is part of an input_base64 generation: give it there, or send a prompt")
        new_tokens = self.llm_default_new_tokens if max_new_tokens is None else max_new_tokens
        if new_tokens > self.llm_max_new_tokens:
            raise BadInput(f"max_new_tokens is {new_tokens}: this submitter serves at most {self.llm_max_new_tokens}",
                           details={"max_new_tokens": self.llm_max_new_tokens})  # fmt: skip
        model = weights_of(model_file).model
        data = generation_input(model, prompt=prompt, messages=messages, input=input, max_new_tokens=new_tokens)
        if input is not None:
            from opml.models.llm.graph import read_request

            if read_request(data, model.config)[0].max_new_tokens > self.llm_max_new_tokens:
                raise BadInput(f"the input asks for more than the {self.llm_max_new_tokens} new tokens this "
                               "submitter serves")  # fmt: skip
        needed = generation_step_limit(model, data, self._ceiling(), self.registry.parameters.max_step_limit)
        if step_limit is None:
            step_limit = needed
        else:  # a node whose run cannot end within the limit cannot be linked: an honest claim would lose there
            check_generation_step_limit(model, data, step_limit)
        return self._send(program_id, model_id, root, data, fee, step_limit)

    def _ceiling(self) -> int:
        """The most steps a request here may allow: the chain's maxStepLimit, or less by this submitter's policy."""
        return min(self.registry.parameters.max_step_limit, self.served_step_limit)

    def _send(self, program_id: int, model_id: int, root: bytes, data: bytes, fee: int, step_limit: int) -> SentRequest:
        check_bounds(self.registry, fee, step_limit, self.requester.balance())
        with self._lock:
            sent = send_request(self.registry, self.requester, program_id, model_id, data, fee, step_limit)
        self.store.record_submitted(sent.request_id, "0x" + sent.tx_hash.hex(), "0x" + root.hex(), data)
        return sent
