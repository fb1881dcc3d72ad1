// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {InferenceLayout} from "../../src/InferenceLayout.sol";

/// @title LayoutHarness
/// @notice Test helper: exposes InferenceLayout so Python can check it against opml/vm.
contract LayoutHarness {
    function regionRoot(bytes calldata data) external pure returns (bytes32) {
        return InferenceLayout.regionRoot(data);
    }

    function initialStateHash(bytes32 programRoot, bytes32 inputRoot, bytes32 modelRoot, uint32 entry)
        external
        pure
        returns (bytes32)
    {
        return InferenceLayout.initialStateHash(programRoot, inputRoot, modelRoot, entry);
    }

    function isOutputOf(bytes calldata output, bytes32[4] calldata siblings, bytes32 memRoot)
        external
        pure
        returns (bool)
    {
        return InferenceLayout.isOutputOf(output, siblings, memRoot);
    }

    function leafUnderRegion(bytes32 leaf, uint256 index, bytes32[23] calldata siblings)
        external
        pure
        returns (bytes32)
    {
        return InferenceLayout.leafUnderRegion(leaf, index, siblings);
    }

    function memoryRootWithOutputRegion(bytes32 outputRoot, bytes32[4] calldata siblings)
        external
        pure
        returns (bytes32)
    {
        return InferenceLayout.memoryRootWithOutputRegion(outputRoot, siblings);
    }
}
