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
            uint32 word = uint32(bytes4(abi.encodePacked(prefixed[i], prefixed[i + 1], prefixed[i + 2], prefixed[i + 3])));
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
        for (uint256 i = 0; i < data.length; ++i) data[i] = bytes1(uint8(fill + i));
        SparseMemory.Memory memory m = _withRegion(SparseMemory.empty(), INPUT, data);
        assertEq(InferenceLayout.regionRoot(data), m.subtreeRoot(INPUT_SUBTREE_HEIGHT, INPUT >> 5), "region root");
    }
}
