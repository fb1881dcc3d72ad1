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
