"""The VM state as plain data, its big-endian encoding and its hash.

Encoding (190 bytes), as the on-chain verifier reads it:

    memRoot   bytes32
    pc        u32
    nextPC    u32
    lo        u32
    hi        u32
    heap      u32
    exitCode  u8
    exited    u8      (0 or 1)
    step      u64
    regs      32 x u32

state hash = keccak256(encoding)
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

from ..errors import BadInput
from .merkle import keccak256

_HEADER = struct.Struct(">32s5I2BQ")
_REGISTERS = struct.Struct(">32I")
STATE_BYTES = _HEADER.size + _REGISTERS.size


class StateDecodeError(BadInput):
    pass


@dataclass(frozen=True)
class State:
    mem_root: bytes
    pc: int
    next_pc: int
    lo: int = 0
    hi: int = 0
    heap: int = 0
    exit_code: int = 0
    exited: bool = False
    step: int = 0
    registers: tuple[int, ...] = field(default=(0,) * 32)

    def encode(self) -> bytes:
        return _HEADER.pack(
            self.mem_root,
            self.pc,
            self.next_pc,
            self.lo,
            self.hi,
            self.heap,
            self.exit_code,
            int(self.exited),
            self.step,
        ) + _REGISTERS.pack(*self.registers)

    @property
    def hash(self) -> bytes:
        return keccak256(self.encode())

    @classmethod
    def decode(cls, data: bytes) -> State:
        if len(data) != STATE_BYTES:
            raise StateDecodeError(f"a state is {STATE_BYTES} bytes, got {len(data)}")
        mem_root, pc, next_pc, lo, hi, heap, exit_code, exited, step = _HEADER.unpack_from(data)
        if exited > 1:
            raise StateDecodeError(f"exited must be 0 or 1, got {exited}")
        registers = _REGISTERS.unpack_from(data, _HEADER.size)
        return cls(mem_root, pc, next_pc, lo, hi, heap, exit_code, bool(exited), step, registers)

    def to_json(self) -> dict:
        return {
            "hash": "0x" + self.hash.hex(),
            "mem_root": "0x" + self.mem_root.hex(),
            "pc": self.pc,
            "next_pc": self.next_pc,
            "lo": self.lo,
            "hi": self.hi,
            "heap": self.heap,
            "exit_code": self.exit_code,
            "exited": self.exited,
            "step": self.step,
            "registers": list(self.registers),
            "encoded": "0x" + self.encode().hex(),
        }
