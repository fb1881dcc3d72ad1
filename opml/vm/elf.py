"""Loading guest programs: MIPS32 big-endian static executables into the program region."""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path

from elftools.common.exceptions import ELFError
from elftools.elf.elffile import ELFFile

from ..errors import BadInput
from .layout import PROGRAM

EM_MIPS = 8
EF_MIPS_ARCH_MASK = 0xF000_0000
# MIPS I, MIPS II and MIPS32 (release 1) code only uses instructions the VM knows.
ACCEPTED_ARCHITECTURES = {0x0000_0000: "mips1", 0x1000_0000: "mips2", 0x5000_0000: "mips32"}


class ProgramError(BadInput):
    """The file is not a program this VM can run."""


@dataclass(frozen=True)
class Segment:
    address: int
    data: bytes  # file bytes; the rest up to mem_size stays zero
    mem_size: int


@dataclass(frozen=True)
class Program:
    entry: int
    segments: tuple[Segment, ...]
    elf: bytes

    @classmethod
    def from_file(cls, path: str | Path) -> Program:
        try:
            data = Path(path).read_bytes()
        except OSError as error:
            raise ProgramError(f"cannot read program {path}: {error.strerror}") from error
        return cls.from_bytes(data)

    @classmethod
    def from_bytes(cls, data: bytes) -> Program:
        try:
            elf = ELFFile(io.BytesIO(data))
            header = elf.header
            check_header(header)
            segments = tuple(load_segment(segment) for segment in elf.iter_segments() if segment["p_type"] == "PT_LOAD")
        except ProgramError:
            raise
        except (ELFError, ValueError, EOFError, IndexError, KeyError, TypeError) as error:
            raise ProgramError(f"not a readable ELF file: {error}") from error
        except Exception as error:  # pyelftools reports truncation with assorted errors
            raise ProgramError(f"not a readable ELF file: {type(error).__name__}: {error}") from error
        if not segments:
            raise ProgramError("the ELF file has no loadable segment")
        entry = header["e_entry"]
        if entry not in PROGRAM or entry % 4:
            raise ProgramError(f"entry point {entry:#x} is not an aligned address in the program region")
        return cls(entry=entry, segments=segments, elf=data)


def check_header(header) -> None:
    ident = header["e_ident"]
    if ident["EI_CLASS"] != "ELFCLASS32":
        raise ProgramError(f"expected a 32-bit ELF, got {ident['EI_CLASS']}")
    if ident["EI_DATA"] != "ELFDATA2MSB":
        raise ProgramError("expected a big-endian ELF (mips, not mipsel)")
    if header["e_machine"] != "EM_MIPS":
        raise ProgramError(f"expected a MIPS ELF, got machine {header['e_machine']}")
    if header["e_type"] != "ET_EXEC":
        raise ProgramError(f"expected a static executable (ET_EXEC), got {header['e_type']}")
    architecture = header["e_flags"] & EF_MIPS_ARCH_MASK
    if architecture not in ACCEPTED_ARCHITECTURES:
        raise ProgramError(
            f"unsupported MIPS architecture flags {architecture:#010x}: build with -mcpu=mips32 (release 1)"
        )


def load_segment(segment) -> Segment:
    address, mem_size, file_size = segment["p_vaddr"], segment["p_memsz"], segment["p_filesz"]
    if file_size > mem_size:
        raise ProgramError(f"segment at {address:#x} has more file bytes than memory bytes")
    if address < PROGRAM.start or address + mem_size > PROGRAM.end:
        raise ProgramError(
            f"segment {address:#x}-{address + mem_size:#x} lies outside the program region "
            f"{PROGRAM.start:#x}-{PROGRAM.end:#x}"
        )
    data = segment.data()
    if len(data) != file_size:
        raise ProgramError(f"segment at {address:#x} is truncated in the file")
    return Segment(address=address, data=data, mem_size=mem_size)
