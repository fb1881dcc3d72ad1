"""The MIPS32 instruction set of the VM: one semantics for the fast path and the proof path.

Every function here is compiled by numba. `run` executes up to `max_steps`
instructions; the step-proof path calls the same `run` with `max_steps=1` and reads
the witness of the one data access it made. docs/vm-spec.md is the prose version of
this file, and contracts/src/MIPS.sol must agree with it bit for bit.

Conventions:
- Registers and special registers hold unsigned 32-bit values in int64 slots; every
  result is masked back to 32 bits.
- Control flow follows the delay-slot pair (pc, next_pc): each `execute_*` function
  runs the instruction at pc and returns the address of the instruction *after* the
  delay slot, i.e. next_pc + 4 for straight-line code and the target of a taken
  branch; or HALT when the instruction ended the run (exit or fault), which leaves
  pc where it is. The run loop then moves (pc, next_pc) to (next_pc, returned).
- Memory is paged: `page_table[vpage]` is a page of `pool` (or -1 for a page of
  zeros). Pages below `meta[FROZEN_BELOW]` belong to a snapshot and are copied on
  write.
- Everything is compiled without reference counting (`_nrt=False`): the loop only
  reads and writes arrays it is given, and counting references on them cost 30x.
"""

from collections import namedtuple

import numpy as np
from numba import njit

from . import layout as L

MASK32 = 0xFFFFFFFF

# Special-register slots.
PC, NEXT_PC, LO, HI, HEAP, EXIT_CODE, EXITED, STEP = range(8)
SPECIAL_REGISTER_COUNT = 8

# Memory bookkeeping slots.
N_PAGES, CAPACITY, FROZEN_BELOW, N_LOG = range(4)
META_COUNT = 4

# Witness of the single data access of the last instruction (for step proofs).
ACCESS_ADDRESS, ACCESS_OLD_WORD, ACCESS_IS_WRITE = range(3)
WITNESS_COUNT = 3
NO_ACCESS = -1

# Why `run` returned.
STATUS_STEPS_DONE = 0  # executed max_steps instructions
STATUS_EXITED = 1  # the state is exited (before or during this call)
STATUS_NEED_PAGES = 2  # the page pool is full: grow it and call again
STATUS_WROTE = 3  # a write syscall to stdout/stderr just ran: its bytes can be read

# Returned instead of an address when an instruction ends the run.
HALT = -1
# Added to the returned address by a write syscall, so the loop can hand its bytes out.
WROTE = 1 << 32

inline = njit(inline="always", _nrt=False)

MemoryArrays = namedtuple("MemoryArrays", "page_table pool page_dirty dirty_log meta")

_WORDS_PER_PAGE = L.WORDS_PER_PAGE


# --- Integer helpers ---------------------------------------------------------------


@inline
def to_signed32(value):
    return ((value & MASK32) ^ 0x80000000) - 0x80000000


@inline
def sign_extend16(value):
    return ((value & 0xFFFF) ^ 0x8000) - 0x8000


@inline
def sign_extend8(value):
    return ((value & 0xFF) ^ 0x80) - 0x80


@inline
def count_leading_zeros32(value):
    value &= MASK32
    if value == 0:
        return 32
    count = 0
    while value & 0x80000000 == 0:
        value <<= 1
        count += 1
    return count


# --- Memory -------------------------------------------------------------------------


@inline
def load_word(mem, address):
    """The aligned word at `address` (unwritten memory reads as zero)."""
    page = mem.page_table[address >> 12]
    if page < 0:
        return 0
    return np.int64(mem.pool[np.int64(page) * _WORDS_PER_PAGE + ((address & 0xFFF) >> 2)])


