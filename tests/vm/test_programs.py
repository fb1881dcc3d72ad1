"""The guest test programs: reproducible builds, outcomes, instruction coverage."""

import hashlib

import pytest

from opml.guest import ALL_PROGRAMS, TEST_PROGRAMS, build_all, built
from opml.vm import layout as L
from opml.vm import semantics as S
from opml.vm.disasm import FAMILIES, mnemonic
from opml.vm.elf import Program
from opml.vm.execution import Execution
from opml.vm.machine import Machine

EXPECTED_EXIT = {
    "tests/alu": 0,
    "tests/muldiv": 0,
    "tests/memory": 0,
    "tests/control": 0,
    "tests/syscalls": 3,
    "tests/trap": L.EXIT_TRAP,
}


def test_committed_elfs_are_reproducible(tmp_path):
    rebuilt = build_all(tmp_path)
    assert len(rebuilt) == len(ALL_PROGRAMS)
    for program, path in zip(ALL_PROGRAMS, rebuilt):
        committed = built(program.name).read_bytes()
        assert hashlib.sha256(path.read_bytes()).hexdigest() == hashlib.sha256(committed).hexdigest(), program.name


def test_no_fpu_instructions_in_any_guest():
    for program in ALL_PROGRAMS:
        for segment in Program.from_file(built(program.name)).segments:
            words = [int.from_bytes(segment.data[i : i + 4], "big") for i in range(0, len(segment.data) - 3, 4)]
            assert not any((w >> 26) in (0x11, 0x31, 0x35, 0x39, 0x3D) for w in words if w), program.name


@pytest.mark.parametrize("name", sorted(EXPECTED_EXIT))
def test_program_outcome(name):
    result = Execution(Program.from_file(built(name))).run(max_steps=1_000_000)
    assert result.final_state.exited
    assert result.exit_code == EXPECTED_EXIT[name], f"{name}: failed check {result.exit_code}"


def test_syscalls_program_console_output():
    result = Execution(Program.from_file(built("tests/syscalls"))).run()
    assert result.stdout == b"hello from the guest\n"
    assert result.stderr == b"oops\n"


def executed_mnemonics(name: str) -> set[str]:
    machine = Machine.boot(Program.from_file(built(name)))
    seen = set()
    while not machine.exited:
        seen.add(mnemonic(machine.memory.read_u32(int(machine.special[S.PC]))))
        machine.run(1)
    return seen


def test_test_programs_execute_every_instruction_family():
    seen = set().union(*(executed_mnemonics(p.name) for p in TEST_PROGRAMS))
    missing = {family: sorted(set(names) - seen) for family, names in FAMILIES.items() if set(names) - seen}
    assert not missing, f"instructions no test program executes: {missing}"
