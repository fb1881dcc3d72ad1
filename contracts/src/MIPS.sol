// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {MemoryProof} from "./MemoryProof.sol";
import {VMState} from "./VMState.sol";

/// @title MIPS
/// @notice The one-step verifier of the OPML VM: executes the single instruction at a pre-state and
///         returns the post-state hash, exactly as opml/vm/semantics.py does (docs/vm-spec.md).
/// @dev Each `_execute*` function runs the instruction at s.pc and returns the address of the
///      instruction after the delay slot (nextPC + 4, or a taken branch's target), or HALT when the
///      instruction ended the run. The functions are in the same order as in semantics.py.
contract MIPS {
    using VMState for VMState.State;

    /// @notice Bytes of a step proof: the instruction leaf proof, then the data leaf proof.
    uint256 public constant STEP_PROOF_BYTES = 2 * MemoryProof.PROOF_BYTES;

    // Fault exit codes.
    uint8 internal constant EXIT_INVALID_INSTRUCTION = 0xF0;
    uint8 internal constant EXIT_ADDRESS_ERROR = 0xF1;
    uint8 internal constant EXIT_TRAP = 0xF2;

    // o32 syscall numbers, the errno values returned, and the heap limit.
    uint256 internal constant SYS_EXIT = 4001;
    uint256 internal constant SYS_WRITE = 4004;
    uint256 internal constant SYS_BRK = 4045;
    uint256 internal constant SYS_MMAP = 4090;
    uint256 internal constant SYS_EXIT_GROUP = 4246;
    uint256 internal constant EBADF = 9;
    uint256 internal constant ENOMEM = 12;
    uint256 internal constant ENOSYS = 89;
    uint256 internal constant STDOUT = 1;
    uint256 internal constant STDERR = 2;
    uint256 internal constant HEAP_LIMIT = 0xF0000000;
    uint256 internal constant PAGE_BYTES = 4096;

    // Registers with a fixed role.
    uint256 private constant REG_V0 = 2;
    uint256 private constant REG_A0 = 4;
    uint256 private constant REG_A1 = 5;
    uint256 private constant REG_A2 = 6;
    uint256 private constant REG_A3 = 7;
    uint256 private constant REG_RA = 31;

    uint256 private constant MASK32 = 0xFFFFFFFF;
    uint256 private constant MASK64 = 0xFFFFFFFFFFFFFFFF;
    uint256 private constant HALT = type(uint256).max;
    uint256 private constant NOT_HANDLED = type(uint256).max - 1;

    /// @notice The proof is not two leaf proofs.
    error InvalidProofLength(uint256 length);

    /// @notice Execute one instruction.
    /// @param stateData The 190-byte encoding of the pre-state.
    /// @param proof The leaf proof of the instruction at pc, then that of the data word the instruction
    ///        accesses (any 896 bytes if it accesses none), both against the pre-state's memory root.
    /// @return postStateHash keccak256 of the post-state's encoding.
    function step(bytes calldata stateData, bytes calldata proof) external pure returns (bytes32 postStateHash) {
        if (proof.length != STEP_PROOF_BYTES) revert InvalidProofLength(proof.length);
        VMState.State memory s = VMState.decode(stateData);
        if (s.exited) return keccak256(stateData);
        uint256 following = _execute(s, proof[:MemoryProof.PROOF_BYTES], proof[MemoryProof.PROOF_BYTES:]);
        if (following != HALT) {
            s.pc = s.nextPC;
            s.nextPC = uint32(following);
        }
        unchecked {
            s.step += 1;
        }
        return s.hash();
    }

    // --- one step ------------------------------------------------------------------------

    function _execute(VMState.State memory s, bytes calldata instructionProof, bytes calldata dataProof)
        private
        pure
        returns (uint256)
    {
        if (s.pc & 3 != 0) return _halt(s, EXIT_ADDRESS_ERROR);
        uint256 insn = MemoryProof.readWord(instructionProof, s.pc, s.memRoot);
        uint256 op = insn >> 26;
        uint256 following = (uint256(s.nextPC) + 4) & MASK32;
        if (op == 0x00) return _executeSpecial(s, insn, following);
        if (op >= 0x08 && op <= 0x0F) return _executeImmediate(s, op, insn, following);
        if (op >= 0x04 && op <= 0x07) return _executeBranch(s, op, insn, following);
        if (op >= 0x20) {
            uint256 result = _executeLoad(s, insn, following, dataProof);
            if (result != NOT_HANDLED) return result;
            return _executeStore(s, insn, following, dataProof);
        }
        if (op == 0x02 || op == 0x03) return _executeJump(s, op, insn);
        if (op == 0x01) return _executeRegimm(s, insn, following);
        if (op == 0x1C) return _executeSpecial2(s, insn, following);
        return _halt(s, EXIT_INVALID_INSTRUCTION);
    }

    // --- instruction families ------------------------------------------------------------

    /// @dev SPECIAL shifts, register ALU ops, conditional moves and HI/LO moves.
    function _executeRegisterAlu(VMState.State memory s, uint256 insn, uint256 following)
        private
        pure
        returns (uint256)
    {
        uint256 funct = insn & 63;
        uint256 rd = (insn >> 11) & 31;
        uint256 shamt = (insn >> 6) & 31;
        uint256 a = s.registers[(insn >> 21) & 31];
        uint256 b = s.registers[(insn >> 16) & 31];
        unchecked {
            if (funct == 0x21) _setRegister(s, rd, a + b); // addu
            else if (funct == 0x00) _setRegister(s, rd, b << shamt); // sll
            else if (funct == 0x02) _setRegister(s, rd, b >> shamt); // srl
            else if (funct == 0x03) _setRegister(s, rd, uint256(_signed(b) >> shamt)); // sra
            else if (funct == 0x04) _setRegister(s, rd, b << (a & 31)); // sllv
            else if (funct == 0x06) _setRegister(s, rd, b >> (a & 31)); // srlv
            else if (funct == 0x07) _setRegister(s, rd, uint256(_signed(b) >> (a & 31))); // srav
            else if (funct == 0x23) _setRegister(s, rd, a - b); // subu
            else if (funct == 0x20 || funct == 0x22) {
                // add, sub: trap on signed overflow
                int256 result = funct == 0x20 ? _signed(a) + _signed(b) : _signed(a) - _signed(b);
                if (result != int256(int32(result))) return _halt(s, EXIT_TRAP);
                _setRegister(s, rd, uint256(result));
            } else if (funct == 0x24) _setRegister(s, rd, a & b); // and
            else if (funct == 0x25) _setRegister(s, rd, a | b); // or
            else if (funct == 0x26) _setRegister(s, rd, a ^ b); // xor
            else if (funct == 0x27) _setRegister(s, rd, ~(a | b)); // nor
            else if (funct == 0x2A) _setRegister(s, rd, _signed(a) < _signed(b) ? 1 : 0); // slt
            else if (funct == 0x2B) _setRegister(s, rd, a < b ? 1 : 0); // sltu
            else if (funct == 0x0A) { if (b == 0) _setRegister(s, rd, a); } // movz
            else if (funct == 0x0B) { if (b != 0) _setRegister(s, rd, a); } // movn
            else if (funct == 0x10) _setRegister(s, rd, s.hi); // mfhi
            else if (funct == 0x11) s.hi = uint32(a); // mthi
            else if (funct == 0x12) _setRegister(s, rd, s.lo); // mflo
            else if (funct == 0x13) s.lo = uint32(a); // mtlo
            else if (funct == 0x0F) {} // sync: a no-op on a single-threaded machine
            else return NOT_HANDLED;
        }
        return following;
    }

    /// @dev mult, multu, div, divu. A divisor of 0, and INT_MIN / -1 for div, is replaced by 1.
    function _executeMultiplyDivide(VMState.State memory s, uint256 insn, uint256 following)
        private
        pure
        returns (uint256)
    {
        uint256 funct = insn & 63;
        uint256 a = s.registers[(insn >> 21) & 31];
        uint256 b = s.registers[(insn >> 16) & 31];
        unchecked {
            if (funct == 0x18) {
                _setHiLo(s, uint256(_signed(a) * _signed(b))); // mult
            } else if (funct == 0x19) {
                _setHiLo(s, a * b); // multu
            } else if (funct == 0x1A) {
                // div: the quotient truncates toward zero, the remainder has the dividend's sign
                int256 dividend = _signed(a);
                int256 divisor = _signed(b);
                if (divisor == 0 || (dividend == type(int32).min && divisor == -1)) divisor = 1;
                s.lo = uint32(uint256(dividend / divisor));
                s.hi = uint32(uint256(dividend % divisor));
            } else if (funct == 0x1B) {
                uint256 divisor = b == 0 ? 1 : b; // divu
                s.lo = uint32(a / divisor);
                s.hi = uint32(a % divisor);
            } else {
                return NOT_HANDLED;
            }
        }
        return following;
    }

    /// @dev Opcode 0x1C: mul, madd, maddu, msub, msubu, clz, clo.
    function _executeSpecial2(VMState.State memory s, uint256 insn, uint256 following)
        private
        pure
        returns (uint256)
    {
        uint256 funct = insn & 63;
        uint256 rd = (insn >> 11) & 31;
        uint256 a = s.registers[(insn >> 21) & 31];
        uint256 b = s.registers[(insn >> 16) & 31];
        unchecked {
            if (funct == 0x02) {
                _setRegister(s, rd, uint256(_signed(a) * _signed(b))); // mul: HI and LO unchanged
            } else if (funct == 0x00 || funct == 0x01 || funct == 0x04 || funct == 0x05) {
                uint256 product = (funct == 0x00 || funct == 0x04) ? uint256(_signed(a) * _signed(b)) : a * b;
                uint256 accumulator = (uint256(s.hi) << 32) | s.lo;
                _setHiLo(s, funct <= 0x01 ? accumulator + product : accumulator - product);
            } else if (funct == 0x20) {
                _setRegister(s, rd, _countLeadingZeros(a)); // clz
            } else if (funct == 0x21) {
                _setRegister(s, rd, _countLeadingZeros(~a & MASK32)); // clo
            } else {
                return _halt(s, EXIT_INVALID_INSTRUCTION);
            }
        }
        return following;
    }

    /// @dev The trap condition by the low 3 bits of funct / rt: 0 tge, 1 tgeu, 2 tlt, 3 tltu, 4 teq,
    ///      6 tne; the unused encoding 5 is an invalid instruction.
    function _executeTrap(VMState.State memory s, uint256 kind, uint256 a, uint256 b, uint256 following)
        private
        pure
        returns (uint256)
    {
        bool condition;
        if (kind == 0) condition = _signed(a) >= _signed(b);
        else if (kind == 1) condition = a >= b;
        else if (kind == 2) condition = _signed(a) < _signed(b);
        else if (kind == 3) condition = a < b;
        else if (kind == 4) condition = a == b;
        else if (kind == 6) condition = a != b;
        else return _halt(s, EXIT_INVALID_INSTRUCTION);
        return condition ? _halt(s, EXIT_TRAP) : following;
    }

    /// @dev The o32 syscalls of docs/vm-spec.md; v0 is the result, a3 the error flag.
    function _executeSyscall(VMState.State memory s, uint256 following) private pure returns (uint256) {
        uint256 number = s.registers[REG_V0];
        uint256 a0 = s.registers[REG_A0];
        uint256 a1 = s.registers[REG_A1];
        if (number == SYS_EXIT || number == SYS_EXIT_GROUP) return _halt(s, uint8(a0));
        uint256 result;
        uint256 failed;
        if (number == SYS_WRITE) {
            if (a0 == STDOUT || a0 == STDERR) result = s.registers[REG_A2];
            else (result, failed) = (EBADF, 1);
        } else if (number == SYS_BRK) {
            if (s.heap < a0 && a0 <= HEAP_LIMIT) s.heap = uint32(a0);
            result = s.heap;
        } else if (number == SYS_MMAP) {
            if (a0 != 0) {
                result = a0; // a fixed address: all memory exists already
            } else {
                uint256 size = (a1 + PAGE_BYTES - 1) & ~(PAGE_BYTES - 1);
                if (s.heap + size > HEAP_LIMIT) {
                    (result, failed) = (ENOMEM, 1);
                } else {
                    result = s.heap;
                    s.heap = uint32(s.heap + size);
                }
            }
        } else {
            (result, failed) = (ENOSYS, 1);
        }
        s.registers[REG_V0] = uint32(result);
        s.registers[REG_A3] = uint32(failed);
        return following;
    }

    /// @dev Opcode 0: register ALU ops, multiply/divide, jr/jalr, syscall, traps.
    function _executeSpecial(VMState.State memory s, uint256 insn, uint256 following) private pure returns (uint256) {
        uint256 result = _executeRegisterAlu(s, insn, following);
        if (result != NOT_HANDLED) return result;
        result = _executeMultiplyDivide(s, insn, following);
        if (result != NOT_HANDLED) return result;
        uint256 funct = insn & 63;
        uint256 rs = (insn >> 21) & 31;
        if (funct == 0x08 || funct == 0x09) {
            // jr, jalr (read rs before linking: rd may be rs)
            uint256 target = s.registers[rs];
            if (funct == 0x09) _setRegister(s, (insn >> 11) & 31, uint256(s.pc) + 8);
            return target;
        }
        if (funct == 0x0C) return _executeSyscall(s, following);
        if (funct >= 0x30 && funct <= 0x36) {
            return _executeTrap(s, funct & 7, s.registers[rs], s.registers[(insn >> 16) & 31], following);
        }
        return _halt(s, EXIT_INVALID_INSTRUCTION); // break and every unassigned funct
    }

    /// @dev Opcode 1: bltz, bgez, bltzal, bgezal and the immediate traps.
    function _executeRegimm(VMState.State memory s, uint256 insn, uint256 following) private pure returns (uint256) {
        uint256 rs = (insn >> 21) & 31;
        uint256 rt = (insn >> 16) & 31;
        if (rt == 0x00 || rt == 0x01 || rt == 0x10 || rt == 0x11) {
            int256 value = _signed(s.registers[rs]);
            bool taken = (rt & 1) == 1 ? value >= 0 : value < 0;
            // the link register is written whether or not the branch is taken
            if (rt & 0x10 != 0) _setRegister(s, REG_RA, uint256(s.pc) + 8);
            return taken ? _branchTarget(s.pc, insn) : following;
        }
        if (rt >= 0x08 && rt <= 0x0E) {
            return _executeTrap(s, rt & 7, s.registers[rs], uint256(_signExtend16(insn)) & MASK32, following);
        }
        return _halt(s, EXIT_INVALID_INSTRUCTION);
    }

    /// @dev j, jal: the target keeps the top 4 bits of the delay slot's address.
    function _executeJump(VMState.State memory s, uint256 op, uint256 insn) private pure returns (uint256) {
        if (op == 0x03) _setRegister(s, REG_RA, uint256(s.pc) + 8);
        return ((uint256(s.pc) + 4) & 0xF0000000) | ((insn & 0x03FFFFFF) << 2);
    }

    /// @dev beq, bne, blez, bgtz (opcodes 4-7).
    function _executeBranch(VMState.State memory s, uint256 op, uint256 insn, uint256 following)
        private
        pure
        returns (uint256)
    {
        uint256 a = s.registers[(insn >> 21) & 31];
        bool taken;
        if (op == 0x04) taken = a == s.registers[(insn >> 16) & 31];
        else if (op == 0x05) taken = a != s.registers[(insn >> 16) & 31];
        else if (op == 0x06) taken = _signed(a) <= 0;
        else taken = _signed(a) > 0;
        return taken ? _branchTarget(s.pc, insn) : following;
    }

    /// @dev addi, addiu, slti, sltiu, andi, ori, xori, lui (opcodes 8-15).
    function _executeImmediate(VMState.State memory s, uint256 op, uint256 insn, uint256 following)
        private
        pure
        returns (uint256)
    {
        uint256 rt = (insn >> 16) & 31;
        uint256 a = s.registers[(insn >> 21) & 31];
        unchecked {
            if (op == 0x09) {
                _setRegister(s, rt, uint256(int256(a) + _signExtend16(insn))); // addiu
            } else if (op == 0x08) {
                // addi: trap on signed overflow
                int256 result = _signed(a) + _signExtend16(insn);
                if (result != int256(int32(result))) return _halt(s, EXIT_TRAP);
                _setRegister(s, rt, uint256(result));
            } else if (op == 0x0A) {
                _setRegister(s, rt, _signed(a) < _signExtend16(insn) ? 1 : 0); // slti
            } else if (op == 0x0B) {
                // sltiu: the immediate is sign-extended, then compared unsigned
                _setRegister(s, rt, a < (uint256(_signExtend16(insn)) & MASK32) ? 1 : 0);
            } else if (op == 0x0C) {
                _setRegister(s, rt, a & (insn & 0xFFFF)); // andi
            } else if (op == 0x0D) {
                _setRegister(s, rt, a | (insn & 0xFFFF)); // ori
            } else if (op == 0x0E) {
                _setRegister(s, rt, a ^ (insn & 0xFFFF)); // xori
            } else {
                _setRegister(s, rt, (insn & 0xFFFF) << 16); // lui
            }
        }
        return following;
    }

    /// @dev lb, lh, lwl, lw, lbu, lhu, lwr, ll.
    function _executeLoad(VMState.State memory s, uint256 insn, uint256 following, bytes calldata dataProof)
        private
        pure
        returns (uint256)
    {
        uint256 op = insn >> 26;
        if (op != 0x20 && op != 0x21 && op != 0x22 && op != 0x23 && op != 0x24 && op != 0x25 && op != 0x26 && op != 0x30)
        {
            return NOT_HANDLED;
        }
        uint256 addr = _effectiveAddress(s, insn);
        if ((op == 0x23 || op == 0x30) && addr & 3 != 0) return _halt(s, EXIT_ADDRESS_ERROR);
        if ((op == 0x21 || op == 0x25) && addr & 1 != 0) return _halt(s, EXIT_ADDRESS_ERROR);
        uint256 word = MemoryProof.readWord(dataProof, uint32(addr), s.memRoot);
        uint256 rt = (insn >> 16) & 31;
        _setRegister(s, rt, _loadedValue(insn >> 26, word, addr, s.registers[rt]));
        return following;
    }

    /// @dev The value a load of opcode `op` from `addr` puts in rt, given the aligned `word` there and
    ///      rt's old value.
    function _loadedValue(uint256 op, uint256 word, uint256 addr, uint256 current) private pure returns (uint256) {
        uint256 offset = addr & 3;
        unchecked {
            if (op == 0x23 || op == 0x30) return word; // lw, ll
            if (op == 0x20 || op == 0x24) {
                uint256 byteValue = (word >> (24 - 8 * offset)) & 0xFF;
                return op == 0x20 ? uint256(int256(int8(uint8(byteValue)))) : byteValue; // lb, lbu
            }
            if (op == 0x21 || op == 0x25) {
                uint256 half = (word >> (16 - 8 * offset)) & 0xFFFF;
                return op == 0x21 ? uint256(_signExtend16(half)) : half; // lh, lhu
            }
            if (op == 0x22) {
                // lwl: the word's bytes from the address on fill rt from the top
                uint256 mask = (MASK32 << (8 * offset)) & MASK32;
                return (current & ~mask) | ((word << (8 * offset)) & mask);
            }
            // lwr: the word's bytes up to the address fill rt from the bottom
            uint256 shift = 8 * (3 - offset);
            return (current & ~(MASK32 >> shift)) | (word >> shift);
        }
    }

    /// @dev sb, sh, swl, sw, swr, sc; any other opcode is an invalid instruction. Every store reads and
    ///      rewrites one aligned word. sc always succeeds (rt = 1): one thread, no interrupts.
    function _executeStore(VMState.State memory s, uint256 insn, uint256 following, bytes calldata dataProof)
        private
        pure
        returns (uint256)
    {
        uint256 addr = _effectiveAddress(s, insn);
        (uint256 mask, uint256 bits, uint8 fault) = _storeMerge(insn >> 26, addr & 3, s.registers[(insn >> 16) & 31]);
        if (fault != 0) return _halt(s, fault);
        bytes32 leaf = MemoryProof.readLeaf(dataProof, uint32(addr), s.memRoot);
        uint32 newWord = uint32((uint256(MemoryProof.wordOf(leaf, uint32(addr))) & ~mask) | bits);
        s.memRoot = MemoryProof.rootWith(dataProof, uint32(addr), MemoryProof.withWord(leaf, uint32(addr), newWord));
        if (insn >> 26 == 0x38) _setRegister(s, (insn >> 16) & 31, 1);
        return following;
    }

    /// @dev Which bits of the aligned word a store of opcode `op` replaces, and with what; or the fault
    ///      it raises instead.
    function _storeMerge(uint256 op, uint256 offset, uint256 value)
        private
        pure
        returns (uint256 mask, uint256 bits, uint8 fault)
    {
        unchecked {
            if (op == 0x2B || op == 0x38) {
                if (offset != 0) return (0, 0, EXIT_ADDRESS_ERROR); // sw, sc
                return (MASK32, value, 0);
            }
            if (op == 0x28) {
                uint256 shift = 24 - 8 * offset; // sb
                return (uint256(0xFF) << shift, (value & 0xFF) << shift, 0);
            }
            if (op == 0x29) {
                if (offset & 1 != 0) return (0, 0, EXIT_ADDRESS_ERROR); // sh
                uint256 shift = 16 - 8 * offset;
                return (uint256(0xFFFF) << shift, (value & 0xFFFF) << shift, 0);
            }
            if (op == 0x2A) {
                // swl: rt's top bytes go to the address and up to the word's end
                return (MASK32 >> (8 * offset), value >> (8 * offset), 0);
            }
            if (op == 0x2E) {
                // swr: rt's bottom bytes go to the word's start up to the address
                uint256 shift = 8 * (3 - offset);
                return ((MASK32 << shift) & MASK32, (value << shift) & MASK32, 0);
            }
            return (0, 0, EXIT_INVALID_INSTRUCTION);
        }
    }

    // --- helpers -------------------------------------------------------------------------

    /// @dev End the run with `exitCode`; pc stays at the instruction that ended it.
    function _halt(VMState.State memory s, uint8 exitCode) private pure returns (uint256) {
        s.exited = true;
        s.exitCode = exitCode;
        return HALT;
    }

    function _setRegister(VMState.State memory s, uint256 index, uint256 value) private pure {
        if (index != 0) s.registers[index] = uint32(value & MASK32);
    }

    function _setHiLo(VMState.State memory s, uint256 value) private pure {
        s.lo = uint32(value & MASK32);
        s.hi = uint32((value >> 32) & MASK32);
    }

    /// @dev Target of a PC-relative branch: relative to the delay slot.
    function _branchTarget(uint32 pc, uint256 insn) private pure returns (uint256) {
        unchecked {
            return uint256(int256(uint256(pc)) + 4 + (_signExtend16(insn) << 2)) & MASK32;
        }
    }

    function _effectiveAddress(VMState.State memory s, uint256 insn) private pure returns (uint256) {
        unchecked {
            return uint256(int256(uint256(s.registers[(insn >> 21) & 31])) + _signExtend16(insn)) & MASK32;
        }
    }

    function _signed(uint256 value) private pure returns (int256) {
        return int256(int32(uint32(value)));
    }

    function _signExtend16(uint256 value) private pure returns (int256) {
        return int256(int16(uint16(value)));
    }

    function _countLeadingZeros(uint256 value) private pure returns (uint256 count) {
        value &= MASK32;
        if (value == 0) return 32;
        if (value <= 0xFFFF) (count, value) = (count + 16, value << 16);
        if (value <= 0xFFFFFF) (count, value) = (count + 8, value << 8);
        if (value <= 0xFFFFFFF) (count, value) = (count + 4, value << 4);
        if (value <= 0x3FFFFFFF) (count, value) = (count + 2, value << 2);
        if (value <= 0x7FFFFFFF) count += 1;
    }
}
