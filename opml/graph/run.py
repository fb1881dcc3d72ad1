"""What every natively computed run of the two-phase game is to its players (docs/two-phase.md): its values,
their roots, the value tree, and which value slots node i reads.

Two kinds of runs have it: a graph-format model's (`opml.graph.native.GraphRun`, whose node i reads the slots
its model file lists) and an LLM's generation (`opml.models.llm.graph.GenerationRun`, whose node i reads the
slots the generation's fixed graph gives). The agents (opml.game.graph.GraphTrace) use only this:

    run.values, run.roots, run.tree       # value j's bytes and root, j = 0..n, and the tree of the roots
    run.node_count, run.final_state       # the claim: n and S_n
    run.output, run.output_opening()      # value n and its slot in S_n (finalize)
    run.state(t)                          # phase 1's S_t
    run.operand_slots(i), run.operands(i) # node i's operand slots (the link's header) and their values
    run.link_openings(i)                  # the value tree's part of the link at node i
    run.with_value(slot, value)           # the same run with one value replaced (a lying player's)
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from .tree import EMPTY_SLOT, ValueTree
from .values import value_root


@dataclass(frozen=True)
class SlotOpening:
    """A slot of a phase-1 state: its content and its VALUE_TREE_DEPTH siblings, bottom first."""

    slot: int
    root: bytes
    siblings: list[bytes]


@dataclass(frozen=True)
class LinkOpenings:
    """The value tree's part of the link at node i: node i's operands and the input in S_i, and the output
    slot i + 1 with its root V and its siblings in S_i (which give S_i with the slot empty and S_{i+1} with
    V in it). The rest of the link is the VM's: the node run's final state and its output siblings
    (Execution.node_run(...).run().final_state, .output_siblings())."""

    node: int
    operands: list[SlotOpening]
    input: SlotOpening
    output: SlotOpening


class ValueRun:
    """The shared part of a natively computed run. A subclass is a frozen dataclass with the fields `values`
    (value j's bytes, value 0 the input as sent), `roots` (value j's root) and `tree` (their ValueTree), and
    says which slots node i reads (`operand_slots`)."""

    values: list[bytes]
    roots: list[bytes]
    tree: ValueTree

    def operand_slots(self, node: int) -> tuple[int, ...]:
        """The value slots node `node` reads, in the order of its operand regions (the link's header)."""
        raise NotImplementedError

    @property
    def node_count(self) -> int:
        """n: the claim's "steps" (the run has n + 1 values)."""
        return len(self.values) - 1

    @property
    def final_state(self) -> bytes:
        """S_n: the claim's final state."""
        return self.tree.state(self.node_count)

    @property
    def output(self) -> bytes:
        """Value n: the claim's output."""
        return self.values[-1]

    def state(self, t: int) -> bytes:
        """S_t, the phase-1 state after node t - 1."""
        return self.tree.state(t)

    def operands(self, node: int) -> list[tuple[int, bytes]]:
        """Node `node`'s operands as a node run takes them: (slot, value bytes) in the order of its slots."""
        return [(slot, self.values[slot]) for slot in self.operand_slots(node)]

    def opening(self, slot: int, t: int) -> SlotOpening:
        """Slot `slot` of S_t: its root (EMPTY_SLOT past t) and its siblings."""
        root = self.roots[slot] if slot <= t else EMPTY_SLOT
        return SlotOpening(slot, root, self.tree.siblings(slot, t))

    def link_openings(self, node: int) -> LinkOpenings:
        """What the link at [node, node + 1] proves from the value tree (docs/two-phase.md, "The link")."""
        return LinkOpenings(
            node=node,
            operands=[self.opening(slot, node) for slot in self.operand_slots(node)],
            input=self.opening(0, node),
            output=SlotOpening(node + 1, self.roots[node + 1], self.tree.siblings(node + 1, node)),
        )

    def output_opening(self) -> SlotOpening:
        """Slot n of S_n: what finalize is given with the output's bytes."""
        return self.opening(self.node_count, self.node_count)

    def with_value(self, slot: int, value: bytes):
        """This run with value `slot` replaced by `value` (its root and the tree recomputed): what a player
        lying about one value claims."""
        values = list(self.values)
        values[slot] = value
        roots = list(self.roots)
        roots[slot] = value_root(value)
        return dataclasses.replace(self, values=values, roots=roots, tree=ValueTree(roots))
