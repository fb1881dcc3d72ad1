"""Hand encoding of MIPS instruction words for the VM's unit tests."""

import struct

from opml.vm import semantics as S
from opml.vm.elf import Program, Segment
from opml.vm.machine import Machine

CODE_BASE = 0x1000


def r_type(funct: int, rs: int = 0, rt: int = 0, rd: int = 0, shamt: int = 0, op: int = 0) -> int:
    return (op << 26) | (rs << 21) | (rt << 16) | (rd << 11) | (shamt << 6) | funct


def i_type(op: int, rs: int = 0, rt: int = 0, imm: int = 0) -> int:
    return (op << 26) | (rs << 21) | (rt << 16) | (imm & 0xFFFF)


def j_type(op: int, target: int) -> int:
    return (op << 26) | ((target >> 2) & 0x03FFFFFF)


def special2(funct: int, rs: int = 0, rt: int = 0, rd: int = 0) -> int:
    return r_type(funct, rs, rt, rd, op=0x1C)


def regimm(rt: int, rs: int = 0, imm: int = 0) -> int:
    return i_type(0x01, rs, rt, imm)


NOP = 0
SYSCALL = r_type(0x0C)


def machine_with(words, registers=None, lo=0, hi=0, memory=None, base=CODE_BASE) -> Machine:
    """A machine whose program is `words` at `base`, with registers and memory preset."""
    code = struct.pack(f">{len(words)}I", *words)
    machine = Machine.boot(Program(base, (Segment(base, code, len(code)),), b""))
    for index, value in (registers or {}).items():
        machine.registers[index] = value & 0xFFFFFFFF
    machine.special[S.LO] = lo
    machine.special[S.HI] = hi
    for address, data in (memory or {}).items():
        machine.memory.write(address, data)
    return machine


def execute(words, steps=1, **setup) -> Machine:
    machine = machine_with(words, **setup)
    machine.run(steps)
    return machine


def reg(machine: Machine, index: int) -> int:
    return int(machine.registers[index])


def special(machine: Machine, slot: int) -> int:
    return int(machine.special[slot])
