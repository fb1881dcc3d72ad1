// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {Vm} from "forge-std/Vm.sol";

/// @title TestBase
/// @notice The cheatcodes of forge-std's Vm interface and the few assertions our tests use. (forge-std's
///         Test.sol from npm imports ds-test, which is not published on npm.)
abstract contract TestBase {
    Vm internal constant vm = Vm(address(uint160(uint256(keccak256("hevm cheat code")))));

    error AssertionFailed(string message);
    error NotEqual(bytes32 actual, bytes32 expected, string message);
    error NotEqualUint(uint256 actual, uint256 expected, string message);

    function assertEq(bytes32 actual, bytes32 expected, string memory message) internal pure {
        if (actual != expected) revert NotEqual(actual, expected, message);
    }

    function assertEq(uint256 actual, uint256 expected, string memory message) internal pure {
        if (actual != expected) revert NotEqualUint(actual, expected, message);
    }

    function assertTrue(bool condition, string memory message) internal pure {
        if (!condition) revert AssertionFailed(message);
    }

    function bound(uint256 value, uint256 min, uint256 max) internal pure returns (uint256) {
        return min + value % (max - min + 1);
    }
}
