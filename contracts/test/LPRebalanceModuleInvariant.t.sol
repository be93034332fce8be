// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {RebalanceFixture} from "./utils/RebalanceFixture.sol";
import {INonfungiblePositionManager, IUniswapV3Pool} from "./utils/Interfaces.sol";
import {LPRebalanceHandler} from "./handlers/LPRebalanceHandler.sol";
import {LPRebalanceModule} from "../src/LPRebalanceModule.sol";

/// @notice Invariants of the Safe against an adversary holding the operator key
///         and a deep-pocketed trader (see LPRebalanceHandler): two listed
///         pools and fee tiers, sandwiches, prices pushed and held across TWAP
///         windows, batches around midnight. The Safe's value at the fair price
///         never falls, beyond the fees it earns, by more than the module's
///         loss budget over any 24 hours (plus the oracle error a held price
///         causes, which the handler accounts for explicitly), and not at all
///         through decrease, collect, burn or approve; tokens and positions
///         never leave it; every refusal is named; the rate limits hold.
///         On the pool anchored to USD feeds (pool 0) the loss is bounded by
///         the budget alone, a held price included: no oracle error is allowed.
contract LPRebalanceModuleInvariantTest is RebalanceFixture {
    uint24 internal constant FEE_LOW = 500;

    LPRebalanceHandler internal handler;
    IUniswapV3Pool internal poolLow;

    function setUp() public {
        _setUpRebalance();
        // A second fee tier of the same pair, deep and with TWAP history.
        poolLow = IUniswapV3Pool(
            npm.createAndInitializePoolIfNecessary(address(token0), address(token1), FEE_LOW, PRICE_ONE)
        );
        poolLow.increaseObservationCardinalityNext(100);
        vm.prank(lp);
        npm.mint(
            INonfungiblePositionManager.MintParams({
                token0: address(token0),
                token1: address(token1),
                fee: FEE_LOW,
                tickLower: -887270,
                tickUpper: 887270,
                amount0Desired: LP_AMOUNT,
                amount1Desired: LP_AMOUNT,
                amount0Min: 0,
                amount1Min: 0,
                recipient: lp,
                deadline: block.timestamp
            })
        );
        vm.warp(block.timestamp + 1 hours);
        // Idle tokens besides the position; the devnet's limits and budget, minimums left free.
        token0.mint(address(safe), 500e18);
        token1.mint(address(safe), 500e18);
        vm.startPrank(address(safe));
        module.allowPool(address(token0), address(token1), FEE_LOW);
        module.setLimits(6, 10 minutes, 6_000);
        module.setPriceCheck(TWAP_WINDOW, 150, MAX_OBSERVATION_AGE);
        module.setLossBudget(50, 150);
        module.setBounds(10_000, 0, DEADLINE_HORIZON);
        vm.stopPrank();

        handler = new LPRebalanceHandler(module, npm, router, [pool, poolLow], [FEE, FEE_LOW], token0, token1, trader);
        // Pool 0 is anchored to feeds that track the fair price (the handler
        // writes them before every action), 100 ticks; pool 1 is not.
        (address feed0, address feed1) = (address(handler.feed0()), address(handler.feed1()));
        vm.prank(address(safe));
        module.setAnchor(address(token0), address(token1), FEE, feed0, feed1, 1 hours, 100);
        targetContract(address(handler));
    }

    /// @dev One campaign checks every property after every call (each
    ///      `invariant_*` function gets a campaign of its own, so one keeps the
    ///      ci profile's 10_000 runs affordable; each call drives two pools, so
    ///      the ci depth is 12 calls, enough for several rebalances, holds and
    ///      a midnight in one 24-hour window).
    /// forge-config: default.invariant.runs = 64
    /// forge-config: default.invariant.depth = 32
    /// forge-config: ci.invariant.runs = 10000
    /// forge-config: ci.invariant.depth = 12
    function invariant_operatorLossStaysWithinTheBudget() public view {
        vm.assertEq(handler.ghost_stepViolations(), 0, "an action lost more than it was charged");
        vm.assertEq(handler.ghost_nonSwapViolations(), 0, "decrease, collect, burn or approve lost value");
        vm.assertEq(handler.ghost_windowViolations(), 0, "24 hours lost more than the day budget");
        (, uint256 loss) = module.window();
        vm.assertLe(loss, uint256(module.lossBudgetPerDayBps()) * module.LOSS_UNITS_PER_BPS());
        _assertTokensAndPositionsStayWithSafe();
        vm.assertEq(handler.ghost_limitViolations(), 0, "a rebalance beyond the rate limits");
        vm.assertEq(handler.ghost_unnamedReverts(), 0, "a refusal without a named error");
        (, uint32 maxAge,,,) = module.anchorOf(address(pool));
        vm.assertGt(uint256(maxAge), 0, "pool 0 stays anchored");
    }

    function _assertTokensAndPositionsStayWithSafe() internal view {
        address[4] memory others = [operator, address(module), address(router), address(npm)];
        for (uint256 i = 0; i < others.length; ++i) {
            vm.assertEq(token0.balanceOf(others[i]), 0);
            vm.assertEq(token1.balanceOf(others[i]), 0);
            vm.assertEq(npm.balanceOf(others[i]), 0);
        }
        vm.assertEq(npm.balanceOf(lp), 2);
        vm.assertEq(npm.balanceOf(trader), 0);
    }
}
