"""What claims and moves carry on-chain: the arguments of submitClaim, finalize, resolve and link.

A whole-run claim (`FinalClaim`) is the final state of a VM run, with its output and the proofs of its result
kind; a graph claim (`GraphClaim`, docs/two-phase.md) is the root of a graph run's values and its node count,
with its output value and the slot's siblings. A game narrowed to one step is settled by a `StepProof`; phase 1
of a graph claim's game, narrowed to one node, is linked to a run of the node program by a `LinkProof`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from eth_abi import encode
from web3 import Web3

from ..vm.output import LeafProof, OutputProof, ResultKind
from ..vm.state import State


class Claim(Protocol):
    """What the registry needs of any claim."""

    @property
    def hash(self) -> bytes: ...  # the final state hash (a graph claim: its values' root S_n)

    @property
    def steps(self) -> int: ...  # its steps (a graph claim: its node count n)

    @property
    def result_id(self) -> bytes: ...  # what its commitment and its fee's lead are keyed by (resultIdOf)

    @property
    def kind(self) -> ResultKind: ...

    @property
    def output(self) -> bytes: ...


@dataclass(frozen=True)
class FinalClaim:
    """The arguments of submitClaim and of the call that finalizes it: the final state, its result kind, its
    output and the proofs. `finalize(state, output, siblings)` for OUTPUT and STEP_LIMIT_REACHED;
    `finalizeMalformed(state, proof)` for MALFORMED_OUTPUT and OUTPUT_TOO_LARGE. A kind left NONE is the
    one an exited state with this output has (OUTPUT), or STEP_LIMIT_REACHED for a state that has not exited.
    """

    state: State
    output: bytes
    siblings: tuple[bytes, ...]  # the output region's siblings in memory (nodes 19, 8, 5, 3)
    kind: ResultKind = ResultKind.NONE
    proof: OutputProof | None = None  # for MALFORMED_OUTPUT and OUTPUT_TOO_LARGE

    def __post_init__(self) -> None:
        if self.kind == ResultKind.NONE:
            default = ResultKind.OUTPUT if self.state.exited else ResultKind.STEP_LIMIT_REACHED
            object.__setattr__(self, "kind", default)
        if self.kind in (ResultKind.MALFORMED_OUTPUT, ResultKind.OUTPUT_TOO_LARGE) and self.proof is None:
            raise ValueError(f"a {self.kind.label} claim needs its output proof")

    @property
    def state_data(self) -> bytes:
        return self.state.encode()

    @property
    def hash(self) -> bytes:
        return self.state.hash

    @property
    def steps(self) -> int:
        return self.state.step

    @property
    def exited(self) -> bool:
        return self.state.exited

    @property
    def result_id(self) -> bytes:
        return self.hash  # the state's hash commits to its steps


@dataclass(frozen=True)
class GraphClaim:
    """The arguments of submitGraphClaim and of the call that finalizes it: the root S_n of the run's values and
    its node count n; its output (value n) with the 20 siblings of slot n in S_n (finalizeGraph), or for an
    output longer than the cap the first leaf of its region (finalizeGraphTooLarge)."""

    values_root: bytes
    node_count: int
    output: bytes  # value n's bytes; empty when it is too large
    siblings: tuple[bytes, ...]  # slot n's siblings in S_n
    kind: ResultKind = ResultKind.OUTPUT
    first_leaf: LeafProof | None = None  # for OUTPUT_TOO_LARGE: the length prefix of value n's region

    def __post_init__(self) -> None:
        if self.kind == ResultKind.OUTPUT_TOO_LARGE and self.first_leaf is None:
            raise ValueError("a graph claim of an output too large needs its first leaf")

    @property
    def hash(self) -> bytes:
        return self.values_root

    @property
    def steps(self) -> int:
        return self.node_count

    @property
    def result_id(self) -> bytes:
        return graph_result_id(self.values_root, self.node_count)

    @property
    def exited(self) -> bool:
        return True


def graph_result_id(values_root: bytes, node_count: int) -> bytes:
    """InferenceRegistry.graphResultIdOf: a graph claim's values and node count, together."""
    return Web3.keccak(encode(["bytes32", "uint64"], [values_root, node_count]))


@dataclass(frozen=True)
class StepProof:
    """The arguments of resolve: the state before the step and the step's proof."""

    state_data: bytes
    proof: bytes


def compact_siblings(siblings) -> list[bytes]:
    """Value-tree siblings as the registry reads them: an empty subtree (the zero hash of its height) sent as 32
    zero bytes, which Proofs.stateWith takes for it (no inner node is zero), so a proof in a sparse tree costs
    little calldata. The same root either way."""
    from ..vm.merkle import ZERO_HASHES

    return [bytes(32) if sibling == ZERO_HASHES[level] else sibling for level, sibling in enumerate(siblings)]


@dataclass(frozen=True)
class Opening:
    """A value's root at a slot of a phase-1 state, with the slot's siblings (bottom first): Proofs.Opening."""

    value: bytes
    siblings: tuple[bytes, ...]

    def as_struct(self) -> tuple:
        return (self.value, compact_siblings(self.siblings))


@dataclass(frozen=True)
class LinkProof:
    """The arguments of link: node i's operands, the input and the disputed value, opened in the agreed and
    disputed states (Proofs.LinkOpenings, passed as its ABI encoding), and the node run's final state with its
    output region's siblings."""

    operand_slots: tuple[int, ...]
    operands: tuple[Opening, ...]
    input: Opening
    output: Opening
    final_state: bytes
    output_region_siblings: tuple[bytes, ...]

    def encoded_openings(self) -> bytes:
        opening = "(bytes32,bytes32[20])"
        return encode(
            [f"(uint32[],{opening}[],{opening},{opening})"],
            [
                (
                    list(self.operand_slots),
                    [o.as_struct() for o in self.operands],
                    self.input.as_struct(),
                    self.output.as_struct(),
                )
            ],  # fmt: skip
        )