@inline
def writable_page(mem, vpage):
    """The pool page backing `vpage`, made private (copy on write) and marked dirty."""
    page = np.int64(mem.page_table[vpage])
    meta = mem.meta
    if page < meta[FROZEN_BELOW]:
        fresh = meta[N_PAGES]
        meta[N_PAGES] = fresh + 1
        base = fresh * _WORDS_PER_PAGE
        source = page * _WORDS_PER_PAGE
        for i in range(_WORDS_PER_PAGE):
            mem.pool[base + i] = mem.pool[source + i] if page >= 0 else 0
        mem.page_dirty[fresh] = 0
        mem.page_table[vpage] = fresh
        page = fresh
    if mem.page_dirty[page] == 0:
        mem.page_dirty[page] = 1
        mem.dirty_log[meta[N_LOG]] = vpage
        meta[N_LOG] += 1
    return page


@inline
def store_word(mem, address, value):
    page = writable_page(mem, address >> 12)
    mem.pool[page * _WORDS_PER_PAGE + ((address & 0xFFF) >> 2)] = value


@inline
def read_data(mem, witness, address):
    """Load the aligned data word at `address`, recording it as the step's data access."""
    word = load_word(mem, address)
    witness[ACCESS_ADDRESS] = address
    witness[ACCESS_OLD_WORD] = word
    witness[ACCESS_IS_WRITE] = 0
    return word


@inline
def write_data(mem, witness, address, old_word, new_word):
    """Store the aligned data word at `address`, recording the step's data access."""
    witness[ACCESS_ADDRESS] = address
    witness[ACCESS_OLD_WORD] = old_word
    witness[ACCESS_IS_WRITE] = 1
    store_word(mem, address, new_word)


@inline
def halt(sr, exit_code):
    """End the run with `exit_code`; pc stays at the instruction that ended it."""
    sr[EXITED] = 1
    sr[EXIT_CODE] = exit_code & 0xFF
    return HALT


@inline
def set_register(regs, index, value):
    if index != 0:
        regs[index] = value & MASK32


@inline
def branch_target(pc, insn):
    """Target of a PC-relative branch: relative to the delay slot."""
    return (pc + 4 + (sign_extend16(insn) << 2)) & MASK32


# --- Instruction families -----------------------------------------------------------


@inline
def execute_register_alu(regs, sr, following, funct, rs, rt, rd, shamt):
    """SPECIAL shifts, register ALU ops, conditional moves and HI/LO moves.

    Returns -2 if `funct` is not one of them.
    """
    a = regs[rs]
    b = regs[rt]
    if funct == 0x21:  # addu
        set_register(regs, rd, a + b)
    elif funct == 0x00:  # sll
        set_register(regs, rd, b << shamt)
    elif funct == 0x02:  # srl
        set_register(regs, rd, b >> shamt)
    elif funct == 0x03:  # sra
        set_register(regs, rd, to_signed32(b) >> shamt)
    elif funct == 0x04:  # sllv
        set_register(regs, rd, b << (a & 31))
    elif funct == 0x06:  # srlv
        set_register(regs, rd, b >> (a & 31))
    elif funct == 0x07:  # srav
        set_register(regs, rd, to_signed32(b) >> (a & 31))
    elif funct == 0x23:  # subu
        set_register(regs, rd, a - b)
    elif funct == 0x20 or funct == 0x22:  # add, sub: trap on signed overflow
        result = to_signed32(a) + to_signed32(b) if funct == 0x20 else to_signed32(a) - to_signed32(b)
        if result != to_signed32(result):
            return halt(sr, L.EXIT_TRAP)
        set_register(regs, rd, result)
    elif funct == 0x24:  # and
        set_register(regs, rd, a & b)
    elif funct == 0x25:  # or
        set_register(regs, rd, a | b)
    elif funct == 0x26:  # xor
        set_register(regs, rd, a ^ b)
    elif funct == 0x27:  # nor
        set_register(regs, rd, ~(a | b))
    elif funct == 0x2A:  # slt
        set_register(regs, rd, 1 if to_signed32(a) < to_signed32(b) else 0)
    elif funct == 0x2B:  # sltu
        set_register(regs, rd, 1 if a < b else 0)
    elif funct == 0x0A:  # movz
        if b == 0:
            set_register(regs, rd, a)
    elif funct == 0x0B:  # movn
        if b != 0:
            set_register(regs, rd, a)
    elif funct == 0x10:  # mfhi
        set_register(regs, rd, sr[HI])
    elif funct == 0x11:  # mthi
        sr[HI] = a
    elif funct == 0x12:  # mflo
        set_register(regs, rd, sr[LO])
    elif funct == 0x13:  # mtlo
        sr[LO] = a
    elif funct == 0x0F:  # sync: a no-op on a single-threaded machine
        pass
    else:
        return -2
    return following


