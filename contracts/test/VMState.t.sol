// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {VMState} from "../src/VMState.sol";
import {TestBase} from "./helpers/TestBase.sol";
import {StateCodec} from "./helpers/StateCodec.sol";

contract VMStateTest is TestBase {
    StateCodec internal codec;

    function setUp() public {
        codec = new StateCodec();
    }

    function test_FieldOffsets() public pure {
        VMState.State memory s;
        s.memRoot = bytes32(uint256(1));
        (s.pc, s.nextPC, s.lo, s.hi, s.heap) = (0x01020304, 0x05060708, 9, 10, 0x80000000);
        (s.exitCode, s.exited, s.step) = (0xF1, true, 0x0102030405060708);
        s.registers[0] = 100;
        s.registers[31] = 131;
        bytes memory e = VMState.encode(s);
        assertEq(e.length, 190, "length");
        assertEq(uint8(e[32]), 0x01, "pc first byte");
        assertEq(uint8(e[52]), 0xF1, "exit code");
        assertEq(uint8(e[53]), 1, "exited");
        assertEq(uint8(e[54]), 0x01, "step first byte");
        assertEq(uint8(e[65]), 100, "register 0 last byte");
        assertEq(uint8(e[189]), 131, "register 31 last byte");
    }

    function testFuzz_RoundTrip(bytes32 root, uint32 pc, uint64 stepCount, bool exited, uint8 code, uint32 reg) public view {
        VMState.State memory s;
        (s.memRoot, s.pc, s.step, s.exited, s.exitCode) = (root, pc, stepCount, exited, code);
        unchecked {
            s.nextPC = pc + 4;
        }
        s.registers[17] = reg;
        bytes memory encoded = VMState.encode(s);
        assertEq(keccak256(codec.roundTrip(encoded)), keccak256(encoded), "round trip");
        assertEq(codec.hashOf(encoded), keccak256(encoded), "hash is keccak256 of the encoding");
    }

    function testFuzz_RejectsABadExitedFlag(uint8 flag) public {
        vm.assume(flag > 1);
        VMState.State memory s;
        bytes memory encoded = VMState.encode(s);
        encoded[53] = bytes1(flag);
        vm.expectRevert(abi.encodeWithSelector(VMState.InvalidExitedFlag.selector, flag));
        codec.roundTrip(encoded);
    }

    function testFuzz_RejectsAWrongLength(uint8 length) public {
        vm.assume(length != 190);
        vm.expectRevert(abi.encodeWithSelector(VMState.InvalidStateLength.selector, uint256(length)));
        codec.roundTrip(new bytes(length));
    }

    function testFuzz_SummaryAgreesWithDecode(bytes32 root, uint64 stepCount, bool exited, uint8 code, uint32 pc) public view {
        VMState.State memory s;
        (s.memRoot, s.pc, s.step, s.exited, s.exitCode) = (root, pc, stepCount, exited, code);
        (bytes32 memRoot, uint8 exitCode, bool isExited, uint64 step) = codec.summaryOf(VMState.encode(s));
        assertTrue(memRoot == root && exitCode == code && isExited == exited && step == stepCount, "summary");
    }

    function testFuzz_SummaryRejectsWhatDecodeRejects(uint8 flag, uint8 length) public {
        vm.assume(flag > 1 && length != 190);
        VMState.State memory s;
        bytes memory encoded = VMState.encode(s);
        encoded[53] = bytes1(flag);
        vm.expectRevert(abi.encodeWithSelector(VMState.InvalidExitedFlag.selector, flag));
        codec.summaryOf(encoded);
        vm.expectRevert(abi.encodeWithSelector(VMState.InvalidStateLength.selector, uint256(length)));
        codec.summaryOf(new bytes(length));
    }
}
