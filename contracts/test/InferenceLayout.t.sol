// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {InferenceLayout} from "../src/InferenceLayout.sol";
import {SparseMemory} from "./helpers/SparseMemory.sol";
import {TestBase} from "./helpers/TestBase.sol";

contract InferenceLayoutTest is TestBase {
    using SparseMemory for SparseMemory.Memory;

    uint32 internal constant INPUT = 0x1000_0000;
    uint32 internal constant MODEL = 0x4000_0000;
    uint256 internal constant INPUT_SUBTREE_HEIGHT = 23;

    /// @dev The input region of a sparse memory holding `data` length-prefixed at INPUT.
    function _withRegion(SparseMemory.Memory memory m, uint32 base, bytes memory data)
        internal
        pure
        returns (SparseMemory.Memory memory)
    {
        bytes memory prefixed = abi.encodePacked(uint32(data.length), data, new bytes(4));
        for (uint256 i = 0; i + 4 <= prefixed.length; i += 4) {
            uint32 word =
                uint32(bytes4(abi.encodePacked(prefixed[i], prefixed[i + 1], prefixed[i + 2], prefixed[i + 3])));
            if (word != 0) m = m.withWord(base + uint32(i), word);
        }
        return m;
    }

    function testFuzz_RegionRootMatchesTheMemoryTree(bytes memory data) public pure {
        if (data.length > 72) {
            assembly ("memory-safe") {
                mstore(data, 72) // keep the independent computation cheap
            }
        }
        SparseMemory.Memory memory m = _withRegion(SparseMemory.empty(), INPUT, data);
        bytes32 expected = m.subtreeRoot(INPUT_SUBTREE_HEIGHT, INPUT >> 5);
        assertEq(InferenceLayout.regionRoot(data), expected, "region root");
    }

    function test_InitialMemoryRootComposesTheRegions() public pure {
        bytes memory input = hex"0102030405";
        bytes memory model = hex"aabbccdd";
        SparseMemory.Memory memory m = SparseMemory.empty().withWord(0x1000, 0x24020001);
        m = _withRegion(_withRegion(m, INPUT, input), MODEL, model);
        bytes32 program = m.subtreeRoot(INPUT_SUBTREE_HEIGHT, 0);
        bytes32 modelRoot = m.subtreeRoot(25, MODEL >> 5);
        bytes32 root = InferenceLayout.initialMemoryRoot(program, InferenceLayout.regionRoot(input), modelRoot);
        assertEq(root, m.root(), "memRoot0");
    }

    function test_TheZeroHashTableIsTheRootsOfZeroSubtrees() public pure {
        bytes32 node;
        for (uint256 height = 0; height <= 30; ++height) {
            assertEq(InferenceLayout.zeroRoot(height), node, "zero root");
            node = keccak256(abi.encodePacked(node, node));
        }
    }

    function testFuzz_RegionRootOfLongerData(uint16 length, uint8 fill) public pure {
        bytes memory data = new bytes(uint256(length) % 300);
        for (uint256 i = 0; i < data.length; ++i) {
            data[i] = bytes1(uint8(fill + i));
        }
        SparseMemory.Memory memory m = _withRegion(SparseMemory.empty(), INPUT, data);
        assertEq(InferenceLayout.regionRoot(data), m.subtreeRoot(INPUT_SUBTREE_HEIGHT, INPUT >> 5), "region root");
    }

    /// @dev A leaf proof from an 896-byte memory proof (leaf, then 27 siblings): the leaf and its 23 siblings
    ///      inside its 2^28-byte region.
    function _inRegion(bytes memory memoryProof) internal pure returns (bytes32 leaf, bytes32[23] memory siblings) {
        assembly ("memory-safe") {
            leaf := mload(add(memoryProof, 32))
        }
        for (uint256 i = 0; i < InferenceLayout.REGION_HEIGHT; ++i) {
            bytes32 word;
            assembly ("memory-safe") {
                word := mload(add(add(memoryProof, 64), mul(i, 32)))
            }
            siblings[i] = word;
        }
    }

    function testFuzz_LeafUnderRegionIsTheRegionRoot(uint32 offset, uint32 value, uint32 otherOffset) public pure {
        uint32 region = 0x2000_0000;
        offset = uint32(bound(offset, 0, (1 << 28) - 4)) & ~uint32(3);
        otherOffset = uint32(bound(otherOffset, 0, (1 << 28) - 4)) & ~uint32(3);
        SparseMemory.Memory memory m = SparseMemory.empty().withWord(region + offset, value | 1);
        m = m.withWord(region + otherOffset, 0xABCD0000);
        bytes32 expected = m.subtreeRoot(InferenceLayout.REGION_HEIGHT, region >> 5);
        (bytes32 leaf, bytes32[23] memory siblings) = _inRegion(m.proof(region + offset));
        assertEq(InferenceLayout.leafUnderRegion(leaf, offset / 32, siblings), expected, "the region's root");
        if (offset / 32 != otherOffset / 32) {
            bytes32 elsewhere = InferenceLayout.leafUnderRegion(leaf, otherOffset / 32, siblings);
            assertTrue(elsewhere != expected, "the leaf proves nothing at another index");
        }
        assertEq(
            InferenceLayout.memoryRootWithOutputRegion(expected, _regionSiblings(m.proof(region))),
            m.root(),
            "under the memory root"
        );
    }

    function _regionSiblings(bytes memory memoryProof) internal pure returns (bytes32[4] memory siblings) {
        for (uint256 i = 0; i < 4; ++i) {
            bytes32 word;
            uint256 at = 32 * (1 + InferenceLayout.REGION_HEIGHT + i);
            assembly ("memory-safe") {
                word := mload(add(add(memoryProof, 32), at))
            }
            siblings[i] = word;
        }
    }

    function testFuzz_LengthPrefixAndTheBytesAfterIt(bytes32 leaf, uint8 index, uint16 offset) public pure {
        assertEq(InferenceLayout.lengthPrefixOf(leaf), uint32(bytes4(leaf)), "the leaf's first 4 bytes");
        uint256 start = uint256(index) * 32;
        bool expected;
        for (uint256 i = 0; i < 32; ++i) {
            if (start + i >= offset && leaf[i] != 0) expected = true;
        }
        assertTrue(InferenceLayout.hasNonzeroByteFrom(leaf, index, offset) == expected, "a nonzero byte from offset");
    }

    function test_ALeafIndexBeyondTheRegionIsRefused() public {
        bytes32[23] memory siblings;
        uint256 index = InferenceLayout.REGION_LEAVES;
        try this.leafUnderRegion(bytes32(0), index, siblings) {
            assertTrue(false, "refused");
        } catch (bytes memory reason) {
            assertEq(
                keccak256(reason),
                keccak256(abi.encodeWithSelector(InferenceLayout.LeafIndexOutOfRegion.selector, index)),
                "LeafIndexOutOfRegion"
            );
        }
    }

    function leafUnderRegion(bytes32 leaf, uint256 index, bytes32[23] memory siblings) external pure returns (bytes32) {
        return InferenceLayout.leafUnderRegion(leaf, index, siblings);
    }
}