@inline
def execute_multiply_divide(regs, sr, following, funct, rs, rt):
    """mult, multu, div, divu. Returns -2 if `funct` is not one of them.

    Division by zero, and INT_MIN / -1 for div, divide by 1 instead: LO = rs, HI = 0.
    """
    a = regs[rs]
    b = regs[rt]
    if funct == 0x18:  # mult
        product = to_signed32(a) * to_signed32(b)
        sr[LO] = product & MASK32
        sr[HI] = (product >> 32) & MASK32
    elif funct == 0x19:  # multu (wraps modulo 2^64 in int64; the bits are exact)
        product = a * b
        sr[LO] = product & MASK32
        sr[HI] = (product >> 32) & MASK32
    elif funct == 0x1A:  # div: the quotient truncates toward zero
        dividend = to_signed32(a)
        divisor = to_signed32(b)
        if divisor == 0 or (dividend == -0x80000000 and divisor == -1):
            divisor = 1
        quotient = abs(dividend) // abs(divisor)
        if (dividend < 0) != (divisor < 0):
            quotient = -quotient
        sr[LO] = quotient & MASK32
        sr[HI] = (dividend - quotient * divisor) & MASK32
    elif funct == 0x1B:  # divu
        divisor = b if b != 0 else 1
        sr[LO] = a // divisor
        sr[HI] = a % divisor
    else:
        return -2
    return following


@inline
def execute_special2(regs, sr, following, insn):
    """Opcode 0x1C: mul, madd, maddu, msub, msubu, clz, clo."""
    funct = insn & 63
    rd = (insn >> 11) & 31
    a = regs[(insn >> 21) & 31]
    b = regs[(insn >> 16) & 31]
    if funct == 0x02:  # mul: HI and LO are left unchanged
        set_register(regs, rd, to_signed32(a) * to_signed32(b))
    elif funct == 0x00 or funct == 0x01 or funct == 0x04 or funct == 0x05:
        if funct == 0x00 or funct == 0x04:  # madd, msub
            product = to_signed32(a) * to_signed32(b)
        else:  # maddu, msubu
            product = a * b
        accumulator = (sr[HI] << 32) | sr[LO]
        accumulator = accumulator + product if funct <= 0x01 else accumulator - product
        sr[LO] = accumulator & MASK32
        sr[HI] = (accumulator >> 32) & MASK32
    elif funct == 0x20:  # clz
        set_register(regs, rd, count_leading_zeros32(a))
    elif funct == 0x21:  # clo
        set_register(regs, rd, count_leading_zeros32(~a))
    else:
        return halt(sr, L.EXIT_INVALID_INSTRUCTION)
    return following


@inline
def trap_condition(kind, a, b):
    """The condition of the trap instructions, by the low 3 bits of funct / rt.

    0 tge, 1 tgeu, 2 tlt, 3 tltu, 4 teq, 6 tne; -1 for the unused encoding 5.
    """
    if kind == 0:
        return 1 if to_signed32(a) >= to_signed32(b) else 0
    if kind == 1:
        return 1 if a >= b else 0
    if kind == 2:
        return 1 if to_signed32(a) < to_signed32(b) else 0
    if kind == 3:
        return 1 if a < b else 0
    if kind == 4:
        return 1 if a == b else 0
    if kind == 6:
        return 1 if a != b else 0
    return -1


