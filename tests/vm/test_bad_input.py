"""Bad programs and oversized inputs give clear errors, never a crash."""

import struct

import pytest

from opml.guest import built
from opml.vm import layout as L
from opml.vm.elf import Program, ProgramError
from opml.vm.machine import InputError, Machine

GOOD = built("tests/alu").read_bytes()


def patched(offset: int, fmt: str, value: int) -> bytes:
    data = bytearray(GOOD)
    struct.pack_into(fmt, data, offset, value)
    return bytes(data)


def first_load_header_offset() -> int:
    phoff = struct.unpack_from(">I", GOOD, 28)[0]
    phentsize, phnum = struct.unpack_from(">HH", GOOD, 42)
    for i in range(phnum):
        if struct.unpack_from(">I", GOOD, phoff + i * phentsize)[0] == 1:  # PT_LOAD
            return phoff + i * phentsize
    raise AssertionError("no PT_LOAD")


BAD_PROGRAMS = {
    "empty": (b"", "not a readable ELF"),
    "garbage": (b"garbage" * 10, "not a readable ELF"),
    "header cut": (GOOD[:40], "not a readable ELF"),
    "segments cut": (GOOD[:300], "not a readable ELF|truncated"),
    "64-bit": (patched(4, ">B", 2), "32-bit"),
    "little-endian": (patched(5, ">B", 1), "not a readable ELF|big-endian"),
    "x86": (patched(18, ">H", 3), "MIPS"),
    "relocatable object": (patched(16, ">H", 1), "static executable"),
    "mips64": (patched(36, ">I", 0x6000_1005), "architecture"),
    "entry outside the program region": (patched(24, ">I", 0x1000_0000), "entry point"),
    "unaligned entry": (patched(24, ">I", 0x0002_0002), "entry point"),
    "segment outside the program region": (
        patched(first_load_header_offset() + 8, ">I", 0x0FFF_FF00),
        "outside the program region",
    ),
    "more file bytes than memory bytes": (
        patched(first_load_header_offset() + 16, ">I", 0xFFFF),
        "more file bytes|truncated",
    ),
}


@pytest.mark.parametrize("data,message", BAD_PROGRAMS.values(), ids=BAD_PROGRAMS.keys())
def test_bad_programs_are_refused(data, message):
    with pytest.raises(ProgramError, match=message):
        Program.from_bytes(data)


def test_a_host_executable_is_refused():
    with pytest.raises(ProgramError):
        Program.from_file("/bin/true")


def test_a_missing_file_is_a_program_error(tmp_path):
    with pytest.raises(ProgramError, match="cannot read"):
        Program.from_file(tmp_path / "missing.elf")


def test_oversized_input_and_model_are_refused():
    program = Program.from_bytes(GOOD)
    with pytest.raises(InputError, match="input region"):
        Machine.boot(program, input=bytes(L.MAX_INPUT_BYTES + 1))
    with pytest.raises(InputError, match="model region"):
        Machine.boot(program, model=bytes(L.MAX_MODEL_BYTES + 1))


def test_largest_input_fits():
    machine = Machine.boot(Program.from_bytes(GOOD), input=b"\x07" * 100_000)
    assert machine.memory.read_u32(L.INPUT.start) == 100_000
    assert machine.memory.read(L.INPUT.start + 4 + 99_999, 2) == b"\x07\x00"
