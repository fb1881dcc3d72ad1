"""Unicorn (QEMU's MIPS core) set up like our VM: the independent peer for
differential tests and benchmarks. Needs the `dev` extra.

Unicorn's MIPS maps kseg0/kseg1 (0x80000000-0xBFFFFFFF) onto low physical memory
and cannot reach kseg2/3, so it cannot host our heap+stack region. Comparisons
therefore relocate the stack and heap into the spare region in *both* machines
(`relocate_stack_and_heap`): two initial register values change; the semantics do
not.
"""

from __future__ import annotations

from unicorn import UC_ARCH_MIPS, UC_HOOK_CODE, UC_HOOK_INTR, UC_MODE_BIG_ENDIAN, UC_MODE_MIPS32, Uc
from unicorn import mips_const as R

from . import layout as L
from . import semantics as S
from .elf import Program
from .machine import Machine, length_prefixed

RELOCATED_HEAP_START = L.SPARE.start
RELOCATED_STACK_TOP = L.SPARE.end - 0x1_0000

GPRS = [getattr(R, f"UC_MIPS_REG_{i}") for i in range(32)]
SYSCALL_WORD = 0x0000000C
# Where a hook sends unicorn to stop it; no program runs code at the region's end.
PARKING_ADDRESS = L.PROGRAM.end - 16


def relocate_stack_and_heap(machine: Machine) -> Machine:
    machine.registers[29] = RELOCATED_STACK_TOP
    machine.special[S.HEAP] = RELOCATED_HEAP_START
    return machine


class UnicornPeer:
    """A unicorn CPU loaded with a program, input and model at our VM's addresses."""

    def __init__(self, program: Program, model: bytes = b"", input: bytes = b""):
        self.uc = uc = Uc(UC_ARCH_MIPS, UC_MODE_MIPS32 + UC_MODE_BIG_ENDIAN)
        for region in (L.PROGRAM, L.INPUT, L.OUTPUT, L.SPARE, L.MODEL):
            uc.mem_map(region.start, region.size)  # host memory is only touched on use
        for segment in program.segments:
            uc.mem_write(segment.address, segment.data)
        uc.mem_write(L.INPUT.start, length_prefixed(input))
        uc.mem_write(L.MODEL.start, length_prefixed(model))
        uc.reg_write(R.UC_MIPS_REG_SP, RELOCATED_STACK_TOP)
        self.heap = RELOCATED_HEAP_START
        self.entry = program.entry
        self.exit_code: int | None = None

    # --- state -----------------------------------------------------------------------

    @property
    def pc(self) -> int:
        return self.uc.reg_read(R.UC_MIPS_REG_PC)

    def registers(self) -> list[int]:
        return [0] + [self.uc.reg_read(r) & 0xFFFFFFFF for r in GPRS[1:]]

    def hi_lo(self) -> tuple[int, int]:
        return self.uc.reg_read(R.UC_MIPS_REG_HI) & 0xFFFFFFFF, self.uc.reg_read(R.UC_MIPS_REG_LO) & 0xFFFFFFFF

    def read(self, address: int, length: int) -> bytes:
        return bytes(self.uc.mem_read(address, length))

    # --- syscalls, implemented from docs/vm-spec.md independently of semantics.py -------

    def syscall(self) -> bool:
        """Perform the syscall at pc. Returns False when it ended the run."""
        uc = self.uc
        number, a0, a1, a2 = (uc.reg_read(GPRS[i]) & 0xFFFFFFFF for i in (2, 4, 5, 6))
        if number in (L.SYS_EXIT, L.SYS_EXIT_GROUP):
            self.exit_code = a0 & 0xFF
            return False
        failed = 0
        if number == L.SYS_WRITE:
            result, failed = (a2, 0) if a0 in (L.STDOUT, L.STDERR) else (L.EBADF, 1)
        elif number == L.SYS_BRK:
            if self.heap < a0 <= L.HEAP_LIMIT:
                self.heap = a0
            result = self.heap
        elif number == L.SYS_MMAP:
            size = -(-a1 // L.PAGE_BYTES) * L.PAGE_BYTES
            if a0:
                result = a0
            elif self.heap + size > L.HEAP_LIMIT:
                result, failed = L.ENOMEM, 1
            else:
                result, self.heap = self.heap, self.heap + size
        else:
            result, failed = L.ENOSYS, 1
        uc.reg_write(GPRS[2], result)
        uc.reg_write(GPRS[7], failed)
        uc.reg_write(R.UC_MIPS_REG_PC, self.pc + 4)
        return True

    # --- running -------------------------------------------------------------------------

    def run_until(self, address: int) -> None:
        """Run without hooks from the current pc until pc reaches `address`."""
        start = self.entry if self.pc == 0 else self.pc
        self.uc.emu_start(start, address)
        # Unicorn syncs its PC register only at block boundaries; having stopped at
        # `until`, the machine is at `address` even if the register lags behind.
        self.uc.reg_write(R.UC_MIPS_REG_PC, address)

    def lockstep(self, on_instruction, start: int | None = None) -> None:
        """Run with a hook before every instruction: on_instruction(peer) -> keep going?

        Syscalls are performed by `syscall`; a trap or fault stops the run.
        """
        uc = self.uc

        def before(uc, address, size, _):
            keep_going = on_instruction(self)
            if keep_going and int.from_bytes(uc.mem_read(address, 4), "big") == SYSCALL_WORD:
                keep_going = self.syscall()
            if not keep_going:
                # Jumping to the `until` address stops unicorn before it executes this
                # instruction (emu_stop would not); pc is put back afterwards.
                stopped_at.append(address)
                uc.reg_write(R.UC_MIPS_REG_PC, PARKING_ADDRESS)

        def interrupt(uc, number, _):
            uc.emu_stop()

        stopped_at: list[int] = []
        code_hook = uc.hook_add(UC_HOOK_CODE, before)
        interrupt_hook = uc.hook_add(UC_HOOK_INTR, interrupt)
        try:
            uc.emu_start(self.entry if start is None else start, PARKING_ADDRESS)
        finally:
            uc.hook_del(code_hook)
            uc.hook_del(interrupt_hook)
        if stopped_at:
            uc.reg_write(R.UC_MIPS_REG_PC, stopped_at[0])
