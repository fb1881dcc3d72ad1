"""One instruction at a time, from hand-encoded words: results, edge cases, faults."""

import pytest

from opml.vm import layout as L
from opml.vm import semantics as S

from .asm import CODE_BASE, NOP, SYSCALL, execute, i_type, j_type, machine_with, r_type, reg, regimm, special, special2

T0, T1, T2, T3 = 8, 9, 10, 11
RA = 31
MAX = 0xFFFFFFFF
INT_MIN = 0x80000000


# (name, instruction word, registers before, expected t2)
REGISTER_RESULTS = [
    ("addu wraps", r_type(0x21, T0, T1, T2), {T0: MAX, T1: 2}, 1),
    ("subu wraps", r_type(0x23, T0, T1, T2), {T0: 1, T1: 2}, MAX),
    ("add", r_type(0x20, T0, T1, T2), {T0: 5, T1: MAX}, 4),
    ("sub", r_type(0x22, T0, T1, T2), {T0: 5, T1: 7}, 0xFFFFFFFE),
    ("and", r_type(0x24, T0, T1, T2), {T0: 0xF0F0, T1: 0xFF00}, 0xF000),
    ("or", r_type(0x25, T0, T1, T2), {T0: 0xF0F0, T1: 0xFF00}, 0xFFF0),
    ("xor", r_type(0x26, T0, T1, T2), {T0: 0xF0F0, T1: 0xFF00}, 0x0FF0),
    ("nor", r_type(0x27, T0, T1, T2), {T0: 0xF0F0, T1: 0xFF00}, 0xFFFF000F),
    ("slt signed", r_type(0x2A, T0, T1, T2), {T0: MAX, T1: 0}, 1),
    ("sltu unsigned", r_type(0x2B, T0, T1, T2), {T0: MAX, T1: 0}, 0),
    ("sll", r_type(0x00, 0, T0, T2, 4), {T0: 0x8000000F}, 0xF0),
    ("srl", r_type(0x02, 0, T0, T2, 4), {T0: 0x8000000F}, 0x08000000),
    ("sra", r_type(0x03, 0, T0, T2, 4), {T0: 0x8000000F}, 0xF8000000),
    ("sra 31", r_type(0x03, 0, T0, T2, 31), {T0: INT_MIN}, MAX),
    ("sllv uses low 5 bits", r_type(0x04, T1, T0, T2), {T0: 1, T1: 33}, 2),
    ("srlv", r_type(0x06, T1, T0, T2), {T0: INT_MIN, T1: 31}, 1),
    ("srav", r_type(0x07, T1, T0, T2), {T0: INT_MIN, T1: 4}, 0xF8000000),
    ("movz taken", r_type(0x0A, T0, T1, T2), {T0: 7, T1: 0, T2: 9}, 7),
    ("movz not taken", r_type(0x0A, T0, T1, T2), {T0: 7, T1: 1, T2: 9}, 9),
    ("movn taken", r_type(0x0B, T0, T1, T2), {T0: 7, T1: 1, T2: 9}, 7),
    ("movn not taken", r_type(0x0B, T0, T1, T2), {T0: 7, T1: 0, T2: 9}, 9),
    ("addiu negative", i_type(0x09, T0, T2, -1), {T0: 0}, MAX),
    ("addi", i_type(0x08, T0, T2, -3), {T0: 2}, MAX),
    ("slti", i_type(0x0A, T0, T2, -1), {T0: INT_MIN}, 1),
    ("sltiu sign-extends then compares unsigned", i_type(0x0B, T0, T2, -1), {T0: 0xFFFFFFFE}, 1),
    ("andi zero-extends", i_type(0x0C, T0, T2, 0xFFFF), {T0: MAX}, 0xFFFF),
    ("ori", i_type(0x0D, T0, T2, 0x8001), {T0: 0x10000}, 0x18001),
    ("xori", i_type(0x0E, T0, T2, 0xFFFF), {T0: 0xF0F0}, 0x0F0F),
    ("lui", i_type(0x0F, 0, T2, 0xBEEF), {}, 0xBEEF0000),
    ("mul low word, signed", special2(0x02, T0, T1, T2), {T0: MAX, T1: 3}, 0xFFFFFFFD),
    ("clz", special2(0x20, T0, 0, T2), {T0: 0x00010000}, 15),
    ("clz zero", special2(0x20, T0, 0, T2), {T0: 0}, 32),
    ("clo", special2(0x21, T0, 0, T2), {T0: 0xFFF00000}, 12),
    ("clo all ones", special2(0x21, T0, 0, T2), {T0: MAX}, 32),
]


