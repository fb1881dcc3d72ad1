// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {SparseMemory} from "./SparseMemory.sol";

/// @title MerkleTrees
/// @notice Test helper: roots and leaf proofs of sparse memories, computed bottom-up from the definition of the
///         memory tree (docs/vm-spec.md, "Memory": 2^27 leaves of 32 bytes, node = keccak256(left || right)),
///         independently of MemoryProof and InferenceLayout. SparseMemory computes the same recursively; this
///         one hashes in scratch space and allocates little, so a test can build many states of a run.
library MerkleTrees {
    uint256 internal constant TREE_DEPTH = 27;

    function hashPair(bytes32 left, bytes32 right) internal pure returns (bytes32 node) {
        assembly ("memory-safe") {
            mstore(0x00, left)
            mstore(0x20, right)
            node := keccak256(0x00, 0x40)
        }
    }

    /// @notice Z[h] for h = 0..27: the roots of 2^h zero leaves.
    function zeros() internal pure returns (bytes32[28] memory z) {
        for (uint256 h = 1; h < 28; ++h) {
            z[h] = hashPair(z[h - 1], z[h - 1]);
        }
    }

    /// @notice The root of the subtree of `height` levels whose leaves start at leaf `first`, and the siblings
    ///         (bottom first) of its leaf `target` (relative to `first`).
    function subtree(SparseMemory.Memory memory m, uint256 height, uint256 first, uint256 target)
        internal
        pure
        returns (bytes32 subtreeHash, bytes32[] memory siblings, bytes32 leaf)
    {
        uint256 count;
        uint256[] memory index = new uint256[](m.addrs.length);
        bytes32[] memory node = new bytes32[](m.addrs.length);
        for (uint256 i = 0; i < m.addrs.length; ++i) {
            uint256 leafIndex = uint256(m.addrs[i]) >> 5;
            if (leafIndex < first || leafIndex >= first + (1 << height)) continue;
            // insertion sort by leaf index (SparseMemory keeps one entry per leaf)
            uint256 k = count++;
            while (k > 0 && index[k - 1] > leafIndex - first) {
                (index[k], node[k]) = (index[k - 1], node[k - 1]);
                --k;
            }
            (index[k], node[k]) = (leafIndex - first, m.leaves[i]);
        }
        for (uint256 i = 0; i < count; ++i) {
            if (index[i] == target) leaf = node[i];
        }
        siblings = new bytes32[](height);
        bytes32 zero;
        for (uint256 h = 0; h < height; ++h) {
            uint256 sibling = (target >> h) ^ 1;
            siblings[h] = zero;
            uint256 parents;
            for (uint256 i = 0; i < count;) {
                if (index[i] == sibling) siblings[h] = node[i];
                bytes32 left = zero;
                bytes32 right = zero;
                if (index[i] & 1 == 0) {
                    left = node[i];
                    if (i + 1 < count && index[i + 1] == index[i] + 1) {
                        if (index[i + 1] == sibling) siblings[h] = node[i + 1];
                        right = node[i + 1];
                        ++i;
                    }
                } else {
                    right = node[i];
                }
                (index[parents], node[parents]) = (index[i] >> 1, hashPair(left, right));
                ++parents;
                ++i;
            }
            count = parents;
            zero = hashPair(zero, zero);
        }
        subtreeHash = count == 0 ? zero : node[0];
    }

    function subtreeRoot(SparseMemory.Memory memory m, uint256 height, uint256 first)
        internal
        pure
        returns (bytes32 r)
    {
        (r,,) = subtree(m, height, first, 0);
    }

    function root(SparseMemory.Memory memory m) internal pure returns (bytes32 r) {
        (r,,) = subtree(m, TREE_DEPTH, 0, 0);
    }

    /// @notice The 896-byte proof of the leaf holding `addr` (the leaf, then its 27 siblings), as MIPS.step reads.
    function proof(SparseMemory.Memory memory m, uint32 addr) internal pure returns (bytes memory encoded) {
        (, bytes32[] memory siblings, bytes32 leaf) = subtree(m, TREE_DEPTH, 0, uint256(addr) >> 5);
        encoded = new bytes(32 * (TREE_DEPTH + 1));
        assembly ("memory-safe") {
            mstore(add(encoded, 32), leaf)
        }
        for (uint256 h = 0; h < TREE_DEPTH; ++h) {
            bytes32 s = siblings[h];
            assembly ("memory-safe") {
                mstore(add(encoded, add(64, mul(h, 32))), s)
            }
        }
    }
}
