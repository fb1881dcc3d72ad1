// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {MIPS} from "../src/MIPS.sol";
import {MemoryProof} from "../src/MemoryProof.sol";
import {VMState} from "../src/VMState.sol";
import {SparseMemory} from "./helpers/SparseMemory.sol";
import {TestBase} from "./helpers/TestBase.sol";

/// @notice One instruction family at a time, from hand-encoded words. The exhaustive equality check
///         against the Python VM is tests/chain/test_mips_differential.py.
contract MIPSTest is TestBase {
    using SparseMemory for SparseMemory.Memory;

    MIPS internal mips;

    uint32 internal constant PC = 0x1000;
    uint256 internal constant T0 = 8;
    uint256 internal constant T1 = 9;
    uint256 internal constant T2 = 10;
    uint256 internal constant RA = 31;
    uint32 internal constant DATA = 0x8000_2000;

    function setUp() public {
        mips = new MIPS();
    }

    // --- encoding and running ------------------------------------------------------------

    function _r(uint256 funct, uint256 rs, uint256 rt, uint256 rd, uint256 sa) internal pure returns (uint32) {
        return uint32((rs << 21) | (rt << 16) | (rd << 11) | (sa << 6) | funct);
    }

    function _i(uint256 op, uint256 rs, uint256 rt, uint256 imm) internal pure returns (uint32) {
        return uint32((op << 26) | (rs << 21) | (rt << 16) | (imm & 0xFFFF));
    }

    /// @dev A pre-state at PC running `insn`, whose memory is `m` plus the instruction.
    function _pre(SparseMemory.Memory memory m, uint32 insn)
        internal
        pure
        returns (VMState.State memory s, SparseMemory.Memory memory full)
    {
        full = m.withWord(PC, insn);
        s.memRoot = full.root();
        s.pc = PC;
        s.nextPC = PC + 4;
        s.heap = 0x8000_0000;
        s.step = 41;
    }

    function _step(VMState.State memory s, SparseMemory.Memory memory m, uint32 dataAddr) internal view returns (bytes32) {
        return mips.step(VMState.encode(s), abi.encodePacked(m.proof(s.pc), m.proof(dataAddr)));
    }

    /// @dev The expected post-state of a straight-line instruction: the pair moves on, step + 1.
    function _advanced(VMState.State memory s) internal pure returns (VMState.State memory next) {
        next = _copy(s);
        next.pc = s.nextPC;
        next.nextPC = s.nextPC + 4;
        next.step = s.step + 1;
    }

    function _halted(VMState.State memory s, uint8 code) internal pure returns (VMState.State memory next) {
        next = _copy(s);
        next.exited = true;
        next.exitCode = code;
        next.step = s.step + 1;
    }

    function _copy(VMState.State memory s) internal pure returns (VMState.State memory c) {
        c = VMState.State(s.memRoot, s.pc, s.nextPC, s.lo, s.hi, s.heap, s.exitCode, s.exited, s.step, s.registers);
    }

    function _runRegisters(uint32 insn, uint32 a, uint32 b) internal view returns (VMState.State memory pre, bytes32 post) {
        SparseMemory.Memory memory m;
        (pre, m) = _pre(SparseMemory.empty(), insn);
        pre.registers[T0] = a;
        pre.registers[T1] = b;
        post = _step(pre, m, PC);
    }

    function _expectResult(uint32 insn, uint32 a, uint32 b, uint32 expected) internal view {
        (VMState.State memory pre, bytes32 post) = _runRegisters(insn, a, b);
        VMState.State memory want = _advanced(pre);
        want.registers[T2] = expected;
        assertEq(post, VMState.hash(want), "register result");
    }

    // --- ALU, shifts, comparisons ----------------------------------------------------------

    function test_Alu_AdduWrapsAndSubuBorrows() public view {
        _expectResult(_r(0x21, T0, T1, T2, 0), 0xFFFFFFFF, 2, 1);
        _expectResult(_r(0x23, T0, T1, T2, 0), 1, 2, 0xFFFFFFFF);
    }

    function test_Alu_LogicAndComparisons() public view {
        _expectResult(_r(0x27, T0, T1, T2, 0), 0xF0F0, 0xFF00, 0xFFFF000F); // nor
        _expectResult(_r(0x2A, T0, T1, T2, 0), 0xFFFFFFFF, 0, 1); // slt: -1 < 0
        _expectResult(_r(0x2B, T0, T1, T2, 0), 0xFFFFFFFF, 0, 0); // sltu
        _expectResult(_i(0x0B, T0, T2, 0xFFFF), 0xFFFFFFFE, 0, 1); // sltiu with -1 sign-extended
        _expectResult(_i(0x0F, 0, T2, 0xBEEF), 0, 0, 0xBEEF0000); // lui
    }

    function test_Alu_AddOverflowTraps() public view {
        (VMState.State memory pre, bytes32 post) = _runRegisters(_r(0x20, T0, T1, T2, 0), 0x7FFFFFFF, 1);
        assertEq(post, VMState.hash(_halted(pre, 0xF2)), "add overflow traps");
    }

    function test_Shift_SraKeepsTheSign() public view {
        _expectResult(_r(0x03, 0, T0, T2, 4), 0x8000000F, 0, 0xF8000000);
        _expectResult(_r(0x04, T1, T0, T2, 0), 1, 33, 2); // sllv uses the low 5 bits
    }

    // --- multiply and divide ----------------------------------------------------------------

    function test_MulDiv_DivisionByZeroDividesByOne() public view {
        (VMState.State memory pre, bytes32 post) = _runRegisters(_r(0x1A, T0, T1, 0, 0), 1234, 0);
        VMState.State memory want = _advanced(pre);
        (want.lo, want.hi) = (1234, 0);
        assertEq(post, VMState.hash(want), "div by zero");
    }

    function test_MulDiv_MultAndMadd() public view {
        (VMState.State memory pre, bytes32 post) = _runRegisters(_r(0x18, T0, T1, 0, 0), 0xFFFFFFFF, 2);
        VMState.State memory want = _advanced(pre);
        (want.lo, want.hi) = (0xFFFFFFFE, 0xFFFFFFFF);
        assertEq(post, VMState.hash(want), "mult -1 * 2");
        (pre, post) = _runRegisters(uint32((0x1C << 26) | _r(0x01, T0, T1, 0, 0)), 0xFFFFFFFF, 1); // maddu
        want = _advanced(pre);
        (want.lo, want.hi) = (0xFFFFFFFF, 0);
        assertEq(post, VMState.hash(want), "maddu");
    }

    function test_Bits_ClzCloMovn() public view {
        _expectResult(uint32((0x1C << 26) | _r(0x20, T0, 0, T2, 0)), 0x00010000, 0, 15); // clz
        _expectResult(uint32((0x1C << 26) | _r(0x21, T0, 0, T2, 0)), 0xFFFFFFFF, 0, 32); // clo
        _expectResult(_r(0x0B, T0, T1, T2, 0), 7, 1, 7); // movn taken
    }

    // --- branches and jumps ------------------------------------------------------------------

    function test_Branch_TakenBeqSetsNextPC() public view {
        (VMState.State memory pre, bytes32 post) = _runRegisters(_i(0x04, T0, T1, 3), 5, 5);
        VMState.State memory want = _advanced(pre);
        want.nextPC = PC + 4 + 12;
        assertEq(post, VMState.hash(want), "beq taken");
    }

    function test_Branch_BltzalLinksWhenNotTaken() public view {
        (VMState.State memory pre, bytes32 post) = _runRegisters(_i(0x01, T0, 0x10, 3), 1, 0);
        VMState.State memory want = _advanced(pre);
        want.registers[RA] = PC + 8;
        assertEq(post, VMState.hash(want), "bltzal links");
    }

    function test_Jump_JalAndJr() public view {
        (VMState.State memory pre, bytes32 post) = _runRegisters(uint32((0x03 << 26) | (0x4000 >> 2)), 0, 0);
        VMState.State memory want = _advanced(pre);
        want.nextPC = 0x4000;
        want.registers[RA] = PC + 8;
        assertEq(post, VMState.hash(want), "jal");
        (pre, post) = _runRegisters(_r(0x08, T0, 0, 0, 0), 0x1234_5678, 0);
        want = _advanced(pre);
        want.nextPC = 0x1234_5678;
        assertEq(post, VMState.hash(want), "jr");
    }

    // --- loads and stores ------------------------------------------------------------------------

    function _load(uint32 insn, uint32 word, uint32 rtBefore, uint32 expected) internal view {
        SparseMemory.Memory memory m = SparseMemory.empty().withWord(DATA, word);
        (VMState.State memory pre, SparseMemory.Memory memory full) = _pre(m, insn);
        pre.registers[T0] = DATA;
        pre.registers[T2] = rtBefore;
        bytes32 post = _step(pre, full, DATA);
        VMState.State memory want = _advanced(pre);
        want.registers[T2] = expected;
        assertEq(post, VMState.hash(want), "load");
    }

    function test_Load_WordsBytesHalves() public view {
        _load(_i(0x23, T0, T2, 0), 0x81028304, 0, 0x81028304); // lw
        _load(_i(0x20, T0, T2, 0), 0x81028304, 0, 0xFFFFFF81); // lb sign-extends
        _load(_i(0x25, T0, T2, 2), 0x81028304, 0, 0x8304); // lhu
        _load(_i(0x22, T0, T2, 1), 0x81028304, 0xEEEEEEEE, 0x028304EE); // lwl
        _load(_i(0x26, T0, T2, 2), 0x81028304, 0xEEEEEEEE, 0xEE810283); // lwr
    }

    function test_Load_UnalignedWordIsAnAddressError() public view {
        (VMState.State memory pre, SparseMemory.Memory memory m) = _pre(SparseMemory.empty(), _i(0x23, T0, T2, 2));
        pre.registers[T0] = DATA;
        assertEq(_step(pre, m, PC), VMState.hash(_halted(pre, 0xF1)), "lw unaligned");
    }

    function _store(uint32 insn, uint32 value, uint32 expectedWord) internal view {
        SparseMemory.Memory memory m = SparseMemory.empty().withWord(DATA, 0x11223344);
        (VMState.State memory pre, SparseMemory.Memory memory full) = _pre(m, insn);
        pre.registers[T0] = DATA;
        pre.registers[T1] = value;
        bytes32 post = _step(pre, full, DATA);
        VMState.State memory want = _advanced(pre);
        want.memRoot = full.withWord(DATA, expectedWord).root();
        if (insn >> 26 == 0x38) want.registers[T1] = 1;
        assertEq(post, VMState.hash(want), "store");
    }

    function test_Store_UpdatesTheMemoryRoot() public view {
        _store(_i(0x2B, T0, T1, 0), 0xDDCCBBAA, 0xDDCCBBAA); // sw
        _store(_i(0x28, T0, T1, 1), 0xDDCCBBAA, 0x11AA3344); // sb
        _store(_i(0x29, T0, T1, 2), 0xDDCCBBAA, 0x1122BBAA); // sh
        _store(_i(0x2A, T0, T1, 1), 0xDDCCBBAA, 0x11DDCCBB); // swl
        _store(_i(0x2E, T0, T1, 2), 0xDDCCBBAA, 0xCCBBAA44); // swr
        _store(_i(0x38, T0, T1, 0), 0xDDCCBBAA, 0xDDCCBBAA); // sc succeeds
    }

    // --- syscalls, faults, exited states ------------------------------------------------------

    function _syscall(uint32 number, uint32 a0, uint32 a1) internal view returns (VMState.State memory, bytes32) {
        (VMState.State memory pre, SparseMemory.Memory memory m) = _pre(SparseMemory.empty(), 0x0000000C);
        pre.registers[2] = number;
        pre.registers[4] = a0;
        pre.registers[5] = a1;
        return (pre, _step(pre, m, PC));
    }

    function test_Syscall_ExitKeepsTheLowByte() public view {
        (VMState.State memory pre, bytes32 post) = _syscall(4246, 0x1FF, 0);
        assertEq(post, VMState.hash(_halted(pre, 0xFF)), "exit_group");
    }

    function test_Syscall_MmapAndBrkMoveTheHeap() public view {
        (VMState.State memory pre, bytes32 post) = _syscall(4090, 0, 1);
        VMState.State memory want = _advanced(pre);
        (want.registers[2], want.registers[7], want.heap) = (0x8000_0000, 0, 0x8000_1000);
        assertEq(post, VMState.hash(want), "mmap");
        (pre, post) = _syscall(4045, 0xF000_0001, 0);
        want = _advanced(pre);
        (want.registers[2], want.registers[7]) = (0x8000_0000, 0);
        assertEq(post, VMState.hash(want), "brk past the limit");
        (pre, post) = _syscall(4020, 0, 0);
        want = _advanced(pre);
        (want.registers[2], want.registers[7]) = (89, 1);
        assertEq(post, VMState.hash(want), "unknown syscall: ENOSYS");
    }

    function test_Invalid_BreakAndCoprocessorHalt() public view {
        (VMState.State memory pre, bytes32 post) = _runRegisters(0x0000000D, 0, 0);
        assertEq(post, VMState.hash(_halted(pre, 0xF0)), "break");
        (pre, post) = _runRegisters(0x44000000, 0, 0);
        assertEq(post, VMState.hash(_halted(pre, 0xF0)), "cop1");
    }

    function test_UnalignedPcIsAnAddressError() public view {
        (VMState.State memory pre, SparseMemory.Memory memory m) = _pre(SparseMemory.empty(), 0);
        pre.pc = PC + 2;
        assertEq(_step(pre, m, PC), VMState.hash(_halted(pre, 0xF1)), "unaligned pc");
    }

    function test_RevertsOnATamperedInstructionProof() public {
        (VMState.State memory pre, SparseMemory.Memory memory m) = _pre(SparseMemory.empty(), 0);
        bytes memory proof = abi.encodePacked(m.proof(PC), m.proof(PC));
        proof[100] ^= 0x01;
        bytes memory state = VMState.encode(pre);
        vm.expectRevert(abi.encodeWithSelector(MemoryProof.InvalidMemoryProof.selector, PC));
        mips.step(state, proof);
    }

    // --- fuzz ---------------------------------------------------------------------------------

    function testFuzz_AdduAndSubuWrap(uint32 a, uint32 b) public view {
        unchecked {
            _expectResult(_r(0x21, T0, T1, T2, 0), a, b, a + b);
            _expectResult(_r(0x23, T0, T1, T2, 0), a, b, a - b);
        }
    }

    function testFuzz_SltMatchesSignedComparison(uint32 a, uint32 b) public view {
        _expectResult(_r(0x2A, T0, T1, T2, 0), a, b, int32(a) < int32(b) ? 1 : 0);
        _expectResult(_r(0x2B, T0, T1, T2, 0), a, b, a < b ? 1 : 0);
    }

    function testFuzz_StoreThenTheRootHoldsTheWord(uint32 addr, uint32 value) public {
        addr = addr & ~uint32(3);
        vm.assume(addr >> 5 != PC >> 5);
        (VMState.State memory pre, SparseMemory.Memory memory m) = _pre(SparseMemory.empty(), _i(0x2B, T0, T1, 0));
        pre.registers[T0] = addr;
        pre.registers[T1] = value;
        bytes32 post = _step(pre, m, addr);
        VMState.State memory want = _advanced(pre);
        want.memRoot = m.withWord(addr, value).root();
        assertEq(post, VMState.hash(want), "sw anywhere");
    }

    function testFuzz_ExitedStatesDoNotChange(uint32 pc, uint8 code, uint64 stepCount, uint32 register) public view {
        VMState.State memory s;
        (s.pc, s.exitCode, s.step, s.exited) = (pc, code, stepCount, true);
        s.registers[3] = register;
        bytes memory any = new bytes(mips.STEP_PROOF_BYTES());
        assertEq(mips.step(VMState.encode(s), any), VMState.hash(s), "exited fixed point");
    }

    function testFuzz_AnyTamperedProofByteReverts(uint256 position) public {
        SparseMemory.Memory memory m = SparseMemory.empty().withWord(DATA, 7);
        (VMState.State memory pre, SparseMemory.Memory memory full) = _pre(m, _i(0x23, T0, T2, 0));
        pre.registers[T0] = DATA;
        bytes memory proof = abi.encodePacked(full.proof(PC), full.proof(DATA));
        position = bound(position, 0, proof.length - 1);
        proof[position] ^= 0x01;
        bytes memory state = VMState.encode(pre);
        vm.expectRevert();
        mips.step(state, proof);
    }
}
