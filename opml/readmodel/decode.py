"""A result as people read it: its kind and raw output, and the output decoded (a classifier's class and
scores, an embedding model's vector and norm)."""

from __future__ import annotations

import numpy as np

from ..chain.registry import Registry
from ..errors import OpmlError
from ..models.formats import Prediction
from ..vm.output import ResultKind
from .schemas import OutputOut


def decode_output(kind: ResultKind, exit_code: int, output: bytes, embedding: bool = False) -> OutputOut:
    """The result's kind and raw output, and the output decoded: the predicted class and scores of a classifier,
    or the vector and its norm of an embedding model (whose "predicted class", the index of its largest element,
    means nothing)."""
    kind = ResultKind(kind)
    raw = OutputOut(kind=kind.label, exited=kind != ResultKind.STEP_LIMIT_REACHED, exit_code=exit_code,
                    output="0x" + output.hex())  # fmt: skip
    try:
        prediction = Prediction.from_bytes(output) if kind == ResultKind.OUTPUT and exit_code == 0 else None
    except OpmlError:
        prediction = None
    if prediction is None:
        return raw
    values = [float(value) for value in prediction.scores]
    if embedding:
        norm = float(np.sqrt(np.sum(prediction.scores.astype(np.float64) ** 2)))
        return raw.model_copy(update={"embedding": values, "norm": norm})
    return raw.model_copy(update={"predicted": prediction.predicted, "scores": values})


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
