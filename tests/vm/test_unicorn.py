"""Differential: our VM against unicorn (QEMU's MIPS), instruction by instruction.

Both machines run with the stack and heap relocated into the spare region, which
unicorn can address (see opml/vm/peer.py).
"""

import random

import pytest
from unicorn import UcError

from opml.guest import TEST_PROGRAMS, built, mlp_benchmark_data
from opml.vm import layout as L
from opml.vm import semantics as S
from opml.vm.disasm import FAMILIES, OPCODES, REGIMM, SPECIAL, SPECIAL2
from opml.vm.elf import Program, Segment
from opml.vm.machine import Machine
from opml.vm.peer import GPRS, UnicornPeer, relocate_stack_and_heap

from .asm import NOP, i_type, machine_with, r_type, regimm, special2

MEMORY_CHECK_EVERY = 500


def assert_same_cpu(machine: Machine, peer: UnicornPeer, step: int) -> None:
    ours = [int(r) for r in machine.registers]
    theirs = peer.registers()
    if ours != theirs:
        diff = {i: (hex(a), hex(b)) for i, (a, b) in enumerate(zip(ours, theirs)) if a != b}
        pytest.fail(f"step {step}: registers differ (ours, unicorn): {diff}")
    assert int(machine.special[S.PC]) == peer.pc, f"step {step}: pc"
    assert (int(machine.special[S.HI]), int(machine.special[S.LO])) == peer.hi_lo(), f"step {step}: hi/lo"


def assert_same_memory(machine: Machine, peer: UnicornPeer, step: int) -> None:
    vpages, _ = machine.memory.mapped_pages()
    assert len(vpages) > 0
    for vpage in vpages.tolist():
        address = vpage << L.PAGE_SHIFT
        assert address not in L.HEAP_AND_STACK, "relocated runs stay below 0x80000000"
        assert machine.memory.page_bytes(vpage) == peer.read(address, L.PAGE_BYTES), f"step {step}: page {address:#x}"


def run_lockstep(program: Program, model=b"", input=b"", stop_after: int | None = None):
    """Compare at every instruction; returns (machine, peer, steps compared)."""
    machine = relocate_stack_and_heap(Machine.boot(program, model=model, input=input))
    peer = UnicornPeer(program, model=model, input=input)
    step = 0

    def on_instruction(peer):
        nonlocal step
        assert not machine.exited, f"unicorn went on after our VM exited at step {step}"
        assert_same_cpu(machine, peer, step)
        if step % MEMORY_CHECK_EVERY == 0:
            assert_same_memory(machine, peer, step)
        if stop_after is not None and step >= stop_after and machine.special[S.NEXT_PC] == machine.special[S.PC] + 4:
            return False  # stop outside a delay slot, so unicorn can resume here
        machine.run(1)
        step += 1
        return True

    peer.lockstep(on_instruction)
    return machine, peer, step


@pytest.mark.parametrize("name", [p.name for p in TEST_PROGRAMS])
def test_every_step_of_each_test_program(name):
    program = Program.from_file(built(name))
    machine, peer, steps = run_lockstep(program)
    assert machine.exited, f"unicorn stopped at step {steps} before our VM exited"
    assert machine.step_count == steps
    if peer.exit_code is not None:  # ended by exit: same code, same final registers
        assert peer.exit_code == int(machine.special[S.EXIT_CODE])
        assert_same_cpu(machine, peer, steps)
    else:  # ended by a trap: our VM halted on the instruction unicorn trapped on
        assert int(machine.special[S.EXIT_CODE]) == L.EXIT_TRAP
    assert_same_memory(machine, peer, steps)


def test_mlp_benchmark_program():
    """The float32 MLP: every step of the first 100k, then the final state and memory."""
    program = Program.from_file(built("bench/mlp"))
    model, input, reference = mlp_benchmark_data()
    machine, peer, steps = run_lockstep(program, model, input, stop_after=100_000)
    assert steps >= 100_000
    machine.run(1 << 40)
    assert machine.exited and int(machine.special[S.EXIT_CODE]) == 0
    peer.run_until(int(machine.special[S.PC]))
    assert_same_cpu(machine, peer, machine.step_count)
    assert_same_memory(machine, peer, machine.step_count)
    assert machine.output() == reference  # bit-exact with the numpy float32 reference


# --- random single instructions ------------------------------------------------------------

