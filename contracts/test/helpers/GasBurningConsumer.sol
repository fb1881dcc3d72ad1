// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {IInferenceConsumer, ResultKind} from "../../src/InferenceRegistry.sol";

/// @title GasBurningConsumer
/// @notice Test and benchmark helper: the most expensive consumer a registry allows. It reads the whole output
///         (hashes it) and then uses up every unit of gas it was given, so a finalize with it costs the most any
///         consumer can make it cost (bench/dispute_gas.py measures `finalize` at the output cap with it).
contract GasBurningConsumer is IInferenceConsumer {
    /// @notice Hashes the output, then consumes all the gas left (the call fails; the registry logs it).
    function onInferenceResult(uint256, ResultKind, uint8, bytes calldata output) external pure {
        bytes32 digest = keccak256(output);
        assembly {
            mstore(0, digest)
            invalid()
        }
    }
}