@inline
def execute_trap(sr, following, condition):
    if condition < 0:
        return halt(sr, L.EXIT_INVALID_INSTRUCTION)
    if condition == 1:
        return halt(sr, L.EXIT_TRAP)
    return following


@inline
def execute_syscall(regs, sr, following):
    """The o32 syscalls of docs/vm-spec.md; v0 is the result, a3 the error flag."""
    number = regs[L.REG_V0]
    a0 = regs[L.REG_A0]
    a1 = regs[L.REG_A1]
    if number == L.SYS_EXIT or number == L.SYS_EXIT_GROUP:
        return halt(sr, a0)
    result = 0
    failed = 0
    if number == L.SYS_WRITE:
        if a0 == L.STDOUT or a0 == L.STDERR:
            result = regs[L.REG_A2]
            following += WROTE
        else:
            result = L.EBADF
            failed = 1
    elif number == L.SYS_BRK:
        if sr[HEAP] < a0 <= L.HEAP_LIMIT:
            sr[HEAP] = a0
        result = sr[HEAP]
    elif number == L.SYS_MMAP:
        if a0 != 0:  # a fixed address: all memory exists already
            result = a0
        else:
            size = (a1 + L.PAGE_BYTES - 1) & ~(L.PAGE_BYTES - 1)
            if sr[HEAP] + size > L.HEAP_LIMIT:
                result = L.ENOMEM
                failed = 1
            else:
                result = sr[HEAP]
                sr[HEAP] = sr[HEAP] + size
    else:
        result = L.ENOSYS
        failed = 1
    regs[L.REG_V0] = result
    regs[L.REG_A3] = failed
    return following


@inline
def execute_special(regs, sr, pc, following, insn):
    """Opcode 0: register ALU ops, multiply/divide, jr/jalr, syscall, traps."""
    rs = (insn >> 21) & 31
    rt = (insn >> 16) & 31
    rd = (insn >> 11) & 31
    funct = insn & 63
    result = execute_register_alu(regs, sr, following, funct, rs, rt, rd, (insn >> 6) & 31)
    if result != -2:
        return result
    result = execute_multiply_divide(regs, sr, following, funct, rs, rt)
    if result != -2:
        return result
    if funct == 0x08 or funct == 0x09:  # jr, jalr (read rs before linking: rd may be rs)
        target = regs[rs]
        if funct == 0x09:
            set_register(regs, rd, pc + 8)
        return target
    if funct == 0x0C:
        return execute_syscall(regs, sr, following)
    if funct >= 0x30 and funct <= 0x36:
        return execute_trap(sr, following, trap_condition(funct & 7, regs[rs], regs[rt]))
    return halt(sr, L.EXIT_INVALID_INSTRUCTION)  # break and every unassigned funct


@inline
def execute_regimm(regs, sr, pc, following, insn):
    """Opcode 1: bltz, bgez, bltzal, bgezal and the immediate traps."""
    rs = (insn >> 21) & 31
    rt = (insn >> 16) & 31
    if rt == 0x00 or rt == 0x01 or rt == 0x10 or rt == 0x11:
        value = to_signed32(regs[rs])
        taken = value >= 0 if rt & 1 else value < 0
        if rt & 0x10:  # the link register is written whether or not the branch is taken
            set_register(regs, L.REG_RA, pc + 8)
        return branch_target(pc, insn) if taken else following
    if rt >= 0x08 and rt <= 0x0E:
        return execute_trap(sr, following, trap_condition(rt & 7, regs[rs], sign_extend16(insn) & MASK32))
    return halt(sr, L.EXIT_INVALID_INSTRUCTION)


@inline
def execute_jump(regs, pc, op, insn):
    """j, jal: the target keeps the top 4 bits of the delay slot's address."""
    if op == 0x03:
        set_register(regs, L.REG_RA, pc + 8)
    return ((pc + 4) & 0xF0000000) | ((insn & 0x03FFFFFF) << 2)