INTERESTING = [0, 1, 2, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFF, 0xFFFFFFFE, 0x8000, 0xFFFF, 31, 32]
SCRATCH = L.SPARE.start + 0x1000  # mapped in unicorn, ordinary memory in our VM
RANDOM_FAMILIES = ["alu", "shift", "muldiv", "bits", "branch", "load", "store"]
# A lone sc fails on MIPS hardware (no ll before it) but always succeeds in our VM,
# by definition: one thread, no interrupts. ll/sc pairs run in lockstep in memory.c.
CANDIDATES = sorted({name for family in RANDOM_FAMILIES for name in FAMILIES[family]} - {"sc"})
MEMORY_OPS = set(FAMILIES["load"]) | set(FAMILIES["store"])
ENCODERS = [
    ({v: k for k, v in SPECIAL.items()}, lambda code, rs, rt, rd, imm, sa: r_type(code, rs, rt, rd, sa)),
    ({v: k for k, v in SPECIAL2.items()}, lambda code, rs, rt, rd, imm, sa: special2(code, rs, rt, rd)),
    ({v: k for k, v in REGIMM.items()}, lambda code, rs, rt, rd, imm, sa: regimm(code, rs, imm)),
    ({v: k for k, v in OPCODES.items()}, lambda code, rs, rt, rd, imm, sa: i_type(code, rs, rt, imm)),
]


# Fields each instruction uses; the others must be zero in a canonical encoding.
# (Our VM ignores them, unicorn may not: mthi with rd != 0 is a DSP instruction.)
UNUSED_FIELDS = {
    **{name: ("rs",) for name in ("sll", "srl", "sra", "lui")},
    **{name: ("rd", "sa") for name in ("mult", "multu", "div", "divu", "madd", "maddu", "msub", "msubu")},
    "mfhi": ("rs", "rt", "sa"),
    "mflo": ("rs", "rt", "sa"),
    "mthi": ("rt", "rd", "sa"),
    "mtlo": ("rt", "rd", "sa"),
    "blez": ("rt",),
    "bgtz": ("rt",),
}


def random_instruction(rng: random.Random) -> tuple[int, dict[int, int]]:
    """A canonical instruction word of a non-jump family and registers for it;
    memory operations get a base register that points near SCRATCH."""
    name = rng.choice(CANDIDATES)
    rs, rt, rd = rng.randrange(1, 26), rng.randrange(1, 26), rng.randrange(1, 26)
    shift = rng.randrange(32) if name in ("sll", "srl", "sra") else 0
    unused = UNUSED_FIELDS.get(name, ())
    rs, rt, rd = (0 if "rs" in unused else rs), (0 if "rt" in unused else rt), (0 if "rd" in unused else rd)
    if name in ("clz", "clo"):
        rt = rd  # MIPS32 encodes clz/clo with rt == rd
    registers = {r: rng.choice(INTERESTING) if rng.random() < 0.5 else rng.getrandbits(32) for r in range(1, 26)}
    imm = rng.choice([0, 1, 0x7FFF, 0x8000, 0xFFFF, rng.getrandbits(16)])
    if name in MEMORY_OPS:
        imm = rng.randrange(-8, 8) & 0xFFFF
        registers[rs] = (SCRATCH + rng.randrange(0, 64) - ((imm ^ 0x8000) - 0x8000)) & 0xFFFFFFFF
    for codes, encode in ENCODERS:
        if name in codes:
            return encode(codes[name], rs, rt, rd, imm, shift), registers
    raise AssertionError(name)


def test_random_instructions_match_unicorn():
    rng = random.Random(2024)
    scratch = bytes(rng.getrandbits(8) for _ in range(256))
    compared = 0
    for case in range(2000):
        word, registers = random_instruction(rng)
        address = 0x0010_0000 + 16 * case  # fresh code for unicorn's translation cache
        machine = relocate_stack_and_heap(
            machine_with([word, NOP], registers, memory={SCRATCH - 64: scratch}, base=address)
        )
        code = word.to_bytes(4, "big") + NOP.to_bytes(4, "big")
        peer = UnicornPeer(Program(address, (Segment(address, code, len(code)),), b""))
        peer.uc.mem_write(SCRATCH - 64, scratch)
        for index, value in registers.items():
            peer.uc.reg_write(GPRS[index], value)
        hooked = []
        try:
            peer.lockstep(lambda peer: hooked.append(peer.pc) or len(hooked) <= 2, start=address)
            unicorn_faulted = len(hooked) < 3
        except UcError:  # unicorn reports address errors as emulation errors
            unicorn_faulted = True
        machine.run(2)  # the instruction and its (nop) delay slot
        assert machine.exited == unicorn_faulted, f"{word:#010x} with {registers}"
        if not machine.exited:
            compared += 1
            assert_same_cpu(machine, peer, case)
            assert machine.memory.read(SCRATCH - 64, 256) == peer.read(SCRATCH - 64, 256), f"{word:#010x}"
    assert compared > 1500
