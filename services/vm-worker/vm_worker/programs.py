"""The programs this worker runs, known by their root P.

Only built-in programs run: a program's root is what the chain registers, and an
execution's spec names its program by that root, so every replica must be able to map
the root back to the same ELF without asking anyone.
"""

from __future__ import annotations

from dataclasses import dataclass

from opml.errors import BadInput, NotFound
from opml.guest import INFERENCE, LARGE_OUTPUT, LLM_GRAPH, MALFORMED_OUTPUT, NODE, SPIN, GuestProgram, built
from opml.protocol.types import ProgramKind
from opml.vm.elf import Program
from opml.vm.execution import Execution

# The default first; then programs that end with each result kind the inference program never has (a step
# limit, a malformed output region, an output too large), so that every kind can be served through a worker;
# then the node programs, whose runs are node runs of the linked two-phase game (docs/two-phase.md): graph models'
# (the first node program: a node run that names no program), and language models' generations (docs/llm-graph.md).
BUILTIN = (
    (INFERENCE, ProgramKind.WHOLE_RUN),
    (SPIN, ProgramKind.WHOLE_RUN),
    (MALFORMED_OUTPUT, ProgramKind.WHOLE_RUN),
    (LARGE_OUTPUT, ProgramKind.WHOLE_RUN),
    (NODE, ProgramKind.GRAPH_NODES),
    (LLM_GRAPH, ProgramKind.GRAPH_NODES),
)


@dataclass(frozen=True)
class KnownProgram:
    name: str
    program: Program
    root: bytes
    kind: ProgramKind = ProgramKind.WHOLE_RUN  # as the registry registers it: whole runs, or node runs

    @property
    def entry(self) -> int:
        return self.program.entry

    @property
    def kind_label(self) -> str:
        """As the API shows it: "whole_run" or "graph_nodes"."""
        return self.kind.name.lower()


def load(guest: GuestProgram, kind: ProgramKind = ProgramKind.WHOLE_RUN) -> KnownProgram:
    program = Program.from_file(built(guest.name))
    root = Execution(program).region_roots()["program"]
    return KnownProgram(guest.name, program, root, kind)


class ProgramCatalog:
    def __init__(self, programs: list[KnownProgram]):
        self.programs = programs
        self.default = programs[0]
        self.node = next((p for p in programs if p.kind == ProgramKind.GRAPH_NODES), None)
        self._by_root = {program.root: program for program in programs}

    @classmethod
    def builtin(cls) -> ProgramCatalog:
        return cls([load(guest, kind) for guest, kind in BUILTIN])

    def get(self, root: bytes | None) -> KnownProgram:
        """The program with root P; None means the default (the inference program)."""
        if root is None:
            return self.default
        program = self._by_root.get(root)
        if program is None:
            known = ", ".join(f"{p.name} 0x{p.root.hex()}" for p in self.programs)
            raise NotFound(f"no program with root 0x{root.hex()}; this worker runs {known}")
        return program

    def for_run(self, root: bytes | None, node_run: bool) -> KnownProgram:
        """The program of a whole run or of a node run: by root P (None: the inference program, or the node
        program for a node run), of the kind that run needs (BadInput otherwise: a node program's whole run
        would only read an empty node header, and a whole-run program ignores a node)."""
        wanted = ProgramKind.GRAPH_NODES if node_run else ProgramKind.WHOLE_RUN
        if root is None and node_run:
            if self.node is None:
                raise NotFound("this worker has no node program")
            return self.node
        program = self.get(root)
        if program.kind != wanted:
            run = "a node run" if node_run else "a whole run (a request without a node)"
            others = ", ".join(f"{p.name} 0x{p.root.hex()}" for p in self.programs if p.kind == wanted)
            raise BadInput(
                f"program {program.name} is a {program.kind_label} program; {run} needs a "
                f"{wanted.name.lower()} program: {others}"
            )
        return program
