"""The programs this worker runs, known by their root P.

Only built-in programs run: a program's root is what the chain registers, and an
execution's spec names its program by that root, so every replica must be able to map
the root back to the same ELF without asking anyone.
"""

from __future__ import annotations

from dataclasses import dataclass

from opml.errors import NotFound
from opml.guest import INFERENCE, LARGE_OUTPUT, MALFORMED_OUTPUT, SPIN, GuestProgram, built
from opml.vm.elf import Program
from opml.vm.execution import Execution

# The default first; the others end with each result kind the inference program never has (a step limit, a
# malformed output region, an output too large), so that every kind can be served through a worker.
BUILTIN = (INFERENCE, SPIN, MALFORMED_OUTPUT, LARGE_OUTPUT)


@dataclass(frozen=True)
class KnownProgram:
    name: str
    program: Program
    root: bytes

    @property
    def entry(self) -> int:
        return self.program.entry


def load(guest: GuestProgram) -> KnownProgram:
    program = Program.from_file(built(guest.name))
    root = Execution(program).region_roots()["program"]
    return KnownProgram(guest.name, program, root)


class ProgramCatalog:
    def __init__(self, programs: list[KnownProgram]):
        self.programs = programs
        self.default = programs[0]
        self._by_root = {program.root: program for program in programs}

    @classmethod
    def builtin(cls) -> ProgramCatalog:
        return cls([load(guest) for guest in BUILTIN])

    def get(self, root: bytes | None) -> KnownProgram:
        """The program with root P; None means the default (the inference program)."""
        if root is None:
            return self.default
        program = self._by_root.get(root)
        if program is None:
            known = ", ".join(f"{p.name} 0x{p.root.hex()}" for p in self.programs)
            raise NotFound(f"no program with root 0x{root.hex()}; this worker runs {known}")
        return program