@pytest.mark.parametrize("name,word,registers,expected", REGISTER_RESULTS, ids=[c[0] for c in REGISTER_RESULTS])
def test_register_result(name, word, registers, expected):
    machine = execute([word], registers=registers)
    assert reg(machine, T2) == expected
    assert not machine.exited
    assert special(machine, S.PC) == CODE_BASE + 4
    assert special(machine, S.NEXT_PC) == CODE_BASE + 8
    assert machine.step_count == 1


def test_register_zero_is_never_written():
    machine = execute([i_type(0x09, 0, 0, 5), r_type(0x21, 0, 0, 0)], steps=2)
    assert reg(machine, 0) == 0


# (name, word, registers, lo/hi before, expected lo, expected hi)
HI_LO = [
    ("mult", r_type(0x18, T0, T1), {T0: MAX, T1: 2}, (0, 0), 0xFFFFFFFE, MAX),
    ("multu", r_type(0x19, T0, T1), {T0: MAX, T1: MAX}, (0, 0), 1, 0xFFFFFFFE),
    ("div truncates", r_type(0x1A, T0, T1), {T0: (-7) & MAX, T1: 2}, (0, 0), (-3) & MAX, (-1) & MAX),
    ("div by zero divides by one", r_type(0x1A, T0, T1), {T0: 1234, T1: 0}, (5, 6), 1234, 0),
    ("div INT_MIN by -1", r_type(0x1A, T0, T1), {T0: INT_MIN, T1: MAX}, (0, 0), INT_MIN, 0),
    ("divu", r_type(0x1B, T0, T1), {T0: MAX, T1: 10}, (0, 0), 429496729, 5),
    ("divu by zero divides by one", r_type(0x1B, T0, T1), {T0: MAX, T1: 0}, (0, 0), MAX, 0),
    ("madd", special2(0x00, T0, T1), {T0: MAX, T1: 1}, (0, 0), MAX, MAX),
    ("maddu carries into hi", special2(0x01, T0, T1), {T0: MAX, T1: 1}, (1, 0), 0, 1),
    ("msub", special2(0x04, T0, T1), {T0: 2, T1: 3}, (0, 0), (-6) & MAX, MAX),
    ("msubu borrows", special2(0x05, T0, T1), {T0: 1, T1: 1}, (0, 1), MAX, 0),
    ("mthi", r_type(0x11, T0), {T0: 42}, (1, 2), 1, 42),
    ("mtlo", r_type(0x13, T0), {T0: 42}, (1, 2), 42, 2),
]


@pytest.mark.parametrize("name,word,registers,before,lo,hi", HI_LO, ids=[c[0] for c in HI_LO])
def test_hi_lo(name, word, registers, before, lo, hi):
    machine = execute([word], registers=registers, lo=before[0], hi=before[1])
    assert (special(machine, S.LO), special(machine, S.HI)) == (lo, hi)


def test_mfhi_mflo():
    machine = execute([r_type(0x10, rd=T0), r_type(0x12, rd=T1)], steps=2, lo=11, hi=22)
    assert (reg(machine, T0), reg(machine, T1)) == (22, 11)


