// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {VMState} from "./VMState.sol";

/// @title InferenceLayout
/// @notice The address-space layout of an inference run (docs/vm-spec.md, "Address space"), on-chain:
///         the root of a length-prefixed region from its bytes, the initial state from the region roots
///         P, I and M, whether some bytes are the output region of a state's memory, and the root of a
///         region from one of its 32-byte leaves (to read a region's length prefix, or any byte of it,
///         without its other bytes).
library InferenceLayout {
    /// @notice One 32-byte leaf of a 2^28-byte region and the 23 roots beside its path to the region's root.
    /// @param leaf The leaf's 32 bytes (region bytes 32 * index .. 32 * index + 31).
    /// @param index The leaf's index in the region, below 2^23.
    /// @param siblings The sibling at each level, bottom (the neighbouring leaf) first.
    struct LeafProof {
        bytes32 leaf;
        uint256 index;
        bytes32[23] siblings;
    }

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
    /// @dev The roots of 2^h zero leaves for h = 0..27 (Z[0] = 0, Z[h+1] = keccak256(Z[h] || Z[h])), so no
    ///      call hashes zeros; contracts/test/InferenceLayout.t.sol recomputes them.
    uint256 private constant MAX_ZERO_HEIGHT = 27;
    bytes private constant ZERO_HASHES =
        hex"0000000000000000000000000000000000000000000000000000000000000000ad3228b676f7d3cd4284a5443f17f1962b36e491b30a40b2405849e597ba5fb5b4c11951957c6f8f642c4af61cd6b24640fec6dc7fc607ee8206a99e92410d3021ddb9a356815c3fac1026b6dec5df3124afbadb485c9ba5a3e3398a04b7ba85e58769b32a1beaf1ea27375a44095a0d1fb664ce2dd358e7fcbfb78c26a193440eb01ebfc9ed27500cd4dfc979272d1f0913cc9f66540d7e8005811109e1cf2d887c22bd8750d34016ac3c66b5ff102dacdd73f6b014e710b51e8022af9a1968ffd70157e48063fc33c97a050f7f640233bf646cc98d9524c6b92bcf3ab56f839867cc5f7f196b93bae1e27e6320742445d290f2263827498b54fec539f756afcefad4e508c098b9a7e1d8feb19955fb02ba9675585078710969d3440f5054e0f9dc3e7fe016e050eff260334f18a5d4fe391d82092319f5964f2e2eb7c1c3a5f8b13a49e282f609c317a833fb8d976d11517c571d1221a265d25af778ecf8923490c6ceeb450aecdc82e28293031d10c7d73bf85e57bf041a97360aa2c5d99cc1df82d9c4b87413eae2ef048f94b4d3554cea73d92b0f7af96e0271c691e2bb5c67add7c6caf302256adedf7ab114da0acfe870d449a3a489f781d659e8beccda7bce9f4e8618b6bd2f4132ce798cdc7a60e7e1460a7299e3c6342a579626d22733e50f526ec2fa19a22b31e8ed50f23cd1fdf94c9154ed3a7609a2f1ff981fe1d3b5c807b281e4683cc6d6315cf95b9ade8641defcb32372f1c126e398ef7a5a2dce0a8a7f68bb74560f8f71837c2c2ebbcbf7fffb42ae1896f13f7c7479a0b46a28b6f55540f89444f63de0378e3d121be09e06cc9ded1c20e65876d36aa0c65e9645644786b620e2dd2ad648ddfcbf4a7e5b1a3a4ecfe7f64667a3f0b7e2f4418588ed35a2458cffeb39b93d26f18d2ab13bdce6aee58e7b99359ec2dfd95a9c16dc00d6ef18b7933a6f8dc65ccb55667138776f7dea101070dc8796e3774df84f40ae0c8229d0d6069e5c8f39a7c299677a09d367fc7b05e3bc380ee652cdc72595f74c7b1043d0e1ffbab734648c838dfb0527d971b602bc216c9619ef0abf5ac974a1ed57f4050aa510dd9c74f508277b39d7973bb2dfccc5eeb0618db8cd74046ff337f0a7bf2c8e03e10f642c1886798d71806ab1e888d9e5ee87d0838c5655cb21c6cb83313b5a631175dff4963772cce9108188b34ac87c81c41e";
    /// @notice Bytes of a region's big-endian length prefix.
    uint256 internal constant LENGTH_PREFIX_BYTES = 4;
    /// @notice Leaves of a region: 2^REGION_HEIGHT.
    uint256 internal constant REGION_LEAVES = 1 << REGION_HEIGHT;
    /// @dev Bits of a leaf below its length prefix (the prefix is the leaf's top 4 bytes).
    uint256 private constant BELOW_PREFIX_BITS = 8 * (LEAF_BYTES - LENGTH_PREFIX_BYTES);
    uint256 private constant BITS_PER_BYTE = 8;

    /// @notice The bytes do not fit in a region.
    error RegionTooLarge(uint256 length);
    /// @notice A leaf index at or beyond the region's 2^23 leaves.
    error LeafIndexOutOfRegion(uint256 index);

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
        bytes memory zeros = ZERO_HASHES;
        uint256 count = leafCount;
        uint256 height = 0;
        // hash the written leaves up until one node is left...
        for (; count > 1; ++height) {
            uint256 parents = (count + 1) / 2;
            for (uint256 i = 0; i < parents; ++i) {
                bytes32 left = _word(leaves, 2 * i);
                bytes32 right = 2 * i + 1 < count ? _word(leaves, 2 * i + 1) : _word(zeros, height);
                _setWord(leaves, i, hashPair(left, right));
            }
            count = parents;
        }
        // ...then pair it with all-zero subtrees up to the region's root
        root = _word(leaves, 0);
        for (; height < REGION_HEIGHT; ++height) {
            root = hashPair(root, _word(zeros, height));
        }
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
    function isOutputOf(bytes memory output, bytes32[4] memory siblings, bytes32 memRoot) internal pure returns (bool) {
        return memoryRootWithOutputRegion(regionRoot(output), siblings) == memRoot;
    }

    /// @notice The memory root of a memory whose output region (0x20000000-0x2FFFFFFF, node 18) has root
    ///         `outputRoot`.
    /// @param siblings The roots of the spare region, of 0x00000000-0x1FFFFFFF, of the model region and of
    ///        the upper half of memory (generalized indices 19, 8, 5 and 3).
    function memoryRootWithOutputRegion(bytes32 outputRoot, bytes32[4] memory siblings)
        internal
        pure
        returns (bytes32)
    {
        bytes32 node = hashPair(outputRoot, siblings[0]); // 9 = 18, 19
        node = hashPair(siblings[1], node); // 4 = 8, 9
        node = hashPair(node, siblings[2]); // 2 = 4, 5
        return hashPair(node, siblings[3]); // 1 = 2, 3
    }

    /// @notice The root of the region in which `leaf` is leaf number `index`, given the 23 roots beside its
    ///         path (bottom first). With the region's own siblings this proves any 32 bytes of a region, e.g.
    ///         its length prefix (leaf 0), without the rest of it.
    function leafUnderRegion(bytes32 leaf, uint256 index, bytes32[23] memory siblings)
        internal
        pure
        returns (bytes32 node)
    {
        if (index >= REGION_LEAVES) revert LeafIndexOutOfRegion(index);
        node = leaf;
        for (uint256 level = 0; level < REGION_HEIGHT; ++level) {
            node = (index >> level) & 1 == 0 ? hashPair(node, siblings[level]) : hashPair(siblings[level], node);
        }
    }

    /// @notice The big-endian u32 length prefix held by a region's first leaf.
    function lengthPrefixOf(bytes32 firstLeaf) internal pure returns (uint256) {
        return uint256(firstLeaf) >> BELOW_PREFIX_BITS;
    }

    /// @notice Whether leaf `index` of a region holds a nonzero byte at a region offset of `offset` or more.
    function hasNonzeroByteFrom(bytes32 leaf, uint256 index, uint256 offset) internal pure returns (bool) {
        uint256 start = index * LEAF_BYTES;
        if (start + LEAF_BYTES <= offset) return false; // the whole leaf lies before `offset`
        uint256 skipped = offset > start ? offset - start : 0; // bytes of the leaf before `offset`
        return uint256(leaf) << (BITS_PER_BYTE * skipped) != 0;
    }

    /// @notice Z[h] for h = 0..27, 32 bytes each (Z[h] at byte 32 h): for a loop that needs many of them, one copy.
    function zeroHashes() internal pure returns (bytes memory) {
        return ZERO_HASHES;
    }

    /// @notice The root of 2^height zero leaves.
    function zeroRoot(uint256 height) internal pure returns (bytes32 node) {
        if (height <= MAX_ZERO_HEIGHT) return _word(ZERO_HASHES, height);
        node = _word(ZERO_HASHES, MAX_ZERO_HEIGHT);
        for (uint256 i = MAX_ZERO_HEIGHT; i < height; ++i) {
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
