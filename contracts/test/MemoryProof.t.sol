// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {MemoryProof} from "../src/MemoryProof.sol";
import {SparseMemory} from "./helpers/SparseMemory.sol";
import {TestBase} from "./helpers/TestBase.sol";

/// @notice Exposes the library on calldata, as MIPS uses it.
contract MemoryProofHarness {
    function readWord(bytes calldata proof, uint32 addr, bytes32 root) external pure returns (uint32) {
        return MemoryProof.readWord(proof, addr, root);
    }

    function rootAfterWrite(bytes calldata proof, uint32 addr, uint32 word, bytes32 root) external pure returns (bytes32) {
        bytes32 leaf = MemoryProof.readLeaf(proof, addr, root);
        return MemoryProof.rootWith(proof, addr, MemoryProof.withWord(leaf, addr, word));
    }
}

contract MemoryProofTest is TestBase {
    using SparseMemory for SparseMemory.Memory;

    MemoryProofHarness internal harness;

    function setUp() public {
        harness = new MemoryProofHarness();
    }

    function test_EmptyMemoryRootIsTheZeroHashOfDepth27() public pure {
        assertEq(SparseMemory.empty().root(), SparseMemory.zeroHash(27), "empty root");
    }

    function testFuzz_ReadsTheWordItWasShown(uint32 addr, uint32 word, uint32 otherAddr, uint32 other) public {
        vm.assume(otherAddr >> 2 != addr >> 2);
        SparseMemory.Memory memory m = SparseMemory.empty().withWord(otherAddr, other).withWord(addr, word);
        assertEq(harness.readWord(m.proof(addr), addr, m.root()), word, "read back");
    }

    function testFuzz_WriteGivesTheRootOfTheUpdatedMemory(uint32 addr, uint32 before, uint32 word) public view {
        SparseMemory.Memory memory m = SparseMemory.empty().withWord(addr, before);
        bytes32 expected = m.withWord(addr, word).root();
        SparseMemory.Memory memory fresh = SparseMemory.empty().withWord(addr, before);
        assertEq(harness.rootAfterWrite(fresh.proof(addr), addr, word, fresh.root()), expected, "root after write");
    }

    function testFuzz_RejectsAProofAgainstAnotherRoot(uint32 addr, uint32 word, bytes32 wrongRoot) public {
        SparseMemory.Memory memory m = SparseMemory.empty().withWord(addr, word);
        vm.assume(wrongRoot != m.root());
        bytes memory proof = m.proof(addr);
        vm.expectRevert(abi.encodeWithSelector(MemoryProof.InvalidMemoryProof.selector, addr));
        harness.readWord(proof, addr, wrongRoot);
    }
}
