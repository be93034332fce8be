// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

/// @title ISafeModuleManager
/// @notice The parts of Safe 1.4.1's ModuleManager (and OwnerManager) that a module calls.
/// @dev `operation` is Safe's Enum.Operation: 0 = CALL, 1 = DELEGATECALL.
///      A failed inner call returns `success == false` with the revert data;
///      a call from a module that is not enabled reverts with "GS104".
interface ISafeModuleManager {
    function execTransactionFromModuleReturnData(address to, uint256 value, bytes calldata data, uint8 operation)
        external
        returns (bool success, bytes memory returnData);

    function isModuleEnabled(address module) external view returns (bool);

    function isOwner(address owner) external view returns (bool);
}
