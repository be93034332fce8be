// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {RebalanceMath} from "../../src/LPRebalanceModule.sol";

/// @notice LiquidityAmounts (v3-periphery 1.x) for tests: the token amounts a
///         position's liquidity is worth at a price, rounded down as the pool's
///         burn does.
library LiquidityAmounts {
    uint256 internal constant Q96 = 0x1000000000000000000000000;

    /// @notice LiquidityAmounts.getAmount0ForLiquidity (sqrtA < sqrtB).
    function getAmount0ForLiquidity(uint160 sqrtA, uint160 sqrtB, uint128 liquidity) internal pure returns (uint256) {
        if (sqrtA > sqrtB) (sqrtA, sqrtB) = (sqrtB, sqrtA);
        return RebalanceMath.mulDiv(uint256(liquidity) << 96, sqrtB - sqrtA, sqrtB) / sqrtA;
    }

    /// @notice LiquidityAmounts.getAmount1ForLiquidity (sqrtA < sqrtB).
    function getAmount1ForLiquidity(uint160 sqrtA, uint160 sqrtB, uint128 liquidity) internal pure returns (uint256) {
        if (sqrtA > sqrtB) (sqrtA, sqrtB) = (sqrtB, sqrtA);
        return RebalanceMath.mulDiv(liquidity, sqrtB - sqrtA, Q96);
    }

    /// @notice LiquidityAmounts.getAmountsForLiquidity at the pool price `sqrtP`.
    function getAmountsForLiquidity(uint160 sqrtP, int24 tickLower, int24 tickUpper, uint128 liquidity)
        internal
        pure
        returns (uint256 amount0, uint256 amount1)
    {
        uint160 sqrtA = RebalanceMath.getSqrtRatioAtTick(tickLower);
        uint160 sqrtB = RebalanceMath.getSqrtRatioAtTick(tickUpper);
        if (sqrtP <= sqrtA) {
            amount0 = getAmount0ForLiquidity(sqrtA, sqrtB, liquidity);
        } else if (sqrtP < sqrtB) {
            amount0 = getAmount0ForLiquidity(sqrtP, sqrtB, liquidity);
            amount1 = getAmount1ForLiquidity(sqrtA, sqrtP, liquidity);
        } else {
            amount1 = getAmount1ForLiquidity(sqrtA, sqrtB, liquidity);
        }
    }
}
