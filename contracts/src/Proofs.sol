// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {InferenceLayout} from "./InferenceLayout.sol";
import {VMState} from "./VMState.sol";

/// @title Proofs
/// @notice The registry's stateless checks, deployed once beside MIPS and called by it (so the registry keeps
///         only its state and its money within the contract size limit): the roots of the memory layout
///         (region roots, a run's start state, an output region), the proofs of a result's kind, and the
///         checks of the linked two-phase game (docs/two-phase.md).
///
///         A graph claim commits to the run's values: value 0 is the request's input, value j + 1 the output of
///         node j, each a region's root, in a Merkle tree of VALUE_TREE_DEPTH levels. Phase 1 dissects the
///         run's phase-1 states S_t (the tree with slots 0..t set) down to one node; the link opens that node's
///         operands in the agreed state, builds the node program's start state from them and the registered
///         program and model, and checks that the run's final state holds the disputed value; phase 2 is then
///         the one-step game over that run.
contract Proofs {
    // --- types -------------------------------------------------------------------------------

    /// @notice The proof that an exited state's output region is malformed or too large: the region's first
    ///         leaf (its length prefix L), and, when L <= the output cap, a leaf holding a nonzero byte at a
    ///         region offset of 4 + L or more (it may be the first leaf again).
    struct OutputProof {
        bytes32[4] regionSiblings; // the output region's siblings in memory (nodes 19, 8, 5 and 3)
        InferenceLayout.LeafProof first; // leaf 0 of the output region; its index must be 0
        InferenceLayout.LeafProof second; // ignored when L is above the cap
    }

    /// @notice A value root at a slot of a phase-1 state, with the slot's siblings (bottom first).
    struct Opening {
        bytes32 value;
        bytes32[20] siblings;
    }

    /// @notice The values the defender opens to link node i (the game at [i, i + 1]) to a run of the node program.
    struct LinkOpenings {
        uint32[] operandSlots; // node i's operands, in its order: each an earlier value (a slot <= i)
        Opening[] operands; // their roots in the agreed state S_i
        Opening input; // value 0 (the request's input) in S_i
        Opening output; // the disputed value at slot i + 1: absent from S_i, present in S_{i+1}
    }

    /// @notice What the registry knows of the node run: the registered program and model, the agreed node,
    ///         the claim's node count, the request's step limit (for a graph request, a bound on each node's
    ///         run) and the two phase-1 states.
    struct NodeRun {
        bytes32 programRoot;
        uint32 entry;
        bytes32 modelRoot;
        uint64 node;
        uint64 nodeCount;
        uint64 stepLimit;
        bytes32 agreed; // S_i
        bytes32 disputed; // S_{i+1}
    }

    // --- constants ------------------------------------------------------------------------------

    /// @notice Levels of the value tree: a run has at most 2^20 values.
    uint256 public constant VALUE_TREE_DEPTH = 20;
    /// @notice The most nodes a graph claim may have (value slots 1..MAX_NODES).
    uint256 public constant MAX_NODES = (1 << VALUE_TREE_DEPTH) - 1;
    /// @notice The most operands a node reads (operand regions at 0x80000000 + j * 2^28).
    uint256 public constant MAX_OPERANDS = 4;
    /// @notice Where a node run's heap starts: the operands take 0x80000000-0xBFFFFFFF.
    uint32 public constant NODE_HEAP_START = 0xC0000000;
    /// @dev Heights above the leaves: an empty 2^28-byte region, and the empty 2^30 bytes at 0xC0000000.
    uint256 private constant EMPTY_REGION_HEIGHT = 23;
    uint256 private constant EMPTY_TOP_QUARTER_HEIGHT = 25;
    uint256 private constant HEADER_WORD_BITS = 32;

    // --- errors ---------------------------------------------------------------------------------

    /// @notice An output proof's first leaf must be leaf 0 of the region.
    error NotTheFirstLeaf(uint256 index);
    /// @notice The leaf given holds no nonzero byte after the output (of `length` bytes): the region is
    ///         well-formed as far as this proof shows.
    error OutputNotMalformed(uint256 length, uint256 leafIndex);
    /// @notice The output region proven is not the one under the state's memory root.
    error OutputNotInState();

    /// @notice A node reads at most MAX_OPERANDS values, one root per slot.
    error BadOperandList(uint256 slots, uint256 roots);
    /// @notice An operand must be an earlier value than the node's output.
    error OperandNotEarlier(uint256 slot, uint256 node);
    /// @notice An opening does not lead to the phase-1 state it must be in.
    error NotInState(uint256 slot);
    /// @notice The node run's final state must have exited with exit code 0 within the step limit.
    error NodeRunNotFinal(bool exited, uint8 exitCode, uint64 steps, uint64 stepLimit);
    /// @notice The node run's output region is not the disputed value.
    error NodeOutputMismatch();

    // --- the memory layout ---------------------------------------------------------------------------

    /// @notice The root of a region holding `data` (a big-endian u32 length, the bytes, then zeros).
    function regionRoot(bytes calldata data) external pure returns (bytes32) {
        return InferenceLayout.regionRoot(data);
    }

    /// @notice The hash of a whole run's initial state (docs/vm-spec.md, "Initial state").
    function runStartState(bytes32 programRoot, bytes32 inputRoot, bytes32 modelRoot, uint32 entry)
        external
        pure
        returns (bytes32)
    {
        return InferenceLayout.initialStateHash(programRoot, inputRoot, modelRoot, entry);
    }

    /// @notice Whether `output` is the output region of the memory with root `memRoot`, given the region's 4
    ///         siblings (nodes 19, 8, 5 and 3).
    function isOutputOf(bytes calldata output, bytes32[4] calldata siblings, bytes32 memRoot)
        external
        pure
        returns (bool)
    {
        return InferenceLayout.isOutputOf(output, siblings, memRoot);
    }

    /// @notice Which of "too large" (its length prefix is above `cap`) and "malformed" (a nonzero byte after the
    ///         output) `proof` shows of the output region under `memRoot`, reverting unless it shows one of them.
    function outputFault(OutputProof calldata proof, bytes32 memRoot, uint256 cap) external pure returns (bool tooLarge) {
        if (proof.first.index != 0) revert NotTheFirstLeaf(proof.first.index);
        bytes32 region = InferenceLayout.leafUnderRegion(proof.first.leaf, 0, proof.first.siblings);
        uint256 length = InferenceLayout.lengthPrefixOf(proof.first.leaf);
        tooLarge = length > cap;
        if (!tooLarge) {
            InferenceLayout.LeafProof calldata second = proof.second;
            if (InferenceLayout.leafUnderRegion(second.leaf, second.index, second.siblings) != region) {
                revert OutputNotInState();
            }
            uint256 outputEnd = InferenceLayout.LENGTH_PREFIX_BYTES + length;
            if (!InferenceLayout.hasNonzeroByteFrom(second.leaf, second.index, outputEnd)) {
                revert OutputNotMalformed(length, second.index);
            }
        }
        if (InferenceLayout.memoryRootWithOutputRegion(region, proof.regionSiblings) != memRoot) {
            revert OutputNotInState();
        }
    }

    // --- phase-1 states -------------------------------------------------------------------------------

    /// @notice The phase-1 state with `value` at `slot`, given the slot's siblings (bottom first). A sibling of 32
    ///         zero bytes stands for the empty subtree of its height, Z[level] (as an empty slot is 32 zero bytes;
    ///         an inner node of the tree is a hash, never zero), so a proof need not spend calldata on the empty
    ///         part of the tree: the root is the same as with Z[level] given, so nothing more can be proven.
    function stateWith(bytes32 value, uint256 slot, bytes32[20] memory siblings) public pure returns (bytes32) {
        return _stateWith(value, slot, siblings, InferenceLayout.zeroHashes());
    }

    /// @notice S_0: the value tree holding only the input's root, at slot 0. A graph request's start state.
    function inputState(bytes32 inputRoot) external pure returns (bytes32) {
        bytes32[20] memory empty; // every sibling an empty subtree
        return _stateWith(inputRoot, 0, empty, InferenceLayout.zeroHashes());
    }

    /// @dev `stateWith`, given the table of zero hashes (InferenceLayout.zeroHashes(), read once per call).
    function _stateWith(bytes32 value, uint256 slot, bytes32[20] memory siblings, bytes memory zeros)
        private
        pure
        returns (bytes32 node)
    {
        assembly ("memory-safe") {
            node := value
            let table := add(zeros, 32)
            for { let level := 0 } lt(level, VALUE_TREE_DEPTH) { level := add(level, 1) } {
                let offset := shl(5, level)
                let sibling := mload(add(siblings, offset))
                if iszero(sibling) { sibling := mload(add(table, offset)) }
                switch and(shr(level, slot), 1)
                case 0 {
                    mstore(0x00, node)
                    mstore(0x20, sibling)
                }
                default {
                    mstore(0x00, sibling)
                    mstore(0x20, node)
                }
                node := keccak256(0x00, 0x40)
            }
        }
    }

    // --- the link --------------------------------------------------------------------------------------

    /// @notice Check a link of node `run.node` and return the node run's start state (built here from the
    ///         registered program and model, the input, the node, the claim's node count and the agreed
    ///         operands), its final state and its steps (phase 2's game), and the node header it wrote into the
    ///         run's memory (u32s: the node, the node count, the operand count, the operand slots).
    /// @param openings abi.encode(LinkOpenings): the registry passes them through as bytes.
    /// @param finalState The node run's final state (docs/vm-spec.md encoding).
    /// @param outputRegionSiblings Its memory's output region siblings (nodes 19, 8, 5 and 3).
    function link(
        NodeRun calldata run,
        bytes calldata openings,
        bytes calldata finalState,
        bytes32[4] calldata outputRegionSiblings
    ) external pure returns (bytes32 startStateHash, bytes32 finalStateHash, uint64 steps, bytes memory header) {
        LinkOpenings memory proof = abi.decode(openings, (LinkOpenings));
        bytes memory zeros = InferenceLayout.zeroHashes();
        uint256 count = proof.operandSlots.length;
        if (count > MAX_OPERANDS || proof.operands.length != count) revert BadOperandList(count, proof.operands.length);
        bytes32[] memory operandRoots = new bytes32[](count);
        for (uint256 j = 0; j < count; ++j) {
            uint256 slot = proof.operandSlots[j];
            if (slot > run.node) revert OperandNotEarlier(slot, run.node);
            if (_stateWith(proof.operands[j].value, slot, proof.operands[j].siblings, zeros) != run.agreed) {
                revert NotInState(slot);
            }
            operandRoots[j] = proof.operands[j].value;
        }
        if (_stateWith(proof.input.value, 0, proof.input.siblings, zeros) != run.agreed) revert NotInState(0);
        uint256 outputSlot = run.node + 1;
        if (_stateWith(bytes32(0), outputSlot, proof.output.siblings, zeros) != run.agreed) {
            revert NotInState(outputSlot);
        }
        if (_stateWith(proof.output.value, outputSlot, proof.output.siblings, zeros) != run.disputed) {
            revert NotInState(outputSlot);
        }

        bytes32 memRoot;
        uint8 exitCode;
        bool exited;
        (memRoot, exitCode, exited, steps) = VMState.summarize(finalState);
        if (!exited || exitCode != 0 || steps > run.stepLimit) {
            revert NodeRunNotFinal(exited, exitCode, steps, run.stepLimit);
        }
        if (InferenceLayout.memoryRootWithOutputRegion(proof.output.value, outputRegionSiblings) != memRoot) {
            revert NodeOutputMismatch();
        }
        header = nodeHeader(run.node, run.nodeCount, proof.operandSlots);
        startStateHash =
            nodeStartState(run.programRoot, run.entry, proof.input.value, run.modelRoot, header, operandRoots);
        finalStateHash = keccak256(finalState);
    }

    /// @notice The node header region's contents: big-endian u32s node, nodeCount, the operand count, the slots.
    function nodeHeader(uint64 node, uint64 nodeCount, uint32[] memory slots) public pure returns (bytes memory header) {
        header = abi.encodePacked(uint32(node), uint32(nodeCount), uint32(slots.length));
        for (uint256 j = 0; j < slots.length; ++j) {
            header = bytes.concat(header, bytes4(slots[j]));
        }
    }

    /// @notice The hash of a node run's start state (docs/two-phase.md, "The link"): memory
    ///         H(H(H(H(P, I), H(Z23, Hd)), M), H(H(H(O0, O1), H(O2, O3)), Z25)), pc at the entry, the stack
    ///         pointer at its top and the heap at NODE_HEAP_START. Hd is the root of the node header region
    ///         holding `header` (see `nodeHeader`); an absent operand's region is empty.
    function nodeStartState(
        bytes32 programRoot,
        uint32 entry,
        bytes32 inputRoot,
        bytes32 modelRoot,
        bytes memory header,
        bytes32[] memory operandRoots
    ) public pure returns (bytes32) {
        bytes32 empty = InferenceLayout.zeroRoot(EMPTY_REGION_HEIGHT);
        bytes32[MAX_OPERANDS] memory operands = [empty, empty, empty, empty];
        for (uint256 j = 0; j < operandRoots.length; ++j) {
            operands[j] = operandRoots[j];
        }
        bytes32 lower = InferenceLayout.hashPair(
            InferenceLayout.hashPair(
                InferenceLayout.hashPair(programRoot, inputRoot),
                InferenceLayout.hashPair(empty, InferenceLayout.regionRoot(header))
            ),
            modelRoot
        );
        bytes32 upper = InferenceLayout.hashPair(
            InferenceLayout.hashPair(
                InferenceLayout.hashPair(operands[0], operands[1]), InferenceLayout.hashPair(operands[2], operands[3])
            ),
            InferenceLayout.zeroRoot(EMPTY_TOP_QUARTER_HEIGHT)
        );
        VMState.State memory s;
        s.memRoot = InferenceLayout.hashPair(lower, upper);
        s.pc = entry;
        unchecked {
            s.nextPC = entry + 4;
        }
        s.heap = NODE_HEAP_START;
        s.registers[InferenceLayout.STACK_POINTER] = InferenceLayout.STACK_TOP;
        return VMState.hash(s);
    }

    // --- results ------------------------------------------------------------------------------------------

    /// @notice Whether `output` is value `nodeCount` (the run's output) of the phase-1 state `finalState`.
    function isGraphOutputOf(bytes calldata output, uint64 nodeCount, bytes32[20] calldata siblings, bytes32 finalState)
        external
        pure
        returns (bool)
    {
        return stateWith(InferenceLayout.regionRoot(output), nodeCount, siblings) == finalState;
    }

    /// @notice The length prefix of value `nodeCount` of `finalState`, proven by its region's first leaf (0 when
    ///         the proof does not hold).
    function graphOutputLength(
        InferenceLayout.LeafProof calldata first,
        uint64 nodeCount,
        bytes32[20] calldata siblings,
        bytes32 finalState
    ) external pure returns (bool proven, uint256 length) {
        if (first.index != 0) return (false, 0);
        bytes32 valueRoot = InferenceLayout.leafUnderRegion(first.leaf, 0, first.siblings);
        if (stateWith(valueRoot, nodeCount, siblings) != finalState) return (false, 0);
        return (true, InferenceLayout.lengthPrefixOf(first.leaf));
    }
}
