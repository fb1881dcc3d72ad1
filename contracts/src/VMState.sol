// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

/// @title VMState
/// @notice The OPML VM state and its 190-byte big-endian encoding (docs/vm-spec.md, "State").
library VMState {
    /// @notice Length of an encoded state.
    uint256 internal constant ENCODED_BYTES = 190;
    /// @notice Number of general-purpose registers.
    uint256 internal constant REGISTER_COUNT = 32;

    // Byte offsets of the fields in the encoding.
    uint256 private constant PC_OFFSET = 32;
    uint256 private constant EXIT_CODE_OFFSET = 52;
    uint256 private constant EXITED_OFFSET = 53;
    uint256 private constant STEP_OFFSET = 54;
    uint256 private constant REGISTERS_OFFSET = 62;

    /// @notice The encoding has the wrong length.
    error InvalidStateLength(uint256 length);
    /// @notice The exited flag is neither 0 nor 1.
    error InvalidExitedFlag(uint8 value);

    struct State {
        bytes32 memRoot;
        uint32 pc;
        uint32 nextPC;
        uint32 lo;
        uint32 hi;
        uint32 heap;
        uint8 exitCode;
        bool exited;
        uint64 step;
        uint32[32] registers;
    }

    /// @notice Decode a state from calldata; reverts on a malformed encoding.
    function decode(bytes calldata data) internal pure returns (State memory s) {
        if (data.length != ENCODED_BYTES) revert InvalidStateLength(data.length);
        uint256 offset;
        assembly ("memory-safe") {
            offset := data.offset
        }
        s.memRoot = bytes32(_load(offset, 0, 256));
        s.pc = uint32(_load(offset, PC_OFFSET, 32));
        s.nextPC = uint32(_load(offset, PC_OFFSET + 4, 32));
        s.lo = uint32(_load(offset, PC_OFFSET + 8, 32));
        s.hi = uint32(_load(offset, PC_OFFSET + 12, 32));
        s.heap = uint32(_load(offset, PC_OFFSET + 16, 32));
        s.exitCode = uint8(_load(offset, EXIT_CODE_OFFSET, 8));
        uint8 exited = uint8(_load(offset, EXITED_OFFSET, 8));
        if (exited > 1) revert InvalidExitedFlag(exited);
        s.exited = exited == 1;
        s.step = uint64(_load(offset, STEP_OFFSET, 64));
        for (uint256 i = 0; i < REGISTER_COUNT; ++i) {
            s.registers[i] = uint32(_load(offset, REGISTERS_OFFSET + 4 * i, 32));
        }
    }

    /// @notice What a claim needs of a state, read from its encoding without decoding the registers;
    ///         reverts on a malformed encoding like `decode`.
    function summarize(bytes calldata data)
        internal
        pure
        returns (bytes32 memRoot, uint8 exitCode, bool exited, uint64 step)
    {
        if (data.length != ENCODED_BYTES) revert InvalidStateLength(data.length);
        uint256 offset;
        assembly ("memory-safe") {
            offset := data.offset
        }
        memRoot = bytes32(_load(offset, 0, 256));
        exitCode = uint8(_load(offset, EXIT_CODE_OFFSET, 8));
        uint8 exitedFlag = uint8(_load(offset, EXITED_OFFSET, 8));
        if (exitedFlag > 1) revert InvalidExitedFlag(exitedFlag);
        exited = exitedFlag == 1;
        step = uint64(_load(offset, STEP_OFFSET, 64));
    }

    /// @notice keccak256 of the state's encoding.
    function hash(State memory s) internal pure returns (bytes32 stateHash) {
        bytes memory encoded = encode(s);
        assembly ("memory-safe") {
            stateHash := keccak256(add(encoded, 32), mload(encoded))
        }
    }

    /// @notice The 190-byte encoding of a state.
    function encode(State memory s) internal pure returns (bytes memory encoded) {
        // 32 bytes of slack: each register is written with a full-word mstore.
        encoded = new bytes(ENCODED_BYTES + 32);
        uint256 header = (uint256(s.pc) << 224) | (uint256(s.nextPC) << 192) | (uint256(s.lo) << 160)
            | (uint256(s.hi) << 128) | (uint256(s.heap) << 96) | (uint256(s.exitCode) << 88)
            | (uint256(s.exited ? 1 : 0) << 80) | (uint256(s.step) << 16);
        bytes32 memRoot = s.memRoot;
        assembly ("memory-safe") {
            let base := add(encoded, 32)
            mstore(base, memRoot)
            mstore(add(base, PC_OFFSET), header)
            mstore(encoded, ENCODED_BYTES)
        }
        for (uint256 i = 0; i < REGISTER_COUNT; ++i) {
            uint256 word = uint256(s.registers[i]) << 224;
            assembly ("memory-safe") {
                mstore(add(add(encoded, 32), add(REGISTERS_OFFSET, mul(4, i))), word)
            }
        }
    }

    /// @dev The `bits`-bit big-endian field at `position` of the calldata at `offset`.
    function _load(uint256 offset, uint256 position, uint256 bits) private pure returns (uint256 value) {
        assembly ("memory-safe") {
            value := shr(sub(256, bits), calldataload(add(offset, position)))
        }
    }
}
