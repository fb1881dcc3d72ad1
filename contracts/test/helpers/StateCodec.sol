// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {VMState} from "../../src/VMState.sol";

/// @title StateCodec
/// @notice Test helper: exposes the VMState library so Python can check it against opml/vm/state.py.
contract StateCodec {
    /// @notice Decode then re-encode a state.
    function roundTrip(bytes calldata data) external pure returns (bytes memory) {
        return VMState.encode(VMState.decode(data));
    }

    /// @notice The hash of a decoded state.
    function hashOf(bytes calldata data) external pure returns (bytes32) {
        return VMState.hash(VMState.decode(data));
    }

    /// @notice The claim fields of a state, read without decoding it.
    function summaryOf(bytes calldata data) external pure returns (bytes32, uint8, bool, uint64) {
        return VMState.summarize(data);
    }
}
