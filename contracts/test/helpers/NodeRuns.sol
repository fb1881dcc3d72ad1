// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {VMState} from "../../src/VMState.sol";
import {MerkleTrees} from "./MerkleTrees.sol";
import {SparseMemory} from "./SparseMemory.sol";

/// @title NodeRuns
/// @notice Test helper: a tiny node program, a stand-in for guest/inference/node_main.c, and its runs in the
///         node-run layout of docs/two-phase.md ("The link"), built independently of Proofs.sol: the memory with
///         SparseMemory and MerkleTrees (program, input, node header, model and operand regions), the trace by an
///         interpreter of the six instructions the program uses. The tests check every step of a trace against
///         MIPS.step, and the start state against the one the registry builds from roots.
///
///         The program reads the node header (i, n) and the model region (a tag, then the graph's node count N),
///         exits with 30 (the node program's EXIT_WRONG_NODE_COUNT) unless n == N, and otherwise writes the
///         12-byte value (i, tag, operand 0's first word + 1) to the output region and exits 0:
///
///         00 lui t0, 0x3000     04 lw t1, 4(t0)       08 lw t2, 8(t0)      0c lui t3, 0x4000
///         10 lw t4, 8(t3)       14 bne t2, t4, 0x48   18 lui t5, 0x2000    1c lw t3, 4(t3)
///         20 lui t6, 0x8000     24 lw t6, 4(t6)       28 addiu t6, t6, 1   2c addiu t7, zero, 12
///         30 sw t7, 0(t5)       34 sw t1, 4(t5)       38 sw t3, 8(t5)      3c sw t6, 12(t5)
///         40 addiu v0, zero, 4246                     44 syscall
///         48 addiu a0, zero, 30 4c addiu v0, zero, 4246                    50 syscall
library NodeRuns {
    using SparseMemory for SparseMemory.Memory;

    /// @notice What a node run starts from: the registered program's entry, the header the registry writes
    ///         (node, node count, operand slots), the operands' values, the input (value 0) and the model.
    struct Spec {
        uint32 entry;
        uint64 node;
        uint64 nodeCount;
        uint32[] slots;
        bytes[] operands; // operand j's value bytes (the value at slots[j])
        bytes input;
        bytes model; // the model region's contents (after its length prefix)
    }

    /// @notice A run: its states, and what a step proof of each step needs.
    struct Trace {
        VMState.State[] states; // states[s], s = 0..steps
        uint32[] dataAddress; // the word the step from s loads or stores (its pc if none)
        uint256[] memoryAt; // index into `memories` of the memory at step s
        SparseMemory.Memory[] memories; // the initial memory, then one more after each store
        uint64 steps;
    }

    uint32 internal constant INPUT = 0x1000_0000;
    uint32 internal constant OUTPUT = 0x2000_0000;
    uint32 internal constant HEADER = 0x3000_0000;
    uint32 internal constant MODEL = 0x4000_0000;
    uint32 internal constant OPERANDS = 0x8000_0000;
    uint32 internal constant NODE_HEAP_START = 0xC000_0000;
    uint32 internal constant STACK_TOP = 0xFFFF_0000;
    uint256 internal constant SP = 29;
    uint256 internal constant V0 = 2;
    uint256 internal constant A0 = 4;
    uint32 internal constant EXIT_GROUP = 4246;
    uint8 internal constant EXIT_WRONG_NODE_COUNT = 30;
    /// @notice Steps of a run that writes its value, and of one refused for its node count.
    uint64 internal constant VALUE_STEPS = 18;
    uint64 internal constant REFUSED_STEPS = 10;
    uint256 internal constant MAX_STEPS = 32;

    uint32 private constant OP_SPECIAL = 0x00;
    uint32 private constant OP_BNE = 0x05;
    uint32 private constant OP_ADDIU = 0x09;
    uint32 private constant OP_LUI = 0x0F;
    uint32 private constant OP_LW = 0x23;
    uint32 private constant OP_SW = 0x2B;
    uint32 private constant FUNCT_SYSCALL = 0x0C;

    error Unsupported(uint32 pc, uint32 insn);

    /// @notice The program's words, at `entry`.
    function program(uint32 entry) internal pure returns (SparseMemory.Memory memory m) {
        uint32[21] memory words = [
            uint32(0x3C083000), // lui t0, 0x3000
            0x8D090004, // lw t1, 4(t0)
            0x8D0A0008, // lw t2, 8(t0)
            0x3C0B4000, // lui t3, 0x4000
            0x8D6C0008, // lw t4, 8(t3)
            0x154C000C, // bne t2, t4, +12 (to 0x48)
            0x3C0D2000, // lui t5, 0x2000 (the delay slot)
            0x8D6B0004, // lw t3, 4(t3)
            0x3C0E8000, // lui t6, 0x8000
            0x8DCE0004, // lw t6, 4(t6)
            0x25CE0001, // addiu t6, t6, 1
            0x240F000C, // addiu t7, zero, 12
            0xADAF0000, // sw t7, 0(t5)
            0xADA90004, // sw t1, 4(t5)
            0xADAB0008, // sw t3, 8(t5)
            0xADAE000C, // sw t6, 12(t5)
            0x24021096, // addiu v0, zero, 4246
            0x0000000C, // syscall
            0x2404001E, // addiu a0, zero, 30
            0x24021096, // addiu v0, zero, 4246
            0x0000000C // syscall
        ];
        m = SparseMemory.empty();
        for (uint256 i = 0; i < words.length; ++i) {
            m = m.withWord(entry + uint32(4 * i), words[i]);
        }
    }

    /// @notice The value the program writes for node `node` of a model tagged `tag`, whose first operand is
    ///         `operand0`: (node, tag, first word of operand0 + 1), big-endian.
    function valueOf(uint64 node, uint32 tag, bytes memory operand0) internal pure returns (bytes memory) {
        unchecked {
            return abi.encodePacked(uint32(node), tag, firstWord(operand0) + 1);
        }
    }

    /// @notice A model region's contents: its tag and the node count N of its graph.
    function model(uint32 tag, uint64 nodeCount) internal pure returns (bytes memory) {
        return abi.encodePacked(tag, uint32(nodeCount));
    }

    /// @notice The first 4 bytes of a value, big-endian (zero-padded).
    function firstWord(bytes memory value) internal pure returns (uint32 word) {
        for (uint256 i = 0; i < 4; ++i) {
            word = (word << 8) | (i < value.length ? uint8(value[i]) : 0);
        }
    }

    /// @notice The header the registry writes: big-endian u32s node, node count, operand count, the slots.
    function header(Spec memory spec) internal pure returns (bytes memory h) {
        h = abi.encodePacked(uint32(spec.node), uint32(spec.nodeCount), uint32(spec.slots.length));
        for (uint256 j = 0; j < spec.slots.length; ++j) {
            h = abi.encodePacked(h, spec.slots[j]);
        }
    }

    /// @notice The node run's memory at its start.
    function startMemory(Spec memory spec, SparseMemory.Memory memory programMemory)
        internal
        pure
        returns (SparseMemory.Memory memory m)
    {
        m = copy(programMemory);
        m = withRegion(m, INPUT, spec.input);
        m = withRegion(m, HEADER, header(spec));
        m = withRegion(m, MODEL, spec.model);
        for (uint256 j = 0; j < spec.operands.length; ++j) {
            m = withRegion(m, OPERANDS + uint32(j << 28), spec.operands[j]);
        }
    }

    /// @notice `data` written as a region: a big-endian u32 length, then the bytes (zero-padded to a word).
    function withRegion(SparseMemory.Memory memory m, uint32 base, bytes memory data)
        internal
        pure
        returns (SparseMemory.Memory memory)
    {
        m = m.withWord(base, uint32(data.length));
        for (uint256 offset = 0; offset < data.length; offset += 4) {
            uint32 word;
            for (uint256 b = 0; b < 4; ++b) {
                word = (word << 8) | (offset + b < data.length ? uint8(data[offset + b]) : 0);
            }
            if (word != 0) m = m.withWord(base + 4 + uint32(offset), word);
        }
        return m;
    }

    /// @notice The aligned word at `addr & ~3` of a sparse memory.
    function wordAt(SparseMemory.Memory memory m, uint32 addr) internal pure returns (uint32) {
        for (uint256 i = 0; i < m.addrs.length; ++i) {
            if (m.addrs[i] >> 5 == addr >> 5) {
                return uint32(uint256(m.leaves[i]) >> (224 - ((addr & 31) >> 2) * 32));
            }
        }
        return 0;
    }

    function copy(SparseMemory.Memory memory m) internal pure returns (SparseMemory.Memory memory c) {
        c.addrs = new uint32[](m.addrs.length);
        c.leaves = new bytes32[](m.leaves.length);
        for (uint256 i = 0; i < m.addrs.length; ++i) {
            (c.addrs[i], c.leaves[i]) = (m.addrs[i], m.leaves[i]);
        }
    }

    function copyState(VMState.State memory s) internal pure returns (VMState.State memory c) {
        (c.memRoot, c.pc, c.nextPC, c.lo, c.hi, c.heap) = (s.memRoot, s.pc, s.nextPC, s.lo, s.hi, s.heap);
        (c.exitCode, c.exited, c.step) = (s.exitCode, s.exited, s.step);
        for (uint256 r = 0; r < 32; ++r) {
            c.registers[r] = s.registers[r];
        }
    }

    /// @notice The run of the program from the start state of `spec`, to its exit.
    function trace(Spec memory spec, SparseMemory.Memory memory programMemory) internal pure returns (Trace memory t) {
        VMState.State[] memory states = new VMState.State[](MAX_STEPS + 1);
        t.dataAddress = new uint32[](MAX_STEPS + 1);
        t.memoryAt = new uint256[](MAX_STEPS + 1);
        SparseMemory.Memory[] memory memories = new SparseMemory.Memory[](6);
        SparseMemory.Memory memory m = startMemory(spec, programMemory);
        memories[0] = m;
        uint256 snapshots = 1;

        VMState.State memory s;
        s.memRoot = MerkleTrees.root(m);
        s.pc = spec.entry;
        s.nextPC = spec.entry + 4;
        s.heap = NODE_HEAP_START;
        s.registers[SP] = STACK_TOP;
        uint64 step = 0;
        while (!s.exited) {
            states[step] = copyState(s);
            t.memoryAt[step] = snapshots - 1;
            t.dataAddress[step] = s.pc;
            uint32 insn = wordAt(m, s.pc);
            uint32 op = insn >> 26;
            uint256 rs = (insn >> 21) & 31;
            uint256 rt = (insn >> 16) & 31;
            uint32 simm = uint32(int32(int16(uint16(insn))));
            uint32 next = s.nextPC + 4;
            unchecked {
                if (op == OP_LUI) {
                    s.registers[rt] = insn << 16;
                } else if (op == OP_ADDIU) {
                    s.registers[rt] = s.registers[rs] + simm;
                } else if (op == OP_LW) {
                    uint32 addr = s.registers[rs] + simm;
                    t.dataAddress[step] = addr;
                    s.registers[rt] = wordAt(m, addr);
                } else if (op == OP_SW) {
                    uint32 addr = s.registers[rs] + simm;
                    t.dataAddress[step] = addr;
                    m = copy(m).withWord(addr, s.registers[rt]);
                    memories[snapshots++] = m;
                    s.memRoot = MerkleTrees.root(m);
                } else if (op == OP_BNE) {
                    if (s.registers[rs] != s.registers[rt]) next = s.pc + 4 + (simm << 2);
                } else if (op == OP_SPECIAL && insn & 63 == FUNCT_SYSCALL && s.registers[V0] == EXIT_GROUP) {
                    s.exited = true;
                    s.exitCode = uint8(s.registers[A0]);
                } else {
                    revert Unsupported(s.pc, insn);
                }
            }
            if (!s.exited) (s.pc, s.nextPC) = (s.nextPC, next);
            s.step = ++step;
        }
        states[step] = copyState(s);
        t.memoryAt[step] = snapshots - 1;
        t.dataAddress[step] = s.pc;
        t.steps = step;
        assembly ("memory-safe") {
            mstore(states, add(step, 1))
            mstore(memories, snapshots)
        }
        t.states = states;
        t.memories = memories;
    }

    /// @notice The state at `step` (the final state from the run's end on: an exited state steps to itself).
    function stateAt(Trace memory t, uint64 step) internal pure returns (VMState.State memory) {
        return t.states[step > t.steps ? t.steps : step];
    }

    function hashAt(Trace memory t, uint64 step) internal pure returns (bytes32) {
        return VMState.hash(stateAt(t, step));
    }

    function finalState(Trace memory t) internal pure returns (VMState.State memory) {
        return t.states[t.steps];
    }

    function finalMemory(Trace memory t) internal pure returns (SparseMemory.Memory memory) {
        return t.memories[t.memories.length - 1];
    }

    /// @notice MIPS.step's proof of the step from `step`: the instruction's leaf, then the data word's.
    function stepProof(Trace memory t, uint64 step) internal pure returns (bytes memory) {
        uint64 s = step > t.steps ? t.steps : step;
        SparseMemory.Memory memory m = t.memories[t.memoryAt[s]];
        return abi.encodePacked(MerkleTrees.proof(m, t.states[s].pc), MerkleTrees.proof(m, t.dataAddress[s]));
    }

    /// @notice The output region's 4 siblings in a memory (nodes 19, 8, 5 and 3 of the memory tree): the header
    ///         region, the lower 2^29 bytes, the model region and the upper half.
    function outputSiblings(SparseMemory.Memory memory m) internal pure returns (bytes32[4] memory s) {
        (, bytes32[] memory siblings,) = MerkleTrees.subtree(m, MerkleTrees.TREE_DEPTH, 0, uint256(OUTPUT) >> 5);
        for (uint256 i = 0; i < 4; ++i) {
            s[i] = siblings[23 + i];
        }
    }
}
