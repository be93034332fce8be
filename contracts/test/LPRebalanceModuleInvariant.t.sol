// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {RebalanceFixture} from "./utils/RebalanceFixture.sol";
import {LPRebalanceHandler} from "./handlers/LPRebalanceHandler.sol";
import {LPRebalanceModule} from "../src/LPRebalanceModule.sol";

/// @notice Invariants of the Safe under random operator actions sandwiched by
///         an outside trader (see LPRebalanceHandler for the model): the Safe's
///         value at the reference price never drops by more than the swap fees
///         and the slippage the price check allows, tokens and positions never
///         leave it, every refusal is a named error and the rate limits hold.
contract LPRebalanceModuleInvariantTest is RebalanceFixture {
    LPRebalanceHandler internal handler;
    uint256 internal initialValue;

    function setUp() public {
        _setUpRebalance();
        // Some idle tokens besides the position; limits that let most actions through.
        token0.mint(address(safe), 500e18);
        token1.mint(address(safe), 500e18);
        vm.prank(address(safe));
        module.setLimits(12, 10 minutes, MAX_SWAP_SHARE);

        handler = new LPRebalanceHandler(module, npm, router, pool, token0, token1, trader);
        targetContract(address(handler));
        initialValue = handler.safeValue();
    }

    /// @dev One campaign checks every property after every call (each
    ///      `invariant_*` function gets a campaign of its own, so one keeps the
    ///      ci profile's 10_000 runs affordable).
    /// forge-config: default.invariant.runs = 64
    /// forge-config: default.invariant.depth = 32
    /// forge-config: ci.invariant.runs = 10000
    /// forge-config: ci.invariant.depth = 20
    function invariant_operatorCannotExtractValue() public view {
        _assertValueDropsAtMostByFeesAndSlippage();
        _assertTokensAndPositionsStayWithSafe();
        _assertLimitsHoldAndRefusalsAreNamed();
    }

    function _assertValueDropsAtMostByFeesAndSlippage() internal view {
        // Value without the swap fees its positions earned, plus what the bounds let it lose.
        vm.assertGe(
            handler.safeValue() + handler.ghost_allowedLoss(),
            initialValue + handler.ghost_feesCredited(),
            "Safe lost more than fees and slippage"
        );
        // And each action on its own.
        vm.assertEq(handler.ghost_stepViolations(), 0, "an action lost more than its fees and slippage");
    }

    function _assertTokensAndPositionsStayWithSafe() internal view {
        // Nothing ever lands with the operator, the module, the router or the position manager.
        address[4] memory others = [operator, address(module), address(router), address(npm)];
        for (uint256 i = 0; i < others.length; ++i) {
            vm.assertEq(token0.balanceOf(others[i]), 0);
            vm.assertEq(token1.balanceOf(others[i]), 0);
            vm.assertEq(npm.balanceOf(others[i]), 0);
        }
        // Every position NFT but the outside LP's belongs to the Safe.
        vm.assertEq(npm.balanceOf(lp), 1);
        vm.assertEq(npm.balanceOf(trader), 0);
    }

    function _assertLimitsHoldAndRefusalsAreNamed() internal view {
        vm.assertEq(handler.ghost_limitViolations(), 0, "a rebalance beyond the rate limits");
        vm.assertEq(handler.ghost_unnamedReverts(), 0, "a refusal without a named error");
        vm.assertLe(uint256(_inWindow()), uint256(module.maxRebalancesPerDay()));
    }
}
