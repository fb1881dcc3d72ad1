"""Instruction names, for traces and for checking which instructions a program uses.

This mirrors the decoding in `semantics` but never executes anything: a word the VM
treats as invalid is named "invalid".
"""

from __future__ import annotations

SPECIAL = {
    0x00: "sll", 0x02: "srl", 0x03: "sra", 0x04: "sllv", 0x06: "srlv", 0x07: "srav",
    0x08: "jr", 0x09: "jalr", 0x0A: "movz", 0x0B: "movn", 0x0C: "syscall", 0x0F: "sync",
    0x10: "mfhi", 0x11: "mthi", 0x12: "mflo", 0x13: "mtlo",
    0x18: "mult", 0x19: "multu", 0x1A: "div", 0x1B: "divu",
    0x20: "add", 0x21: "addu", 0x22: "sub", 0x23: "subu",
    0x24: "and", 0x25: "or", 0x26: "xor", 0x27: "nor", 0x2A: "slt", 0x2B: "sltu",
    0x30: "tge", 0x31: "tgeu", 0x32: "tlt", 0x33: "tltu", 0x34: "teq", 0x36: "tne",
}  # fmt: skip
REGIMM = {
    0x00: "bltz", 0x01: "bgez", 0x10: "bltzal", 0x11: "bgezal",
    0x08: "tgei", 0x09: "tgeiu", 0x0A: "tlti", 0x0B: "tltiu", 0x0C: "teqi", 0x0E: "tnei",
}  # fmt: skip
SPECIAL2 = {0x00: "madd", 0x01: "maddu", 0x02: "mul", 0x04: "msub", 0x05: "msubu", 0x20: "clz", 0x21: "clo"}
OPCODES = {
    0x02: "j", 0x03: "jal", 0x04: "beq", 0x05: "bne", 0x06: "blez", 0x07: "bgtz",
    0x08: "addi", 0x09: "addiu", 0x0A: "slti", 0x0B: "sltiu", 0x0C: "andi", 0x0D: "ori",
    0x0E: "xori", 0x0F: "lui",
    0x20: "lb", 0x21: "lh", 0x22: "lwl", 0x23: "lw", 0x24: "lbu", 0x25: "lhu", 0x26: "lwr",
    0x28: "sb", 0x29: "sh", 0x2A: "swl", 0x2B: "sw", 0x2E: "swr", 0x30: "ll", 0x38: "sc",
}  # fmt: skip

# Every name the VM executes, grouped as docs/vm-spec.md groups them.
FAMILIES = {
    "alu": ["addu", "subu", "add", "sub", "and", "or", "xor", "nor", "slt", "sltu",
            "addiu", "addi", "slti", "sltiu", "andi", "ori", "xori", "lui"],
    "shift": ["sll", "srl", "sra", "sllv", "srlv", "srav"],
    "muldiv": ["mult", "multu", "div", "divu", "mfhi", "mthi", "mflo", "mtlo",
               "mul", "madd", "maddu", "msub", "msubu"],
    "bits": ["clz", "clo", "movz", "movn"],
    "branch": ["beq", "bne", "blez", "bgtz", "bltz", "bgez", "bltzal", "bgezal"],
    "jump": ["j", "jal", "jr", "jalr"],
    "load": ["lb", "lbu", "lh", "lhu", "lw", "lwl", "lwr", "ll"],
    "store": ["sb", "sh", "sw", "swl", "swr", "sc"],
    "system": ["syscall", "sync", "teq"],
}  # fmt: skip


def mnemonic(insn: int) -> str:
    op = insn >> 26
    if op == 0x00:
        return SPECIAL.get(insn & 63, "invalid")
    if op == 0x01:
        return REGIMM.get((insn >> 16) & 31, "invalid")
    if op == 0x1C:
        return SPECIAL2.get(insn & 63, "invalid")
    return OPCODES.get(op, "invalid")


# ABI names of the 32 registers, as a disassembly shows them.
REGISTER_NAMES = (
    "zero", "at", "v0", "v1", "a0", "a1", "a2", "a3", "t0", "t1", "t2", "t3", "t4", "t5", "t6", "t7",
    "s0", "s1", "s2", "s3", "s4", "s5", "s6", "s7", "t8", "t9", "k0", "k1", "gp", "sp", "fp", "ra",
)  # fmt: skip

_SHIFTS = {"sll", "srl", "sra"}
_VARIABLE_SHIFTS = {"sllv", "srlv", "srav"}
_HI_LO_READS, _HI_LO_WRITES = {"mfhi", "mflo"}, {"mthi", "mtlo"}
_PAIRS = {"mult", "multu", "div", "divu", "madd", "maddu", "msub", "msubu", "tge", "tgeu", "tlt", "tltu", "teq", "tne"}
_LOGICAL_IMMEDIATES = {"andi", "ori", "xori"}
_MEMORY = set(FAMILIES["load"]) | set(FAMILIES["store"])


def disassemble(insn: int, pc: int) -> str:
    """One instruction word as assembly text (`addiu $sp, $sp, -32`), branch and jump targets as addresses
    computed from `pc`, the address the word is at. For people reading a dispute's last step; the VM itself
    decodes in `semantics`."""
    name = mnemonic(insn)
    if name == "invalid":
        return f"invalid instruction 0x{insn:08x}"
    rs, rt, rd = (f"${REGISTER_NAMES[(insn >> shift) & 31]}" for shift in (21, 16, 11))
    shamt, unsigned = (insn >> 6) & 31, insn & 0xFFFF
    signed = unsigned - 0x10000 if unsigned & 0x8000 else unsigned
    branch_target = f"0x{(pc + 4 + (signed << 2)) & 0xFFFFFFFF:08x}"
    op = insn >> 26
    if insn == 0:
        return "nop"
    if name in ("syscall", "sync"):
        return name
    if name in ("j", "jal"):
        return f"{name} 0x{((pc + 4) & 0xF0000000) | ((insn & 0x03FFFFFF) << 2):08x}"
    if op == 0x01:  # REGIMM: branches on rs against zero, and traps against an immediate
        return f"{name} {rs}, {branch_target}" if name.startswith("b") else f"{name} {rs}, {signed}"
    if name in _SHIFTS:
        return f"{name} {rd}, {rt}, {shamt}"
    if name in _VARIABLE_SHIFTS:
        return f"{name} {rd}, {rt}, {rs}"
    if name == "jr":
        return f"jr {rs}"
    if name == "jalr":
        return f"jalr {rd}, {rs}"
    if name in _HI_LO_READS:
        return f"{name} {rd}"
    if name in _HI_LO_WRITES:
        return f"{name} {rs}"
    if name in _PAIRS:
        return f"{name} {rs}, {rt}"
    if name in ("clz", "clo"):
        return f"{name} {rd}, {rs}"
    if op in (0x00, 0x1C):  # the rest of SPECIAL and SPECIAL2: three registers
        return f"{name} {rd}, {rs}, {rt}"
    if name in ("beq", "bne"):
        return f"{name} {rs}, {rt}, {branch_target}"
    if name in ("blez", "bgtz"):
        return f"{name} {rs}, {branch_target}"
    if name == "lui":
        return f"lui {rt}, 0x{unsigned:04x}"
    if name in _LOGICAL_IMMEDIATES:
        return f"{name} {rt}, {rs}, 0x{unsigned:04x}"
    if name in _MEMORY:
        return f"{name} {rt}, {signed}({rs})"
    return f"{name} {rt}, {rs}, {signed}"  # addi, addiu, slti, sltiu
