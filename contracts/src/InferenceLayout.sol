// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {VMState} from "./VMState.sol";

/// @title InferenceLayout
/// @notice The address-space layout of an inference run (docs/vm-spec.md, "Address space"), on-chain:
///         the root of a length-prefixed region from its bytes, the initial state from the region roots
///         P, I and M, and whether some bytes are the output region of a state's memory.
library InferenceLayout {
    /// @notice Height of a 2^28-byte region's subtree (2^23 leaves of 32 bytes).
    uint256 internal constant REGION_HEIGHT = 23;
    /// @notice Largest input or output: the region less its 4-byte length prefix.
    uint256 internal constant MAX_REGION_BYTES = (1 << 28) - 4;
    /// @notice Height of the subtree of 2^29 bytes (output + spare regions), then of 2^31 bytes.
    uint256 internal constant HALF_GIGABYTE_HEIGHT = 24;
    uint256 internal constant TWO_GIGABYTE_HEIGHT = 26;

    uint32 internal constant STACK_TOP = 0xFFFF0000;
    uint32 internal constant HEAP_START = 0x80000000;
    uint256 internal constant STACK_POINTER = 29;
    uint256 private constant LEAF_BYTES = 32;
    uint256 private constant LENGTH_PREFIX_BYTES = 4;

    /// @notice The bytes do not fit in a region.
    error RegionTooLarge(uint256 length);

    /// @notice Root of a 2^28-byte region holding a big-endian u32 length, `data`, then zeros.
    function regionRoot(bytes memory data) internal pure returns (bytes32 root) {
        if (data.length > MAX_REGION_BYTES) revert RegionTooLarge(data.length);
        uint256 leafCount = (LENGTH_PREFIX_BYTES + data.length + LEAF_BYTES - 1) / LEAF_BYTES;
        // zeroed, with one word of slack for the last whole-word copy
        bytes memory leaves = new bytes(leafCount * LEAF_BYTES + LEAF_BYTES);
        uint256 length = data.length;
        assembly ("memory-safe") {
            let out := add(leaves, 32)
            mstore(out, shl(224, length)) // the prefix; the next mstores overwrite all but its 4 bytes
            let source := add(data, 32)
            for { let i := 0 } lt(i, length) { i := add(i, 32) } {
                mstore(add(add(out, LENGTH_PREFIX_BYTES), i), mload(add(source, i)))
            }
            // the last word copied may carry bytes from past `data`: clear everything after it
            let end := add(add(out, LENGTH_PREFIX_BYTES), length)
            let limit := add(out, mul(leafCount, LEAF_BYTES))
            for { let p := end } lt(p, limit) { p := add(p, 1) } { mstore8(p, 0) }
        }
        bytes32 zero; // the root of an all-zero subtree of the current height
        uint256 count = leafCount;
        for (uint256 height = 0; height < REGION_HEIGHT; ++height) {
            uint256 parents = (count + 1) / 2;
            for (uint256 i = 0; i < parents; ++i) {
                bytes32 left = _word(leaves, 2 * i);
                bytes32 right = 2 * i + 1 < count ? _word(leaves, 2 * i + 1) : zero;
                _setWord(leaves, i, hashPair(left, right));
            }
            count = parents;
            zero = hashPair(zero, zero);
        }
        return _word(leaves, 0);
    }

    /// @notice The memory root at the start of a run: H(H(H(H(P, I), Z[24]), M), Z[26]).
    function initialMemoryRoot(bytes32 programRoot, bytes32 inputRoot, bytes32 modelRoot)
        internal
        pure
        returns (bytes32)
    {
        bytes32 lower = hashPair(programRoot, inputRoot);
        lower = hashPair(lower, zeroRoot(HALF_GIGABYTE_HEIGHT));
        lower = hashPair(lower, modelRoot);
        return hashPair(lower, zeroRoot(TWO_GIGABYTE_HEIGHT));
    }

    /// @notice The hash of the initial state of a run (docs/vm-spec.md, "Initial state").
    function initialStateHash(bytes32 programRoot, bytes32 inputRoot, bytes32 modelRoot, uint32 entry)
        internal
        pure
        returns (bytes32)
    {
        VMState.State memory s;
        s.memRoot = initialMemoryRoot(programRoot, inputRoot, modelRoot);
        s.pc = entry;
        unchecked {
            s.nextPC = entry + 4;
        }
        s.heap = HEAP_START;
        s.registers[STACK_POINTER] = STACK_TOP;
        return VMState.hash(s);
    }

    /// @notice Whether `output` is the output region of the memory with root `memRoot`.
    /// @param siblings The roots of the spare region, of 0x00000000-0x1FFFFFFF, of the model region and of
    ///        the upper half of memory (generalized indices 19, 8, 5 and 3).
    function isOutputOf(bytes memory output, bytes32[4] memory siblings, bytes32 memRoot)
        internal
        pure
        returns (bool)
    {
        bytes32 node = hashPair(regionRoot(output), siblings[0]); // 9 = 18, 19
        node = hashPair(siblings[1], node); // 4 = 8, 9
        node = hashPair(node, siblings[2]); // 2 = 4, 5
        return hashPair(node, siblings[3]) == memRoot; // 1 = 2, 3
    }

    /// @notice The root of 2^height zero leaves.
    function zeroRoot(uint256 height) internal pure returns (bytes32 node) {
        for (uint256 i = 0; i < height; ++i) {
            node = hashPair(node, node);
        }
    }

    /// @notice keccak256(left || right), hashed in scratch space.
    function hashPair(bytes32 left, bytes32 right) internal pure returns (bytes32 node) {
        assembly ("memory-safe") {
            mstore(0x00, left)
            mstore(0x20, right)
            node := keccak256(0x00, 0x40)
        }
    }

    function _word(bytes memory buffer, uint256 index) private pure returns (bytes32 value) {
        assembly ("memory-safe") {
            value := mload(add(add(buffer, 32), mul(index, 32)))
        }
    }

    function _setWord(bytes memory buffer, uint256 index, bytes32 value) private pure {
        assembly ("memory-safe") {
            mstore(add(add(buffer, 32), mul(index, 32)), value)
        }
    }
}