@inline
def execute_branch(regs, pc, following, op, insn):
    """beq, bne, blez, bgtz (opcodes 4-7)."""
    a = regs[(insn >> 21) & 31]
    if op == 0x04:
        taken = a == regs[(insn >> 16) & 31]
    elif op == 0x05:
        taken = a != regs[(insn >> 16) & 31]
    elif op == 0x06:
        taken = to_signed32(a) <= 0
    else:
        taken = to_signed32(a) > 0
    return branch_target(pc, insn) if taken else following


@inline
def execute_immediate(regs, sr, following, op, insn):
    """addi, addiu, slti, sltiu, andi, ori, xori, lui (opcodes 8-15)."""
    rt = (insn >> 16) & 31
    a = regs[(insn >> 21) & 31]
    if op == 0x09:  # addiu
        set_register(regs, rt, a + sign_extend16(insn))
    elif op == 0x08:  # addi: trap on signed overflow
        result = to_signed32(a) + sign_extend16(insn)
        if result != to_signed32(result):
            return halt(sr, L.EXIT_TRAP)
        set_register(regs, rt, result)
    elif op == 0x0A:  # slti
        set_register(regs, rt, 1 if to_signed32(a) < sign_extend16(insn) else 0)
    elif op == 0x0B:  # sltiu: the immediate is sign-extended, then compared unsigned
        set_register(regs, rt, 1 if a < (sign_extend16(insn) & MASK32) else 0)
    elif op == 0x0C:  # andi
        set_register(regs, rt, a & (insn & 0xFFFF))
    elif op == 0x0D:  # ori
        set_register(regs, rt, a | (insn & 0xFFFF))
    elif op == 0x0E:  # xori
        set_register(regs, rt, a ^ (insn & 0xFFFF))
    else:  # lui
        set_register(regs, rt, (insn & 0xFFFF) << 16)
    return following


@inline
def execute_load(regs, sr, mem, witness, following, op, insn):
    """lb, lh, lwl, lw, lbu, lhu, lwr, ll. Returns -2 for other opcodes."""
    rt = (insn >> 16) & 31
    address = (regs[(insn >> 21) & 31] + sign_extend16(insn)) & MASK32
    offset = address & 3
    if op == 0x23 or op == 0x30:  # lw, ll
        if offset != 0:
            return halt(sr, L.EXIT_ADDRESS_ERROR)
        set_register(regs, rt, read_data(mem, witness, address))
    elif op == 0x20 or op == 0x24:  # lb, lbu
        byte = (read_data(mem, witness, address & ~3) >> (24 - 8 * offset)) & 0xFF
        set_register(regs, rt, sign_extend8(byte) if op == 0x20 else byte)
    elif op == 0x21 or op == 0x25:  # lh, lhu
        if offset & 1:
            return halt(sr, L.EXIT_ADDRESS_ERROR)
        half = (read_data(mem, witness, address & ~3) >> (16 - 8 * offset)) & 0xFFFF
        set_register(regs, rt, sign_extend16(half) if op == 0x21 else half)
    elif op == 0x22:  # lwl: the word's bytes from `address` on fill rt from the top
        word = read_data(mem, witness, address & ~3)
        shift = 8 * offset
        mask = (MASK32 << shift) & MASK32
        set_register(regs, rt, (regs[rt] & ~mask) | ((word << shift) & mask))
    elif op == 0x26:  # lwr: the word's bytes up to `address` fill rt from the bottom
        word = read_data(mem, witness, address & ~3)
        shift = 8 * (3 - offset)
        mask = MASK32 >> shift
        set_register(regs, rt, (regs[rt] & ~mask) | (word >> shift))
    else:
        return -2
    return following


