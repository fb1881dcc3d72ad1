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
    kind: ResultKind, exit_code: int, output: bytes, embedding: bool = False, graph_value: bool = False
) -> OutputOut:
    """The result's kind and raw output, and the output decoded: the predicted class and scores of a classifier,
    or the vector and its norm of an embedding model (whose "predicted class", the index of its largest element,
    means nothing). A two-phase game's output (`graph_value`) is the graph's last value (opml.graph.values);
    a whole run's, the inference program's prediction."""
    kind = ResultKind(kind)
    raw = OutputOut(kind=kind.label, exited=kind != ResultKind.STEP_LIMIT_REACHED, exit_code=exit_code,
                    output="0x" + output.hex())  # fmt: skip
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


class ModelGraphs:
    """A registered model's graph by on-chain id (to name the nodes of a two-phase game), when its file can be had
    here; remembered."""

    def __init__(self, registry: Registry, models):
        self.registry = registry
        self.models = models
        self._known: dict[int, object] = {}

    def __call__(self, model_id: int):
        from ..models.formats import parse_model

        if model_id not in self._known:
            try:
                registered = self.registry.model(model_id)
                self._known[model_id] = parse_model(self.models.model_bytes(registered.root, registered.uri))
            except OpmlError:
                return None
        return self._known[model_id]


class EmbeddingModels:
    """Whether a registered model's output is an embedding (a text model's: opml.requests.is_text_model) rather
    than class scores, by on-chain id; remembered, since a registration never changes. A model whose file
    cannot be had now counts as a classifier, and is asked about again next time."""

    def __init__(self, registry: Registry, models):
        self.registry = registry
        self.models = models  # a ModelSource: model_bytes(root, uri)
        self._known: dict[int, bool] = {}

    def __call__(self, model_id: int) -> bool:
        from ..models.formats import parse_model
        from ..requests import is_text_model

        if model_id not in self._known:
            try:
                registered = self.registry.model(model_id)
                graph = parse_model(self.models.model_bytes(registered.root, registered.uri))
            except OpmlError:
                return False
            self._known[model_id] = is_text_model(graph)
        return self._known[model_id]


def not_embedding(model_id: int) -> bool:
    return False
