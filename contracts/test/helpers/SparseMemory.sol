// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {MemoryProof} from "../../src/MemoryProof.sol";

/// @title SparseMemory
/// @notice Test helper: roots and leaf proofs of a memory that is zero but for a few leaves, computed
///         independently of MemoryProof (recursively, from the definition of the tree).
library SparseMemory {
    struct Memory {
        uint32[] addrs;
        bytes32[] leaves;
    }

    function empty() internal pure returns (Memory memory m) {
        m.addrs = new uint32[](0);
        m.leaves = new bytes32[](0);
    }

    /// @notice A memory with `word` at `addr & ~3` added (in its own or an existing leaf).
    function withWord(Memory memory m, uint32 addr, uint32 word) internal pure returns (Memory memory) {
        uint256 leafIndex = addr >> 5;
        uint256 shift = 224 - ((addr & 31) >> 2) * 32;
        for (uint256 i = 0; i < m.addrs.length; ++i) {
            if (m.addrs[i] >> 5 == leafIndex) {
                m.leaves[i] = (m.leaves[i] & ~bytes32(uint256(0xFFFFFFFF) << shift)) | bytes32(uint256(word) << shift);
                return m;
            }
        }
        Memory memory grown;
        grown.addrs = new uint32[](m.addrs.length + 1);
        grown.leaves = new bytes32[](m.addrs.length + 1);
        for (uint256 i = 0; i < m.addrs.length; ++i) {
            (grown.addrs[i], grown.leaves[i]) = (m.addrs[i], m.leaves[i]);
        }
        grown.addrs[m.addrs.length] = addr;
        grown.leaves[m.addrs.length] = bytes32(uint256(word) << shift);
        return grown;
    }

    function zeroHash(uint256 height) internal pure returns (bytes32 node) {
        for (uint256 i = 0; i < height; ++i) {
            node = keccak256(abi.encodePacked(node, node));
        }
    }

    /// @notice Root of the subtree of `height` levels whose leaves start at leaf `first`.
    function subtreeRoot(Memory memory m, uint256 height, uint256 first) internal pure returns (bytes32) {
        bool occupied;
        for (uint256 i = 0; i < m.addrs.length; ++i) {
            uint256 leaf = m.addrs[i] >> 5;
            if (leaf >= first && leaf < first + (1 << height)) {
                if (height == 0) return m.leaves[i];
                occupied = true;
            }
        }
        if (!occupied) return zeroHash(height);
        uint256 half = 1 << (height - 1);
        return keccak256(abi.encodePacked(subtreeRoot(m, height - 1, first), subtreeRoot(m, height - 1, first + half)));
    }

    function root(Memory memory m) internal pure returns (bytes32) {
        return subtreeRoot(m, MemoryProof.TREE_DEPTH, 0);
    }

    /// @notice The 896-byte proof of the leaf holding `addr`.
    function proof(Memory memory m, uint32 addr) internal pure returns (bytes memory encoded) {
        uint256 leaf = addr >> 5;
        encoded = abi.encodePacked(subtreeRoot(m, 0, leaf));
        for (uint256 level = 0; level < MemoryProof.TREE_DEPTH; ++level) {
            uint256 sibling = ((leaf >> level) ^ 1) << level;
            encoded = abi.encodePacked(encoded, subtreeRoot(m, level, sibling));
        }
    }
}
