"""The value tree of a graph run and its phase-1 states (docs/two-phase.md, "The value tree and phase-1 states").

The run's values are the leaves of a binary Merkle tree of depth VALUE_TREE_DEPTH: slot j holds value j's
root, an empty slot is EMPTY_SLOT (32 zero bytes), an inner node is keccak256(left || right), so an empty
subtree of height h has the memory's zero hash Z[h].

The phase-1 state S_t (t = 0..n) is the root of the tree with slots 0..t set and every later slot empty:
S_0 holds only the input (the request's start state, computed on-chain), S_n is a claim's final state.

`ValueTree` is built once from the n + 1 value roots (about 2(n + 1) + 20 hashes); then any S_t, and the
siblings of any slot in any S_t, take VALUE_TREE_DEPTH hashes at most: a node of S_t is the full tree's node
when its slots are all at or before t, Z[h] when they are all after t, and otherwise it is one of the
VALUE_TREE_DEPTH ancestors of slot t, computed on the way up from it.
"""

from __future__ import annotations

from collections.abc import Sequence

from ..errors import BadInput
from ..vm.merkle import ZERO_HASHES, hash_pair
from .values import value_root

VALUE_TREE_DEPTH = 20
VALUE_TREE_SLOTS = 1 << VALUE_TREE_DEPTH
NODE_BYTES = 32
EMPTY_SLOT = ZERO_HASHES[0]  # 32 zero bytes


class ValueTree:
    """The tree of a run's value roots: `roots[j]` is value j's root, j = 0..n."""

    def __init__(self, roots: Sequence[bytes]):
        if not 1 <= len(roots) <= VALUE_TREE_SLOTS:
            raise BadInput(f"a value tree holds 1 to {VALUE_TREE_SLOTS} values, not {len(roots)}")
        if any(len(root) != NODE_BYTES for root in roots):
            raise BadInput("a value root is 32 bytes")
        # levels[h][k]: the node of height h over slots k 2^h .. (k + 1) 2^h - 1, with every slot after n empty.
        self.levels: list[list[bytes]] = [list(roots)]
        for height in range(VALUE_TREE_DEPTH):
            below = self.levels[-1]
            if len(below) % 2:
                below = below + [ZERO_HASHES[height]]
            self.levels.append([hash_pair(below[k], below[k + 1]) for k in range(0, len(below), 2)])

    @property
    def last(self) -> int:
        """n: the last slot set (the node count of the run)."""
        return len(self.levels[0]) - 1

    def root_of(self, slot: int) -> bytes:
        self._check_slot(slot, self.last)
        return self.levels[0][slot]

    def state(self, t: int) -> bytes:
        """S_t: the root with slots 0..t set."""
        return self._path(t)[VALUE_TREE_DEPTH]

    def states(self) -> list[bytes]:
        """S_0 .. S_n."""
        return [self.state(t) for t in range(self.last + 1)]

    def siblings(self, slot: int, t: int) -> list[bytes]:
        """The VALUE_TREE_DEPTH siblings of `slot` in S_t, bottom first: with the slot's content they give
        S_t (`root_from_siblings`). `slot` may be past t (an empty slot of S_t, as slot i + 1 of S_i)."""
        self._check_slot(slot, VALUE_TREE_SLOTS - 1)
        path = self._path(t)
        siblings = []
        for height in range(VALUE_TREE_DEPTH):
            sibling = (slot >> height) ^ 1
            ancestor_of_t = t >> height
            if sibling == ancestor_of_t:
                siblings.append(path[height])  # it holds slot t: the partial node computed from t up
            elif sibling < ancestor_of_t:
                siblings.append(self.levels[height][sibling])  # every slot of it is before t
            else:
                siblings.append(ZERO_HASHES[height])  # every slot of it is after t: empty in S_t
        return siblings

    def _path(self, t: int) -> list[bytes]:
        """The nodes of S_t from slot t up to the root: path[h] is the ancestor of height h of slot t."""
        self._check_slot(t, self.last)
        path = [self.levels[0][t]]
        for height in range(VALUE_TREE_DEPTH):
            index = t >> height
            if index % 2:  # a right child: its left sibling's slots are all before t
                path.append(hash_pair(self.levels[height][index - 1], path[-1]))
            else:  # a left child: its right sibling's slots are all after t, empty in S_t
                path.append(hash_pair(path[-1], ZERO_HASHES[height]))
        return path

    @staticmethod
    def _check_slot(slot: int, highest: int) -> None:
        if not 0 <= slot <= highest:
            raise BadInput(f"slot {slot} is not in 0..{highest}")


def root_from_siblings(slot: int, leaf: bytes, siblings: Sequence[bytes]) -> bytes:
    """The root that `leaf` in `slot` and its siblings (bottom first) give: what the contract computes."""
    if len(siblings) != VALUE_TREE_DEPTH:
        raise BadInput(f"a slot has {VALUE_TREE_DEPTH} siblings, not {len(siblings)}")
    node = leaf
    for height, sibling in enumerate(siblings):
        node = hash_pair(sibling, node) if (slot >> height) & 1 else hash_pair(node, sibling)
    return node


def input_state(input: bytes) -> bytes:
    """S_0 of a request: the tree holding only its input's root (the registry computes it on-chain)."""
    return ValueTree([value_root(input)]).state(0)
