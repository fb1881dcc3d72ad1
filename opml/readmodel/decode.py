"""A result as people read it: its kind and raw output, and the output decoded (a classifier's class and
scores, an embedding model's vector and norm)."""

from __future__ import annotations

import numpy as np

from ..chain.registry import Registry
from ..errors import OpmlError
from ..models.formats import Prediction
from ..vm.output import ResultKind
from .schemas import OutputOut


def decode_output(
    kind: ResultKind,
    exit_code: int,
    output: bytes,
    embedding: bool = False,
    graph_value: bool = False,
    *,
    language_model: bool = False,
    tokenizer=None,
) -> OutputOut:
    """The result's kind and raw output, and the output decoded: the predicted class and scores of a classifier,
    the vector and its norm of an embedding model (whose "predicted class", the index of its largest element,
    means nothing), or a language model's generated token ids (and their text, with `tokenizer`). A two-phase
    game's output (`graph_value`) is the graph's last value (opml.graph.values); a whole run's, the inference
    program's prediction."""
    kind = ResultKind(kind)
    raw = OutputOut(kind=kind.label, exited=kind != ResultKind.STEP_LIMIT_REACHED, exit_code=exit_code,
                    output="0x" + output.hex())  # fmt: skip
    if language_model:
        return _generated(raw, kind, exit_code, output, tokenizer)
    try:
        if kind != ResultKind.OUTPUT or exit_code != 0:
            prediction = None
        elif graph_value:
            prediction = _prediction_of_value(output)
        else:
            prediction = Prediction.from_bytes(output)
    except OpmlError:
        prediction = None
    if prediction is None:
        return raw
    values = [float(value) for value in prediction.scores]
    if embedding:
        norm = float(np.sqrt(np.sum(prediction.scores.astype(np.float64) ** 2)))
        return raw.model_copy(update={"embedding": values, "norm": norm})
    return raw.model_copy(update={"predicted": prediction.predicted, "scores": values})


def _generated(raw: OutputOut, kind: ResultKind, exit_code: int, output: bytes, tokenizer) -> OutputOut:
    from ..models.llm.graph import BadGeneration, output_tokens

    if kind != ResultKind.OUTPUT or exit_code != 0:
        return raw
    try:
        tokens = output_tokens(output)
    except BadGeneration:
        return raw
    text = tokenizer.decode(tokens) if tokenizer is not None else None
    return raw.model_copy(update={"tokens": tokens, "text": text})


def _prediction_of_value(output: bytes) -> Prediction:
    """A graph's last value as the inference program reports it: its elements as scores, and the index of the
    largest (the first of equals: a NaN is never larger), as opml.models.reference.run picks it."""
    from ..graph.values import decode_value

    scores = decode_value(output).elements.reshape(-1).astype(np.float32)
    best = 0
    for index in range(1, scores.size):
        if scores[index] > scores[best]:
            best = index
    return Prediction(best, scores)


MODEL_KINDS = ("classifier", "embedding", "language_model")


class RegisteredModels:
    """What the read model knows of a registered model, by on-chain id, when its file can be had here (the
    agents' ModelSource: the converter, or the registered uri): its kind (a classifier, an embedding (text)
    model, or a language model), the nodes of a request's graph (to name phase 1's points and the linked node of
    a two-phase game) and, for a language model whose vocabulary the packaged tokenizer speaks, that tokenizer.
    A registration never changes, so what is learnt is remembered; a model whose file cannot be had now is asked
    about again next time."""

    def __init__(self, registry: Registry, models):
        self.registry = registry
        self.models = models  # a ModelSource: model_bytes(root, uri)
        self._known: dict[int, tuple[str, object]] = {}  # model id -> (kind, its Graph or LlmModel)

    def _model(self, model_id: int) -> tuple[str, object] | None:
        if model_id not in self._known:
            from ..models.formats import parse_model
            from ..models.llm.format import parse_model as parse_llm_model
            from ..models.llm.graph import is_llm_model
            from ..requests import is_text_model

            try:
                registered = self.registry.model(model_id)
                data = self.models.model_bytes(registered.root, registered.uri)
                if is_llm_model(data):
                    self._known[model_id] = ("language_model", parse_llm_model(data))
                else:
                    graph = parse_model(data)
                    self._known[model_id] = ("embedding" if is_text_model(graph) else "classifier", graph)
            except OpmlError:
                return None
        return self._known[model_id]

    def kind(self, model_id: int) -> str | None:
        """classifier, embedding or language_model; None when the model's file cannot be had here."""
        known = self._model(model_id)
        return known[0] if known else None

    def nodes(self, model_id: int, input: bytes):
        """The nodes of the graph a two-phase request of this model plays (opml.graph.describe), or None: a
        graph-format model's own, a language model's generation graph for this input (its prompt's length and
        max_new_tokens)."""
        known = self._model(model_id)
        if known is None:
            return None
        kind, model = known
        if kind != "language_model":
            from ..graph.describe import GraphNodes

            return GraphNodes(model)
        from ..models.llm.requests import read_generation
        from ..models.llm.graph import GenerationGraph

        request = read_generation(input, model.config)
        return None if request is None else GenerationGraph(model.config, len(request.prompt), request.max_new_tokens)

    def language_model(self, model_id: int):
        """A language model's parsed file (its config), or None."""
        known = self._model(model_id)
        return known[1] if known and known[0] == "language_model" else None

    def tokenizer(self, model_id: int):
        """The packaged tokenizer, if this is a language model whose vocabulary it speaks."""
        from ..models.llm.requests import tokenizer_for

        model = self.language_model(model_id)
        return None if model is None else tokenizer_for(model.config)


class NoModels:
    """Nothing known of any model: results are shown as classifiers' (the read model without a model source)."""

    def kind(self, model_id: int) -> str | None:
        return None

    def nodes(self, model_id: int, input: bytes):
        return None

    def language_model(self, model_id: int):
        return None

    def tokenizer(self, model_id: int):
        return None


def generation_of(models, model_id: int, input: bytes, output: bytes | None = None):
    """A language model's request as people read it (GenerationOut): the prompt from the input's token ids, and
    the answer from a final result's output (the generated ids, up to and including the end of the sequence);
    None if the model is not a language model known here or the input is not a generation of it."""
    from ..models.llm.graph import BadGeneration, output_tokens
    from ..models.llm.requests import read_generation
    from .schemas import GenerationOut

    model = models.language_model(model_id)
    if model is None:
        return None
    request = read_generation(input, model.config)
    if request is None:
        return None
    tokenizer = models.tokenizer(model_id)
    tokens = None
    if output is not None:
        try:
            tokens = output_tokens(output)
        except BadGeneration:
            tokens = None

    def text(ids):
        return None if tokenizer is None or ids is None else tokenizer.decode(list(ids))

    return GenerationOut(
        prompt_tokens=list(request.prompt),
        prompt=text(request.prompt),
        max_new_tokens=request.max_new_tokens,
        tokens=tokens,
        text=text(tokens),
        token_texts=None if tokenizer is None or tokens is None else [tokenizer.decode([t]) for t in tokens],
        finished=None if tokens is None else bool(tokens) and tokens[-1] == model.config.eos,
    )
