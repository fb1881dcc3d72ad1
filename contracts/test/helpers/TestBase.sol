// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {Vm} from "forge-std/Vm.sol";

/// @dev Cheatcodes of the installed forge that forge-std 1.1.2's Vm interface does not declare.
interface VmClock {
    function getBlockTimestamp() external view returns (uint256);
    function getBlockNumber() external view returns (uint256);
}

/// @title TestBase
/// @notice The cheatcodes of forge-std's Vm interface and the few assertions our tests use. (forge-std's
///         Test.sol from npm imports ds-test, which is not published on npm.)
abstract contract TestBase {
    Vm internal constant vm = Vm(address(uint160(uint256(keccak256("hevm cheat code")))));

    VmClock private constant clock = VmClock(address(vm));

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

    /// @dev The current block's timestamp and number. With via-IR, `block.timestamp` and `block.number` may
    ///      be read once per test function and miss later `vm.warp` and `vm.roll` calls; these never do.
    function timestamp() internal view returns (uint256) {
        return clock.getBlockTimestamp();
    }

    function blockNumber() internal view returns (uint256) {
        return clock.getBlockNumber();
    }
}
