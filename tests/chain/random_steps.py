"""Random VM states and their step witnesses, for the Python-vs-Solidity differential."""

from __future__ import annotations

import random

import numpy as np

from opml.vm import layout as L
from opml.vm import semantics as S
from opml.vm.disasm import OPCODES, REGIMM, SPECIAL, SPECIAL2
from opml.vm.machine import Machine, StepWitness
from opml.vm.memory import PagedMemory

INTERESTING = [0, 1, 2, 3, 4, 31, 32, 0x7FFF, 0x8000, 0xFFFF, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFE, 0xFFFFFFFF]
SYSCALL_NUMBERS = [L.SYS_EXIT, L.SYS_WRITE, L.SYS_BRK, L.SYS_MMAP, L.SYS_EXIT_GROUP, 4020, 0]
U32 = (1 << 32) - 1
SYSCALL = 0x0000000C


def value(rng: random.Random) -> int:
    return rng.choice(INTERESTING) if rng.random() < 0.4 else rng.getrandbits(32)


def instruction(rng: random.Random) -> int:
    """Half uniformly random words; half a known instruction with random (even non-canonical) fields."""
    if rng.random() < 0.5:
        return rng.getrandbits(32)
    fields = rng.getrandbits(26)
    kind = rng.choice(["special", "special", "regimm", "special2", "opcode", "opcode", "opcode"])
    if kind == "special":
        return (fields & ~63) | rng.choice(list(SPECIAL))
    if kind == "regimm":
        return (1 << 26) | (fields & ~(31 << 16)) | (rng.choice(list(REGIMM)) << 16)
    if kind == "special2":
        return (0x1C << 26) | (fields & ~63) | rng.choice(list(SPECIAL2))
    return (rng.choice(list(OPCODES)) << 26) | fields


def random_witness(rng: random.Random) -> StepWitness:
    """A machine in a random state, stepped once with its witness."""
    registers = np.array([0] + [value(rng) for _ in range(31)], dtype=np.int64)
    special = np.zeros(S.SPECIAL_REGISTER_COUNT, dtype=np.int64)
    pc = rng.getrandbits(32) & ~3
    if rng.random() < 0.03:
        pc |= rng.randrange(1, 4)  # unaligned: an address error before any fetch
    special[S.PC] = pc
    special[S.NEXT_PC] = (pc + 4) & U32 if rng.random() < 0.8 else rng.getrandbits(32)
    special[S.LO], special[S.HI] = value(rng), value(rng)
    special[S.HEAP] = rng.choice([L.HEAP_START, L.HEAP_LIMIT - 4096, rng.getrandbits(32)])
    special[S.STEP] = rng.getrandbits(40)
    if rng.random() < 0.05:
        special[S.EXITED], special[S.EXIT_CODE] = 1, rng.getrandbits(8)
    memory = PagedMemory(capacity=8)
    word = instruction(rng)
    if rng.random() < 0.1:
        word = SYSCALL
        registers[2] = rng.choice(SYSCALL_NUMBERS)
    memory.write(pc & ~3, word.to_bytes(4, "big"))
    if word >> 26 >= 0x20 and rng.random() < 0.7:
        # point the base register near the instruction or at random data
        base = (word >> 21) & 31
        offset = ((word & 0xFFFF) ^ 0x8000) - 0x8000
        target = (pc + rng.randrange(-64, 64)) & U32 if rng.random() < 0.3 else rng.getrandbits(32)
        if base:
            registers[base] = (target - offset) & U32
        memory.write(target & ~31, rng.randbytes(min(32, (1 << 32) - (target & ~31))))
    machine = Machine(memory, registers, special)
    return machine.step_with_witness()