MEMORY = {0x2000: bytes([0x81, 0x02, 0x83, 0x04, 0x05, 0x86, 0x07, 0x08])}
LOADS = [
    ("lb sign-extends", i_type(0x20, T0, T2, 0), 0xFFFFFF81),
    ("lbu", i_type(0x24, T0, T2, 2), 0x83),
    ("lh", i_type(0x21, T0, T2, 0), 0xFFFF8102),
    ("lhu", i_type(0x25, T0, T2, 4), 0x0586),
    ("lw", i_type(0x23, T0, T2, 4), 0x05860708),
    ("ll", i_type(0x30, T0, T2, 0), 0x81028304),
    ("lw negative offset", i_type(0x23, T1, T2, -4), 0x81028304),
    ("lwl offset 1", i_type(0x22, T0, T2, 1), 0x028304EE),
    ("lwl offset 3", i_type(0x22, T0, T2, 3), 0x04EEEEEE),
    ("lwr offset 0", i_type(0x26, T0, T2, 0), 0xEEEEEE81),
    ("lwr offset 2", i_type(0x26, T0, T2, 2), 0xEE810283),
    ("lwr offset 3", i_type(0x26, T0, T2, 3), 0x81028304),
]


@pytest.mark.parametrize("name,word,expected", LOADS, ids=[c[0] for c in LOADS])
def test_load(name, word, expected):
    machine = execute([word], registers={T0: 0x2000, T1: 0x2004, T2: 0xEEEEEEEE}, memory=MEMORY)
    assert reg(machine, T2) == expected
    base = {T0: 0x2000, T1: 0x2004}[(word >> 21) & 31]
    offset = ((word & 0xFFFF) ^ 0x8000) - 0x8000
    assert machine.witness[S.ACCESS_ADDRESS] == (base + offset) & ~3
    assert machine.witness[S.ACCESS_IS_WRITE] == 0


STORES = [
    ("sb", i_type(0x28, T0, T1, 1), 0x11AA3344),
    ("sh", i_type(0x29, T0, T1, 2), 0x1122BBAA),
    ("sw", i_type(0x2B, T0, T1, 0), 0xDDCCBBAA),
    ("sc", i_type(0x38, T0, T1, 0), 0xDDCCBBAA),
    ("swl offset 1", i_type(0x2A, T0, T1, 1), 0x11DDCCBB),
    ("swl offset 3", i_type(0x2A, T0, T1, 3), 0x112233DD),
    ("swr offset 0", i_type(0x2E, T0, T1, 0), 0xAA223344),
    ("swr offset 2", i_type(0x2E, T0, T1, 2), 0xCCBBAA44),
]


@pytest.mark.parametrize("name,word,expected", STORES, ids=[c[0] for c in STORES])
def test_store(name, word, expected):
    machine = execute([word], registers={T0: 0x2000, T1: 0xDDCCBBAA}, memory={0x2000: bytes.fromhex("11223344")})
    assert machine.memory.read_u32(0x2000) == expected
    assert machine.witness[S.ACCESS_ADDRESS] == 0x2000
    assert machine.witness[S.ACCESS_OLD_WORD] == 0x11223344
    assert machine.witness[S.ACCESS_IS_WRITE] == 1
    assert reg(machine, T1) == (1 if name == "sc" else 0xDDCCBBAA)


def test_store_to_unwritten_memory_and_high_addresses():
    machine = execute([i_type(0x2B, T0, T1, -4)], registers={T0: 0, T1: 0x12345678})
    assert machine.memory.read_u32(0xFFFFFFFC) == 0x12345678


@pytest.mark.parametrize(
    "word,registers",
    [
        (i_type(0x23, T0, T2, 2), {T0: 0x2000}),  # lw unaligned
        (i_type(0x30, T0, T2, 1), {T0: 0x2000}),  # ll unaligned
        (i_type(0x21, T0, T2, 1), {T0: 0x2000}),  # lh odd
        (i_type(0x25, T0, T2, 3), {T0: 0x2000}),  # lhu odd
        (i_type(0x2B, T0, T1, 2), {T0: 0x2000}),  # sw unaligned
        (i_type(0x38, T0, T1, 2), {T0: 0x2000}),  # sc unaligned
        (i_type(0x29, T0, T1, 1), {T0: 0x2000}),  # sh odd
    ],
)
def test_misaligned_access_is_an_address_error(word, registers):
    machine = execute([word], registers=registers, memory={0x2000: bytes(8)})
    assert machine.exited
    assert special(machine, S.EXIT_CODE) == L.EXIT_ADDRESS_ERROR
    assert special(machine, S.PC) == CODE_BASE  # pc stays at the faulting instruction
    assert machine.memory.read(0x2000, 8) == bytes(8)


