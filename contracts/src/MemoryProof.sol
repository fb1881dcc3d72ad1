// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

/// @title MemoryProof
/// @notice Leaf proofs of the VM's memory tree: 2^27 leaves of 32 bytes, node = keccak256(left || right)
///         (docs/vm-spec.md, "Memory"). A proof is the leaf followed by its 27 siblings, bottom first.
library MemoryProof {
    /// @notice Depth of the tree: 2^32 bytes / 32-byte leaves.
    uint256 internal constant TREE_DEPTH = 27;
    /// @notice Bytes in a leaf.
    uint256 internal constant LEAF_BYTES = 32;
    /// @notice Bytes in a proof: the leaf and one sibling per level.
    uint256 internal constant PROOF_BYTES = LEAF_BYTES * (TREE_DEPTH + 1);

    uint256 private constant LEAF_SHIFT = 5; // log2(LEAF_BYTES)
    uint256 private constant WORD_BITS = 32;
    uint256 private constant WORD_MASK = 0xFFFFFFFF;

    /// @notice The proof does not show a leaf under the expected root.
    error InvalidMemoryProof(uint32 addr);

    /// @notice The root that `proof`'s siblings give for `leaf` at the leaf holding `addr`.
    function rootWith(bytes calldata proof, uint32 addr, bytes32 leaf) internal pure returns (bytes32 root) {
        assembly ("memory-safe") {
            let index := shr(LEAF_SHIFT, addr)
            root := leaf
            let sibling := add(proof.offset, LEAF_BYTES)
            for { let level := 0 } lt(level, TREE_DEPTH) { level := add(level, 1) } {
                // scratch space 0x00-0x3f holds the pair being hashed
                switch and(index, 1)
                case 0 {
                    mstore(0x00, root)
                    mstore(0x20, calldataload(sibling))
                }
                default {
                    mstore(0x00, calldataload(sibling))
                    mstore(0x20, root)
                }
                root := keccak256(0x00, 0x40)
                index := shr(1, index)
                sibling := add(sibling, LEAF_BYTES)
            }
        }
    }

    /// @notice The leaf holding `addr`, checked against `root`; reverts if the proof does not show it.
    function readLeaf(bytes calldata proof, uint32 addr, bytes32 root) internal pure returns (bytes32 leaf) {
        leaf = bytes32(proof[0:LEAF_BYTES]);
        if (rootWith(proof, addr, leaf) != root) revert InvalidMemoryProof(addr);
    }

    /// @notice The aligned 32-bit word at `addr & ~3`, checked against `root`.
    function readWord(bytes calldata proof, uint32 addr, bytes32 root) internal pure returns (uint32) {
        return wordOf(readLeaf(proof, addr, root), addr);
    }

    /// @notice The aligned word at `addr & ~3` within its leaf.
    function wordOf(bytes32 leaf, uint32 addr) internal pure returns (uint32) {
        return uint32(uint256(leaf) >> _wordShift(addr));
    }

    /// @notice `leaf` with the aligned word at `addr & ~3` replaced by `word`.
    function withWord(bytes32 leaf, uint32 addr, uint32 word) internal pure returns (bytes32) {
        uint256 shift = _wordShift(addr);
        return (leaf & ~bytes32(WORD_MASK << shift)) | bytes32(uint256(word) << shift);
    }

    /// @dev Bit position of the word holding `addr` in its leaf (the first word is the most significant).
    function _wordShift(uint32 addr) private pure returns (uint256) {
        return 256 - WORD_BITS - ((uint256(addr) & (LEAF_BYTES - 1)) >> 2) * WORD_BITS;
    }
}
