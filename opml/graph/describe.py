"""What a node of a two-phase game's graph is, for people: its op, its value's shape, and for a language model's
generation which token's step, which layer and which role in it. Both kinds of graph answer it:

    nodes = GraphNodes(parse_model(model_file))               # a graph-format model
    nodes = GenerationGraph(config, prompt_length, new_tokens)  # an LLM generation (opml.models.llm.graph)
    nodes.node_count, nodes.node_info(i)                      # NodeInfo(index, op, shape, role, step, layer, ...)

The read model (opml.readmodel) names phase 1's points and the linked node with it.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import Protocol


@dataclass(frozen=True)
class NodeInfo:
    index: int
    op: str  # the op it computes: linear, conv2d, ...; for an LLM: embed, rms_norm, matmul, rope, kv_append, ...
    shape: tuple[int, ...]  # its value's shape (an LLM's argmax: the most tokens it can hold)
    role: str | None = None  # an LLM node's role in its step: attn_norm, q, k, ..., gate, up, down, head, argmax
    step: int | None = None  # an LLM node's generation step: the new token it helps choose (0: the first)
    layer: int | None = None  # an LLM node's transformer layer (None outside the layers)
    chunk: int | None = None  # an LM head node's chunk of the vocabulary
    tensor: str | None = None  # the model tensor it multiplies by or reads (an LLM's), e.g. blk.3.ffn_gate


class DescribedGraph(Protocol):
    @property
    def node_count(self) -> int: ...

    def node_info(self, index: int) -> NodeInfo: ...


class GraphNodes:
    """A graph-format model's nodes (opml.models.formats.Graph), shapes from its summary."""

    def __init__(self, graph):
        self.graph = graph

    @property
    def node_count(self) -> int:
        return len(self.graph.nodes)

    @cached_property
    def _layers(self):
        from ..models.summary import summarize

        return summarize(self.graph).layers

    def node_info(self, index: int) -> NodeInfo:
        if not 0 <= index < self.node_count:
            raise IndexError(f"node {index} of {self.node_count}")
        layer = self._layers[index]
        return NodeInfo(index=index, op=layer.op, shape=tuple(layer.output_shape))