@pytest.mark.parametrize(
    "word,registers",
    [
        (r_type(0x20, T0, T1, T2), {T0: 0x7FFFFFFF, T1: 1}),  # add overflow
        (r_type(0x20, T0, T1, T2), {T0: INT_MIN, T1: MAX}),  # add negative overflow
        (r_type(0x22, T0, T1, T2), {T0: INT_MIN, T1: 1}),  # sub overflow
        (i_type(0x08, T0, T2, 1), {T0: 0x7FFFFFFF}),  # addi overflow
        (r_type(0x34, T0, T1), {T0: 3, T1: 3}),  # teq
        (r_type(0x36, T0, T1), {T0: 3, T1: 4}),  # tne
        (r_type(0x30, T0, T1), {T0: 5, T1: MAX}),  # tge signed
        (r_type(0x31, T0, T1), {T0: MAX, T1: 5}),  # tgeu
        (r_type(0x32, T0, T1), {T0: MAX, T1: 0}),  # tlt
        (r_type(0x33, T0, T1), {T0: 0, T1: 1}),  # tltu
        (regimm(0x0C, T0, 7), {T0: 7}),  # teqi
        (regimm(0x0E, T0, 7), {T0: 8}),  # tnei
        (regimm(0x08, T0, -1), {T0: 0}),  # tgei
        (regimm(0x09, T0, -1), {T0: MAX}),  # tgeiu: immediate sign-extended, compared unsigned
        (regimm(0x0A, T0, 0), {T0: MAX}),  # tlti
        (regimm(0x0B, T0, -1), {T0: 0}),  # tltiu
    ],
)
def test_traps_and_overflow_halt_with_the_trap_code(word, registers):
    machine = execute([word], registers={T2: 99, **registers})
    assert machine.exited
    assert special(machine, S.EXIT_CODE) == L.EXIT_TRAP
    assert reg(machine, T2) == 99  # the destination is not written


@pytest.mark.parametrize(
    "word,registers",
    [(r_type(0x34, T0, T1), {T0: 3, T1: 4}), (regimm(0x0A, T0, 0), {T0: 1}), (r_type(0x31, T0, T1), {T0: 0, T1: 1})],
)
def test_traps_not_taken_continue(word, registers):
    machine = execute([word], registers=registers)
    assert not machine.exited
    assert special(machine, S.PC) == CODE_BASE + 4


@pytest.mark.parametrize(
    "word",
    [
        r_type(0x0D),  # break
        r_type(0x01),  # unassigned SPECIAL funct
        r_type(0x35),  # unused trap encoding
        regimm(0x0D),  # unused immediate trap encoding
        regimm(0x02),  # bltzl (branch-likely is not supported)
        special2(0x03),  # unassigned SPECIAL2 funct
        0x44000000,  # COP1 (no FPU)
        0x40000000,  # COP0
        0x7C000000,  # SPECIAL3 (MIPS32r2)
        i_type(0x14),  # beql
        i_type(0x2F),  # cache
        i_type(0x31),  # lwc1
        0xFFFFFFFF,
    ],
)
def test_invalid_instructions_halt(word):
    machine = execute([word], registers={T0: 5})
    assert machine.exited
    assert special(machine, S.EXIT_CODE) == L.EXIT_INVALID_INSTRUCTION
    assert machine.step_count == 1
    assert special(machine, S.PC) == CODE_BASE


def test_unaligned_pc_is_an_address_error():
    machine = execute([r_type(0x08, T0), NOP], steps=3, registers={T0: CODE_BASE + 2})
    assert machine.exited
    assert special(machine, S.EXIT_CODE) == L.EXIT_ADDRESS_ERROR
    assert special(machine, S.PC) == CODE_BASE + 2
    assert machine.step_count == 3


# --- control flow and delay slots -------------------------------------------------------

