"""The linked two-phase game's native side for graph models (docs/two-phase.md).

- `values`: a run's values as bytes (value 0 the input as sent; every other value kind, rank, dims and
  canonical big-endian elements) and their roots (the root of a 2^28-byte region holding them).
- `tree`: the value tree (depth 20) and the phase-1 states S_t, with the siblings of any slot in any S_t.
- `run`: what every natively computed run is to its players (`ValueRun`: values, roots, the tree, node i's
  operand slots, the link's and finalize's openings), shared by graph models and LLM generations.
- `native`: a whole run computed natively (`evaluate`: every value, root and the tree: an honest claim; its
  openings for the link and for finalize), and the node program's checks and result for one node
  (`node_program`).

The VM half is `opml.vm.execution.Execution.node_run` (the node program's run for one node) and
`opml.vm.node_run` (the node header and the start state the registry builds from roots).
"""

from .native import (
    EXIT_BAD_NODE_INDEX,
    EXIT_BAD_OPERAND,
    EXIT_WRONG_NODE_COUNT,
    EXIT_WRONG_OPERANDS,
    GraphRun,
    NodeOutcome,
    NodeRefused,
    compute_node,
    evaluate,
    node_program,
)
from .run import LinkOpenings, SlotOpening, ValueRun
from .tree import VALUE_TREE_DEPTH, ValueTree, input_state, root_from_siblings
from .values import (
    Value,
    ValueFormatError,
    canonical,
    decode_value,
    encode_value,
    first_leaf_proof,
    root_from_first_leaf,
    value_root,
)

__all__ = [
    "EXIT_BAD_NODE_INDEX",
    "EXIT_BAD_OPERAND",
    "EXIT_WRONG_NODE_COUNT",
    "EXIT_WRONG_OPERANDS",
    "GraphRun",
    "LinkOpenings",
    "NodeOutcome",
    "NodeRefused",
    "SlotOpening",
    "ValueRun",
    "VALUE_TREE_DEPTH",
    "Value",
    "ValueFormatError",
    "ValueTree",
    "canonical",
    "compute_node",
    "decode_value",
    "encode_value",
    "evaluate",
    "first_leaf_proof",
    "input_state",
    "node_program",
    "root_from_first_leaf",
    "root_from_siblings",
    "value_root",
]
