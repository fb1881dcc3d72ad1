// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {MerkleTrees} from "./MerkleTrees.sol";

/// @title ValueTrees
/// @notice Test helper: the value tree of a graph run and its phase-1 states (docs/two-phase.md, "The value tree
///         and phase-1 states"), computed from the definition, independently of Proofs.stateWith: a binary
///         Merkle tree of 20 levels whose slot j holds value j's root; S_t has slots 0..t set, every other slot
///         32 zero bytes. Runs here have at most 32 values, so every slot from 32 on is empty.
library ValueTrees {
    uint256 internal constant DEPTH = 20;
    uint256 internal constant WIDTH_BITS = 5;
    uint256 internal constant WIDTH = 1 << WIDTH_BITS;
    uint256 internal constant REGION_HEIGHT = 23;

    error TooManyValues(uint256 count);

    /// @dev levels[h][k]: the node of height h over slots k 2^h .. (k + 1) 2^h - 1 of S_t, for h <= WIDTH_BITS.
    function _levels(bytes32[] memory roots, uint256 t) private pure returns (bytes32[][] memory levels) {
        if (roots.length > WIDTH) revert TooManyValues(roots.length);
        levels = new bytes32[][](WIDTH_BITS + 1);
        levels[0] = new bytes32[](WIDTH);
        for (uint256 j = 0; j <= t && j < roots.length; ++j) {
            levels[0][j] = roots[j];
        }
        for (uint256 h = 1; h <= WIDTH_BITS; ++h) {
            levels[h] = new bytes32[](WIDTH >> h);
            for (uint256 k = 0; k < levels[h].length; ++k) {
                levels[h][k] = MerkleTrees.hashPair(levels[h - 1][2 * k], levels[h - 1][2 * k + 1]);
            }
        }
    }

    /// @notice S_t of the run whose value roots are `roots`.
    function state(bytes32[] memory roots, uint256 t) internal pure returns (bytes32 node) {
        node = _levels(roots, t)[WIDTH_BITS][0];
        bytes32[28] memory z = MerkleTrees.zeros();
        for (uint256 h = WIDTH_BITS; h < DEPTH; ++h) {
            node = MerkleTrees.hashPair(node, z[h]);
        }
    }

    /// @notice The 20 siblings of `slot` (below 32) in S_t, bottom first.
    function siblings(bytes32[] memory roots, uint256 slot, uint256 t) internal pure returns (bytes32[20] memory s) {
        bytes32[][] memory levels = _levels(roots, t);
        bytes32[28] memory z = MerkleTrees.zeros();
        for (uint256 h = 0; h < DEPTH; ++h) {
            s[h] = h < WIDTH_BITS ? levels[h][(slot >> h) ^ 1] : z[h];
        }
    }

    /// @notice Siblings with every empty subtree (Z[h]) given as 32 zero bytes, as Proofs.stateWith accepts them.
    function compress(bytes32[20] memory s) internal pure returns (bytes32[20] memory c) {
        bytes32[28] memory z = MerkleTrees.zeros();
        for (uint256 h = 0; h < DEPTH; ++h) {
            c[h] = s[h] == z[h] ? bytes32(0) : s[h];
        }
    }

    /// @notice The region root of a value: the root of 2^23 leaves holding a big-endian u32 length, the bytes,
    ///         then zeros (computed leaf by leaf from the definition).
    function valueRoot(bytes memory value) internal pure returns (bytes32 node) {
        bytes memory region = abi.encodePacked(uint32(value.length), value);
        uint256 count = (region.length + 31) / 32;
        bytes32[] memory nodes = new bytes32[](count);
        for (uint256 i = 0; i < region.length; ++i) {
            nodes[i / 32] |= bytes32(uint256(uint8(region[i])) << (8 * (31 - i % 32)));
        }
        bytes32[28] memory z = MerkleTrees.zeros();
        uint256 h = 0;
        for (; count > 1; ++h) {
            uint256 parents = (count + 1) / 2;
            for (uint256 k = 0; k < parents; ++k) {
                bytes32 right = 2 * k + 1 < count ? nodes[2 * k + 1] : z[h];
                nodes[k] = MerkleTrees.hashPair(nodes[2 * k], right);
            }
            count = parents;
        }
        node = nodes[0];
        for (; h < REGION_HEIGHT; ++h) {
            node = MerkleTrees.hashPair(node, z[h]);
        }
    }
}