@inline
def execute_store(regs, sr, mem, witness, following, op, insn):
    """sb, sh, swl, sw, swr, sc; any other opcode halts as an invalid instruction.

    Every store reads and rewrites one aligned word. sc always succeeds (rt = 1):
    the machine has one thread and no interrupts.
    """
    rt = (insn >> 16) & 31
    address = (regs[(insn >> 21) & 31] + sign_extend16(insn)) & MASK32
    offset = address & 3
    value = regs[rt]
    if op == 0x2B or op == 0x38:  # sw, sc
        if offset != 0:
            return halt(sr, L.EXIT_ADDRESS_ERROR)
        mask = MASK32
        shifted = value
    elif op == 0x28:  # sb
        shift = 24 - 8 * offset
        mask = 0xFF << shift
        shifted = (value & 0xFF) << shift
    elif op == 0x29:  # sh
        if offset & 1:
            return halt(sr, L.EXIT_ADDRESS_ERROR)
        shift = 16 - 8 * offset
        mask = 0xFFFF << shift
        shifted = (value & 0xFFFF) << shift
    elif op == 0x2A:  # swl: rt's top bytes go to `address` and up to the word's end
        mask = MASK32 >> (8 * offset)
        shifted = value >> (8 * offset)
    elif op == 0x2E:  # swr: rt's bottom bytes go to the word's start up to `address`
        shift = 8 * (3 - offset)
        mask = (MASK32 << shift) & MASK32
        shifted = (value << shift) & MASK32
    else:
        return halt(sr, L.EXIT_INVALID_INSTRUCTION)
    aligned = address & ~3
    old_word = load_word(mem, aligned)
    write_data(mem, witness, aligned, old_word, (old_word & ~mask) | shifted)
    if op == 0x38:
        set_register(regs, rt, 1)
    return following


# --- One step and the run loop ---------------------------------------------------------


@inline
def execute(regs, sr, mem, witness, pc, next_pc):
    """Execute the instruction at pc (its delay slot is next_pc).

    Returns the address of the instruction after next_pc, possibly + WROTE, or HALT.
    """
    if pc & 3:
        return halt(sr, L.EXIT_ADDRESS_ERROR)
    insn = load_word(mem, pc)
    op = insn >> 26
    following = (next_pc + 4) & MASK32
    if op == 0x00:
        return execute_special(regs, sr, pc, following, insn)
    if op >= 0x08 and op <= 0x0F:
        return execute_immediate(regs, sr, following, op, insn)
    if op >= 0x04 and op <= 0x07:
        return execute_branch(regs, pc, following, op, insn)
    if op >= 0x20:
        result = execute_load(regs, sr, mem, witness, following, op, insn)
        if result != -2:
            return result
        return execute_store(regs, sr, mem, witness, following, op, insn)
    if op == 0x02 or op == 0x03:
        return execute_jump(regs, pc, op, insn)
    if op == 0x01:
        return execute_regimm(regs, sr, pc, following, insn)
    if op == 0x1C:
        return execute_special2(regs, sr, following, insn)
    return halt(sr, L.EXIT_INVALID_INSTRUCTION)


@njit(cache=True, nogil=True, _nrt=False)
def run(regs, sr, mem, witness, max_steps):
    """Execute up to `max_steps` instructions. Returns (STATUS_*, steps executed).

    An exited state does not change. The loop also stops before an instruction when
    the page pool has no free page (one instruction allocates at most one), and after
    a write syscall so the caller can log its bytes.
    """
    if sr[EXITED]:
        return STATUS_EXITED, 0
    meta = mem.meta
    pc = sr[PC]
    next_pc = sr[NEXT_PC]
    executed = 0
    status = STATUS_STEPS_DONE
    while executed < max_steps:
        if meta[N_PAGES] >= meta[CAPACITY]:
            status = STATUS_NEED_PAGES
            break
        following = execute(regs, sr, mem, witness, pc, next_pc)
        executed += 1
        if following == HALT:
            status = STATUS_EXITED
            break
        pc = next_pc
        if following >= WROTE:
            next_pc = following - WROTE
            status = STATUS_WROTE
            break
        next_pc = following
    sr[PC] = pc
    sr[NEXT_PC] = next_pc
    sr[STEP] += executed
    return status, executed