ADD_T3 = i_type(0x09, T3, T3, 1)  # t3 += 1: marks that an instruction ran


def run_branch(word, registers, steps=3):
    """Branch at CODE_BASE, delay slot, fall-through, then the target at CODE_BASE + 16."""
    words = [word, ADD_T3, i_type(0x09, T3, T3, 10), NOP, i_type(0x09, T3, T3, 100)]
    return execute(words, steps=steps, registers={T3: 0, **registers})


@pytest.mark.parametrize(
    "word,registers,taken",
    [
        (i_type(0x04, T0, T1, 3), {T0: 5, T1: 5}, True),  # beq
        (i_type(0x04, T0, T1, 3), {T0: 5, T1: 6}, False),
        (i_type(0x05, T0, T1, 3), {T0: 5, T1: 6}, True),  # bne
        (i_type(0x05, T0, T1, 3), {T0: 5, T1: 5}, False),
        (i_type(0x06, T0, 0, 3), {T0: 0}, True),  # blez
        (i_type(0x06, T0, 0, 3), {T0: 1}, False),
        (i_type(0x07, T0, 0, 3), {T0: 1}, True),  # bgtz
        (i_type(0x07, T0, 0, 3), {T0: MAX}, False),
        (regimm(0x00, T0, 3), {T0: MAX}, True),  # bltz
        (regimm(0x00, T0, 3), {T0: 0}, False),
        (regimm(0x01, T0, 3), {T0: 0}, True),  # bgez
        (regimm(0x01, T0, 3), {T0: INT_MIN}, False),
    ],
)
def test_branches_run_their_delay_slot(word, registers, taken):
    machine = run_branch(word, registers)
    # delay slot always (+1); then the target (+100) or the fall-through (+10)
    assert reg(machine, T3) == (101 if taken else 11)


@pytest.mark.parametrize("rt,value,taken", [(0x10, MAX, True), (0x10, 1, False), (0x11, 0, True), (0x11, MAX, False)])
def test_branch_and_link_always_links(rt, value, taken):
    machine = run_branch(regimm(rt, T0, 3), {T0: value, RA: 7})
    assert reg(machine, RA) == CODE_BASE + 8
    assert reg(machine, T3) == (101 if taken else 11)


def test_branch_target_is_relative_to_the_delay_slot_and_can_go_backwards():
    words = [NOP, NOP, ADD_T3, i_type(0x04, 0, 0, -2), NOP]  # beq $0,$0 back to the ADD
    machine = execute(words, steps=2 + 3 * 3, registers={T3: 0})
    assert reg(machine, T3) == 3
    assert special(machine, S.PC) == CODE_BASE + 8  # back at the ADD for a fourth time


def test_jal_and_jr_return():
    function = CODE_BASE + 0x20
    words = [j_type(0x03, function), ADD_T3, i_type(0x09, T3, T3, 10), NOP] + [NOP] * 4
    words += [r_type(0x08, RA), i_type(0x09, T3, T3, 100)]
    machine = execute(words, steps=5, registers={T3: 0})
    assert reg(machine, RA) == CODE_BASE + 8
    assert reg(machine, T3) == 111
    assert special(machine, S.PC) == CODE_BASE + 12


def test_j_keeps_the_top_bits_of_the_delay_slot():
    machine = machine_with([NOP])
    machine.memory.write(0x1FFFFFFC, bytes.fromhex("0bffffff"))  # j 0x0ffffffc region-relative
    machine.special[S.PC] = 0x1FFFFFFC
    machine.special[S.NEXT_PC] = 0x20000000
    machine.run(1)
    assert special(machine, S.NEXT_PC) == 0x2FFFFFFC


def test_jalr_reads_the_target_before_linking_into_the_same_register():
    words = [r_type(0x09, T0, 0, T0), NOP]
    machine = execute(words, steps=1, registers={T0: 0x4000})
    assert special(machine, S.NEXT_PC) == 0x4000
    assert reg(machine, T0) == CODE_BASE + 8


