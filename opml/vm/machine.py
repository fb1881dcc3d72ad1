"""A VM instance: registers, special registers and memory, and how it boots and runs."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from ..errors import BadInput
from . import layout as L
from . import semantics as S
from .elf import Program
from .memory import PagedMemory
from .merkle import leaf_proof
from .output import read_output
from .state import State

# Bytes of one write syscall handed to the host for logging; the VM's result does not
# depend on them, and a guest may ask to write up to 4 GiB.
LOGGED_WRITE_BYTES = 1 << 20


class InputError(BadInput):
    """Input or model bytes that do not fit their region."""


@dataclass(frozen=True)
class StepWitness:
    """What the on-chain verifier needs to re-execute one step."""

    step: int
    pre_state: State
    instruction_proof: bytes
    data_proof: bytes
    data_address: int | None  # aligned address of the one data access, if any
    post_state: State

    @property
    def proof(self) -> bytes:
        return self.instruction_proof + self.data_proof

    def to_json(self) -> dict:
        return {
            "step": self.step,
            "pre_state": "0x" + self.pre_state.encode().hex(),
            "pre_state_hash": "0x" + self.pre_state.hash.hex(),
            "proof": "0x" + self.proof.hex(),
            "data_address": self.data_address,
            "post_state_hash": "0x" + self.post_state.hash.hex(),
        }


def length_prefixed(data: bytes) -> bytes:
    return len(data).to_bytes(L.LENGTH_PREFIX_BYTES, "big") + data


def _program_input_and_model(program: Program, model: bytes, input: bytes) -> PagedMemory:
    """Memory holding the program's segments, the input and the model in their regions."""
    if len(input) > L.MAX_INPUT_BYTES:
        raise InputError(f"input is {len(input)} bytes; the input region holds at most {L.MAX_INPUT_BYTES}")
    if len(model) > L.MAX_MODEL_BYTES:
        raise InputError(f"model is {len(model)} bytes; the model region holds at most {L.MAX_MODEL_BYTES}")
    memory = PagedMemory()
    for segment in program.segments:
        memory.write(segment.address, segment.data)
    memory.write(L.INPUT.start, length_prefixed(input))
    memory.write(L.MODEL.start, length_prefixed(model))
    return memory


