// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {MIPS} from "../../src/MIPS.sol";

/// @title StepBatch
/// @notice Test and benchmark helper: many MIPS.step calls in one eth_call. Not deployed in production.
contract StepBatch {
    /// @notice The verifier under test.
    MIPS public immutable mips;

    constructor(MIPS mips_) {
        mips = mips_;
    }

    /// @notice Run MIPS.step on each (state, proof) pair.
    /// @return postStates The post-state hash of each step, or zero where the step reverted.
    /// @return gasUsed The gas each call used, including the call itself.
    function stepMany(bytes[] calldata states, bytes[] calldata proofs)
        external
        view
        returns (bytes32[] memory postStates, uint256[] memory gasUsed)
    {
        postStates = new bytes32[](states.length);
        gasUsed = new uint256[](states.length);
        for (uint256 i = 0; i < states.length; ++i) {
            uint256 before = gasleft();
            try mips.step(states[i], proofs[i]) returns (bytes32 postState) {
                postStates[i] = postState;
            } catch {}
            gasUsed[i] = before - gasleft();
        }
    }
}
