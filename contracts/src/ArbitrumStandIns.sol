// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

/// @title NodeInterfaceStandIn
/// @notice Arbitrum Nitro's NodeInterface (0x...C8) for local chains and tests ONLY: answers
///         `gasEstimateL1Component` as Nitro does, from the transaction's calldata size, so the
///         L1 data part of a transaction's cost is computed on a devnet shaped like Arbitrum One.
/// @dev On Arbitrum, NodeInterface is virtual (only eth_call and eth_estimateGas reach it);
///      here it is a contract placed at its address. Nitro prices L1 data at 16 gas per byte of
///      the brotli-compressed transaction; this stand-in charges the uncompressed calldata plus
///      140 bytes for the rest of the transaction (ArbGasInfo's per-transaction allowance), at
///      an L1 base fee fixed at deployment, converted to L2 gas at the block's base fee.
///      OffchainLabs/nitro-contracts src/node-interface/NodeInterface.sol.
contract NodeInterfaceStandIn {
    uint256 public constant GAS_PER_BYTE = 16;
    uint256 public constant TX_OVERHEAD_BYTES = 140;

    /// @notice The L1 base fee estimate, in wei per L1 gas.
    uint256 public immutable l1BaseFeeEstimate;

    /// @param l1BaseFeeEstimate_ The L1 base fee the estimates use, wei per gas.
    constructor(uint256 l1BaseFeeEstimate_) {
        l1BaseFeeEstimate = l1BaseFeeEstimate_;
    }

    /// @notice The L1 data component of a transaction to `to` with calldata `data`, in L2 gas.
    /// @return gasEstimateForL1 L1 data cost divided by the L2 base fee (0 when that is 0).
    /// @return baseFee The L2 base fee (`block.basefee`).
    /// @return l1BaseFee The L1 base fee estimate.
    function gasEstimateL1Component(address to, bool contractCreation, bytes calldata data)
        external
        payable
        returns (uint64 gasEstimateForL1, uint256 baseFee, uint256 l1BaseFee)
    {
        to;
        contractCreation;
        baseFee = block.basefee;
        l1BaseFee = l1BaseFeeEstimate;
        uint256 l1Cost = (data.length + TX_OVERHEAD_BYTES) * GAS_PER_BYTE * l1BaseFee;
        // forge-lint: disable-next-line(unsafe-typecast)
        gasEstimateForL1 = baseFee == 0 ? 0 : uint64(l1Cost / baseFee);
    }
}

/// @title ArbSysStandIn
/// @notice Arbitrum's ArbSys precompile (0x...64) for local chains and tests ONLY:
///         `arbBlockNumber()` and `arbChainID()`. On Arbitrum, Solidity's `block.number` is an
///         estimate of the L1 block and ArbSys gives the chain's own; on a devnet the chain's
///         own block is `block.number`.
/// @dev OffchainLabs/nitro-contracts src/precompiles/ArbSys.sol.
contract ArbSysStandIn {
    function arbBlockNumber() external view returns (uint256) {
        return block.number;
    }

    function arbChainID() external view returns (uint256) {
        return block.chainid;
    }
}