class Machine:
    def __init__(self, memory: PagedMemory, registers: np.ndarray, special: np.ndarray):
        self.memory = memory
        self.registers = registers
        self.special = special
        self.witness = np.full(S.WITNESS_COUNT, S.NO_ACCESS, dtype=np.int64)

    @classmethod
    def boot(cls, program: Program, model: bytes = b"", input: bytes = b"") -> Machine:
        """The initial machine of an inference run (docs/vm-spec.md, "Initial state")."""
        return cls._started(program, _program_input_and_model(program, model, input), heap=L.HEAP_START)

    @classmethod
    def boot_node(
        cls, program: Program, model: bytes, input: bytes, header: bytes, operands: Sequence[bytes]
    ) -> Machine:
        """The initial machine of a node run of a graph model (docs/two-phase.md, "The link"): an inference
        run's regions, the node header, operand j's value in operand region j, the heap from NODE_HEAP_START."""
        if len(header) > L.MAX_REGION_DATA_BYTES:
            raise InputError(f"a node header of {len(header)} bytes does not fit its region")
        if len(operands) > L.MAX_OPERANDS:
            raise InputError(f"{len(operands)} operands; a node run has at most {L.MAX_OPERANDS}")
        for j, value in enumerate(operands):
            if len(value) > L.MAX_REGION_DATA_BYTES:
                raise InputError(
                    f"operand {j} is {len(value)} bytes; its region holds at most {L.MAX_REGION_DATA_BYTES}"
                )
        memory = _program_input_and_model(program, model, input)
        memory.write(L.NODE_HEADER.start, length_prefixed(header))
        for region, value in zip(L.OPERANDS, operands):
            memory.write(region.start, length_prefixed(value))
        return cls._started(program, memory, heap=L.NODE_HEAP_START)

    @classmethod
    def _started(cls, program: Program, memory: PagedMemory, heap: int) -> Machine:
        """A machine at the program's entry with this memory: sp at STACK_TOP, the break at `heap`."""
        registers = np.zeros(32, dtype=np.int64)
        registers[L.REG_SP] = L.STACK_TOP
        special = np.zeros(S.SPECIAL_REGISTER_COUNT, dtype=np.int64)
        special[S.PC] = program.entry
        special[S.NEXT_PC] = program.entry + 4
        special[S.HEAP] = heap
        return cls(memory, registers, special)

    # --- state ------------------------------------------------------------------------

    @property
    def step_count(self) -> int:
        return int(self.special[S.STEP])

    @property
    def exited(self) -> bool:
        return bool(self.special[S.EXITED])

    def state(self) -> State:
        sr = self.special
        return State(
            mem_root=self.memory.root,
            pc=int(sr[S.PC]),
            next_pc=int(sr[S.NEXT_PC]),
            lo=int(sr[S.LO]),
            hi=int(sr[S.HI]),
            heap=int(sr[S.HEAP]),
            exit_code=int(sr[S.EXIT_CODE]),
            exited=bool(sr[S.EXITED]),
            step=int(sr[S.STEP]),
            registers=tuple(int(r) for r in self.registers),
        )

    def output(self) -> bytes:
        """The output of an exited run: the bytes after the output region's big-endian u32 length, when the
        region holds a result's output (opml.vm.output: empty for a malformed or too large one)."""
        return read_output(self.memory).output

    # --- execution ------------------------------------------------------------------------

    def run(self, max_steps: int, on_write: Callable[[int, bytes], None] | None = None) -> int:
        """Execute up to `max_steps` instructions (fewer if it exits). Returns how many ran."""
        done = 0
        while done < max_steps:
            status, executed = S.run(self.registers, self.special, self.memory.arrays, self.witness, max_steps - done)
            done += executed
            if status == S.STATUS_NEED_PAGES:
                self.memory.reserve(max(64, self.memory.pages_in_use))
            elif status == S.STATUS_WROTE:
                if on_write is not None:
                    fd, buffer, count = (int(self.registers[i]) for i in (4, 5, 6))
                    on_write(fd, self.memory.read(buffer, min(count, LOGGED_WRITE_BYTES, (1 << 32) - buffer)))
            else:
                break
        return done

    def step_with_witness(self) -> StepWitness:
        """Execute one instruction and return the proof that lets a contract check it."""
        memory = self.memory
        pre_state = self.state()
        fetch_address = pre_state.pc & ~3
        instruction_proof = memory.proof(fetch_address)
        self.witness[:] = S.NO_ACCESS
        memory.reserve(1)
        S.run(self.registers, self.special, memory.arrays, self.witness, 1)
        data_address = None
        data_proof = instruction_proof
        if self.witness[S.ACCESS_ADDRESS] != S.NO_ACCESS and not pre_state.exited:
            data_address = int(self.witness[S.ACCESS_ADDRESS])
            data_proof = self._pre_state_proof(data_address, int(self.witness[S.ACCESS_OLD_WORD]))
        return StepWitness(
            step=pre_state.step,
            pre_state=pre_state,
            instruction_proof=instruction_proof,
            data_proof=data_proof,
            data_address=data_address,
            post_state=self.state(),
        )

    def _pre_state_proof(self, address: int, old_word: int) -> bytes:
        """Proof of the leaf at `address` as it was before the step's store, if any.

        The tree above the page was last synced before the step, so only the page's
        own content needs the old word put back.
        """
        words = self.memory.page_words(address >> L.PAGE_SHIFT).copy()
        words[(address % L.PAGE_BYTES) // L.WORD_BYTES] = old_word
        return leaf_proof(words, address, self.memory.upper)
