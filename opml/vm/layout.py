"""Constants that the Python VM, the guest runtime and the contracts must agree on.

The address space is split into aligned power-of-two regions so that a contract can
compute the initial memory root from three region roots and locate the output with
four sibling hashes (docs/vm-spec.md, "Address space").
"""

# --- Memory tree -----------------------------------------------------------------

WORD_BYTES = 4
LEAF_BYTES = 32
PAGE_BYTES = 4096
PAGE_SHIFT = 12
ADDRESS_BITS = 32
TREE_DEPTH = 27  # 2^32 bytes / 32-byte leaves = 2^27 leaves
PAGE_DEPTH = 7  # 4096 / 32 = 128 leaves per page
UPPER_DEPTH = TREE_DEPTH - PAGE_DEPTH  # levels from the root down to page roots
PAGE_COUNT = 1 << (ADDRESS_BITS - PAGE_SHIFT)
WORDS_PER_PAGE = PAGE_BYTES // WORD_BYTES
LEAVES_PER_PAGE = PAGE_BYTES // LEAF_BYTES


# --- Address-space regions -------------------------------------------------------


class Region:
    """An aligned, power-of-two sized range of the address space."""

    def __init__(self, name: str, start: int, size_bits: int):
        assert start % (1 << size_bits) == 0, "regions are aligned subtrees"
        self.name = name
        self.start = start
        self.size_bits = size_bits

    @property
    def size(self) -> int:
        return 1 << self.size_bits

    @property
    def end(self) -> int:
        """One past the last address."""
        return self.start + self.size

    @property
    def gindex(self) -> int:
        """Generalized index of the region's subtree (root = 1, children 2i, 2i+1)."""
        depth = ADDRESS_BITS - self.size_bits
        return (1 << depth) + (self.start >> self.size_bits)

    def __contains__(self, address: int) -> bool:
        return self.start <= address < self.end

    def __repr__(self) -> str:
        return f"Region({self.name}, {self.start:#010x}-{self.end - 1:#010x})"


PROGRAM = Region("program", 0x0000_0000, 28)
INPUT = Region("input", 0x1000_0000, 28)
OUTPUT = Region("output", 0x2000_0000, 28)
SPARE = Region("spare", 0x3000_0000, 28)
MODEL = Region("model", 0x4000_0000, 30)
HEAP_AND_STACK = Region("heap+stack", 0x8000_0000, 31)

# Input, output and model regions hold a big-endian u32 byte length, then the bytes.
LENGTH_PREFIX_BYTES = 4
MAX_INPUT_BYTES = INPUT.size - LENGTH_PREFIX_BYTES
MAX_MODEL_BYTES = MODEL.size - LENGTH_PREFIX_BYTES
# The largest output a result can carry (InferenceRegistry.MAX_OUTPUT_BYTES): finalize with this much output and
# a consumer using its whole callback gas stays under 10M gas. A longer length prefix is OUTPUT_TOO_LARGE.
MAX_OUTPUT_BYTES = 1 << 16

HEAP_START = HEAP_AND_STACK.start
# The heap may grow up to here; the stack lives above it and grows down.
HEAP_LIMIT = 0xF000_0000
STACK_TOP = 0xFFFF_0000

# --- The node run of a graph model (docs/two-phase.md, "The link") ------------------
# The same program, input, output and model regions as an inference run; the spare region holds the
# node header, and the upper half of memory is four operand regions then a 2^30-byte heap + stack, so
# the registry computes the start state's memory root from region roots (opml/vm/node_run.py).

NODE_HEADER = Region("node header", 0x3000_0000, 28)
MAX_OPERANDS = 4
OPERANDS = tuple(Region(f"operand {j}", 0x8000_0000 + (j << 28), 28) for j in range(MAX_OPERANDS))
NODE_HEAP_AND_STACK = Region("node heap+stack", 0xC000_0000, 30)
NODE_HEAP_START = NODE_HEAP_AND_STACK.start
# The header, operand and output regions hold a u32 length then bytes, like the input region.
MAX_REGION_DATA_BYTES = OPERANDS[0].size - LENGTH_PREFIX_BYTES

# --- Syscalls (MIPS o32 numbers) ---------------------------------------------------

# Registers by their o32 names, where the VM gives them a meaning (MIPS.sol names them alike).
REG_V0 = 2  # syscall number in, result out
REG_A0 = 4  # syscall arguments
REG_A1 = 5
REG_A2 = 6
REG_A3 = 7  # syscall error flag
REG_SP = 29  # stack pointer: STACK_TOP at the start
REG_RA = 31  # return address of jal, bal and the linking branches

SYS_EXIT = 4001
SYS_WRITE = 4004
SYS_BRK = 4045
SYS_MMAP = 4090
SYS_EXIT_GROUP = 4246

# Linux MIPS errno values returned in v0 (with a3 = 1) on a failed syscall.
EBADF = 9
ENOMEM = 12
ENOSYS = 89

STDOUT = 1
STDERR = 2

# --- Exit codes --------------------------------------------------------------------
# exit/exit_group store a0 & 0xFF. The VM reserves the top codes for faults, so a
# guest must exit with codes below EXIT_FAULT_BASE.

EXIT_FAULT_BASE = 0xF0
EXIT_INVALID_INSTRUCTION = 0xF0  # unknown encoding, break, or a coprocessor op
EXIT_ADDRESS_ERROR = 0xF1  # unaligned pc, or unaligned word/halfword access
EXIT_TRAP = 0xF2  # teq/tne/... taken, or signed overflow in add/addi/sub

FAULT_NAMES = {
    EXIT_INVALID_INSTRUCTION: "invalid instruction",
    EXIT_ADDRESS_ERROR: "address error",
    EXIT_TRAP: "trap",
}