def test_branch_in_a_delay_slot_follows_the_pair_model():
    # beq at 0 -> target A; its delay slot is a j to B. Then A runs once, then B.
    a, b = CODE_BASE + 0x40, CODE_BASE + 0x80
    words = [i_type(0x04, 0, 0, (a - CODE_BASE - 4) >> 2), j_type(0x02, b)] + [NOP] * 14
    words += [ADD_T3] + [NOP] * 15 + [i_type(0x09, T3, T3, 10)]
    machine = execute(words, steps=4, registers={T3: 0})
    assert reg(machine, T3) == 11


# --- syscalls --------------------------------------------------------------------------


def syscall(number, a0=0, a1=0, a2=0, heap=None):
    machine = machine_with([SYSCALL, NOP], registers={2: number, 4: a0, 5: a1, 6: a2, 7: 55})
    if heap is not None:
        machine.special[S.HEAP] = heap
    machine.run(1)
    return machine


@pytest.mark.parametrize("number", [L.SYS_EXIT, L.SYS_EXIT_GROUP])
def test_exit_keeps_the_low_byte(number):
    machine = syscall(number, a0=0x1FF)
    assert machine.exited and special(machine, S.EXIT_CODE) == 0xFF
    assert special(machine, S.PC) == CODE_BASE


def test_write_returns_the_count_and_reports_the_bytes():
    machine = machine_with([SYSCALL, NOP], registers={2: L.SYS_WRITE, 4: 2, 5: 0x3000, 6: 5}, memory={0x3000: b"hello"})
    written = []
    machine.run(1, on_write=lambda fd, data: written.append((fd, data)))
    assert (reg(machine, 2), reg(machine, 7)) == (5, 0)
    assert written == [(2, b"hello")]


@pytest.mark.parametrize(
    "number,args,heap,v0,a3,heap_after",
    [
        (L.SYS_WRITE, (3, 0, 4), None, L.EBADF, 1, L.HEAP_START),
        (L.SYS_BRK, (0,), None, L.HEAP_START, 0, L.HEAP_START),
        (L.SYS_BRK, (L.HEAP_START + 10,), None, L.HEAP_START + 10, 0, L.HEAP_START + 10),
        (L.SYS_BRK, (L.HEAP_START - 10,), None, L.HEAP_START, 0, L.HEAP_START),
        (L.SYS_BRK, (L.HEAP_LIMIT + 1,), None, L.HEAP_START, 0, L.HEAP_START),
        (L.SYS_MMAP, (0, 1), None, L.HEAP_START, 0, L.HEAP_START + 4096),
        (L.SYS_MMAP, (0, 8192), None, L.HEAP_START, 0, L.HEAP_START + 8192),
        (L.SYS_MMAP, (0x50000000, 100), None, 0x50000000, 0, L.HEAP_START),
        (L.SYS_MMAP, (0, 0x70000001), None, L.ENOMEM, 1, L.HEAP_START),
        (L.SYS_MMAP, (0, MAX), None, L.ENOMEM, 1, L.HEAP_START),
        (4020, (), None, L.ENOSYS, 1, L.HEAP_START),
        (0, (), None, L.ENOSYS, 1, L.HEAP_START),
    ],
)
def test_syscall_results(number, args, heap, v0, a3, heap_after):
    machine = syscall(number, *args, heap=heap)
    assert not machine.exited
    assert (reg(machine, 2), reg(machine, 7)) == (v0, a3)
    assert special(machine, S.HEAP) == heap_after
    assert special(machine, S.PC) == CODE_BASE + 4


def test_an_exited_machine_does_not_change():
    machine = syscall(L.SYS_EXIT, a0=3)
    before = machine.state()
    assert machine.run(10) == 0
    assert machine.state() == before


def test_a_huge_write_is_logged_only_in_part():
    machine = machine_with([SYSCALL, NOP], registers={2: L.SYS_WRITE, 4: 1, 5: 0x3000, 6: 0xFFFFFFF0})
    written = []
    machine.run(1, on_write=lambda fd, data: written.append(len(data)))
    assert reg(machine, 2) == 0xFFFFFFF0  # the guest still sees the full count
    assert written == [1 << 20]
